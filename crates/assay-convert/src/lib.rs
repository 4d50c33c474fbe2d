//! Hugging Face checkpoint folders, as `save_pretrained` leaves them after a fine-tune
//! (`config.json`, `model.safetensors` or its shards, `tokenizer.json` or `tokenizer.model`,
//! `tokenizer_config.json`), written as a GGUF model that llama.cpp runs, the way llama.cpp's own
//! `convert_hf_to_gguf.py` writes it but without Python or PyTorch: the same architecture
//! names, hyperparameter keys, tensor names and weight changes (`arch`), the same vocabulary
//! (`vocab`), at the precision asked (`encode`). Tensors are read one at a time from
//! memory-mapped files and written as they come, into a `.partial` file renamed into place when
//! complete.

pub mod arch;
pub mod config;
mod encode;
mod error;
pub mod spm;
pub mod vocab;
mod weights;

use std::io::Read;
use std::path::{Path, PathBuf};

use assay_gguf::container::{GgufWriter, TensorSpec, Value};
use sha2::{Digest, Sha256};

pub use arch::Family;
pub use config::Config;
pub use encode::OutType;
pub use error::ConvertError;
pub use weights::Weights;

use arch::{permute_rows, Change, Placement};

/// Bumped when the converter writes a different file for the same checkpoint.
const CONVERTER_VERSION: &str = "assay-convert/1";

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// The GGUF file.
    pub path: PathBuf,
    /// `general.architecture`.
    pub architecture: &'static str,
    /// Tensors written.
    pub tensors: usize,
    /// The precision of the weight matrices.
    pub out_type: OutType,
    /// Tokens in the vocabulary.
    pub n_tokens: usize,
}

/// Whether `dir` is a checkpoint folder (it has a `config.json`).
pub fn is_checkpoint_folder(dir: &Path) -> bool {
    dir.is_dir() && dir.join("config.json").is_file()
}

/// The precision the checkpoint was saved in (`torch_dtype`), F16 when it does not say.
pub fn checkpoint_out_type(dir: &Path) -> Result<OutType, ConvertError> {
    let config = Config::read(dir)?;
    Ok(config
        .torch_dtype()
        .and_then(OutType::parse)
        .unwrap_or(OutType::F16))
}

/// The files of a checkpoint that a conversion reads, in a fixed order.
fn input_files(dir: &Path) -> Result<Vec<PathBuf>, ConvertError> {
    let mut files: Vec<PathBuf> = [
        "config.json",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "chat_template.jinja",
        "model.safetensors.index.json",
        "model.safetensors",
    ]
    .iter()
    .map(|f| dir.join(f))
    .filter(|p| p.is_file())
    .collect();
    // The shards the index names (as the conversion reads them), else `model-*.safetensors`.
    let index = dir.join("model.safetensors.index.json");
    let named: Option<Vec<PathBuf>> = std::fs::read_to_string(&index)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|j| {
            let map = j.get("weight_map")?.as_object()?;
            Some(
                map.values()
                    .filter_map(|v| v.as_str())
                    .map(|n| dir.join(n))
                    .collect(),
            )
        });
    let mut shards: Vec<PathBuf> = match named {
        Some(named) => named.into_iter().filter(|p| p.is_file()).collect(),
        None => std::fs::read_dir(dir)
            .map_err(|e| ConvertError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.starts_with("model-") && name.ends_with(".safetensors")
            })
            .collect(),
    };
    shards.sort();
    shards.dedup();
    files.extend(shards);
    Ok(files)
}

/// A content key for converting the checkpoint in `dir` to `out_type`: the SHA-256 of every file
/// the conversion reads and of the converter's version, so a cached conversion is reused
/// exactly when it would come out the same. Hashes of large files are kept in `memo` (a folder)
/// under their path, size and modification time, so that a second run does not read gigabytes
/// again.
pub fn conversion_key(
    dir: &Path,
    out_type: OutType,
    memo: Option<&Path>,
) -> Result<String, ConvertError> {
    let mut hash = Sha256::new();
    hash.update(CONVERTER_VERSION.as_bytes());
    hash.update(out_type.name().as_bytes());
    for file in input_files(dir)? {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        hash.update(file_hash(&file, memo)?.as_bytes());
    }
    Ok(hex(&hash.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `file`, from `memo` where it was hashed before unchanged.
fn file_hash(file: &Path, memo: Option<&Path>) -> Result<String, ConvertError> {
    let meta = std::fs::metadata(file).map_err(|e| ConvertError::io(file, e))?;
    let stamp = memo.and_then(|dir| {
        let modified = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        let canonical = std::fs::canonicalize(file).ok()?;
        let id = hex(&Sha256::digest(
            format!(
                "{}\0{}\0{}",
                canonical.display(),
                meta.len(),
                modified.as_nanos()
            )
            .as_bytes(),
        ));
        Some(dir.join(id))
    });
    if let Some(known) = stamp.as_ref().and_then(|s| std::fs::read_to_string(s).ok()) {
        if known.len() == 64 {
            return Ok(known);
        }
    }
    let mut f = std::fs::File::open(file).map_err(|e| ConvertError::io(file, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| ConvertError::io(file, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hex(&hasher.finalize());
    if let Some(stamp) = stamp {
        if let Some(dir) = stamp.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(stamp, &digest);
    }
    Ok(digest)
}

/// A tensor to write: where it comes from and how it is stored.
struct Planned {
    spec: TensorSpec,
    source: Source,
    out_type: OutType,
}

enum Source {
    /// A checkpoint tensor and the change made to it.
    Checkpoint(String, Change),
    /// Values the converter computes.
    Computed(Vec<f32>),
}

/// Converts the checkpoint in `dir` into the GGUF file `out`, weight matrices in `out_type`
/// (one-dimensional tensors and norms stay F32, as llama.cpp's converter keeps them).
/// `progress(done, total)` is called in bytes of checkpoint read. Nothing is left at `out`
/// unless the whole file was written.
pub fn convert(
    dir: &Path,
    out: &Path,
    out_type: OutType,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Converted, ConvertError> {
    let config = Config::read(dir)?;
    let family = Family::of(&config)?;
    let weights = Weights::open(dir)?;
    let embed_name = weights
        .names()
        .find(|n| n.ends_with("embed_tokens.weight"))
        .map(str::to_string)
        .ok_or_else(|| {
            ConvertError::bad(
                dir,
                "no embed_tokens.weight tensor in the safetensors files",
            )
        })?;
    let embed_rows = weights
        .shape(&embed_name)
        .and_then(|s| s.first().copied())
        .unwrap_or(0);
    let vocab_size = config.opt_u64("vocab_size").map(|v| v as usize);
    let vocab = vocab::read(
        dir,
        family.prefers_sentencepiece(),
        if family.vocab_from_tokenizer() {
            None
        } else {
            vocab_size.or(Some(embed_rows))
        },
    )?;
    let mismatch = |why: String| {
        ConvertError::bad(
            dir,
            format!("{why}: the tokenizer files are not this model's (save the tokenizer the model was trained with beside it)"),
        )
    };
    let fits = if family.vocab_from_tokenizer() {
        vocab.n_tokens <= embed_rows
    } else {
        vocab.n_tokens == embed_rows
    };
    if !fits || vocab.n_defined > embed_rows {
        return Err(mismatch(format!(
            "the tokenizer has {} tokens but {embed_name} has {embed_rows} rows",
            vocab.n_defined.max(vocab.n_tokens)
        )));
    }
    for key in ["bos_token_id", "eos_token_id"] {
        if let Some(id) = config
            .opt_u64(key)
            .filter(|&id| id as usize >= vocab.n_defined)
        {
            return Err(mismatch(format!(
                "config.json's {key} {id} is past the tokenizer's {} tokens",
                vocab.n_defined
            )));
        }
    }

    let arch_name = family.gguf_name();
    let mut name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    // llama.cpp gives Phi-3's special tokens their spacing when the name says Phi-3, looking up
    // `<s>`, `</s>`, `<unk>` and `<|endoftext|>` (it fails to load a vocabulary without them).
    let phi3_tokens = ["<s>", "</s>", "<unk>", "<|endoftext|>"]
        .iter()
        .all(|t| vocab.has_token(t));
    let says_phi3 =
        |n: &str| n.to_lowercase().contains("phi3") || n.to_lowercase().contains("phi-3");
    if family == Family::Phi3 && phi3_tokens && !says_phi3(&name) {
        name = format!("Phi-3 {name}");
    } else if !phi3_tokens && says_phi3(&name) {
        name = name
            .to_lowercase()
            .replace("phi-3", "phi 3")
            .replace("phi3", "phi 3");
    }
    let mut metadata: Vec<(String, Value)> = vec![
        (
            "general.architecture".into(),
            Value::String(arch_name.into()),
        ),
        ("general.type".into(), Value::String("model".into())),
        ("general.name".into(), Value::String(name)),
    ];
    metadata.extend(family.metadata(&config)?);
    metadata.push(("general.file_type".into(), Value::U32(out_type.file_type())));
    metadata.push(("general.quantization_version".into(), Value::U32(2)));
    metadata.extend(vocab.metadata.iter().cloned());

    let mut planned: Vec<Planned> = Vec::new();
    for (name, values) in family.extra_tensors(&config)? {
        planned.push(Planned {
            spec: TensorSpec {
                name,
                dims: vec![values.len() as u64],
                ggml_type: OutType::F32.ggml_type(),
            },
            source: Source::Computed(values),
            out_type: OutType::F32,
        });
    }
    for name in weights.names() {
        let Placement::Tensor(m) = family.place(&config, name, vocab.n_tokens)? else {
            continue;
        };
        let shape = weights.shape(name).unwrap_or(&[]);
        let mut dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        if let Change::FirstRows { rows } = m.change {
            if let Some(last) = dims.last_mut() {
                *last = (*last).min(rows as u64);
            }
        }
        let t = if dims.len() <= 1
            || m.name.ends_with("_norm.weight")
            || !m.name.ends_with(".weight")
        {
            OutType::F32
        } else if out_type.fits(dims[0] as usize) {
            out_type
        } else {
            OutType::F16
        };
        planned.push(Planned {
            spec: TensorSpec {
                name: m.name,
                dims,
                ggml_type: t.ggml_type(),
            },
            source: Source::Checkpoint(name.to_string(), m.change),
            out_type: t,
        });
    }
    planned.sort_by_key(|p| order_key(&p.spec.name));
    check_layers(dir, &config, &planned)?;

    let specs: Vec<TensorSpec> = planned.iter().map(|p| p.spec.clone()).collect();
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ConvertError::io(parent, e))?;
    }
    let mut writer = GgufWriter::create(out, &metadata, &specs)?;
    check_space(out, writer.planned_bytes())?;
    let total = weights.total_bytes();
    let mut done = 0u64;
    progress(0, total);
    for p in &planned {
        let values = match &p.source {
            Source::Computed(v) => v.clone(),
            Source::Checkpoint(name, change) => {
                let t = weights.read(name)?;
                done +=
                    (t.values.len() * weights.dtype(name).map_or(32, |d| d.bitsize()) / 8) as u64;
                apply(dir, name, t, *change)?
            }
        };
        writer.write_tensor(&p.out_type.encode(&values))?;
        progress(done, total);
    }
    writer.finish()?;
    Ok(Converted {
        path: out.to_path_buf(),
        architecture: arch_name,
        tensors: planned.len(),
        out_type,
        n_tokens: vocab.n_tokens,
    })
}

/// Sorts tensors as llama.cpp's files list them: the embeddings, the layers in order, the rest.
fn order_key(name: &str) -> (usize, usize, String) {
    if let Some(rest) = name.strip_prefix("blk.") {
        let layer = rest
            .split('.')
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        return (1, layer, name.to_string());
    }
    let group = if name.starts_with("token_embd") || name.starts_with("rope_") {
        0
    } else {
        2
    };
    (group, 0, name.to_string())
}

/// Every layer `config.json` declares has its attention and feed-forward weights: a shard
/// missing from a `model.safetensors.index.json`-less copy, or a truncated save, stops here.
fn check_layers(dir: &Path, config: &Config, planned: &[Planned]) -> Result<(), ConvertError> {
    let layers = config.u64("num_hidden_layers")? as usize;
    let has = |name: &str| planned.iter().any(|p| p.spec.name == name);
    for l in 0..layers {
        let attn =
            has(&format!("blk.{l}.attn_q.weight")) || has(&format!("blk.{l}.attn_qkv.weight"));
        if !attn || !has(&format!("blk.{l}.ffn_down.weight")) {
            return Err(ConvertError::bad(
                dir,
                format!("layer {l} of {layers} has no attention or feed-forward weights in the safetensors files: the checkpoint is incomplete"),
            ));
        }
    }
    Ok(())
}

/// Fails early when the disk holding `out` has less than `bytes` free.
fn check_space(out: &Path, bytes: u64) -> Result<(), ConvertError> {
    let dir = out.parent().unwrap_or(Path::new("."));
    let Some(free) = free_bytes(dir) else {
        return Ok(());
    };
    if free < bytes {
        return Err(ConvertError::NoSpace {
            path: out.to_path_buf(),
            needed_gb: bytes as f64 / 1e9,
            free_gb: free as f64 / 1e9,
        });
    }
    Ok(())
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// The values of a checkpoint tensor after `change`.
fn apply(
    dir: &Path,
    name: &str,
    t: weights::Tensor,
    change: Change,
) -> Result<Vec<f32>, ConvertError> {
    Ok(match change {
        Change::None => t.values,
        Change::AddOne => t.values.into_iter().map(|v| v + 1.0).collect(),
        Change::FirstRows { rows } => {
            let cols: usize = t.shape.iter().skip(1).product();
            let mut v = t.values;
            v.truncate(rows * cols);
            v
        }
        Change::Permute { heads } => {
            let rows = t.shape.first().copied().unwrap_or(0);
            let cols: usize = t.shape.iter().skip(1).product::<usize>().max(1);
            permute_rows(&t.values, rows, cols, heads).ok_or_else(|| {
                ConvertError::bad(
                    dir,
                    format!("{name}: {rows} rows do not split into {heads} heads of rotary pairs: config.json's head counts do not fit the weights"),
                )
            })?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_too_small_is_an_error_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.gguf");
        check_space(&out, 1 << 20).unwrap();
        let err = check_space(&out, u64::MAX).unwrap_err().to_string();
        assert!(err.contains("the conversion needs"), "{err}");
        assert!(err.contains("ASSAY_CACHE_DIR"), "{err}");
        assert!(!out.exists());
    }

    #[test]
    fn keys_change_with_any_input_file_and_the_precision() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), "weights").unwrap();
        let memo = dir.path().join("memo");
        let key = |t| conversion_key(dir.path(), t, Some(&memo)).unwrap();
        let f16 = key(OutType::F16);
        assert_eq!(f16, key(OutType::F16), "memoised hashes give the same key");
        assert_ne!(f16, key(OutType::Q8_0));
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        assert_ne!(
            f16,
            key(OutType::F16),
            "a new tokenizer file converts again"
        );
    }
}
