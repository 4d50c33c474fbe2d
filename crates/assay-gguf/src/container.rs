//! Reading and writing GGUF containers: metadata, tensor directory and tensor data, enough to
//! rewrite a model with some tensors replaced (LoRA merges) or to write an adapter.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::types::tensor_bytes;
use crate::GgufError;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 6.
    F32(f32),
    /// Type 7.
    Bool(bool),
    /// Type 8.
    String(String),
    /// Type 9: element type and elements.
    Array(u32, Vec<Value>),
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 12.
    F64(f64),
}

impl Value {
    fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(..) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    /// The value as a float, for numeric types.
    pub fn as_f64(&self) -> Option<f64> {
        Some(match self {
            Value::U8(v) => f64::from(*v),
            Value::I8(v) => f64::from(*v),
            Value::U16(v) => f64::from(*v),
            Value::I16(v) => f64::from(*v),
            Value::U32(v) => f64::from(*v),
            Value::I32(v) => f64::from(*v),
            Value::F32(v) => f64::from(*v),
            Value::U64(v) => *v as f64,
            Value::I64(v) => *v as f64,
            Value::F64(v) => *v,
            _ => return None,
        })
    }
}

/// A tensor's directory entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, fastest first (ggml's `ne`).
    pub dims: Vec<u64>,
    /// ggml type id (0 = F32, 1 = F16, 12 = Q4_K, ...).
    pub ggml_type: u32,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

/// A GGUF file's header: metadata and tensor directory.
#[derive(Debug, Clone)]
pub struct Gguf {
    /// The file.
    pub path: PathBuf,
    /// Format version.
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensors in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// Where the data section starts.
    pub data_start: u64,
}

struct Reader<R> {
    inner: R,
    path: PathBuf,
}

impl<R: Read> Reader<R> {
    fn bad(&self, reason: String) -> GgufError {
        GgufError::NotGguf {
            path: self.path.clone(),
            reason,
        }
    }
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.inner
            .read_exact(&mut b)
            .map_err(|e| self.bad(format!("truncated header: {e}")))?;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn string(&mut self) -> Result<String, GgufError> {
        let n = self.u64()?;
        if n > 1 << 30 {
            return Err(self.bad(format!("a string of {n} bytes")));
        }
        let mut b = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut b)
            .map_err(|e| self.bad(format!("truncated string: {e}")))?;
        String::from_utf8(b).map_err(|_| self.bad("a string that is not UTF-8".into()))
    }
    fn value(&mut self, t: u32) -> Result<Value, GgufError> {
        Ok(match t {
            0 => Value::U8(self.bytes::<1>()?[0]),
            1 => Value::I8(self.bytes::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.bytes()?)),
            3 => Value::I16(i16::from_le_bytes(self.bytes()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.bytes()?)),
            6 => Value::F32(f32::from_le_bytes(self.bytes()?)),
            7 => Value::Bool(self.bytes::<1>()?[0] != 0),
            8 => Value::String(self.string()?),
            9 => {
                let et = self.u32()?;
                let n = self.u64()?;
                if n > 1 << 28 {
                    return Err(self.bad(format!("an array of {n} elements")));
                }
                let items = (0..n).map(|_| self.value(et)).collect::<Result<_, _>>()?;
                Value::Array(et, items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.bytes()?)),
            12 => Value::F64(f64::from_le_bytes(self.bytes()?)),
            other => return Err(self.bad(format!("unknown metadata type {other}"))),
        })
    }
}

impl Gguf {
    /// Reads the header of the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<Gguf, GgufError> {
        super::check_header(path)?;
        let file = File::open(path).map_err(|source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut r = Reader {
            inner: BufReader::new(file),
            path: path.to_path_buf(),
        };
        let _magic: [u8; 4] = r.bytes()?;
        let version = r.u32()?;
        let n_tensors = r.u64()?;
        let n_kv = r.u64()?;
        let mut metadata = Vec::new();
        for _ in 0..n_kv {
            let key = r.string()?;
            let t = r.u32()?;
            metadata.push((key, r.value(t)?));
        }
        let mut tensors = Vec::new();
        for _ in 0..n_tensors {
            let name = r.string()?;
            let n_dims = r.u32()?;
            if n_dims > 4 {
                return Err(r.bad(format!("tensor {name} has {n_dims} dimensions")));
            }
            let dims: Vec<u64> = (0..n_dims).map(|_| r.u64()).collect::<Result<_, _>>()?;
            let ggml_type = r.u32()?;
            let offset = r.u64()?;
            if tensor_bytes(ggml_type, &dims).is_none() {
                return Err(r.bad(format!(
                    "tensor {name} has ggml type {ggml_type} and shape {dims:?}: not a valid tensor"
                )));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
            });
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => 32,
            Some((_, value)) => match value.as_f64() {
                Some(a) if a >= 1.0 && a <= f64::from(u32::MAX) && (a as u64).is_power_of_two() => {
                    a as u64
                }
                _ => {
                    return Err(r.bad(format!(
                        "general.alignment is {value:?}, expected a power of two"
                    )))
                }
            },
        };
        let position = r.inner.stream_position().map_err(|source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Gguf {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data_start: position.div_ceil(alignment) * alignment,
        })
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw bytes of `tensor`.
    pub fn read_tensor(&self, tensor: &TensorInfo) -> Result<Vec<u8>, GgufError> {
        let io = |source| GgufError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&self.path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let size = tensor_bytes(tensor.ggml_type, &tensor.dims);
        let start = self.data_start.checked_add(tensor.offset);
        let end = start.zip(size).and_then(|(s, n)| s.checked_add(n as u64));
        let (Some(start), Some(size), Some(end)) = (start, size, end) else {
            return Err(self.bad_tensor(tensor, "its size or offset overflows"));
        };
        if end > file_len {
            return Err(self.bad_tensor(
                tensor,
                &format!(
                    "its data would end at byte {end}, past the end of the file ({file_len} bytes)"
                ),
            ));
        }
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut data = vec![0u8; size];
        file.read_exact(&mut data).map_err(io)?;
        Ok(data)
    }

    fn bad_tensor(&self, tensor: &TensorInfo, why: &str) -> GgufError {
        GgufError::NotGguf {
            path: self.path.clone(),
            reason: format!("tensor {}: {why}", tensor.name),
        }
    }
}

/// Writes a GGUF file: `metadata`, then each tensor (name, dims, ggml type, data), data aligned
/// to 32 bytes. Written to a temporary file and renamed into place.
pub fn write_gguf(
    path: &Path,
    metadata: &[(String, Value)],
    tensors: &[(String, Vec<u64>, u32, Vec<u8>)],
) -> Result<(), GgufError> {
    const ALIGN: u64 = 32;
    let tmp = path.with_extension("gguf.partial");
    let io = |source| GgufError::Io {
        path: tmp.clone(),
        source,
    };
    let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
    let mut header: Vec<u8> = Vec::new();
    header.extend_from_slice(super::GGUF_MAGIC);
    header.extend_from_slice(&3u32.to_le_bytes());
    header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    let metadata: Vec<&(String, Value)> = metadata
        .iter()
        .filter(|(k, _)| k != "general.alignment")
        .collect();
    header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.push(*x as u8),
            Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => out.push(u8::from(*x)),
            Value::String(s) => string(out, s),
            Value::Array(t, items) => {
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for i in items {
                    value(out, i);
                }
            }
            Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
    for (k, v) in metadata {
        string(&mut header, k);
        header.extend_from_slice(&v.type_id().to_le_bytes());
        value(&mut header, v);
    }
    let mut offset = 0u64;
    for (name, dims, t, data) in tensors {
        if Some(data.len()) != tensor_bytes(*t, dims) {
            return Err(GgufError::NotGguf {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor {name}: {} bytes of data for dims {dims:?} of type {t}",
                    data.len()
                ),
            });
        }
        string(&mut header, name);
        header.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            header.extend_from_slice(&d.to_le_bytes());
        }
        header.extend_from_slice(&t.to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        offset = (offset + data.len() as u64).div_ceil(ALIGN) * ALIGN;
    }
    let pad = |len: u64| vec![0u8; (len.div_ceil(ALIGN) * ALIGN - len) as usize];
    let header_pad = pad(header.len() as u64);
    w.write_all(&header).map_err(io)?;
    w.write_all(&header_pad).map_err(io)?;
    for (_, _, _, data) in tensors {
        w.write_all(data).map_err(io)?;
        w.write_all(&pad(data.len() as u64)).map_err(io)?;
    }
    w.flush().map_err(io)?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(|source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF header with `metadata` (already encoded key-type-value triples) and one tensor.
    fn header(kv: &[u8], n_kv: u64, tensor: (&str, &[u64], u32)) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&1u64.to_le_bytes());
        out.extend_from_slice(&n_kv.to_le_bytes());
        out.extend_from_slice(kv);
        let (name, dims, ggml_type) = tensor;
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&ggml_type.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out
    }

    #[test]
    fn corrupt_headers_are_errors_not_panics() {
        // Found by fuzzing: general.alignment 0 divided by zero; then unknown or deprecated
        // types, shapes that are not whole blocks, sizes that overflow, data past the end.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gguf");
        let mut alignment_zero = Vec::new();
        alignment_zero.extend_from_slice(&17u64.to_le_bytes());
        alignment_zero.extend_from_slice(b"general.alignment");
        alignment_zero.extend_from_slice(&4u32.to_le_bytes());
        alignment_zero.extend_from_slice(&0u32.to_le_bytes());
        let cases: [(Vec<u8>, &str); 5] = [
            (
                header(&alignment_zero, 1, ("t", &[4], 0)),
                "general.alignment is U32(0)",
            ),
            (header(&[], 0, ("t", &[4], 999)), "ggml type 999"),
            (header(&[], 0, ("t", &[4], 4)), "ggml type 4"),
            (header(&[], 0, ("t", &[33, 1], 12)), "shape [33, 1]"),
            (
                header(&[], 0, ("t", &[u64::MAX, u64::MAX], 0)),
                "not a valid tensor",
            ),
        ];
        for (bytes, expected) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let err = Gguf::open(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        std::fs::write(&path, header(&[], 0, ("t", &[1 << 20], 0))).unwrap();
        let g = Gguf::open(&path).unwrap();
        let err = g.read_tensor(&g.tensors[0]).unwrap_err().to_string();
        assert!(err.contains("past the end of the file"), "{err}");
    }

    #[test]
    fn round_trips_metadata_and_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gguf");
        let data: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let meta = vec![
            (
                "general.architecture".to_string(),
                Value::String("gemma3".into()),
            ),
            ("adapter.lora.alpha".to_string(), Value::F32(8.0)),
            (
                "list".to_string(),
                Value::Array(4, vec![Value::U32(1), Value::U32(2)]),
            ),
        ];
        write_gguf(
            &path,
            &meta,
            &[
                ("a".into(), vec![3, 2], 0, data.clone()),
                ("b".into(), vec![2], 0, data[..8].to_vec()),
            ],
        )
        .unwrap();
        let g = Gguf::open(&path).unwrap();
        assert_eq!(g.metadata, meta);
        assert_eq!(g.tensors.len(), 2);
        assert_eq!(g.tensors[1].offset, 32);
        assert_eq!(g.read_tensor(&g.tensors[0]).unwrap(), data);
        assert_eq!(
            g.read_tensor(g.tensor("b").unwrap()).unwrap(),
            data[..8].to_vec()
        );
    }
}
