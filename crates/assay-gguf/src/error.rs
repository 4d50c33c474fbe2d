//! Why a GGUF file could not be read or written.

use std::path::PathBuf;

/// Why a GGUF file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The model file does not exist.
    #[error("model file not found: {0}")]
    ModelMissing(PathBuf),
    /// The path exists but is not a GGUF file (or not one this reader can use).
    #[error("{path} is not a GGUF model: {reason}")]
    NotGguf {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// Reading or writing the file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
