//! assay's request cache: a SQLite file mapping each request's content hash to its answer
//! (DESIGN.md section 1), and [`CachedBackend`], which puts it in front of any backend.
//!
//! The key of a request hashes everything its answer depends on: the backend's identity and
//! model fingerprint (its *scope*), the primitive and the request's arguments. Answers are
//! written as they arrive, so a process killed at any point (`kill -9` included) keeps every
//! answer it had received; the next run with the same command reads them back instead of asking
//! again.

mod cached;
mod store;

pub use cached::{CacheCounts, CachedBackend};
pub use store::{request_key, CacheStats, Entry, PruneRule, RequestCache, StoreError};
