//! Live counters of a backend that sends requests over the network: requests answered, in flight, retried (by reason), failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

/// Why a request was tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryReason {
    /// 429 Too Many Requests.
    RateLimited,
    /// 503 Service Unavailable.
    Unavailable,
    /// Another 5xx status (or 408).
    ServerError,
    /// No complete answer within the per-request timeout.
    Timeout,
    /// The connection could not be made or was reset.
    Connection,
    /// The body was not the JSON the API describes (malformed, truncated, empty, wrong shape).
    Malformed,
}

impl RetryReason {
    /// Every reason, in display order.
    pub const ALL: [RetryReason; 6] = [
        RetryReason::RateLimited,
        RetryReason::Unavailable,
        RetryReason::ServerError,
        RetryReason::Timeout,
        RetryReason::Connection,
        RetryReason::Malformed,
    ];

    /// Short name for tables and the progress bar.
    pub fn name(self) -> &'static str {
        match self {
            RetryReason::RateLimited => "429",
            RetryReason::Unavailable => "503",
            RetryReason::ServerError => "5xx",
            RetryReason::Timeout => "timeout",
            RetryReason::Connection => "connection",
            RetryReason::Malformed => "malformed",
        }
    }
}

/// Counters shared between the client's workers and the progress bar.
#[derive(Debug)]
pub struct RequestStats {
    started: Instant,
    answered: AtomicU64,
    in_flight: AtomicU64,
    failed: AtomicU64,
    retries: [AtomicU64; 6],
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            started: Instant::now(),
            answered: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retries: Default::default(),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// Requests answered successfully.
    pub answered: u64,
    /// Requests that failed for good.
    pub failed: u64,
    /// Retries per reason, in [`RetryReason::ALL`] order, as (name, count).
    pub retries: Vec<(RetryReason, u64)>,
    /// Seconds since the client started.
    pub seconds: f64,
}

impl RequestStats {
    /// A request was sent.
    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request came back, answered (`ok`) or not.
    pub fn finished(&self, ok: bool) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if ok {
            self.answered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request failed for good (no retry left).
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A request is tried again, for `reason`.
    pub fn retried(&self, reason: RetryReason) {
        let i = RetryReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed");
        self.retries[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            answered: self.answered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retries: RetryReason::ALL
                .iter()
                .zip(&self.retries)
                .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
                .collect(),
            seconds: self.started.elapsed().as_secs_f64(),
        }
    }

    /// One line for the progress bar: throughput, requests in flight, retries by reason.
    pub fn line(&self) -> String {
        let s = self.snapshot();
        let mut line = format!(
            "{:.0} req/s, {} in flight",
            s.answered as f64 / s.seconds.max(1e-9),
            self.in_flight.load(Ordering::Relaxed)
        );
        let retried: Vec<String> = s
            .retries
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{}:{n}", r.name()))
            .collect();
        if !retried.is_empty() {
            line.push_str(&format!(", retries {}", retried.join(" ")));
        }
        if s.failed > 0 {
            line.push_str(&format!(", {} failed", s.failed));
        }
        line
    }
}
