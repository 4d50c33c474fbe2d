//! The Hub's HTTP surface that `huggingface_hub`, `datasets` and assay use, over a folder of
//! repositories: `ROOT/datasets/<id>/<revision>/<files>` and `ROOT/models/<id>/<revision>/<files>`,
//! one folder per branch (a branch with
//! `/` in its name, `refs/convert/parquet`, is the folder `refs%2Fconvert%2Fparquet`), and an
//! optional `ROOT/<kind>/<id>/.gated` holding the one token that may read the repository.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use sha1::Digest;

/// Extensions stored through LFS on the real Hub (their ETag is the content's SHA-256).
const LFS_EXTENSIONS: [&str; 6] = ["parquet", "arrow", "gz", "zip", "safetensors", "gguf"];

/// What the stand-in serves and how it misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Cut the first download of every LFS file after half its bytes (the client must resume).
    pub cut_first_download: bool,
}

/// A running stand-in.
pub struct HubStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    options: Options,
    cut: Mutex<std::collections::HashSet<PathBuf>>,
}

/// A file of a branch.
struct Entry {
    path: String,
    local: PathBuf,
    size: u64,
    etag: String,
    lfs: bool,
}

impl HubStandIn {
    /// Serves `root` on `addr` (port 0: any free port) in a background thread.
    pub fn start(root: &Path, addr: SocketAddr, options: Options) -> std::io::Result<HubStandIn> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            options,
            cut: Mutex::new(Default::default()),
        });
        let state = shared.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = Router::new().fallback(handle).with_state(state);
                let _ = axum::serve(listener, app).await;
            });
        });
        Ok(HubStandIn { addr, shared })
    }

    /// The endpoint to put in `HF_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Downloads cut so far (with [`Options::cut_first_download`]).
    pub fn cuts(&self) -> usize {
        self.shared.cut.lock().map(|s| s.len()).unwrap_or(0)
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let headers = request.headers().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let shared2 = shared.clone();
    tokio::task::spawn_blocking(move || route(&shared2, &method, &headers, &path, &query, &body))
        .await
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "", "handler failed"))
}

fn route(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: &str,
    body: &[u8],
) -> Response {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    // Datasets live under /datasets/, models at the top: /<repo>/resolve/...
    let (kind, file_route): (&str, &[&str]) = match segs.as_slice() {
        ["api", kind @ ("datasets" | "models"), ..] => (kind, &[]),
        ["datasets", rest @ ..] => ("datasets", rest),
        rest => ("models", rest),
    };
    match segs.as_slice() {
        ["api", "datasets" | "models", rest @ ..] => {
            let Some((repo, rest)) = shared.split_repo(kind, rest) else {
                return repo_not_found(headers);
            };
            if let Some(denied) = shared.authorize(kind, &repo, headers) {
                return denied;
            }
            match rest {
                [] => shared.info(kind, &repo, "main"),
                ["revision", revision @ ..] => shared.info(kind, &repo, &revision.join("/")),
                ["tree", revision, sub @ ..] => shared.tree(
                    kind,
                    &repo,
                    revision,
                    &sub.join("/"),
                    query.contains("recursive=true") || query.contains("recursive=True"),
                ),
                ["paths-info", revision] if method == Method::POST => {
                    shared.paths_info(kind, &repo, revision, body)
                }
                ["parquet", rest @ ..] if kind == "datasets" => {
                    shared.parquet_listing(kind, &repo, rest)
                }
                _ => error(StatusCode::NOT_FOUND, "", "no such API route"),
            }
        }
        _ if !file_route.is_empty() => {
            let Some((repo, rest)) = shared.split_repo(kind, file_route) else {
                return repo_not_found(headers);
            };
            if let Some(denied) = shared.authorize(kind, &repo, headers) {
                return denied;
            }
            match rest {
                ["resolve", revision, file @ ..] => {
                    shared.resolve(kind, &repo, revision, &file.join("/"), method, headers)
                }
                _ => error(StatusCode::NOT_FOUND, "", "no such route"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "", "no such route"),
    }
}

impl Shared {
    /// `org/name` or `name` at the start of `segments`, whichever is a repository here.
    fn split_repo<'a>(
        &self,
        kind: &str,
        segments: &'a [&'a str],
    ) -> Option<(String, &'a [&'a str])> {
        let base = self.root.join(kind);
        if segments.len() >= 2
            && base
                .join(segments[0])
                .join(segments[1])
                .join("main")
                .is_dir()
        {
            return Some((format!("{}/{}", segments[0], segments[1]), &segments[2..]));
        }
        if !segments.is_empty() && base.join(segments[0]).join("main").is_dir() {
            return Some((segments[0].to_string(), &segments[1..]));
        }
        None
    }

    fn repo_dir(&self, kind: &str, repo: &str) -> PathBuf {
        self.root.join(kind).join(repo)
    }

    /// The refusal for a gated repository without its token, `None` when access is allowed.
    fn authorize(&self, kind: &str, repo: &str, headers: &HeaderMap) -> Option<Response> {
        let Ok(wanted) = std::fs::read_to_string(self.repo_dir(kind, repo).join(".gated")) else {
            return None;
        };
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let message = format!(
            "Access to {} {repo} is restricted. You must have access to it and be authenticated to access it. Please log in.",
            kind.trim_end_matches('s')
        );
        match sent {
            Some(token) if token == wanted.trim() => None,
            Some(_) => Some(error(StatusCode::FORBIDDEN, "GatedRepo", &message)),
            None => Some(error(StatusCode::UNAUTHORIZED, "GatedRepo", &message)),
        }
    }

    /// The branch folder of `revision` (a branch name or a commit of one).
    fn branch(&self, kind: &str, repo: &str, revision: &str) -> Option<PathBuf> {
        let dir = self.repo_dir(kind, repo);
        let named = dir.join(revision.replace('/', "%2F"));
        if named.is_dir() {
            return Some(named);
        }
        std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.is_dir() && commit_of(&entries(path)) == revision)
    }

    /// The files of `revision`, `None` when it names no branch or commit.
    fn files(&self, kind: &str, repo: &str, revision: &str) -> Option<Vec<Entry>> {
        self.branch(kind, repo, revision).map(|dir| entries(&dir))
    }

    fn info(&self, kind: &str, repo: &str, revision: &str) -> Response {
        let Some(files) = self.files(kind, repo, revision) else {
            return revision_not_found(revision);
        };
        let commit = commit_of(&files);
        let card = files
            .iter()
            .find(|e| e.path == "README.md")
            .and_then(|e| std::fs::read_to_string(&e.local).ok())
            .map(|t| card_data(&t))
            .unwrap_or(Value::Null);
        let gated = self.repo_dir(kind, repo).join(".gated").exists();
        let (author, _) = repo.split_once('/').unwrap_or(("", repo));
        json_response(json!({
            "_id": &commit[..24],
            "id": repo,
            "author": author,
            "sha": commit,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "createdAt": "2023-01-01T00:00:00.000Z",
            "private": false,
            "gated": if gated { json!("manual") } else { json!(false) },
            "disabled": false,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": card,
            "siblings": files.iter().map(|e| json!({"rfilename": e.path})).collect::<Vec<_>>(),
        }))
    }

    fn tree(&self, kind: &str, repo: &str, revision: &str, sub: &str, recursive: bool) -> Response {
        let Some(files) = self.files(kind, repo, revision) else {
            return revision_not_found(revision);
        };
        let prefix = if sub.is_empty() {
            String::new()
        } else {
            format!("{}/", sub.trim_end_matches('/'))
        };
        let mut folders = BTreeMap::new();
        let mut out = Vec::new();
        let mut found = sub.is_empty();
        for e in &files {
            let Some(rest) = e.path.strip_prefix(&prefix) else {
                continue;
            };
            found = true;
            match rest.split_once('/') {
                Some(_) if recursive => {
                    // every folder on the way, once
                    let parts: Vec<&str> = rest.split('/').collect();
                    for i in 1..parts.len() {
                        let folder = format!("{prefix}{}", parts[..i].join("/"));
                        folders.entry(folder).or_insert(());
                    }
                    out.push(file_json(e));
                }
                Some((folder, _)) => {
                    folders.entry(format!("{prefix}{folder}")).or_insert(());
                }
                None => out.push(file_json(e)),
            }
        }
        if !found {
            return error(
                StatusCode::NOT_FOUND,
                "EntryNotFound",
                &format!("{sub} does not exist on {revision}"),
            );
        }
        let mut listing: Vec<Value> = folders
            .keys()
            .map(|f| json!({"type": "directory", "oid": sha1_hex(f.as_bytes()), "size": 0, "path": f}))
            .collect();
        listing.extend(out);
        json_response(Value::Array(listing))
    }

    fn paths_info(&self, kind: &str, repo: &str, revision: &str, body: &[u8]) -> Response {
        let Some(files) = self.files(kind, repo, revision) else {
            return revision_not_found(revision);
        };
        let form = String::from_utf8_lossy(body);
        let mut wanted = Vec::new();
        if let Ok(v) = serde_json::from_slice::<Value>(body) {
            if let Some(paths) = v.get("paths").and_then(Value::as_array) {
                wanted.extend(paths.iter().filter_map(Value::as_str).map(str::to_string));
            }
        } else {
            for pair in form.split('&') {
                if let Some(value) = pair.strip_prefix("paths=") {
                    wanted.push(percent_decode(&value.replace('+', " ")));
                }
            }
        }
        let mut out = Vec::new();
        for path in wanted {
            let path = path.trim_matches('/').to_string();
            if let Some(e) = files.iter().find(|e| e.path == path) {
                out.push(file_json(e));
            } else if files
                .iter()
                .any(|e| e.path.starts_with(&format!("{path}/")))
            {
                out.push(json!({"type": "directory", "oid": sha1_hex(path.as_bytes()), "size": 0, "path": path}));
            }
        }
        json_response(Value::Array(out))
    }

    /// `/api/datasets/<id>/parquet[/<config>[/<split>]]`: the export's file URLs.
    fn parquet_listing(&self, kind: &str, repo: &str, rest: &[&str]) -> Response {
        let revision = "refs/convert/parquet";
        let Some(dir) = self.branch(kind, repo, revision) else {
            return error(StatusCode::NOT_FOUND, "", "no parquet export");
        };
        let mut tree: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for e in entries(&dir) {
            let parts: Vec<&str> = e.path.split('/').collect();
            if let [config, split, _] = parts.as_slice() {
                let url = format!(
                    "/api/datasets/{repo}/parquet/{config}/{split}/{}",
                    parts[2].trim_end_matches(".parquet")
                );
                tree.entry(config.to_string())
                    .or_default()
                    .entry(split.to_string())
                    .or_default()
                    .push(url);
            }
        }
        match rest {
            [] => json_response(json!(tree)),
            [config] => json_response(json!(tree.get(*config))),
            [config, split] => json_response(json!(tree.get(*config).and_then(|s| s.get(*split)))),
            [config, split, n] => {
                let path = format!("{config}/{split}/{n}.parquet");
                self.resolve(kind, repo, revision, &path, &Method::GET, &HeaderMap::new())
            }
            _ => error(StatusCode::NOT_FOUND, "", "no such route"),
        }
    }

    fn resolve(
        &self,
        kind: &str,
        repo: &str,
        revision: &str,
        path: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Response {
        let Some(files) = self.files(kind, repo, revision) else {
            return revision_not_found(revision);
        };
        let commit = commit_of(&files);
        let Some(entry) = files.iter().find(|e| e.path == path) else {
            return error(
                StatusCode::NOT_FOUND,
                "EntryNotFound",
                &format!("{path} does not exist on \"{revision}\""),
            );
        };
        let total = entry.size;
        let range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_range(v, total));
        let (start, end) = range.unwrap_or((0, total.saturating_sub(1)));
        let length = if total == 0 { 0 } else { end + 1 - start };
        let mut builder = Response::builder()
            .status(if range.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            })
            .header("x-repo-commit", &commit)
            .header(header::ETAG, format!("\"{}\"", entry.etag))
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CONTENT_LENGTH, length)
            .header(header::CONTENT_TYPE, "application/octet-stream");
        if entry.lfs {
            builder = builder
                .header("x-linked-etag", format!("\"{}\"", entry.etag))
                .header("x-linked-size", total);
        }
        if range.is_some() {
            builder = builder.header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{total}"),
            );
        }
        if method == Method::HEAD {
            return builder
                .body(Body::empty())
                .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "", "reply"));
        }
        let Ok(bytes) = std::fs::read(&entry.local) else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "",
                "cannot read the file",
            );
        };
        let slice = if total == 0 {
            Vec::new()
        } else {
            bytes[start as usize..=end as usize].to_vec()
        };
        let cut = self.options.cut_first_download
            && entry.lfs
            && slice.len() > 1
            && self
                .cut
                .lock()
                .map(|mut seen| seen.insert(entry.local.clone()))
                .unwrap_or(false);
        let body = if cut {
            let half = bytes::Bytes::from(slice[..slice.len() / 2].to_vec());
            let stream = futures_util::stream::iter(vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cut by the stand-in",
                )),
            ]);
            Body::from_stream(stream)
        } else {
            Body::from(slice)
        };
        builder
            .body(body)
            .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "", "reply"))
    }
}

/// Every file of a branch folder, sorted, with its ETag.
fn entries(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    collect(dir, dir, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let (Ok(rel), Ok(bytes)) = (path.strip_prefix(root), std::fs::read(&path)) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            let ext = rel.rsplit('.').next().unwrap_or("");
            let lfs = LFS_EXTENSIONS.contains(&ext);
            let etag = if lfs {
                let mut h = sha2::Sha256::new();
                h.update(&bytes);
                hex(&h.finalize())
            } else {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {}\0", bytes.len()).as_bytes());
                h.update(&bytes);
                hex(&h.finalize())
            };
            out.push(Entry {
                path: rel,
                local: path.clone(),
                size: bytes.len() as u64,
                etag,
                lfs,
            });
        }
    }
}

/// A branch's commit: a hash of its paths and contents (stable while the files are).
fn commit_of(files: &[Entry]) -> String {
    let mut h = sha1::Sha1::new();
    for e in files {
        h.update(e.path.as_bytes());
        h.update([0]);
        h.update(e.etag.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

fn file_json(e: &Entry) -> Value {
    let mut v = json!({"type": "file", "oid": if e.lfs { sha1_hex(e.etag.as_bytes()) } else { e.etag.clone() }, "size": e.size, "path": e.path});
    if e.lfs {
        v["lfs"] = json!({"oid": e.etag, "size": e.size, "pointerSize": 134});
    }
    v
}

/// The card's front matter as JSON (`cardData`), or null.
fn card_data(text: &str) -> Value {
    let Some(rest) = text.strip_prefix("---\n") else {
        return Value::Null;
    };
    let Some(end) = rest.find("\n---") else {
        return Value::Null;
    };
    serde_yaml::from_str::<Value>(&rest[..end]).unwrap_or(Value::Null)
}

fn parse_range(value: &str, total: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    if total == 0 {
        return None;
    }
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (total.saturating_sub(n), total - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            total - 1
        } else {
            b.parse::<u64>().ok()?.min(total - 1)
        };
        (start, end)
    };
    (start <= end && start < total).then_some((start, end))
}

fn json_response(value: Value) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, json!({"error": message}).to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if !code.is_empty() {
        if let Ok(v) = HeaderValue::from_str(code) {
            headers.insert("x-error-code", v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(message) {
        headers.insert("x-error-message", v);
    }
    response
}

fn revision_not_found(revision: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RevisionNotFound",
        &format!("Invalid rev id: {revision}"),
    )
}

/// The Hub answers 401 for an unknown repository without a token, 404 with one.
fn repo_not_found(headers: &HeaderMap) -> Response {
    let status = if headers.contains_key(header::AUTHORIZATION) {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::UNAUTHORIZED
    };
    error(status, "RepoNotFound", "Repository not found")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha1_hex(bytes: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(bytes);
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-0", 10), Some((0, 0)));
        assert_eq!(parse_range("bytes=5-", 10), Some((5, 9)));
        assert_eq!(parse_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(parse_range("bytes=8-100", 10), Some((8, 9)));
        assert_eq!(parse_range("bytes=10-", 10), None);
        assert_eq!(parse_range("items=1-2", 10), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("refs%2Fconvert%2Fparquet"),
            "refs/convert/parquet"
        );
        assert_eq!(percent_decode("a%"), "a%");
        assert_eq!(percent_decode("ARC-Easy"), "ARC-Easy");
    }
}
