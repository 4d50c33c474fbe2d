//! A local stand-in for PyPI's simple index, for tests: no machine here may reach PyPI from a
//! test. It serves a folder of wheel files as pip and assay read PyPI:
//!
//! - `GET /simple/<project>/`: the project's files, as PEP 691 JSON when the `Accept` header
//!   asks for `application/vnd.pypi.simple.v1+json` (absolute URLs, `hashes.sha256`), else as
//!   PEP 503 HTML (relative URLs with a `#sha256=` fragment); 404 for an unknown project;
//! - `GET /simple/`: the project list (HTML);
//! - `GET /files/<file name>`: the file.
//!
//! A wheel's project is its file name's first `-`-separated field, normalised as PEP 503 says.
//! With [`Options::html_only`] it answers HTML whatever is asked, as older mirrors do.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sha2::Digest;

/// How the stand-in answers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Project pages in HTML only, even when JSON is asked.
    pub html_only: bool,
}

/// A running stand-in.
pub struct PypiStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    options: Options,
    addr: SocketAddr,
    downloads: Mutex<BTreeMap<String, usize>>,
}

impl PypiStandIn {
    /// Serves the wheels in `root` on `addr` (port 0: any free port) in a background thread.
    pub fn start(root: &Path, addr: SocketAddr, options: Options) -> std::io::Result<PypiStandIn> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            options,
            addr,
            downloads: Mutex::new(BTreeMap::new()),
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
        Ok(PypiStandIn { addr, shared })
    }

    /// The index URL, to put in `PIP_INDEX_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/simple", self.addr)
    }

    /// How many times each file was downloaded so far.
    pub fn downloads(&self) -> BTreeMap<String, usize> {
        self.shared
            .downloads
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }
}

/// A project name as PEP 503 normalises it.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let wants_json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/vnd.pypi.simple.v1+json"));
    tokio::task::spawn_blocking(move || route(&shared, &path, wants_json))
        .await
        .unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "handler failed").into_response())
}

fn route(shared: &Shared, path: &str, wants_json: bool) -> Response {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["simple"] => {
            let mut projects: Vec<String> = shared.wheels().into_iter().map(|(p, _)| p).collect();
            projects.dedup();
            let links: String = projects
                .iter()
                .map(|p| format!("<a href=\"/simple/{p}/\">{p}</a>\n"))
                .collect();
            html(format!(
                "<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n"
            ))
        }
        ["simple", project] => shared.project_page(project, wants_json),
        ["files", name] => shared.file(name),
        _ => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

impl Shared {
    /// (project, file name) of every wheel in the folder, sorted.
    fn wheels(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.ends_with(".whl"))
            .filter_map(|name| {
                let project = normalize(name.split('-').next()?);
                Some((project, name))
            })
            .collect();
        out.sort();
        out
    }

    fn project_page(&self, project: &str, wants_json: bool) -> Response {
        let files: Vec<String> = self
            .wheels()
            .into_iter()
            .filter(|(p, _)| p == project)
            .map(|(_, name)| name)
            .collect();
        if files.is_empty() {
            return (StatusCode::NOT_FOUND, "Not Found").into_response();
        }
        let hashes: Vec<String> = files.iter().map(|f| self.sha256(f)).collect();
        if wants_json && !self.options.html_only {
            let entries: Vec<serde_json::Value> = files
                .iter()
                .zip(&hashes)
                .map(|(name, sha)| {
                    serde_json::json!({
                        "filename": name,
                        "url": format!("http://{}/files/{name}", self.addr),
                        "hashes": {"sha256": sha},
                        "requires-python": ">=3.9",
                        "yanked": false,
                    })
                })
                .collect();
            let body = serde_json::json!({
                "meta": {"api-version": "1.1"},
                "name": project,
                "files": entries,
            });
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/vnd.pypi.simple.v1+json")
                .body(Body::from(body.to_string()))
                .unwrap_or_default();
        }
        let links: String = files
            .iter()
            .zip(&hashes)
            .map(|(name, sha)| {
                format!("<a href=\"../../files/{name}#sha256={sha}\" data-requires-python=\"&gt;=3.9\">{name}</a><br />\n")
            })
            .collect();
        html(format!(
            "<!DOCTYPE html>\n<html><head><title>Links for {project}</title></head><body>\n<h1>Links for {project}</h1>\n{links}</body></html>\n"
        ))
    }

    fn file(&self, name: &str) -> Response {
        if name.contains("..") || name.contains('\\') {
            return (StatusCode::NOT_FOUND, "Not Found").into_response();
        }
        match std::fs::read(self.root.join(name)) {
            Ok(bytes) => {
                if let Ok(mut d) = self.downloads.lock() {
                    *d.entry(name.to_string()).or_default() += 1;
                }
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, bytes.len())
                    .body(Body::from(bytes))
                    .unwrap_or_default()
            }
            Err(_) => (StatusCode::NOT_FOUND, "Not Found").into_response(),
        }
    }

    fn sha256(&self, name: &str) -> String {
        let bytes = std::fs::read(self.root.join(name)).unwrap_or_default();
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn html(body: String) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html")
        .body(Body::from(body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str, accept: &str) -> (u16, String, String) {
        match ureq::get(url).set("Accept", accept).call() {
            Ok(r) => (
                r.status(),
                r.content_type().to_string(),
                r.into_string().unwrap(),
            ),
            Err(ureq::Error::Status(code, r)) => (code, String::new(), r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn pages_list_the_wheels_of_a_project_in_json_or_html_and_serve_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("My_Pkg-1.0-py3-none-any.whl"), b"wheel").unwrap();
        std::fs::write(dir.path().join("other-2.0-py3-none-any.whl"), b"x").unwrap();
        let standin = PypiStandIn::start(
            dir.path(),
            "127.0.0.1:0".parse().unwrap(),
            Options::default(),
        )
        .unwrap();
        let url = standin.url();
        let (status, kind, body) = get(
            &format!("{url}/my-pkg/"),
            "application/vnd.pypi.simple.v1+json",
        );
        assert_eq!(
            (status, kind.as_str()),
            (200, "application/vnd.pypi.simple.v1+json")
        );
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["files"].as_array().unwrap().len(), 1);
        let sha: String = sha2::Sha256::digest(b"wheel")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(page["files"][0]["hashes"]["sha256"], sha.as_str());
        let file_url = page["files"][0]["url"].as_str().unwrap().to_string();
        assert_eq!(get(&file_url, "*/*").2, "wheel");
        let (_, kind, body) = get(&format!("{url}/my-pkg/"), "text/html");
        assert_eq!(kind, "text/html");
        assert!(body.contains("../../files/My_Pkg-1.0-py3-none-any.whl#sha256="));
        assert_eq!(get(&format!("{url}/nope/"), "text/html").0, 404);
        assert_eq!(get(&format!("{url}/../files/..%2Fx"), "*/*").0, 404);
        assert_eq!(
            standin.downloads().get("My_Pkg-1.0-py3-none-any.whl"),
            Some(&1)
        );
    }
}
