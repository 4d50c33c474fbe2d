//! Hugging Face checkpoint folders given as `--model DIR`: converted once to GGUF at the asked
//! precision and kept in the cache under the content hash of the folder's files
//! (`~/.cache/assay/checkpoints/<key>.gguf`), so the next run with the same weights, tokenizer
//! and precision loads the cached file at once.

use std::path::{Path, PathBuf};

use anyhow::Context;
use assay_convert::OutType;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The GGUF file for the checkpoint in `dir` at `dtype` (the checkpoint's own `torch_dtype`
/// when `None`), converted now unless the cache has it.
pub fn checkpoint_gguf(dir: &Path, dtype: Option<OutType>) -> anyhow::Result<PathBuf> {
    let out_type = match dtype {
        Some(t) => t,
        None => assay_convert::checkpoint_out_type(dir)?,
    };
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
pub struct Dtype(pub Option<OutType>);

/// Parses `--dtype`.
pub fn parse_dtype(text: &str) -> Result<Dtype, String> {
    if text == "auto" {
        return Ok(Dtype(None));
    }
    OutType::parse(text)
        .map(|t| Dtype(Some(t)))
        .ok_or_else(|| format!("`{text}`: expected auto, float32, float16, bfloat16 or q8_0"))
}
