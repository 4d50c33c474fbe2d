//! The embedded backend: GGUF models run by llama.cpp (`llama-cpp-2`), the only crate of assay
//! that builds llama.cpp. [`LlamaEngine`] implements `assay-backend`'s `Backend`; its
//! [`Tokenizer`] also serves the OpenAI-compatible backend when it sends token ids; [`lora`]
//! merges a LoRA adapter into a model with ggml's own dequantisation.
//!
//! The scheduling rule: the requests of one document are scored together in one decode (their
//! shared context computed once), and a document's layout depends on that document alone, so
//! its scores do not depend on `--limit`, document order or what was scored before (a task's
//! shared prefix, announced by the evaluator, is computed once and reused). Generation runs one
//! document at a time by default; with `parallel > 1` it batches sequences of many documents
//! (see `generator`).

mod error;
mod generator;
mod llama;
pub mod lora;
pub mod quantize;
mod runtime;
pub mod sampler;
mod tokenizer;

pub use error::LlamaError;
pub use llama::{
    EngineSettings, LlamaEngine, LoraSettings, TokenScore, BATCH_AUTO, DEFAULT_PARALLEL,
};
pub use tokenizer::Tokenizer;
