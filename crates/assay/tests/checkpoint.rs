//! Hugging Face checkpoint folders as `--model`, without PyTorch: a small Llama checkpoint
//! written here as `save_pretrained` writes one (sharded safetensors with their index,
//! config.json, a byte-level BPE tokenizer.json, tokenizer_config.json), converted by assay and
//! scored by llama.cpp, against a forward pass of the same weights computed here the way
//! transformers' LlamaForCausalLM computes it; the converted tokenizers against the `tokenizers`
//! library on a mixed corpus (byte-level BPE, and the default model's own SentencePiece-style
//! vocabulary written as tokenizer.json); and the bad inputs a user's folder can hold.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assay_backend::{Backend, TextTokenizer};
use assay_core::LoglikelihoodRequest;
use assay_gguf::container::{Gguf, Value};
use assay_llama::{EngineSettings, LlamaEngine, Tokenizer};
use common::{assay_with, data_dir};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::json;

/// Text a tokenizer must split exactly as the checkpoint's: English, code, other scripts, emoji,
/// runs of spaces and newlines, contractions, digits, a special token in the text.
const CORPUS: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{:?}\", x);\n}\n",
    "def f(a, b):\n\treturn a ** 2 + b  # comment\n",
    "Größenwahn über Ärger — naïve café.",
    "日本語のテキストと中文文本。",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "Emoji: 😀🎉👍🏽 and 🇫🇷",
    "spaces:    four, tabs:\t\ttwo, newlines:\n\n\nend",
    "  leading and trailing  ",
    "Numbers 1234567 and 3.14159, 1,000,000.",
    "don't we'll they're I'M YOU'LL",
];

/// The token ids the `tokenizers` library gives `text` (no special tokens added).
fn library_ids(tokenizer: &tokenizers::Tokenizer, text: &str) -> Vec<i32> {
    let encoding = tokenizer.encode(text, false).unwrap();
    encoding.get_ids().iter().map(|&i| i as i32).collect()
}

/// Llama 3's and Qwen 2's split regexes, as their tokenizer.json files write them.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GPT-2's byte-to-character table of byte-level BPE.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut table = vec!['\0'; 256];
    for (b, c) in printable.iter().zip(&chars) {
        table[*b as usize] = char::from_u32(*c).unwrap();
    }
    table
}

/// A byte-level BPE tokenizer.json (and tokenizer_config.json) in `dir`: the 256 byte tokens,
/// `merges` merges learnt greedily from text, `<|begin_of_text|>` and `<|end_of_text|>`, a BOS
/// post-processor, `split` as the pre-tokenizer regex. Returns the vocabulary size.
fn write_byte_level_tokenizer(
    dir: &Path,
    split: &str,
    ignore_merges: bool,
    merges: usize,
) -> usize {
    let table = byte_chars();
    let mut text = CORPUS.join(" ");
    text.push_str(
        &std::fs::read_to_string(data_dir().join("arc/ARC-Easy/ARC-Easy-Test.jsonl"))
            .map(|t| t.chars().take(60_000).collect::<String>())
            .unwrap_or_default(),
    );
    // Words as byte-level symbol sequences, a leading space kept on the word (as Ġ).
    let mut words: HashMap<Vec<String>, usize> = HashMap::new();
    for w in text.split_inclusive(' ') {
        let w = format!(" {}", w.trim_end_matches(' '));
        let symbols: Vec<String> = w.bytes().map(|b| table[b as usize].to_string()).collect();
        *words.entry(symbols).or_default() += 1;
    }
    let mut vocab: Vec<String> = table.iter().map(|c| c.to_string()).collect();
    let mut merge_list: Vec<(String, String)> = Vec::new();
    for _ in 0..merges {
        let mut counts: HashMap<(String, String), usize> = HashMap::new();
        for (w, n) in &words {
            for p in w.windows(2) {
                *counts.entry((p[0].clone(), p[1].clone())).or_default() += n;
            }
        }
        let Some(best) = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(p, _)| p)
        else {
            break;
        };
        let joined = format!("{}{}", best.0, best.1);
        words = words
            .into_iter()
            .map(|(w, n)| {
                let mut out = Vec::with_capacity(w.len());
                let mut i = 0;
                while i < w.len() {
                    if i + 1 < w.len() && w[i] == best.0 && w[i + 1] == best.1 {
                        out.push(joined.clone());
                        i += 2;
                    } else {
                        out.push(w[i].clone());
                        i += 1;
                    }
                }
                (out, n)
            })
            .fold(HashMap::new(), |mut m, (w, n)| {
                *m.entry(w).or_default() += n;
                m
            });
        if !vocab.contains(&joined) {
            vocab.push(joined);
        }
        merge_list.push(best);
    }
    let bos = vocab.len();
    let vocab_json: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let special = |id: usize, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(bos, "<|begin_of_text|>"), special(bos + 1, "<|end_of_text|>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos], "tokens": ["<|begin_of_text|>"]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": ignore_merges, "vocab": vocab_json,
                  "merges": merge_list.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        json!({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
               "tokenizer_class": "PreTrainedTokenizerFast",
               "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"})
        .to_string(),
    )
    .unwrap();
    bos + 2
}

/// Deterministic values in [-scale, scale).
struct Noise(u64);

impl Noise {
    fn next(&mut self, scale: f32) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }

    fn values(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| offset + self.next(scale)).collect()
    }
}

/// The shape of the small Llama.
const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 16;
const FFN: usize = 128;
const LAYERS: usize = 2;
const EPS: f64 = 1e-5;
const THETA: f64 = 10_000.0;

/// A small Llama checkpoint in `dir` (two shards and their index), with weights by HF name.
fn write_llama_checkpoint(dir: &Path, vocab: usize) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut weights: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
    let mut add = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        let n = shape.iter().product();
        weights.insert(name, (shape, noise.values(n, scale, offset)));
    };
    add(
        "model.embed_tokens.weight".into(),
        vec![vocab, HIDDEN],
        1.0,
        0.0,
    );
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        add(
            format!("{p}.input_layernorm.weight"),
            vec![HIDDEN],
            0.2,
            1.0,
        );
        add(
            format!("{p}.post_attention_layernorm.weight"),
            vec![HIDDEN],
            0.2,
            1.0,
        );
        add(
            format!("{p}.self_attn.q_proj.weight"),
            vec![HEADS * HEAD_DIM, HIDDEN],
            0.4,
            0.0,
        );
        add(
            format!("{p}.self_attn.k_proj.weight"),
            vec![KV_HEADS * HEAD_DIM, HIDDEN],
            0.4,
            0.0,
        );
        add(
            format!("{p}.self_attn.v_proj.weight"),
            vec![KV_HEADS * HEAD_DIM, HIDDEN],
            0.4,
            0.0,
        );
        add(
            format!("{p}.self_attn.o_proj.weight"),
            vec![HIDDEN, HEADS * HEAD_DIM],
            0.2,
            0.0,
        );
        add(
            format!("{p}.mlp.gate_proj.weight"),
            vec![FFN, HIDDEN],
            0.3,
            0.0,
        );
        add(
            format!("{p}.mlp.up_proj.weight"),
            vec![FFN, HIDDEN],
            0.3,
            0.0,
        );
        add(
            format!("{p}.mlp.down_proj.weight"),
            vec![HIDDEN, FFN],
            0.2,
            0.0,
        );
    }
    add("model.norm.weight".into(), vec![HIDDEN], 0.2, 1.0);
    add("lm_head.weight".into(), vec![vocab, HIDDEN], 0.5, 0.0);
    let shard_of = |name: &str| {
        if name.starts_with("model.layers.1") || name == "lm_head.weight" {
            "model-00002-of-00002.safetensors"
        } else {
            "model-00001-of-00002.safetensors"
        }
    };
    let bytes: HashMap<&String, Vec<u8>> = weights
        .iter()
        .map(|(n, (_, v))| (n, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let mut map = serde_json::Map::new();
    for shard in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        let views: Vec<(String, TensorView)> = weights
            .iter()
            .filter(|(n, _)| shard_of(n) == shard)
            .map(|(n, (shape, _))| {
                map.insert(n.clone(), json!(shard));
                (
                    n.clone(),
                    TensorView::new(Dtype::F32, shape.clone(), &bytes[n]).unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join(shard)).unwrap();
    }
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        json!({"metadata": {"total_size": 0}, "weight_map": map}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
               "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
               "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM,
               "max_position_embeddings": 512, "rms_norm_eps": EPS, "rope_theta": THETA,
               "vocab_size": vocab, "tie_word_embeddings": false, "torch_dtype": "float32",
               "bos_token_id": vocab - 2, "eos_token_id": vocab - 1, "hidden_act": "silu"})
        .to_string(),
    )
    .unwrap();
    weights
}

/// `W x` for a row-major `[out, in]` weight.
fn linear(w: &[f32], x: &[f64], out: usize) -> Vec<f64> {
    let inp = x.len();
    (0..out)
        .map(|o| {
            w[o * inp..(o + 1) * inp]
                .iter()
                .zip(x)
                .map(|(a, b)| f64::from(*a) * b)
                .sum()
        })
        .collect()
}

fn rms_norm(x: &[f64], w: &[f32]) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let r = 1.0 / (ms + EPS).sqrt();
    x.iter()
        .zip(w)
        .map(|(v, g)| v * r * f64::from(*g))
        .collect()
}

/// transformers' rotary embedding: dimension `i` pairs with `i + d/2` (rotate_half).
fn rope(v: &mut [f64], pos: usize) {
    let half = HEAD_DIM / 2;
    for i in 0..half {
        let freq = pos as f64 / THETA.powf(2.0 * i as f64 / HEAD_DIM as f64);
        let (s, c) = freq.sin_cos();
        let (a, b) = (v[i], v[i + half]);
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

/// The log-probabilities LlamaForCausalLM gives each next token of `ids`.
fn reference_logprobs(w: &HashMap<String, (Vec<usize>, Vec<f32>)>, ids: &[i32]) -> Vec<Vec<f64>> {
    let get = |n: &str| &w[n].1;
    let vocab = w["lm_head.weight"].0[0];
    let mut xs: Vec<Vec<f64>> = ids
        .iter()
        .map(|&t| {
            get("model.embed_tokens.weight")[t as usize * HIDDEN..(t as usize + 1) * HIDDEN]
                .iter()
                .map(|v| f64::from(*v))
                .collect()
        })
        .collect();
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let h = rms_norm(x, get(&format!("{p}.input_layernorm.weight")));
            let mut q = linear(
                get(&format!("{p}.self_attn.q_proj.weight")),
                &h,
                HEADS * HEAD_DIM,
            );
            let mut k = linear(
                get(&format!("{p}.self_attn.k_proj.weight")),
                &h,
                KV_HEADS * HEAD_DIM,
            );
            for head in q.chunks_mut(HEAD_DIM) {
                rope(head, pos);
            }
            for head in k.chunks_mut(HEAD_DIM) {
                rope(head, pos);
            }
            qs.push(q);
            ks.push(k);
            vs.push(linear(
                get(&format!("{p}.self_attn.v_proj.weight")),
                &h,
                KV_HEADS * HEAD_DIM,
            ));
        }
        for pos in 0..xs.len() {
            let mut attn = vec![0.0; HEADS * HEAD_DIM];
            for h in 0..HEADS {
                let kv = h / (HEADS / KV_HEADS);
                let q = &qs[pos][h * HEAD_DIM..(h + 1) * HEAD_DIM];
                let scores: Vec<f64> = (0..=pos)
                    .map(|j| {
                        let k = &ks[j][kv * HEAD_DIM..(kv + 1) * HEAD_DIM];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (HEAD_DIM as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exp.iter().sum();
                for (j, e) in exp.iter().enumerate() {
                    let v = &vs[j][kv * HEAD_DIM..(kv + 1) * HEAD_DIM];
                    for d in 0..HEAD_DIM {
                        attn[h * HEAD_DIM + d] += e / total * v[d];
                    }
                }
            }
            let o = linear(get(&format!("{p}.self_attn.o_proj.weight")), &attn, HIDDEN);
            for (x, o) in xs[pos].iter_mut().zip(o) {
                *x += o;
            }
            let h = rms_norm(
                &xs[pos],
                get(&format!("{p}.post_attention_layernorm.weight")),
            );
            let gate = linear(get(&format!("{p}.mlp.gate_proj.weight")), &h, FFN);
            let up = linear(get(&format!("{p}.mlp.up_proj.weight")), &h, FFN);
            let act: Vec<f64> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = linear(get(&format!("{p}.mlp.down_proj.weight")), &act, HIDDEN);
            for (x, d) in xs[pos].iter_mut().zip(down) {
                *x += d;
            }
        }
    }
    xs.iter()
        .map(|x| {
            let h = rms_norm(x, get("model.norm.weight"));
            let logits = linear(get("lm_head.weight"), &h, vocab);
            let max = logits.iter().cloned().fold(f64::MIN, f64::max);
            let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            logits.iter().map(|l| l - lse).collect()
        })
        .collect()
}

/// A private cache, so that conversions from other tests or runs are not reused.
fn cache_env(dir: &Path) -> Vec<(String, PathBuf)> {
    let cache = dir.join("cache");
    let models = cache.join("models");
    std::fs::create_dir_all(&models).unwrap();
    let default = assay_dirs::default_model_path();
    let _ = std::os::unix::fs::symlink(&default, models.join(default.file_name().unwrap()));
    vec![("ASSAY_CACHE_DIR".into(), cache)]
}

fn assay_in(env: &[(String, PathBuf)], args: &[&str]) -> common::Out {
    use assert_cmd::cargo::CommandCargoExt;
    let out = std::process::Command::cargo_bin("assay")
        .unwrap()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    common::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The one converted file in the private cache.
fn converted(env: &[(String, PathBuf)]) -> Vec<PathBuf> {
    let dir = env[0].1.join("checkpoints");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "gguf"));
    files.sort();
    files
}

#[test]
fn a_llama_checkpoint_converts_and_scores_as_transformers_computes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-llama-finetune");
    std::fs::create_dir_all(&dir).unwrap();
    let vocab = write_byte_level_tokenizer(&dir, LLAMA3_SPLIT, true, 300);
    let weights = write_llama_checkpoint(&dir, vocab);
    let env = cache_env(tmp.path());

    // Through the CLI, as a user runs it; the second run reuses the conversion.
    let dir_arg = dir.to_str().unwrap();
    let data = data_dir();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--model",
            dir_arg,
            "--tasks",
            "arc_easy",
            "--limit",
            "3",
            "--data-dir",
            data.to_str().unwrap(),
            "--no-record",
            "--no-cache",
        ];
        args.extend_from_slice(extra);
        assay_in(&env, &args)
    };
    let first = run(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("converted to GGUF (llama, float32"),
        "{}",
        first.stderr
    );
    assert!(first.stdout.contains("arc_easy"), "{}", first.stdout);
    let again = run(&[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("converted before"),
        "{}",
        again.stderr
    );
    assert_eq!(converted(&env).len(), 1);
    let gguf = converted(&env)[0].clone();

    // The file as llama.cpp's converter writes it: names, permuted Q/K, the vocabulary.
    let g = Gguf::open(&gguf).unwrap();
    let meta = |k: &str| g.get(k).cloned();
    assert_eq!(
        meta("general.architecture"),
        Some(Value::String("llama".into()))
    );
    assert_eq!(
        meta("tokenizer.ggml.model"),
        Some(Value::String("gpt2".into()))
    );
    assert_eq!(
        meta("tokenizer.ggml.pre"),
        Some(Value::String("llama-bpe".into()))
    );
    assert_eq!(
        meta("tokenizer.ggml.bos_token_id"),
        Some(Value::U32(vocab as u32 - 2))
    );
    assert_eq!(
        meta("tokenizer.ggml.add_bos_token"),
        Some(Value::Bool(true))
    );
    assert_eq!(
        meta("llama.rope.dimension_count"),
        Some(Value::U32(HEAD_DIM as u32))
    );
    assert!(g.tensor("output.weight").is_some());
    assert!(g.tensor("blk.1.attn_k.weight").is_some());

    // Log-likelihoods from llama.cpp on the converted file against the forward pass here.
    let tokenizer = Tokenizer::load(&gguf).unwrap();
    let mut engine = LlamaEngine::load(
        &gguf,
        &EngineSettings {
            threads: 2,
            ctx_size: Some(256),
            ..EngineSettings::default()
        },
    )
    .unwrap();
    let requests = [
        ("The quick brown fox", " jumps over the lazy dog."),
        ("Question: what is 2 + 2?\nAnswer:", " 4"),
        ("def f(a, b):\n", "\treturn a ** 2 + b"),
    ]
    .map(|(c, k)| LoglikelihoodRequest {
        context: c.into(),
        continuation: k.into(),
    });
    let answers = engine.loglikelihood(&requests).unwrap();
    for (req, answer) in requests.iter().zip(&answers) {
        let split = &tokenizer.encode_pairs(&[req])[0];
        let ids: Vec<i32> = split
            .context
            .iter()
            .chain(&split.continuation)
            .copied()
            .collect();
        let logprobs = reference_logprobs(&weights, &ids);
        let expected: f64 = split
            .continuation
            .iter()
            .enumerate()
            .map(|(i, &t)| logprobs[split.context.len() + i - 1][t as usize])
            .sum();
        assert!(
            (answer.logprob - expected).abs() < 2e-3 * (1.0 + expected.abs()),
            "{req:?}: llama.cpp {} vs the reference {expected}",
            answer.logprob
        );
        assert!(
            expected < -1.0,
            "the weights must make the scores informative"
        );
    }

    // Other precisions convert into their own cache entries and run.
    for dtype in ["bfloat16", "q8_0"] {
        let out = run(&["--dtype", dtype]);
        assert_eq!(out.code, 0, "{dtype}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("llama, {dtype}")),
            "{}",
            out.stderr
        );
    }
    assert_eq!(converted(&env).len(), 3);
    // A k-quant: the checkpoint at 16 bits (its own entry), quantised by llama.cpp.
    let out = run(&["--dtype", "q4_k_m"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("quantised (q4_k_m)"), "{}", out.stderr);
    let files = converted(&env);
    assert_eq!(files.len(), 5, "{files:?}");
    let quantised = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with("-q4_k_m.gguf"))
        .unwrap();
    let g = Gguf::open(quantised).unwrap();
    assert_eq!(g.get("general.file_type"), Some(&Value::U32(15)), "Q4_K_M");
    let again = run(&["--dtype", "q4_k_m"]);
    assert!(
        again.stderr.contains("quantised before"),
        "{}",
        again.stderr
    );
    assert_eq!(converted(&env).len(), 5);
}

/// The small Llama checkpoint in `dir` rewritten as Phi-3 writes its weights: Q, K and V fused
/// into `qkv_proj`, gate and up into `gate_up_proj`.
fn rewrite_as_phi3(dir: &Path, weights: &HashMap<String, (Vec<usize>, Vec<f32>)>) {
    let mut fused: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let bytes = |parts: &[&str]| -> (Vec<usize>, Vec<u8>) {
        let rows: usize = parts.iter().map(|p| weights[*p].0[0]).sum();
        let data = parts
            .iter()
            .flat_map(|p| weights[*p].1.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        (vec![rows, weights[parts[0]].0[1]], data)
    };
    for (name, (shape, values)) in weights {
        let kept = !name.contains("_proj") || name.contains("o_proj") || name.contains("down_proj");
        if kept {
            fused.push((
                name.clone(),
                shape.clone(),
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
        }
    }
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        let (shape, data) = bytes(&[
            &format!("{p}.self_attn.q_proj.weight"),
            &format!("{p}.self_attn.k_proj.weight"),
            &format!("{p}.self_attn.v_proj.weight"),
        ]);
        fused.push((format!("{p}.self_attn.qkv_proj.weight"), shape, data));
        let (shape, data) = bytes(&[
            &format!("{p}.mlp.gate_proj.weight"),
            &format!("{p}.mlp.up_proj.weight"),
        ]);
        fused.push((format!("{p}.mlp.gate_up_proj.weight"), shape, data));
    }
    for f in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let views: Vec<(String, TensorView)> = fused
        .iter()
        .map(|(n, shape, data)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        config.replace("LlamaForCausalLM", "Phi3ForCausalLM"),
    )
    .unwrap();
}

#[test]
fn a_phi3_checkpoint_named_phi3_loads_whatever_its_vocabulary() {
    // llama.cpp looks up Phi-3's own special tokens when the model's name says Phi-3 and failed
    // to load a fine-tune whose folder is named so but whose vocabulary lacks them.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-phi3-finetune");
    std::fs::create_dir_all(&dir).unwrap();
    let vocab = write_byte_level_tokenizer(&dir, LLAMA3_SPLIT, true, 100);
    let weights = write_llama_checkpoint(&dir, vocab);
    rewrite_as_phi3(&dir, &weights);
    let gguf = tmp.path().join("phi3.gguf");
    assay_convert::convert(&dir, &gguf, assay_convert::OutType::F32, &mut |_, _| {}).unwrap();
    let g = Gguf::open(&gguf).unwrap();
    assert_eq!(
        g.get("general.architecture"),
        Some(&Value::String("phi3".into()))
    );
    assert!(g.tensor("blk.0.attn_qkv.weight").is_some());
    let mut engine = LlamaEngine::load(
        &gguf,
        &EngineSettings {
            threads: 2,
            ctx_size: Some(128),
            ..EngineSettings::default()
        },
    )
    .unwrap();
    let answer = engine
        .loglikelihood(&[LoglikelihoodRequest {
            context: "The quick brown".into(),
            continuation: " fox".into(),
        }])
        .unwrap();
    assert!(answer[0].logprob.is_finite() && answer[0].logprob < 0.0);
}

#[test]
fn converted_tokenizers_split_text_as_the_tokenizers_library_does() {
    let tmp = tempfile::tempdir().unwrap();
    for (split, ignore_merges, pre) in [
        (LLAMA3_SPLIT, true, "llama-bpe"),
        (QWEN2_SPLIT, false, "qwen2"),
    ] {
        let dir = tmp.path().join(pre);
        std::fs::create_dir_all(&dir).unwrap();
        let vocab = write_byte_level_tokenizer(&dir, split, ignore_merges, 400);
        write_llama_checkpoint(&dir, vocab);
        let gguf = tmp.path().join(format!("{pre}.gguf"));
        assay_convert::convert(&dir, &gguf, assay_convert::OutType::F32, &mut |_, _| {}).unwrap();
        let g = Gguf::open(&gguf).unwrap();
        assert_eq!(
            g.get("tokenizer.ggml.pre"),
            Some(&Value::String(pre.into()))
        );
        let reference = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        let ours = Tokenizer::load(&gguf).unwrap();
        let mut texts: Vec<String> = CORPUS.iter().map(|s| s.to_string()).collect();
        texts.push("text with <|begin_of_text|> inside".into());
        for text in &texts {
            let expected = library_ids(&reference, text);
            assert_eq!(ours.tokenize(text, false), expected, "{pre}: {text:?}");
        }
    }
}

/// The default model's vocabulary (SentencePiece BPE) as Hugging Face writes it in
/// tokenizer.json: every piece with its id, merges of every split of a piece into two pieces,
/// ordered by the piece's score (as transformers' SentencePiece converter makes them), control
/// and user-defined pieces as added tokens.
fn write_gemma_tokenizer_json(dir: &Path) {
    let g = Gguf::open(&assay_dirs::default_model_path()).unwrap();
    let array = |k: &str| match g.get(k) {
        Some(Value::Array(_, items)) => items.clone(),
        other => panic!("{k}: {other:?}"),
    };
    let tokens: Vec<String> = array("tokenizer.ggml.tokens")
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            _ => unreachable!(),
        })
        .collect();
    let number = |v: &Value| v.as_f64().unwrap();
    let scores: Vec<f32> = array("tokenizer.ggml.scores")
        .iter()
        .map(|v| number(v) as f32)
        .collect();
    let types: Vec<i32> = array("tokenizer.ggml.token_type")
        .iter()
        .map(|v| number(v) as i32)
        .collect();
    let ids: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let mut merges: Vec<(f32, usize, usize, usize)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if types[id] != 1 {
            continue;
        }
        let cuts: Vec<usize> = piece.char_indices().map(|(i, _)| i).skip(1).collect();
        for cut in cuts {
            let (l, r) = piece.split_at(cut);
            if let (Some(&li), Some(&ri)) = (ids.get(l), ids.get(r)) {
                merges.push((scores[id], id, li, ri));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3)));
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(types[*i], 3 | 4))
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": types[i] == 3})
        })
        .collect();
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": null,
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<bos>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab,
                  "merges": merges.iter().map(|m| json!([tokens[m.2], tokens[m.3]])).collect::<Vec<_>>()}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        json!({"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>",
               "tokenizer_class": "GemmaTokenizer"})
        .to_string(),
    )
    .unwrap();
}

#[test]
fn a_sentencepiece_style_tokenizer_json_converts_to_the_same_splits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gemma-vocab");
    std::fs::create_dir_all(&dir).unwrap();
    write_gemma_tokenizer_json(&dir);
    std::fs::write(
        dir.join("config.json"),
        json!({"architectures": ["Gemma3ForCausalLM"], "hidden_size": 640, "intermediate_size": 2048,
               "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1,
               "head_dim": 256, "max_position_embeddings": 32768, "sliding_window": 512,
               "vocab_size": 262144})
        .to_string(),
    )
    .unwrap();
    // The vocabulary alone, in a GGUF llama.cpp loads without weights.
    let config = assay_convert::Config::read(&dir).unwrap();
    let mut meta = vec![(
        "general.architecture".to_string(),
        Value::String("gemma3".into()),
    )];
    meta.extend(assay_convert::Family::Gemma3.metadata(&config).unwrap());
    let vocab = assay_convert::vocab::read(&dir, true, None).unwrap();
    assert_eq!(vocab.n_tokens, 262_144);
    meta.extend(vocab.metadata);
    let gguf = tmp.path().join("vocab.gguf");
    assay_gguf::container::write_gguf(&gguf, &meta, &[]).unwrap();

    let reference = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let ours = Tokenizer::load(&gguf).unwrap();
    let original = Tokenizer::load(&assay_dirs::default_model_path()).unwrap();
    let mut texts: Vec<String> = CORPUS.iter().map(|s| s.to_string()).collect();
    texts.push("a <start_of_turn>user\nturn<end_of_turn>".into());
    for text in &texts {
        let expected = library_ids(&reference, text);
        assert_eq!(ours.tokenize(text, false), expected, "{text:?}");
        assert_eq!(
            original.tokenize(text, false),
            expected,
            "the model's own: {text:?}"
        );
    }
}

#[test]
fn bad_checkpoint_folders_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let env = cache_env(tmp.path());
    let data = data_dir();
    let run = |dir: &Path| {
        assay_in(
            &env,
            &[
                "run",
                "--model",
                dir.to_str().unwrap(),
                "--tasks",
                "arc_easy",
                "--limit",
                "1",
                "--data-dir",
                data.to_str().unwrap(),
                "--no-record",
                "--no-cache",
            ],
        )
    };
    let fresh = |name: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let vocab = write_byte_level_tokenizer(&dir, LLAMA3_SPLIT, true, 50);
        write_llama_checkpoint(&dir, vocab);
        dir
    };
    let cases: Vec<(PathBuf, String)> = vec![
        {
            let dir = fresh("missing-shard");
            std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap();
            (dir, "model-00002-of-00002.safetensors: a shard".into())
        },
        {
            let dir = fresh("no-weights");
            for f in [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
            ] {
                std::fs::remove_file(dir.join(f)).unwrap();
            }
            (dir, "no model.safetensors".into())
        },
        {
            let dir = fresh("other-tokenizer");
            let other = tmp.path().join("other");
            std::fs::create_dir_all(&other).unwrap();
            write_byte_level_tokenizer(&other, LLAMA3_SPLIT, true, 20);
            std::fs::copy(other.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
            (dir, "the tokenizer files are not this model's".into())
        },
        {
            let dir = fresh("gpt2");
            let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
            std::fs::write(
                dir.join("config.json"),
                config.replace("LlamaForCausalLM", "GPT2LMHeadModel"),
            )
            .unwrap();
            (dir, "architecture GPT2LMHeadModel is not supported".into())
        },
        {
            let dir = fresh("no-tokenizer");
            std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
            (dir, "no tokenizer.json".into())
        },
        {
            let dir = fresh("truncated");
            std::fs::write(
                dir.join("model-00002-of-00002.safetensors"),
                b"\x10\x00\x00\x00",
            )
            .unwrap();
            (dir, "not a readable safetensors file".into())
        },
        {
            let dir = fresh("bad-config");
            std::fs::write(
                dir.join("config.json"),
                "{\"architectures\": [\"LlamaForCausalLM\"],",
            )
            .unwrap();
            (dir, "config.json: not valid JSON".into())
        },
    ];
    for (dir, expected) in cases {
        let out = run(&dir);
        assert_ne!(out.code, 0, "{}", dir.display());
        assert!(
            out.stderr.contains(&expected),
            "{}: {}",
            dir.display(),
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    assert!(
        converted(&env).is_empty(),
        "nothing half written in the cache"
    );
    let partial: Vec<_> = std::fs::read_dir(env[0].1.join("checkpoints"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        partial
            .iter()
            .all(|p: &PathBuf| !p.to_string_lossy().ends_with(".partial")),
        "{partial:?}"
    );
    // A folder without config.json is not taken for a checkpoint.
    let out = assay_with(
        &[
            "run",
            "--model",
            tmp.path().to_str().unwrap(),
            "--tasks",
            "arc_easy",
            "--limit",
            "1",
        ],
        &[],
    );
    assert_ne!(out.code, 0);
}

#[test]
fn hub_model_ids_download_through_the_hub_cache() {
    use assay_hub_standin::{HubStandIn, Options};
    let tmp = tempfile::tempdir().unwrap();
    // The stand-in Hub: a checkpoint repository and a GGUF repository in the real layouts.
    let root = tmp.path().join("hub");
    let checkpoint = root.join("models/acme/tiny-llama/main");
    std::fs::create_dir_all(&checkpoint).unwrap();
    let vocab = write_byte_level_tokenizer(&checkpoint, LLAMA3_SPLIT, true, 100);
    write_llama_checkpoint(&checkpoint, vocab);
    std::fs::write(
        checkpoint.join("README.md"),
        "---\nlicense: mit\n---\n# tiny llama\n",
    )
    .unwrap();
    let ggufs = root.join("models/acme/gemma-3-270m-GGUF/main");
    std::fs::create_dir_all(&ggufs).unwrap();
    std::os::unix::fs::symlink(
        assay_dirs::default_model_path(),
        ggufs.join("gemma-3-270m-Q4_K_M.gguf"),
    )
    .unwrap();
    std::fs::write(ggufs.join("README.md"), "# GGUF\n").unwrap();
    let server =
        HubStandIn::start(&root, "127.0.0.1:0".parse().unwrap(), Options::default()).unwrap();
    let mut env = cache_env(tmp.path());
    let home = tmp.path().join("hf-home");
    env.push(("HF_HOME".into(), home.clone()));
    env.push(("HF_ENDPOINT".into(), PathBuf::from(server.url())));
    let data = data_dir();
    let run = |model: &str, env: &[(String, PathBuf)]| {
        assay_in(
            env,
            &[
                "run",
                "--model",
                model,
                "--tasks",
                "arc_easy",
                "--limit",
                "2",
                "--data-dir",
                data.to_str().unwrap(),
                "--no-record",
                "--no-cache",
            ],
        )
    };
    let out = run("acme/tiny-llama", &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("converted to GGUF (llama"),
        "{}",
        out.stderr
    );
    let snapshots = home.join("hub/models--acme--tiny-llama/snapshots");
    assert!(snapshots.is_dir(), "huggingface_hub's cache layout");
    let out = run("acme/gemma-3-270m-GGUF:Q4_K_M", &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("gemma-3-270m-Q4_K_M"), "{}", out.stdout);
    // Offline, both come from the cache.
    let mut offline = env.clone();
    offline.push(("HF_HUB_OFFLINE".into(), PathBuf::from("1")));
    for model in ["acme/tiny-llama", "acme/gemma-3-270m-GGUF"] {
        let out = run(model, &offline);
        assert_eq!(out.code, 0, "{model}: {}", out.stderr);
    }
    for (model, expected) in [
        ("acme/no-such-model", "model acme/no-such-model not found"),
        ("acme/gemma-3-270m-GGUF:Q8_0", "its quantisations: Q4_K_M"),
        ("acme/tiny-llama:Q4_K_M", "drop `:Q4_K_M`"),
    ] {
        let out = run(model, &env);
        assert_ne!(out.code, 0, "{model}");
        assert!(out.stderr.contains(expected), "{model}: {}", out.stderr);
    }
}
