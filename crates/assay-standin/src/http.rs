//! HTTP/1.1 with keep-alive, by hand: requests with `Content-Length` bodies, replies with
//! `Content-Length`, and the injected faults written byte by byte.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::answer::Endpoint;
use crate::{Fault, Shared};

/// Largest request body accepted.
const MAX_BODY: usize = 64 << 20;

/// Serves connections on `listener` forever.
pub(crate) fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the stand-in's runtime starts");
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener).expect("a bound listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(stream, shared.clone()));
        }
    });
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    close: bool,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    let mut close = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().ok()?,
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    if length > MAX_BODY {
        return None;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        body,
        close,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        422 => "Unprocessable Entity",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn head(status: u16, length: usize, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n{extra}\r\n",
        reason(status)
    )
}

fn error_body(message: &str) -> Vec<u8> {
    json!({"error": {"message": message, "type": "invalid_request_error"}})
        .to_string()
        .into_bytes()
}

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader).await {
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let (status, body, fault) = respond(&request, &shared).await;
        let stream = reader.get_mut();
        let written = match fault {
            Some(Fault::Reset) => {
                // Close with a reset, no reply.
                let _ = stream.set_zero_linger();
                return;
            }
            Some(Fault::Truncated) => {
                let cut = body.len() / 2;
                let _ = stream.write_all(head(200, body.len(), "").as_bytes()).await;
                let _ = stream.write_all(&body[..cut]).await;
                let _ = stream.flush().await;
                return;
            }
            Some(Fault::RateLimit) => {
                let extra = format!("retry-after: {}\r\n", shared.options.faults.retry_after);
                write_reply(stream, 429, &error_body("rate limited (injected)"), &extra).await
            }
            Some(Fault::ServerError) => {
                write_reply(stream, 500, &error_body("internal error (injected)"), "").await
            }
            Some(Fault::Unavailable) => {
                write_reply(stream, 503, &error_body("overloaded (injected)"), "").await
            }
            Some(Fault::Malformed) => {
                write_reply(stream, 200, b"{\"choices\": [{\"text\": \"oops", "").await
            }
            Some(Fault::Slow) | None => write_reply(stream, status, &body, "").await,
        };
        if written.is_err() || request.close {
            return;
        }
    }
}

async fn write_reply(
    stream: &mut TcpStream,
    status: u16,
    body: &[u8],
    extra: &str,
) -> std::io::Result<()> {
    let mut bytes = head(status, body.len(), extra).into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await?;
    stream.flush().await
}

/// The reply to `request` (status, body) and the fault to inject into it.
async fn respond(request: &Request, shared: &Shared) -> (u16, Vec<u8>, Option<Fault>) {
    let path = request.path.split('?').next().unwrap_or("");
    let endpoint = match (request.method.as_str(), path) {
        ("GET", "/v1/models") => {
            let body = json!({"object": "list", "data": [
                {"id": shared.options.model_name, "object": "model", "owned_by": "assay-standin"}]});
            return (200, body.to_string().into_bytes(), None);
        }
        ("GET", "/stats") => return (200, shared.stats.to_json().to_string().into_bytes(), None),
        ("GET", "/health") => return (200, b"{\"status\": \"ok\"}".to_vec(), None),
        ("POST", "/v1/completions") if !shared.options.chat_only => Endpoint::Completions,
        ("POST", "/v1/chat/completions") => Endpoint::Chat,
        _ => return (404, error_body(&format!("no route {path}")), None),
    };
    shared.stats.mark(false);
    let fault = shared.pick_fault();
    if matches!(
        fault,
        Some(
            Fault::RateLimit
                | Fault::ServerError
                | Fault::Unavailable
                | Fault::Reset
                | Fault::Malformed
        )
    ) {
        // The reply is replaced: nothing to compute.
        return (0, Vec::new(), fault);
    }
    if fault == Some(Fault::Slow) {
        tokio::time::sleep(shared.options.faults.slow).await;
    }
    if !shared.options.delay.is_zero() {
        tokio::time::sleep(shared.options.delay).await;
    }
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(e) => return (400, error_body(&format!("body is not JSON: {e}")), fault),
    };
    if body["model"].as_str() != Some(shared.options.model_name.as_str()) {
        let message = format!("The model `{}` does not exist.", body["model"]);
        return (404, error_body(&message), fault);
    }
    match shared.engine.answer(endpoint, body).await {
        Ok(reply) => {
            if fault.is_none() || fault == Some(Fault::Slow) {
                shared.stats.mark(true);
            }
            (200, reply.to_string().into_bytes(), fault)
        }
        Err(refusal) => (refusal.status, error_body(&refusal.message), fault),
    }
}
