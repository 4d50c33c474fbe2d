"""Feed assay's generations to lm-eval's own filter and exact-match code, document by document.

Usage: python bench/lm_eval_filter_check.py RESULTS.json SAMPLES.jsonl TASK [JSON_OUT]

Reads the task's filter_list and exact_match options from assay's results (`configs`), rebuilds
each pipeline with lm-eval's RegexFilter / TakeFirstFilter, scores with lm-eval's
exact_match_hf_evaluate, and compares the extracted answer and the score with what assay logged.
Needs lm-eval installed (pip install lm-eval).
"""

import collections
import json
import sys

from lm_eval.api.metrics import exact_match_hf_evaluate
from lm_eval.filters.extraction import RegexFilter
from lm_eval.filters.selection import TakeFirstFilter


def build(pipeline):
    steps = []
    for step in pipeline["filter"]:
        if step["function"] == "regex":
            kwargs = {"regex_pattern": step["regex_pattern"]}
            if "group_select" in step:
                kwargs["group_select"] = step["group_select"]
            if "fallback" in step:
                kwargs["fallback"] = step["fallback"]
            steps.append(RegexFilter(**kwargs))
        elif step["function"] == "take_first":
            steps.append(TakeFirstFilter())
        else:
            raise SystemExit(f"filter function {step['function']} is not checked by this script")
    return steps


def main():
    results_path, samples_path, task = sys.argv[1:4]
    out_path = sys.argv[4] if len(sys.argv) > 4 else None
    config = json.load(open(results_path))["configs"][task]
    em = next(m for m in config["metric_list"] if m["metric"] == "exact_match")
    options = {k: em[k] for k in ("regexes_to_ignore", "ignore_case", "ignore_punctuation") if k in em}
    lines = [json.loads(l) for l in open(samples_path)]
    by_filter = collections.defaultdict(list)
    for line in lines:
        by_filter[line["filter"]].append(line)
    report = {"task": task, "filters": {}}
    for pipeline in config["filter_list"]:
        name = pipeline["name"]
        docs = by_filter[name]
        resps = [d["resps"][0] for d in docs]
        values = resps
        for step in build(pipeline):
            values = list(step.apply(values, [d["doc"] for d in docs]))
        same_answer = same_score = 0
        for doc, theirs in zip(docs, values):
            theirs_score = exact_match_hf_evaluate([theirs], [doc["target"]], **options)["exact_match"]
            same_answer += theirs == doc["filtered_resps"][0]
            same_score += float(theirs_score) == doc["exact_match"]
        n = len(docs)
        report["filters"][name] = {
            "documents": n,
            "same_extracted_answer": same_answer,
            "same_exact_match": same_score,
            "assay_exact_match": sum(d["exact_match"] for d in docs) / n,
        }
        print(f"| {task} | {name} | {n} | {same_answer}/{n} | {same_score}/{n} | {report['filters'][name]['assay_exact_match']:.4f} |")
    if out_path:
        json.dump(report, open(out_path, "w"), indent=2)


if __name__ == "__main__":
    print("| task | filter | docs | same extracted answer | same exact_match | assay exact_match |")
    print("|---|---|---:|---:|---:|---:|")
    main()
