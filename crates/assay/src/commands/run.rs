//! `assay run`: evaluate a model on tasks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use assay_dirs::default_cache_path;
use assay_eval::{
    evaluate, prepare_tasks, results_json, sanitize_model_name, ChatInfo, EvalOptions, Limit,
    RunInfo,
};
use assay_openai::CHAT_CANNOT_SCORE;
use assay_sandbox::{Limits, Sandbox};
use assay_tasks::{ChatFormat, PreparedTask, Seeds};

use super::{parse_meta, write_atomically, RegistryArgs, TaskSourceArgs};
use crate::backend::{chat_template_for, ApiArg, BackendArgs, BackendKind};
use crate::guard::{Guard, Stop};
use crate::{progress::Bar, table};

/// Arguments of `assay run`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay run --tasks hellaswag,arc_easy,mmlu --limit 200\n  \
    assay run --model ft.gguf --tasks mmlu_high_school_computer_science --num-fewshot 5 \\\n            --output-path runs/ --log-samples\n\n\
    Scores of a document depend on that document and the model settings only, never on \
    --limit, document order or --threads (generation: with --parallel 1, the default).")]
pub struct RunArgs {
    /// Comma-separated tasks, groups or tags (see `assay tasks`).
    #[arg(long, value_delimiter = ',', required = true, value_name = "LIST")]
    pub tasks: Vec<String>,
    /// Documents per task: a count, or a fraction below 1 (e.g. 0.1).
    #[arg(long, value_name = "N")]
    pub limit: Option<String>,
    /// Few-shot examples per document (overrides each task's default).
    #[arg(long, alias = "num_fewshot", value_name = "N")]
    pub num_fewshot: Option<usize>,
    /// Folder for the results JSON (and per-sample logs): <DIR>/<model>/results_<time>.json.
    #[arg(long, alias = "output_path", value_name = "DIR")]
    pub output_path: Option<PathBuf>,
    /// Write every document's prompt, answers and scores as JSONL (needs --output-path).
    #[arg(long, alias = "log_samples", requires = "output_path")]
    pub log_samples: bool,
    /// lm-eval's `--seed`: `N` for all four, or `python,numpy,torch,fewshot` (each a number or
    /// `None`; default 0,1234,1234,1234). The first three seed the global generators of the
    /// Python that runs `!function` hooks, before any hook runs; the few-shot seed replaces
    /// every task's sampler seed.
    #[arg(long, value_name = "N|A,B,C,D")]
    pub seed: Option<String>,
    /// Run model-written code (pass@k tasks such as humaneval) without the sandbox: only
    /// rlimits, a temporary folder and a cleared environment. The code can then reach the
    /// network and your files.
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
    #[command(flatten)]
    pub source: TaskSourceArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Resamples for bootstrap standard errors of non-mean metrics (0 disables them).
    #[arg(
        long,
        alias = "bootstrap_iters",
        default_value_t = 1000,
        value_name = "N"
    )]
    pub bootstrap_iters: usize,
    /// Override generation settings of generation tasks, e.g.
    /// `max_gen_toks=64,temperature=0.7,top_p=0.9,seed=1` (`until` takes `a|b|c`).
    #[arg(long, alias = "gen_kwargs", value_name = "K=V,...")]
    pub gen_kwargs: Option<String>,
    /// Render every prompt through the model's own chat template (from the GGUF).
    #[arg(long, alias = "apply_chat_template")]
    pub apply_chat_template: bool,
    /// Chat template to use instead of the model's: a built-in name (gemma, chatml, llama3) or
    /// a Jinja file. Without it: the GGUF's own template, else the built-in one for the model's
    /// architecture.
    #[arg(long, value_name = "NAME|FILE", requires = "apply_chat_template")]
    pub chat_template: Option<String>,
    /// A system message placed before each prompt (with --apply-chat-template).
    #[arg(
        long,
        alias = "system_instruction",
        value_name = "TEXT",
        requires = "apply_chat_template"
    )]
    pub system_instruction: Option<String>,
    /// Few-shot examples as alternating user/assistant turns (with --apply-chat-template).
    #[arg(long, alias = "fewshot_as_multiturn", requires = "apply_chat_template")]
    pub fewshot_as_multiturn: bool,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// How a finished run is recorded in the run registry.
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Do not record the run in the registry.
    #[arg(long)]
    pub no_record: bool,
    /// A name for the run in the registry (`assay compare BASE FT` takes labels).
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Free metadata for the registry, e.g. `--meta finetune=lora --meta train_examples=2000`.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// Tags for the registry (repeatable).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
}

fn parse_limit(text: &str) -> anyhow::Result<Limit> {
    if let Ok(n) = text.parse::<usize>() {
        if n == 0 {
            bail!("--limit 0 would evaluate nothing; give a positive count or a fraction");
        }
        return Ok(Limit::Count(n));
    }
    match text.parse::<f64>() {
        Ok(f) if f > 0.0 && f < 1.0 => Ok(Limit::Fraction(f)),
        _ => bail!("--limit {text:?}: expected a positive count or a fraction between 0 and 1"),
    }
}

/// `k=v,k=v` pairs.
fn parse_pairs(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
            None => bail!("--gen-kwargs: `{p}` is not key=value"),
        })
        .collect()
}

/// The sandbox for tasks that run model-written code, checked before any inference; it hides
/// the run's outputs, the registry and the request cache from the programs.
fn code_sandbox(args: &RunArgs) -> anyhow::Result<Arc<Sandbox>> {
    let limits = Limits::default();
    let sandbox = if args.unsafe_no_sandbox {
        eprintln!("warning: --unsafe-no-sandbox: model-written code runs with your user's access to files and network");
        Sandbox::unsafe_no_sandbox(limits)?
    } else {
        Sandbox::detect(limits)?
    };
    let mut sandbox = sandbox.hide(
        args.record
            .registry
            .path()
            .parent()
            .map_or_else(PathBuf::new, |p| p.to_path_buf()),
    );
    if let Some(out) = &args.output_path {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        sandbox = sandbox.hide(out.canonicalize().unwrap_or_else(|_| out.clone()));
    }
    if let Some(cache) = args.backend.cache.as_ref().and_then(|c| c.parent()) {
        sandbox = sandbox.hide(cache.to_path_buf());
    }
    Ok(Arc::new(sandbox))
}

/// Runs `assay run`; returns the exit code.
/// An error that came of the command's stop (a download or a hook cut short) exits as a stop:
/// its exit code and what to do; any other error stays an error.
fn stopped_or(guard: &Guard, err: anyhow::Error) -> anyhow::Result<i32> {
    let Some(stop) = guard.stopped() else {
        return Err(err);
    };
    eprintln!(
        "{}: {err:#}\nfinished documents are kept (per-sample logs, request cache): run the same command again to go on",
        stop.describe()
    );
    Ok(stop.exit_code())
}

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let limit = args.limit.as_deref().map(parse_limit).transpose()?;
    let registry = args.source.registry()?;
    let selection = registry.resolve(&args.tasks)?;
    for name in selection
        .tasks
        .iter()
        .filter(|n| registry.replaces_builtin(n))
    {
        if let Some((_, source)) = registry.task(name) {
            eprintln!("note: task {name} from {source} replaces the built-in task of that name");
        }
    }
    // Installed first, so Ctrl-C and --run-timeout also end downloads.
    let guard = Guard::install(&args.backend.limits, "document")?;
    let data = args.source.data(Some(guard.flag()))?;
    if !args.backend.no_cache {
        let path = args
            .backend
            .cache
            .clone()
            .unwrap_or_else(default_cache_path);
        assay_tasks::cache_hook_outputs(assay_request_cache::RequestCache::open(&path)?);
    }
    let gen_kwargs = match &args.gen_kwargs {
        Some(text) => parse_pairs(text)?,
        None => Vec::new(),
    };
    let seeds = match &args.seed {
        Some(text) => Seeds::parse(text).map_err(anyhow::Error::msg)?,
        None => Seeds::default(),
    };
    assay_tasks::seed_hooks(seeds);
    // Without --seed, each task keeps its own few-shot seed (lm-eval's 1234 unless it sets one).
    let fewshot_seed = args.seed.as_ref().and(seeds.fewshot);
    let prepared = prepare_tasks(
        &selection,
        &data,
        args.num_fewshot,
        fewshot_seed,
        &gen_kwargs,
    );
    let mut tasks = match prepared {
        Ok(tasks) => tasks,
        Err(err) => return stopped_or(&guard, err.into()),
    };
    let datasets = data.origins(
        &tasks
            .iter()
            .map(|t| (t.name.clone(), t.spec.clone()))
            .collect::<Vec<_>>(),
    );
    for (task, origin) in &datasets {
        eprintln!(
            "note: {task} reads {} (config {}) at {} ({})",
            origin.repo, origin.config, origin.commit, origin.revision
        );
    }
    if tasks.iter().any(PreparedTask::runs_code) {
        let sandbox = code_sandbox(&args)?;
        for task in tasks.iter_mut().filter(|t| t.runs_code()) {
            task.set_sandbox(sandbox.clone());
        }
    }
    if args.backend.backend == BackendKind::Openai && args.backend.api == ApiArg::Chat {
        let scored: Vec<&str> = tasks
            .iter()
            .filter(|t| !t.is_generation())
            .map(|t| t.name.as_str())
            .collect();
        if !scored.is_empty() {
            bail!("{}: {CHAT_CANNOT_SCORE}", scored.join(", "));
        }
        if args.apply_chat_template {
            bail!("--api chat sends each prompt as a user message and the server applies its own chat template: drop --apply-chat-template");
        }
    }
    // A registry that cannot be opened stops the run before any work.
    let mut run_registry = if args.record.no_record {
        None
    } else {
        Some(args.record.registry.open()?)
    };
    let mut runner = args.backend.open()?;
    let model_label = runner.info().model_path.display().to_string();
    let chat = if args.apply_chat_template {
        let (template, source) =
            chat_template_for(args.chat_template.as_deref(), runner.backend())?;
        if source != "gguf" {
            eprintln!("note: chat template from {source}");
        }
        let tokens = &runner.info().special_tokens;
        let text =
            |t: &Option<(String, String)>| t.as_ref().map(|t| t.0.clone()).unwrap_or_default();
        let (bos, eos) = (text(&tokens.bos), text(&tokens.eos));
        for task in &mut tasks {
            task.set_chat(
                ChatFormat::new(
                    &template,
                    &bos,
                    &eos,
                    args.system_instruction.clone(),
                    args.fewshot_as_multiturn,
                )
                .map_err(|e| anyhow::anyhow!("{model_label}: {e}"))?,
            );
        }
        Some(ChatInfo {
            source,
            template_sha: assay_tasks::hash_text(&template),
            template,
            system_instruction: args.system_instruction.clone(),
            fewshot_as_multiturn: args.fewshot_as_multiturn,
        })
    } else {
        None
    };

    let started = chrono::Utc::now();
    let stamp = started.format("%Y-%m-%dT%H-%M-%S%.6f").to_string();
    let out_dir = match &args.output_path {
        Some(dir) => {
            let d = dir.join(sanitize_model_name(&runner.info().model_name));
            std::fs::create_dir_all(&d)
                .with_context(|| format!("creating output folder {}", d.display()))?;
            Some(d)
        }
        None => None,
    };
    // The registry keeps every document's scores (for paired comparisons): without
    // --log-samples they are logged to a staging folder beside the registry and removed once
    // recorded.
    let staging = match (&run_registry, &out_dir, args.log_samples) {
        (Some(reg), _, false) | (Some(reg), None, _) => Some(
            tempfile::Builder::new()
                .prefix(".staging-")
                .tempdir_in(reg.path().parent().unwrap_or(std::path::Path::new(".")))
                .context("creating a staging folder beside the registry")?,
        ),
        _ => None,
    };
    let options = EvalOptions {
        limit,
        bootstrap_iters: args.bootstrap_iters,
        samples: match (&out_dir, args.log_samples, &staging) {
            (Some(d), true, _) => Some((d.clone(), stamp.clone())),
            (_, _, Some(s)) => Some((s.path().to_path_buf(), stamp.clone())),
            _ => None,
        },
        interrupt: guard.flag(),
    };
    let total: usize = tasks
        .iter()
        .map(|t| limit.map_or(t.docs.len(), |l| l.apply(t.docs.len())))
        .sum();
    let mut bar = Bar::new(total as u64, runner.backend().request_stats());
    let evaluated = evaluate(
        runner.backend(),
        &tasks,
        &selection.groups,
        &options,
        &mut bar,
    );
    let requests = runner.request_summary();
    if let Err(err) = evaluated {
        drop(bar);
        print_request_summary(&requests);
        return stopped_or(&guard, err.into());
    }
    let outcome = evaluated?;
    bar.finish(outcome.seconds, runner.backend().tokens_processed());

    let info = runner.info();
    let place = match &info.endpoint {
        Some(urls) => format!("{} at {urls} [{}]", info.model_name, info.backend),
        None => format!(
            "{} [{}; {} threads; ctx {}]",
            info.model_path.display(),
            info.quantization,
            info.threads,
            info.ctx_size
        ),
    };
    println!(
        "assay ({}), {place}, limit: {}, num_fewshot: {}",
        env!("CARGO_PKG_VERSION"),
        args.limit.as_deref().unwrap_or("none"),
        args.num_fewshot
            .map_or("task default".into(), |n| n.to_string()),
    );
    print!("{}", table::tasks_table(&outcome));
    if !outcome.groups.is_empty() {
        println!();
        print!("{}", table::groups_table(&outcome));
    }
    let truncated: usize = outcome.tasks.iter().map(|t| t.truncated_requests).sum();
    if truncated > 0 {
        eprintln!(
            "\n{}",
            crate::backend::truncation_warning(info, truncated, "requests")
        );
    }
    for t in &outcome.tasks {
        if let Some(tm) = &t.timing {
            println!(
                "{}: {:.2}s per document, {:.1} generated tokens/s",
                t.name,
                tm.seconds_per_doc(),
                tm.tokens_per_second()
            );
        }
    }
    print_request_summary(&requests);
    if outcome.interrupted {
        let stop = guard.stopped().unwrap_or(Stop::Interrupted);
        eprintln!(
            "{}: {} documents finished; per-sample logs are complete up to the last finished document; no results file written. Run the same command again: the request cache answers the finished documents at once.",
            stop.describe(),
            outcome.tasks.iter().map(|t| t.n_effective).sum::<usize>()
        );
        return Ok(stop.exit_code());
    }
    let run_info = RunInfo {
        backend: info.clone(),
        // Never a password written into a --base-url.
        command_line: std::env::args()
            .map(|a| assay_openai::redact_credentials(&a))
            .collect(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        git_hash: Some(env!("ASSAY_GIT_HASH").to_string()).filter(|h| !h.is_empty()),
        limit,
        bootstrap_iters: args.bootstrap_iters,
        date: started.timestamp_micros() as f64 / 1e6,
        chat,
        requests,
        gen_kwargs,
        seeds,
    };
    let mut doc = results_json(&outcome, &run_info);
    doc["assay"]["datasets"] = serde_json::to_value(&datasets)?;
    if staging.is_some() {
        // Staged logs are not kept: the registry holds their lines.
        doc["assay"]["samples"] = serde_json::json!({});
    }
    let text = serde_json::to_string_pretty(&doc)?;
    let mut origin = "assay run".to_string();
    if let Some(dir) = &out_dir {
        let path = dir.join(format!("results_{stamp}.json"));
        write_atomically(&path, text.as_bytes())?;
        println!("\nresults: {}", path.display());
        if args.log_samples {
            for t in &outcome.tasks {
                if let Some(p) = &t.samples_path {
                    println!("samples: {}", p.display());
                }
            }
        }
        origin = path.display().to_string();
    }
    if let Some(run_registry) = &mut run_registry {
        let id = run_registry
            .record(&assay_records::NewRun {
                results_text: text,
                origin,
                samples: outcome
                    .tasks
                    .iter()
                    .filter_map(|t| t.samples_path.clone().map(|p| (t.name.clone(), p)))
                    .collect(),
                label: args.record.label.clone(),
                tags: args.record.tag.clone(),
                meta: args.record.meta.iter().cloned().collect::<BTreeMap<_, _>>(),
            })
            .context(
                "recording the run (its results file, if --output-path was given, is written)",
            )?;
        println!(
            "recorded as run {id}{} in {}",
            args.record
                .label
                .as_ref()
                .map_or(String::new(), |l| format!(" ({l})")),
            run_registry.path().display()
        );
    }
    Ok(0)
}

/// One line on how requests were answered: cache hits and misses, HTTP retries.
fn print_request_summary(requests: &serde_json::Value) {
    let mut parts = Vec::new();
    if let Some(cache) = requests.get("cache").filter(|c| !c.is_null()) {
        parts.push(format!(
            "cache {}: {} answers reused, {} computed",
            cache["path"].as_str().unwrap_or(""),
            cache["hits"],
            cache["misses"]
        ));
    }
    if let Some(http) = requests.get("http").filter(|h| !h.is_null()) {
        let retries: Vec<String> = http["retries"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, n)| n.as_u64() > Some(0))
            .map(|(k, n)| format!("{k}:{n}"))
            .collect();
        parts.push(format!(
            "http: {} requests answered, retries: {}",
            http["answered"],
            if retries.is_empty() {
                "none".to_string()
            } else {
                retries.join(" ")
            }
        ));
    }
    if !parts.is_empty() {
        eprintln!("{}", parts.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_counts_and_fractions() {
        assert_eq!(parse_limit("200").unwrap(), Limit::Count(200));
        assert_eq!(parse_limit("0.5").unwrap(), Limit::Fraction(0.5));
        assert!(parse_limit("0").is_err());
        assert!(parse_limit("1.5").is_err());
        assert!(parse_limit("ten").is_err());
    }
}
