//! The names a hostile Hub or task file sends (repository ids, file paths, revisions, commits,
//! ETags): whatever the validators accept stays inside the folder it is joined to, and a blob
//! name is a lower-case SHA-1 or SHA-256.
#![no_main]

use std::path::{Component, Path};

use assay_hub::names::{blob_name, check_repo_id, check_repo_path, is_commit};
use libfuzzer_sys::fuzz_target;

/// Whether `name` joined to a folder names something inside it.
fn stays_inside(name: &str) -> bool {
    let base = Path::new("/cache/datasets--org--name/snapshots");
    let joined = base.join(name);
    joined.starts_with(base)
        && joined.components().skip(base.components().count()).all(|c| matches!(c, Component::Normal(_)))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if check_repo_path(text).is_ok() {
        assert!(stays_inside(text), "{text:?}");
    }
    if check_repo_id(text).is_ok() {
        let folder = text.replace('/', "--");
        assert!(stays_inside(&folder) && !folder.contains('/'), "{text:?}");
    }
    if is_commit(text) {
        assert!(stays_inside(text));
    }
    if let Ok(blob) = blob_name(text) {
        assert!(matches!(blob.len(), 40 | 64), "{text:?}");
        assert!(blob.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }
});
