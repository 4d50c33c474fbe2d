//! `assay report`: one self-contained HTML file comparing runs.

use std::path::PathBuf;

use assay_report::{build_report, Report};

use super::compare::Selection;
use super::write_atomically;

/// Arguments of `assay report`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay report BASE FT -o report.html\n  \
    assay report 1 2 3 --baseline 1 -o runs.html\n\n\
    The file needs no network: the charts are inline SVG, the sample browser is inline \
    script over the runs' per-sample lines (tasks logged in every run).")]
pub struct ReportArgs {
    #[command(flatten)]
    selection: Selection,
    /// The HTML file to write.
    #[arg(short, long, value_name = "FILE", default_value = "report.html")]
    output: PathBuf,
    /// At most this many documents per task in the sample browser (0: none).
    #[arg(long, default_value_t = 5000, value_name = "N")]
    max_docs: usize,
}

/// Runs `assay report`; returns the exit code.
pub fn run(args: ReportArgs) -> anyhow::Result<i32> {
    let (registry, c) = args.selection.compare()?;
    let generated = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let Report { html, cut } = build_report(&registry, &c, args.max_docs, &generated)?;
    for (task, total) in cut {
        eprintln!(
            "note: {task}: the sample browser holds the first {} of {total} documents (--max-docs)",
            args.max_docs
        );
    }
    write_atomically(&args.output, html.as_bytes())?;
    println!("wrote {} ({} KB)", args.output.display(), html.len() / 1024);
    Ok(0)
}
