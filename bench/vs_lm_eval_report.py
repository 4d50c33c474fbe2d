"""Table and JSON for bench/vs_lm_eval.sh: speed, memory and per-item agreement.

Usage: python bench/vs_lm_eval_report.py WORK_DIR OUT.json LM_EVAL_VERSION

WORK_DIR holds rows.tsv (task, round, tool, seconds, peak RSS KB, docs) and each run's output
folder (<tool>-<task>-<round>), with per-sample logs in lm-eval's format from both tools.
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


def agreement(task, work):
    """Per-item agreement between the tools' first-round answers."""
    a = samples(f"{work}/assay-{task}-1")
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


def assay_tokens(work, task, rnd):
    """Tokens assay ran through the model, and tokens it generated, from its results JSON."""
    files = glob.glob(f"{work}/assay-{task}-{rnd}/**/results_*.json", recursive=True)
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
    print("| task | docs | round | assay s | assay docs/s | assay tokens/s | assay peak MB "
          "| lm-eval s | lm-eval docs/s | lm-eval peak MB | lm-eval / assay |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    report = []
    for task in tasks:
        runs = {}
        for t, rnd, tool, secs, rss, docs in rows:
            if t == task:
                runs.setdefault(int(rnd), {})[tool] = (float(secs), int(rss), int(docs))
        ratios = []
        entries = []
        for rnd in sorted(runs):
            (asec, arss, docs), (lsec, lrss, _) = runs[rnd]["assay"], runs[rnd]["lm-eval"]
            processed, generated = assay_tokens(work, task, rnd)
            tok = generated if generated else processed
            ratios.append(lsec / asec)
            print(f"| {task} | {docs} | {rnd} | {asec:.1f} | {docs / asec:.2f} | {tok / asec:.0f} "
                  f"| {arss // 1024} | {lsec:.1f} | {docs / lsec:.2f} | {lrss // 1024} "
                  f"| {lsec / asec:.2f}x |")
            entries.append({
                "round": rnd, "docs": docs,
                "assay_seconds": asec, "assay_peak_rss_kb": arss,
                "assay_tokens_processed": processed, "assay_generated_tokens": generated,
                "lm_eval_seconds": lsec, "lm_eval_peak_rss_kb": lrss, "ratio": lsec / asec,
            })
        agree = agreement(task, work)
        report.append({
            "task": task, "rounds": entries, "median_ratio": statistics.median(ratios),
            "agreement": agree,
        })
    print()
    for r in report:
        print(f"{r['task']}: lm-eval / assay median {r['median_ratio']:.2f}x; agreement {r['agreement']}")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    json.dump({
        "benchmark": "assay vs lm-eval hf (fp32), same documents and prompts",
        "machine": machine(),
        "lm_eval_version": lm_eval_version,
        "assay_git": git.stdout.strip(),
        "tasks": report,
    }, open(out_path, "w"), indent=2)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
