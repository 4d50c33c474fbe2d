//! `assay lora merge`: write a model with a LoRA adapter merged into its weights.

use std::path::PathBuf;

use crate::backend::{lora_settings, resolve_model};

/// Arguments of `assay lora`.
#[derive(clap::Args, Debug)]
pub struct LoraArgs {
    #[command(subcommand)]
    command: LoraCommand,
}

#[derive(clap::Subcommand, Debug)]
enum LoraCommand {
    /// Merge an adapter into a model: touched tensors become W + scale·(alpha/rank)·B·A in F32,
    /// the others are copied unchanged. Check the result with `assay ppl --compare`.
    Merge {
        /// The base model (GGUF, or `default`).
        #[arg(long, default_value = "default", value_name = "GGUF")]
        model: String,
        /// The LoRA adapter: a PEFT adapter folder or a GGUF adapter; given more than once,
        /// their sum (stacked, as at run time) is merged.
        #[arg(long, value_name = "DIR|GGUF", required = true, action = clap::ArgAction::Append)]
        lora: Vec<PathBuf>,
        /// Scale of the adapter, as `--lora-scale` at run time (one per --lora, or one for all)
        /// [default: 1].
        #[arg(long, alias = "lora-scale", value_name = "S", action = clap::ArgAction::Append)]
        scale: Vec<f32>,
        /// The merged model to write.
        #[arg(short, long, value_name = "GGUF")]
        output: PathBuf,
    },
}

/// Runs `assay lora`; returns the exit code.
pub fn run(args: LoraArgs) -> anyhow::Result<i32> {
    match args.command {
        LoraCommand::Merge {
            model,
            lora,
            scale,
            output,
        } => {
            let base = resolve_model(&model)?;
            let lora = lora_settings(&lora, &scale, &base)?.expect("--lora is required");
            let summary = assay_llama::lora::merge(&base, &lora.path, lora.scale, &output)?;
            println!(
                "merged {} tensors (rank {}, alpha {}, factor {}) into {}",
                summary.merged.len(),
                summary.rank,
                summary.alpha,
                summary.factor,
                output.display()
            );
        }
    }
    Ok(0)
}
