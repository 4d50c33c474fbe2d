//! Fine-tune validation: benchmark files converted to one unified prompt/response set
//! (`{prompt, response, metadata{difficulty, domain, source, ...}}`) with seeded stratified
//! sampling, n-gram contamination checks between training data and test sets, and the
//! perplexity of reference responses (with the comparison of two runs: the merge check).

pub mod completions;
mod convert;
pub mod decontam;
pub mod formats;
pub mod grade;
pub mod hf;
pub mod index;
pub mod ppl;
pub mod promptset;
pub mod reasoning;
pub mod refusal;
pub mod rules;
mod sample;
pub(crate) mod unified;

pub use convert::{benchmarks, select, Benchmark, Conversion, Skipped};
pub use sample::stratified_sample;
pub use unified::{Item, ValidateError};
