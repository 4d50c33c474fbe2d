//! `assay grade`: deduplicate sampled completions, grade each unique one against its prompt's
//! reference, and save the equivalent ones as a tokenized Hugging Face dataset.

use std::path::PathBuf;

use anyhow::bail;
use assay_core::LoglikelihoodRequest;
use assay_engine::Tokenizer;
use assay_records::aligned_table;
use assay_validate::completions::read_completions;
use assay_validate::grade::{grade_all, GraderConfig};
use assay_validate::hf::{write_dataset, Example};
use assay_validate::rules::{grade, Verdict};

use crate::backend::resolve_model;

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
}

/// Runs `assay grade`; returns the exit code.
pub fn run(args: GradeArgs) -> anyhow::Result<i32> {
    let config = GraderConfig::load(&args.grader)?;
    let Some(rule) = config.rule else {
        bail!(
            "{}: the LLM judge (`grader_model`) is not built yet; give a `rule`",
            args.grader.display()
        );
    };
    let completions = read_completions(&args.completions)?;
    let (graded, stats) = grade_all(completions, &config.reference_field, |r, c| {
        grade(rule, r, c)
    });
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
        "equivalence rate {:.1}% ({:?} rule; 0 judge calls, cost $0); {} examples from {} prompts -> {}",
        stats.rate() * 100.0,
        rule,
        examples.len(),
        examples.iter().map(|e| &e.prompt_id).collect::<std::collections::HashSet<_>>().len(),
        args.output.display()
    );
    Ok(0)
}
