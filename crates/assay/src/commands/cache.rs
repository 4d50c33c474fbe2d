//! `assay cache`: inspect and prune the request cache.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use assay_dirs::default_cache_path;
use assay_request_cache::{PruneRule, RequestCache};

/// Arguments of `assay cache`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay cache stats\n  \
    assay cache prune --unused-days 30\n  \
    assay cache prune --model gemma-3-270m\n\n\
    The cache maps each request (backend, model fingerprint, settings, primitive, arguments) \
    to its answer; `assay run` reads it before asking the model and writes every answer as it \
    arrives.")]
pub struct CacheArgs {
    #[command(subcommand)]
    action: Action,
    /// The cache file [default: ~/.cache/assay/requests.sqlite].
    #[arg(long, global = true, value_name = "PATH")]
    cache: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Answers held, per model and request primitive, and the file's size.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete answers: those matching every given condition, or all with --all.
    Prune {
        /// Answers not used (read or written) for this many days.
        #[arg(long, value_name = "DAYS")]
        unused_days: Option<f64>,
        /// Answers of models whose name contains this text (as `stats` lists them).
        #[arg(long, value_name = "TEXT")]
        model: Option<String>,
        /// Every answer.
        #[arg(long, conflicts_with_all = ["unused_days", "model"])]
        all: bool,
    },
}

/// Runs `assay cache`.
pub fn run(args: CacheArgs) -> anyhow::Result<i32> {
    let path = args.cache.unwrap_or_else(default_cache_path);
    if !path.exists() {
        bail!(
            "no request cache at {} (it is created by the first `assay run`; pass --cache PATH for another)",
            path.display()
        );
    }
    let cache = RequestCache::open(&path)?;
    match args.action {
        Action::Stats { json } => {
            let stats = cache.stats()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
                return Ok(0);
            }
            println!(
                "{}: {} answers, {:.1} MB",
                stats.path.display(),
                stats.entries,
                stats.bytes as f64 / 1e6
            );
            if !stats.groups.is_empty() {
                let width = stats
                    .groups
                    .iter()
                    .map(|g| g.0.len())
                    .max()
                    .unwrap_or(5)
                    .max(5);
                println!(
                    "\n{:<width$}  {:<22}  {:>9}  last used",
                    "model", "primitive", "answers"
                );
                for (model, primitive, n, used) in &stats.groups {
                    let when = chrono::DateTime::from_timestamp(*used, 0).map_or_else(
                        || "?".into(),
                        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
                    );
                    println!("{model:<width$}  {primitive:<22}  {n:>9}  {when}");
                }
            }
        }
        Action::Prune {
            unused_days,
            model,
            all,
        } => {
            if !all && unused_days.is_none() && model.is_none() {
                bail!("say which answers to delete: --unused-days DAYS, --model TEXT, or --all");
            }
            let unused_for = match unused_days {
                Some(d) if d.is_finite() && d >= 0.0 => Some(Duration::from_secs_f64(d * 86_400.0)),
                Some(d) => bail!("--unused-days {d}: expected a number of days, 0 or more"),
                None => None,
            };
            let deleted = cache.prune(&PruneRule { unused_for, model })?;
            println!(
                "deleted {deleted} answers; {} left in {}",
                cache.len()?,
                path.display()
            );
        }
    }
    Ok(0)
}
