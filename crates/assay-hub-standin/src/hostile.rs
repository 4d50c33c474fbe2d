//! A hostile Hub: answers in the Hub's shape whose names, sizes, redirects or pacing attack the
//! client (a path out of the cache, a token sent elsewhere, a body without end, a stall), and a
//! record of what each request carried. Plain `std::net`, one thread per connection, so a reply
//! can stall or stream forever.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the hostile server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The path and query.
    pub target: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// What the server sends back.
pub enum Reply {
    /// A status, headers and a whole body.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// A 200 with headers, then a body that never ends.
    Endless(Vec<(String, String)>),
    /// A 200 with headers and the first bytes of a body, then silence.
    Stall(Vec<(String, String)>, Vec<u8>),
}

/// Decides each reply from the request's path and query.
pub type Script = dyn Fn(&str) -> Reply + Send + Sync;

/// A running hostile server.
pub struct HostileHub {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl HostileHub {
    /// Serves `script` on a free local port in background threads.
    pub fn start(script: Box<Script>) -> std::io::Result<HostileHub> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (script, record): (Arc<Script>, _) = (Arc::from(script), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (script, record) = (script.clone(), record.clone());
                std::thread::spawn(move || serve(stream, &*script, &record));
            }
        });
        Ok(HostileHub { url, seen })
    }

    /// The endpoint, for `HF_ENDPOINT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Headers the Hub sends for a file: the commit, the ETag, the size.
pub fn file_headers(commit: &str, etag: &str, size: u64) -> Vec<(String, String)> {
    vec![
        ("x-repo-commit".into(), commit.into()),
        ("x-linked-etag".into(), format!("\"{etag}\"")),
        ("x-linked-size".into(), size.to_string()),
    ]
}

/// A repository listing with `sha` and the files `names`.
pub fn listing(sha: &str, names: &[&str]) -> Reply {
    let siblings: Vec<_> = names
        .iter()
        .map(|n| serde_json::json!({ "rfilename": n }))
        .collect();
    let body = serde_json::json!({ "sha": sha, "siblings": siblings }).to_string();
    Reply::Full(200, vec![], body.into_bytes())
}

fn serve(mut stream: TcpStream, script: &Script, seen: &Mutex<Vec<Seen>>) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("authorization") {
                    authorization = Some(value.trim().to_string());
                }
            }
        }
        if let Ok(mut s) = seen.lock() {
            s.push(Seen {
                target: target.clone(),
                authorization,
            });
        }
        if !answer(&mut stream, script(&target)) {
            return;
        }
    }
}

/// Writes `reply`; false when the connection is done.
fn answer(stream: &mut TcpStream, reply: Reply) -> bool {
    let head = |status: u16, headers: &[(String, String)], length: Option<usize>| {
        let mut text = format!("HTTP/1.1 {status} X\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(length) = length {
            text.push_str(&format!("content-length: {length}\r\n"));
        }
        text.push_str("\r\n");
        text.into_bytes()
    };
    match reply {
        Reply::Full(status, headers, body) => {
            let sent = stream.write_all(&head(status, &headers, Some(body.len())));
            sent.and_then(|()| stream.write_all(&body)).is_ok()
        }
        Reply::Endless(headers) => {
            let mut headers = headers;
            headers.push(("connection".into(), "close".into()));
            if stream.write_all(&head(200, &headers, None)).is_err() {
                return false;
            }
            let chunk = vec![b'x'; 1 << 16];
            while stream.write_all(&chunk).is_ok() {}
            false
        }
        Reply::Stall(headers, first) => {
            let length = first.len() + (1 << 20);
            let _ = stream.write_all(&head(200, &headers, Some(length)));
            let _ = stream.write_all(&first);
            let _ = stream.flush();
            std::thread::sleep(Duration::from_secs(600));
            false
        }
    }
}
