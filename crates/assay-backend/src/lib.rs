//! The contract between assay's evaluator and an inference backend. Tasks talk to a
//! [`Backend`] through the request primitives of `assay-core`; the backend owns tokenisation,
//! scheduling and the model. The implementations are siblings of this crate: `assay-llama`
//! (the embedded llama.cpp engine, the only crate that builds llama.cpp), `assay-openai` (a
//! served model over HTTP) and `assay-request-cache`'s `CachedBackend` in front of either.
//!
//! What any backend may share lives here too: the planner that lays a document's requests out
//! in decode calls ([`plan`]), the tokenizer seam with lm-eval's pair split
//! ([`TextTokenizer`]), the counters a networked backend shows on the progress bar
//! ([`RequestStats`]), and a [`fake::FakeBackend`] for tests.

mod backend;
mod error;
pub mod fake;
pub mod plan;
mod stats;
mod tokenize;

pub use backend::{
    AdapterInfo, Backend, BackendInfo, GenerationSink, LoglikelihoodSink, RollingSink,
    SpecialTokens,
};
pub use error::{check_answer, check_rolling, BackendError};
pub use plan::{Token, TokenizedRequest};
pub use stats::{RequestStats, RetryReason, StatsSnapshot};
pub use tokenize::TextTokenizer;
