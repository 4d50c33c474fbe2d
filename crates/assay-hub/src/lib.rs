//! The Hugging Face Hub for assay: a task's `dataset_path: org/name` resolved and read as the
//! `datasets` library does, and a model id (`--model org/name[:QUANT]`) fetched as
//! `huggingface_hub` fetches it, through the Hub's HTTP API and the cache `huggingface_hub`
//! shares with both.
//!
//! - [`HubConfig`]: the environment (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN`,
//!   `HF_HUB_OFFLINE`) read as `huggingface_hub` reads it.
//! - [`Hub`]: repository snapshots and verified downloads in the shared cache layout.
//! - [`resolve`] / [`read_split`]: card configs, split inference, the parquet export.
//! - [`fetch_model`]: a GGUF file of a GGUF repository (the quantisation picked as llama.cpp's
//!   `-hf` picks it) or a checkpoint's files.
//! - [`names`]: the checks every name from a task file or a server passes before it becomes a
//!   path in the cache.
//! - [`TaskData`]: the [`assay_tasks::DataSource`] that sends each task to the data folder or
//!   the Hub.

mod card;
mod client;
mod config;
mod dataset;
mod download;
mod error;
mod model;
pub mod names;
mod source;

pub use card::{parse_card, CardConfig};
pub use client::{Hub, RepoKind, Snapshot};
pub use config::{HubConfig, DEFAULT_ENDPOINT};
pub use dataset::{read_split, resolve, DatasetQuery, ResolvedDataset, PARQUET_EXPORT};
pub use error::HubError;
pub use model::{fetch_model, ModelFiles, ModelRef};
pub use source::{DatasetOrigin, TaskData};
