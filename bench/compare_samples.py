#!/usr/bin/env python3
"""Compares two assay per-sample logs of the same task and documents, request by request.

Usage: compare_samples.py A.jsonl B.jsonl
Prints one JSON object: documents, requests, how many answers are bit-identical, the
|logprob difference| distribution (log-likelihood tasks), how many documents pick the same
choice (argmax of the logprobs), and how many generated texts are equal (generation tasks).
"""
import json
import statistics
import sys


def load(path):
    docs = {}
    with open(path) as f:
        for line in f:
            s = json.loads(line)
            # Generation tasks log a line per filter; the responses are the same on each.
            docs.setdefault(s["doc_id"], s["resps"])
    return docs


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    common = sorted(set(a) & set(b))
    diffs, identical, requests, same_choice, same_text, texts = [], 0, 0, 0, 0, 0
    for d in common:
        ra, rb = a[d], b[d]
        if ra == rb:
            identical += len(ra)
        requests += len(ra)
        if ra and isinstance(ra[0][0], list):
            la = [r[0][0] for r in ra]
            lb = [r[0][0] for r in rb]
            diffs += [abs(x - y) for x, y in zip(la, lb)]
            same_choice += la.index(max(la)) == lb.index(max(lb))
        else:
            for x, y in zip(ra, rb):
                texts += len(x)
                same_text += sum(p == q for p, q in zip(x, y))
    out = {"documents": len(common), "requests": requests, "identical_answers": identical}
    if diffs:
        diffs.sort()
        q = lambda p: diffs[min(len(diffs) - 1, int(p * len(diffs)))]
        out.update(
            same_choice=same_choice,
            abs_logprob_diff={
                "mean": statistics.fmean(diffs),
                "median": statistics.median(diffs),
                "p90": q(0.9),
                "max": diffs[-1],
            },
        )
    if texts:
        out.update(generated_texts=texts, same_text=same_text)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
