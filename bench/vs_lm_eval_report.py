"""Table and JSON for bench/vs_lm_eval.sh: speed, memory and per-item agreement.

Usage: python bench/vs_lm_eval_report.py WORK_DIR OUT.json LM_EVAL_VERSION

WORK_DIR holds rows.tsv (task, round, tool, seconds, peak RSS KB, docs; tool is lm-eval or
assay-<precision>) and each run's output folder (<tool>-<task>-<round>), with per-sample logs in
lm-eval's format from both tools.
"""

import glob
import json
import os
import platform
import statistics
import subprocess
import sys


def samples(folder):
    """{(doc_id, filter): record} from the one samples file under folder."""
    files = glob.glob(f"{folder}/**/samples_*.jsonl", recursive=True)
    if len(files) != 1:
        sys.exit(f"expected one samples file under {folder}, found {files}")
    out = {}
    for line in open(files[0]):
        d = json.loads(line)
        out[(d["doc_id"], d.get("filter", "none"))] = d
    return out


def answer(record):
    """The filtered answer of a generation document (logged in a one-element list; assay
    before the fix of issue 4 logged the bare string)."""
    v = record["filtered_resps"]
    return v[0] if isinstance(v, list) else v


def loglikelihoods(record):
    return [float(r[0][0]) if isinstance(r[0], list) else float(r[0]) for r in record["resps"]]


def agreement(task, work, tool):
    """Per-item agreement between `tool`'s and lm-eval's first-round answers."""
    a = samples(f"{work}/{tool}-{task}-1")
    l = samples(f"{work}/lm-eval-{task}-1")
    keys = sorted(k for k in a if k in l)
    if task == "gsm8k":
        out = {}
        for name in ("strict-match", "flexible-extract"):
            ks = [k for k in keys if k[1] == name]
            out[f"same_{name}_answer"] = sum(
                answer(a[k]) == answer(l[k]) for k in ks
            )
            out[f"same_{name}_exact_match"] = sum(
                a[k]["exact_match"] == l[k]["exact_match"] for k in ks
            )
        ks = [k for k in keys if k[1] == "strict-match"]
        text = lambda r: r["resps"][0][0]  # noqa: E731
        out["identical_generation"] = sum(text(a[k]) == text(l[k]) for k in ks)
        out["docs"] = len(ks)
        return out
    ks = [k for k in keys if k[1] == "none"]
    pick = lambda r: (lambda v: v.index(max(v)))(loglikelihoods(r))  # noqa: E731
    return {"same_choice": sum(pick(a[k]) == pick(l[k]) for k in ks), "docs": len(ks)}


def assay_tokens(work, tool, task, rnd):
    """Tokens assay ran through the model, and tokens it generated, from its results JSON."""
    files = glob.glob(f"{work}/{tool}-{task}-{rnd}/**/results_*.json", recursive=True)
    res = json.load(open(files[0]))["assay"]
    generated = sum(t.get("generated_tokens", 0) for t in (res.get("generation_timing") or {}).values())
    return res.get("tokens_processed", 0), generated


def machine():
    cpu = next(
        (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
        platform.processor(),
    )
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
    mem_kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "avx2": " avx2" in flags,
        "memory_gb": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
    }


def main():
    work, out_path, lm_eval_version = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = [l.rstrip("\n").split("\t") for l in open(f"{work}/rows.tsv")]
    tasks = list(dict.fromkeys(r[0] for r in rows))
    tools = [t for t in dict.fromkeys(r[2] for r in rows) if t != "lm-eval"]
    print("| task | docs | round | run | precision | s | docs/s | tokens/s | peak MB | lm-eval / this |")
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|")
    report = []
    for task in tasks:
        runs = {}
        for t, rnd, tool, secs, rss, docs in rows:
            if t == task:
                runs.setdefault(int(rnd), {})[tool] = (float(secs), int(rss), int(docs))
        ratios = {tool: [] for tool in tools}
        entries = []
        for rnd in sorted(runs):
            lsec, lrss, docs = runs[rnd]["lm-eval"]
            entry = {"round": rnd, "docs": docs, "lm_eval_seconds": lsec,
                     "lm_eval_peak_rss_kb": lrss, "assay": {}}
            for tool in tools:
                asec, arss, _ = runs[rnd][tool]
                processed, generated = assay_tokens(work, tool, task, rnd)
                tok = generated if generated else processed
                ratios[tool].append(lsec / asec)
                precision = tool.removeprefix("assay-").upper()
                print(f"| {task} | {docs} | {rnd} | assay | {precision} | {asec:.1f} | {docs / asec:.2f} "
                      f"| {tok / asec:.0f} | {arss // 1024} | {lsec / asec:.2f}x |")
                entry["assay"][precision] = {
                    "seconds": asec, "peak_rss_kb": arss, "tokens_processed": processed,
                    "generated_tokens": generated, "ratio": lsec / asec,
                }
            print(f"| {task} | {docs} | {rnd} | lm-eval hf | FP32 | {lsec:.1f} | {docs / lsec:.2f} "
                  f"| | {lrss // 1024} | |")
            entries.append(entry)
        report.append({
            "task": task, "rounds": entries,
            "median_ratio": {t.removeprefix("assay-").upper(): statistics.median(r)
                             for t, r in ratios.items()},
            "agreement": {t.removeprefix("assay-").upper(): agreement(task, work, t) for t in tools},
        })
    print()
    for r in report:
        for precision, ratio in r["median_ratio"].items():
            print(f"{r['task']}: lm-eval (hf fp32) / assay ({precision}) median {ratio:.2f}x; "
                  f"agreement {r['agreement'][precision]}")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    json.dump({
        "benchmark": "assay (per precision) vs lm-eval hf (fp32), same documents and prompts",
        "machine": machine(),
        "lm_eval_version": lm_eval_version,
        "assay_git": git.stdout.strip(),
        "tasks": report,
    }, open(out_path, "w"), indent=2)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
