#!/usr/bin/env python3
"""Compares lm-eval's and assay's per-sample logs of the same task files and documents.

Usage: lm_eval_native_compare.py [--same-model] LM_EVAL_OUT ASSAY_OUT TASK [TASK ...]
For every task, finds `samples_<task>_*.jsonl` under each folder and compares, per document:
every request's arguments (context and continuation strings) byte for byte, the target, and,
with --same-model (both sides scored with the same model), the chosen answer (argmax of the log-likelihoods).
Prints a Markdown table and one JSON object per task.
"""
import glob
import json
import os
import sys


def load(folder, task):
    paths = glob.glob(os.path.join(folder, "**", f"samples_{task}_*.jsonl"), recursive=True)
    if not paths:
        return None
    docs = {}
    with open(sorted(paths)[-1]) as f:
        for line in f:
            s = json.loads(line)
            docs.setdefault(s["doc_id"], s)
    return docs


def arguments(sample):
    """The request arguments as a list of tuples of strings, in request order."""
    args = sample["arguments"]
    if isinstance(args, dict):
        out = []
        for key in sorted(args, key=lambda k: int(k.rsplit("_", 1)[-1])):
            req = args[key]
            out.append(tuple(json.dumps(req[k], sort_keys=True) if not isinstance(req[k], str) else req[k]
                             for k in sorted(req, key=lambda k: int(k.rsplit("_", 1)[-1]))))
        return out
    return [tuple(a if isinstance(a, str) else json.dumps(a, sort_keys=True) for a in req) for req in args]


def contexts_only(args):
    """Generation requests: the context (the generation kwargs are compared separately)."""
    return [a[0] for a in args]


def loglikelihoods(sample):
    """A multiple-choice document's log-likelihoods (logged as strings or numbers), else None."""
    lls = []
    for r in sample.get("filtered_resps") or []:
        value = r[0] if isinstance(r, list) and r else None
        if isinstance(value, list):
            value = value[0] if value else None
        try:
            lls.append(float(value))
        except (TypeError, ValueError):
            return None
    return lls if len(lls) > 1 else None


def main():
    args = sys.argv[1:]
    same_model = "--same-model" in args
    args = [a for a in args if a != "--same-model"]
    lm_dir, assay_dir, tasks = args[0], args[1], args[2:]
    rows = []
    for task in tasks:
        a, b = load(lm_dir, task), load(assay_dir, task)
        if a is None or b is None:
            rows.append({"task": task, "docs": 0, "missing": "lm-eval" if a is None else "assay"})
            continue
        common = sorted(set(a) & set(b))
        same_prompt = same_target = same_choice = comparable = 0
        deltas = []
        first_diff = None
        for d in common:
            aa, ab = arguments(a[d]), arguments(b[d])
            generation = a[d].get("arguments") and any(len(x) == 2 and x[1].startswith("{") for x in aa)
            pa, pb = (contexts_only(aa), contexts_only(ab)) if generation else (aa, ab)
            if pa == pb:
                same_prompt += 1
            elif first_diff is None:
                # GPQA's items are never printed or committed.
                withheld = ["(GPQA: withheld)"]
                first_diff = {"doc_id": d, "lm_eval": withheld if "gpqa" in task else pa[:1],
                              "assay": withheld if "gpqa" in task else pb[:1]}
            if str(a[d].get("target")) == str(b[d].get("target")):
                same_target += 1
            la, lb = loglikelihoods(a[d]), loglikelihoods(b[d])
            if same_model and generation:
                # The same generated text (the raw responses, before any filter).
                comparable += 1
                same_choice += a[d].get("resps") == b[d].get("resps")
            elif same_model and la and lb and len(la) == len(lb):
                comparable += 1
                same_choice += la.index(max(la)) == lb.index(max(lb))
                deltas += [abs(x - y) for x, y in zip(la, lb)]
        rows.append({
            "task": task, "docs": len(common), "identical_prompts": same_prompt,
            "identical_targets": same_target,
            "same_choice": same_choice if comparable else None, "compared_choices": comparable,
            "mean_abs_logprob_delta": sum(deltas) / len(deltas) if deltas else None,
            "max_abs_logprob_delta": max(deltas) if deltas else None,
            "first_difference": first_diff,
        })
    print("| task | docs | identical prompts | identical targets | same chosen answer | mean |Δ logprob| |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "missing" in r:
            print(f"| {r['task']} | - | no {r['missing']} log | | | |")
            continue
        choice = "n/a" if r["same_choice"] is None else f"{r['same_choice']}/{r['compared_choices']}"
        delta = "n/a" if r["mean_abs_logprob_delta"] is None else f"{r['mean_abs_logprob_delta']:.4f}"
        print(f"| {r['task']} | {r['docs']} | {r['identical_prompts']}/{r['docs']} | "
              f"{r['identical_targets']}/{r['docs']} | {choice} | {delta} |")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
