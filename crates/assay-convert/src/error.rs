//! Why a checkpoint could not be converted; each names the file and what to do.

use std::path::{Path, PathBuf};

/// A conversion failure.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is missing or not what the checkpoint format says.
    #[error("{path}: {reason}")]
    Bad {
        /// The file (or folder).
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The model is of an architecture (or uses a feature) the converter does not write.
    #[error("{path}: {what} is not supported: {hint}")]
    Unsupported {
        /// The config.json.
        path: PathBuf,
        /// The architecture or feature.
        what: String,
        /// What is supported instead.
        hint: String,
    },
    /// Not enough free disk space for the converted file.
    #[error("{path}: the conversion needs {needed_gb:.1} GB and the disk has {free_gb:.1} GB free; free some space or set ASSAY_CACHE_DIR to a larger disk")]
    NoSpace {
        /// Where the file would be written.
        path: PathBuf,
        /// Bytes needed, in GB.
        needed_gb: f64,
        /// Bytes free, in GB.
        free_gb: f64,
    },
    /// Writing the GGUF file failed.
    #[error(transparent)]
    Gguf(#[from] assay_gguf::GgufError),
}

impl ConvertError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn bad(path: &Path, reason: impl Into<String>) -> Self {
        ConvertError::Bad {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
