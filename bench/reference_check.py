"""Reference check: score the documents of an assay per-sample log with an independent
implementation (Hugging Face transformers, the same GGUF dequantised to fp32) and compare.

Usage: python bench/reference_check.py SAMPLES.jsonl MODEL.gguf [JSON_OUT]

For every request of every document it tokenises (context, continuation) the way lm-eval's HF
backend does (trailing spaces of the context move to the continuation; the continuation's tokens
are those of the whole text after the context's), sums the continuation's log-probabilities, and
compares with assay's logged value. Reports per-document agreement of the chosen answer for acc
and acc_norm, and the distribution of |logprob difference|.
"""

import json
import math
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def encode_pair(tok, context, continuation):
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok(context + continuation, add_special_tokens=True)["input_ids"]
    ctx = tok(context, add_special_tokens=True)["input_ids"]
    return ctx, whole[len(ctx):]


@torch.no_grad()
def score(model, ctx, cont):
    ids = torch.tensor([(ctx + cont)[:-1]])
    logits = model(ids).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    start = len(ctx) - 1
    total = 0.0
    greedy = True
    for i, t in enumerate(cont):
        row = logprobs[start + i]
        total += row[t].item()
        greedy &= int(row.argmax()) == t
    return total, greedy


def argmax(values):
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def quantiles(xs, qs):
    s = sorted(xs)
    return {q: s[min(len(s) - 1, int(q * len(s)))] for q in qs}


def main():
    samples_path, model_path = sys.argv[1], sys.argv[2]
    out_path = sys.argv[3] if len(sys.argv) > 3 else None
    folder, name = os.path.split(os.path.abspath(model_path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    torch.set_num_threads(os.cpu_count() or 1)

    lines = [json.loads(l) for l in open(samples_path)]
    diffs, acc_agree, norm_agree, token_agree, n_req = [], 0, 0, 0, 0
    start = time.time()
    for line in lines:
        args = [line["arguments"][f"gen_args_{i}"] for i in range(len(line["arguments"]))]
        ours = [r[0][0] for r in line["resps"]]
        theirs = []
        for i, a in enumerate(args):
            ctx, cont = encode_pair(tok, a["arg_0"], a["arg_1"])
            token_agree += len(cont) == line["continuation_tokens"][i]
            ll, _ = score(model, ctx, cont)
            theirs.append(ll)
            diffs.append(abs(ll - ours[i]))
            n_req += 1
        lens = [len(a["arg_1"]) - 1 for a in args]  # the choice without the leading delimiter
        acc_agree += argmax(ours) == argmax(theirs)
        norm_agree += argmax([o / l for o, l in zip(ours, lens)]) == argmax([t / l for t, l in zip(theirs, lens)])
    seconds = time.time() - start
    n = len(lines)
    q = quantiles(diffs, [0.5, 0.9, 0.99, 1.0])
    report = {
        "documents": n,
        "requests": n_req,
        "acc_choice_agreement": acc_agree / n,
        "acc_norm_choice_agreement": norm_agree / n,
        "continuation_token_count_agreement": token_agree / n_req,
        "abs_logprob_diff": {
            "mean": sum(diffs) / len(diffs),
            "median": q[0.5],
            "p90": q[0.9],
            "p99": q[0.99],
            "max": q[1.0],
        },
        "reference": "transformers %s, fp32 dequantised GGUF" % __import__("transformers").__version__,
        "reference_seconds": seconds,
    }
    print("| measure | value |")
    print("|---|---:|")
    print(f"| documents | {n} |")
    print(f"| requests | {n_req} |")
    print(f"| same answer (acc) | {acc_agree}/{n} ({100 * acc_agree / n:.1f}%) |")
    print(f"| same answer (acc_norm) | {norm_agree}/{n} ({100 * norm_agree / n:.1f}%) |")
    print(f"| same continuation token count | {token_agree}/{n_req} |")
    for k, v in report["abs_logprob_diff"].items():
        print(f"| abs logprob diff, {k} (nats) | {v:.4f} |")
    print(f"| reference time | {seconds:.1f}s |")
    if out_path:
        with open(out_path, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
