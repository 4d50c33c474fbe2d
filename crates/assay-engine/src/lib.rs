//! Inference backends. Tasks talk to a [`Backend`] through the request primitives of
//! `assay-core`; the backend owns tokenisation, scheduling and the model.
//!
//! The embedded backend, [`LlamaEngine`], runs GGUF models with llama.cpp; [`OpenAiBackend`]
//! sends the same primitives to a served model over HTTP; [`CachedBackend`] puts the request
//! cache in front of either. The embedded engine's scheduling rule:
//! the requests of one document are scored together in one decode (their shared context computed
//! once), and a document's layout depends on that document alone, so its scores do not depend on
//! `--limit`, document order or what was scored before (a task's shared prefix, announced by
//! the evaluator, is computed once and reused). Generation runs one document at a time by default;
//! with `parallel > 1` it batches sequences of many documents (see `generator`).

mod backend;
mod cached;
mod generator;
pub mod gguf;
mod llama;
pub mod lora;
pub mod openai;
pub mod plan;
pub mod sampler;
mod tokenizer;

pub use backend::{
    AdapterInfo, Backend, BackendInfo, EngineError, GenerationSink, LoglikelihoodSink, RollingSink,
    SpecialTokens,
};
pub use cached::{CacheCounts, CachedBackend};
pub use llama::{EngineSettings, LlamaEngine, LoraSettings, TokenScore, DEFAULT_PARALLEL};
pub use openai::{OpenAiBackend, OpenAiSettings, RequestStats};
pub use tokenizer::Tokenizer;

use std::path::PathBuf;

/// File name of the default model (Gemma 3 270M, Q4_K_M), installed by `scripts/setup.sh`.
pub const DEFAULT_MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// assay's cache directory: `$ASSAY_CACHE_DIR`, else `$XDG_CACHE_HOME/assay`, else
/// `~/.cache/assay`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ASSAY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("assay")
}

/// The default request cache file.
pub fn default_cache_path() -> PathBuf {
    cache_dir().join("requests.sqlite")
}

/// Where the default model lives once `scripts/setup.sh` has fetched it.
pub fn default_model_path() -> PathBuf {
    cache_dir().join("models").join(DEFAULT_MODEL_FILE)
}
