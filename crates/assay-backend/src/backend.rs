//! The contract between the evaluator and an inference backend.

use std::path::PathBuf;

use assay_core::{
    Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, Primitive,
    RollingLoglikelihood,
};
use serde::Serialize;

use crate::{BackendError, RequestStats};

/// A LoRA adapter applied at run time.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterInfo {
    /// The adapter file.
    pub path: String,
    /// Its SHA-256.
    pub sha256: String,
    /// The scale it is applied with.
    pub scale: f32,
}

/// What a backend is: written into the results for provenance and used in cache keys.
#[derive(Debug, Clone, Serialize)]
pub struct BackendInfo {
    /// Backend name, e.g. `llama.cpp` or `openai-completions`.
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
    /// Most documents whose log-likelihoods share one decode call (1: each document alone;
    /// `usize::MAX`: as many as fit).
    pub batch_size: usize,
    /// Layers offloaded to a GPU.
    pub gpu_layers: u32,
    /// `cpu` or `cuda`.
    pub device: String,
    /// Whether a BOS token is prepended to every context.
    pub add_bos: bool,
    /// Special tokens as (text, id), for lm-eval's `tokenizer_*_token` fields.
    pub special_tokens: SpecialTokens,
    /// The server's base URLs, for a backend that sends requests over the network.
    pub endpoint: Option<String>,
    /// The LoRA adapter applied at run time, if any.
    pub adapter: Option<AdapterInfo>,
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

/// Receives the answers of a batch's log-likelihood requests as they become known:
/// (document index in the batch, [(request index in the document, answer)]).
pub type LoglikelihoodSink<'a> = dyn FnMut(usize, &[(usize, Loglikelihood)]) + 'a;
/// Receives each rolling log-likelihood of a batch as it becomes known: (text index, answer).
pub type RollingSink<'a> = dyn FnMut(usize, &RollingLoglikelihood) + 'a;
/// Receives each document's samples of a generation batch as they become known.
pub type GenerationSink<'a> = dyn FnMut(usize, &[Generation]) + 'a;

/// An inference backend. Each primitive takes a batch of documents and reports answers to a
/// sink as soon as it has them (the request cache stores them there, so a killed run loses
/// nothing it had received), then returns them all in order.
pub trait Backend {
    /// What this backend is and which model it runs.
    fn info(&self) -> &BackendInfo;

    /// What this backend's answers to `primitive` depend on besides the request itself: its
    /// identity, the model's fingerprint and the settings that change answers. Part of every
    /// request's cache key.
    fn answer_scope(&self, primitive: Primitive) -> serde_json::Value;

    /// Scores the log-likelihood requests of several documents (for a multiple-choice document,
    /// one request per choice). Answers come back per document in request order.
    fn loglikelihood_many(
        &mut self,
        docs: &[Vec<LoglikelihoodRequest>],
        done: &mut LoglikelihoodSink<'_>,
    ) -> Result<Vec<Vec<Loglikelihood>>, BackendError>;

    /// Scores every token of each text, in windows when it exceeds the context.
    fn loglikelihood_rolling_many(
        &mut self,
        texts: &[String],
        done: &mut RollingSink<'_>,
    ) -> Result<Vec<RollingLoglikelihood>, BackendError>;

    /// Generates `request.n` samples after each document's prompt. Sample `i` depends only on
    /// the prompt, the settings and (seed, i).
    fn generate_until_many(
        &mut self,
        requests: &[GenerationRequest],
        done: &mut GenerationSink<'_>,
    ) -> Result<Vec<Vec<Generation>>, BackendError>;

    /// Scores the log-likelihood requests of one document.
    fn loglikelihood(
        &mut self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, BackendError> {
        let mut out = self.loglikelihood_many(&[requests.to_vec()], &mut |_, _| {})?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Scores every token of `text`.
    fn loglikelihood_rolling(&mut self, text: &str) -> Result<RollingLoglikelihood, BackendError> {
        let mut out = self.loglikelihood_rolling_many(&[text.to_string()], &mut |_, _| {})?;
        out.pop()
            .ok_or_else(|| BackendError::BadRequest("no answer for a rolling request".into()))
    }

    /// Generates the samples of one document.
    fn generate_until(
        &mut self,
        request: &GenerationRequest,
    ) -> Result<Vec<Generation>, BackendError> {
        let mut out = self.generate_until_many(std::slice::from_ref(request), &mut |_, _| {})?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Announces the text that starts the prompts of the documents that follow (a task's
    /// description and fixed few-shot examples), or `None`. A backend may compute it once and
    /// reuse it; a document's results may then depend on this text as well as on the document.
    fn set_shared_prefix(&mut self, _prefix: Option<&str>) -> Result<(), BackendError> {
        Ok(())
    }

    /// How many documents to pass to one batch call (`generation`: for generate_until).
    fn batch_documents(&self, _generation: bool) -> usize {
        1
    }

    /// Live counters of a backend that sends requests over the network, for the progress bar.
    fn request_stats(&self) -> Option<std::sync::Arc<RequestStats>> {
        None
    }

    /// The model's own chat template (Jinja source), if it has one.
    fn chat_template(&self) -> Option<String>;

    /// Tokens run through the model so far (for throughput reporting).
    fn tokens_processed(&self) -> u64;
}
