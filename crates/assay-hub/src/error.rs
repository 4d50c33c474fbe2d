//! Why a Hub dataset or model could not be resolved or read; every message names the repository
//! and says what to do.

use std::path::PathBuf;

use crate::client::RepoKind;

/// A Hub dataset that could not be resolved, fetched or read.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// No such repository (or a private one the token cannot see).
    #[error("{kind} {repo} not found on {endpoint}{}", if *.has_token { " (with the token in use)" } else { " (if it is private, set HF_TOKEN or run `huggingface-cli login`)" })]
    RepoNotFound {
        /// A dataset or a model.
        kind: RepoKind,
        /// `org/name`.
        repo: String,
        /// The Hub asked.
        endpoint: String,
        /// Whether a token was sent.
        has_token: bool,
    },
    /// The repository is gated and the token (if any) has no access.
    #[error("{kind} {repo} is gated: {}", if *.has_token { format!("the token in use has no access; request it at {page}") } else { format!("request access at {page}, then set HF_TOKEN to a token of that account (or run `huggingface-cli login`)") })]
    Gated {
        /// A dataset or a model.
        kind: RepoKind,
        /// `org/name`.
        repo: String,
        /// The dataset's page, where access is requested.
        page: String,
        /// Whether a token was sent.
        has_token: bool,
    },
    /// The branch, tag or commit does not exist.
    #[error("{kind} {repo} has no revision `{revision}` ({})", .kind.revision_hint())]
    RevisionNotFound {
        /// A dataset or a model.
        kind: RepoKind,
        /// `org/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
    },
    /// A file listed by the repository could not be found.
    #[error("{kind} {repo}@{revision} has no file {path}")]
    FileNotFound {
        /// A dataset or a model.
        kind: RepoKind,
        /// `org/name`.
        repo: String,
        /// The revision.
        revision: String,
        /// The path in the repository.
        path: String,
    },
    /// `HF_HUB_OFFLINE` is set and the cache lacks what is needed.
    #[error("HF_HUB_OFFLINE is set and {kind} {repo}@{revision} is not in the cache {}: run once without HF_HUB_OFFLINE to download it", .cache.display())]
    Offline {
        /// A dataset or a model.
        kind: RepoKind,
        /// `org/name`.
        repo: String,
        /// The revision (and file) looked for.
        revision: String,
        /// The hub cache.
        cache: PathBuf,
    },
    /// The Hub cannot be reached.
    #[error("cannot reach the Hub at {endpoint}: {message} (check HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only what is cached)")]
    Unreachable {
        /// The Hub asked.
        endpoint: String,
        /// The transport error.
        message: String,
    },
    /// Any other HTTP failure.
    #[error("{url}: {message}")]
    Http {
        /// The request.
        url: String,
        /// What happened.
        message: String,
    },
    /// The server's answer, or a name in a task file, could become a path outside the cache, a
    /// file without bound, or a token sent elsewhere: refused before anything was written.
    #[error("{source_of}: {message}")]
    Refused {
        /// The request or the name refused.
        source_of: String,
        /// What was wrong.
        message: String,
    },
    /// The run's stop (Ctrl-C, `--run-timeout`) came during a download; what arrived is kept.
    #[error("{url}: download stopped; what arrived is kept and the next run resumes it")]
    Stopped {
        /// The file.
        url: String,
    },
    /// A downloaded file does not match its checksum (it was removed).
    #[error("{kind} {repo}, {path}: {message}")]
    Corrupt {
        /// A dataset or a model.
        kind: RepoKind,
        /// `org/name`.
        repo: String,
        /// The path in the repository.
        path: String,
        /// What was found.
        message: String,
    },
    /// The cache folder could not be written or read.
    #[error("the Hugging Face cache {}: {message} (set HF_HOME or HF_HUB_CACHE to a writable folder)", .path.display())]
    Cache {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The dataset card's YAML is not valid.
    #[error("dataset {repo}: README.md: {message}")]
    Card {
        /// `org/name`.
        repo: String,
        /// What was wrong.
        message: String,
    },
    /// The config (`dataset_name`) does not exist.
    #[error("dataset {repo} has no config `{config}`; its configs: {}", .known.join(", "))]
    UnknownConfig {
        /// `org/name`.
        repo: String,
        /// The config asked for.
        config: String,
        /// The configs it has.
        known: Vec<String>,
    },
    /// Several configs, none the default, and no `dataset_name`.
    #[error("dataset {repo} has several configs and none is the default: set dataset_name to one of {}", .known.join(", "))]
    ConfigNeeded {
        /// `org/name`.
        repo: String,
        /// The configs it has.
        known: Vec<String>,
    },
    /// The split does not exist in the config.
    #[error("dataset {repo}, config {config} has no split `{split}`; its splits: {}", .known.join(", "))]
    UnknownSplit {
        /// `org/name`.
        repo: String,
        /// The config.
        config: String,
        /// The split asked for.
        split: String,
        /// The splits it has.
        known: Vec<String>,
    },
    /// A split's patterns match no file in the repository.
    #[error("dataset {repo}, config {config}, split {split}: no file matches {}", .patterns.join(", "))]
    NoDataFiles {
        /// `org/name`.
        repo: String,
        /// The config.
        config: String,
        /// The split.
        split: String,
        /// The patterns tried.
        patterns: Vec<String>,
    },
    /// No data files, no card configs and no parquet export.
    #[error("dataset {repo}: no data files, no `configs` in its card and no parquet export (refs/convert/parquet) to read")]
    NoData {
        /// `org/name`.
        repo: String,
    },
    /// A data file could not be read.
    #[error("dataset {repo}: {source}")]
    Read {
        /// `org/name`.
        repo: String,
        /// The reader's error (file and line).
        source: assay_data::DataError,
    },
}
