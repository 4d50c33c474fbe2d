//! End to end: a PEFT LoRA adapter folder, as training writes it, applied to the real default
//! model at run time (`--lora DIR`) and merged (`assay lora merge --lora DIR`).

mod common;
use common::data_dir;

use std::path::{Path, PathBuf};
use std::process::Command;

use assay_gguf::container::{write_gguf, Value};
use assert_cmd::cargo::CommandCargoExt;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// A rank-4 adapter on Q and V of the default model's first three layers (Gemma 3 270M: hidden
/// 640, Q out 1024, V out 256), B non-zero, written as PEFT writes it (F32 safetensors), and the
/// same adapter written directly in llama.cpp's GGUF form (A as ggml `[in, r]`, B `[r, out]`).
fn adapter(dir: &Path) -> (PathBuf, PathBuf) {
    let folder = dir.join("my-adapter");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("adapter_config.json"),
        r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "bias": "none", "use_rslora": false,
            "target_modules": ["q_proj", "v_proj"], "modules_to_save": null,
            "base_model_name_or_path": "google/gemma-3-270m", "task_type": "CAUSAL_LM"}"#,
    )
    .unwrap();
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut gguf: Vec<(String, Vec<u64>, u32, Vec<u8>)> = Vec::new();
    let values = |n: usize, seed: f32| -> Vec<u8> {
        (0..n)
            .flat_map(|i| (0.08 * ((i as f32) * 0.37 + seed).sin()).to_le_bytes())
            .collect()
    };
    for layer in 0..3 {
        for (proj, out) in [("q_proj", 1024), ("v_proj", 256)] {
            let p = format!("base_model.model.model.layers.{layer}.self_attn.{proj}");
            let (a, b) = (
                values(4 * 640, layer as f32),
                values(out * 4, 1.5 + layer as f32),
            );
            let target = format!("blk.{layer}.attn_{}.weight", &proj[..1]);
            gguf.push((format!("{target}.lora_a"), vec![640, 4], 0, a.clone()));
            gguf.push((
                format!("{target}.lora_b"),
                vec![4, out as u64],
                0,
                b.clone(),
            ));
            data.push((format!("{p}.lora_A.weight"), vec![4, 640], a));
            data.push((format!("{p}.lora_B.weight"), vec![out, 4], b));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &folder.join("adapter_model.safetensors")).unwrap();
    let direct = dir.join("direct.gguf");
    let meta = vec![
        (
            "general.architecture".to_string(),
            Value::String("gemma3".into()),
        ),
        ("general.type".to_string(), Value::String("adapter".into())),
        ("adapter.type".to_string(), Value::String("lora".into())),
        ("adapter.lora.alpha".to_string(), Value::F32(8.0)),
    ];
    write_gguf(&direct, &meta, &gguf).unwrap();
    (folder, direct)
}

struct Out {
    code: i32,
    stderr: String,
    /// Per document and choice: the log-likelihoods in the per-sample log.
    logprobs: Vec<Vec<f64>>,
}

fn assay(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.args(args).env("ASSAY_CACHE_DIR", cache);
    cmd
}

fn run(cache: &Path, model: &Path, extra: &[&str]) -> Out {
    let out = tempfile::tempdir().unwrap();
    let output = assay(
        cache,
        &["run", "--no-cache", "--no-record", "--tasks", "arc_easy"],
    )
    .args(["--limit", "6", "--log-samples", "--data-dir"])
    .arg(data_dir())
    .arg("--model")
    .arg(model)
    .args(extra)
    .arg("--output-path")
    .arg(out.path())
    .output()
    .unwrap();
    let mut logprobs = Vec::new();
    for entry in walk(out.path()) {
        if entry
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("samples_")
        {
            for line in std::fs::read_to_string(&entry).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                logprobs.push(
                    v["resps"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r[0][0].as_str().unwrap().parse::<f64>().unwrap())
                        .collect(),
                );
            }
        }
    }
    Out {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        logprobs,
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(walk(&p));
        } else {
            found.push(p);
        }
    }
    found
}

#[test]
fn a_peft_adapter_folder_applies_at_run_time_and_merges() {
    let model = assay_dirs::default_model_path();
    assert!(
        model.exists(),
        "{} missing: run scripts/setup.sh",
        model.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (folder, direct) = adapter(dir.path());
    let lora = folder.display().to_string();

    let base = run(&cache, &model, &[]);
    assert_eq!(base.code, 0, "{}", base.stderr);
    let applied = run(&cache, &model, &["--lora", &lora]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(
        applied.stderr.contains("PEFT adapter"),
        "{}",
        applied.stderr
    );
    // The converted adapter is the one written by hand in llama.cpp's form: the same scores.
    let by_hand = run(&cache, &model, &["--lora", direct.to_str().unwrap()]);
    assert_eq!(by_hand.code, 0, "{}", by_hand.stderr);
    assert_eq!(applied.logprobs, by_hand.logprobs);
    assert_ne!(
        applied.logprobs, base.logprobs,
        "the adapter changes the scores"
    );
    // Converted once: the next run reads the cached GGUF adapter.
    let again = run(&cache, &model, &["--lora", &lora]);
    assert!(!again.stderr.contains("converted"), "{}", again.stderr);
    assert_eq!(again.logprobs, applied.logprobs);

    // Merging the folder writes the model merging the hand-written adapter writes.
    let merge = |adapter: &str, out: &Path| {
        let m = assay(&cache, &["lora", "merge", "--lora", adapter, "-o"])
            .arg(out)
            .arg("--model")
            .arg(&model)
            .output()
            .unwrap();
        assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
        std::fs::read(out).unwrap()
    };
    let (m1, m2) = (dir.path().join("m1.gguf"), dir.path().join("m2.gguf"));
    assert!(merge(&lora, &m1) == merge(direct.to_str().unwrap(), &m2));

    // An adapter for another model is refused before anything runs.
    let config = folder.join("adapter_config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"r\": 4", "\"r\": 8")).unwrap();
    let bad = run(&cache, &model, &["--lora", &lora]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("does not fit the base model"),
        "{}",
        bad.stderr
    );
}

#[test]
fn adapters_given_twice_stack_with_their_scales() {
    let model = assay_dirs::default_model_path();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (folder, direct) = adapter(dir.path());
    let (lora, gguf) = (folder.display().to_string(), direct.display().to_string());
    // Half of the folder plus half of the same adapter in GGUF form is the adapter at scale 1.
    let whole = run(&cache, &model, &["--lora", &lora, "--lora-scale", "1"]);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let halves = run(
        &cache,
        &model,
        &[
            "--lora",
            &lora,
            "--lora-scale",
            "0.5",
            "--lora",
            &gguf,
            "--lora-scale",
            "0.5",
        ],
    );
    assert_eq!(halves.code, 0, "{}", halves.stderr);
    assert!(
        halves.stderr.contains("stacked into one adapter"),
        "{}",
        halves.stderr
    );
    // At run time the two differ by rounding only (the quantised model's activations round
    // differently at every change, ~0.2 nats per choice): far closer than the base is.
    let base = run(&cache, &model, &[]);
    let mean_gap = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        let d: Vec<f64> = a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .collect();
        d.iter().sum::<f64>() / d.len() as f64
    };
    let (stack_gap, base_gap) = (
        mean_gap(&whole.logprobs, &halves.logprobs),
        mean_gap(&whole.logprobs, &base.logprobs),
    );
    assert!(
        stack_gap < 0.5 * base_gap,
        "stacked vs whole {stack_gap}, base vs whole {base_gap}"
    );
    // Merged, the stack is the adapter at scale 1, weight for weight up to rounding.
    let merge = |args: &[&str], out: &Path| {
        let m = assay(&cache, &["lora", "merge", "-o"])
            .arg(out)
            .arg("--model")
            .arg(&model)
            .args(args)
            .output()
            .unwrap();
        assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    };
    let (one, two) = (dir.path().join("one.gguf"), dir.path().join("two.gguf"));
    merge(&["--lora", &lora], &one);
    merge(&["--lora", &lora, "--lora", &gguf, "--scale", "0.5"], &two);
    let (a, b) = (
        assay_gguf::container::Gguf::open(&one).unwrap(),
        assay_gguf::container::Gguf::open(&two).unwrap(),
    );
    let t = a.tensor("blk.0.attn_q.weight").unwrap();
    let (x, y) = (
        a.read_tensor(t).unwrap(),
        b.read_tensor(b.tensor(&t.name).unwrap()).unwrap(),
    );
    let f = |v: &[u8]| -> Vec<f32> {
        v.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let worst = f(&x)
        .iter()
        .zip(f(&y))
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-5, "merged weights differ by {worst}");
    // Scales that do not pair with the adapters are refused.
    let bad = run(
        &cache,
        &model,
        &[
            "--lora",
            &lora,
            "--lora",
            &gguf,
            "--lora-scale",
            "1",
            "--lora-scale",
            "2",
            "--lora-scale",
            "3",
        ],
    );
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("give one scale per adapter"),
        "{}",
        bad.stderr
    );
}
