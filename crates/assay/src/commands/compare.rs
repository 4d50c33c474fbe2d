//! `assay compare`: runs side by side against a baseline, with paired significance tests.

use std::path::PathBuf;

use anyhow::bail;
use assay_records::{
    compare, csv_table, summary_json, summary_lines, text_table, Comparison, Registry,
};

use super::{write_atomically, RegistryArgs};

/// Output formats of `assay compare`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An aligned table and a written summary.
    Table,
    /// A Markdown section: table and summary.
    Markdown,
    /// One line per task, metric and run.
    Csv,
    /// Everything, including the paired tests' counts.
    Json,
}

/// The runs to compare, shared with `assay report`.
#[derive(clap::Args, Debug)]
pub struct Selection {
    /// Runs to compare: ids, labels (their latest run) or `latest`.
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<String>,
    /// The run the others are compared with [default: the first RUN].
    #[arg(long, value_name = "RUN")]
    pub baseline: Option<String>,
    /// Significance level of the tests.
    #[arg(long, default_value_t = 0.05, value_name = "P")]
    pub alpha: f64,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl Selection {
    /// Opens the registry and compares the runs.
    pub fn compare(&self) -> anyhow::Result<(Registry, Comparison)> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            bail!(
                "--alpha {}: expected a level between 0 and 1, e.g. 0.05",
                self.alpha
            );
        }
        let registry = self.registry.open()?;
        let ids = self
            .runs
            .iter()
            .map(|r| registry.resolve(r))
            .collect::<Result<Vec<_>, _>>()?;
        let baseline = match &self.baseline {
            Some(b) => registry.resolve(b)?,
            None => ids[0],
        };
        let comparison = compare(&registry, &ids, baseline, self.alpha)?;
        Ok((registry, comparison))
    }
}

/// Arguments of `assay compare`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay compare BASE FT\n  \
    assay compare 1 2 3 --baseline 1 --format markdown -o comparison.md\n  \
    assay compare BASE FT --summary-json summary.json\n\n\
    Runs that logged the same documents are tested pairwise: McNemar's exact test for 0/1 \
    metrics (accuracy, exact match), the paired t-test otherwise; runs without per-sample \
    lines get a z-test on the two standard errors. ▲/▼ mark significant changes.")]
pub struct CompareArgs {
    #[command(flatten)]
    selection: Selection,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the output to FILE instead of the terminal.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also write summary.json: accuracy, correct, total and average time per benchmark and
    /// run, with deltas and tests.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
}

/// Runs `assay compare`; returns the exit code.
pub fn run(args: CompareArgs) -> anyhow::Result<i32> {
    let (_, c) = args.selection.compare()?;
    let text = match args.format {
        Format::Table => {
            let mut s = text_table(&c);
            s += "\n";
            for line in summary_lines(&c) {
                s += &line;
                s += "\n";
            }
            s
        }
        Format::Markdown => {
            let base = c.baseline_run();
            let mut s = format!(
                "## Comparison against {} (run {}, {})\n\n",
                base.name, base.id, base.model
            );
            s += &text_table(&c);
            s += "\n### Summary\n\n";
            for line in summary_lines(&c) {
                match line.strip_prefix("  ") {
                    Some(detail) => s += &format!("  - {detail}\n"),
                    None => s += &format!("- {line}\n"),
                }
            }
            s
        }
        Format::Csv => csv_table(&c),
        Format::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "comparison": c,
                "summary": summary_lines(&c),
            }))? + "\n"
        }
    };
    match &args.output {
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            println!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    if let Some(path) = &args.summary_json {
        write_atomically(
            path,
            serde_json::to_string_pretty(&summary_json(&c))?.as_bytes(),
        )?;
        println!("wrote {}", path.display());
    }
    Ok(0)
}
