//! The Hub's HTTP transfers, written for a server that may be hostile (DESIGN.md, "The Hub
//! client"): redirects are followed by hand so the token goes only to the endpoint's own origin
//! (as `requests` drops it for `huggingface_hub`); every read has a timeout; a body is read up
//! to the size the server announced and no further; the run's stop is checked between chunks;
//! a cut transfer resumes from the `.incomplete` file `huggingface_hub` also resumes from.

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::names;

/// Redirects followed before a request fails.
const MAX_REDIRECTS: usize = 10;
/// Times a cut transfer is resumed before it fails.
pub(crate) const DOWNLOAD_RETRIES: usize = 5;
/// The largest repository listing read (the Hub's biggest are a few MB).
const MAX_LISTING_BYTES: u64 = 64 << 20;

/// Why a transfer failed.
#[derive(Debug)]
pub(crate) enum Fetch {
    /// The server answered with an error status, or could not be reached.
    Request(Box<ureq::Error>),
    /// The answer cannot be used safely; the message says why.
    Refused(String),
    /// The transfer kept failing after [`DOWNLOAD_RETRIES`] resumptions.
    Failed(String),
    /// The local file could not be written.
    Io(std::io::Error),
    /// The run's stop flag was raised.
    Stopped,
}

impl From<std::io::Error> for Fetch {
    fn from(e: std::io::Error) -> Fetch {
        Fetch::Io(e)
    }
}

/// What the Hub says about a file before it is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileMeta {
    /// The commit the file was resolved at (`X-Repo-Commit`), when the server says.
    pub commit: Option<String>,
    /// The blob's name in the cache: its ETag, a SHA-1 or SHA-256.
    pub blob: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An HTTP client bound to one Hub endpoint.
pub(crate) struct Transfer {
    agent: ureq::Agent,
    endpoint: Url,
    token: Option<String>,
    stop: Option<Arc<AtomicBool>>,
}

impl Transfer {
    /// A client for `endpoint` sending `token` to it alone; every read times out after `timeout`.
    pub fn new(endpoint: &str, token: Option<String>, timeout: Duration) -> Result<Self, String> {
        let endpoint =
            Url::parse(endpoint).map_err(|e| format!("HF_ENDPOINT `{endpoint}`: {e}"))?;
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(timeout)
            .timeout_read(timeout)
            .user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")))
            .try_proxy_from_env(true)
            .build();
        Ok(Transfer {
            agent,
            endpoint,
            token,
            stop: None,
        })
    }

    /// Makes transfers end with [`Fetch::Stopped`] once `flag` is raised.
    pub fn stop_on(&mut self, flag: Arc<AtomicBool>) {
        self.stop = Some(flag);
    }

    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// GET `url`, following redirects; `cross_origin` says whether to follow one to another
    /// origin (the token is never sent there).
    fn get(
        &self,
        url: &str,
        range: Option<&str>,
        cross_origin: bool,
    ) -> Result<ureq::Response, Fetch> {
        let mut current = Url::parse(url).map_err(|e| Fetch::Refused(format!("{url}: {e}")))?;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.agent.request_url("GET", &current);
            if let (Some(token), true) = (&self.token, current.origin() == self.endpoint.origin()) {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            if let Some(range) = range {
                request = request.set("Range", range);
            }
            let response = request.call().map_err(|e| Fetch::Request(Box::new(e)))?;
            if !matches!(response.status(), 301 | 302 | 303 | 307 | 308) {
                return Ok(response);
            }
            let Some(location) = response.header("location") else {
                return Ok(response);
            };
            let next = current
                .join(location)
                .map_err(|e| Fetch::Refused(format!("{current} redirects to `{location}`: {e}")))?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(Fetch::Refused(format!(
                    "{current} redirects to `{next}`, which is not HTTP"
                )));
            }
            if next.origin() != current.origin() && !cross_origin {
                return Ok(response);
            }
            current = next;
        }
        Err(Fetch::Refused(format!(
            "{url}: more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// The JSON at `url` (a repository listing), read up to 64 MiB.
    pub fn json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Fetch> {
        let response = self.get(url, None, false)?;
        if response.status() != 200 {
            return Err(Fetch::Refused(format!(
                "{url}: HTTP {} instead of the listing",
                response.status()
            )));
        }
        let reader = response.into_reader().take(MAX_LISTING_BYTES);
        serde_json::from_reader(reader).map_err(|e| {
            Fetch::Refused(format!(
                "{url}: not the Hub's repository JSON (at most 64 MiB): {e}"
            ))
        })
    }

    /// What the Hub says of the file at `url`: its first byte's answer, where only relative
    /// redirects are followed (the Hub's own answer carries the LFS file's `X-Linked-Etag`).
    pub fn meta(&self, url: &str) -> Result<FileMeta, Fetch> {
        let response = self.get(url, Some("bytes=0-0"), false)?;
        let header = |name: &str| response.header(name).map(str::to_string);
        let commit = header("x-repo-commit")
            .map(|c| names::check_commit(&c).map(|()| c.to_ascii_lowercase()))
            .transpose()
            .map_err(|e| Fetch::Refused(format!("{url}: X-Repo-Commit {e}")))?;
        let etag = header("x-linked-etag")
            .or_else(|| header("etag"))
            .ok_or_else(|| {
                Fetch::Refused(format!(
                    "{url}: the answer has no ETag, so the file cannot be checked"
                ))
            })?;
        let blob = names::blob_name(&etag).map_err(|e| Fetch::Refused(format!("{url}: {e}")))?;
        let size = header("x-linked-size")
            .and_then(|s| s.trim().parse().ok())
            .or_else(|| {
                header("content-range").and_then(|r| r.rsplit('/').next()?.trim().parse().ok())
            })
            .or_else(|| {
                (response.status() == 200)
                    .then(|| header("content-length")?.trim().parse().ok())
                    .flatten()
            })
            .ok_or_else(|| {
                Fetch::Refused(format!("{url}: the answer gives no size for the file"))
            })?;
        Ok(FileMeta { commit, blob, size })
    }

    /// Downloads `url` into `partial` until it holds `size` bytes, resuming what is there;
    /// `progress` is told the bytes held after every chunk.
    pub fn download(
        &self,
        url: &str,
        size: u64,
        partial: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), Fetch> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(partial)?;
        let mut last_error = String::new();
        for _ in 0..=DOWNLOAD_RETRIES {
            let mut have = file.metadata()?.len();
            if have > size {
                file.set_len(0)?;
                have = 0;
            }
            if have == size {
                return Ok(());
            }
            if self.stopped() {
                return Err(Fetch::Stopped);
            }
            let range = (have > 0).then(|| format!("bytes={have}-"));
            let response = match self.get(url, range.as_deref(), true) {
                Ok(r) => r,
                Err(Fetch::Request(e)) if matches!(*e, ureq::Error::Transport(_)) => {
                    last_error = e.to_string();
                    continue;
                }
                Err(e) => return Err(e),
            };
            let resumed = response.status() == 206
                && response
                    .header("content-range")
                    .is_some_and(|r| r.trim().starts_with(&format!("bytes {have}-")));
            if !resumed {
                if response.status() != 200 {
                    return Err(Fetch::Refused(format!(
                        "{url}: HTTP {} instead of the file",
                        response.status()
                    )));
                }
                file.set_len(0)?;
                have = 0;
            }
            file.seek(std::io::SeekFrom::Start(have))?;
            match self.copy_bounded(response.into_reader(), &mut file, (have, size), progress) {
                Ok(()) => {}
                Err(Fetch::Io(e)) if e.kind() != std::io::ErrorKind::StorageFull => {
                    last_error = e.to_string();
                }
                Err(Fetch::Refused(message)) => {
                    file.set_len(0)?;
                    return Err(Fetch::Refused(format!("{url}: {message}")));
                }
                Err(e) => return Err(e),
            }
        }
        Err(Fetch::Failed(format!(
            "{url}: the transfer failed {} times ({last_error})",
            DOWNLOAD_RETRIES + 1
        )))
    }

    /// Copies `body` into `file`, which holds `have` of `size` bytes: the rest and no more (a
    /// longer body is refused), checking the stop flag between chunks.
    fn copy_bounded(
        &self,
        mut body: impl Read,
        file: &mut std::fs::File,
        (have, size): (u64, u64),
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), Fetch> {
        let room = size - have;
        let mut buf = vec![0u8; 1 << 16];
        let mut written = 0u64;
        loop {
            if self.stopped() {
                file.flush()?;
                return Err(Fetch::Stopped);
            }
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if written + n as u64 > room {
                return Err(Fetch::Refused(format!(
                    "the server sent more than the {size} bytes it announced"
                )));
            }
            file.write_all(&buf[..n])?;
            written += n as u64;
            progress(have + written);
        }
        file.flush()?;
        if written < room {
            return Err(Fetch::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the body ended after {written} of {room} bytes"),
            )));
        }
        Ok(())
    }
}
