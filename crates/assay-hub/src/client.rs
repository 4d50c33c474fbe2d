//! The Hub's repository API and file downloads, for dataset and model repositories, in the
//! cache layout `huggingface_hub` writes (`datasets--org--name/` or `models--org--name/`, each
//! with `blobs/<etag>`, `snapshots/<commit>/<path>` links and `refs/<revision>`), so a file either
//! side downloaded is reused by the other.
//!
//! Transfers go through [`crate::download`], which treats the server as possibly hostile: every
//! name the server sends is checked before it becomes a path, the token never leaves the
//! endpoint's origin, bodies are bounded by their announced size, reads time out, and the run's
//! stop ends a download (resumed by the next run). Every finished blob is checked against the
//! Hub's ETag (SHA-256 for LFS files, the git blob SHA-1 otherwise), so a cut or corrupted
//! download never stays in the cache.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Deserialize;
use sha2::Digest;

use crate::config::HubConfig;
use crate::download::{Fetch, Transfer};
use crate::names::{check_commit, check_repo_id, check_repo_path, is_commit};
use crate::HubError;

/// Which kind of repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// A dataset (`/api/datasets/...`, `datasets--org--name`).
    Dataset,
    /// A model (`/api/models/...`, `models--org--name`).
    Model,
}

impl RepoKind {
    /// The cache folder prefix `huggingface_hub` uses.
    fn cache_prefix(self) -> &'static str {
        match self {
            RepoKind::Dataset => "datasets",
            RepoKind::Model => "models",
        }
    }

    /// The URL prefix of the repository's files (`resolve/...` follows).
    fn files_prefix(self, endpoint: &str, repo: &str) -> String {
        match self {
            RepoKind::Dataset => format!("{endpoint}/datasets/{repo}"),
            RepoKind::Model => format!("{endpoint}/{repo}"),
        }
    }

    /// The repository's page on the Hub at `endpoint`.
    fn page(self, endpoint: &str, repo: &str) -> String {
        match self {
            RepoKind::Dataset => format!("{endpoint}/datasets/{repo}"),
            RepoKind::Model => format!("{endpoint}/{repo}"),
        }
    }

    /// Where a user sets the revision.
    pub(crate) fn revision_hint(self) -> &'static str {
        match self {
            RepoKind::Dataset => "check dataset_kwargs.revision",
            RepoKind::Model => "check the revision after `@` in --model",
        }
    }
}

impl std::fmt::Display for RepoKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RepoKind::Dataset => "dataset",
            RepoKind::Model => "model",
        })
    }
}

/// A repository's files at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// A dataset or a model repository.
    pub kind: RepoKind,
    /// The repository, `org/name`.
    pub repo: String,
    /// The revision asked for (a branch, tag or commit).
    pub revision: String,
    /// The commit it resolved to.
    pub commit: String,
    /// Every file's path in the repository, sorted.
    pub files: Vec<String>,
}

/// A client for the repositories of one Hub.
pub struct Hub {
    config: HubConfig,
    transfer: Transfer,
    progress: bool,
}

#[derive(Deserialize)]
struct RepoInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
}

impl Hub {
    /// A client with `config`; `progress` shows a bar per download on stderr.
    pub fn new(config: HubConfig, progress: bool) -> Result<Hub, HubError> {
        let transfer = Transfer::new(&config.endpoint, config.token.clone(), config.timeout)
            .map_err(|message| HubError::Refused {
                source_of: "HF_ENDPOINT".into(),
                message,
            })?;
        Ok(Hub {
            config,
            transfer,
            progress,
        })
    }

    /// Makes downloads stop (resumable) once `flag` is raised: the run's Ctrl-C or timeout.
    pub fn stop_on(mut self, flag: Arc<AtomicBool>) -> Hub {
        self.transfer.stop_on(flag);
        self
    }

    /// The files of dataset `repo` at `revision`: from the Hub, or from the cache when offline.
    pub fn snapshot(&self, repo: &str, revision: &str) -> Result<Snapshot, HubError> {
        self.snapshot_of(RepoKind::Dataset, repo, revision)
    }

    /// The files of the `kind` repository `repo` at `revision`.
    pub fn snapshot_of(
        &self,
        kind: RepoKind,
        repo: &str,
        revision: &str,
    ) -> Result<Snapshot, HubError> {
        let refuse = |message| HubError::Refused {
            source_of: format!("{kind} {repo}@{revision}"),
            message,
        };
        check_repo_id(repo).map_err(refuse)?;
        check_repo_path(revision).map_err(refuse)?;
        if self.config.offline {
            return self.cached_snapshot(kind, repo, revision);
        }
        let url = format!(
            "{}/api/{}/{repo}/revision/{}",
            self.config.endpoint,
            kind.cache_prefix(),
            revision.replace('/', "%2F")
        );
        let info: RepoInfo = self
            .transfer
            .json(&url)
            .map_err(|e| self.fetch_error(kind, repo, revision, None, &url, e))?;
        let untrusted = |message: String| self.untrusted(kind, repo, message);
        check_commit(&info.sha).map_err(|e| untrusted(format!("{url}: the listing's sha {e}")))?;
        let mut files = Vec::with_capacity(info.siblings.len());
        for sibling in info.siblings {
            check_repo_path(&sibling.rfilename).map_err(|e| untrusted(format!("{url}: {e}")))?;
            files.push(sibling.rfilename);
        }
        files.sort();
        let commit = info.sha.to_ascii_lowercase();
        // Remember the revision's commit as huggingface_hub does, so an offline run finds it.
        if revision != commit {
            write_ref(&self.repo_dir_of(kind, repo), revision, &commit).map_err(|e| {
                HubError::Cache {
                    path: self.repo_dir_of(kind, repo),
                    message: e.to_string(),
                }
            })?;
        }
        Ok(Snapshot {
            kind,
            repo: repo.into(),
            revision: revision.into(),
            commit,
            files,
        })
    }

    /// The local path of `path` in `snapshot`, downloaded unless the cache has it.
    pub fn file(&self, snapshot: &Snapshot, path: &str) -> Result<PathBuf, HubError> {
        let (kind, repo) = (snapshot.kind, snapshot.repo.as_str());
        check_repo_id(repo)
            .and_then(|()| check_repo_path(path))
            .and_then(|()| check_commit(&snapshot.commit))
            .map_err(|message| HubError::Refused {
                source_of: format!("{kind} {repo}, {path}"),
                message,
            })?;
        let repo_dir = self.repo_dir_of(kind, repo);
        let link = repo_dir.join("snapshots").join(&snapshot.commit).join(path);
        if link.is_file() {
            return Ok(link);
        }
        if self.config.offline {
            return Err(HubError::Offline {
                kind,
                repo: repo.into(),
                revision: format!("{} ({path})", snapshot.revision),
                cache: self.config.cache_dir.clone(),
            });
        }
        let url = format!(
            "{}/resolve/{}/{}",
            kind.files_prefix(&self.config.endpoint, repo),
            snapshot.commit,
            encode_path(path)
        );
        let fetch_error = |e| self.fetch_error(kind, repo, &snapshot.revision, Some(path), &url, e);
        let meta = self.transfer.meta(&url).map_err(fetch_error)?;
        if meta.commit.as_ref().is_some_and(|c| *c != snapshot.commit) {
            return Err(self.untrusted(
                kind,
                repo,
                format!("{url}: answered for another commit than the one asked for"),
            ));
        }
        let blob = repo_dir.join("blobs").join(&meta.blob);
        if !std::fs::metadata(&blob).is_ok_and(|m| m.is_file() && m.len() == meta.size) {
            self.fetch_blob(snapshot, path, &url, &meta.blob, meta.size)?;
        }
        link_blob(&link, path, &meta.blob).map_err(|e| HubError::Cache {
            path: link.clone(),
            message: e.to_string(),
        })?;
        Ok(link)
    }

    /// Downloads blob `name` of `size` bytes from `url` into the repository's `blobs/`, under the
    /// lock `huggingface_hub` takes (`.locks/<repo folder>/<blob>.lock`), checked before it is
    /// renamed into place.
    fn fetch_blob(
        &self,
        snapshot: &Snapshot,
        path: &str,
        url: &str,
        name: &str,
        size: u64,
    ) -> Result<(), HubError> {
        let (kind, repo) = (snapshot.kind, snapshot.repo.as_str());
        let repo_dir = self.repo_dir_of(kind, repo);
        let blobs = repo_dir.join("blobs");
        let cache_error = |e: std::io::Error| HubError::Cache {
            path: blobs.clone(),
            message: e.to_string(),
        };
        let locks = self
            .config
            .cache_dir
            .join(".locks")
            .join(repo_folder(kind, repo));
        std::fs::create_dir_all(&blobs).map_err(cache_error)?;
        std::fs::create_dir_all(&locks).map_err(cache_error)?;
        let lock =
            std::fs::File::create(locks.join(format!("{name}.lock"))).map_err(cache_error)?;
        lock.lock().map_err(cache_error)?;
        let blob = blobs.join(name);
        if std::fs::metadata(&blob).is_ok_and(|m| m.len() == size) {
            return Ok(()); // another process finished it while we waited
        }
        let partial = blobs.join(format!("{name}.incomplete"));
        let bar = self.progress.then(|| download_bar(size, path));
        let mut progress = |position| {
            if let Some(bar) = &bar {
                bar.set_position(position);
            }
        };
        let result = self.transfer.download(url, size, &partial, &mut progress);
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        result.map_err(|e| self.fetch_error(kind, repo, &snapshot.revision, Some(path), url, e))?;
        if let Err(message) = verify_blob(&partial, name) {
            // A file that does not match its ETag is removed: never a half or forged file.
            let _ = std::fs::remove_file(&partial);
            return Err(HubError::Corrupt {
                kind,
                repo: repo.into(),
                path: path.into(),
                message,
            });
        }
        std::fs::rename(&partial, &blob).map_err(cache_error)
    }

    /// The error for a server answer that cannot be used safely.
    fn untrusted(&self, kind: RepoKind, repo: &str, message: String) -> HubError {
        HubError::Refused {
            source_of: format!("{kind} {repo}"),
            message: format!(
                "{message}; nothing was written (is HF_ENDPOINT {} a Hugging Face Hub?)",
                self.config.endpoint
            ),
        }
    }

    fn fetch_error(
        &self,
        kind: RepoKind,
        repo: &str,
        revision: &str,
        path: Option<&str>,
        url: &str,
        error: Fetch,
    ) -> HubError {
        match error {
            Fetch::Request(e) => self.request_error(kind, repo, revision, path, *e),
            Fetch::Refused(message) => self.untrusted(kind, repo, message),
            Fetch::Failed(message) => HubError::Http {
                url: url.into(),
                message,
            },
            Fetch::Io(e) => HubError::Cache {
                path: self.repo_dir_of(kind, repo),
                message: e.to_string(),
            },
            Fetch::Stopped => HubError::Stopped { url: url.into() },
        }
    }

    /// The cache folder of dataset `repo`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.repo_dir_of(RepoKind::Dataset, repo)
    }

    /// The cache folder of the `kind` repository `repo`.
    pub fn repo_dir_of(&self, kind: RepoKind, repo: &str) -> PathBuf {
        self.config.cache_dir.join(repo_folder(kind, repo))
    }

    fn cached_snapshot(
        &self,
        kind: RepoKind,
        repo: &str,
        revision: &str,
    ) -> Result<Snapshot, HubError> {
        let dir = self.repo_dir_of(kind, repo);
        let offline = || HubError::Offline {
            kind,
            repo: repo.into(),
            revision: revision.into(),
            cache: self.config.cache_dir.clone(),
        };
        let commit = if is_commit(revision) {
            revision.to_string()
        } else {
            std::fs::read_to_string(dir.join("refs").join(revision))
                .map_err(|_| offline())?
                .trim()
                .to_string()
        };
        let root = dir.join("snapshots").join(&commit);
        if !is_commit(&commit) || !root.is_dir() {
            return Err(offline());
        }
        let mut files = Vec::new();
        list_files(&root, &root, &mut files).map_err(|e| HubError::Cache {
            path: root.clone(),
            message: e.to_string(),
        })?;
        files.sort();
        Ok(Snapshot {
            kind,
            repo: repo.into(),
            revision: revision.into(),
            commit,
            files,
        })
    }

    fn request_error(
        &self,
        kind: RepoKind,
        repo: &str,
        revision: &str,
        path: Option<&str>,
        error: ureq::Error,
    ) -> HubError {
        match error {
            ureq::Error::Status(status, response) => {
                let code = response.header("x-error-code").unwrap_or("").to_string();
                let message = response.header("x-error-message").unwrap_or("").to_string();
                match (status, code.as_str()) {
                    (_, "GatedRepo") | (403, _) => HubError::Gated {
                        kind,
                        repo: repo.into(),
                        page: kind.page(&self.config.endpoint, repo),
                        has_token: self.config.token.is_some(),
                    },
                    (_, "RevisionNotFound") => HubError::RevisionNotFound {
                        kind,
                        repo: repo.into(),
                        revision: revision.into(),
                    },
                    (_, "EntryNotFound") => HubError::FileNotFound {
                        kind,
                        repo: repo.into(),
                        revision: revision.into(),
                        path: path.unwrap_or("").into(),
                    },
                    (401 | 404, _) => HubError::RepoNotFound {
                        kind,
                        repo: repo.into(),
                        endpoint: self.config.endpoint.clone(),
                        has_token: self.config.token.is_some(),
                    },
                    _ => HubError::Http {
                        url: response.get_url().to_string(),
                        message: format!("HTTP {status} {message}"),
                    },
                }
            }
            ureq::Error::Transport(t) => HubError::Unreachable {
                endpoint: self.config.endpoint.clone(),
                message: t.to_string(),
            },
        }
    }
}

/// The cache folder's name of a repository: `datasets--org--name`.
fn repo_folder(kind: RepoKind, repo: &str) -> String {
    format!("{}--{}", kind.cache_prefix(), repo.replace('/', "--"))
}

/// `path` with every byte outside `A-Za-z0-9-._~/` percent-encoded, as `huggingface_hub`
/// quotes a file name in its URL.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `snapshots/<commit>/<path>` made a relative link to `../../blobs/<blob>` (one more `..` per
/// folder in `path`), as `huggingface_hub` links it; a copy where links cannot be made.
fn link_blob(link: &Path, path: &str, blob: &str) -> std::io::Result<()> {
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::symlink_metadata(link).is_ok() {
        std::fs::remove_file(link)?;
    }
    let ups = 2 + path.matches('/').count();
    let target = format!("{}blobs/{blob}", "../".repeat(ups));
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, link);
    #[cfg(not(unix))]
    return std::fs::copy(link.parent().unwrap_or(link).join(target), link).map(|_| ());
}

/// `refs/<revision>` holding `commit`; a revision with `/` (`refs/convert/parquet`) nests.
fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> std::io::Result<()> {
    let path = repo_dir.join("refs").join(revision);
    if std::fs::read_to_string(&path).is_ok_and(|c| c.trim() == commit) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("assay-tmp");
    std::fs::write(&tmp, commit)?;
    std::fs::rename(tmp, path)
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(root, &path, out)?;
        } else if path.is_file() {
            if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok(())
}

/// Checks a downloaded file against `expected`, the Hub's ETag: the SHA-256 of the content
/// for LFS files (64 digits), the git blob SHA-1 for the others (40).
fn verify_blob(file: &Path, expected: &str) -> Result<(), String> {
    let len = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let actual = if expected.len() == 64 {
        let mut hasher = sha2::Sha256::new();
        copy_into(file, |chunk| hasher.update(chunk))?;
        hex(&hasher.finalize())
    } else {
        let mut hasher = sha1::Sha1::new();
        hasher.update(format!("blob {len}\0").as_bytes());
        copy_into(file, |chunk| hasher.update(chunk))?;
        hex(&hasher.finalize())
    };
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "the downloaded file ({len} bytes) does not match its checksum {expected}: the download was cut or corrupted; run again to fetch it anew"
        ))
    }
}

fn copy_into(path: &Path, mut sink: impl FnMut(&[u8])) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        sink(&buf[..n]);
    }
}

/// A download's progress bar on stderr (hidden when stderr is not a terminal).
fn download_bar(size: u64, path: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} (ETA {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(path.rsplit('/').next().unwrap_or(path).to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_into_blobs_relatively() {
        let dir = tempfile::tempdir().unwrap();
        let blob = "ce013625030ba8dba906f756967f9e9ca394464a";
        std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs").join(blob), "hello\n").unwrap();
        let link = dir.path().join("snapshots/abc/data/test.jsonl");
        link_blob(&link, "data/test.jsonl", blob).unwrap();
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "hello\n");
        // A second link over the first (a file fetched again) replaces it.
        link_blob(&link, "data/test.jsonl", blob).unwrap();
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../../../blobs").join(blob)
        );
    }

    #[test]
    fn file_names_are_quoted_in_urls() {
        assert_eq!(encode_path("data/a b#?.json"), "data/a%20b%23%3F.json");
    }

    #[test]
    fn refs_nest_revisions_with_slashes() {
        let dir = tempfile::tempdir().unwrap();
        write_ref(dir.path(), "refs/convert/parquet", "abc").unwrap();
        let text = std::fs::read_to_string(dir.path().join("refs/refs/convert/parquet")).unwrap();
        assert_eq!(text, "abc");
    }

    #[test]
    fn blobs_are_checked_against_their_etag() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"hello\n";
        // `git hash-object` of "hello\n".
        let file = dir.path().join("blob.incomplete");
        std::fs::write(&file, content).unwrap();
        let git = "ce013625030ba8dba906f756967f9e9ca394464a";
        assert_eq!(verify_blob(&file, git), Ok(()));
        let sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        assert_eq!(verify_blob(&file, sha), Ok(()));
        std::fs::write(&file, b"hel").unwrap();
        let err = verify_blob(&file, sha).unwrap_err();
        assert!(err.contains("cut or corrupted"), "{err}");
    }
}
