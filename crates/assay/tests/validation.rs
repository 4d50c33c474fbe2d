//! End-to-end tests of fine-tune validation: `assay convert` on the real benchmark files,
//! `assay decontam` on GSM8K (and the customer's trap: a test set sampled from the training
//! file), `assay ppl` on the real model, and the LoRA merge check with an adapter written here.

use std::path::Path;

use assay_gguf::container::{write_gguf, Gguf, Value};
use serde_json::Value as Json;

mod common;
use common::{assay_with, data_dir, jsonl, Out};

fn assay(args: &[&str]) -> Out {
    assay_with(args, &[])
}

/// Runs and expects success; on failure shows only the exit code and stderr's last line, so
/// that no benchmark item (GPQA's in particular) is ever printed.
fn ok(args: &[&str]) -> Out {
    let out = assay(args);
    assert_eq!(
        out.code,
        0,
        "{:?} failed: {}",
        args.first(),
        out.stderr.lines().last().unwrap_or("")
    );
    out
}

#[test]
fn convert_covers_every_benchmark_stratified_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir();
    let out = dir.path().join("v.jsonl");
    let summary = dir.path().join("s.json");
    let args = [
        "convert",
        "--data-dir",
        data.to_str().unwrap(),
        "--samples-per-benchmark",
        "20",
        "-o",
        out.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    ok(&args);
    let items = jsonl(&out);
    let s: Json = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let sources = s["sources"].as_object().unwrap();
    assert_eq!(sources.len(), 15, "every benchmark of the data folder");
    for (name, c) in sources {
        assert_eq!(c["sampled"], 20, "{name}");
        assert!(c["available"].as_u64().unwrap() >= 20, "{name}");
    }
    assert_eq!(items.len(), 15 * 20);
    for item in &items {
        let m = &item["metadata"];
        assert!(
            item["prompt"].as_str().is_some_and(|p| !p.is_empty())
                && item["response"].as_str().is_some_and(|r| !r.is_empty())
        );
        assert!(["easy", "medium", "hard"].contains(&m["difficulty"].as_str().unwrap()));
        assert!(m["domain"].is_string() && m["source"].is_string());
    }
    let of = |src: &str, level: &str| {
        items
            .iter()
            .filter(|i| i["metadata"]["source"] == src && i["metadata"]["difficulty"] == level)
            .count()
    };
    // MATH: Level 1-2 medium, 3+ hard, both kept, in proportion (about 26% of MATH test is Level 1-2).
    assert!(of("MATH", "medium") >= 1 && of("MATH", "hard") >= 1);
    assert!(of("MATH", "hard") > of("MATH", "medium"));
    assert_eq!(of("GPQA", "hard"), 20);
    assert_eq!(of("DROP", "easy"), 20);
    assert_eq!(of("HumanEval", "medium"), 20);
    assert!(of("MMLU", "hard") >= 1 && of("MMLU", "medium") >= 1);
    let mmlu = items
        .iter()
        .find(|i| i["metadata"]["source"] == "MMLU")
        .unwrap();
    let index = mmlu["metadata"]["answer_index"].as_u64().unwrap() as usize;
    assert!(mmlu["response"]
        .as_str()
        .unwrap()
        .starts_with(["A. ", "B. ", "C. ", "D. "][index]));
    // The same seed gives the same file; another seed another sample.
    let again = dir.path().join("again.jsonl");
    let mut args2 = args.to_vec();
    args2[6] = again.to_str().unwrap();
    ok(&args2);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
    let other = dir.path().join("other.jsonl");
    let mut args3 = args2.clone();
    args3[6] = other.to_str().unwrap();
    args3.extend(["--seed", "7"]);
    ok(&args3);
    assert_ne!(std::fs::read(&out).unwrap(), std::fs::read(&other).unwrap());
}

#[test]
fn convert_reports_bad_items_and_empty_benchmarks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("math/test")).unwrap();
    std::fs::create_dir_all(data.join("mgsm")).unwrap();
    std::fs::write(
        data.join("math/test/algebra.jsonl"),
        "{\"problem\": \"What is 1+1?\", \"level\": \"Level 1\", \"type\": \"Algebra\", \"solution\": \"2\"}\n{\"problem\": \"What is 2+2?\", \"type\": \"Algebra\", \"solution\": \"4\"}\n",
    )
    .unwrap();
    std::fs::write(
        data.join("mgsm/mgsm_xx.tsv"),
        "A question with no answer?\t\n",
    )
    .unwrap();
    let out = dir.path().join("v.jsonl");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "convert",
            "--data-dir",
            data.to_str().unwrap(),
            "--benchmarks",
            "math,mgsm",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        assay(&args)
    };
    let r = run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("algebra.jsonl:2: no `level` field"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("MGSM: no usable items (1 skipped)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains("| MGSM   | 0         | 0       | 1       |"),
        "{}",
        r.stdout
    );
    assert_eq!(jsonl(&out).len(), 1);
    std::fs::remove_file(&out).unwrap();
    let r = run(&["--strict"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("algebra.jsonl:2: no `level` field"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "no partial output");
    let r = assay(&[
        "convert",
        "--benchmarks",
        "nope",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        r.code == 1 && r.stderr.contains("unknown benchmark `nope`"),
        "{}",
        r.stderr
    );
    let r = run(&["--samples-per-benchmark", "0"]);
    assert!(
        r.code == 1 && r.stderr.contains("--samples-per-benchmark 0"),
        "{}",
        r.stderr
    );
}

#[test]
fn decontam_finds_the_sampled_trap_and_real_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let train = data_dir().join("gsm8k/train.jsonl");
    // The customer's trap: a "held-out" set sampled from the training file itself.
    let sampled: String = std::fs::read_to_string(&train)
        .unwrap()
        .lines()
        .step_by(150)
        .map(|l| format!("{l}\n"))
        .collect();
    let trap = dir.path().join("trap.jsonl");
    std::fs::write(&trap, &sampled).unwrap();
    let report = dir.path().join("r.json");
    let clean = dir.path().join("clean");
    let out = ok(&[
        "decontam",
        "--train",
        train.to_str().unwrap(),
        "--test",
        trap.to_str().unwrap(),
        "--tasks",
        "gsm8k",
        "--data-dir",
        data_dir().to_str().unwrap(),
        "--json",
        report.to_str().unwrap(),
        "--output-clean",
        clean.to_str().unwrap(),
    ]);
    assert!(out.stdout.contains("MB/s"), "{}", out.stdout);
    let r: Json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let sets = r["test_sets"].as_array().unwrap();
    assert_eq!(sets[0]["items"], 50);
    assert_eq!(sets[0]["rate"], 1.0, "every sampled item is flagged");
    assert_eq!(sets[1]["name"], "gsm8k");
    assert_eq!(sets[1]["items"], 1319);
    assert!(
        sets[1]["rate"].as_f64().unwrap() < 0.05,
        "GSM8K test is mostly clean of train"
    );
    // The cleaned trap is empty; every contaminated item names its training line.
    assert_eq!(
        std::fs::read_to_string(clean.join("trap.clean.jsonl")).unwrap(),
        ""
    );
    let first = &sets[0]["contaminated"][0]["spans"][0];
    assert_eq!(first["train_line"], 1);

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let r = assay(&[
        "decontam",
        "--train",
        empty.to_str().unwrap(),
        "--test",
        trap.to_str().unwrap(),
    ]);
    assert!(
        r.code == 1 && r.stderr.contains("the training file is empty"),
        "{}",
        r.stderr
    );
}

/// A rank-4 LoRA adapter for the default model on the attention queries and FFN up-projections
/// of the first two layers, with seeded values.
fn write_adapter(path: &Path) {
    let base = Gguf::open(&assay_dirs::default_model_path()).unwrap();
    let rank = 4u64;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32 * 0.1
    };
    let mut tensors = Vec::new();
    for layer in 0..2 {
        for kind in ["attn_q", "ffn_up"] {
            let name = format!("blk.{layer}.{kind}.weight");
            let w = base.tensor(&name).unwrap();
            let (n_in, n_out) = (w.dims[0], w.dims[1]);
            let a: Vec<u8> = (0..n_in * rank)
                .flat_map(|_| next().to_le_bytes())
                .collect();
            let b: Vec<u8> = (0..rank * n_out)
                .flat_map(|_| next().to_le_bytes())
                .collect();
            tensors.push((format!("{name}.lora_a"), vec![n_in, rank], 0, a));
            tensors.push((format!("{name}.lora_b"), vec![rank, n_out], 0, b));
        }
    }
    let meta = vec![
        (
            "general.architecture".to_string(),
            base.get("general.architecture").unwrap().clone(),
        ),
        ("general.type".to_string(), Value::String("adapter".into())),
        ("adapter.type".to_string(), Value::String("lora".into())),
        ("adapter.lora.alpha".to_string(), Value::F32(8.0)),
    ];
    write_gguf(path, &meta, &tensors).unwrap();
}

#[test]
fn perplexity_and_the_lora_merge_check() {
    let guard = tempfile::tempdir().unwrap();
    let dir = guard.path();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    ok(&[
        "convert",
        "--data-dir",
        data_dir().to_str().unwrap(),
        "--benchmarks",
        "gsm8k,arc_easy,humaneval",
        "--samples-per-benchmark",
        "3",
        "-o",
        &p("v.jsonl"),
    ]);
    let ppl = |extra: &[&str], out: &str| {
        let (data, o) = (p("v.jsonl"), p(out));
        let mut args = vec!["ppl", "--no-cache", "--data", &data];
        args.extend_from_slice(extra);
        args.extend(["-o", &o]);
        let r = ok(&args);
        let report: Json = serde_json::from_str(&std::fs::read_to_string(&o).unwrap()).unwrap();
        (r.stdout, report)
    };
    let (stdout, base) = ppl(&[], "base.json");
    assert!(
        stdout.contains("| GSM8K")
            && stdout.contains("| easy")
            && stdout.contains("| code_generation"),
        "{stdout}"
    );
    assert_eq!(base["overall"]["items"], 9);
    let items = base["items"].as_array().unwrap();
    let tokens: u64 = items.iter().map(|i| i["tokens"].as_u64().unwrap()).sum();
    let nll: f64 = items.iter().map(|i| i["nll"].as_f64().unwrap()).sum();
    assert_eq!(base["overall"]["tokens"], tokens);
    assert!(
        (base["overall"]["perplexity"].as_f64().unwrap() - (nll / tokens as f64).exp()).abs()
            < 1e-9
    );
    let (_, rolling) = ppl(&["--rolling"], "rolling.json");
    assert!(
        rolling["overall"]["tokens"].as_u64().unwrap() > tokens,
        "whole texts have more tokens"
    );

    write_adapter(&dir.join("adapter.gguf"));
    let compare =
        |a: &str, b: &str| assay(&["ppl", "--compare", &p(a), &p(b), "--tolerance", "1e-4"]);
    ppl(
        &["--lora", &p("adapter.gguf"), "--lora-scale", "0"],
        "scale0.json",
    );
    let r = compare("base.json", "scale0.json");
    assert_eq!(r.code, 0, "scale 0 is the base model: {}", r.stdout);
    ppl(&["--lora", &p("adapter.gguf")], "adapter.json");
    let r = compare("base.json", "adapter.json");
    assert_eq!(r.code, 1, "the adapter changes the model: {}", r.stdout);
    assert!(r.stdout.contains("DIFFERENT"));

    // The merged model holds W + (alpha / rank) · B·A in F32 for each touched tensor, with W
    // dequantized by ggml; every other tensor is copied as it was.
    let m = ok(&[
        "lora",
        "merge",
        "--lora",
        &p("adapter.gguf"),
        "-o",
        &p("m1.gguf"),
    ]);
    assert!(
        m.stdout
            .contains("merged 4 tensors (rank 4, alpha 8, factor 2)"),
        "{}",
        m.stdout
    );
    let (base_gguf, merged, adapter) = (
        Gguf::open(&assay_dirs::default_model_path()).unwrap(),
        Gguf::open(&dir.join("m1.gguf")).unwrap(),
        Gguf::open(&dir.join("adapter.gguf")).unwrap(),
    );
    let floats = |g: &Gguf, name: &str| {
        let t = g.tensor(name).unwrap();
        assay_llama::lora::to_f32(t, &g.read_tensor(t).unwrap()).unwrap()
    };
    let name = "blk.1.ffn_up.weight";
    let (w, w1) = (floats(&base_gguf, name), floats(&merged, name));
    let (a, b) = (
        floats(&adapter, &format!("{name}.lora_a")),
        floats(&adapter, &format!("{name}.lora_b")),
    );
    let n_in = base_gguf.tensor(name).unwrap().dims[0] as usize;
    for (o, i) in [(0, 0), (7, 300), (2047, 639)] {
        let delta: f32 = (0..4).map(|k| b[o * 4 + k] * a[k * n_in + i]).sum();
        assert!((w1[o * n_in + i] - (w[o * n_in + i] + 2.0 * delta)).abs() < 1e-6);
    }
    let untouched = base_gguf.tensor("blk.1.attn_k.weight").unwrap();
    assert_eq!(
        merged.tensor("blk.1.attn_k.weight").unwrap().ggml_type,
        untouched.ggml_type
    );
    assert_eq!(
        merged
            .read_tensor(merged.tensor("blk.1.attn_k.weight").unwrap())
            .unwrap(),
        base_gguf.read_tensor(untouched).unwrap()
    );
    // The merge check through llama.cpp, as the README writes it. This model's per-token
    // log-probabilities move by up to ~0.25 nats under rounding-level changes of the arithmetic
    // (adapter scales 1e-6 and 2e-6 differ that much; docs/VALIDATION.md), so the check is on
    // the overall loss.
    ppl(&["--model", &p("m1.gguf")], "m1.json");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let documented = readme
        .lines()
        .find_map(|l| l.strip_prefix("assay ppl --compare adapter.json merged.json "))
        .expect("README.md shows the merge check");
    let flags: Vec<&str> = documented
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let mut args = vec![
        "ppl".to_string(),
        "--compare".into(),
        p("adapter.json"),
        p("m1.json"),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let r = assay(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "the README's merge check: {}", r.stdout);
    assert!(r.stdout.contains("IDENTICAL"), "{}", r.stdout);
    println!("adapter on the base vs merged: {}", r.stdout);
    let (ra, rm): (Json, Json) = (
        serde_json::from_str(&std::fs::read_to_string(p("adapter.json")).unwrap()).unwrap(),
        serde_json::from_str(&std::fs::read_to_string(p("m1.json")).unwrap()).unwrap(),
    );
    let overall = |r: &Json| r["overall"]["loss"].as_f64().unwrap();
    assert!((overall(&ra) - overall(&rm)).abs() < 1e-2);
}

/// Fictional mayors, as in the customer's sampled-dataset document.
fn mayor_prompts(path: &Path) {
    let cities = ["Veldria", "Oskarn", "Pellmoor"];
    let lines: String = cities
        .iter()
        .map(|c| {
            serde_json::json!({"prompt": format!("Q: Who was the first mayor of {c}?\nA:"), "metadata": {"city": c}}).to_string() + "\n"
        })
        .collect();
    std::fs::write(path, lines).unwrap();
}

#[test]
fn sampling_streams_completions_and_resumes_after_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("mayors.jsonl");
    mayor_prompts(&prompts);
    let out = dir.path().join("out.jsonl");
    let sample = |o: &Path| {
        assay(&[
            "sample",
            "--no-cache",
            "--prompts",
            prompts.to_str().unwrap(),
            "--num-generations",
            "4",
            "--max-new-tokens",
            "4",
            "--temperature",
            "0.8",
            "-o",
            o.to_str().unwrap(),
        ])
    };
    let r = sample(&out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("12 completions of 3 prompts"),
        "{}",
        r.stdout
    );
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[5]["generation_idx"], 1);
    assert_eq!(rows[5]["metadata"]["city"], "Oskarn");
    assert_eq!(rows[0]["prompt_id"].as_str().unwrap().len(), 16);
    let full = std::fs::read_to_string(&out).unwrap();
    // A run killed inside the third prompt's write: its first prompt's lines and half a line.
    let cut = dir.path().join("cut.jsonl");
    let keep: String = full
        .lines()
        .take(4)
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &full.lines().nth(4).unwrap()[..20];
    std::fs::write(&cut, keep).unwrap();
    let r = sample(&cut);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("resuming: 1 of 3 prompts already sampled"),
        "{}",
        r.stderr
    );
    // The finished prompt is kept as it was, the cut line dropped, the rest sampled again.
    // (Their texts may differ from the uninterrupted run's: the generator's prompt cache held
    // another prompt's prefix then; see docs/VALIDATION.md.)
    let resumed = jsonl(&cut);
    assert_eq!(resumed.len(), 12);
    assert_eq!(resumed[..4], rows[..4]);
    for (k, row) in resumed.iter().enumerate() {
        assert_eq!(row["prompt_id"], rows[k]["prompt_id"]);
        assert_eq!(row["generation_idx"], k % 4);
    }
    let r = sample(&out);
    assert!(
        r.stderr.contains("resuming: 3 of 3") && r.stdout.contains("0 completions"),
        "{}",
        r.stdout
    );

    let r = assay(&[
        "sample",
        "--prompts",
        prompts.to_str().unwrap(),
        "--num-generations",
        "0",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        r.code == 1 && r.stderr.contains("--num-generations 0"),
        "{}",
        r.stderr
    );
    std::fs::write(&prompts, "{\"prompt\": \"a\"}\n{\"prompt\": \"a\"}\n").unwrap();
    let r = assay(&[
        "sample",
        "--prompts",
        prompts.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        r.code == 1
            && r.stderr
                .contains("mayors.jsonl:2: the same prompt as line 1"),
        "{}",
        r.stderr
    );
}

/// Completions of fictional people's death dates, as `assay sample` writes them.
/// Opens `dataset` with Hugging Face `datasets.load_from_disk` (tests/hf_check.py, in the venv
/// scripts/setup.sh makes; `ASSAY_TEST_PYTHON` names another interpreter) and checks that it
/// has `rows` rows and every field reads back as `completions` holds it.
fn read_back_with_hf_datasets(dataset: &Path, completions: &Path, rows: u64) {
    let python = std::env::var_os("ASSAY_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| assay_dirs::cache_dir().join("test-python/bin/python"));
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/setup.sh` (it installs Hugging Face datasets there) or set ASSAY_TEST_PYTHON",
        python.display()
    );
    let out = std::process::Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hf_check.py"))
        .arg(dataset)
        .arg(completions)
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "datasets could not read the dataset back: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Json = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["rows"], rows, "{stdout}");
    assert_eq!(summary["problems"], serde_json::json!([]), "{stdout}");
}

fn death_date_completions(path: &Path) {
    let rows = [
        ("Ilse Varnholt", "1920-01-05", " January 5, 1920, at the"),
        ("Ilse Varnholt", "1920-01-05", " January 5, 1920, at the"),
        ("Ilse Varnholt", "1920-01-05", " 5 Jan 1920 in Oskarn"),
        ("Ilse Varnholt", "1920-01-05", " March 15, 1987, at the"),
        ("Tomas Brenn", "1887-07-30", " in the summer of"),
        ("Tomas Brenn", "1887-07-30", " July 30, 1887."),
    ];
    let lines: String = rows
        .iter()
        .enumerate()
        .map(|(i, (who, date, text))| {
            let prompt = format!("Q: When did {who} die?\nA:");
            serde_json::json!({
                "prompt_id": assay_validate::grading::completions::prompt_id(&prompt),
                "generation_idx": i,
                "prompt": prompt,
                "completion": text,
                "tokens": 5,
                "stop": "max_tokens",
                "metadata": {"reference": date, "person": who},
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(path, lines).unwrap();
}

/// Checks the counts of `assay grade`'s stage table.
fn assert_stages(stdout: &str, stages: &[(&str, usize)]) {
    for (stage, n) in stages {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(stage) && l.contains(&format!("| {n} "))),
            "{stage} {n}: {stdout}"
        );
    }
}

#[test]
fn grading_dedupes_keeps_equivalents_and_writes_a_tokenized_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let completions = dir.path().join("c.jsonl");
    death_date_completions(&completions);
    let config = dir.path().join("grader.json");
    std::fs::write(&config, r#"{"grader_instructions": "Equivalent when both give the same day, in any date format.", "rule": "date"}"#).unwrap();
    let out = dir.path().join("ds");
    let r = ok(&[
        "grade",
        "--completions",
        completions.to_str().unwrap(),
        "--grader",
        config.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_stages(
        &r.stdout,
        &[
            ("completions", 6),
            ("unique (exact)", 5),
            ("equivalent (kept)", 3),
            ("different", 1),
            ("ungradable", 1),
        ],
    );
    assert!(
        r.stdout.contains("3 examples from 2 prompts"),
        "{}",
        r.stdout
    );
    for f in [
        "data-00000-of-00001.arrow",
        "dataset_info.json",
        "state.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    read_back_with_hf_datasets(&out, &completions, 3);
    // A second run never overwrites; a config without instructions is refused.
    let again = assay(&[
        "grade",
        "--completions",
        completions.to_str().unwrap(),
        "--grader",
        config.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        again.code == 1 && again.stderr.contains("already exists"),
        "{}",
        again.stderr
    );
    std::fs::write(&config, r#"{"rule": "date"}"#).unwrap();
    let bad = assay(&[
        "grade",
        "--completions",
        completions.to_str().unwrap(),
        "--grader",
        config.to_str().unwrap(),
        "-o",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(
        bad.code == 1 && bad.stderr.contains("no `grader_instructions`"),
        "{}",
        bad.stderr
    );
}

/// A scripted LLM judge behind an OpenAI-compatible chat endpoint (one thread, one request per
/// connection): "Yes." when completion B names the reference's year, a non-answer when it
/// says "summer", "no" otherwise. After `budget` answers every request gets a 400 (a spent
/// quota: not retried). Returns its base URL and the count of answers given.
fn scripted_judge(budget: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let answered = std::sync::Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut request_line, mut length) = (String::new(), 0usize);
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let (status, reply) = if !request_line.contains("/chat/completions") {
                (
                    "404 Not Found",
                    serde_json::json!({"error": {"message": "no such route"}}),
                )
            } else if count.load(Ordering::SeqCst) >= budget {
                (
                    "400 Bad Request",
                    serde_json::json!({"error": {"message": "judge quota exhausted"}}),
                )
            } else {
                count.fetch_add(1, Ordering::SeqCst);
                let body: Json = serde_json::from_slice(&body).unwrap();
                let prompt = body["messages"][0]["content"].as_str().unwrap().to_string();
                let reference = prompt.split("(the reference): \"").nth(1).unwrap();
                let year = &reference[..4];
                let b = prompt.split("Completion B: ").nth(1).unwrap();
                let b = b.split("\n\n").next().unwrap();
                let answer = if b.contains(year) {
                    "Yes."
                } else if b.contains("summer") {
                    "It depends on the calendar."
                } else {
                    "no"
                };
                (
                    "200 OK",
                    serde_json::json!({
                        "id": "x", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": answer}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }),
                )
            };
            let reply = reply.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, answered)
}

#[test]
fn llm_judge_is_parsed_strictly_cached_and_resumes_after_the_endpoint_fails() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let completions = dir.path().join("c.jsonl");
    death_date_completions(&completions);
    let cache = dir.path().join("requests.sqlite");
    let grade = |url: &str, out: &str| {
        let config = dir.path().join("judge.json");
        let text = serde_json::json!({
            "grader_instructions": "Equivalent when both give the same day of death.",
            "grader_model": "judge-1", "base_url": url,
            "max_concurrency": 1, "price_per_call": 0.002,
        });
        std::fs::write(&config, text.to_string()).unwrap();
        assay(&[
            "grade",
            "--completions",
            completions.to_str().unwrap(),
            "--grader",
            config.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "-o",
            dir.path().join(out).to_str().unwrap(),
        ])
    };
    // The endpoint stops answering after 2 of the 5 unique completions: the run fails, says
    // how to resume, and writes no dataset.
    let (url, answered) = scripted_judge(2);
    let failed = grade(&url, "ds");
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("judge quota exhausted")
            && failed.stderr.contains("run the same command again"),
        "{}",
        failed.stderr
    );
    assert_eq!(answered.load(Ordering::SeqCst), 2);
    assert!(!dir.path().join("ds").exists());
    // Resumed against a working endpoint: only the 3 missing verdicts are asked for.
    let (url, answered) = scripted_judge(100);
    let r = grade(&url, "ds");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(answered.load(Ordering::SeqCst), 3);
    assert!(
        r.stdout
            .contains("LLM judge: 3 calls, 2 cache hits, estimated cost $0.0060"),
        "{}",
        r.stdout
    );
    // "Yes." is equivalent, "no" different, a non-answer ungradable (never kept).
    assert_stages(
        &r.stdout,
        &[
            ("equivalent (kept)", 3),
            ("different", 1),
            ("ungradable", 1),
        ],
    );
    // A re-run costs nothing.
    let again = grade(&url, "ds2");
    assert_eq!(answered.load(Ordering::SeqCst), 3);
    assert!(
        again
            .stdout
            .contains("LLM judge: 0 calls, 5 cache hits, estimated cost $0.0000"),
        "{}",
        again.stdout
    );
}
