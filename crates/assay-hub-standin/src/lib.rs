//! A local stand-in for the Hugging Face Hub, for tests and benchmarks: no machine here reaches
//! the real one. It serves dataset repositories with the endpoints `huggingface_hub`,
//! `datasets` and assay call (repository info by revision, tree listing, paths-info, resolve with
//! HEAD and byte ranges and the Hub's ETag/commit headers, the parquet listing, gated
//! repositories with the Hub's error codes), over repositories [`build_repos`] writes in the real
//! layouts from a benchmark data folder.
//!
//! HTTP comes from axum; one fault can be injected (the first download of each LFS file cut
//! after half its bytes) to test resumed downloads. [`HostileHub`] is the other kind: a server
//! whose answers attack the client.

pub mod hostile;
mod repos;
mod server;

pub use hostile::HostileHub;

pub use repos::{build_repos, write_parquet, BuildError, GATED_REPO, GATED_TOKEN, GPQA_REPO};
pub use server::{HubStandIn, Options};
