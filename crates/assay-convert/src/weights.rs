//! A checkpoint's weights: one `model.safetensors`, or the shards a
//! `model.safetensors.index.json` names, memory-mapped so that a model larger than memory converts
//! one tensor at a time.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::ConvertError;

/// One tensor in a shard.
#[derive(Debug, Clone)]
struct Entry {
    shard: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// The weights of a checkpoint, by name.
pub struct Weights {
    shards: Vec<(PathBuf, Mmap)>,
    entries: BTreeMap<String, Entry>,
}

/// A tensor's values as 32-bit floats, row-major, with its shape.
pub struct Tensor {
    /// Row-major shape, as PyTorch gives it (`[out, in]` for a linear layer).
    pub shape: Vec<usize>,
    /// The values.
    pub values: Vec<f32>,
}

impl Weights {
    /// Opens the safetensors files of the checkpoint in `dir`.
    pub fn open(dir: &Path) -> Result<Weights, ConvertError> {
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|e| ConvertError::io(&index, e))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ConvertError::Bad {
                    path: index.clone(),
                    reason: e.to_string(),
                })?;
            let Some(map) = json.get("weight_map").and_then(|m| m.as_object()) else {
                return Err(ConvertError::Bad {
                    path: index,
                    reason: "no `weight_map` object".into(),
                });
            };
            let mut names: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
            if let Some(missing) = files.iter().find(|f| !f.is_file()) {
                return Err(ConvertError::Bad {
                    path: missing.clone(),
                    reason: format!(
                        "a shard {} names is missing; download the whole checkpoint again",
                        index.display()
                    ),
                });
            }
            files
        } else if dir.join("model.safetensors").is_file() {
            vec![dir.join("model.safetensors")]
        } else {
            let bin = ["pytorch_model.bin", "pytorch_model.bin.index.json"]
                .iter()
                .any(|f| dir.join(f).is_file());
            return Err(ConvertError::Bad {
                path: dir.to_path_buf(),
                reason: if bin {
                    "the weights are pickled PyTorch files (pytorch_model.bin); save the checkpoint with safe_serialization=True (model.safetensors)".into()
                } else {
                    "no model.safetensors or model.safetensors.index.json: not a checkpoint with its weights".into()
                },
            });
        };
        let mut shards = Vec::with_capacity(files.len());
        let mut entries = BTreeMap::new();
        for (i, path) in files.into_iter().enumerate() {
            let file = File::open(&path).map_err(|e| ConvertError::io(&path, e))?;
            // SAFETY: the file is only read; a checkpoint changed while it converts is the
            // user's race, as with any reader of it.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| ConvertError::io(&path, e))?;
            let (header, metadata) =
                SafeTensors::read_metadata(&map).map_err(|e| ConvertError::Bad {
                    path: path.clone(),
                    reason: format!("not a readable safetensors file: {e}"),
                })?;
            let base = 8 + header;
            for (name, info) in metadata.tensors() {
                entries.insert(
                    name,
                    Entry {
                        shard: i,
                        dtype: info.dtype,
                        shape: info.shape.clone(),
                        start: base + info.data_offsets.0,
                        end: base + info.data_offsets.1,
                    },
                );
            }
            shards.push((path, map));
        }
        Ok(Weights { shards, entries })
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The shape of `name`.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// The storage type of `name` (`F32`, `F16`, `BF16`, ...).
    pub fn dtype(&self, name: &str) -> Option<Dtype> {
        self.entries.get(name).map(|e| e.dtype)
    }

    /// Bytes of all tensors, for progress.
    pub fn total_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| (e.end - e.start) as u64)
            .sum()
    }

    /// The file holding `name`.
    pub fn file_of(&self, name: &str) -> Option<&Path> {
        self.entries
            .get(name)
            .map(|e| self.shards[e.shard].0.as_path())
    }

    /// The values of `name` as F32.
    pub fn read(&self, name: &str) -> Result<Tensor, ConvertError> {
        let Some(e) = self.entries.get(name) else {
            return Err(ConvertError::Bad {
                path: self.shards.first().map(|s| s.0.clone()).unwrap_or_default(),
                reason: format!("no tensor {name}"),
            });
        };
        let (path, map) = &self.shards[e.shard];
        let bytes = &map[e.start..e.end];
        let values: Vec<f32> = match e.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ConvertError::Bad {
                    path: path.clone(),
                    reason: format!(
                        "tensor {name} is {other:?}; only F32, F16 and BF16 weights convert (a quantised checkpoint, e.g. GPTQ or bitsandbytes, needs dequantising first)"
                    ),
                })
            }
        };
        let expected: usize = e.shape.iter().product();
        if values.len() != expected {
            return Err(ConvertError::Bad {
                path: path.clone(),
                reason: format!(
                    "tensor {name}: {} values for shape {:?}",
                    values.len(),
                    e.shape
                ),
            });
        }
        Ok(Tensor {
            shape: e.shape.clone(),
            values,
        })
    }
}
