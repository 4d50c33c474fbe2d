//! Why the embedded engine could not load a model or answer.

use std::path::PathBuf;

use assay_backend::BackendError;
use assay_gguf::GgufError;

/// Why llama.cpp could not load a model, apply an adapter or answer a request.
#[derive(Debug, thiserror::Error)]
pub enum LlamaError {
    /// The model file is missing, not GGUF, or unreadable.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// llama.cpp refused to load the model.
    #[error("llama.cpp could not load {path}: the file may be truncated, corrupted or of an unsupported architecture (rerun with RUST_LOG=debug for llama.cpp's own messages)")]
    LoadFailed {
        /// The file.
        path: PathBuf,
    },
    /// llama.cpp refused a LoRA adapter.
    #[error("llama.cpp could not apply the LoRA adapter {path}: {reason} (an adapter must be a GGUF LoRA for this model's architecture and tensor shapes)")]
    Adapter {
        /// The adapter file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A LoRA merge met a tensor whose shape it cannot merge (no dimension, more than two,
    /// a zero dimension, or A and B that do not fit the weight).
    #[error("cannot merge the LoRA adapter {path}: tensor {tensor} has {reason}")]
    LoraShape {
        /// The adapter file.
        path: PathBuf,
        /// The tensor (the model's weight, or the adapter's lora_a or lora_b).
        tensor: String,
        /// Its dimensions (fastest first, ggml's `ne`) and what does not fit.
        reason: String,
    },
    /// A setting refused before anything is allocated: llama.cpp would abort or exhaust memory.
    #[error("{0}")]
    Settings(String),
    /// llama.cpp could not create an inference context with the requested settings.
    #[error(
        "llama.cpp could not create a context (ctx-size {ctx_size}, threads {threads}): {reason}"
    )]
    Context {
        /// Requested context size.
        ctx_size: u32,
        /// Requested threads.
        threads: usize,
        /// llama.cpp's reason.
        reason: String,
    },
    /// llama.cpp's quantiser refused a file.
    #[error("cannot quantise {path}: {reason}")]
    Quantize {
        /// The input GGUF.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// A request cannot be scored as given.
    #[error("request cannot be scored: {0}")]
    BadRequest(String),
    /// The forward pass failed.
    #[error("llama.cpp decode failed: {0}")]
    Decode(String),
}

impl From<LlamaError> for BackendError {
    fn from(e: LlamaError) -> BackendError {
        match e {
            LlamaError::BadRequest(message) => BackendError::BadRequest(message),
            other => BackendError::Engine(Box::new(other)),
        }
    }
}
