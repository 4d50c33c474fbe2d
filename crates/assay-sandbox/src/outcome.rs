//! What became of a program.

use std::time::Duration;

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with status 0.
    Passed,
    /// It raised (or exited non-zero): the exception's type (`AssertionError`, `SyntaxError`,
    /// ...) or `exit N`, and its message.
    Failed {
        /// The error kind.
        kind: String,
        /// The last line of its error output.
        message: String,
    },
    /// The wall-clock timeout ended it.
    TimedOut,
    /// A resource limit ended it: `memory`, `cpu`, `processes`, `file size`, or `signal N` for
    /// another fatal signal.
    Killed {
        /// Which limit.
        limit: String,
    },
}

impl Outcome {
    /// `passed`, `failed`, `timed out` or `killed`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed { .. } => "failed",
            Outcome::TimedOut => "timed out",
            Outcome::Killed { .. } => "killed",
        }
    }

    /// Reads a finished program: its exit code or signal, and its error output. Exceptions that
    /// mean a limit was hit count as `Killed`.
    pub(crate) fn from_exit(code: Option<i32>, signal: Option<i32>, stderr: &str) -> Outcome {
        if let Some(sig) = signal {
            let limit = match sig {
                libc::SIGXCPU => "cpu".to_string(),
                libc::SIGXFSZ => "file size".to_string(),
                libc::SIGSEGV => "memory".to_string(),
                s => format!("signal {s}"),
            };
            return Outcome::Killed { limit };
        }
        if code == Some(0) {
            return Outcome::Passed;
        }
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        let kind = last
            .split_once(':')
            .map_or(last.as_str(), |(k, _)| k)
            .rsplit('.')
            .next()
            .unwrap_or("")
            .to_string();
        let is_identifier =
            !kind.is_empty() && kind.chars().all(|c| c.is_alphanumeric() || c == '_');
        match kind.as_str() {
            "MemoryError" => Outcome::Killed {
                limit: "memory".into(),
            },
            "BlockingIOError" if last.contains("Resource temporarily unavailable") => {
                Outcome::Killed {
                    limit: "processes".into(),
                }
            }
            _ if is_identifier => Outcome::Failed {
                kind,
                message: last,
            },
            _ => Outcome::Failed {
                kind: format!("exit {}", code.unwrap_or(-1)),
                message: last,
            },
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Execution {
    /// How it ended.
    pub outcome: Outcome,
    /// Wall-clock time.
    pub elapsed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_read() {
        assert_eq!(Outcome::from_exit(Some(0), None, ""), Outcome::Passed);
        let tb = "Traceback (most recent call last):\n  File \"program.py\", line 3\nAssertionError: bad\n";
        assert_eq!(
            Outcome::from_exit(Some(1), None, tb),
            Outcome::Failed {
                kind: "AssertionError".into(),
                message: "AssertionError: bad".into()
            }
        );
        assert_eq!(
            Outcome::from_exit(Some(1), None, "MemoryError\n").label(),
            "killed"
        );
        assert_eq!(
            Outcome::from_exit(None, Some(libc::SIGXCPU), ""),
            Outcome::Killed {
                limit: "cpu".into()
            }
        );
        assert_eq!(
            Outcome::from_exit(Some(3), None, ""),
            Outcome::Failed {
                kind: "exit 3".into(),
                message: String::new()
            }
        );
        let e = Outcome::from_exit(Some(1), None, "urllib.error.URLError: <urlopen error>");
        assert_eq!(
            e,
            Outcome::Failed {
                kind: "URLError".into(),
                message: "urllib.error.URLError: <urlopen error>".into()
            }
        );
    }
}
