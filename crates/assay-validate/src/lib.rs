//! Fine-tune validation, one module per subsystem around the unified prompt/response item
//! (`{prompt, response, metadata{difficulty, domain, source, ...}}`, `unified`):
//!
//! - `convert`: benchmark files converted to unified items, with seeded stratified sampling;
//! - [`decontam`]: n-gram contamination checks between training data and test sets;
//! - [`ppl`]: the perplexity of reference responses (and the merge check between two runs);
//! - [`grading`]: sampled completions, graded by rules or a judge, saved as a HF dataset;
//! - [`prompts`]: prompt sets across models and formats, reasoning split, refusal detection;
//! - [`index`]: the inventory of a folder of evaluation artifacts.

mod convert;
pub mod decontam;
pub mod grading;
pub mod index;
pub mod ppl;
pub mod prompts;
pub(crate) mod unified;

pub use convert::sample::stratified_sample;
pub use convert::{benchmarks, select, Benchmark, Conversion, Skipped};
pub use unified::{Item, ValidateError};
