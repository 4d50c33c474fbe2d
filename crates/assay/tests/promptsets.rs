//! End-to-end tests of `assay generate` on the real model: prompt sets through several models
//! and formats, bad inputs reported while the rest runs, resuming after a cut.

use std::path::Path;

mod common;
use common::{assay_with, data_dir, jsonl, Out};

fn assay(args: &[&str]) -> Out {
    assay_with(args, &[])
}

fn write_inputs(dir: &Path) {
    std::fs::write(
        dir.join("prompts.jsonl"),
        concat!(
            "{\"seed_id\": \"P01_PRIVACY_WIFI\", \"prompt\": \"Is it fine to use my neighbour's open wifi every day?\"}\n",
            "{\"seed_id\": \"P02_IDENTITY_LOCKOUT\", \"prompt\": \"How do I prove who I am after losing my phone and email?\"}\n",
            "{\"seed_id\": \"P01_PRIVACY_WIFI\", \"prompt\": \"A second prompt under the same id.\"}\n",
            "{\"seed_id\": \"P03_EMPTY\", \"prompt\": \"\"}\n",
            "{\"seed_id\": \"P04_MESH\", \"prompt\": \"Explain a mesh network in one sentence.\"}\n",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("formats.yaml"),
        "qa:\n  system: \"\"\n  before: \"Question: \"\n  after: \"\\nAnswer briefly.\"\nbroken:\n  system: \"Be kind.\"\n  before: \"\"\n",
    )
    .unwrap();
}

#[test]
fn generate_runs_models_and_formats_reports_bad_input_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let out = dir.path().join("validation");
    let generate = || {
        assay(&[
            "generate",
            "--model",
            "base=default",
            "--model",
            "lem=default",
            "--fine-tuned",
            "lem",
            "--prompts",
            dir.path().join("prompts.jsonl").to_str().unwrap(),
            "--format-file",
            dir.path().join("formats.yaml").to_str().unwrap(),
            "--formats",
            "naked,qa,broken",
            "--max-new-tokens",
            "8",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let r = generate();
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Bad input is reported with file and line; the rest runs.
    for expected in [
        "prompts.jsonl:3: seed_id `P01_PRIVACY_WIFI` is already used on line 1",
        "prompts.jsonl:4: the prompt is empty",
        "formats.yaml:5: format `broken`: missing field `after`",
    ] {
        assert!(r.stderr.contains(expected), "{expected}: {}", r.stderr);
    }
    assert!(
        r.stdout
            .contains("12 responses written (0 refusals) for 2 models x 2 formats x 3 prompts"),
        "{}",
        r.stdout
    );
    let base = jsonl(&out.join("data/baseline/base/qa.jsonl"));
    let lem = jsonl(&out.join("data/fine-tuned/lem/qa.jsonl"));
    assert_eq!(base.len(), 3);
    let ids: Vec<&str> = base
        .iter()
        .map(|r| r["seed_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["P01_PRIVACY_WIFI", "P02_IDENTITY_LOCKOUT", "P04_MESH"]
    );
    let r0 = &base[0];
    assert_eq!(r0["model"], "base");
    assert_eq!(r0["role"], "baseline");
    assert_eq!(lem[0]["role"], "fine-tuned");
    assert_eq!(r0["format"], "qa");
    assert_eq!(
        r0["prompt"],
        "Is it fine to use my neighbour's open wifi every day?"
    );
    let response = r0["response"].as_str().unwrap();
    assert_eq!(r0["chars"], response.chars().count());
    assert!(r0["tokens"].as_u64().unwrap() <= 8);
    let (tokens, time) = (
        r0["tokens"].as_f64().unwrap(),
        r0["gen_time"].as_f64().unwrap(),
    );
    assert!((r0["tokens_per_s"].as_f64().unwrap() - tokens / time).abs() < 1e-6);
    assert!(r0["is_refusal"].is_boolean() && r0.get("reasoning").is_some());
    // The same weights under two labels, greedy, one prompt at a time: the same answers.
    for (b, l) in base.iter().zip(&lem) {
        assert_eq!(b["response"], l["response"]);
    }
    // The qa format wraps the prompt differently from naked: the answers are computed anew.
    assert!(out.join("data/baseline/base/naked.jsonl").is_file());
    assert!(!out.join("data/baseline/base/broken.jsonl").exists());
    let log = std::fs::read_to_string(out.join("logs/lem.log")).unwrap();
    assert!(
        log.contains("model loaded in") && log.contains("[qa] P04_MESH: "),
        "{log}"
    );
    assert!(log.contains("warning: skipped"), "{log}");
    // The folder is indexed: every output file, and per model and format the mean characters,
    // tokens/s and refusal rate of its records.
    let mapping = std::fs::read_to_string(out.join("DATA_MAPPING.md")).unwrap();
    assert!(
        mapping
            .contains("| data/fine-tuned/lem/qa.jsonl | 3 | JSONL (seed_id, model, role, format,")
            && mapping.contains("| Prompt/response outputs | lem (fine-tuned) |")
            && mapping.contains("| logs/base.log |"),
        "{mapping}"
    );
    let chars: f64 = base
        .iter()
        .map(|r| r["chars"].as_f64().unwrap())
        .sum::<f64>()
        / 3.0;
    let tokens: f64 = base.iter().map(|r| r["tokens"].as_f64().unwrap()).sum();
    let secs: f64 = base.iter().map(|r| r["gen_time"].as_f64().unwrap()).sum();
    let row = format!(
        "| base | qa | 3 | {chars:.0} | 0 | {:.1} | 0.0% |",
        tokens / secs
    );
    assert!(mapping.contains(&row), "{row}\n{mapping}");
    assert!(r.stdout.contains("folder indexed -> "), "{}", r.stdout);

    // A run killed while writing: the last line is cut. The re-run drops it and generates only
    // that response.
    let path = out.join("data/fine-tuned/lem/qa.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.len() - text.lines().last().unwrap().len() / 2 - 1;
    std::fs::write(&path, &text[..cut]).unwrap();
    let again = generate();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("1 responses written"),
        "{}",
        again.stdout
    );
    let resumed = jsonl(&path);
    assert_eq!(resumed.len(), 3);
    assert_eq!(resumed[2]["seed_id"], "P04_MESH");
    assert_eq!(resumed[2]["response"], lem[2]["response"]);
}

#[test]
fn generate_refuses_unusable_arguments() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let prompts = dir.path().join("prompts.jsonl");
    let out = dir.path().join("o");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--prompts",
            prompts.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        assay(&args)
    };
    for (extra, message) in [
        (&["--formats", "nope"][..], "no prompt format `nope`"),
        (
            &["--fine-tuned", "lem"][..],
            "--fine-tuned lem: no model has that label",
        ),
        (
            &["--model", "a=default", "--model", "a=default"][..],
            "the label `a` is used twice",
        ),
        (&["--max-new-tokens", "0"][..], "--max-new-tokens 0"),
    ] {
        let r = run(extra);
        assert!(
            r.code != 0 && r.stderr.contains(message),
            "{extra:?}: {}",
            r.stderr
        );
    }
    std::fs::write(&prompts, "{\"prompt\": \" \"}\n").unwrap();
    let r = run(&[]);
    assert!(
        r.code != 0 && r.stderr.contains("no usable prompts"),
        "{}",
        r.stderr
    );
    // Other commands still take one model.
    let data = data_dir();
    let r = assay(&[
        "run",
        "--tasks",
        "arc_easy",
        "--data-dir",
        data.to_str().unwrap(),
        "--model",
        "a.gguf",
        "--model",
        "b.gguf",
        "--no-record",
    ]);
    assert!(
        r.code != 0 && r.stderr.contains("--model is given 2 times"),
        "{}",
        r.stderr
    );
}

#[test]
fn index_lists_every_file_and_reports_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("folder");
    std::fs::create_dir_all(root.join("benchmarks")).unwrap();
    std::fs::write(
        root.join("base-1b-unsigned.jsonl"),
        "{\"seed_id\": \"P01\", \"prompt\": \"q\", \"response\": \"an answer\", \"gen_time\": 1.5}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("benchmarks/arith-lem.json"),
        r#"{"label": "LEM", "accuracy": 0.0, "correct": 0, "total": 1, "results": [{"question": "1+2", "gold": "3", "predicted": "4", "correct": false}]}"#,
    )
    .unwrap();
    std::fs::write(root.join("bad.json"), "{\"results\": [1,").unwrap();
    std::fs::write(root.join("weights.bin"), [0u8, 1, 2]).unwrap();
    std::os::unix::fs::symlink(root.join("gone.jsonl"), root.join("link.jsonl")).unwrap();
    let r = assay(&["index", root.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("bad.json: bad.json:1: not JSON"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("link.jsonl: No such file"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("5 files indexed"), "{}", r.stdout);
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("data_mapping.json")).unwrap())
            .unwrap();
    let file = |p: &str| {
        index["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("{p}: {index}"))
            .clone()
    };
    let outputs = file("base-1b-unsigned.jsonl");
    assert_eq!(outputs["category"], "Prompt/response outputs");
    assert_eq!(outputs["model"], "base-1b");
    assert_eq!(outputs["model_source"], "path");
    assert_eq!(file("benchmarks/arith-lem.json")["model"], "LEM");
    assert_eq!(file("weights.bin")["category"], "Unknown");
    assert_eq!(file("bad.json")["category"], "Unreadable");
    let mapping = std::fs::read_to_string(root.join("DATA_MAPPING.md")).unwrap();
    assert!(
        mapping.contains("## Unreadable or unknown files"),
        "{mapping}"
    );
    // Indexing again does not index the index.
    let again = assay(&["index", root.to_str().unwrap()]);
    assert!(again.stdout.contains("5 files indexed"), "{}", again.stdout);
    let missing = assay(&["index", dir.path().join("nope").to_str().unwrap()]);
    assert!(
        missing.code != 0 && missing.stderr.contains("not a folder"),
        "{}",
        missing.stderr
    );
}
