//! Prompt sets run across models and formats (`assay generate`): the prompt file and response
//! records, the prompt formats, the reasoning split and refusal detection.

pub mod formats;
pub mod promptset;
pub mod reasoning;
pub mod refusal;
