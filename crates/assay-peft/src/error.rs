//! Why an adapter could not be converted; each names the file and what to do.

use std::path::PathBuf;

/// A conversion failure.
#[derive(Debug, thiserror::Error)]
pub enum PeftError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `adapter_config.json` is not what PEFT writes.
    #[error("{path}: not a PEFT adapter config: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The safetensors file is unreadable or holds the wrong tensors.
    #[error("{path}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The adapter uses something a GGUF LoRA adapter cannot hold.
    #[error("{path}: not supported: {what}")]
    Unsupported {
        /// The adapter folder or file.
        path: PathBuf,
        /// What, and what to do instead.
        what: String,
    },
    /// The adapter does not fit the base model.
    #[error("{path}: does not fit the base model: {reason}")]
    Mismatch {
        /// The adapter weights.
        path: PathBuf,
        /// Which tensor and how.
        reason: String,
    },
    /// The GGUF adapter could not be written.
    #[error(transparent)]
    Gguf(assay_gguf::GgufError),
}
