//! Sampled, graded datasets (`assay sample`, `assay grade`): completions streamed per prompt,
//! deduplicated and graded against the reference by rules or a judge model, and the equivalent
//! ones written as a Hugging Face dataset.

pub mod completions;
pub mod grade;
pub mod hf;
pub mod rules;
