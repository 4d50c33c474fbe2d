//! The Hub client against a hostile Hub (`assay_hub_standin::hostile`): no answer makes it write
//! outside the cache, send the token to another host, read without bound or wait without end.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_hub::{Hub, HubConfig, HubError, RepoKind, Snapshot};
use assay_hub_standin::hostile::{file_headers, listing, HostileHub, Reply};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const TOKEN: &str = "hf_secret_token";
/// `git hash-object` of "hello\n".
const HELLO_SHA1: &str = "ce013625030ba8dba906f756967f9e9ca394464a";

fn hub(endpoint: &str, cache: &Path) -> Hub {
    Hub::new(
        HubConfig {
            endpoint: endpoint.into(),
            cache_dir: cache.into(),
            token: Some(TOKEN.into()),
            offline: false,
            timeout: Duration::from_secs(1),
        },
        false,
    )
    .unwrap()
}

fn snapshot(files: &[&str]) -> Snapshot {
    Snapshot {
        kind: RepoKind::Dataset,
        repo: "org/data".into(),
        revision: "main".into(),
        commit: COMMIT.into(),
        files: files.iter().map(|f| f.to_string()).collect(),
    }
}

/// Every file under `dir`, as paths relative to it.
fn written(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

fn refused(result: Result<impl std::fmt::Debug, HubError>, expect: &str) -> String {
    let err = result.expect_err("a hostile answer was accepted");
    let text = err.to_string();
    assert!(text.contains(expect), "{text}");
    text
}

#[test]
fn names_from_the_server_never_become_paths_outside_the_cache() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("hub");
    let escape_listing =
        HostileHub::start(Box::new(|_| listing(COMMIT, &["../../escape.txt"]))).unwrap();
    let text = refused(
        hub(escape_listing.url(), &cache).snapshot("org/data", "main"),
        "not a safe path",
    );
    assert!(text.contains("is HF_ENDPOINT"), "{text}");

    let bad_sha =
        HostileHub::start(Box::new(|_| listing("../../../../escape", &["a.json"]))).unwrap();
    refused(
        hub(bad_sha.url(), &cache).snapshot("org/data", "main"),
        "not a commit hash",
    );

    let bad_etag = HostileHub::start(Box::new(|_| {
        Reply::Full(
            200,
            file_headers(COMMIT, "../../../../escape", 6),
            b"hello\n".to_vec(),
        )
    }))
    .unwrap();
    refused(
        hub(bad_etag.url(), &cache).file(&snapshot(&["a.json"]), "a.json"),
        "ETag",
    );

    let other_commit = HostileHub::start(Box::new(|_| {
        let mut headers = file_headers(HELLO_SHA1, HELLO_SHA1, 6);
        headers[0].1 = "../../../../escape".into();
        Reply::Full(200, headers, b"hello\n".to_vec())
    }))
    .unwrap();
    refused(
        hub(other_commit.url(), &cache).file(&snapshot(&["a.json"]), "a.json"),
        "X-Repo-Commit",
    );

    // Names from a task file or the caller are checked the same way.
    let honest = HostileHub::start(Box::new(|_| listing(COMMIT, &["a.json"]))).unwrap();
    refused(
        hub(honest.url(), &cache).snapshot("../../etc", "main"),
        "not a Hub repository id",
    );
    refused(
        hub(honest.url(), &cache).snapshot("org/data", "../../../x"),
        "not a safe path",
    );
    refused(
        hub(honest.url(), &cache).file(&snapshot(&[]), "../x"),
        "not a safe path",
    );
    assert!(honest.seen().is_empty(), "{:?}", honest.seen());

    let outside: Vec<String> = written(root.path())
        .into_iter()
        .filter(|p| !p.starts_with("hub/"))
        .collect();
    assert!(outside.is_empty(), "written outside the cache: {outside:?}");
    assert!(
        !written(&cache).iter().any(|p| p.contains("escape")),
        "{:?}",
        written(&cache)
    );
}

#[test]
fn the_token_never_follows_a_redirect_to_another_host() {
    let cache = tempfile::tempdir().unwrap();
    let cdn = HostileHub::start(Box::new(|_| {
        Reply::Full(
            200,
            file_headers(COMMIT, HELLO_SHA1, 6),
            b"hello\n".to_vec(),
        )
    }))
    .unwrap();
    let elsewhere = format!("{}/blob", cdn.url());
    let hub_server = HostileHub::start(Box::new(move |_| {
        let mut headers = file_headers(COMMIT, HELLO_SHA1, 6);
        headers.push(("location".into(), elsewhere.clone()));
        Reply::Full(302, headers, Vec::new())
    }))
    .unwrap();
    let local = hub(hub_server.url(), cache.path())
        .file(&snapshot(&["data/a.json"]), "data/a.json")
        .unwrap();
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "hello\n");
    let bearer = format!("Bearer {TOKEN}");
    assert!(hub_server
        .seen()
        .iter()
        .all(|s| s.authorization.as_deref() == Some(&*bearer)));
    let at_cdn = cdn.seen();
    assert!(!at_cdn.is_empty());
    assert!(
        at_cdn.iter().all(|s| s.authorization.is_none()),
        "{at_cdn:?}"
    );
}

#[test]
fn a_body_longer_than_announced_is_cut_and_refused() {
    let cache = tempfile::tempdir().unwrap();
    let server = HostileHub::start(Box::new(|_| {
        Reply::Endless(file_headers(COMMIT, HELLO_SHA1, 6))
    }))
    .unwrap();
    refused(
        hub(server.url(), cache.path()).file(&snapshot(&["a.json"]), "a.json"),
        "more than the 6 bytes it announced",
    );
    let sizes: u64 = written(cache.path())
        .iter()
        .map(|p| std::fs::metadata(cache.path().join(p)).unwrap().len())
        .sum();
    assert_eq!(sizes, 0, "{:?}", written(cache.path()));
}

#[test]
fn a_stalled_body_times_out_and_the_runs_stop_ends_it() {
    let cache = tempfile::tempdir().unwrap();
    let server = HostileHub::start(Box::new(|_| {
        Reply::Stall(file_headers(COMMIT, HELLO_SHA1, 6), b"hel".to_vec())
    }))
    .unwrap();
    let start = Instant::now();
    let err = hub(server.url(), cache.path())
        .file(&snapshot(&["a.json"]), "a.json")
        .unwrap_err();
    assert!(err.to_string().contains("failed 6 times"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );

    let flag = Arc::new(AtomicBool::new(false));
    let stoppable = hub(server.url(), cache.path()).stop_on(flag.clone());
    let raise = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let err = stoppable
        .file(&snapshot(&["a.json"]), "a.json")
        .unwrap_err();
    raise.join().unwrap();
    assert!(matches!(err, HubError::Stopped { .. }), "{err}");
}
