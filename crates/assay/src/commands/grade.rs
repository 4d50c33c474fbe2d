//! `assay grade`: deduplicate sampled completions, grade each unique one against its prompt's
//! reference, and save the equivalent ones as a tokenized Hugging Face dataset.

use std::path::PathBuf;

use anyhow::{bail, Context};
use assay_backend::{Backend, TextTokenizer};
use assay_core::{GenerationRequest, LoglikelihoodRequest, Sampling};
use assay_dirs::default_cache_path;
use assay_llama::Tokenizer;
use assay_openai::{Api, ClientSettings, OpenAiBackend, OpenAiSettings};
use assay_records::aligned_table;
use assay_request_cache::{CachedBackend, RequestCache};
use assay_validate::grading::completions::read_completions;
use assay_validate::grading::grade::{
    dedupe, grade_all, judge_prompt, parse_verdict, reference_of, tally, GradeStats, Graded,
    GraderConfig,
};
use assay_validate::grading::hf::{write_dataset, Example};
use assay_validate::grading::rules::{grade, Verdict};

use crate::backend::resolve_model;
use crate::guard::{Guard, LimitArgs, Stop};

/// Arguments of `assay grade`.
#[derive(clap::Args, Debug)]
pub struct GradeArgs {
    /// Completions from `assay sample`.
    #[arg(long, value_name = "FILE")]
    completions: PathBuf,
    /// Grader config: `grader_instructions`, and `rule` (exact, numeric, date, name) or
    /// `grader_model` + `base_url` for an LLM judge.
    #[arg(long, value_name = "CONFIG.json")]
    grader: PathBuf,
    /// The model whose tokenizer builds `input_ids` (GGUF or `default`).
    #[arg(long, default_value = "default", value_name = "GGUF")]
    model: String,
    /// The dataset folder to write (must not exist).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// The request cache for judge answers [default: ~/.cache/assay/requests.sqlite].
    #[arg(long, value_name = "PATH")]
    cache: Option<PathBuf>,
    /// Seconds to wait for one judge answer before retrying it.
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS", value_parser = positive_seconds)]
    timeout: f64,
    #[command(flatten)]
    limits: LimitArgs,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!("{text:?}: expected a positive number of seconds")),
    }
}

/// Judge requests sent between two looks at the stop flag (per unit of concurrency).
const JUDGE_ROUND: usize = 4;

/// Grades every unique completion with the config's LLM judge through its OpenAI-compatible
/// chat endpoint (the served-model client: concurrency, retries) and the request cache, so a
/// re-run asks nothing again. Returns the grades, counts, and a line on calls and cost.
fn llm_judge(
    config: &GraderConfig,
    completions: Vec<assay_validate::grading::completions::Completion>,
    args: &GradeArgs,
    guard: &Guard,
) -> anyhow::Result<JudgeOutcome> {
    let (model, url) = match (&config.grader_model, &config.base_url) {
        (Some(m), Some(u)) => (m.clone(), u.clone()),
        _ => bail!(
            "{}: an LLM judge needs both `grader_model` and `base_url`",
            args.grader.display()
        ),
    };
    let api_key = match &config.api_key_env {
        Some(var) => {
            Some(std::env::var(var).with_context(|| format!("`api_key_env`: {var} is not set"))?)
        }
        None => None,
    };
    // Messages name the judge without a password written into `base_url`.
    let shown = assay_openai::redact_credentials(&url);
    let settings = OpenAiSettings {
        client: ClientSettings {
            base_urls: vec![url],
            concurrency: config.max_concurrency.unwrap_or(8).max(1),
            timeout: std::time::Duration::from_secs_f64(args.timeout),
            max_retries: 8,
            api_key,
        },
        model,
        api: Api::Chat,
        tokenizer: None,
        ctx_size: 4096,
    };
    let backend = OpenAiBackend::connect(settings).context("connecting to the judge")?;
    let cache = RequestCache::open(&args.cache.clone().unwrap_or_else(default_cache_path))?;
    let mut judge = CachedBackend::new(Box::new(backend), cache);
    let (mut unique, mut stats) = dedupe(completions);
    let asked: Vec<usize> = (0..unique.len())
        .filter(|i| reference_of(&unique[*i], &config.reference_field).is_some())
        .collect();
    let requests: Vec<GenerationRequest> = asked
        .iter()
        .map(|i| GenerationRequest {
            context: judge_prompt(
                &config.grader_instructions,
                reference_of(&unique[*i], &config.reference_field).expect("filtered"),
                &unique[*i].completion.completion,
            ),
            until: Vec::new(),
            max_gen_toks: 8,
            sampling: Sampling::greedy(),
            n: 1,
        })
        .collect();
    let concurrency = config.max_concurrency.unwrap_or(8).max(1);
    let mut answers = Vec::with_capacity(requests.len());
    for round in requests.chunks(JUDGE_ROUND * concurrency) {
        if let Some(stop) = guard.stopped() {
            eprintln!(
                "{}: {} of {} judge answers are in {}; run the same command again to ask only the rest",
                stop.describe(),
                answers.len(),
                requests.len(),
                judge.cache_path().display()
            );
            return Ok(JudgeOutcome::Stopped(stop));
        }
        answers.extend(
            judge
                .generate_until_many(round, &mut |_, _| {})
                .with_context(|| {
                    format!(
                        "asking the judge at {shown}; the answers received so far are kept in {}: \
                         run the same command again to ask only the rest",
                        judge.cache_path().display()
                    )
                })?,
        );
    }
    let mut verdicts = vec![Verdict::Ungradable; unique.len()];
    for (i, a) in asked.iter().zip(answers) {
        verdicts[*i] = parse_verdict(&a[0].text);
    }
    tally(&mut unique, &mut stats, verdicts, &config.reference_field);
    let counts = judge.counts();
    let cost = config
        .price_per_call
        .map_or("no price given".to_string(), |p| {
            format!("estimated cost ${:.4}", p * counts.misses as f64)
        });
    Ok(JudgeOutcome::Graded(
        unique,
        stats,
        format!(
            "LLM judge: {} calls, {} cache hits, {cost}",
            counts.misses, counts.hits
        ),
    ))
}

/// What the LLM judge came back with.
enum JudgeOutcome {
    /// Every completion graded: grades, counts, and a line on calls and cost.
    Graded(Vec<Graded>, GradeStats, String),
    /// Stopped early; the answers so far are in the cache.
    Stopped(Stop),
}

/// Runs `assay grade`; returns the exit code.
pub fn run(args: GradeArgs) -> anyhow::Result<i32> {
    let config = GraderConfig::load(&args.grader)?;
    let completions = read_completions(&args.completions)?;
    let (graded, stats, judge) = match config.rule {
        Some(rule) => {
            let (graded, stats) = grade_all(completions, &config.reference_field, |r, c| {
                grade(rule, r, c)
            });
            (
                graded,
                stats,
                format!("{rule:?} rule; 0 judge calls, cost $0"),
            )
        }
        None => {
            let guard = Guard::install(&args.limits, "round of judge requests")?;
            match llm_judge(&config, completions, &args, &guard)? {
                JudgeOutcome::Graded(graded, stats, line) => (graded, stats, line),
                JudgeOutcome::Stopped(stop) => return Ok(stop.exit_code()),
            }
        }
    };
    let tokenizer = Tokenizer::load(&resolve_model(&args.model)?)?;
    let kept: Vec<_> = graded
        .iter()
        .filter(|g| g.verdict == Verdict::Equivalent)
        .collect();
    let requests: Vec<LoglikelihoodRequest> = kept
        .iter()
        .map(|g| LoglikelihoodRequest {
            context: g.completion.prompt.clone(),
            continuation: g.completion.completion.clone(),
        })
        .collect();
    let tokenized = tokenizer.encode_pairs(&requests.iter().collect::<Vec<_>>());
    let examples: Vec<Example> = kept
        .iter()
        .zip(tokenized)
        .map(|(g, t)| {
            let c = &g.completion;
            let input_ids: Vec<i32> = t.context.iter().chain(&t.continuation).copied().collect();
            let labels = t
                .context
                .iter()
                .map(|_| -100i64)
                .chain(t.continuation.iter().map(|x| i64::from(*x)))
                .collect();
            Example {
                id: format!("{}-{}", c.prompt_id, c.generation_idx),
                prompt_id: c.prompt_id.clone(),
                prompt: c.prompt.clone(),
                completion: c.completion.clone(),
                generation_idx: c.generation_idx as i64,
                metadata: serde_json::to_string(&c.metadata).unwrap_or_default(),
                attention_mask: vec![1; input_ids.len()],
                input_ids,
                labels,
            }
        })
        .collect();
    write_dataset(&args.output, &examples)?;
    let rows = vec![
        vec!["Stage".to_string(), "Count".to_string()],
        vec!["completions".into(), stats.completions.to_string()],
        vec!["unique (exact)".into(), stats.unique_exact.to_string()],
        vec![
            "unique (normalised), graded".into(),
            stats.unique_normalised.to_string(),
        ],
        vec!["equivalent (kept)".into(), stats.equivalent.to_string()],
        vec!["different".into(), stats.different.to_string()],
        vec!["ungradable".into(), stats.ungradable.to_string()],
        vec!["no reference".into(), stats.missing_reference.to_string()],
    ];
    print!("{}", aligned_table(&rows));
    println!(
        "equivalence rate {:.1}% ({judge}); {} examples from {} prompts -> {}",
        stats.rate() * 100.0,
        examples.len(),
        examples
            .iter()
            .map(|e| &e.prompt_id)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        args.output.display()
    );
    Ok(0)
}
