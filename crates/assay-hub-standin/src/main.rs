//! `assay-hub-standin`: serve dataset repositories built from a benchmark data folder as the
//! Hugging Face Hub serves them, for trying assay (or Python's `datasets`) with `HF_ENDPOINT`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use assay_hub_standin::{build_repos, HubStandIn, Options, GATED_REPO, GATED_TOKEN, GPQA_REPO};
use clap::Parser;

/// A local stand-in for the Hugging Face Hub, serving dataset repositories in the real layouts.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example:\n  \
    assay-hub-standin --data-dir ../shared/data --root /tmp/hub --port 8090 &\n  \
    HF_ENDPOINT=http://127.0.0.1:8090 assay run --include-path lm_eval/tasks/arc --tasks arc_easy"
)]
struct Args {
    /// Benchmark data folder the repositories are built from [default: ../shared/data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Folder the repositories are written to and served from.
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// Serve `--root` as it is, without building it first.
    #[arg(long)]
    no_build: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    host: String,
    /// Port (0: any free port; the URL is printed).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Cut the first download of every LFS file after half its bytes.
    #[arg(long)]
    cut_first_download: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.no_build {
        let data = args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("../shared/data"));
        let repos = build_repos(&data, &args.root)
            .with_context(|| format!("building repositories from {}", data.display()))?;
        eprintln!("built {} repositories: {}", repos.len(), repos.join(", "));
        eprintln!("{GATED_REPO} and {GPQA_REPO} need HF_TOKEN={GATED_TOKEN}");
    }
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("--host {} --port {}: not an address", args.host, args.port))?;
    let server = HubStandIn::start(
        &args.root,
        addr,
        Options {
            cut_first_download: args.cut_first_download,
        },
    )
    .with_context(|| format!("listening on {addr}"))?;
    println!("{}", server.url());
    loop {
        std::thread::park();
    }
}
