//! Evaluation records: the run registry (SQLite) holding every run's results and per-sample
//! lines with its provenance, imports of lm-eval output folders, and comparisons of runs with
//! paired significance tests, rendered as tables, CSV, JSON and a written summary.

mod browse;
mod compare;
mod error;
mod import;
mod registry;
mod render;
mod results;

pub use browse::{doc_rows, DocAnswer, DocRow};
pub use compare::{compare, Cell, Comparison, Delta, Row, RunHeader, Test, Verdict};
pub use error::RecordsError;
pub use import::{find_results, ResultsFiles};
pub use registry::{NewRun, Registry, Run, SampleLine};
pub use render::{
    aligned_table, csv_table, format_cell, format_delta, format_p, metric_label, summary_json,
    summary_lines, text_table, verdict_mark,
};
pub use results::{parse_results, MetricValue, Provenance, TaskResult};

use std::path::PathBuf;

/// assay's data folder: `$XDG_DATA_HOME/assay`, else `~/.local/share/assay`.
pub fn data_home() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    base.join("assay")
}

/// The default registry file: `$ASSAY_REGISTRY`, else `registry.sqlite` in [`data_home`].
pub fn default_registry_path() -> PathBuf {
    match std::env::var_os("ASSAY_REGISTRY") {
        Some(p) => PathBuf::from(p),
        None => data_home().join("registry.sqlite"),
    }
}
