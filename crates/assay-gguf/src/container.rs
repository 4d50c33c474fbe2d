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
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .map(|(name, dims, ggml_type, _)| TensorSpec {
            name: name.clone(),
            dims: dims.clone(),
            ggml_type: *ggml_type,
        })
        .collect();
    let mut writer = GgufWriter::create(path, metadata, &specs)?;
    for (_, _, _, data) in tensors {
        writer.write_tensor(data)?;
    }
    writer.finish()
}

/// A tensor's directory entry before its data is written.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, fastest first (ggml's `ne`).
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ggml_type: u32,
}

/// Data alignment of the files this crate writes.
const ALIGN: u64 = 32;

/// A GGUF file written one tensor at a time, so that a model larger than memory can be written:
/// the header (metadata and the whole tensor directory) first, then each tensor's data in the
/// directory's order. It is written to `<path>.partial` and renamed into place by
/// [`GgufWriter::finish`]; dropped before that, the partial file is removed, so that no reader
/// ever sees half a model.
pub struct GgufWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    sizes: Vec<(String, usize)>,
    next: usize,
}

impl GgufWriter {
    /// Starts `path`: checks every tensor's size and writes the header.
    pub fn create(
        path: &Path,
        metadata: &[(String, Value)],
        tensors: &[TensorSpec],
    ) -> Result<GgufWriter, GgufError> {
        let mut header: Vec<u8> = Vec::new();
        header.extend_from_slice(super::GGUF_MAGIC);
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        let metadata: Vec<&(String, Value)> = metadata
            .iter()
            .filter(|(k, _)| k != "general.alignment")
            .collect();
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (k, v) in metadata {
            put_string(&mut header, k);
            header.extend_from_slice(&v.type_id().to_le_bytes());
            put_value(&mut header, v);
        }
        let mut offset = 0u64;
        let mut sizes = Vec::with_capacity(tensors.len());
        for t in tensors {
            let Some(bytes) = tensor_bytes(t.ggml_type, &t.dims) else {
                return Err(GgufError::NotGguf {
                    path: path.to_path_buf(),
                    reason: format!(
                        "tensor {}: dims {:?} do not fit ggml type {}",
                        t.name, t.dims, t.ggml_type
                    ),
                });
            };
            put_string(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.ggml_type.to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + bytes as u64).div_ceil(ALIGN) * ALIGN;
            sizes.push((t.name.clone(), bytes));
        }
        let mut name = path.as_os_str().to_owned();
        name.push(".partial");
        let tmp = PathBuf::from(name);
        let file = File::create(&tmp).map_err(|source| GgufError::Io {
            path: tmp.clone(),
            source,
        })?;
        let mut writer = GgufWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            sizes,
            next: 0,
        };
        writer.put(&header)?;
        writer.pad(header.len() as u64)?;
        Ok(writer)
    }

    /// Bytes the whole file will take.
    pub fn planned_bytes(&self) -> u64 {
        self.sizes
            .iter()
            .map(|(_, n)| (*n as u64).div_ceil(ALIGN) * ALIGN)
            .sum()
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        let out = self.out.as_mut().expect("open until finished");
        out.write_all(bytes).map_err(|source| GgufError::Io {
            path: self.tmp.clone(),
            source,
        })
    }

    fn pad(&mut self, len: u64) -> Result<(), GgufError> {
        let pad = vec![0u8; (len.div_ceil(ALIGN) * ALIGN - len) as usize];
        self.put(&pad)
    }

    /// Writes the data of the next tensor in the directory.
    pub fn write_tensor(&mut self, data: &[u8]) -> Result<(), GgufError> {
        let Some((name, bytes)) = self.sizes.get(self.next).cloned() else {
            return Err(GgufError::NotGguf {
                path: self.path.clone(),
                reason: format!(
                    "more tensors written than the {} declared",
                    self.sizes.len()
                ),
            });
        };
        if data.len() != bytes {
            return Err(GgufError::NotGguf {
                path: self.path.clone(),
                reason: format!(
                    "tensor {name}: {} bytes of data, {bytes} declared",
                    data.len()
                ),
            });
        }
        self.put(data)?;
        self.pad(bytes as u64)?;
        self.next += 1;
        Ok(())
    }

    /// Flushes the file to disk and renames it into place.
    pub fn finish(mut self) -> Result<(), GgufError> {
        if self.next != self.sizes.len() {
            return Err(GgufError::NotGguf {
                path: self.path.clone(),
                reason: format!("{} of {} tensors written", self.next, self.sizes.len()),
            });
        }
        let io = |path: &Path, source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let out = self.out.take().expect("open until finished");
        let file = out
            .into_inner()
            .map_err(|e| io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io(&self.path, e))
    }
}

impl Drop for GgufWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_string(out, s),
        Value::Array(t, items) => {
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, i);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
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

    #[test]
    fn an_unfinished_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gguf");
        let spec = |name: &str| TensorSpec {
            name: name.into(),
            dims: vec![2],
            ggml_type: 0,
        };
        let mut w = GgufWriter::create(&path, &[], &[spec("a"), spec("b")]).unwrap();
        w.write_tensor(&[0; 8]).unwrap();
        let err = w.write_tensor(&[0; 4]).unwrap_err().to_string();
        assert!(
            err.contains("tensor b: 4 bytes of data, 8 declared"),
            "{err}"
        );
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let w = GgufWriter::create(&path, &[], &[spec("a")]).unwrap();
        assert!(w
            .finish()
            .unwrap_err()
            .to_string()
            .contains("0 of 1 tensors"));
        assert!(!path.exists());
    }
}
