//! PEFT LoRA adapters as they come out of training (a folder with `adapter_config.json` and
//! `adapter_model.safetensors`) written as llama.cpp's GGUF LoRA adapters for a GGUF base model,
//! which the engine applies at run time and `assay lora merge` merges.
//!
//! The conversion follows llama.cpp's `convert_lora_to_gguf.py`: each `lora_A`/`lora_B` pair of
//! a linear layer becomes `<gguf tensor>.lora_a` / `.lora_b` in F32 (the bytes of a row-major
//! `[r, in]` A are ggml's `[in, r]`), named as llama.cpp names the base weight; where llama.cpp
//! permutes a weight's rows when it converts the base (Llama's and Mistral's Q and K), B's rows
//! are permuted the same way, since ΔW = B·A. `adapter.lora.alpha` is `lora_alpha`, or
//! `lora_alpha·√r` for rsLoRA (llama.cpp scales by alpha / r; rsLoRA by alpha / √r). What the
//! GGUF format cannot hold is refused by name: DoRA, `modules_to_save`, biases, per-module
//! ranks or alphas, layers llama.cpp's LoRA does not reach.

mod error;
mod names;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_gguf::container::{write_gguf, Gguf, Value};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use error::PeftError;
use names::{gguf_name, permutes_rows};

/// ggml's type id of F32.
const F32: u32 = 0;

/// `adapter_config.json`: the keys the conversion reads.
#[derive(Debug, Clone, Deserialize)]
pub struct AdapterConfig {
    /// `LORA` (other PEFT methods are refused).
    #[serde(default)]
    pub peft_type: Option<String>,
    /// The rank.
    pub r: u64,
    /// The scaling numerator.
    pub lora_alpha: f64,
    /// Scale by alpha / √r instead of alpha / r.
    #[serde(default)]
    pub use_rslora: bool,
    /// DoRA (weight-decomposed): refused.
    #[serde(default)]
    pub use_dora: bool,
    /// Whole modules trained and saved beside the adapter: refused.
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// `none`, or trained biases (refused).
    #[serde(default)]
    pub bias: Option<String>,
    /// GPT-2's transposed Conv1D layers: refused.
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// A trained bias on B (`lora_bias: true`): refused.
    #[serde(default)]
    pub lora_bias: bool,
    /// Layers duplicated at load time: refused.
    #[serde(default)]
    pub layer_replication: Option<serde_json::Value>,
    /// Activated LoRA (applies from given tokens on): refused.
    #[serde(default)]
    pub alora_invocation_tokens: Option<serde_json::Value>,
    /// Per-module ranks: refused when not empty.
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, serde_json::Value>,
    /// Per-module alphas: refused when not empty.
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, serde_json::Value>,
    /// The model the adapter was trained on (for messages).
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
}

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// The GGUF adapter.
    pub path: PathBuf,
    /// Base tensors the adapter changes.
    pub tensors: usize,
    /// The rank.
    pub rank: u64,
    /// `adapter.lora.alpha` written.
    pub alpha: f32,
}

/// Whether `dir` is a PEFT adapter folder.
pub fn is_adapter_folder(dir: &Path) -> bool {
    dir.join("adapter_config.json").is_file()
}

/// Reads `adapter_config.json` in `dir`.
pub fn read_config(dir: &Path) -> Result<AdapterConfig, PeftError> {
    let path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| PeftError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| PeftError::Config {
        path,
        reason: e.to_string(),
    })
}

/// The weights file of the adapter in `dir`.
fn weights_file(dir: &Path) -> Result<PathBuf, PeftError> {
    let path = dir.join("adapter_model.safetensors");
    if path.is_file() {
        return Ok(path);
    }
    if dir.join("adapter_model.bin").is_file() {
        return Err(PeftError::Unsupported {
            path: dir.to_path_buf(),
            what: "adapter_model.bin (a pickled PyTorch file) instead of adapter_model.safetensors; save the adapter with safe_serialization=True".into(),
        });
    }
    Err(PeftError::Io {
        path,
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no adapter weights"),
    })
}

/// A content key for the conversion of the adapter in `dir` for `base`: the adapter's two files
/// and what of the base the conversion reads (architecture, head counts, the touched tensors'
/// shapes), so a cached conversion is reused exactly when it would come out the same.
pub fn conversion_key(dir: &Path, base: &Gguf) -> Result<String, PeftError> {
    let mut hash = Sha256::new();
    for file in [dir.join("adapter_config.json"), weights_file(dir)?] {
        let bytes = std::fs::read(&file).map_err(|source| PeftError::Io { path: file, source })?;
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    let (arch, heads, heads_kv) = base_shape(base);
    hash.update(format!("{arch}/{heads}/{heads_kv}/v1").as_bytes());
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The base's architecture and attention head counts.
fn base_shape(base: &Gguf) -> (String, u64, u64) {
    let arch = match base.get("general.architecture") {
        Some(Value::String(a)) => a.clone(),
        _ => String::new(),
    };
    let count = |key: &str| {
        base.get(&format!("{arch}.{key}"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as u64
    };
    let heads = count("attention.head_count");
    let heads_kv = match count("attention.head_count_kv") {
        0 => heads,
        n => n,
    };
    (arch, heads, heads_kv)
}

/// A tensor of the safetensors file as F32 values with its row-major shape.
fn f32_tensor(
    file: &Path,
    tensors: &SafeTensors<'_>,
    name: &str,
) -> Result<(Vec<usize>, Vec<f32>), PeftError> {
    let view = tensors.tensor(name).map_err(|e| PeftError::Weights {
        path: file.to_path_buf(),
        reason: format!("{name}: {e}"),
    })?;
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(PeftError::Weights {
                path: file.to_path_buf(),
                reason: format!("{name}: dtype {other:?} (expected F32, F16 or BF16)"),
            })
        }
    };
    Ok((view.shape().to_vec(), values))
}

/// Checks that `config` is an adapter the GGUF format can hold.
fn check_config(dir: &Path, config: &AdapterConfig) -> Result<(), PeftError> {
    let refuse = |what: String| {
        Err(PeftError::Unsupported {
            path: dir.to_path_buf(),
            what,
        })
    };
    if let Some(kind) = config.peft_type.as_deref().filter(|k| *k != "LORA") {
        return refuse(format!("peft_type {kind} (only LORA adapters)"));
    }
    if config.use_dora {
        return refuse("DoRA (use_dora: true): its magnitude vectors have no GGUF LoRA form; merge it with peft's merge_and_unload() and convert the merged model".into());
    }
    if let Some(modules) = config.modules_to_save.as_ref().filter(|m| !m.is_empty()) {
        return refuse(format!("modules_to_save {modules:?}: whole trained modules beside the adapter; merge with peft's merge_and_unload() and convert the merged model"));
    }
    if let Some(bias) = config.bias.as_deref().filter(|b| *b != "none") {
        return refuse(format!("bias: {bias} (trained biases)"));
    }
    if config.lora_bias {
        return refuse("lora_bias: true (a trained bias on B)".into());
    }
    if config
        .layer_replication
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return refuse("layer_replication (layers duplicated at load time)".into());
    }
    if config
        .alora_invocation_tokens
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return refuse(
            "alora_invocation_tokens (activated LoRA, applied from given tokens on)".into(),
        );
    }
    if config.fan_in_fan_out {
        return refuse("fan_in_fan_out: true (GPT-2 style Conv1D layers)".into());
    }
    if !config.rank_pattern.is_empty() || !config.alpha_pattern.is_empty() {
        return refuse("rank_pattern / alpha_pattern (per-module ranks or alphas; a GGUF adapter has one alpha)".into());
    }
    if config.r == 0 {
        return refuse("r: 0".into());
    }
    Ok(())
}

/// Converts the PEFT adapter in `dir` for the GGUF model `base`, writing the GGUF adapter `out`
/// (through a temporary file: never a half-written adapter).
pub fn convert(dir: &Path, base: &Gguf, out: &Path) -> Result<Converted, PeftError> {
    let config = read_config(dir)?;
    check_config(dir, &config)?;
    let file = weights_file(dir)?;
    let bytes = std::fs::read(&file).map_err(|source| PeftError::Io {
        path: file.clone(),
        source,
    })?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| PeftError::Weights {
        path: file.clone(),
        reason: e.to_string(),
    })?;
    let (arch, heads, heads_kv) = base_shape(base);
    let mut pairs: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for name in tensors.names() {
        let (module, which) = if let Some(m) = name.strip_suffix(".lora_A.weight") {
            (m, 0)
        } else if let Some(m) = name.strip_suffix(".lora_B.weight") {
            (m, 1)
        } else {
            return Err(PeftError::Unsupported {
                path: file.clone(),
                what: format!("tensor {name} (only lora_A / lora_B weights)"),
            });
        };
        let entry = pairs.entry(module.to_string()).or_default();
        if which == 0 {
            entry.0 = Some(name.to_string());
        } else {
            entry.1 = Some(name.to_string());
        }
    }
    if pairs.is_empty() {
        return Err(PeftError::Weights {
            path: file,
            reason: "no lora_A / lora_B tensors".into(),
        });
    }
    let mut written = Vec::new();
    for (module, (a_name, b_name)) in &pairs {
        let (Some(a_name), Some(b_name)) = (a_name, b_name) else {
            return Err(PeftError::Weights {
                path: file.clone(),
                reason: format!("{module} has only one of lora_A and lora_B"),
            });
        };
        let target = gguf_name(&arch, module).ok_or_else(|| PeftError::Unsupported {
            path: file.clone(),
            what: format!(
                "module {module}: no {arch} weight llama.cpp's LoRA reaches (supported: the attention and MLP projections of llama, mistral, qwen2, qwen3, gemma2, gemma3)"
            ),
        })?;
        let weight = base
            .tensor(&format!("{target}.weight"))
            .ok_or_else(|| PeftError::Mismatch {
                path: file.clone(),
                reason: format!("{module}: the base has no tensor {target}.weight (an adapter for another model?)"),
            })?;
        let (a_shape, a) = f32_tensor(&file, &tensors, a_name)?;
        let (b_shape, mut b) = f32_tensor(&file, &tensors, b_name)?;
        let [r, n_in] = a_shape[..] else {
            return Err(PeftError::Weights {
                path: file.clone(),
                reason: format!("{a_name}: shape {a_shape:?} is not a matrix"),
            });
        };
        let [n_out, r_b] = b_shape[..] else {
            return Err(PeftError::Weights {
                path: file.clone(),
                reason: format!("{b_name}: shape {b_shape:?} is not a matrix"),
            });
        };
        let base_dims = &weight.dims;
        if r != r_b || r as u64 != config.r || base_dims[..] != [n_in as u64, n_out as u64] {
            return Err(PeftError::Mismatch {
                path: file.clone(),
                reason: format!(
                    "{module}: A {a_shape:?} and B {b_shape:?} (r {}) do not fit {target}.weight of the base, ggml shape {base_dims:?} (an adapter trained on {}?)",
                    config.r,
                    config
                        .base_model_name_or_path
                        .as_deref()
                        .unwrap_or("another model")
                ),
            });
        }
        if let Some(kv) = permutes_rows(&arch, &target) {
            let groups = if kv { heads_kv } else { heads };
            b = permute_rows(&b, n_out, r, groups as usize).ok_or_else(|| PeftError::Mismatch {
                path: file.clone(),
                reason: format!(
                    "{module}: {n_out} rows do not split into {groups} heads of two halves"
                ),
            })?;
        }
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        written.push((
            format!("{target}.weight.lora_a"),
            vec![n_in as u64, r as u64],
            F32,
            bytes(&a),
        ));
        written.push((
            format!("{target}.weight.lora_b"),
            vec![r as u64, n_out as u64],
            F32,
            bytes(&b),
        ));
    }
    let alpha = if config.use_rslora {
        config.lora_alpha * (config.r as f64).sqrt()
    } else {
        config.lora_alpha
    } as f32;
    let metadata = vec![
        ("general.architecture".to_string(), Value::String(arch)),
        ("general.type".to_string(), Value::String("adapter".into())),
        ("adapter.type".to_string(), Value::String("lora".into())),
        ("adapter.lora.alpha".to_string(), Value::F32(alpha)),
    ];
    write_gguf(out, &metadata, &written).map_err(PeftError::Gguf)?;
    Ok(Converted {
        path: out.to_path_buf(),
        tensors: pairs.len(),
        rank: config.r,
        alpha,
    })
}

/// llama.cpp's row permutation of a Q or K weight (`LlamaModel.permute`), applied to a
/// row-major `[rows, cols]` matrix: each head's rows, split in two halves, are interleaved.
/// `None` when the rows do not split into `heads` heads of two halves.
fn permute_rows(m: &[f32], rows: usize, cols: usize, heads: usize) -> Option<Vec<f32>> {
    if heads == 0 || !rows.is_multiple_of(heads * 2) {
        return None;
    }
    let half = rows / heads / 2;
    let mut out = vec![0.0; m.len()];
    // reshape(heads, 2, half, cols).swapaxes(1, 2): new row (h, i, j) is old row (h, j, i).
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let new = (h * half + i) * 2 + j;
                let old = (h * 2 + j) * half + i;
                out[new * cols..(new + 1) * cols].copy_from_slice(&m[old * cols..(old + 1) * cols]);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
