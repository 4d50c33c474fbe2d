//! Merging a LoRA adapter into a model file: every tensor the adapter touches becomes
//! W + scale · (alpha / rank) · B·A in F32 (dequantized first with ggml's own routines), the
//! rest is copied byte for byte. This is the same sum llama.cpp adds at run time, so the merged
//! model and the base model with the adapter applied give the same losses up to float rounding
//! (and up to the quantization of the touched tensors' activations on a quantized base).

use std::collections::HashMap;
use std::path::Path;

use crate::gguf::container::{tensor_bytes, write_gguf, Gguf, TensorInfo, Value};
use crate::EngineError;

/// ggml's type id of F32.
const F32: u32 = 0;

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeSummary {
    /// Tensors changed.
    pub merged: Vec<String>,
    /// Rank of the adapter.
    pub rank: u64,
    /// `adapter.lora.alpha` (0 when absent).
    pub alpha: f32,
    /// The factor applied to B·A: scale · alpha / rank (or scale without alpha).
    pub factor: f32,
}

fn bad(path: &Path, reason: String) -> EngineError {
    EngineError::Adapter {
        path: path.to_path_buf(),
        reason,
    }
}

/// Dequantizes a tensor's data to F32 with ggml's routine for its type.
pub fn to_f32(tensor: &TensorInfo, data: &[u8]) -> Result<Vec<f32>, EngineError> {
    let n: u64 = tensor.dims.iter().product();
    if tensor.ggml_type == F32 {
        return Ok(data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect());
    }
    // SAFETY: ggml returns a static table entry for every type id; `to_float` reads exactly
    // `n` elements' worth of blocks from `data`, whose length was checked against ggml's own
    // row size when the tensor was read.
    unsafe {
        let traits =
            llama_cpp_sys_2::ggml_get_type_traits(tensor.ggml_type as llama_cpp_sys_2::ggml_type);
        let Some(convert) = traits.as_ref().and_then(|t| t.to_float) else {
            return Err(EngineError::NotGguf {
                path: Default::default(),
                reason: format!(
                    "tensor {}: ggml cannot dequantize type {}",
                    tensor.name, tensor.ggml_type
                ),
            });
        };
        let mut out = vec![0f32; n as usize];
        convert(data.as_ptr().cast(), out.as_mut_ptr(), n as i64);
        Ok(out)
    }
}

/// Writes `out`: the model at `base` with the LoRA adapter at `adapter` merged in at `scale`.
pub fn merge(
    base: &Path,
    adapter: &Path,
    scale: f32,
    out: &Path,
) -> Result<MergeSummary, EngineError> {
    let model = Gguf::open(base)?;
    let lora = Gguf::open(adapter)?;
    match lora.get("general.type") {
        Some(Value::String(t)) if t == "adapter" => {}
        _ => {
            return Err(bad(
                adapter,
                "not an adapter: `general.type` is not \"adapter\"".into(),
            ))
        }
    }
    if let (Some(a), Some(b)) = (
        lora.get("general.architecture"),
        model.get("general.architecture"),
    ) {
        if a != b {
            return Err(bad(
                adapter,
                format!("made for architecture {a:?}, the model is {b:?}"),
            ));
        }
    }
    let alpha = lora
        .get("adapter.lora.alpha")
        .and_then(Value::as_f64)
        .unwrap_or(0.0) as f32;
    let mut pairs: HashMap<&str, (Option<&TensorInfo>, Option<&TensorInfo>)> = HashMap::new();
    for t in &lora.tensors {
        if let Some(target) = t.name.strip_suffix(".lora_a") {
            pairs.entry(target).or_default().0 = Some(t);
        } else if let Some(target) = t.name.strip_suffix(".lora_b") {
            pairs.entry(target).or_default().1 = Some(t);
        } else {
            return Err(bad(
                adapter,
                format!("tensor {} is neither a .lora_a nor a .lora_b", t.name),
            ));
        }
    }
    let mut rank = 0;
    let mut tensors = Vec::with_capacity(model.tensors.len());
    let mut merged = Vec::new();
    let mut factor = scale;
    for t in &model.tensors {
        let data = model.read_tensor(t)?;
        let Some(&(a, b)) = pairs.get(t.name.as_str()) else {
            tensors.push((t.name.clone(), t.dims.clone(), t.ggml_type, data));
            continue;
        };
        let (Some(a), Some(b)) = (a, b) else {
            return Err(bad(
                adapter,
                format!("{} has only one of lora_a and lora_b", t.name),
            ));
        };
        // ggml layout: W ne = [in, out]; A ne = [in, r]; B ne = [r, out].
        let (n_in, n_out) = (t.dims[0], t.dims.get(1).copied().unwrap_or(1));
        let r = a.dims.get(1).copied().unwrap_or(1);
        if a.dims[0] != n_in || b.dims.get(1).copied().unwrap_or(1) != n_out || b.dims[0] != r {
            return Err(bad(
                adapter,
                format!(
                    "{}: shapes A {:?}, B {:?} do not fit W {:?}",
                    t.name, a.dims, b.dims, t.dims
                ),
            ));
        }
        rank = r;
        factor = if alpha != 0.0 {
            scale * alpha / r as f32
        } else {
            scale
        };
        let mut w = to_f32(t, &data)?;
        let av = to_f32(a, &lora.read_tensor(a)?)?;
        let bv = to_f32(b, &lora.read_tensor(b)?)?;
        let (n_in, r) = (n_in as usize, r as usize);
        for (o, row) in w.chunks_exact_mut(n_in).enumerate() {
            let brow = &bv[o * r..(o + 1) * r];
            for (k, bk) in brow.iter().enumerate() {
                let coef = factor * bk;
                if coef == 0.0 {
                    continue;
                }
                let arow = &av[k * n_in..(k + 1) * n_in];
                for (x, a) in row.iter_mut().zip(arow) {
                    *x += coef * a;
                }
            }
        }
        let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        debug_assert_eq!(Some(bytes.len()), tensor_bytes(F32, &t.dims));
        tensors.push((t.name.clone(), t.dims.clone(), F32, bytes));
        merged.push(t.name.clone());
    }
    if merged.len() != pairs.len() {
        let missing: Vec<&&str> = pairs
            .keys()
            .filter(|k| !merged.iter().any(|m| m == **k))
            .collect();
        return Err(bad(
            adapter,
            format!("targets tensors the model does not have: {missing:?}"),
        ));
    }
    write_gguf(out, &model.metadata, &tensors)?;
    Ok(MergeSummary {
        merged,
        rank,
        alpha,
        factor,
    })
}
