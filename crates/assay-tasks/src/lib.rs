//! Tasks: lm-eval-style YAML specs, their Jinja templates, few-shot contexts, and the built-in
//! task files (embedded from the repository's `tasks/` folder at build time).
//!
//! A [`Registry`] knows every task, tag and group; [`Registry::resolve`] turns the names a user
//! typed into tasks, and [`PreparedTask`] turns a task's documents into request primitives and
//! scores the answers.

pub mod answers;
mod chat;
mod dataset;
mod error;
pub mod filters;
mod hooks;
mod lenient;
pub mod metrics;
mod prepared;
mod registry;
mod seeds;
pub mod similarity;
mod source;
mod spec;
mod template;
mod text;

/// Instructions one template render may run (task fields and chat templates): a loop without
/// end (`{% for i in range(10**6) %}{% for j in range(10**6) %}`) fails with an error naming the
/// template instead of running forever. A document's prompt takes a few thousand.
pub const TEMPLATE_FUEL: u64 = 20_000_000;

pub use chat::{builtin_template, template_for_architecture, ChatFormat, Message};
pub use dataset::{hub_dataset_id, DataDir};
pub use error::TaskError;
pub use hooks::{
    hook_draws_before, python, seed_hooks, stop_hooks, use_cache as cache_hook_outputs,
};
pub use metrics::{Metric, MetricAggregation, MetricError, MetricKind, Scored};
pub use prepared::{Answers, DocInstance, DocKind, PreparedTask, FEWSHOT_SEED, GENERATION_SEED};
pub use registry::{GroupNode, Registry, Selection, TaskSource};
pub use seeds::Seeds;
pub use source::DataSource;
pub use spec::{DataFiles, DatasetKwargs, GroupSpec, OutputType, TaskSpec};
pub use text::{hash as hash_text, text_of};
