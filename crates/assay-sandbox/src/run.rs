//! Starting, limiting and timing sandboxed programs.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Execution, Outcome, SandboxError};

/// Resource limits of one program.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Address space in bytes (RLIMIT_AS).
    pub memory_bytes: u64,
    /// Processes (RLIMIT_NPROC, set inside the namespaces so that it counts the program's own
    /// processes only).
    pub processes: u64,
    /// Largest file it may write, in bytes (RLIMIT_FSIZE); its `/tmp` holds 64 MiB in all.
    pub file_bytes: u64,
    /// Wall-clock time before the whole process tree is killed.
    pub wall: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_seconds: 10,
            memory_bytes: 1 << 30,
            processes: 32,
            file_bytes: 16 << 20,
            wall: Duration::from_secs(15),
        }
    }
}

/// How programs are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// New network, PID and mount namespaces through `unshare` (and a user namespace when not
    /// root); as an unprivileged user of its own when root.
    Namespaces,
    /// No isolation beyond the limits, a temporary folder and a cleared environment
    /// (`--unsafe-no-sandbox`).
    Unsafe,
}

/// Runs Python programs under one isolation and set of limits.
#[derive(Debug, Clone)]
pub struct Sandbox {
    isolation: Isolation,
    limits: Limits,
    python: PathBuf,
    hidden: Vec<PathBuf>,
    root: bool,
}

/// Inside the namespaces, as (namespace) root: make every mount read-only (bind remounts
/// change this namespace's view only, never the file system), hide folders under empty tmpfs,
/// give the program a private /tmp, then drop every capability (an empty bounding set and
/// no_new_privs) and, when the caller was really root, become the program's own unprivileged
/// user; the harness (`$1`) then runs the job it reads on standard input.
const SETUP: &str = r#"set -e
harness=$1; shift
mount -n --make-rprivate /
for m in $(cut -d' ' -f5 /proc/self/mountinfo); do
  mount -n -o remount,bind,ro "$(printf '%b' "$m")" 2>/dev/null || true
done
for d in "$@"; do
  if [ -d "$d" ]; then mount -n -t tmpfs -o size=1m,mode=0755 assay-hidden "$d"; fi
done
for d in /dev/shm /var/tmp; do
  if [ -d "$d" ]; then mount -n -t tmpfs -o size=8m,mode=1777 assay-tmp "$d"; fi
done
mount -n -t tmpfs -o size=64m,mode=1777 assay-tmp /tmp
cd /tmp
if [ -n "$ASSAY_UID" ]; then
  set -- --reuid="$ASSAY_UID" --regid="$ASSAY_UID" --clear-groups
else
  set --
fi
exec setpriv "$@" --inh-caps=-all --bounding-set=-all --no-new-privs -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/tmp TMPDIR=/tmp "$ASSAY_PYTHON" -I -B -c "$harness"
"#;

/// The trusted half of every run (see its docstring): runs the tests in a process of its own
/// and writes the verdict to descriptor 3.
const HARNESS: &str = include_str!("harness.py");

/// The descriptor the harness writes its verdict to.
const VERDICT_FD: libc::c_int = 3;

/// Folders hidden from every program besides the home folders and the caller's: `/run` (the
/// host's sockets and locks) and every world-writable folder near the root.
fn host_folders_to_hide() -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/run")];
    let mut stack = vec![(PathBuf::from("/"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if ["/proc", "/sys", "/tmp", "/run"]
                .iter()
                .any(|p| path == Path::new(p))
            {
                continue;
            }
            // symlink_metadata: a link is not followed (nor hidden).
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_dir() {
                continue;
            }
            if meta.permissions().mode() & 0o002 != 0 {
                found.push(path);
            } else if depth < 2 {
                stack.push((path, depth + 1));
            }
        }
    }
    found
}

/// A user id of its own for each program (no such user exists: it owns nothing outside the
/// program's `/tmp`), so that the process limit, which counts a user's processes, is the
/// program's alone: a fork bomb cannot starve programs running beside it, in this assay or
/// another.
fn program_uid() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4096;
    1_000_000_000 + (std::process::id() % 4096) * 4096 + n
}

/// Output kept of a program's error stream.
const STDERR_KEPT: usize = 64 * 1024;

/// One program to judge: a trusted prompt, the untrusted solution, the trusted tests.
#[derive(Debug, Clone, Default)]
pub struct Job {
    /// Trusted code the tests may use (HumanEval: the prompt, whose helper functions the tests
    /// call); run by the harness beside the tests. Functions it only declares (a docstring or
    /// `pass` for a body) are the ones the solution writes.
    pub prompt: String,
    /// The untrusted program (HumanEval: the prompt followed by the model's completion); it
    /// runs in a process of its own, and the tests see only the plain data its functions return.
    pub solution: String,
    /// Trusted tests (HumanEval: the problem's `check` and `check(entry_point)`): the program
    /// passes when they run to their end without an exception.
    pub test: String,
}

impl Job {
    /// A lone program with no tests: it passes when it runs to its end without an exception.
    pub fn script(code: &str) -> Job {
        Job {
            solution: code.to_string(),
            ..Job::default()
        }
    }
}

impl Sandbox {
    /// A namespace sandbox, checked by judging one small program; an error says why none is
    /// available.
    pub fn detect(limits: Limits) -> Result<Sandbox, SandboxError> {
        let sandbox = Sandbox::new(Isolation::Namespaces, limits)?;
        let mut cmd = sandbox.unshare();
        cmd.args(["--", "true"]);
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| SandboxError::Unavailable(format!("`unshare` could not start ({e})")))?;
        if !out.status.success() {
            return Err(SandboxError::Unavailable(format!(
                "`unshare` refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        sandbox.probe()?;
        Ok(sandbox)
    }

    /// No isolation: only limits, a temporary folder and a cleared environment.
    pub fn unsafe_no_sandbox(limits: Limits) -> Result<Sandbox, SandboxError> {
        let sandbox = Sandbox::new(Isolation::Unsafe, limits)?;
        sandbox.probe()?;
        Ok(sandbox)
    }

    /// Judges a right and a wrong solution: a harness that cannot tell them apart (no ctypes
    /// for its protections, a broken Python) must stop the run, not score every item 0.
    fn probe(&self) -> Result<(), SandboxError> {
        let job = |body: &str| Job {
            prompt: "def inc(x):\n    \"\"\"x + 1\"\"\"\n".into(),
            solution: format!("def inc(x):\n    return {body}\n"),
            test: "assert inc(1) == 2\n".into(),
        };
        let right = self.run(&job("x + 1"))?.outcome;
        let wrong = self.run(&job("x"))?.outcome;
        if right != Outcome::Passed || wrong.label() != "failed" {
            return Err(SandboxError::Unavailable(format!(
                "the harness judged a right program {right:?} and a wrong one {wrong:?}"
            )));
        }
        Ok(())
    }

    fn new(isolation: Isolation, limits: Limits) -> Result<Sandbox, SandboxError> {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| SandboxError::NoPython("/usr/bin/python3".into()))?;
        let mut hidden: Vec<PathBuf> = vec!["/root".into(), "/home".into()];
        if let Some(home) = std::env::var_os("HOME") {
            hidden.push(home.into());
        }
        if isolation == Isolation::Namespaces {
            hidden.extend(host_folders_to_hide());
        }
        Ok(Sandbox {
            isolation,
            limits,
            python,
            hidden,
            // SAFETY: geteuid has no preconditions.
            root: unsafe { libc::geteuid() } == 0,
        })
    }

    /// Also hides `dir` (e.g. the run's output folder) from the programs.
    pub fn hide(mut self, dir: PathBuf) -> Sandbox {
        self.hidden.push(dir);
        self
    }

    /// The isolation in use.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    fn unshare(&self) -> Command {
        let mut cmd = Command::new("unshare");
        if !self.root {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args([
            "--net",
            "--pid",
            "--ipc",
            "--fork",
            "--kill-child",
            "--mount-proc",
        ]);
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }

    /// Judges one program: runs it to its end, a limit or the timeout. An error means the
    /// sandbox itself failed (it could not start, or the harness never began), never the
    /// program.
    pub fn run(&self, job: &Job) -> Result<Execution, SandboxError> {
        // Unsafe mode's working folder (namespaces give the program a private /tmp instead).
        let mut work = None;
        let mut cmd = match self.isolation {
            Isolation::Namespaces => {
                let mut cmd = self.unshare();
                cmd.env("ASSAY_PYTHON", &self.python);
                if self.root {
                    cmd.env("ASSAY_UID", program_uid().to_string());
                }
                cmd.args(["--", "/bin/sh", "-c", SETUP, "sh", HARNESS])
                    .args(&self.hidden);
                cmd
            }
            Isolation::Unsafe => {
                let dir = work.insert(
                    tempfile::Builder::new()
                        .prefix("assay-sandbox-")
                        .tempdir()?,
                );
                let mut cmd = Command::new(&self.python);
                cmd.args(["-I", "-B", "-c", HARNESS])
                    .current_dir(dir.path())
                    .env_clear()
                    .env("PATH", "/usr/bin:/bin")
                    .env("HOME", dir.path())
                    .env("TMPDIR", dir.path());
                cmd
            }
        };
        let (verdict_read, verdict_write) = verdict_pipe()?;
        let write_fd = verdict_write.as_raw_fd();
        let limits = self.limits;
        // SAFETY: only async-signal-safe calls (setsid, setrlimit, dup2, fcntl) run between
        // fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                if write_fd == VERDICT_FD {
                    if libc::fcntl(write_fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(write_fd, VERDICT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let set = |resource, value: u64| {
                    let l = libc::rlimit {
                        rlim_cur: value as libc::rlim_t,
                        rlim_max: value as libc::rlim_t,
                    };
                    if libc::setrlimit(resource, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                };
                set(libc::RLIMIT_CPU, limits.cpu_seconds)?;
                set(libc::RLIMIT_AS, limits.memory_bytes)?;
                set(libc::RLIMIT_FSIZE, limits.file_bytes)?;
                set(libc::RLIMIT_CORE, 0)?;
                Ok(())
            });
        }
        let start = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        drop(verdict_write);
        let input = serde_json::json!({
            "prompt": job.prompt,
            "solution": job.solution,
            "test": job.test,
            // Unisolated, RLIMIT_NPROC would count every process of the user: none is set.
            "processes": match self.isolation {
                Isolation::Namespaces => Some(limits.processes),
                Isolation::Unsafe => None,
            },
        })
        .to_string();
        let mut stdin = child.stdin.take().expect("piped");
        // A harness that dies before reading all of it is reported by its verdict (none).
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        let stderr = read_bounded(child.stderr.take().expect("piped"), STDERR_KEPT);
        let verdict = read_bounded(verdict_read, 64 * 1024);
        let pid = child.id() as libc::pid_t;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() >= limits.wall {
                timed_out = true;
                // The whole session: with namespaces, the death of `unshare` kills the
                // namespace's PID 1 and with it every process the program started.
                // SAFETY: kill has no memory-safety preconditions.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if self.isolation == Isolation::Unsafe {
            // Whatever the program left running in its session goes too.
            // SAFETY: as above.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let stderr = stderr.join().unwrap_or_default();
        let verdict = verdict.join().unwrap_or_default();
        drop(work);
        let elapsed = start.elapsed();
        let mut lines = verdict.lines();
        if lines.next() != Some("started") {
            if timed_out {
                return Ok(Execution {
                    outcome: Outcome::TimedOut,
                    elapsed,
                });
            }
            return Err(SandboxError::Setup(last_lines(&stderr, 3)));
        }
        let outcome = match lines.next().and_then(Outcome::from_verdict) {
            Some(outcome) => outcome,
            None if timed_out => Outcome::TimedOut,
            None => Outcome::without_verdict(status.signal(), status.code(), &stderr),
        };
        Ok(Execution { outcome, elapsed })
    }

    /// Judges `jobs` on `threads` threads; results in input order.
    pub fn run_many(&self, jobs: &[Job], threads: usize) -> Vec<Result<Execution, SandboxError>> {
        let threads = threads.clamp(1, jobs.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<Result<Execution, SandboxError>>>> =
            jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else {
                        break;
                    };
                    let r = self.run(job);
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                });
            }
        });
        results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .expect("every program ran")
            })
            .collect()
    }
}

/// A pipe for the verdict, both ends close-on-exec (the child's copy is made in `pre_exec`).
fn verdict_pipe() -> std::io::Result<(std::fs::File, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((std::fs::File::from(read), write))
}

/// Reads `from` to its end on a thread of its own, keeping the last `keep` bytes.
fn read_bounded(
    mut from: impl Read + Send + 'static,
    keep: usize,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > keep {
                kept.drain(..kept.len() - keep);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// The last `n` non-empty lines of `text`, joined with " | ".
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
