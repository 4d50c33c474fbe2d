"""Compares two runs' per-sample logs task by task (see hub_builtin_check.sh): the requests'
texts of each document (as a set) and its gold request (multiple choice) or target; MGSM's
targets without thousands separators, DROP's without repeats, MATH subjects' targets counted
apart (the Hub has no `answer` column: the reference there is the solution's last \\boxed{})."""
import glob, json, os, re, sys

hub_dir, folder_dir, results_file, hub_s, folder_s, out = sys.argv[1:7]
results = json.load(open(results_file))


def samples(root, task):
    files = [f for f in glob.glob(f"{root}/**/samples_{task}_*.jsonl", recursive=True)
             if re.match(rf"samples_{re.escape(task)}_\d", os.path.basename(f))]
    docs = {}
    for line in open(files[0]):
        s = json.loads(line)
        docs[s["doc_id"]] = s
    return docs


def key(task, s):
    requests = [sorted(v for v in a.values() if isinstance(v, str)) for a in s["arguments"].values()]
    target = s["target"]
    if len(requests) > 1:
        def gold(t):
            if isinstance(t, list):
                return [gold(x) for x in t]
            if isinstance(t, str) and t.startswith("["):
                return gold(json.loads(t))
            if isinstance(t, int) or (isinstance(t, str) and t.isdigit()):
                return requests[int(t)]
            return [r for r in requests if any(x.strip() == str(t).strip() for x in r)][0]
        target = gold(target)
    elif task.startswith("mgsm"):
        target = str(target).replace(",", "")
    elif task == "drop" and isinstance(target, list):
        target = list(dict.fromkeys(target))
    prompt = sorted(requests)
    return prompt, (None if task.startswith("math_") else target), s["target"]


rows = []
for task in sorted(results["results"]):
    origin = results.get("assay", {}).get("datasets", {}).get(task)
    if origin is None:
        continue
    hub, folder = samples(hub_dir, task), samples(folder_dir, task)
    same_prompt = same_target = same_raw = 0
    for doc_id, s in hub.items():
        a, b = key(task, s), key(task, folder[doc_id])
        same_prompt += a[0] == b[0]
        same_target += a[1] == b[1]
        same_raw += a[2] == b[2]
    rows.append({"task": task, "repo": origin["repo"], "config": origin.get("config"),
                 "documents": len(hub), "folder_documents": len(folder),
                 "same_prompts": same_prompt, "same_targets": same_target,
                 "same_targets_unnormalised": same_raw})

print(f"{'task':40} {'Hub repo':28} {'docs':>6} {'prompts':>8} {'targets':>8} {'raw':>6}")
for r in rows:
    print(f"{r['task']:40} {r['repo']:28} {r['documents']:>6} {r['same_prompts']:>8} {r['same_targets']:>8} {r['same_targets_unnormalised']:>6}")
total = sum(r["documents"] for r in rows)
print(f"{len(rows)} tasks, {total} documents; prompts equal on {sum(r['same_prompts'] for r in rows)}; "
      f"wall time: Hub {float(hub_s):.1f} s (downloads included), folder {float(folder_s):.1f} s")
json.dump({"tasks": rows, "hub_seconds": float(hub_s), "folder_seconds": float(folder_s)},
          open(out, "w"), indent=1)
