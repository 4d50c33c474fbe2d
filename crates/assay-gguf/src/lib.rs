//! GGUF model files without llama.cpp: the checks on a model file before an engine sees it,
//! its fingerprint, reading and writing whole files (`container`) and ggml's tensor types
//! (`types`). Builds in seconds; `assay-llama` and the fuzz targets share it.

pub mod container;
mod error;
pub mod types;

pub use error::GgufError;

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Refuses a model whose one-dimensional tensors (norm weights, biases) are not F32: llama.cpp's
/// CPU kernels multiply and add them to F32 activations and abort the process (SIGABRT, which
/// no caller can catch) on another type. llama.cpp's converter and assay's write them F32.
pub fn check_engine_types(path: &Path) -> Result<(), GgufError> {
    let gguf = container::Gguf::open(path)?;
    let bad = gguf
        .tensors
        .iter()
        .find(|t| t.dims.len() == 1 && t.ggml_type != 0);
    match bad {
        Some(t) => Err(GgufError::NotGguf {
            path: path.to_path_buf(),
            reason: format!(
                "tensor {} is one-dimensional and of type {}, but llama.cpp runs norm weights and biases only in F32 (it would abort); convert the model again (assay converts an HF folder given as --model, and llama.cpp's convert_hf_to_gguf.py, write them F32)",
                t.name,
                types::ggml_type(t.ggml_type)
                    .map_or_else(|| format!("#{}", t.ggml_type), |g| g.name.to_uppercase())
            ),
        }),
        None => Ok(()),
    }
}

/// The first four bytes of every GGUF file.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Fails with a clear error unless `path` is an existing file that starts like a GGUF file.
pub fn check_header(path: &Path) -> Result<(), GgufError> {
    if !path.exists() {
        return Err(GgufError::ModelMissing(path.to_path_buf()));
    }
    let io = |source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return Err(GgufError::NotGguf {
            path: path.to_path_buf(),
            reason: "it is a directory; pass the .gguf file inside it".into(),
        });
    }
    let mut header = [0u8; 8];
    let mut file = File::open(path).map_err(io)?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    if read < header.len() {
        return Err(GgufError::NotGguf {
            path: path.to_path_buf(),
            reason: format!("the file has only {read} bytes"),
        });
    }
    if &header[..4] != GGUF_MAGIC {
        return Err(GgufError::NotGguf {
            path: path.to_path_buf(),
            reason: format!(
                "it starts with {:02x?}, not the GGUF magic (convert it with llama.cpp's convert_hf_to_gguf.py)",
                &header[..4]
            ),
        });
    }
    let version = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(2..=3).contains(&version) {
        return Err(GgufError::NotGguf {
            path: path.to_path_buf(),
            reason: format!("GGUF version {version} is not supported (expected 2 or 3)"),
        });
    }
    Ok(())
}

/// SHA-256 of the file, hex-encoded.
pub fn sha256_file(path: &Path) -> Result<String, GgufError> {
    let io = |source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The name of a llama.cpp `general.file_type` value (the weight format).
pub fn file_type_name(file_type: u32) -> String {
    let name = match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        other => return format!("file_type {other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("assay-gguf-{}-{name}", std::process::id()));
        File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

    #[test]
    fn norm_weights_must_be_f32() {
        let dir = std::env::temp_dir().join(format!("assay-gguf-types-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, norm_type: u32, bytes: usize| {
            let path = dir.join(name);
            container::write_gguf(
                &path,
                &[],
                &[
                    ("blk.0.attn_q.weight".into(), vec![4, 4], 1, vec![0; 32]),
                    (
                        "blk.0.attn_norm.weight".into(),
                        vec![4],
                        norm_type,
                        vec![0; bytes],
                    ),
                ],
            )
            .unwrap();
            path
        };
        // A 2-D F16 weight is fine; a 1-D F32 norm too.
        assert!(check_engine_types(&write("ok.gguf", 0, 16)).is_ok());
        let err = check_engine_types(&write("f16.gguf", 1, 8))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("blk.0.attn_norm.weight") && err.contains("F16"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_missing_short_and_foreign_files() {
        let err = check_header(Path::new("/nonexistent/model.gguf")).unwrap_err();
        assert!(matches!(err, GgufError::ModelMissing(_)));
        let short = temp_file("short", b"GGU");
        assert!(check_header(&short)
            .unwrap_err()
            .to_string()
            .contains("only 3 bytes"));
        let foreign = temp_file("foreign", b"PK\x03\x04xxxxxxxx");
        assert!(check_header(&foreign)
            .unwrap_err()
            .to_string()
            .contains("not the GGUF magic"));
        let good = temp_file("good", b"GGUF\x03\x00\x00\x00rest");
        check_header(&good).unwrap();
        for p in [short, foreign, good] {
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn hashes_files() {
        let path = temp_file("hash", b"abc");
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::remove_file(path).unwrap();
    }
}
