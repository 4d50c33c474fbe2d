//! `assay decontam`: n-gram overlap between training data and test sets.

use std::path::PathBuf;

use anyhow::bail;
use assay_records::aligned_table;
use assay_tasks::{DocInstance, DocKind, PreparedTask};
use assay_validate::decontam::{read_test_file, scan, Index, TestItem, TestSet};

use super::{write_atomically, TaskSourceArgs};

/// Arguments of `assay decontam`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay decontam --train train.jsonl --test validation.jsonl\n  \
    assay decontam --train train.jsonl --tasks gsm8k,mmlu --output-clean clean/\n\n\
    Text is lower-cased and split into runs of letters and digits; a test item is contaminated \
    when any run of --ngram words of it appears in a training line (items shorter than that \
    must appear whole). Training lines: JSONL with `text`, `prompt`/`response`, `messages`, or else all string fields.")]
pub struct DecontamArgs {
    /// Training files (JSONL, optionally .gz), streamed.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    train: Vec<PathBuf>,
    /// Test files (JSONL: prompt/response, text or messages).
    #[arg(long, num_args = 1.., value_name = "FILE", required_unless_present = "tasks")]
    test: Vec<PathBuf>,
    /// Test sets from assay tasks (each document's zero-shot prompt and answer).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    tasks: Vec<String>,
    #[command(flatten)]
    source: TaskSourceArgs,
    /// Words per n-gram.
    #[arg(long, default_value_t = 13, value_name = "N")]
    ngram: usize,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Write each --test file without its contaminated items to DIR/<name>.clean.jsonl.
    #[arg(long, value_name = "DIR")]
    output_clean: Option<PathBuf>,
    /// Write the full report (every contaminated item and its spans) as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Contaminated items to print per test set.
    #[arg(long, default_value_t = 5, value_name = "N")]
    show: usize,
}

/// The text of a task document: its zero-shot prompt and its answer.
fn doc_text(inst: &DocInstance) -> String {
    let answer = match &inst.kind {
        DocKind::MultipleChoice { choices, gold } => gold
            .first()
            .and_then(|g| choices.get(*g))
            .cloned()
            .unwrap_or_default(),
        DocKind::Rolling { text } => text.clone(),
        _ => assay_tasks::text_of(&inst.target),
    };
    format!("{}{answer}", inst.context().unwrap_or(""))
}

/// Runs `assay decontam`; returns the exit code.
pub fn run(args: DecontamArgs) -> anyhow::Result<i32> {
    if args.ngram == 0 {
        bail!("--ngram 0: give a positive number of words (13 is the usual)");
    }
    let mut sets = Vec::new();
    let mut lines = Vec::new();
    for path in &args.test {
        let (set, raw) = read_test_file(path)?;
        sets.push(set);
        lines.push(Some(raw));
    }
    if !args.tasks.is_empty() {
        let registry = args.source.registry()?;
        let selection = registry.resolve(&args.tasks)?;
        let data_dir = args.source.data(None)?;
        for name in &selection.tasks {
            let spec = selection.spec(name).expect("resolved tasks have fields");
            let task = PreparedTask::prepare(name, spec, &data_dir, Some(0))?;
            let items = (0..task.docs.len())
                .map(|i| {
                    Ok(TestItem {
                        id: format!("{name}/{i}"),
                        text: doc_text(&task.instance(i)?),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            sets.push(TestSet {
                name: name.clone(),
                items,
            });
            lines.push(None);
        }
    }
    let longest = sets
        .iter()
        .flat_map(|s| &s.items)
        .map(|i| {
            assay_validate::decontam::normalise(&i.text)
                .split(' ')
                .count()
        })
        .max()
        .unwrap_or(0);
    if longest < args.ngram {
        eprintln!("note: every test item is shorter than {} words (longest: {longest}); items are matched whole", args.ngram);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let ids: Vec<Vec<String>> = sets
        .iter()
        .map(|s| s.items.iter().map(|i| i.id.clone()).collect())
        .collect();
    let index = Index::new(sets, args.ngram);
    let (reports, stats) = scan(&index, &args.train, threads)?;
    let mut rows = vec![[
        "Test set",
        "Items",
        "Contaminated",
        "Rate",
        "Shorter than n",
    ]
    .map(String::from)
    .to_vec()];
    for r in &reports {
        rows.push(vec![
            r.name.clone(),
            r.items.to_string(),
            r.contaminated.len().to_string(),
            format!("{:.2}%", r.rate * 100.0),
            r.short_items.to_string(),
        ]);
    }
    print!("{}", aligned_table(&rows));
    for r in &reports {
        for c in r.contaminated.iter().take(args.show) {
            let span = &c.spans[0];
            println!(
                "  {}: {} matches, e.g. line {} of {}: \"{}\"",
                c.id, c.matches, span.train_line, span.train_file, span.text
            );
        }
        if r.contaminated.len() > args.show {
            println!(
                "  ... {} more in {} (--json for all)",
                r.contaminated.len() - args.show,
                r.name
            );
        }
    }
    println!(
        "\nscanned {} lines ({:.1} MB) of training data in {:.2}s: {:.1} MB/s on {threads} threads, {}-grams{}",
        stats.lines,
        stats.bytes as f64 / 1e6,
        stats.seconds,
        stats.mb_per_second(),
        args.ngram,
        if stats.skipped_lines > 0 { format!("; {} lines were not JSON objects with text and were skipped", stats.skipped_lines) } else { String::new() }
    );
    if let Some(dir) = &args.output_clean {
        std::fs::create_dir_all(dir)?;
        for ((r, raw), set) in reports.iter().zip(&lines).zip(&ids) {
            let Some(raw) = raw else { continue };
            let dirty: std::collections::HashSet<&str> =
                r.contaminated.iter().map(|c| c.id.as_str()).collect();
            let kept: String = raw
                .iter()
                .zip(set)
                .filter(|(_, id)| !dirty.contains(id.as_str()))
                .map(|(l, _)| format!("{l}\n"))
                .collect();
            let stem = std::path::Path::new(&r.name)
                .file_stem()
                .map_or("test".into(), |s| s.to_string_lossy().into_owned());
            let path = dir.join(format!("{stem}.clean.jsonl"));
            write_atomically(&path, kept.as_bytes())?;
            println!(
                "wrote {} ({} of {} items)",
                path.display(),
                r.items - r.contaminated.len(),
                r.items
            );
        }
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({"ngram": args.ngram, "threads": threads, "scan": stats, "mb_per_second": stats.mb_per_second(), "test_sets": reports});
        write_atomically(path, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    }
    Ok(0)
}
