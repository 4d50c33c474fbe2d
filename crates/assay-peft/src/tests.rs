use super::*;
use safetensors::tensor::TensorView;

/// A llama-shaped base with 2 heads (1 KV head): Q [in 4, out 8], K [in 4, out 4], F32.
fn base(dir: &Path) -> Gguf {
    let path = dir.join("base.gguf");
    let meta = vec![
        (
            "general.architecture".to_string(),
            Value::String("llama".into()),
        ),
        ("llama.attention.head_count".to_string(), Value::U32(2)),
        ("llama.attention.head_count_kv".to_string(), Value::U32(1)),
    ];
    let tensors = vec![
        (
            "blk.0.attn_q.weight".to_string(),
            vec![4, 8],
            F32,
            vec![0; 4 * 8 * 4],
        ),
        (
            "blk.0.attn_k.weight".to_string(),
            vec![4, 4],
            F32,
            vec![0; 4 * 4 * 4],
        ),
        (
            "blk.0.ffn_up.weight".to_string(),
            vec![4, 6],
            F32,
            vec![0; 4 * 6 * 4],
        ),
    ];
    write_gguf(&path, &meta, &tensors).unwrap();
    Gguf::open(&path).unwrap()
}

/// An adapter folder with `config` and the tensors `(name, shape, values)` in F16.
fn adapter(dir: &Path, config: &str, tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> PathBuf {
    let folder = dir.join("adapter");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("adapter_config.json"), config).unwrap();
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            let bytes = v
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect();
            (n.to_string(), s.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F16, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &folder.join("adapter_model.safetensors")).unwrap();
    folder
}

const CONFIG: &str = r#"{"peft_type": "LORA", "r": 1, "lora_alpha": 4, "bias": "none",
  "target_modules": ["q_proj", "k_proj"], "base_model_name_or_path": "test/llama"}"#;

fn q_and_k(a: f32) -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    let p = "base_model.model.model.layers.0.self_attn";
    vec![
        (
            leak(format!("{p}.q_proj.lora_A.weight")),
            vec![1, 4],
            vec![a, 0.0, 0.0, 1.0],
        ),
        (
            leak(format!("{p}.q_proj.lora_B.weight")),
            vec![8, 1],
            (0..8).map(|i| i as f32).collect(),
        ),
        (
            leak(format!("{p}.k_proj.lora_A.weight")),
            vec![1, 4],
            vec![1.0; 4],
        ),
        (
            leak(format!("{p}.k_proj.lora_B.weight")),
            vec![4, 1],
            vec![0.0, 1.0, 2.0, 3.0],
        ),
    ]
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn values(gguf: &Gguf, name: &str) -> Vec<f32> {
    let t = gguf.tensor(name).unwrap();
    gguf.read_tensor(t)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn peft_pairs_become_gguf_lora_tensors_with_llamas_row_permutation() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let folder = adapter(dir.path(), CONFIG, &q_and_k(0.5));
    let out = dir.path().join("adapter.gguf");
    let done = convert(&folder, &base, &out).unwrap();
    assert_eq!((done.tensors, done.rank, done.alpha), (2, 1, 4.0));
    let g = Gguf::open(&out).unwrap();
    assert!(matches!(g.get("general.type"), Some(Value::String(t)) if t == "adapter"));
    assert!(matches!(g.get("adapter.lora.alpha"), Some(Value::F32(a)) if *a == 4.0));
    assert_eq!(g.tensor("blk.0.attn_q.weight.lora_a").unwrap().dims, [4, 1]);
    assert_eq!(g.tensor("blk.0.attn_q.weight.lora_b").unwrap().dims, [1, 8]);
    assert_eq!(
        values(&g, "blk.0.attn_q.weight.lora_a"),
        [0.5, 0.0, 0.0, 1.0]
    );
    // Q: 2 heads of 4 rows, each head's halves [0,1] [2,3] interleaved: 0 2 1 3 | 4 6 5 7.
    assert_eq!(
        values(&g, "blk.0.attn_q.weight.lora_b"),
        [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]
    );
    // K: one KV head of 4 rows.
    assert_eq!(
        values(&g, "blk.0.attn_k.weight.lora_b"),
        [0.0, 2.0, 1.0, 3.0]
    );
    // The same files give the same key; other weights another.
    let key = conversion_key(&folder, &base).unwrap();
    assert_eq!(key, conversion_key(&folder, &base).unwrap());
    let other = adapter(dir.path(), CONFIG, &q_and_k(0.25));
    assert_ne!(key, conversion_key(&other, &base).unwrap());
}

#[test]
fn rslora_scales_alpha_by_the_root_of_the_rank() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let config = CONFIG.replace("\"bias\"", "\"use_rslora\": true, \"bias\"");
    let folder = adapter(dir.path(), &config, &q_and_k(1.0));
    let done = convert(&folder, &base, &dir.path().join("a.gguf")).unwrap();
    // r = 1: alpha·√1.
    assert_eq!(done.alpha, 4.0);
}

#[test]
fn what_a_gguf_adapter_cannot_hold_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let out = dir.path().join("a.gguf");
    for (change, expected) in [
        (r#""use_dora": true, "#, "DoRA"),
        (r#""modules_to_save": ["lm_head"], "#, "modules_to_save"),
        (r#""rank_pattern": {"q_proj": 4}, "#, "rank_pattern"),
        (r#""peft_type": "IA3", "#, "peft_type IA3"),
    ] {
        let config = CONFIG.replacen('{', &format!("{{{change}"), 1);
        let config = if change.contains("peft_type") {
            config.replacen(r#""peft_type": "LORA", "#, "", 1)
        } else {
            config
        };
        let folder = adapter(dir.path(), &config, &q_and_k(1.0));
        let err = convert(&folder, &base, &out).unwrap_err().to_string();
        assert!(err.contains(expected), "{change}: {err}");
        assert!(!out.exists(), "nothing written");
    }
    // Another model's shapes: the base's Q has 4 inputs.
    let p = "base_model.model.model.layers.0.self_attn.q_proj";
    let folder = adapter(
        dir.path(),
        CONFIG,
        &[
            (leak(format!("{p}.lora_A.weight")), vec![1, 5], vec![1.0; 5]),
            (leak(format!("{p}.lora_B.weight")), vec![8, 1], vec![1.0; 8]),
        ],
    );
    let err = convert(&folder, &base, &out).unwrap_err().to_string();
    assert!(
        err.contains("do not fit blk.0.attn_q.weight") && err.contains("test/llama"),
        "{err}"
    );
    // A module llama.cpp's LoRA does not reach.
    let folder = adapter(
        dir.path(),
        CONFIG,
        &[
            (
                "base_model.model.lm_head.lora_A.weight",
                vec![1, 4],
                vec![1.0; 4],
            ),
            (
                "base_model.model.lm_head.lora_B.weight",
                vec![8, 1],
                vec![1.0; 8],
            ),
        ],
    );
    let err = convert(&folder, &base, &out).unwrap_err().to_string();
    assert!(err.contains("module base_model.model.lm_head"), "{err}");
    // Half a pair.
    let folder = adapter(dir.path(), CONFIG, &q_and_k(1.0)[..1]);
    let err = convert(&folder, &base, &out).unwrap_err().to_string();
    assert!(err.contains("only one of lora_A and lora_B"), "{err}");
}
