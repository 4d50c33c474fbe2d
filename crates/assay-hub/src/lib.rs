//! Hugging Face Hub datasets for assay: a task's `dataset_path: org/name` resolved and read as
//! the `datasets` library does, through the Hub's HTTP API and the cache `huggingface_hub`
//! shares with it.
//!
//! - [`HubConfig`]: the environment (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN`,
//!   `HF_HUB_OFFLINE`) read as `huggingface_hub` reads it.
//! - [`Hub`]: repository snapshots and verified downloads in the shared cache layout.
//! - [`resolve`] / [`read_split`]: card configs, split inference, the parquet export.
//! - [`TaskData`]: the [`assay_tasks::DataSource`] that sends each task to the data folder or
//!   the Hub.

mod card;
mod client;
mod config;
mod dataset;
mod error;
mod source;

pub use card::{parse_card, CardConfig};
pub use client::{Hub, Snapshot};
pub use config::{HubConfig, DEFAULT_ENDPOINT};
pub use dataset::{read_split, resolve, DatasetQuery, ResolvedDataset, PARQUET_EXPORT};
pub use error::HubError;
pub use source::{DatasetOrigin, TaskData};
