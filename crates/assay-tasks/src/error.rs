//! Errors of task loading, data loading and request building.

use std::path::PathBuf;

/// Why a task could not be loaded, resolved or turned into requests.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A task file is not valid YAML or does not match the spec.
    #[error("{source_name}: {message}")]
    Spec {
        /// The task file (path, or `builtin:` name).
        source_name: String,
        /// What was wrong, with line and column where known.
        message: String,
    },
    /// A name given by the user matches no task, group or tag.
    #[error("unknown task `{name}`{}", suggest(.suggestions))]
    Unknown {
        /// The name.
        name: String,
        /// Close names.
        suggestions: Vec<String>,
    },
    /// A data file is missing.
    #[error("task {task}: data file not found: {path} (data dir: {data_dir}; set --data-dir or ASSAY_DATA_DIR)")]
    DataMissing {
        /// The task.
        task: String,
        /// The file looked for.
        path: PathBuf,
        /// The data directory in use.
        data_dir: PathBuf,
    },
    /// No data directory was given or found.
    #[error("no data directory: pass --data-dir DIR or set ASSAY_DATA_DIR (looked for {looked}); or run lm-eval's own task files, which read the Hub: --tasks-from lm_eval, or --include-path DIR")]
    NoDataDir {
        /// Where it looked.
        looked: String,
    },
    /// A data file could not be read.
    #[error("task {task}: {source}")]
    Data {
        /// The task.
        task: String,
        /// The reader's error (file and line).
        source: assay_data::DataError,
    },
    /// A template failed for a document.
    #[error("task {task}, doc {doc_id}, {field}: {message}")]
    Template {
        /// The task.
        task: String,
        /// The document.
        doc_id: usize,
        /// `doc_to_text`, `doc_to_target`, ...
        field: String,
        /// What went wrong.
        message: String,
    },
    /// A data source other than the data folder (the Hub) could not give the documents.
    #[error("task {task}: {message}")]
    Source {
        /// The task.
        task: String,
        /// The dataset and what went wrong, with what to do.
        message: String,
    },
    /// A task's settings cannot work together.
    #[error("task {task}: {message}")]
    Invalid {
        /// The task.
        task: String,
        /// What is wrong and what to do.
        message: String,
    },
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        "; run `assay tasks` to list them".to_string()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}
