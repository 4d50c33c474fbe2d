//! The default context window: the model's trained context, capped by the memory at hand.

use llama_cpp_2::model::LlamaModel;

use super::{EngineSettings, MAX_SAMPLE_SLOTS};

/// The default window: the model's trained context, capped so that the KV caches the engine
/// may hold at once fit in half the memory available now (or half of what `--max-memory`
/// leaves beside the model): the scoring context's two windows, and a generation context of
/// up to [`MAX_SAMPLE_SLOTS`] (or `--parallel`) streams plus its prompt cache. Counted at 16-bit
/// keys and values in every layer, which over-counts models with sliding-window layers.
pub fn default_ctx_size(model: &LlamaModel, settings: &EngineSettings, model_bytes: u64) -> u32 {
    let mut budget = available_memory().unwrap_or(4 << 30);
    if let Some(limit) = settings.max_memory {
        budget = budget.min(limit.saturating_sub(model_bytes));
    }
    window_for(
        model.n_ctx_train(),
        budget / 2,
        kv_bytes_per_token(model, settings),
    )
}

/// The largest `--ctx-size` accepted: 16M tokens (llama.cpp's context counts fit in 32 bits
/// twice over, and no model is trained longer).
pub const MAX_CTX_SIZE: u32 = 1 << 24;

/// Refuses an explicit `--ctx-size` whose KV caches (counted as for the default) exceed the
/// memory available now: llama.cpp would allocate until the kernel kills the process.
pub fn check_ctx_size(
    model: &LlamaModel,
    settings: &EngineSettings,
    ctx_size: u32,
) -> Result<(), String> {
    if ctx_size > MAX_CTX_SIZE {
        return Err(format!(
            "--ctx-size {ctx_size}: at most {MAX_CTX_SIZE} tokens"
        ));
    }
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let per_token = kv_bytes_per_token(model, settings);
    let needed = per_token.saturating_mul(u64::from(ctx_size));
    if needed <= available {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    Err(format!(
        "--ctx-size {ctx_size}: the KV caches of its windows need about {:.1} GiB and {:.1} GiB of memory are available; lower --ctx-size (about {} fits) or leave it out for the largest that fits",
        gib(needed),
        gib(available),
        window_for(u32::MAX, available, per_token)
    ))
}

/// Bytes of KV cache per token of the window, over every window the engine may hold at once:
/// the scoring context's two and a generation context of up to [`MAX_SAMPLE_SLOTS`] (or
/// `--parallel`) streams plus its prompt cache, at 16-bit keys and values in every layer.
fn kv_bytes_per_token(model: &LlamaModel, settings: &EngineSettings) -> u64 {
    let meta = |key: &str| {
        let arch = model.meta_val_str("general.architecture").ok()?;
        model
            .meta_val_str(&format!("{arch}.{key}"))
            .ok()?
            .parse::<u64>()
            .ok()
    };
    let head_dim = (model.n_embd().max(1) as u64) / u64::from(model.n_head().max(1));
    let per_token = u64::from(model.n_layer())
        * u64::from(model.n_head_kv().max(1))
        * (meta("attention.key_length").unwrap_or(head_dim)
            + meta("attention.value_length").unwrap_or(head_dim))
        * 2;
    let streams = 2 + settings.parallel.max(MAX_SAMPLE_SLOTS) as u64 + 1;
    streams * per_token.max(1)
}

/// The largest window (a multiple of 256, at least 256) up to `trained` whose KV caches,
/// `bytes_per_window_token` for each token of the window, fit in `budget` bytes.
fn window_for(trained: u32, budget: u64, bytes_per_window_token: u64) -> u32 {
    let fits = (budget / bytes_per_window_token).min(u64::from(u32::MAX)) as u32;
    let trained = if trained == 0 { 2048 } else { trained };
    (trained.min(fits) / 256 * 256).max(256)
}

/// Memory the system can give without swapping (`MemAvailable` of /proc/meminfo), in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_window_is_the_trained_context_unless_memory_is_short() {
        // Gemma 3 270M counted at 18 layers x 512 key+value values x 2 bytes, 11 windows.
        let per_token = 11 * 18 * 512 * 2;
        assert_eq!(window_for(32_768, 11 << 30, per_token), 32_768);
        assert_eq!(window_for(32_768, 1 << 30, per_token), 5_120);
        assert_eq!(
            window_for(32_768, 1, per_token),
            256,
            "never below one block"
        );
        assert_eq!(
            window_for(0, 11 << 30, per_token),
            2048,
            "unknown: lm-eval's 2048"
        );
        assert_eq!(window_for(1000, 11 << 30, per_token), 768, "whole blocks");
    }

    #[test]
    fn available_memory_reads_proc_meminfo() {
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(available_memory().unwrap() > 0);
        }
    }
}
