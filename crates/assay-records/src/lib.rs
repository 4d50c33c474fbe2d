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
