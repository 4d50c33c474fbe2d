//! `assay view`: a local web server over the run registry. It answers only with the assets
//! compiled into the binary and with JSON computed from the registry; no request path ever
//! reaches the file system. Requests whose `Host` is not the address listened on or a loopback
//! name (`localhost`, `127.0.0.1`, `[::1]`) get 403, so a page elsewhere cannot reach the view
//! through DNS rebinding.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use assay_records::{compare, doc_rows, RecordsError, Registry};
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::html::{build_report, comparison_fragment, BROWSER_JS, STYLE};

const VIEW_HTML: &str = include_str!("../assets/view.html");
const VIEW_JS: &str = include_str!("../assets/view.js");

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another program using the port? try --port 0)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("web view: {0}")]
    Io(#[from] std::io::Error),
}

struct App {
    registry: Mutex<Registry>,
    path: PathBuf,
    /// The address listened on: a `Host` must name its port (and it, or a loopback name).
    addr: SocketAddr,
}

impl App {
    /// The registry; a handler that panicked while holding it does not lock out the others.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type Shared = Arc<App>;

/// Whether a request's `Host` header may reach the view: the address listened on, or
/// `localhost`, `127.0.0.1` or `[::1]`, with the port listened on (or none, for port 80). A
/// server listening on every address (`0.0.0.0`, `::`) takes any IP address: a rebinding attack
/// needs a domain name. A missing `Host` is refused.
fn host_allowed(host: Option<&str>, listening: SocketAddr) -> bool {
    let port = listening.port();
    let Some(host) = host else {
        return false;
    };
    let (name, given_port) = match host.rsplit_once(':') {
        Some((name, p))
            if !name.ends_with(':') && (name.starts_with('[') || !name.contains(':')) =>
        {
            (name, p.parse::<u16>().ok())
        }
        _ => (host, None),
    };
    let port_ok = match given_port {
        Some(p) => p == port,
        None => port == 80 && !host.ends_with(':'),
    };
    // An IPv6 address is bracketed in a Host header; an IPv4 one or a name is not.
    let ip = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        None => name.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    };
    let name_ok = match ip {
        Some(ip) => {
            ip == IpAddr::from([127, 0, 0, 1])
                || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                || ip == listening.ip()
                || listening.ip().is_unspecified()
        }
        None => name.eq_ignore_ascii_case("localhost"),
    };
    port_ok && name_ok
}

/// Answers 403 to a request whose `Host` is not allowed ([`host_allowed`]).
async fn check_host(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if host_allowed(host, app.addr) {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "forbidden: the web view answers only requests for localhost or the address it listens on\n",
        )
            .into_response()
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// An API failure: a status and a message, answered as `{"error": message}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<RecordsError> for ApiError {
    fn from(e: RecordsError) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, e.to_string())
    }
}

type Answer = Result<Response, ApiError>;

/// The runs named by `runs=1,2,BASE` and the baseline (`baseline=`, else the first).
fn selection(
    registry: &Registry,
    q: &HashMap<String, String>,
) -> Result<(Vec<i64>, i64), ApiError> {
    let Some(list) = q.get("runs").filter(|s| !s.trim().is_empty()) else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "missing `runs`: e.g. /api/compare?runs=1,2".into(),
        ));
    };
    let ids = list
        .split(',')
        .map(|r| registry.resolve(r.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let baseline = match q.get("baseline") {
        Some(b) => registry.resolve(b)?,
        None => ids[0],
    };
    Ok((ids, baseline))
}

fn alpha(q: &HashMap<String, String>) -> Result<f64, ApiError> {
    match q.get("alpha") {
        None => Ok(0.05),
        Some(a) => match a.parse::<f64>() {
            Ok(a) if a > 0.0 && a < 1.0 => Ok(a),
            _ => Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("alpha {a:?}: expected a level between 0 and 1"),
            )),
        },
    }
}

async fn runs(State(app): State<Shared>) -> Answer {
    let registry = app.registry();
    let list = registry
        .list()
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let runs: Vec<Value> = list
        .iter()
        .rev()
        .map(|r| {
            json!({
                "id": r.id,
                "label": r.label,
                "name": r.name(),
                "date": r.provenance.date.clone().unwrap_or_else(|| r.recorded_at.clone()),
                "model": r.provenance.model,
                "tool": r.provenance.tool,
                "tasks": r.tasks.iter().filter(|t| !t.is_group).map(|t| &t.name).collect::<Vec<_>>(),
                "tags": r.tags,
                "meta": r.meta,
                "sample_tasks": r.sample_tasks,
            })
        })
        .collect();
    Ok(Json(json!({"registry": app.path.display().to_string(), "runs": runs})).into_response())
}

async fn compare_runs(
    State(app): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let registry = app.registry();
    let (ids, baseline) = selection(&registry, &q)?;
    let c = compare(&registry, &ids, baseline, alpha(&q)?)?;
    let order: Vec<i64> = c.runs.iter().map(|r| r.id).collect();
    let sample_tasks = registry.shared_sample_tasks(&order)?;
    Ok(Json(json!({
        "html": comparison_fragment(&c),
        "runs": c.runs.iter().map(|r| &r.name).collect::<Vec<_>>(),
        "ids": order,
        "baseline": c.baseline,
        "sample_tasks": sample_tasks,
        "comparison": c,
    }))
    .into_response())
}

async fn samples(State(app): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Answer {
    let registry = app.registry();
    let (ids, _) = selection(&registry, &q)?;
    let Some(task) = q.get("task") else {
        return Err(ApiError(StatusCode::BAD_REQUEST, "missing `task`".into()));
    };
    let docs = doc_rows(&registry, &ids, task, q.get("filter").map(String::as_str))?;
    Ok(Json(json!({"task": task, "docs": docs})).into_response())
}

async fn report(State(app): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Answer {
    let registry = app.registry();
    let (ids, baseline) = selection(&registry, &q)?;
    let c = compare(&registry, &ids, baseline, alpha(&q)?)?;
    let html = build_report(&registry, &c, usize::MAX, &now())?.html;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"assay-report.html\"",
            ),
        ],
        html,
    )
        .into_response())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn router(app: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", VIEW_HTML) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/assets/browser.js",
            get(|| async { asset("text/javascript; charset=utf-8", BROWSER_JS) }),
        )
        .route(
            "/assets/view.js",
            get(|| async { asset("text/javascript; charset=utf-8", VIEW_JS) }),
        )
        .route("/api/runs", get(runs))
        .route("/api/compare", get(compare_runs))
        .route("/api/samples", get(samples))
        .route("/api/report", get(report))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(middleware::from_fn_with_state(app.clone(), check_host))
        .with_state(app)
}

/// Serves the web view of `registry` on `addr` until Ctrl-C; `ready` hears the bound address
/// (the port is chosen by the system when `addr` has port 0).
pub fn serve(
    registry: Registry,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ViewError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ViewError::Bind { addr, source })?;
        let bound = listener.local_addr()?;
        ready(bound);
        let app = Arc::new(App {
            path: registry.path().to_path_buf(),
            registry: Mutex::new(registry),
            addr: bound,
        });
        axum::serve(listener, router(app))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    fn at(addr: &str) -> SocketAddr {
        addr.parse().unwrap()
    }

    #[test]
    fn only_the_listening_address_and_loopback_names_on_our_port_are_served() {
        let local = at("127.0.0.1:8711");
        for ok in [
            "127.0.0.1:8711",
            "localhost:8711",
            "LOCALHOST:8711",
            "[::1]:8711",
        ] {
            assert!(host_allowed(Some(ok), local), "{ok}");
        }
        for bad in [
            "evil.example:8711",
            "evil.example",
            "127.0.0.1.nip.io:8711",
            "localhost.evil.example:8711",
            "127.0.0.1:8712",
            "127.0.0.1",
            "localhost:",
            "::1",
            "[::1]",
            "[127.0.0.1]:8711",
            "::1:8711",
            "192.168.1.5:8711",
            "0.0.0.0:8711",
            "",
        ] {
            assert!(!host_allowed(Some(bad), local), "{bad}");
        }
        assert!(!host_allowed(None, local));
        assert!(host_allowed(Some("localhost"), at("127.0.0.1:80")));
        assert!(host_allowed(Some("[::1]"), at("[::1]:80")));
        // Listening on one address of the network: that address, and loopback names.
        let lan = at("192.168.1.5:8711");
        assert!(host_allowed(Some("192.168.1.5:8711"), lan));
        assert!(host_allowed(Some("localhost:8711"), lan));
        assert!(!host_allowed(Some("192.168.1.6:8711"), lan));
        assert!(!host_allowed(Some("evil.example:8711"), lan));
        // Listening on every address: any address, still no names.
        for every in [at("0.0.0.0:8711"), at("[::]:8711")] {
            assert!(host_allowed(Some("192.168.1.5:8711"), every));
            assert!(host_allowed(Some("[fe80::1]:8711"), every));
            assert!(!host_allowed(Some("evil.example:8711"), every));
            assert!(!host_allowed(Some("192.168.1.5:8712"), every));
        }
    }

    /// A view of an empty registry on a free port, served until the runtime is dropped.
    fn start(dir: &std::path::Path) -> (Shared, SocketAddr, tokio::runtime::Runtime) {
        let registry = Registry::open(&dir.join("runs.sqlite")).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Arc::new(App {
            path: registry.path().to_path_buf(),
            registry: Mutex::new(registry),
            addr,
        });
        let served = router(app.clone());
        runtime.spawn(async move { axum::serve(listener, served).await });
        (app, addr, runtime)
    }

    /// A raw GET with `host` as the `Host` header (none when `None`): status and body.
    fn get(addr: SocketAddr, host: Option<&str>, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        let host = host.map_or(String::new(), |h| format!("Host: {h}\r\n"));
        write!(s, "GET {path} HTTP/1.1\r\n{host}Connection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text.split(' ').nth(1).unwrap().parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    #[test]
    fn requests_for_another_host_get_403() {
        let dir = tempfile::tempdir().unwrap();
        let (_app, addr, _runtime) = start(dir.path());
        let port = addr.port();
        let (status, body) = get(addr, Some(&format!("127.0.0.1:{port}")), "/api/runs");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"runs\""), "{body}");
        let (status, _) = get(addr, Some(&format!("localhost:{port}")), "/");
        assert_eq!(status, 200);
        for host in [
            Some(format!("evil.example:{port}")),
            Some("evil.example:8711".into()),
            Some(format!("127.0.0.1:{}", port.wrapping_add(1))),
            None,
        ] {
            let (status, body) = get(addr, host.as_deref(), "/api/runs");
            assert_eq!(status, 403, "{host:?}: {body}");
            assert!(body.starts_with("forbidden:"), "{host:?}: {body}");
        }
    }

    #[test]
    fn a_handler_that_panicked_holding_the_registry_does_not_lock_out_later_requests() {
        let dir = tempfile::tempdir().unwrap();
        let (app, addr, _runtime) = start(dir.path());
        let holder = app.clone();
        let panicked = std::thread::spawn(move || {
            let _registry = holder.registry.lock().unwrap();
            panic!("a handler failed while holding the registry");
        })
        .join();
        assert!(panicked.is_err() && app.registry.is_poisoned());
        let host = format!("127.0.0.1:{}", addr.port());
        for _ in 0..2 {
            let (status, body) = get(addr, Some(&host), "/api/runs");
            assert_eq!(status, 200, "{body}");
        }
    }
}
