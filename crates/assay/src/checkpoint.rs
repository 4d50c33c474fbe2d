//! Hugging Face checkpoint folders given as `--model DIR`: converted once to GGUF at the asked
//! precision and kept in the cache under the content hash of the folder's files
//! (`~/.cache/assay/checkpoints/<key>.gguf`), so the next run with the same weights, tokenizer
//! and precision loads the cached file at once. A k-quant mix (`q4_k_m`) is the checkpoint
//! converted at its own 16-bit precision, then quantised by llama.cpp's quantiser.

use std::path::{Path, PathBuf};

use anyhow::Context;
use assay_convert::OutType;
use assay_llama::quantize::Quant;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a checkpoint becomes: a precision the converter writes, or a llama.cpp quantisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Written by the converter.
    Native(OutType),
    /// Converted at 16 bits, then quantised by llama.cpp.
    Quantized(Quant),
}

/// The GGUF file for the checkpoint in `dir` at `precision` (the checkpoint's own
/// `torch_dtype` when `None`), converted now unless the cache has it.
pub fn checkpoint_gguf(dir: &Path, precision: Option<Precision>) -> anyhow::Result<PathBuf> {
    let own = || assay_convert::checkpoint_out_type(dir);
    match precision {
        Some(Precision::Native(t)) => converted(dir, t),
        None => converted(dir, own()?),
        Some(Precision::Quantized(quant)) => {
            // llama-quantize's usual input: bfloat16 stays bfloat16, anything else F16.
            let base = match own()? {
                OutType::Bf16 => OutType::Bf16,
                _ => OutType::F16,
            };
            let source = converted(dir, base)?;
            let out = source.with_file_name(format!(
                "{}-{}.gguf",
                source
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("model"),
                quant.name()
            ));
            if out.is_file() {
                eprintln!(
                    "note: {} ({}) quantised before: {}",
                    dir.display(),
                    quant.name(),
                    out.display()
                );
                return Ok(out);
            }
            eprintln!("note: quantising to {} with llama.cpp ...", quant.name());
            let partial = out.with_extension("gguf.partial");
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            assay_llama::quantize::quantize(&source, &partial, quant, threads)?;
            std::fs::rename(&partial, &out)
                .with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
            eprintln!(
                "note: checkpoint {} quantised ({}): {}",
                dir.display(),
                quant.name(),
                out.display()
            );
            Ok(out)
        }
    }
}

/// The checkpoint in `dir` converted to `out_type`, from the cache when it is there.
fn converted(dir: &Path, out_type: OutType) -> anyhow::Result<PathBuf> {
    let cache = assay_dirs::cache_dir().join("checkpoints");
    let key = assay_convert::conversion_key(dir, out_type, Some(&cache.join("hashes")))
        .with_context(|| format!("reading the checkpoint {}", dir.display()))?;
    let out = cache.join(format!("{key}.gguf"));
    if out.is_file() {
        eprintln!(
            "note: {} ({}) converted before: {}",
            dir.display(),
            out_type.name(),
            out.display()
        );
        return Ok(out);
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {bytes}/{total_bytes}  {bytes_per_sec}  {elapsed} < {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("to GGUF {}", out_type.name()));
    let done = assay_convert::convert(dir, &out, out_type, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let done = done.with_context(|| format!("converting the checkpoint {}", dir.display()))?;
    eprintln!(
        "note: checkpoint {} converted to GGUF ({}, {}, {} tensors, {} tokens): {}",
        dir.display(),
        done.architecture,
        out_type.name(),
        done.tensors,
        done.n_tokens,
        out.display()
    );
    Ok(out)
}

/// `--dtype`: a precision, or `auto` (`None`: the checkpoint's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dtype(pub Option<Precision>);

/// Parses `--dtype`.
pub fn parse_dtype(text: &str) -> Result<Dtype, String> {
    if text == "auto" {
        return Ok(Dtype(None));
    }
    OutType::parse(text)
        .map(Precision::Native)
        .or_else(|| Quant::parse(text).map(Precision::Quantized))
        .map(|p| Dtype(Some(p)))
        .ok_or_else(|| {
            format!(
                "`{text}`: expected auto, float32, float16, bfloat16, q8_0, q4_k_m, q5_k_m or q6_k"
            )
        })
}
