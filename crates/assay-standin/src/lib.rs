//! A stand-in for an OpenAI-compatible server (vLLM, llama.cpp's server...), for tests and
//! benchmarks of assay's `openai` backend.
//!
//! It speaks `/v1/models`, `/v1/completions` (text or token-id prompts, `echo` + `logprobs`,
//! generation with stop strings and seeds) and `/v1/chat/completions`, answered by the embedded
//! llama.cpp engine (or, with `instant`, by a cheap deterministic function of the tokens, to
//! measure the client alone). It can inject faults into a chosen fraction of requests: 429 with
//! `Retry-After`, 500, 503, connection resets, slow replies, malformed JSON and truncated
//! bodies. HTTP is written by hand on tokio: faults need control of the bytes on the wire
//! that a server framework hides.

mod answer;
mod http;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// A fault the stand-in can inject instead of (or into) a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests with `Retry-After`.
    RateLimit,
    /// 500 Internal Server Error.
    ServerError,
    /// 503 Service Unavailable (no `Retry-After`).
    Unavailable,
    /// The connection is reset without a reply.
    Reset,
    /// The reply comes after the `slow` delay.
    Slow,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with a body cut short of its `Content-Length`.
    Truncated,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 7] = [
        Fault::RateLimit,
        Fault::ServerError,
        Fault::Unavailable,
        Fault::Reset,
        Fault::Slow,
        Fault::Malformed,
        Fault::Truncated,
    ];

    /// The fault's name on the command line and in `/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::RateLimit => "429",
            Fault::ServerError => "500",
            Fault::Unavailable => "503",
            Fault::Reset => "reset",
            Fault::Slow => "slow",
            Fault::Malformed => "malformed",
            Fault::Truncated => "truncated",
        }
    }

    /// The fault named `name`.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Which faults to inject, how often.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Fraction of completion requests that get a fault (0 to 1).
    pub rate: f64,
    /// The faults to choose from, uniformly.
    pub kinds: Vec<Fault>,
    /// Seed of the choice.
    pub seed: u64,
    /// Seconds a 429 asks the client to wait.
    pub retry_after: f64,
    /// Delay of a slow reply.
    pub slow: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate: 0.0,
            kinds: Fault::ALL.to_vec(),
            seed: 0,
            retry_after: 1.0,
            slow: Duration::from_secs(5),
        }
    }
}

/// What answers the requests.
#[derive(Debug, Clone)]
pub enum Backing {
    /// The embedded engine running this GGUF file with this many threads.
    Engine {
        /// The model.
        model: PathBuf,
        /// CPU threads.
        threads: usize,
    },
    /// Deterministic made-up log-probabilities and a fixed completion, using only the
    /// tokenizer of this GGUF file: to measure a client.
    Instant {
        /// The model whose tokenizer is used.
        model: PathBuf,
    },
}

/// A wrong answer the stand-in gives on purpose, as a broken or hostile server would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// Ignore `echo`: log-probabilities of the generated token only, as llama.cpp's server
    /// answers (llama.cpp #27174).
    IgnoreEcho,
    /// Every echoed token's log-probability is +0.7 (no probability has that).
    PositiveLogprobs,
    /// Every echoed token's log-probability is 0: every choice scores the same.
    ZeroLogprobs,
}

/// How the stand-in behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The model id it serves (other names get 404).
    pub model_name: String,
    /// What answers.
    pub backing: Backing,
    /// Injected faults.
    pub faults: Faults,
    /// Serve only `/v1/chat/completions` (404 on `/v1/completions`).
    pub chat_only: bool,
    /// Return `"logprobs": null` (a server without echo/logprobs support).
    pub no_logprobs: bool,
    /// Refuse token-id prompts with 422, as llama-cpp-python does.
    pub text_prompts_only: bool,
    /// Added before every completion reply.
    pub delay: Duration,
    /// A wrong answer given on purpose.
    pub lie: Option<Lie>,
}

/// Counters of a running stand-in.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    answered: AtomicU64,
    faults: [AtomicU64; 7],
    /// When the first completion request arrived and the last answer left.
    window: Mutex<Option<(Instant, Instant)>>,
}

impl Stats {
    /// The counters as JSON: requests received, completions answered, faults per kind.
    pub fn to_json(&self) -> Value {
        let faults: serde_json::Map<String, Value> = Fault::ALL
            .iter()
            .zip(&self.faults)
            .map(|(f, n)| (f.name().to_string(), json!(n.load(Ordering::Relaxed))))
            .collect();
        let window = self
            .window
            .lock()
            .expect("never poisoned")
            .map_or(0.0, |(first, last)| (last - first).as_secs_f64());
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "answered": self.answered.load(Ordering::Relaxed),
            "faults": faults,
            "seconds_first_request_to_last_answer": window,
        })
    }

    /// Notes a completion request arriving (`answered` false) or answered.
    pub(crate) fn mark(&self, answered: bool) {
        let now = Instant::now();
        let mut window = self.window.lock().expect("never poisoned");
        match window.as_mut() {
            None => *window = Some((now, now)),
            Some((_, last)) if answered => *last = now,
            Some(_) => {}
        }
        if answered {
            self.answered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Completion requests answered successfully.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Faults injected of `kind`.
    pub fn faults(&self, kind: Fault) -> u64 {
        let i = Fault::ALL.iter().position(|f| *f == kind).expect("listed");
        self.faults[i].load(Ordering::Relaxed)
    }
}

/// State shared by the connections.
pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) stats: Arc<Stats>,
    rng: Mutex<ChaCha8Rng>,
    pub(crate) engine: answer::EngineHandle,
}

impl Shared {
    /// The fault for the next completion request, if any.
    pub(crate) fn pick_fault(&self) -> Option<Fault> {
        let faults = &self.options.faults;
        if faults.rate <= 0.0 || faults.kinds.is_empty() {
            return None;
        }
        let mut rng = self.rng.lock().expect("never poisoned");
        if !rng.random_bool(faults.rate.min(1.0)) {
            return None;
        }
        let fault = faults.kinds[rng.random_range(0..faults.kinds.len())];
        let i = Fault::ALL.iter().position(|f| *f == fault).expect("listed");
        self.stats.faults[i].fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }
}

/// A running stand-in server.
pub struct StandIn {
    addr: SocketAddr,
    stats: Arc<Stats>,
}

impl StandIn {
    /// Loads the model, binds `addr` (port 0: any free port) and serves in the background
    /// until the process ends.
    pub fn start(options: Options, addr: SocketAddr) -> anyhow::Result<StandIn> {
        let engine = answer::EngineHandle::start(&options)?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(options.faults.seed)),
            options,
            stats: stats.clone(),
            engine,
        });
        std::thread::Builder::new()
            .name("standin-http".into())
            .spawn(move || http::serve(listener, shared))?;
        Ok(StandIn { addr, stats })
    }

    /// The base URL, ending in `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The live counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
