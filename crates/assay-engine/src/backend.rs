//! The contract between the evaluator and an inference backend.

use std::path::PathBuf;

use assay_core::{
    Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, RollingLoglikelihood,
};
use serde::Serialize;

/// Why a backend could not load a model or answer a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file does not exist.
    #[error("model file not found: {0}")]
    ModelMissing(PathBuf),
    /// The path exists but is not a GGUF file.
    #[error("{path} is not a GGUF model: {reason}")]
    NotGguf {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// llama.cpp refused to load the model.
    #[error("llama.cpp could not load {path}: the file may be truncated, corrupted or of an unsupported architecture (rerun with RUST_LOG=debug for llama.cpp's own messages)")]
    LoadFailed {
        /// The file.
        path: PathBuf,
    },
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
    /// A request cannot be scored as given.
    #[error("request cannot be scored: {0}")]
    BadRequest(String),
    /// The forward pass failed.
    #[error("llama.cpp decode failed: {0}")]
    Decode(String),
    /// Reading the model file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// What a backend is: written into the results for provenance and used in cache keys.
#[derive(Debug, Clone, Serialize)]
pub struct BackendInfo {
    /// Backend name, e.g. `llama.cpp`.
    pub backend: String,
    /// Model file path as given.
    pub model_path: PathBuf,
    /// Model name (file stem).
    pub model_name: String,
    /// SHA-256 of the model file.
    pub model_sha256: String,
    /// Model size in bytes.
    pub model_bytes: u64,
    /// Number of parameters.
    pub n_params: u64,
    /// Weight format, e.g. `Q4_K_M`.
    pub quantization: String,
    /// Model architecture, e.g. `gemma3`.
    pub architecture: String,
    /// Context length the model was trained with.
    pub n_ctx_train: u32,
    /// Context window used for scoring.
    pub ctx_size: u32,
    /// CPU threads.
    pub threads: usize,
    /// Sequences generated at once across documents (1: one document at a time).
    pub parallel: usize,
    /// Layers offloaded to a GPU.
    pub gpu_layers: u32,
    /// `cpu` or `cuda`.
    pub device: String,
    /// Whether a BOS token is prepended to every context.
    pub add_bos: bool,
    /// Special tokens as (text, id), for lm-eval's `tokenizer_*_token` fields.
    pub special_tokens: SpecialTokens,
}

/// The tokenizer's special tokens, each as (text, id as a string) like lm-eval writes them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpecialTokens {
    /// Padding token.
    pub pad: Option<(String, String)>,
    /// End of sequence.
    pub eos: Option<(String, String)>,
    /// Beginning of sequence.
    pub bos: Option<(String, String)>,
    /// End-of-text id used to condition empty contexts.
    pub eot_id: Option<i32>,
}

/// An inference backend. Implementations score the requests of one document together.
pub trait Backend {
    /// What this backend is and which model it runs.
    fn info(&self) -> &BackendInfo;

    /// Scores the log-likelihood requests of one document (for a multiple-choice document, one
    /// request per choice). The answers come back in request order.
    fn loglikelihood(
        &mut self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, EngineError>;

    /// Scores every token of `text`, in windows when it exceeds the context.
    fn loglikelihood_rolling(&mut self, text: &str) -> Result<RollingLoglikelihood, EngineError>;

    /// Generates `request.n` samples after one document's prompt. Sample `i` depends only on the
    /// prompt, the settings and (seed, i).
    fn generate_until(
        &mut self,
        request: &GenerationRequest,
    ) -> Result<Vec<Generation>, EngineError>;

    /// Announces the text that starts the prompts of the documents that follow (a task's
    /// description and fixed few-shot examples), or `None`. A backend may compute it once and
    /// reuse it; a document's results may then depend on this text as well as on the document.
    fn set_shared_prefix(&mut self, _prefix: Option<&str>) -> Result<(), EngineError> {
        Ok(())
    }

    /// Generates for several documents at once; answers in request order. Each document's
    /// samples are those [`Backend::generate_until`] gives for it alone.
    fn generate_until_many(
        &mut self,
        requests: &[GenerationRequest],
    ) -> Result<Vec<Vec<Generation>>, EngineError> {
        requests.iter().map(|r| self.generate_until(r)).collect()
    }

    /// How many documents' generation requests to pass to
    /// [`Backend::generate_until_many`] at once.
    fn generation_batch(&self) -> usize {
        1
    }

    /// The model's own chat template (Jinja source), if it has one.
    fn chat_template(&self) -> Option<String>;

    /// Tokens run through the model so far (for throughput reporting).
    fn tokens_processed(&self) -> u64;
}
