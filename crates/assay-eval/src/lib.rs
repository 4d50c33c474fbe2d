//! The evaluation loop: every document of every task becomes requests, the backend answers,
//! the task scores the answers; per-sample lines are written as documents finish, and the
//! aggregates (with standard errors, and groups) become an lm-eval-style results document.

mod aggregate;
mod evaluate;
mod prepare;
mod results;
mod samples;
mod sanity;

pub use aggregate::{GroupResult, MetricResult};
pub use evaluate::{
    evaluate, EvalError, EvalOptions, Limit, Outcome, Progress, TaskOutcome, Timing,
};
pub use prepare::prepare_tasks;
pub use results::{results_json, sanitize_model_name, ChatInfo, RunInfo};
pub use samples::SampleLog;
