"""Checks that a dataset written by `assay grade` loads with Hugging Face `datasets` and that
every field reads back unchanged.

    python crates/assay/tests/hf_check.py DATASET_DIR COMPLETIONS.jsonl [results.json]

Needs `datasets` (scripts/setup.sh installs it in a venv under the model cache:
~/.cache/assay/test-python); tests/validation.rs runs it on every `assay grade` dataset it
writes. Prints a JSON summary; exits 1 when any field does not read back.
"""
import json
import sys

import datasets

ds_dir, completions = sys.argv[1], sys.argv[2]
ds = datasets.load_from_disk(ds_dir)
source = {}
for line in open(completions):
    c = json.loads(line)
    source[(c["prompt_id"], c["generation_idx"])] = c
expected_types = {
    "id": "string", "prompt_id": "string", "prompt": "string", "completion": "string",
    "generation_idx": "int64", "metadata": "string",
}
problems = []
for name, dtype in expected_types.items():
    if ds.features[name].dtype != dtype:
        problems.append(f"{name}: {ds.features[name].dtype}")
for row in ds:
    c = source.get((row["prompt_id"], row["generation_idx"]))
    if c is None:
        problems.append(f"{row['id']}: not in {completions}")
        continue
    for key in ["prompt", "completion"]:
        if row[key] != c[key]:
            problems.append(f"{row['id']}: {key} differs")
    if json.loads(row["metadata"]) != c["metadata"]:
        problems.append(f"{row['id']}: metadata differs")
    if row["id"] != f"{c['prompt_id']}-{c['generation_idx']}":
        problems.append(f"{row['id']}: id")
    n = len(row["input_ids"])
    masked = sum(1 for x in row["labels"] if x == -100)
    if len(row["labels"]) != n or row["attention_mask"] != [1] * n or not 0 < masked < n:
        problems.append(f"{row['id']}: labels/attention_mask")
    if row["labels"][masked:] != row["input_ids"][masked:]:
        problems.append(f"{row['id']}: labels are not the completion's input_ids")
summary = {"rows": len(ds), "fields": list(ds.features), "problems": problems}
print(json.dumps(summary, indent=2))
if len(sys.argv) > 3:
    json.dump(summary, open(sys.argv[3], "w"), indent=2)
sys.exit(1 if problems else 0)
