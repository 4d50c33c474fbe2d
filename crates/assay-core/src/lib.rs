//! Core types shared by every assay crate: the request primitives that tasks send to backends,
//! per-document metric values, and their aggregation with standard errors.

pub mod aggregation;
pub mod files;
/// A bit-exact port of CPython's `random.Random`, so few-shot sampling matches lm-eval.
pub mod pyrandom;
pub mod request;
pub mod stats;

pub use aggregation::{Aggregation, DocValue};
pub use request::{
    Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, Primitive,
    RollingLoglikelihood, Sampling, StopReason,
};
