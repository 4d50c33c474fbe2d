//! `assay ppl`: perplexity of reference responses, and the comparison of two such runs.

use std::path::PathBuf;

use anyhow::{bail, Context};
use assay_records::aligned_table;
use assay_validate::ppl::{compare, read_items, score, Group, PplReport};

use super::write_atomically;
use crate::backend::BackendArgs;
use crate::guard::Guard;

/// Arguments of `assay ppl`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay ppl --data validation.jsonl -o base.json\n  \
    assay ppl --model base.gguf --lora adapter.gguf --data validation.jsonl -o adapter.json\n  \
    assay ppl --model merged.gguf --data validation.jsonl -o merged.json\n  \
    assay ppl --compare adapter.json merged.json --tolerance 1e-2   # exit 1 when they differ\n\n\
    Each item's response is scored as the continuation of its prompt (a space is put between \
    them when neither has whitespace at the join); --rolling scores every token of \
    prompt + response. Loss = negative log-likelihood per token (nats), perplexity = exp(loss), \
    token-weighted over items.")]
pub struct PplArgs {
    /// Unified JSONL (`assay convert` output: prompt/response/metadata; or `text` lines).
    #[arg(long, value_name = "FILE", required_unless_present = "compare")]
    data: Option<PathBuf>,
    /// Score every token of the whole text instead of the response given the prompt.
    #[arg(long)]
    rolling: bool,
    /// Only the first N items.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Write the report (every item's loss, groups) as JSON.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Compare two reports written with -o instead of scoring: per-item and overall deltas.
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "data")]
    compare: Vec<PathBuf>,
    /// Largest difference of the overall loss (nats per token) that counts as the same model.
    /// An adapter and its merge agree to about 1e-3 on Gemma 3 270M: the model's per-token
    /// log-probabilities move that much under rounding-level changes (docs/VALIDATION.md).
    #[arg(long, default_value_t = 1e-2, value_name = "X")]
    tolerance: f64,
    /// Also require every item's loss within X (per-item agreement needs bitwise-identical
    /// arithmetic: items move by up to ~0.25 nats when only the rounding changes).
    #[arg(long, value_name = "X")]
    item_tolerance: Option<f64>,
    #[command(flatten)]
    backend: BackendArgs,
}

fn group_rows(title: &str, groups: &std::collections::BTreeMap<String, Group>) -> String {
    let mut rows = vec![[title, "Items", "Tokens", "Loss", "Perplexity"]
        .map(String::from)
        .to_vec()];
    for (name, g) in groups {
        rows.push(vec![
            if name.is_empty() {
                "(none)".into()
            } else {
                name.clone()
            },
            g.items.to_string(),
            g.tokens.to_string(),
            format!("{:.4}", g.loss),
            format!("{:.3}", g.perplexity),
        ]);
    }
    aligned_table(&rows)
}

fn read_report(path: &PathBuf) -> anyhow::Result<PplReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a report of `assay ppl -o`", path.display()))
}

/// Runs `assay ppl`; returns the exit code.
pub fn run(args: PplArgs) -> anyhow::Result<i32> {
    if let [a, b] = args.compare.as_slice() {
        let (ra, rb) = (read_report(a)?, read_report(b)?);
        for (flag, value) in [
            ("--tolerance", Some(args.tolerance)),
            ("--item-tolerance", args.item_tolerance),
        ] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                bail!("{flag} {v}: expected a number of nats, 0 or more");
            }
        }
        let c = compare(&ra, &rb, args.tolerance, args.item_tolerance)
            .map_err(|e| anyhow::anyhow!("{} vs {}: {e}", a.display(), b.display()))?;
        println!(
            "A: {} (loss {:.6}, perplexity {:.4})",
            a.display(),
            ra.overall.loss,
            ra.overall.perplexity
        );
        println!(
            "B: {} (loss {:.6}, perplexity {:.4})",
            b.display(),
            rb.overall.loss,
            rb.overall.perplexity
        );
        let over = match c.item_tolerance {
            Some(t) => format!("; {} over the item tolerance {t:e}", c.items_over_tolerance),
            None => String::new(),
        };
        println!(
            "items: {}; largest per-item loss difference {:.3e} (item {}){over}",
            c.items, c.max_item_delta, c.max_item_index
        );
        println!(
            "overall: loss Δ {:+.3e} (tolerance {:e}), perplexity Δ {:+.3e}",
            c.loss_delta, c.tolerance, c.perplexity_delta
        );
        if let Some(path) = &args.output {
            write_atomically(path, serde_json::to_string_pretty(&c)?.as_bytes())?;
        }
        return Ok(if c.identical {
            println!("IDENTICAL within {:e}", c.tolerance);
            0
        } else {
            println!("DIFFERENT: beyond the tolerance {:e}", c.tolerance);
            1
        });
    }
    let data = args
        .data
        .as_ref()
        .expect("clap requires --data without --compare");
    let mut items = read_items(data)?;
    if let Some(n) = args.limit {
        if n == 0 {
            bail!("--limit 0 would score nothing");
        }
        items.truncate(n);
    }
    let mut runner = args.backend.open()?;
    let guard = Guard::install(&args.backend.limits, "batch")?;
    let bar = indicatif::ProgressBar::new(items.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} {bar:30} {pos}/{len} items [{elapsed_precise}<{eta_precise}]",
        )
        .expect("a valid template"),
    );
    bar.set_prefix("ppl");
    let start = std::time::Instant::now();
    let losses = score(
        runner.backend(),
        &items,
        args.rolling,
        &mut || bar.inc(1),
        &|| guard.should_stop(),
    )?;
    bar.finish_and_clear();
    if let Some(stop) = guard.stopped() {
        eprintln!(
            "{}: {} of {} items scored, no report written; run the same command again: the request cache answers the scored items at once",
            stop.describe(),
            losses.len(),
            items.len()
        );
        return Ok(stop.exit_code());
    }
    let info = runner.info().clone();
    let setup = serde_json::json!({
        "model": info.model_path.display().to_string(),
        "model_sha256": info.model_sha256,
        "adapter": info.adapter,
        "data": data.display().to_string(),
        "mode": if args.rolling { "rolling" } else { "response|prompt" },
        "ctx_size": info.ctx_size,
        "seconds": start.elapsed().as_secs_f64(),
    });
    let truncated = losses.iter().filter(|l| l.truncated).count();
    let report = PplReport::new(setup, losses);
    println!(
        "{}{}: {} items, {} tokens, loss {:.4}, perplexity {:.3} ({:.1}s)",
        info.model_path.display(),
        info.adapter
            .as_ref()
            .map_or(String::new(), |a| format!(" + {} x{}", a.path, a.scale)),
        report.overall.items,
        report.overall.tokens,
        report.overall.loss,
        report.overall.perplexity,
        start.elapsed().as_secs_f64()
    );
    for (title, groups) in [
        ("Source", &report.by_source),
        ("Difficulty", &report.by_difficulty),
        ("Domain", &report.by_domain),
    ] {
        println!();
        print!("{}", group_rows(title, groups));
    }
    if truncated > 0 {
        eprintln!(
            "\n{}",
            crate::backend::truncation_warning(&info, truncated, "items")
        );
    }
    if let Some(path) = &args.output {
        write_atomically(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("\nwrote {}", path.display());
    }
    Ok(0)
}
