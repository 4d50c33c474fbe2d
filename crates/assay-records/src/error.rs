//! Errors of the registry, imports and comparisons.

use std::path::PathBuf;

/// What went wrong, with the file, run or line it concerns.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The registry file could not be opened or is not a registry.
    #[error("registry {path}: {message}")]
    Registry {
        /// The registry file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A query failed.
    #[error("registry {path}: {source}")]
    Sql {
        /// The registry file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// No run matches the given id or label.
    #[error("no run `{key}` in {path}: {hint}")]
    NoSuchRun {
        /// What the user typed.
        key: String,
        /// The registry file.
        path: PathBuf,
        /// Which runs exist.
        hint: String,
    },
    /// The same results file was recorded before.
    #[error("{origin}: already recorded as run {id}")]
    AlreadyRecorded {
        /// The results file.
        origin: String,
        /// The run holding it.
        id: i64,
    },
    /// A results document assay cannot read.
    #[error("{origin}: {message}")]
    BadResults {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A per-sample line assay cannot read.
    #[error("{path}:{line}: {message}")]
    BadSample {
        /// The samples file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Nothing to compare.
    #[error("{0}")]
    NothingToCompare(String),
}
