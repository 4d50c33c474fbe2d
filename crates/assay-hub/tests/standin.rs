//! The Hub client against the stand-in Hub, over repositories built from `../shared/data` in
//! the real layouts: resolution, cache layout, tokens, offline use, errors, resumed downloads.

use assay_data::ReadOptions;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assay_hub::{read_split, resolve, DatasetQuery, Hub, HubConfig, HubError};
use assay_hub_standin::{build_repos, HubStandIn, Options, GATED_REPO, GATED_TOKEN};

struct Fixture {
    _root: tempfile::TempDir,
    root: PathBuf,
    server: HubStandIn,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        let root = tempfile::tempdir().unwrap();
        build_repos(&data, root.path()).unwrap();
        let server = HubStandIn::start(
            root.path(),
            "127.0.0.1:0".parse().unwrap(),
            Options::default(),
        )
        .unwrap();
        Fixture {
            root: root.path().to_path_buf(),
            _root: root,
            server,
        }
    })
}

fn hub(endpoint: &str, cache: &Path, token: Option<&str>, offline: bool) -> Hub {
    Hub::new(
        HubConfig {
            endpoint: endpoint.into(),
            cache_dir: cache.into(),
            token: token.map(str::to_string),
            offline,
            timeout: std::time::Duration::from_secs(10),
        },
        false,
    )
    .unwrap()
}

fn query(repo: &str, config: Option<&str>) -> DatasetQuery {
    DatasetQuery {
        repo: repo.into(),
        config: config.map(str::to_string),
        revision: None,
        data_files: None,
    }
}

#[test]
fn card_configs_resolve_and_land_in_huggingface_hubs_cache_layout() {
    let f = fixture();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&f.server.url(), cache.path(), None, false);
    let gsm = resolve(&hub, &query("openai/gsm8k", Some("main"))).unwrap();
    assert_eq!(gsm.config, "main");
    assert_eq!(gsm.splits.keys().collect::<Vec<_>>(), ["test", "train"]);
    let test = read_split(&hub, &gsm, "test", &ReadOptions::default()).unwrap();
    assert_eq!(test.len(), 1319);
    assert!(test[0]["answer"].as_str().unwrap().contains("#### "));
    assert_eq!(gsm.snapshot.commit.len(), 40);
    assert_eq!(
        gsm.url(),
        format!("hf://datasets/openai/gsm8k@{}", gsm.snapshot.commit)
    );

    // The layout huggingface_hub writes: refs/main, snapshot links into blobs named by ETag.
    let repo_dir = cache.path().join("datasets--openai--gsm8k");
    let main_ref = std::fs::read_to_string(repo_dir.join("refs/main")).unwrap();
    assert_eq!(main_ref.trim(), gsm.snapshot.commit);
    let link = repo_dir
        .join("snapshots")
        .join(&gsm.snapshot.commit)
        .join("main/test-00000-of-00001.parquet");
    let target = std::fs::read_link(&link).unwrap();
    assert!(target.starts_with("../../../blobs"), "{}", target.display());
    let blob = std::fs::canonicalize(&link).unwrap();
    assert_eq!(
        blob.file_name().unwrap().len(),
        64,
        "LFS blobs are named by SHA-256"
    );
    let leftovers: Vec<_> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some())
        .collect();
    assert!(leftovers.is_empty(), "no partial files: {leftovers:?}");

    let arc = resolve(&hub, &query("allenai/ai2_arc", Some("ARC-Easy"))).unwrap();
    let docs = read_split(&hub, &arc, "test", &ReadOptions::default()).unwrap();
    assert_eq!(docs.len(), 2376);
    assert!(docs[0]["choices"]["label"].is_array() && docs[0]["answerKey"].is_string());
    let mmlu = resolve(
        &hub,
        &query("cais/mmlu", Some("high_school_computer_science")),
    )
    .unwrap();
    let dev = read_split(&hub, &mmlu, "dev", &ReadOptions::default()).unwrap();
    assert_eq!(dev.len(), 5);
    assert!(dev[0]["answer"].is_i64());
    let tqa = resolve(
        &hub,
        &query("truthfulqa/truthful_qa", Some("multiple_choice")),
    )
    .unwrap();
    assert_eq!(
        read_split(&hub, &tqa, "validation", &ReadOptions::default())
            .unwrap()
            .len(),
        817
    );
}

#[test]
fn splits_from_file_names_and_the_parquet_export() {
    let f = fixture();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&f.server.url(), cache.path(), None, false);
    let piqa = resolve(&hub, &query("baber/piqa", None)).unwrap();
    assert_eq!(piqa.config, "default");
    assert_eq!(
        read_split(&hub, &piqa, "validation", &ReadOptions::default())
            .unwrap()
            .len(),
        1838
    );
    let script = resolve(&hub, &query("ybisk/piqa", None)).unwrap();
    assert_eq!(script.config, "plain_text");
    assert_eq!(script.snapshot.revision, "refs/convert/parquet");
    assert_eq!(
        read_split(&hub, &script, "validation", &ReadOptions::default())
            .unwrap()
            .len(),
        1838
    );
    let nested_ref = cache
        .path()
        .join("datasets--ybisk--piqa/refs/refs/convert/parquet");
    assert!(nested_ref.is_file(), "{}", nested_ref.display());
}

#[test]
fn errors_name_the_dataset_config_and_split() {
    let f = fixture();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&f.server.url(), cache.path(), None, false);
    let err = resolve(&hub, &query("allenai/ai2_arc", Some("ARC-Medium"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dataset allenai/ai2_arc has no config `ARC-Medium`; its configs: ARC-Challenge, ARC-Easy"
    );
    let err = resolve(&hub, &query("allenai/ai2_arc", None)).unwrap_err();
    assert!(matches!(err, HubError::ConfigNeeded { .. }), "{err}");
    let err = resolve(&hub, &query("nobody/nothing", None)).unwrap_err();
    assert!(matches!(err, HubError::RepoNotFound { .. }), "{err}");
    assert!(err.to_string().contains("HF_TOKEN"), "{err}");
    let arc = resolve(&hub, &query("allenai/ai2_arc", Some("ARC-Easy"))).unwrap();
    let err = read_split(&hub, &arc, "dev", &ReadOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dataset allenai/ai2_arc, config ARC-Easy has no split `dev`; its splits: test, train, validation"
    );
    let mut q = query("openai/gsm8k", Some("main"));
    q.revision = Some("v9".into());
    let err = resolve(&hub, &q).unwrap_err();
    assert!(matches!(err, HubError::RevisionNotFound { .. }), "{err}");
}

#[test]
fn gated_repositories_need_the_token() {
    let f = fixture();
    let cache = tempfile::tempdir().unwrap();
    let anonymous = hub(&f.server.url(), cache.path(), None, false);
    let err = resolve(&anonymous, &query(GATED_REPO, None)).unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Gated {
                has_token: false,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("request access at"), "{err}");
    let wrong = hub(&f.server.url(), cache.path(), Some("hf_wrong"), false);
    let err = resolve(&wrong, &query(GATED_REPO, None)).unwrap_err();
    assert!(
        matches!(
            err,
            HubError::Gated {
                has_token: true,
                ..
            }
        ),
        "{err}"
    );
    let right = hub(&f.server.url(), cache.path(), Some(GATED_TOKEN), false);
    let gated = resolve(&right, &query(GATED_REPO, None)).unwrap();
    assert_eq!(
        read_split(&right, &gated, "test", &ReadOptions::default())
            .unwrap()
            .len(),
        1319
    );
}

#[test]
fn offline_reads_only_the_cache() {
    let f = fixture();
    let cache = tempfile::tempdir().unwrap();
    let online = hub(&f.server.url(), cache.path(), None, false);
    let q = query("allenai/winogrande", Some("winogrande_xl"));
    let first = resolve(&online, &q).unwrap();
    let docs = read_split(&online, &first, "validation", &ReadOptions::default()).unwrap();
    // A dead endpoint proves no request is made.
    let offline = hub("http://127.0.0.1:9", cache.path(), None, true);
    let again = resolve(&offline, &q).unwrap();
    assert_eq!(again.snapshot.commit, first.snapshot.commit);
    assert_eq!(
        read_split(&offline, &again, "validation", &ReadOptions::default()).unwrap(),
        docs
    );
    let empty = tempfile::tempdir().unwrap();
    let nothing = hub("http://127.0.0.1:9", empty.path(), None, true);
    let err = resolve(&nothing, &q).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
    assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");
    let unreachable = hub("http://127.0.0.1:9", empty.path(), None, false);
    let err = resolve(&unreachable, &q).unwrap_err();
    assert!(matches!(err, HubError::Unreachable { .. }), "{err}");
}

#[test]
fn a_cut_download_resumes_and_leaves_no_half_file() {
    let f = fixture();
    let server = HubStandIn::start(
        &f.root,
        "127.0.0.1:0".parse().unwrap(),
        Options {
            cut_first_download: true,
        },
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server.url(), cache.path(), None, false);
    let gsm = resolve(&hub, &query("openai/gsm8k", Some("main"))).unwrap();
    let train = read_split(&hub, &gsm, "train", &ReadOptions::default()).unwrap();
    assert_eq!(train.len(), 7473);
    assert!(server.cuts() >= 1, "the stand-in cut a download");
    let blobs = cache.path().join("datasets--openai--gsm8k/blobs");
    for entry in std::fs::read_dir(blobs).unwrap().flatten() {
        assert!(
            entry.path().extension().is_none(),
            "{}",
            entry.path().display()
        );
    }
}
