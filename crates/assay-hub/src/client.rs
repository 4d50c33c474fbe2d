//! The Hub's repository API and file downloads, for dataset and model repositories, in the
//! cache layout `huggingface_hub` writes (`datasets--org--name/` or `models--org--name/`, each
//! with `blobs/<etag>`, `snapshots/<commit>/<path>` links and `refs/<revision>`), so a file either
//! side downloaded is reused by the other.
//!
//! Downloads go through the `hf-hub` crate (resumable `.part` files, retries, the blob lock);
//! every finished blob is then checked against the Hub's ETag (SHA-256 for LFS files, the git
//! blob SHA-1 otherwise), so a cut or corrupted download never stays in the cache.

use std::io::Read;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use serde::Deserialize;
use sha2::Digest;

use crate::config::HubConfig;
use crate::HubError;

/// Times a download is retried (resuming where it stopped) before it fails.
const DOWNLOAD_RETRIES: usize = 5;

/// Which kind of repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// A dataset (`/api/datasets/...`, `datasets--org--name`).
    Dataset,
    /// A model (`/api/models/...`, `models--org--name`).
    Model,
}

impl RepoKind {
    fn repo_type(self) -> RepoType {
        match self {
            RepoKind::Dataset => RepoType::Dataset,
            RepoKind::Model => RepoType::Model,
        }
    }

    /// The cache folder prefix `huggingface_hub` uses.
    fn cache_prefix(self) -> &'static str {
        match self {
            RepoKind::Dataset => "datasets",
            RepoKind::Model => "models",
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
    api: Api,
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
        let api = ApiBuilder::from_cache(Cache::new(config.cache_dir.clone()))
            .with_endpoint(config.endpoint.clone())
            .with_token(config.token.clone())
            .with_retries(DOWNLOAD_RETRIES)
            .with_progress(false)
            .with_user_agent("assay", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| HubError::Http {
                url: config.endpoint.clone(),
                message: e.to_string(),
            })?;
        Ok(Hub {
            config,
            api,
            progress,
        })
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
        if self.config.offline {
            return self.cached_snapshot(kind, repo, revision);
        }
        let handle = Repo::with_revision(repo.into(), kind.repo_type(), revision.into());
        let request = self.api.repo(handle).info_request();
        let url = request.url().to_string();
        let info: RepoInfo = match request.call() {
            Ok(response) => response.into_json().map_err(|e| HubError::Http {
                url: url.clone(),
                message: format!("not the Hub's repository JSON: {e}"),
            })?,
            Err(e) => return Err(self.request_error(kind, repo, revision, None, e)),
        };
        let mut files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
        files.sort();
        // Remember the revision's commit as huggingface_hub does, so an offline run finds it.
        if revision != info.sha {
            write_ref(&self.repo_dir_of(kind, repo), revision, &info.sha).map_err(|e| {
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
            commit: info.sha,
            files,
        })
    }

    /// The local path of `path` in `snapshot`, downloaded unless the cache has it.
    pub fn file(&self, snapshot: &Snapshot, path: &str) -> Result<PathBuf, HubError> {
        let cached = self
            .repo_dir_of(snapshot.kind, &snapshot.repo)
            .join("snapshots")
            .join(&snapshot.commit)
            .join(path);
        if cached.is_file() {
            return Ok(cached);
        }
        if self.config.offline {
            return Err(HubError::Offline {
                kind: snapshot.kind,
                repo: snapshot.repo.clone(),
                revision: format!("{} ({path})", snapshot.revision),
                cache: self.config.cache_dir.clone(),
            });
        }
        let repo = self.api.repo(Repo::with_revision(
            snapshot.repo.clone(),
            snapshot.kind.repo_type(),
            snapshot.commit.clone(),
        ));
        let result = if self.progress {
            repo.download_with_progress(path, Bar::default())
        } else {
            repo.download_with_progress(path, ())
        };
        let local = result.map_err(|e| match e {
            ApiError::RequestError(e) => self.request_error(
                snapshot.kind,
                &snapshot.repo,
                &snapshot.revision,
                Some(path),
                *e,
            ),
            ApiError::TooManyRetries(e) => HubError::Http {
                url: repo.url(path),
                message: format!("download failed after {DOWNLOAD_RETRIES} retries: {e}"),
            },
            other => HubError::Http {
                url: repo.url(path),
                message: other.to_string(),
            },
        })?;
        verify_blob(&local).map_err(|message| {
            // A blob that does not match its ETag is removed with its link: never a half file.
            if let Ok(blob) = std::fs::canonicalize(&local) {
                let _ = std::fs::remove_file(blob);
            }
            let _ = std::fs::remove_file(&local);
            HubError::Corrupt {
                kind: snapshot.kind,
                repo: snapshot.repo.clone(),
                path: path.into(),
                message,
            }
        })?;
        // hf-hub leaves its lock beside the blob; huggingface_hub keeps locks in `.locks/`.
        if let Ok(blob) = std::fs::canonicalize(&local) {
            let _ = std::fs::remove_file(blob.with_extension("lock"));
        }
        Ok(local)
    }

    /// The cache folder of dataset `repo`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.repo_dir_of(RepoKind::Dataset, repo)
    }

    /// The cache folder of the `kind` repository `repo`.
    pub fn repo_dir_of(&self, kind: RepoKind, repo: &str) -> PathBuf {
        self.config.cache_dir.join(format!(
            "{}--{}",
            kind.cache_prefix(),
            repo.replace('/', "--")
        ))
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
        if !root.is_dir() {
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

/// Whether `revision` is a full commit hash.
fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
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

/// Checks a downloaded file against its blob name (the Hub's ETag): SHA-256 of the content for
/// LFS files, the git blob SHA-1 for the others.
fn verify_blob(link: &Path) -> Result<(), String> {
    let blob = std::fs::canonicalize(link).map_err(|e| e.to_string())?;
    let expected = blob
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let len = std::fs::metadata(&blob).map_err(|e| e.to_string())?.len();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let actual = match expected.len() {
        64 => {
            let mut hasher = sha2::Sha256::new();
            copy_into(&blob, |chunk| hasher.update(chunk))?;
            hex(&hasher.finalize())
        }
        40 => {
            let mut hasher = sha1::Sha1::new();
            hasher.update(format!("blob {len}\0").as_bytes());
            copy_into(&blob, |chunk| hasher.update(chunk))?;
            hex(&hasher.finalize())
        }
        // An ETag of another form (a server that is not the Hub) cannot be checked.
        _ => return Ok(()),
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
#[derive(Default)]
struct Bar(Option<indicatif::ProgressBar>);

impl hf_hub::api::Progress for Bar {
    fn init(&mut self, size: usize, filename: &str) {
        let bar = self
            .0
            .get_or_insert_with(|| indicatif::ProgressBar::new(size as u64));
        bar.set_length(size as u64);
        bar.set_position(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} (ETA {eta})",
        ) {
            bar.set_style(style);
        }
        bar.set_message(filename.to_string());
    }

    fn update(&mut self, size: usize) {
        if let Some(bar) = &self.0 {
            bar.inc(size as u64);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_forty_hex_digits() {
        assert!(is_commit("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit("main"));
        assert!(!is_commit("refs/convert/parquet"));
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
        let git = dir.path().join("ce013625030ba8dba906f756967f9e9ca394464a");
        std::fs::write(&git, content).unwrap();
        assert_eq!(verify_blob(&git), Ok(()));
        let sha = dir
            .path()
            .join("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
        std::fs::write(&sha, content).unwrap();
        assert_eq!(verify_blob(&sha), Ok(()));
        std::fs::write(&sha, b"hel").unwrap();
        let err = verify_blob(&sha).unwrap_err();
        assert!(err.contains("cut or corrupted"), "{err}");
    }
}
