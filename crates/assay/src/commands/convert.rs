//! `assay convert`: benchmark files to one unified prompt/response JSONL, stratified by
//! difficulty.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use assay_records::aligned_table;
use assay_validate::{select, ValidateError};

use super::write_atomically;

/// Arguments of `assay convert`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay convert -o validation.jsonl                      # 100 per benchmark\n  \
    assay convert --benchmarks drop,gpqa,humaneval,math,mmlu --samples-per-benchmark 50 -o v.jsonl\n  \
    assay convert --samples-per-benchmark -1 -o all.jsonl  # every item\n\n\
    Each line: {\"prompt\", \"response\", \"metadata\": {\"difficulty\", \"domain\", \"source\", ...}}. \
    Templates and difficulty rules: docs/VALIDATION.md.")]
pub struct ConvertArgs {
    /// Folder of benchmark files [default: $ASSAY_DATA_DIR, else ../shared/data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Benchmarks to convert, comma-separated [default: all found in the data folder].
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    benchmarks: Vec<String>,
    /// Items per benchmark (stratified by difficulty, at least one per level); -1 keeps all.
    #[arg(
        long,
        default_value_t = 100,
        allow_negative_numbers = true,
        value_name = "N"
    )]
    samples_per_benchmark: i64,
    /// Seed of the sampling (the same seed gives the same set).
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Stop at the first item with a missing field instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// The JSONL file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Also write the summary (counts by source, difficulty and domain) as JSON.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
}

/// Runs `assay convert`; returns the exit code.
pub fn run(args: ConvertArgs) -> anyhow::Result<i32> {
    let n = match args.samples_per_benchmark {
        -1 => None,
        n if n > 0 => Some(n as usize),
        n => bail!("--samples-per-benchmark {n}: expected a positive count, or -1 for all"),
    };
    let chosen = select(&args.benchmarks)?;
    let data_dir = assay_tasks::DataDir::locate(args.data_dir.as_deref())?.0;
    let mut out = String::new();
    let mut rows = vec![[
        "Source",
        "Available",
        "Sampled",
        "Skipped",
        "easy",
        "medium",
        "hard",
    ]
    .map(String::from)
    .to_vec()];
    let mut by: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_source = serde_json::Map::new();
    let mut total = 0;
    for b in &chosen {
        let conversion = match b.convert(&data_dir, n, args.seed, args.strict) {
            Ok(c) => c,
            Err(e @ ValidateError::Missing { .. }) if args.benchmarks.is_empty() => {
                eprintln!("{}: not converted: {e}", b.source);
                rows.push(vec![
                    b.source.to_string(),
                    "missing".into(),
                    "0".into(),
                    "0".into(),
                ]);
                rows.last_mut()
                    .expect("just pushed")
                    .resize(7, String::new());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if conversion.available == 0 {
            eprintln!(
                "warning: {}: no usable items ({} skipped): nothing written for it",
                b.source,
                conversion.skipped.len()
            );
        }
        for (path, line, why) in conversion.skipped.iter().take(5) {
            eprintln!("skipped {}:{line}: {why}", path.display());
        }
        if conversion.skipped.len() > 5 {
            eprintln!(
                "skipped {} more {} items (--strict stops at the first)",
                conversion.skipped.len() - 5,
                b.source
            );
        }
        for item in &conversion.items {
            out += &serde_json::to_string(item)?;
            out.push('\n');
            for key in ["source", "difficulty", "domain"] {
                *by.entry(key)
                    .or_default()
                    .entry(item.meta(key).to_string())
                    .or_default() += 1;
            }
        }
        total += conversion.items.len();
        per_source.insert(
            b.source.to_string(),
            serde_json::json!({"available": conversion.available, "sampled": conversion.items.len(), "skipped": conversion.skipped.len()}),
        );
        let level = |l: &str| {
            conversion
                .items
                .iter()
                .filter(|i| i.meta("difficulty") == l)
                .count()
                .to_string()
        };
        rows.push(vec![
            b.source.to_string(),
            conversion.available.to_string(),
            conversion.items.len().to_string(),
            conversion.skipped.len().to_string(),
            level("easy"),
            level("medium"),
            level("hard"),
        ]);
    }
    if total == 0 {
        bail!(
            "no items converted: nothing written to {}",
            args.output.display()
        );
    }
    write_atomically(&args.output, out.as_bytes())?;
    print!("{}", aligned_table(&rows));
    for key in ["difficulty", "domain"] {
        println!();
        let mut rows = vec![vec![key.to_string(), "Items".into(), "Share".into()]];
        for (value, count) in &by[key] {
            rows.push(vec![
                value.clone(),
                count.to_string(),
                format!("{:.1}%", 100.0 * *count as f64 / total as f64),
            ]);
        }
        print!("{}", aligned_table(&rows));
    }
    println!("\nwrote {total} items to {}", args.output.display());
    if let Some(path) = &args.summary_json {
        let summary = serde_json::json!({
            "total": total,
            "seed": args.seed,
            "samples_per_benchmark": args.samples_per_benchmark,
            "sources": per_source,
            "by_difficulty": by.get("difficulty"),
            "by_domain": by.get("domain"),
        });
        write_atomically(path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    }
    Ok(0)
}
