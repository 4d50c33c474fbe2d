//! `assay-standin`: serve a GGUF model behind an OpenAI-compatible API, with injected faults,
//! for trying and benchmarking `assay run --backend openai`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use assay_standin::{Backing, Fault, Faults, Lie, Options, StandIn};
use clap::Parser;

/// A local stand-in for an OpenAI-compatible server, backed by assay's embedded engine.
#[derive(Parser)]
#[command(
    version,
    after_help = "Examples:\n  \
    assay-standin --port 8000\n  \
    assay-standin --port 8000 --fault-rate 0.2 --retry-after 0.5 --slow-ms 3000\n  \
    assay-standin --port 8000 --instant      # made-up scores, to measure a client\n\n\
    GET /stats gives the requests received and the faults injected."
)]
struct Args {
    /// GGUF model file, or `default` for the model installed by scripts/setup.sh.
    #[arg(long, default_value = "default", value_name = "PATH")]
    model: String,
    /// The model id served (requests naming another get 404).
    #[arg(long, default_value = "gemma-3-270m", value_name = "NAME")]
    model_name: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    host: String,
    /// Port (0: any free port; the URL is printed).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// CPU threads of the engine [default: all cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Answer at once with made-up (deterministic) scores, loading only the tokenizer.
    #[arg(long)]
    instant: bool,
    /// Fraction of completion requests that get a fault.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    fault_rate: f64,
    /// Faults to choose from: 429, 500, 503, reset, slow, malformed, truncated.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "429,500,503,reset,slow,malformed,truncated"
    )]
    faults: Vec<String>,
    /// Seed of the fault choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seconds a 429 asks the client to wait (Retry-After).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    retry_after: f64,
    /// Delay of a `slow` fault in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    slow_ms: u64,
    /// Delay added before every completion reply, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    delay_ms: u64,
    /// Serve only /v1/chat/completions.
    #[arg(long)]
    chat_only: bool,
    /// Answer without log-probabilities (`"logprobs": null`).
    #[arg(long)]
    no_logprobs: bool,
    /// Refuse token-id prompts (422), as llama-cpp-python's server does.
    #[arg(long)]
    text_prompts_only: bool,
    /// Answer wrongly on purpose: `ignore-echo` (as llama.cpp's server does),
    /// `positive-logprobs` or `zero-logprobs`.
    #[arg(long, value_name = "LIE")]
    lie: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let model = if args.model == "default" {
        assay_dirs::default_model_path()
    } else {
        PathBuf::from(&args.model)
    };
    if !(0.0..=1.0).contains(&args.fault_rate) {
        bail!(
            "--fault-rate {}: expected a fraction between 0 and 1",
            args.fault_rate
        );
    }
    let kinds = args
        .faults
        .iter()
        .map(|name| {
            Fault::from_name(name).with_context(|| {
                format!("--faults: unknown fault `{name}` (429, 500, 503, reset, slow, malformed, truncated)")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let backing = if args.instant {
        Backing::Instant { model }
    } else {
        Backing::Engine {
            model,
            threads: args
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    };
    let options = Options {
        model_name: args.model_name,
        backing,
        faults: Faults {
            rate: args.fault_rate,
            kinds,
            seed: args.seed,
            retry_after: args.retry_after,
            slow: Duration::from_millis(args.slow_ms),
        },
        chat_only: args.chat_only,
        no_logprobs: args.no_logprobs,
        text_prompts_only: args.text_prompts_only,
        delay: Duration::from_millis(args.delay_ms),
        lie: match args.lie.as_deref() {
            None => None,
            Some("ignore-echo") => Some(Lie::IgnoreEcho),
            Some("positive-logprobs") => Some(Lie::PositiveLogprobs),
            Some("zero-logprobs") => Some(Lie::ZeroLogprobs),
            Some(other) => {
                bail!("--lie {other}: expected ignore-echo, positive-logprobs or zero-logprobs")
            }
        },
    };
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("--host {} --port {}: not an address", args.host, args.port))?;
    let server = StandIn::start(options, addr)?;
    println!("listening on {}", server.url());
    loop {
        std::thread::park();
    }
}
