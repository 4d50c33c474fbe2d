//! Running untrusted, model-written Python programs (HumanEval completions) safely.
//!
//! Each program runs in its own process tree, entered through util-linux's `unshare` into new
//! network, PID and mount namespaces: no network (only a down loopback), a private empty `/tmp`
//! as its working folder, empty tmpfs over the home folders and any folder the caller hides
//! (the run's outputs), its own PID 1 so that every process it starts dies with it. When assay
//! runs as root each program runs as an unprivileged user id of its own (so the process limit
//! is its alone and the file system is read-only to it); otherwise a user namespace maps the
//! caller's user, and files that user may write outside the hidden folders stay writable. Resource limits
//! (CPU seconds, address space, processes, file size) are set before the program starts, the
//! environment is cleared, and a wall-clock timeout kills the whole tree.

mod outcome;
mod passk;
mod run;

pub use outcome::{Execution, Outcome};
pub use passk::pass_at_k;
pub use run::{Isolation, Limits, Sandbox};

/// Why a program could not be run at all (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No way to isolate programs here.
    #[error("no sandbox is available: {0}; run on Linux with util-linux's `unshare` and user or network namespaces allowed, or pass --unsafe-no-sandbox to run model-written code unisolated (not recommended)")]
    Unavailable(String),
    /// The interpreter is missing.
    #[error("{0}: Python 3 is needed to run the programs (install python3)")]
    NoPython(String),
    /// Starting or waiting for the process failed.
    #[error("running a sandboxed program: {0}")]
    Io(#[from] std::io::Error),
}
