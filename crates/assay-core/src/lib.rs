//! Core types shared by every assay crate: the request primitives that tasks send to backends,
//! the per-document metrics, and their aggregation with standard errors.

pub mod metrics;
pub mod request;
pub mod stats;

pub use metrics::{Aggregation, MetricError, MetricKind};
pub use request::{
    Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, Primitive,
    RollingLoglikelihood, Sampling, StopReason,
};
