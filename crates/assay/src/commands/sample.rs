//! `assay sample`: N sampled completions per prompt, streamed to JSONL and resumable.

use std::path::PathBuf;

use anyhow::{bail, Context};
use assay_core::{GenerationRequest, Sampling};
use assay_tasks::PreparedTask;
use assay_validate::grading::completions::{append, read_prompts, resume, Completion, Prompt};

use super::TaskSourceArgs;
use crate::backend::BackendArgs;
use crate::guard::Guard;

/// Arguments of `assay sample`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay sample --prompts prompts.jsonl --num-generations 200 --temperature 0.1 \\\n               --max-new-tokens 10 --parallel 16 -o completions.jsonl\n  \
    assay sample --task gsm8k --limit 10 --num-generations 20 -o gsm8k_samples.jsonl\n\n\
    Sample i of a prompt uses the seed --seed + i, so with --parallel 1 (the default) a \
    completion depends only on its prompt, its index and the model settings; --parallel N is \
    much faster but a completion may then change with its batch-mates. A prompt's completions \
    are written together as soon as they are done; run the same command again after an \
    interruption and it continues with the prompts that are missing.")]
pub struct SampleArgs {
    /// Prompts: JSONL with `prompt` (or `text`) and optional `metadata`.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "task",
        conflicts_with = "task"
    )]
    prompts: Option<PathBuf>,
    /// Or the zero-shot prompts of an assay task.
    #[arg(long, value_name = "TASK")]
    task: Option<String>,
    /// Only the first N prompts.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    #[command(flatten)]
    source: TaskSourceArgs,
    /// Completions per prompt.
    #[arg(long, default_value_t = 1, value_name = "N")]
    num_generations: usize,
    /// Sampling temperature (0: greedy, every completion the same).
    #[arg(long, default_value_t = 0.1)]
    temperature: f64,
    /// Nucleus sampling mass (1: off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Most tokens per completion.
    #[arg(long, default_value_t = 10, value_name = "K")]
    max_new_tokens: usize,
    /// Stop strings (repeatable); generation ends before the first.
    #[arg(long, value_name = "TEXT")]
    until: Vec<String>,
    /// Base seed.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// The JSONL file of completions (appended to when resuming).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The prompts of `args`.
fn prompts(args: &SampleArgs) -> anyhow::Result<Vec<Prompt>> {
    let mut prompts = match (&args.prompts, &args.task) {
        (Some(path), _) => read_prompts(path)?,
        (None, Some(name)) => {
            let registry = args.source.registry()?;
            let (spec, _) = registry
                .task(name)
                .with_context(|| format!("no task `{name}` (see `assay tasks`)"))?;
            let task = PreparedTask::prepare(name, spec, &args.source.data(None)?, Some(0))?;
            let n = args.limit.unwrap_or(task.docs.len()).min(task.docs.len());
            let mut out = Vec::with_capacity(n);
            for doc in 0..n {
                let inst = task.instance(doc)?;
                let mut meta = serde_json::Map::new();
                meta.insert("task".into(), name.clone().into());
                meta.insert("doc_id".into(), doc.into());
                meta.insert("target".into(), assay_tasks::text_of(&inst.target).into());
                out.push(Prompt::new(inst.context().unwrap_or("").to_string(), meta));
            }
            out
        }
        (None, None) => unreachable!("clap requires --prompts or --task"),
    };
    if let Some(n) = args.limit {
        prompts.truncate(n);
    }
    Ok(prompts)
}

/// Runs `assay sample`; returns the exit code.
pub fn run(args: SampleArgs) -> anyhow::Result<i32> {
    if args.num_generations == 0 {
        bail!("--num-generations 0: nothing to sample; give 1 or more");
    }
    if args.max_new_tokens == 0 {
        bail!("--max-new-tokens 0: completions would be empty");
    }
    let prompts = prompts(&args)?;
    let done = resume(&args.output, args.num_generations)?;
    let todo: Vec<&Prompt> = prompts
        .iter()
        .filter(|p| done.get(&p.id).copied().unwrap_or(0) < args.num_generations)
        .collect();
    let partial = todo.iter().filter(|p| done.contains_key(&p.id)).count();
    if partial > 0 {
        bail!(
            "{}: {partial} prompts have some but not all of {} completions: it was written with another --num-generations; use another -o",
            args.output.display(),
            args.num_generations
        );
    }
    if prompts.len() > todo.len() {
        eprintln!(
            "resuming: {} of {} prompts already sampled in {}",
            prompts.len() - todo.len(),
            prompts.len(),
            args.output.display()
        );
    }
    let mut runner = args.backend.open()?;
    let guard = Guard::install(&args.backend.limits, "prompt")?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.output)
        .with_context(|| format!("opening {}", args.output.display()))?;
    let total = (todo.len() * args.num_generations) as u64;
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "sample {bar:30} {pos}/{len} completions {per_sec} [{elapsed_precise}<{eta_precise}]",
        )
        .expect("a valid template"),
    );
    let start = std::time::Instant::now();
    let chunk = runner.backend().batch_documents(true).max(1);
    let mut written = 0usize;
    let mut tokens = 0usize;
    for batch in todo.chunks(chunk) {
        if guard.should_stop() {
            break;
        }
        let requests: Vec<GenerationRequest> = batch
            .iter()
            .map(|p| GenerationRequest {
                context: p.text.clone(),
                until: args.until.clone(),
                max_gen_toks: args.max_new_tokens,
                sampling: Sampling {
                    temperature: args.temperature,
                    top_p: args.top_p,
                    top_k: 0,
                    seed: args.seed,
                },
                n: args.num_generations,
            })
            .collect();
        let mut failed: Option<std::io::Error> = None;
        runner
            .backend()
            .generate_until_many(&requests, &mut |i, gens| {
                let p = batch[i];
                let completions: Vec<Completion> = gens
                    .iter()
                    .enumerate()
                    .map(|(k, g)| Completion {
                        prompt_id: p.id.clone(),
                        generation_idx: k,
                        prompt: p.text.clone(),
                        completion: g.text.clone(),
                        tokens: g.tokens,
                        stop: serde_json::to_value(&g.stop)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        metadata: p.metadata.clone(),
                    })
                    .collect();
                tokens += gens.iter().map(|g| g.tokens).sum::<usize>();
                if failed.is_none() {
                    if let Err(e) = append(&mut out, &completions) {
                        failed = Some(e);
                    }
                }
                written += completions.len();
                bar.inc(completions.len() as u64);
            })?;
        if let Some(e) = failed {
            return Err(e).with_context(|| format!("writing {}", args.output.display()));
        }
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{written} completions of {} prompts in {secs:.1}s: {:.1} completions/s, {:.1} tokens/s -> {}",
        todo.len(),
        written as f64 / secs.max(1e-9),
        tokens as f64 / secs.max(1e-9),
        args.output.display()
    );
    if let Some(stop) = guard.stopped() {
        eprintln!(
            "{}: the completions of {} prompts are in {}; run the same command again to sample the rest",
            stop.describe(),
            written / args.num_generations,
            args.output.display()
        );
        return Ok(stop.exit_code());
    }
    Ok(0)
}
