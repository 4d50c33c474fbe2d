//! Starting, limiting and timing sandboxed programs.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
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
    /// Processes (RLIMIT_NPROC; enforced when assay runs as root, since each program then runs
    /// as a user of its own).
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

/// Inside the namespaces, as (namespace) root: hide folders under empty tmpfs, give the program
/// a private /tmp, then drop to the program's own unprivileged user when the caller was really
/// root.
const SETUP: &str = r#"set -e
mount --make-rprivate /
for d in "$@"; do
  if [ -d "$d" ]; then mount -t tmpfs -o size=1m,mode=0755 assay-hidden "$d"; fi
done
for d in /dev/shm /var/tmp; do
  if [ -d "$d" ]; then mount -t tmpfs -o size=8m,mode=1777 assay-tmp "$d"; fi
done
mount -t tmpfs -o size=64m,mode=1777 assay-tmp /tmp
cat > /tmp/program.py
chmod 0644 /tmp/program.py
cd /tmp
if [ -n "$ASSAY_UID" ]; then
  exec setpriv --reuid="$ASSAY_UID" --regid="$ASSAY_UID" --clear-groups --inh-caps=-all -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/tmp TMPDIR=/tmp "$ASSAY_PYTHON" -I -B program.py
fi
exec env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/tmp TMPDIR=/tmp "$ASSAY_PYTHON" -I -B program.py
"#;

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

impl Sandbox {
    /// A namespace sandbox, checked by starting one empty program; an error says why none is
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
        Ok(sandbox)
    }

    /// No isolation: only limits, a temporary folder and a cleared environment.
    pub fn unsafe_no_sandbox(limits: Limits) -> Result<Sandbox, SandboxError> {
        Sandbox::new(Isolation::Unsafe, limits)
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
        cmd.args(["--net", "--pid", "--fork", "--kill-child", "--mount-proc"]);
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }

    /// Runs one program to its end, a limit or the timeout.
    pub fn run(&self, program: &str) -> Result<Execution, SandboxError> {
        // Unsafe mode's working folder (namespaces give the program a private /tmp instead).
        let mut work = None;
        let mut cmd = match self.isolation {
            Isolation::Namespaces => {
                let mut cmd = self.unshare();
                cmd.env("ASSAY_PYTHON", &self.python);
                if self.root {
                    cmd.env("ASSAY_UID", program_uid().to_string());
                }
                cmd.args(["--", "/bin/sh", "-c", SETUP, "sh"])
                    .args(&self.hidden);
                cmd
            }
            Isolation::Unsafe => {
                let dir = work.insert(
                    tempfile::Builder::new()
                        .prefix("assay-sandbox-")
                        .tempdir()?,
                );
                std::fs::write(dir.path().join("program.py"), program)?;
                let mut cmd = Command::new(&self.python);
                cmd.args(["-I", "-B", "program.py"])
                    .current_dir(dir.path())
                    .env_clear()
                    .env("PATH", "/usr/bin:/bin")
                    .env("HOME", dir.path())
                    .env("TMPDIR", dir.path());
                cmd
            }
        };
        let limits = self.limits;
        // SAFETY: only async-signal-safe calls (setsid, setrlimit) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
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
                set(libc::RLIMIT_NPROC, limits.processes)?;
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
        let mut stdin = child.stdin.take().expect("piped");
        if self.isolation == Isolation::Namespaces {
            // A program that dies before reading all of it is reported by its exit.
            let _ = stdin.write_all(program.as_bytes());
        }
        drop(stdin);
        let mut stderr = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if kept.len() < STDERR_KEPT {
                    kept.extend_from_slice(&buf[..n]);
                } else {
                    // Keep the tail, where the exception is.
                    kept.drain(..n.min(kept.len()));
                    kept.extend_from_slice(&buf[..n]);
                }
            }
            String::from_utf8_lossy(&kept).into_owned()
        });
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
        let stderr = reader.join().unwrap_or_default();
        drop(work);
        let elapsed = start.elapsed();
        let outcome = if timed_out {
            Outcome::TimedOut
        } else {
            Outcome::from_exit(status.code(), status.signal(), &stderr)
        };
        Ok(Execution { outcome, elapsed })
    }

    /// Runs `programs` on `threads` threads; results in input order.
    pub fn run_many(
        &self,
        programs: &[String],
        threads: usize,
    ) -> Vec<Result<Execution, SandboxError>> {
        let threads = threads.clamp(1, programs.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<Result<Execution, SandboxError>>>> = programs
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(program) = programs.get(i) else {
                        break;
                    };
                    let r = self.run(program);
                    *results[i].lock().expect("not poisoned") = Some(r);
                });
            }
        });
        results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .expect("not poisoned")
                    .expect("every program ran")
            })
            .collect()
    }
}
