//! `assay view`: a local web view of the run registry.

use std::net::{IpAddr, SocketAddr};

use super::RegistryArgs;

/// Arguments of `assay view`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Open the printed address in a browser: tick runs, pick a baseline, \
    compare, and browse the documents where the runs disagree. Ctrl-C stops the server."
)]
pub struct ViewArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8711)]
    port: u16,
    /// Address to listen on. The view has no authentication: keep the default (this machine
    /// only) unless you trust the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
}

/// Runs `assay view`; returns the exit code.
pub fn run(args: ViewArgs) -> anyhow::Result<i32> {
    let registry = args.registry.open()?;
    if !args.host.is_loopback() {
        eprintln!(
            "warning: listening on {}: anyone who can reach this address can read the registry",
            args.host
        );
    }
    let path = registry.path().display().to_string();
    assay_report::serve(registry, SocketAddr::new(args.host, args.port), |addr| {
        println!("assay view of {path}: http://{addr}/");
    })?;
    Ok(0)
}
