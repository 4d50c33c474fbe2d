//! The asynchronous HTTP client: a batch of JSON requests sent to one or more replicas of a
//! server, at most `concurrency` at a time per replica, retried when a reply fails.
//!
//! Work is spread by load: every replica runs `concurrency` workers that take the next request
//! from one shared queue, so a faster replica takes more, and a request that failed on one
//! replica goes back to the queue where any other replica can take it at once; the replica it
//! failed on may try it again only after a wait: the time a 429 or 503 asked for in
//! `Retry-After` (which also pauses that replica), else an exponential backoff with jitter.
//! A replica whose connections fail three times in a row rests, taking nothing. Each request
//! is tried at most `1 + max_retries` times. Everything runs on one thread (a current-thread
//! tokio runtime), so answers reach the caller's sink in order of arrival without locks.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::sync::Notify;

use super::protocol::{error_message, model_ids, Failure};
use super::redact_credentials;
use assay_backend::BackendError;
use assay_backend::{RequestStats, RetryReason};

/// Longest pause a `Retry-After` header may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// First backoff step; doubled per attempt up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// Longest backoff between two attempts of one request.
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Connection failures in a row after which a replica rests before it is tried again.
const FAILURES_BEFORE_REST: u32 = 3;

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Base URLs of the replicas, e.g. `http://host:8000/v1`.
    pub base_urls: Vec<String>,
    /// Requests in flight at once per replica.
    pub concurrency: usize,
    /// Longest wait for one complete reply.
    pub timeout: Duration,
    /// Retries per request after its first attempt.
    pub max_retries: u32,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
}

/// Reads the answer of job `index` from a reply body.
pub type Parser<'a, T> = dyn Fn(usize, &[u8]) -> Result<T, Failure> + 'a;

/// One request of a batch: a JSON body for an endpoint path below the base URL.
#[derive(Debug, Clone)]
pub struct Job {
    /// Path below the base URL, e.g. `/completions`.
    pub path: &'static str,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// What became of one attempt.
enum Attempt<T> {
    Answered(T),
    Retry {
        reason: RetryReason,
        after: Option<Duration>,
        detail: String,
    },
    Fatal(String),
}

struct Replica {
    base: String,
    paused_until: Cell<Option<Instant>>,
    failures_in_row: Cell<u32>,
}

impl Replica {
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        if self.paused_until.get().is_none_or(|u| u < until) {
            self.paused_until.set(Some(until));
        }
    }
}

/// The HTTP client of the OpenAI-compatible backend.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    settings: ClientSettings,
    stats: Arc<RequestStats>,
}

impl Client {
    /// A client for `settings` (no connection is made yet).
    pub fn new(settings: ClientSettings) -> Result<Client, BackendError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BackendError::Server(format!("cannot start the async runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(settings.concurrency.max(1))
            .build()
            .map_err(|e| BackendError::Server(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            runtime,
            http,
            settings,
            stats: Arc::new(RequestStats::default()),
        })
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<RequestStats> {
        self.stats.clone()
    }

    /// Checks that every reachable replica serves `model` (`GET /models`; a server without
    /// that endpoint passes) and returns the indices of the reachable ones. An unknown model is
    /// an error, and so is no replica reachable; unreachable replicas are left to the workers
    /// (their requests go to the others), and described in `unreachable`.
    pub fn check_model(
        &self,
        model: &str,
        unreachable: &mut Vec<String>,
    ) -> Result<Vec<usize>, BackendError> {
        self.runtime.block_on(async {
            let mut reachable = Vec::new();
            for (index, base) in self.settings.base_urls.iter().enumerate() {
                let url = format!("{}/models", base.trim_end_matches('/'));
                let shown = redact_credentials(&url);
                let reply = self
                    .http
                    .get(&url)
                    .headers(self.headers())
                    .timeout(self.settings.timeout.min(Duration::from_secs(30)))
                    .send()
                    .await;
                let reply = match reply {
                    Ok(r) => r,
                    Err(e) => {
                        unreachable.push(format!(
                            "cannot reach {shown}: {} (is the server running, and is --base-url right? it usually ends in /v1)",
                            error_chain(&e)
                        ));
                        continue;
                    }
                };
                reachable.push(index);
                let status = reply.status();
                let body = reply.bytes().await.unwrap_or_default();
                if status == StatusCode::NOT_FOUND {
                    // No /models: the model name is checked by the first request.
                    continue;
                }
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(BackendError::Server(format!(
                        "{shown} answered {status}: {} (set the key's variable named by --api-key-env)",
                        error_message(&body)
                    )));
                }
                if !status.is_success() {
                    return Err(BackendError::Server(format!(
                        "{shown} answered {status}: {}",
                        error_message(&body)
                    )));
                }
                let ids = model_ids(&body).unwrap_or_default();
                if !ids.is_empty() && !ids.iter().any(|id| id == model) {
                    return Err(BackendError::Server(format!(
                        "{} does not serve a model named `{model}`; it serves: {} (pass one of them as --model-name)",
                        redact_credentials(base),
                        ids.join(", ")
                    )));
                }
            }
            if reachable.is_empty() {
                return Err(BackendError::Server(unreachable.join("; ")));
            }
            Ok(reachable)
        })
    }

    /// Sends one request to replica `replica` and returns the status of its reply, retrying
    /// transient failures (429, 5xx, connection errors) like any request.
    pub fn probe(&self, job: &Job, replica: usize) -> Result<u16, BackendError> {
        let base = self.settings.base_urls[replica].trim_end_matches('/');
        let url = format!("{base}{}", job.path);
        let shown = redact_credentials(&url);
        self.runtime.block_on(async {
            let mut attempt = 0;
            loop {
                let reply = self
                    .http
                    .post(&url)
                    .headers(self.headers())
                    .body(job.body.clone())
                    .send()
                    .await;
                let last = attempt >= self.settings.max_retries;
                match reply {
                    Ok(r)
                        if !(r.status() == StatusCode::TOO_MANY_REQUESTS
                            || r.status().is_server_error())
                            || last =>
                    {
                        return Ok(r.status().as_u16());
                    }
                    Err(e) if last => {
                        return Err(BackendError::Server(format!(
                            "{shown}: {}",
                            error_chain(&e)
                        )))
                    }
                    _ => tokio::time::sleep(backoff(attempt)).await,
                }
                attempt += 1;
            }
        })
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json".parse().expect("valid"));
        if let Some(key) = &self.settings.api_key {
            if let Ok(v) = format!("Bearer {key}").parse() {
                headers.insert(AUTHORIZATION, v);
            }
        }
        headers
    }

    /// Sends every job and hands each reply, read by `parse`, to `done(job index, answer)` as
    /// it arrives. On a request that fails for good, no new request starts, the ones in flight
    /// finish (and reach `done`), and the error is returned.
    pub fn run<T>(
        &self,
        jobs: &[Job],
        parse: &Parser<'_, T>,
        done: &mut dyn FnMut(usize, T),
    ) -> Result<(), BackendError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let replicas: Vec<Replica> = self
            .settings
            .base_urls
            .iter()
            .map(|b| Replica {
                base: b.trim_end_matches('/').to_string(),
                paused_until: Cell::new(None),
                failures_in_row: Cell::new(0),
            })
            .collect();
        let shared = Shared {
            queue: RefCell::new(
                (0..jobs.len())
                    .map(|index| Queued {
                        index,
                        attempt: 0,
                        failed_on: None,
                        ready_at: Instant::now(),
                    })
                    .collect(),
            ),
            remaining: Cell::new(jobs.len()),
            wake: Notify::new(),
            fatal: RefCell::new(None),
            done: RefCell::new(done),
        };
        let headers = self.headers();
        self.runtime.block_on(async {
            let workers = replicas.iter().enumerate().flat_map(|(r, replica)| {
                (0..self.settings.concurrency.max(1))
                    .map(move |_| (r, replica))
                    .map(|(r, replica)| self.worker(r, replica, jobs, parse, &shared, &headers))
            });
            futures_util::future::join_all(workers).await;
        });
        match shared.fatal.into_inner() {
            Some(message) => Err(BackendError::Server(message)),
            None => Ok(()),
        }
    }

    async fn worker<T>(
        &self,
        r: usize,
        replica: &Replica,
        jobs: &[Job],
        parse: &Parser<'_, T>,
        shared: &Shared<'_, T>,
        headers: &HeaderMap,
    ) {
        loop {
            if shared.fatal.borrow().is_some() || shared.remaining.get() == 0 {
                return;
            }
            // A resting replica takes nothing: its requests stay free for the others.
            if let Some(until) = replica.paused_until.get() {
                if until > Instant::now() {
                    tokio::time::sleep_until(until.into()).await;
                    continue;
                }
            }
            let Some(item) = shared.take(r) else {
                // Nothing this replica may take now: wait for new work, or for a request that
                // failed here to be due again.
                let wait = shared.next_due(r).map_or(Duration::from_secs(1), |due| {
                    due.saturating_duration_since(Instant::now())
                });
                let _ = tokio::time::timeout(wait, shared.wake.notified()).await;
                continue;
            };
            let Queued { index, attempt, .. } = item;
            let job = &jobs[index];
            let url = format!("{}{}", replica.base, job.path);
            let shown = redact_credentials(&url);
            self.stats.started();
            let outcome = self.attempt(&url, job, headers, index, parse).await;
            match outcome {
                Attempt::Answered(answer) => {
                    self.stats.finished(true);
                    replica.failures_in_row.set(0);
                    (shared.done.borrow_mut())(index, answer);
                    shared.remaining.set(shared.remaining.get() - 1);
                    if shared.remaining.get() == 0 {
                        shared.wake.notify_waiters();
                    }
                }
                Attempt::Retry {
                    reason,
                    after,
                    detail,
                } => {
                    self.stats.finished(false);
                    if attempt >= self.settings.max_retries {
                        self.stats.failed();
                        shared.fail(format!(
                            "a request failed {} times (--max-retries {}); last: {shown}: {detail}",
                            attempt + 1,
                            self.settings.max_retries
                        ));
                        continue;
                    }
                    self.stats.retried(reason);
                    tracing::debug!("retrying after {}: {shown}: {detail}", reason.name());
                    if reason == RetryReason::Connection {
                        let failures = replica.failures_in_row.get() + 1;
                        replica.failures_in_row.set(failures);
                        if failures >= FAILURES_BEFORE_REST {
                            replica.pause(backoff(failures - FAILURES_BEFORE_REST));
                        }
                    }
                    // This replica tries the request again after the wait (Retry-After, else
                    // backoff); any other replica may take it at once.
                    let wait = match after {
                        Some(wait) => {
                            replica.pause(wait);
                            wait
                        }
                        None => backoff(attempt),
                    };
                    shared.queue.borrow_mut().push_back(Queued {
                        index,
                        attempt: attempt + 1,
                        failed_on: Some(r),
                        ready_at: Instant::now() + wait,
                    });
                    shared.wake.notify_waiters();
                }
                Attempt::Fatal(message) => {
                    self.stats.finished(false);
                    self.stats.failed();
                    shared.fail(message);
                }
            }
        }
    }

    async fn attempt<T>(
        &self,
        url: &str,
        job: &Job,
        headers: &HeaderMap,
        index: usize,
        parse: &Parser<'_, T>,
    ) -> Attempt<T> {
        let shown = redact_credentials(url);
        let reply = self
            .http
            .post(url)
            .headers(headers.clone())
            .body(job.body.clone())
            .send()
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    reason: if e.is_timeout() {
                        RetryReason::Timeout
                    } else {
                        RetryReason::Connection
                    },
                    after: None,
                    detail: error_chain(&e),
                }
            }
        };
        let status = reply.status();
        let retry_after = retry_after(reply.headers());
        let body = match read_capped(reply, MAX_REPLY_BYTES).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Attempt::Fatal(format!(
                    "{shown}: the reply ({status}) is longer than {} MiB, far beyond any completion; is this an OpenAI-compatible endpoint?",
                    MAX_REPLY_BYTES >> 20
                ))
            }
            Err(e) => {
                return Attempt::Retry {
                    reason: if e.is_timeout() {
                        RetryReason::Timeout
                    } else {
                        RetryReason::Malformed
                    },
                    after: None,
                    detail: format!("incomplete body: {}", error_chain(&e)),
                }
            }
        };
        let detail = || format!("{status}: {}", error_message(&body));
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Attempt::Retry {
                reason: RetryReason::RateLimited,
                after: retry_after,
                detail: detail(),
            };
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return Attempt::Retry {
                reason: RetryReason::Unavailable,
                after: retry_after,
                detail: detail(),
            };
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return Attempt::Retry {
                reason: RetryReason::ServerError,
                after: None,
                detail: detail(),
            };
        }
        if !status.is_success() {
            return Attempt::Fatal(format!(
                "{shown} answered {}{}",
                detail(),
                if status == StatusCode::NOT_FOUND {
                    " (does the server have this endpoint? --api chat for chat-only servers; is --model-name right?)"
                } else {
                    ""
                }
            ));
        }
        match parse(index, &body) {
            Ok(answer) => Attempt::Answered(answer),
            Err(Failure::Malformed(m)) => Attempt::Retry {
                reason: RetryReason::Malformed,
                after: None,
                detail: m,
            },
            Err(Failure::Unsupported(m)) => Attempt::Fatal(format!("{shown}: {m}")),
        }
    }
}

/// The longest reply body read; a longer one is an error, so that a broken server cannot make
/// memory grow without bound.
pub const MAX_REPLY_BYTES: usize = 64 << 20;

/// The body of `reply`, or `None` once it passes `cap` bytes (the rest is not read).
async fn read_capped(
    mut reply: reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if reply.content_length().is_some_and(|n| n > cap as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = reply.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A request waiting to be sent.
struct Queued {
    /// The job.
    index: usize,
    /// Attempts so far.
    attempt: u32,
    /// The replica its last attempt failed on.
    failed_on: Option<usize>,
    /// When that replica may try it again (others may at once).
    ready_at: Instant,
}

/// State the workers of one batch share (on one thread).
struct Shared<'a, T> {
    /// Requests waiting to be sent, oldest first.
    queue: RefCell<VecDeque<Queued>>,
    /// Jobs not yet answered.
    remaining: Cell<usize>,
    /// Wakes idle workers when work is queued or the batch ends.
    wake: Notify,
    /// The first failure that stops the batch.
    fatal: RefCell<Option<String>>,
    done: RefCell<&'a mut dyn FnMut(usize, T)>,
}

impl<T> Shared<'_, T> {
    /// The first waiting request replica `r` may send now: any request, except one that failed
    /// on `r` and is not yet due there.
    fn take(&self, r: usize) -> Option<Queued> {
        let mut queue = self.queue.borrow_mut();
        let now = Instant::now();
        let position = queue
            .iter()
            .position(|q| q.failed_on != Some(r) || q.ready_at <= now)?;
        queue.remove(position)
    }

    /// When the earliest request that failed on replica `r` is due there again.
    fn next_due(&self, r: usize) -> Option<Instant> {
        self.queue
            .borrow()
            .iter()
            .filter(|q| q.failed_on == Some(r))
            .map(|q| q.ready_at)
            .min()
    }

    fn fail(&self, message: String) {
        self.fatal.borrow_mut().get_or_insert(message);
        self.wake.notify_waiters();
    }
}

/// Exponential backoff with jitter: a random wait between half and all of
/// `BASE_BACKOFF * 2^attempt` (at most [`MAX_BACKOFF`]).
fn backoff(attempt: u32) -> Duration {
    let full = BASE_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    full.mul_f64(rand::random_range(0.5..=1.0))
}

/// `Retry-After`: seconds, or an HTTP date (the wait until then; none when it has passed);
/// at most [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, std::time::SystemTime::now())
}

/// [`retry_after`] as read at `now`.
fn retry_after_at(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return None,
        Err(_) => httpdate::parse_http_date(text)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An error with its causes, `a: b: c`.
/// `e` and its sources, without a password written into a URL (reqwest's errors name the URL).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    redact_credentials(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            let full = BASE_BACKOFF
                .saturating_mul(1 << attempt.min(16))
                .min(MAX_BACKOFF);
            assert!(d <= full && d >= full / 2, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_caps_them() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "0.5".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        h.insert(RETRY_AFTER, "100000".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "-3".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_honours_an_http_date() {
        let mut h = HeaderMap::new();
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        let date = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let before = date - Duration::from_secs(7);
        assert_eq!(retry_after_at(&h, before), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after_at(&h, date - Duration::from_secs(3600)),
            Some(MAX_RETRY_AFTER)
        );
        // Already past: try again at once.
        assert_eq!(
            retry_after_at(&h, date + Duration::from_secs(1)),
            Some(Duration::ZERO)
        );
    }
}
