//! End-to-end tests: the real `assay` binary on the real default model and the real benchmark
//! files in ../shared/data, with small limits.

mod common;
use common::data_dir;

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn assay() -> Command {
    assay_on(&data_dir())
}

fn assay_on(data: &Path) -> Command {
    let model = assay_dirs::default_model_path();
    assert!(
        model.exists(),
        "{} missing: run scripts/setup.sh",
        model.display()
    );
    let mut cmd = Command::cargo_bin("assay").unwrap();
    // Every test computes its answers: none may come from an earlier run's cache.
    cmd.arg("run")
        .arg("--no-cache")
        .arg("--no-record")
        .arg("--data-dir")
        .arg(data);
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn only_file(dir: &Path, prefix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "{prefix} in {}: {found:?}", dir.display());
    found.pop().unwrap()
}

fn samples(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn model_dir(out: &Path) -> PathBuf {
    out.join("gemma-3-270m-q4_k_m")
}

/// Every key of `reference` is in `ours` with a value of the same JSON type (recursively for
/// objects whose keys are fixed names, not task names).
fn same_shape(reference: &Value, ours: &Value, path: &str) {
    match (reference, ours) {
        (Value::Object(r), Value::Object(o)) => {
            for (k, rv) in r {
                let ov = o.get(k).unwrap_or_else(|| panic!("missing key {path}.{k}"));
                same_shape(rv, ov, &format!("{path}.{k}"));
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Array(r), Value::Array(o)) if !r.is_empty() && !o.is_empty() => {
            same_shape(&r[0], &o[0], &format!("{path}[0]"))
        }
        (r, o) => assert_eq!(
            std::mem::discriminant(r),
            std::mem::discriminant(o),
            "{path}: {r} vs {o}"
        ),
    }
}

#[test]
fn run_writes_lm_eval_results_and_samples() {
    let out = tempfile::tempdir().unwrap();
    let r = run(assay()
        .args([
            "--tasks",
            "hellaswag,arc_easy",
            "--limit",
            "4",
            "--log-samples",
            "--output-path",
        ])
        .arg(out.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("|hellaswag"), "{}", r.stdout);
    assert!(r.stdout.contains("acc_norm"));
    let dir = model_dir(out.path());
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(only_file(&dir, "results_")).unwrap())
            .unwrap();

    // The same keys and value types as a real lm-eval 0.4 results file.
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir().join("../reference/lm_eval_results_example.json"))
            .unwrap(),
    )
    .unwrap();
    let rtask = "hellaswag_shared";
    for key in reference.as_object().unwrap().keys() {
        assert!(
            results.get(key).is_some(),
            "results lack top-level key {key}"
        );
    }
    same_shape(
        &reference["results"][rtask],
        &results["results"]["hellaswag"],
        "results",
    );
    same_shape(
        &reference["n-samples"][rtask],
        &results["n-samples"]["hellaswag"],
        "n-samples",
    );
    same_shape(
        &reference["higher_is_better"][rtask],
        &results["higher_is_better"]["hellaswag"],
        "hib",
    );
    same_shape(&reference["config"], &results["config"], "config");
    for key in [
        "task",
        "doc_to_text",
        "doc_to_target",
        "doc_to_choice",
        "output_type",
        "metric_list",
        "metadata",
        "num_fewshot",
    ] {
        assert!(
            results["configs"]["hellaswag"].get(key).is_some(),
            "configs lack {key}"
        );
    }
    assert_eq!(results["n-samples"]["hellaswag"]["effective"], 4);
    assert_eq!(results["n-samples"]["hellaswag"]["original"], 10042);
    let acc = results["results"]["arc_easy"]["acc,none"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(results["assay"]["backend"]["quantization"], "Q4_K_M");
    assert_eq!(
        results["assay"]["backend"]["model_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // Per-sample lines have the keys and value types of a real lm-eval 0.4.13 log of the same
    // task on the same data (hf fp32), and the same documents, prompts, targets and hashes.
    let reference = samples(&data_dir().join("../reference/lm_eval_samples_example.jsonl"));
    let ours = samples(&only_file(&dir, "samples_hellaswag"));
    assert_eq!(ours.len(), 4);
    for (r, o) in reference.iter().zip(&ours) {
        same_shape(r, o, "sample");
        for key in [
            "doc_id",
            "doc",
            "target",
            "arguments",
            "filter",
            "metrics",
            "doc_hash",
            "prompt_hash",
            "target_hash",
        ] {
            assert_eq!(r[key], o[key], "sample {}: {key}", r["doc_id"]);
        }
        let resps = o["resps"].as_array().unwrap();
        assert_eq!(resps.len(), r["resps"].as_array().unwrap().len());
        for pair in &o["filtered_resps"].as_array().unwrap()[..] {
            assert!(pair[0].as_str().unwrap().parse::<f64>().unwrap() < 0.0);
            assert!(["True", "False"].contains(&pair[1].as_str().unwrap()));
        }
    }

    // Per-sample lines agree with the aggregate.
    let lines = samples(&only_file(&dir, "samples_arc_easy"));
    assert_eq!(lines.len(), 4);
    let mean: f64 = lines
        .iter()
        .map(|l| l["acc"].as_f64().unwrap())
        .sum::<f64>()
        / 4.0;
    assert!((mean - acc).abs() < 1e-12);
    assert_eq!(lines[0]["arguments"].as_object().unwrap().len(), 4);
    assert!(lines[0]["arguments"]["gen_args_0"]["arg_0"]
        .as_str()
        .unwrap()
        .starts_with("Question:"));
}

/// Per-document scores of a run, keyed by (task, doc_id), as exact text.
fn scores(dir: &Path) -> Vec<((String, u64), String)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(rest) = name.strip_prefix("samples_") {
            let task = rest.rsplit_once('_').unwrap().0.to_string();
            for line in samples(&path) {
                all.push((
                    (task.clone(), line["doc_id"].as_u64().unwrap()),
                    line["resps"].to_string(),
                ));
            }
        }
    }
    all.sort();
    all
}

#[test]
fn scores_do_not_depend_on_limit_order_or_threads() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ra = run(assay()
        .args([
            "--tasks",
            "arc_challenge,winogrande",
            "--limit",
            "3",
            "--threads",
            "1",
            "--log-samples",
            "--output-path",
        ])
        .arg(a.path()));
    assert_eq!(ra.code, 0, "{}", ra.stderr);
    let rb = run(assay()
        .args([
            "--tasks",
            "winogrande,arc_challenge",
            "--limit",
            "5",
            "--threads",
            "2",
            "--log-samples",
            "--output-path",
        ])
        .arg(b.path()));
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    let sa = scores(&model_dir(a.path()));
    let sb: Vec<_> = scores(&model_dir(b.path()))
        .into_iter()
        .filter(|((_, id), _)| *id < 3)
        .collect();
    assert_eq!(sa.len(), 6);
    assert_eq!(sa, sb, "per-document scores must be bit-identical");
}

#[test]
fn mmlu_groups_are_size_weighted_and_truncation_is_counted() {
    let out = tempfile::tempdir().unwrap();
    let r = run(assay()
        .args([
            "--tasks",
            "mmlu_social_sciences",
            "--limit",
            "2",
            "--num-fewshot",
            "1",
            "--ctx-size",
            "64",
            "--output-path",
        ])
        .arg(out.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("|Groups"), "{}", r.stdout);
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(only_file(&model_dir(out.path()), "results_")).unwrap(),
    )
    .unwrap();
    let group = &results["groups"]["mmlu_social_sciences"];
    assert_eq!(group["sample_len"], 24);
    let members = results["group_subtasks"]["mmlu_social_sciences"]
        .as_array()
        .unwrap();
    assert_eq!(members.len(), 12);
    let mean: f64 = members
        .iter()
        .map(|t| {
            results["results"][t.as_str().unwrap()]["acc,none"]
                .as_f64()
                .unwrap()
        })
        .sum::<f64>()
        / 12.0;
    assert!((group["acc,none"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert_eq!(results["n-shot"]["mmlu_econometrics"], 1);
    // A 256-token window cannot hold some 1-shot prompts: they are cut and counted.
    let truncated: u64 = results["assay"]["truncated_requests"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(truncated > 0);
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("cut from the left"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_default_window_is_the_trained_context() {
    // One document of ~3,000 tokens: lm-eval's hf model (max_length 32768 for this model)
    // scores it whole; so does assay by default, while a 2048-token window cuts it.
    let tasks = tempfile::tempdir().unwrap();
    std::fs::write(
        tasks.path().join("long.yaml"),
        "task: long_question\ndataset_path: gsm8k/test.jsonl\ntest_split: test\noutput_type: loglikelihood\ndoc_to_text: \"{% for i in range(60) %}{{question}} {% endfor %}Answer:\"\ndoc_to_target: \" yes\"\n",
    )
    .unwrap();
    let truncated = |extra: &[&str]| {
        let out = tempfile::tempdir().unwrap();
        let r = run(assay()
            .args(["--tasks", "long_question", "--limit", "1"])
            .args(extra)
            .arg("--include-path")
            .arg(tasks.path())
            .arg("--output-path")
            .arg(out.path()));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let results: Value = serde_json::from_str(
            &std::fs::read_to_string(only_file(&model_dir(out.path()), "results_")).unwrap(),
        )
        .unwrap();
        let backend = &results["assay"]["backend"];
        assert_eq!(results["max_length"], backend["ctx_size"]);
        (
            results["assay"]["truncated_requests"]["long_question"].clone(),
            backend["ctx_size"].as_u64().unwrap(),
            r.stderr,
        )
    };
    let (cut, window, stderr) = truncated(&[]);
    // The trained context (32768) where half the available memory holds its KV caches.
    assert!(
        (4096..=32_768).contains(&window) && window % 256 == 0,
        "{window}"
    );
    assert_eq!(cut, 0, "{stderr}");
    let (cut, window, stderr) = truncated(&["--ctx-size", "2048"]);
    assert_eq!((cut, window), (Value::from(1), 2048));
    assert!(stderr.contains("trained for 32768 tokens"), "{stderr}");
}

#[test]
fn user_tasks_from_include_path_including_rolling_perplexity() {
    let tasks = tempfile::tempdir().unwrap();
    std::fs::write(
        tasks.path().join("gsm8k_ppl.yaml"),
        "task: gsm8k_question_ppl\ndataset_path: gsm8k/test.jsonl\ntest_split: test\noutput_type: loglikelihood_rolling\ndoc_to_target: question\n",
    )
    .unwrap();
    let r = run(assay()
        .args([
            "--tasks",
            "gsm8k_question_ppl",
            "--limit",
            "3",
            "--include-path",
        ])
        .arg(tasks.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for metric in ["word_perplexity", "byte_perplexity", "bits_per_byte"] {
        assert!(r.stdout.contains(metric), "{}", r.stdout);
    }
}

#[test]
fn bad_input_gets_clear_errors_and_nonzero_exit() {
    let r = run(assay().args(["--tasks", "helaswag", "--limit", "1"]));
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("unknown task `helaswag`; did you mean hellaswag?"),
        "{}",
        r.stderr
    );

    let tasks = tempfile::tempdir().unwrap();
    std::fs::write(
        tasks.path().join("bad.yaml"),
        "task: bad\ndataset_path: x.jsonl\nnum_fewshot: [\n",
    )
    .unwrap();
    let r = run(assay()
        .args(["--tasks", "bad"])
        .arg("--include-path")
        .arg(tasks.path()));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("bad.yaml: line"), "{}", r.stderr);

    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("hellaswag")).unwrap();
    std::fs::write(
        data.path().join("hellaswag/validation.jsonl"),
        "{\"query\": \"a\", \"choices\": [\"b\"], \"gold\": 0}\n{oops\n",
    )
    .unwrap();
    let r = run(assay_on(data.path()).args(["--tasks", "hellaswag"]));
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("validation.jsonl:2: invalid JSON"),
        "{}",
        r.stderr
    );

    let r = run(assay().args(["--tasks", "hellaswag", "--model", "/nonexistent/model.gguf"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("model file not found"), "{}", r.stderr);

    let files = tempfile::tempdir().unwrap();
    let not_gguf = files.path().join("weights.gguf");
    std::fs::write(&not_gguf, b"PK\x03\x04 this is a zip").unwrap();
    let r = run(assay()
        .args(["--tasks", "hellaswag"])
        .arg("--model")
        .arg(&not_gguf));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not a GGUF model"), "{}", r.stderr);

    let truncated = files.path().join("truncated.gguf");
    let bytes = std::fs::read(assay_dirs::default_model_path()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let r = run(assay()
        .args(["--tasks", "hellaswag", "--limit", "1"])
        .arg("--model")
        .arg(&truncated));
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("llama.cpp could not load"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"));
}

#[test]
fn ctrl_c_keeps_finished_samples_valid() {
    let out = tempfile::tempdir().unwrap();
    let child = assay()
        .args([
            "--tasks",
            "hellaswag",
            "--limit",
            "200",
            "--log-samples",
            "--output-path",
        ])
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = model_dir(out.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let lines = std::fs::read_dir(&dir)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .lines()
                    .count()
            })
            .unwrap_or(0);
        if lines >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no samples written");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let lines = samples(&only_file(&dir, "samples_hellaswag"));
    assert!(lines.len() >= 2 && lines.len() < 200, "{}", lines.len());
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["doc_id"], i);
    }
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_str()
        .unwrap()
        .starts_with("results_")));
}

#[test]
fn tasks_lists_builtin_tasks_with_counts() {
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args(["tasks", "--data-dir"])
        .arg(data_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("hellaswag ")).unwrap();
    assert!(line.contains("10042"), "{line}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("mmlu_anatomy ") && l.contains("135")));
    assert!(text.contains("group mmlu "));
}

#[test]
fn lm_evals_command_line_runs_unchanged_but_for_the_program() {
    // Seed 003's command, `python -m lm_eval` replaced by `assay`, on a GGUF in a folder as
    // lm-eval's hf model takes one (pretrained=DIR,gguf_file=NAME).
    let model = assay_dirs::default_model_path();
    let folder = model.parent().unwrap().display().to_string();
    let file = model.file_name().unwrap().to_str().unwrap();
    let lm_eval_style = tempfile::tempdir().unwrap();
    let r = run(assay()
        .args(["--model", "hf", "--model_args"])
        .arg(format!(
            "pretrained={folder},gguf_file={file},dtype=float16"
        ))
        .args([
            "--tasks",
            "arc_easy",
            "--device",
            "cpu",
            "--batch_size",
            "4",
        ])
        .args([
            "--num_fewshot",
            "1",
            "--seed",
            "0,1234,1234,77",
            "--limit",
            "4",
        ])
        .arg("--output_path")
        .arg(lm_eval_style.path())
        .arg("--log_samples"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("dtype=float16 has no effect"),
        "{}",
        r.stderr
    );
    let assay_style = tempfile::tempdir().unwrap();
    let a = run(assay()
        .args(["--tasks", "arc_easy", "--num-fewshot", "1", "--limit", "4"])
        .args(["--seed", "77", "--output-path"])
        .arg(assay_style.path())
        .arg("--log-samples"));
    assert_eq!(a.code, 0, "{}", a.stderr);
    let texts = |dir: &Path| -> Vec<String> {
        let d = model_dir(dir);
        samples(&only_file(&d, "samples_arc_easy"))
            .iter()
            .map(|l| format!("{} {}", l["arguments"], l["acc"]))
            .collect()
    };
    assert_eq!(texts(lm_eval_style.path()), texts(assay_style.path()));
    // The few-shot seed is lm-eval's fourth: another one draws other examples.
    let other = tempfile::tempdir().unwrap();
    let o = run(assay()
        .args(["--tasks", "arc_easy", "--num-fewshot", "1", "--limit", "4"])
        .arg("--output-path")
        .arg(other.path())
        .arg("--log-samples"));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_ne!(texts(other.path()), texts(assay_style.path()));
    // A key assay cannot honour is named.
    let bad = run(assay()
        .args([
            "--model",
            "hf",
            "--model_args",
            "pretrained=x.gguf,peft=./adapter",
        ])
        .args(["--tasks", "arc_easy", "--limit", "1"]));
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("`peft` is not a key assay honours"),
        "{}",
        bad.stderr
    );
}

#[test]
fn batched_documents_are_recorded_and_cached_apart_from_unbatched_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let cached = |batch: &str, out: &str| {
        let mut cmd = Command::cargo_bin("assay").unwrap();
        cmd.args(["run", "--no-record", "--data-dir"])
            .arg(data_dir())
            .args(["--tasks", "arc_easy", "--limit", "6", "--batch-size", batch])
            .arg("--cache")
            .arg(&cache)
            .arg("--output-path")
            .arg(dir.path().join(out));
        run(&mut cmd)
    };
    let batched = cached("4", "batched");
    assert_eq!(batched.code, 0, "{}", batched.stderr);
    assert!(
        batched.stderr.contains("0 answers reused"),
        "{}",
        batched.stderr
    );
    let results = only_file(&model_dir(&dir.path().join("batched")), "results_");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(results).unwrap()).unwrap();
    assert_eq!(doc["config"]["batch_size"], 4);
    // One document per decode scores differently, so it takes nothing from the batched answers;
    // a second batched run takes them all.
    let alone = cached("1", "alone");
    assert!(
        alone.stderr.contains("0 answers reused"),
        "{}",
        alone.stderr
    );
    let again = cached("4", "again");
    assert!(again.stderr.contains(" 0 computed"), "{}", again.stderr);
    let bad = run(assay().args(["--tasks", "arc_easy", "--batch-size", "0"]));
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("give a number, auto or auto:N"),
        "{}",
        bad.stderr
    );
}
