//! Merging a LoRA adapter into a model file: every tensor the adapter touches becomes
//! W + scale · (alpha / rank) · B·A in F32 (dequantized first with ggml's own routines), the
//! rest is copied byte for byte. This is the same sum llama.cpp adds at run time, so the merged
//! model and the base model with the adapter applied give the same losses up to float rounding
//! (and up to the quantization of the touched tensors' activations on a quantized base).

use std::collections::HashMap;
use std::path::Path;

use assay_gguf::container::{write_gguf, Gguf, TensorInfo, Value};
use assay_gguf::types::tensor_bytes;
use assay_gguf::GgufError;

use crate::LlamaError;

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

fn bad(path: &Path, reason: String) -> LlamaError {
    LlamaError::Adapter {
        path: path.to_path_buf(),
        reason,
    }
}

fn bad_shape(path: &Path, tensor: &TensorInfo, reason: impl Into<String>) -> LlamaError {
    LlamaError::LoraShape {
        path: path.to_path_buf(),
        tensor: tensor.name.clone(),
        reason: format!("shape {:?}: {}", tensor.dims, reason.into()),
    }
}

/// A tensor's (fastest, slowest) dimensions as a matrix: one or two dimensions, none zero. A
/// 0-d tensor, a stacked 3-d one (expert weights) or an empty one cannot be merged.
fn matrix(path: &Path, tensor: &TensorInfo) -> Result<(u64, u64), LlamaError> {
    let (rows_of, rows) = match tensor.dims[..] {
        [] => return Err(bad_shape(path, tensor, "a LoRA merge needs a matrix, this tensor has no dimension")),
        [n] => (n, 1),
        [n, m] => (n, m),
        _ => {
            return Err(bad_shape(
                path,
                tensor,
                format!(
                    "a LoRA merge needs a matrix, this tensor has {} dimensions (stacked expert weights are not supported)",
                    tensor.dims.len()
                ),
            ))
        }
    };
    if rows_of == 0 || rows == 0 {
        return Err(bad_shape(path, tensor, "a dimension is 0"));
    }
    Ok((rows_of, rows))
}

/// Dequantizes a tensor's data to F32 with ggml's routine for its type.
pub fn to_f32(tensor: &TensorInfo, data: &[u8]) -> Result<Vec<f32>, LlamaError> {
    let n: u64 = tensor.dims.iter().product();
    // ggml reads as many bytes as the type and dimensions say: `data` must hold exactly that
    // (an unknown type id would also index past ggml's table).
    let expected = tensor_bytes(tensor.ggml_type, &tensor.dims);
    if expected != Some(data.len()) {
        return Err(GgufError::NotGguf {
            path: Default::default(),
            reason: format!(
                "tensor {} of type {} and dimensions {:?} needs {} bytes, and {} were given",
                tensor.name,
                tensor.ggml_type,
                tensor.dims,
                expected.map_or_else(|| "an unknown number of".to_string(), |b| b.to_string()),
                data.len()
            ),
        }
        .into());
    }
    if tensor.ggml_type == F32 {
        return Ok(data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect());
    }
    // SAFETY: the type id is one ggml knows (checked above), so ggml returns a static table
    // entry; `to_float` reads exactly `n` elements' worth of blocks from `data`, whose length
    // was checked above against the type's block size and the dimensions.
    unsafe {
        let traits =
            llama_cpp_sys_2::ggml_get_type_traits(tensor.ggml_type as llama_cpp_sys_2::ggml_type);
        let Some(convert) = traits.as_ref().and_then(|t| t.to_float) else {
            return Err(GgufError::NotGguf {
                path: Default::default(),
                reason: format!(
                    "tensor {}: ggml cannot dequantize type {}",
                    tensor.name, tensor.ggml_type
                ),
            }
            .into());
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
) -> Result<MergeSummary, LlamaError> {
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
        let (n_in, n_out) = matrix(adapter, t)?;
        let (a_in, r) = matrix(adapter, a)?;
        let (b_r, b_out) = matrix(adapter, b)?;
        if a_in != n_in || b_out != n_out || b_r != r {
            return Err(bad_shape(
                adapter,
                t,
                format!(
                    "the adapter's {} {:?} and {} {:?} do not fit it (A must be [{n_in}, r], B [r, {n_out}])",
                    a.name, a.dims, b.name, b.dims
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
        for (tensor, values, expected) in [
            (t, &w, n_in as u64 * n_out),
            (a, &av, n_in as u64 * r as u64),
            (b, &bv, r as u64 * n_out),
        ] {
            if values.len() as u64 != expected {
                return Err(bad_shape(
                    adapter,
                    tensor,
                    format!("{} values, expected {expected}", values.len()),
                ));
            }
        }
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

/// What stacking adapters wrote.
#[derive(Debug, Clone)]
pub struct StackSummary {
    /// Base tensors the stacked adapter changes.
    pub tensors: usize,
    /// The largest combined rank of a tensor.
    pub rank: u64,
}

/// An adapter file's pairs of A and B by target tensor, with its factor per rank.
struct Adapter {
    gguf: Gguf,
    alpha: f32,
    scale: f32,
}

impl Adapter {
    fn open(path: &Path, scale: f32) -> Result<Adapter, LlamaError> {
        let gguf = Gguf::open(path)?;
        match gguf.get("general.type") {
            Some(Value::String(t)) if t == "adapter" => {}
            _ => {
                return Err(bad(
                    path,
                    "not an adapter: `general.type` is not \"adapter\"".into(),
                ))
            }
        }
        let alpha = gguf
            .get("adapter.lora.alpha")
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as f32;
        Ok(Adapter { gguf, alpha, scale })
    }

    /// The factor llama.cpp applies to B·A of a tensor of rank `r` at this adapter's scale.
    fn factor(&self, r: u64) -> f32 {
        if self.alpha != 0.0 {
            self.scale * self.alpha / r as f32
        } else {
            self.scale
        }
    }
}

/// Writes `out`: one adapter equal to the sum of `adapters` (file, scale), applied at scale 1.
/// llama.cpp adds `factor · B·A` per adapter; the sum of several is one adapter whose A stacks
/// the A's rows and whose B puts each factor-scaled B side by side (rank r1 + r2 + ...), written
/// without an alpha so that llama.cpp applies it as it is. Exact, for run time and for merges.
pub fn stack(adapters: &[(&Path, f32)], out: &Path) -> Result<StackSummary, LlamaError> {
    let opened: Vec<(&Path, Adapter)> = adapters
        .iter()
        .map(|(p, s)| Ok((*p, Adapter::open(p, *s)?)))
        .collect::<Result<_, LlamaError>>()?;
    let Some((first_path, first)) = opened.first() else {
        return Err(bad(out, "no adapters to stack".into()));
    };
    let arch = first.gguf.get("general.architecture");
    for (path, a) in &opened {
        if a.gguf.get("general.architecture") != arch {
            return Err(bad(
                path,
                format!(
                    "made for architecture {:?}, {} for {arch:?}: stacked adapters must share a base",
                    a.gguf.get("general.architecture"),
                    first_path.display()
                ),
            ));
        }
    }
    let mut targets: Vec<String> = opened
        .iter()
        .flat_map(|(_, a)| a.gguf.tensors.iter())
        .filter_map(|t| t.name.strip_suffix(".lora_a").map(str::to_string))
        .collect();
    targets.sort();
    targets.dedup();
    let mut tensors = Vec::with_capacity(targets.len() * 2);
    let mut max_rank = 0;
    for target in &targets {
        // (A values [r][in], B values [out][r], r, factor) of each adapter touching `target`.
        let mut parts: Vec<(Vec<f32>, Vec<f32>, usize, f32)> = Vec::new();
        let (mut n_in, mut n_out) = (None, None);
        for (path, a) in &opened {
            let (Some(ta), Some(tb)) = (
                a.gguf.tensor(&format!("{target}.lora_a")),
                a.gguf.tensor(&format!("{target}.lora_b")),
            ) else {
                if a.gguf.tensor(&format!("{target}.lora_b")).is_some() {
                    return Err(bad(
                        path,
                        format!("{target} has only one of lora_a and lora_b"),
                    ));
                }
                continue;
            };
            let (a_in, r) = matrix(path, ta)?;
            let (b_r, b_out) = matrix(path, tb)?;
            if b_r != r || n_in.is_some_and(|n| n != a_in) || n_out.is_some_and(|n| n != b_out) {
                return Err(bad_shape(
                    path,
                    tb,
                    format!("does not fit the other adapters' {target} (A [{a_in}, {r}], B [{b_r}, {b_out}])"),
                ));
            }
            n_in = Some(a_in);
            n_out = Some(b_out);
            let av = to_f32(ta, &a.gguf.read_tensor(ta)?)?;
            let bv = to_f32(tb, &a.gguf.read_tensor(tb)?)?;
            parts.push((av, bv, r as usize, a.factor(r)));
        }
        let (Some(n_in), Some(n_out)) = (n_in, n_out) else {
            continue;
        };
        let rank: usize = parts.iter().map(|p| p.2).sum();
        max_rank = max_rank.max(rank as u64);
        let a: Vec<u8> = parts
            .iter()
            .flat_map(|p| p.0.iter())
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let mut b = Vec::with_capacity(n_out as usize * rank * 4);
        for o in 0..n_out as usize {
            for (_, bv, r, factor) in &parts {
                for x in &bv[o * r..(o + 1) * r] {
                    b.extend_from_slice(&(factor * x).to_le_bytes());
                }
            }
        }
        tensors.push((format!("{target}.lora_a"), vec![n_in, rank as u64], F32, a));
        tensors.push((format!("{target}.lora_b"), vec![rank as u64, n_out], F32, b));
    }
    let metadata: Vec<(String, Value)> = first
        .gguf
        .metadata
        .iter()
        .filter(|(k, _)| k != "adapter.lora.alpha")
        .cloned()
        .collect();
    write_gguf(out, &metadata, &tensors)?;
    Ok(StackSummary {
        tensors: tensors.len() / 2,
        rank: max_rank,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assay_gguf_knows_the_tensor_types_of_the_linked_ggml() {
        assert_eq!(
            assay_gguf::types::TYPE_COUNT,
            llama_cpp_sys_2::GGML_TYPE_COUNT
        );
        for id in 0..llama_cpp_sys_2::GGML_TYPE_COUNT {
            let t = id as llama_cpp_sys_2::ggml_type;
            // SAFETY: `t` is below GGML_TYPE_COUNT: both calls only read ggml's table of types.
            let (block, bytes) = unsafe {
                (
                    llama_cpp_sys_2::ggml_blck_size(t),
                    llama_cpp_sys_2::ggml_type_size(t),
                )
            };
            let known = assay_gguf::types::ggml_type(id);
            if block == 0 {
                assert_eq!(known, None, "type {id} was removed from ggml");
                continue;
            }
            let known = known.unwrap_or_else(|| panic!("type {id} is missing"));
            assert_eq!(
                (known.block_size, known.block_bytes),
                (block as u64, bytes as u64),
                "type {id} ({})",
                known.name
            );
        }
    }

    #[test]
    fn to_f32_refuses_data_of_another_length_or_an_unknown_type() {
        let info = |ggml_type: u32, dims: &[u64]| TensorInfo {
            name: "w".into(),
            dims: dims.to_vec(),
            ggml_type,
            offset: 0,
        };
        // F16 [4]: 8 bytes; given 2, ggml would read past the slice.
        let err = to_f32(&info(1, &[4]), &[0; 2]).unwrap_err().to_string();
        assert!(err.contains("needs 8 bytes, and 2 were given"), "{err}");
        assert!(to_f32(&info(1, &[4]), &[0; 8]).is_ok());
        assert!(to_f32(&info(F32, &[4]), &[0; 12]).is_err());
        let err = to_f32(&info(9999, &[4]), &[0; 8]).unwrap_err().to_string();
        assert!(err.contains("unknown number of"), "{err}");
    }

    fn f32s(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A tensor of `dims` holding 1, 2, 3, ... in F32.
    fn tensor(name: &str, dims: &[u64]) -> (String, Vec<u64>, u32, Vec<u8>) {
        let n: u64 = dims.iter().product();
        let values: Vec<f32> = (1..=n).map(|i| i as f32).collect();
        (name.to_string(), dims.to_vec(), F32, f32s(&values))
    }

    /// Merges an adapter with A and B of the given shapes into a model with one weight `w`.
    fn merge_shapes(w: &[u64], a: &[u64], b: &[u64]) -> Result<MergeSummary, LlamaError> {
        let dir = tempfile::tempdir().unwrap();
        let (base, adapter, out) = (
            dir.path().join("base.gguf"),
            dir.path().join("adapter.gguf"),
            dir.path().join("out.gguf"),
        );
        write_gguf(&base, &[], &[tensor("w", w)]).unwrap();
        let meta = [("general.type".to_string(), Value::String("adapter".into()))];
        write_gguf(
            &adapter,
            &meta,
            &[tensor("w.lora_a", a), tensor("w.lora_b", b)],
        )
        .unwrap();
        let summary = merge(&base, &adapter, 1.0, &out)?;
        let merged = Gguf::open(&out).unwrap();
        let t = merged.tensor("w").unwrap();
        assert_eq!(t.dims, w);
        Ok(summary)
    }

    #[test]
    fn a_stack_of_adapters_merges_as_the_adapters_one_after_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n);
        write_gguf(
            &path("base.gguf"),
            &[],
            &[tensor("w", &[3, 2]), tensor("v", &[3, 2])],
        )
        .unwrap();
        let adapter = |alpha: Option<f32>| {
            let mut meta = vec![("general.type".to_string(), Value::String("adapter".into()))];
            if let Some(a) = alpha {
                meta.push(("adapter.lora.alpha".into(), Value::F32(a)));
            }
            meta
        };
        // Rank 1 on w, alpha 2; rank 2 on w and v, no alpha.
        write_gguf(
            &path("one.gguf"),
            &adapter(Some(2.0)),
            &[
                ("w.lora_a".into(), vec![3, 1], F32, f32s(&[1.0, 0.0, -1.0])),
                ("w.lora_b".into(), vec![1, 2], F32, f32s(&[2.0, 10.0])),
            ],
        )
        .unwrap();
        write_gguf(
            &path("two.gguf"),
            &adapter(None),
            &[
                tensor("w.lora_a", &[3, 2]),
                tensor("w.lora_b", &[2, 2]),
                tensor("v.lora_a", &[3, 2]),
                tensor("v.lora_b", &[2, 2]),
            ],
        )
        .unwrap();
        let summary = stack(
            &[(&path("one.gguf"), 0.5), (&path("two.gguf"), 0.25)],
            &path("stack.gguf"),
        )
        .unwrap();
        assert_eq!((summary.tensors, summary.rank), (2, 3));
        merge(
            &path("base.gguf"),
            &path("stack.gguf"),
            1.0,
            &path("stacked.gguf"),
        )
        .unwrap();
        merge(
            &path("base.gguf"),
            &path("one.gguf"),
            0.5,
            &path("first.gguf"),
        )
        .unwrap();
        merge(
            &path("first.gguf"),
            &path("two.gguf"),
            0.25,
            &path("both.gguf"),
        )
        .unwrap();
        let values = |file: &str, name: &str| {
            let g = Gguf::open(&path(file)).unwrap();
            let t = g.tensor(name).unwrap();
            to_f32(t, &g.read_tensor(t).unwrap()).unwrap()
        };
        for name in ["w", "v"] {
            assert_eq!(
                values("stacked.gguf", name),
                values("both.gguf", name),
                "{name}"
            );
        }
        let err = stack(
            &[(&path("one.gguf"), 1.0), (&path("base.gguf"), 1.0)],
            &path("x.gguf"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not an adapter"), "{err}");
    }

    #[test]
    fn merges_b_times_a_into_the_weight() {
        let dir = tempfile::tempdir().unwrap();
        let (base, adapter, out) = (
            dir.path().join("base.gguf"),
            dir.path().join("adapter.gguf"),
            dir.path().join("out.gguf"),
        );
        // W: 2 outputs of 3 inputs; A: rank 1 over the inputs; B: rank 1 to the outputs.
        write_gguf(&base, &[], &[tensor("w", &[3, 2])]).unwrap();
        let meta = [("general.type".to_string(), Value::String("adapter".into()))];
        write_gguf(
            &adapter,
            &meta,
            &[
                ("w.lora_a".into(), vec![3, 1], F32, f32s(&[1.0, 0.0, -1.0])),
                ("w.lora_b".into(), vec![1, 2], F32, f32s(&[2.0, 10.0])),
            ],
        )
        .unwrap();
        let summary = merge(&base, &adapter, 0.5, &out).unwrap();
        assert_eq!((summary.merged, summary.rank), (vec!["w".to_string()], 1));
        let g = Gguf::open(&out).unwrap();
        let t = g.tensor("w").unwrap();
        let w = to_f32(t, &g.read_tensor(t).unwrap()).unwrap();
        assert_eq!(w, [2.0, 2.0, 2.0, 9.0, 5.0, 1.0]);
    }

    #[test]
    fn shapes_that_cannot_be_merged_are_errors_naming_the_tensor() {
        // Each of these indexed a missing dimension, chunked by 0 or ran past B's rows (a 3-d
        // expert weight) before; the last two were merged wrong or reported without a shape.
        for (w, a, b, tensor, shape, reason) in [
            (&[][..], &[1, 1][..], &[1, 1][..], "w", "[]", "no dimension"),
            (
                &[3, 2, 4],
                &[3, 1],
                &[1, 2],
                "w",
                "[3, 2, 4]",
                "3 dimensions",
            ),
            (&[3, 2], &[], &[1, 2], "w.lora_a", "[]", "no dimension"),
            (&[3, 2], &[3, 1], &[], "w.lora_b", "[]", "no dimension"),
            (&[0, 2], &[0, 1], &[1, 2], "w", "[0, 2]", "a dimension is 0"),
            (
                &[3, 2],
                &[3, 0],
                &[0, 2],
                "w.lora_a",
                "[3, 0]",
                "a dimension is 0",
            ),
            (
                &[3, 2],
                &[3, 1, 2],
                &[1, 2],
                "w.lora_a",
                "[3, 1, 2]",
                "3 dimensions",
            ),
            (&[3, 2], &[3, 2], &[1, 2], "w", "[3, 2]", "do not fit"),
        ] {
            let err = merge_shapes(w, a, b).unwrap_err();
            assert!(
                matches!(&err, LlamaError::LoraShape { tensor: t, .. } if t == tensor),
                "{w:?} {a:?} {b:?}: {err}"
            );
            let text = err.to_string();
            assert!(
                text.contains(&format!("tensor {tensor} has shape {shape}"))
                    && text.contains(reason),
                "{text}"
            );
        }
        assert_eq!(merge_shapes(&[3], &[3, 2], &[2, 1]).unwrap().rank, 2);
    }
}
