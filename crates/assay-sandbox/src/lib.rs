//! Running untrusted, model-written Python programs (HumanEval completions) safely, and judging
//! them so that no program can fake a pass.
//!
//! Each program runs in its own process tree, entered through util-linux's `unshare` into new
//! network, PID, IPC and mount namespaces: no network (only a down loopback), every mount
//! read-only, a private empty `/tmp` as its working folder, empty tmpfs over the home folders,
//! `/run`, every world-writable host folder and any folder the caller hides (the run's outputs),
//! its own PID 1 so that every process it starts dies with it. Every capability is dropped
//! (empty bounding set, no_new_privs) before Python starts; as root each program also runs as an
//! unprivileged user id of its own. Resource limits (CPU seconds, address space, file size; the
//! process count inside the namespaces, so that it counts the program's processes only) are
//! set before the program starts, the environment is cleared, and a wall-clock timeout kills
//! the whole tree.
//!
//! Judging (`harness.py`): the tests run in a trusted process, the solution in a child that
//! answers calls with plain data over a pipe; the verdict goes to a descriptor only the trusted
//! process holds. Exit codes, printed markers, patched builtins, forged `__eq__` and exit hooks
//! therefore count for nothing: a pass means the tests ran to their end.

mod outcome;
mod passk;
mod run;

pub use outcome::{Execution, Outcome};
pub use passk::pass_at_k;
pub use run::{Isolation, Job, Limits, Sandbox};

/// Why a program could not be run at all (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No way to isolate programs here.
    #[error("no sandbox is available: {0}; run on Linux with util-linux's `unshare` and user or network namespaces allowed, or pass --unsafe-no-sandbox to run model-written code unisolated (not recommended)")]
    Unavailable(String),
    /// The interpreter is missing.
    #[error("{0}: Python 3 is needed to run the programs (install python3)")]
    NoPython(String),
    /// The sandbox did not come up for a program (a mount, the privilege drop or the harness
    /// failed before the program ran): its error output.
    #[error("the sandbox failed to start a program: {0}; check that user namespaces and mounts are allowed here (or pass --unsafe-no-sandbox)")]
    Setup(String),
    /// Starting or waiting for the process failed.
    #[error("running a sandboxed program: {0}")]
    Io(#[from] std::io::Error),
}
