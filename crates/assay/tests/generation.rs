//! End-to-end generation tests: the real binary, model and GSM8K/MATH files, short outputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

mod common;
use common::{data_dir, jsonl};

fn run_to(out: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.arg("run")
        .arg("--no-cache")
        .arg("--no-record")
        .arg("--data-dir")
        .arg(data_dir())
        .args(args)
        .arg("--log-samples")
        .arg("--output-path")
        .arg(out);
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn file(out: &Path, prefix: &str) -> PathBuf {
    let dir = out.join("gemma-3-270m-q4_k_m");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {}", dir.display()))
}

#[test]
fn gsm8k_reports_both_filters_with_timing() {
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_to(
        out.path(),
        &[
            "--tasks",
            "gsm8k",
            "--limit",
            "2",
            "--gen-kwargs",
            "max_gen_toks=24",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("strict-match") && stdout.contains("flexible-extract"),
        "{stdout}"
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(file(out.path(), "results_")).unwrap())
            .unwrap();
    let r = &results["results"]["gsm8k"];
    for key in [
        "exact_match,strict-match",
        "exact_match_stderr,strict-match",
        "exact_match,flexible-extract",
    ] {
        assert!(r.get(key).is_some(), "missing {key}: {r}");
    }
    assert_eq!(results["n-shot"]["gsm8k"], 5);
    // The backend used, the settings given (typed as lm-eval types them), the seeds in force.
    assert_eq!(results["config"]["model"], "llama.cpp");
    assert_eq!(
        results["config"]["gen_kwargs"],
        serde_json::json!({"max_gen_toks": 24})
    );
    assert_eq!(results["config"]["fewshot_seed"], 1234);
    assert_eq!(results["config"]["torch_seed"], 1234);
    // The request's generation settings as lm-eval writes them: the task's, with the override.
    let samples = jsonl(&file(out.path(), "samples_gsm8k"));
    assert_eq!(
        samples[0]["arguments"]["gen_args_0"]["arg_1"],
        serde_json::json!({
            "until": ["Question:", "</s>", "<|im_end|>"],
            "do_sample": false,
            "temperature": 0.0,
            "max_gen_toks": 24,
        })
    );
    assert_eq!(results["assay"]["seeds"]["generation"], 1234);
    let timing = &results["assay"]["generation_timing"]["gsm8k"];
    assert_eq!(timing["docs"], 2);
    assert!(timing["avg_time_per_doc"].as_f64().unwrap() > 0.0);
    let samples = jsonl(&file(out.path(), "samples_gsm8k"));
    assert_eq!(samples.len(), 4, "one line per document and filter");
    let filters: Vec<&str> = samples
        .iter()
        .map(|l| l["filter"].as_str().unwrap())
        .collect();
    assert_eq!(
        filters,
        vec![
            "strict-match",
            "flexible-extract",
            "strict-match",
            "flexible-extract"
        ]
    );
    // As lm-eval logs them: one filtered answer per request, in a list; the document hashed as
    // `json.dumps(doc, indent=2, ensure_ascii=False)` (this value is lm-eval 0.4.13's own for
    // GSM8K test document 0).
    assert_eq!(
        samples[0]["doc_hash"],
        "986c19252f3c7f6eaeff2229e9a5777f96a85c0ceea931a92d2289084dfd518c"
    );
    for l in &samples {
        let filtered = l["filtered_resps"].as_array().expect("a list");
        assert_eq!(filtered.len(), 1);
        assert!(filtered[0].is_string(), "{filtered:?}");
        assert!(l["gen_tokens"].as_u64().unwrap() <= 24);
        assert!(l["gen_time"].as_f64().unwrap() > 0.0);
        let prompt = l["arguments"]["gen_args_0"]["arg_0"].as_str().unwrap();
        assert_eq!(
            prompt.matches("Question:").count(),
            6,
            "5 examples and the question"
        );
        assert!(prompt.ends_with("\nAnswer:"));
    }
}

/// GSM8K's first document with 40 tokens gave "Janet's" with one thread and "Janet’s" with two
/// while the generation context used flash attention (its one-token decode splits the keys
/// among the threads).
#[test]
fn generations_do_not_depend_on_limit_or_threads() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let args = |limit: &'static str, threads: &'static str| {
        vec![
            "--tasks",
            "gsm8k",
            "--limit",
            limit,
            "--threads",
            threads,
            "--gen-kwargs",
            "max_gen_toks=40",
        ]
    };
    assert_eq!(run_to(a.path(), &args("1", "1")).0, 0);
    assert_eq!(run_to(b.path(), &args("2", "2")).0, 0);
    let first = |dir: &Path| jsonl(&file(dir, "samples_gsm8k"))[0]["resps"].clone();
    assert_eq!(first(a.path()), first(b.path()));
}

#[test]
fn chat_template_wraps_prompts_and_is_recorded() {
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_to(
        out.path(),
        &[
            "--tasks",
            "gsm8k",
            "--limit",
            "1",
            "--num-fewshot",
            "1",
            "--gen-kwargs",
            "max_gen_toks=8",
            "--apply-chat-template",
            "--system-instruction",
            "Answer briefly.",
            "--fewshot-as-multiturn",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(file(out.path(), "results_")).unwrap())
            .unwrap();
    assert_eq!(results["chat_template_sha"].as_str().unwrap().len(), 64);
    assert_eq!(results["system_instruction"], "Answer briefly.");
    assert_eq!(results["fewshot_as_multiturn"], true);
    let prompt = jsonl(&file(out.path(), "samples_gsm8k"))[0]["arguments"]["gen_args_0"]["arg_0"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt.starts_with("<bos><start_of_turn>user\nAnswer briefly."),
        "{prompt}"
    );
    assert_eq!(prompt.matches("<start_of_turn>user").count(), 2, "{prompt}");
    assert_eq!(
        prompt.matches("<start_of_turn>model").count(),
        2,
        "{prompt}"
    );
    assert!(prompt.ends_with("<start_of_turn>model\n"), "{prompt}");
}

#[test]
fn bad_generation_overrides_fail_before_loading_the_model() {
    let out = tempfile::tempdir().unwrap();
    for (kw, msg) in [
        ("max_gen_toks=0", "max_gen_toks must be at least 1"),
        ("temperature=-1", "temperature must be >= 0"),
        ("beams=4", "unknown key `beams`"),
    ] {
        let (code, _, stderr) = run_to(
            out.path(),
            &[
                "--tasks",
                "gsm8k",
                "--model",
                "/nonexistent.gguf",
                "--gen-kwargs",
                kw,
            ],
        );
        assert_ne!(code, 0);
        assert!(stderr.contains(msg), "{kw}: {stderr}");
    }
}

#[test]
fn parallel_generation_scores_every_document_in_order() {
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_to(
        out.path(),
        &[
            "--tasks",
            "gsm8k",
            "--limit",
            "5",
            "--parallel",
            "3",
            "--gen-kwargs",
            "max_gen_toks=8",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let samples = jsonl(&file(out.path(), "samples_gsm8k"));
    let ids: Vec<u64> = samples
        .iter()
        .filter(|s| s["filter"] == "strict-match")
        .map(|s| s["doc_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4]);
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(file(out.path(), "results_")).unwrap())
            .unwrap();
    assert_eq!(results["config"]["model_args"]["parallel"], 3);
    assert_eq!(results["n-samples"]["gsm8k"]["effective"], 5);
    let (code, _, stderr) = run_to(out.path(), &["--tasks", "gsm8k", "--parallel", "0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--parallel"), "{stderr}");
}

#[test]
fn humaneval_runs_each_completion_in_the_sandbox() {
    let out = tempfile::tempdir().unwrap();
    let task = [
        "--tasks",
        "humaneval",
        "--limit",
        "2",
        "--gen-kwargs",
        "max_gen_toks=24",
    ];
    let (code, stdout, stderr) = run_to(out.path(), &task);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("create_test") && stdout.contains("pass@1"),
        "{stdout}"
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(file(out.path(), "results_")).unwrap())
            .unwrap();
    let pass = results["results"]["humaneval"]["pass@1,create_test"]
        .as_f64()
        .unwrap();
    let samples = jsonl(&file(out.path(), "samples_humaneval"));
    assert_eq!(samples.len(), 2);
    let mut passed = 0.0;
    for s in &samples {
        let runs = s["execution"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{s}");
        let outcome = runs[0]["outcome"].as_str().unwrap();
        assert!(
            ["passed", "failed", "timed out", "killed"].contains(&outcome),
            "{s}"
        );
        assert_eq!(
            s["pass@1"].as_f64().unwrap(),
            f64::from(u8::from(outcome == "passed"))
        );
        passed += s["pass@1"].as_f64().unwrap();
    }
    assert_eq!(pass, passed / 2.0);
    // Without the sandbox only when asked, and with a warning.
    let unsafe_out = tempfile::tempdir().unwrap();
    let mut args = task.to_vec();
    args.push("--unsafe-no-sandbox");
    let (code, _, stderr) = run_to(unsafe_out.path(), &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("warning: --unsafe-no-sandbox"), "{stderr}");
}
