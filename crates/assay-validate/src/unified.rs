//! The unified validation item and the crate's errors.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One validation example: a prompt, its reference response, and metadata (`difficulty`,
/// `domain`, `source`, and benchmark-specific fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The prompt, with the benchmark's instructions.
    pub prompt: String,
    /// The reference response.
    pub response: String,
    /// `difficulty`, `domain`, `source`, ...
    pub metadata: Map<String, Value>,
}

impl Item {
    /// A metadata field as text (empty when absent).
    pub fn meta(&self, key: &str) -> &str {
        self.metadata.get(key).and_then(Value::as_str).unwrap_or("")
    }
}

/// Calls `each(line, value)` for every non-blank line of a JSONL file; a line that is not JSON,
/// or that `each` refuses (with a message), is an error naming the file and line.
pub(crate) fn for_each_json_line(
    path: &std::path::Path,
    mut each: impl FnMut(usize, Value) -> Result<(), String>,
) -> Result<(), ValidateError> {
    use std::io::BufRead;
    let io = |source| ValidateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| ValidateError::BadItem {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let value = serde_json::from_str(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
        each(i + 1, value).map_err(bad)?;
    }
    Ok(())
}

/// What went wrong, naming the file (and line) concerned.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A data file could not be read.
    #[error(transparent)]
    Data(#[from] assay_data::DataError),
    /// A benchmark's folder or file is missing.
    #[error("{benchmark}: {path} not found (is --data-dir the benchmark folder? see ../shared/data/README.md)")]
    Missing {
        /// Benchmark name.
        benchmark: String,
        /// What was looked for.
        path: PathBuf,
    },
    /// An item lacks a field (fatal with --strict).
    #[error("{}{}: {message}", path.display(), at_line(*line))]
    BadItem {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: the file as a whole).
        line: usize,
        /// What is missing or wrong.
        message: String,
    },
    /// A prompt format name that is neither built in nor in the format file.
    #[error("no prompt format `{name}` (known: {known}); define it in a --format-file")]
    UnknownFormat {
        /// The name asked for.
        name: String,
        /// The formats there are.
        known: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A training file with no lines.
    #[error("{0}: the training file is empty")]
    EmptyTraining(PathBuf),
    /// Unknown benchmark name.
    #[error("unknown benchmark `{0}`; known: {1}")]
    UnknownBenchmark(String, String),
}

/// `:N` for a 1-based line, nothing for 0 (an error about the whole file).
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}
