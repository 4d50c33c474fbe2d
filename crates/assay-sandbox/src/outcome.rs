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
        // Python's last line names the exception, unindented (`Kind: message`). Processes the
        // program started share its stderr, so their traceback lines can come after it: take
        // the last line that reads as an exception, else the last line.
        let lines = || {
            stderr
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
        };
        let last = lines()
            .rev()
            .find(|l| exception_kind(l).is_some())
            .or_else(|| lines().next_back())
            .unwrap_or("")
            .trim()
            .to_string();
        // A fork bomb's children hit the process limit wherever their tracebacks land.
        if lines().any(|l| {
            l.starts_with("BlockingIOError") && l.contains("Resource temporarily unavailable")
        }) {
            return Outcome::Killed {
                limit: "processes".into(),
            };
        }
        let kind = exception_kind(&last).unwrap_or_default();
        match kind.as_str() {
            "MemoryError" => Outcome::Killed {
                limit: "memory".into(),
            },
            _ if !kind.is_empty() => Outcome::Failed {
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

/// The exception class a line of Python's error output names (`pkg.Error: message` gives
/// `Error`), or `None` when the line is not such a line (indented, or prose).
fn exception_kind(line: &str) -> Option<String> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let name = line.split_once(':').map_or(line, |(name, _)| name);
    let kind = name.rsplit('.').next()?;
    let dotted_identifier = name
        .split('.')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (dotted_identifier && kind.starts_with(|c: char| c.is_alphabetic() || c == '_'))
        .then(|| kind.to_string())
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
        // Seen in a fork bomb: children's traceback lines after the main program's last line.
        let interleaved = "Traceback (most recent call last):\n  File \"/tmp/program.py\", line 3, in <module>\nBlockingIOError: [Errno 11] Resource temporarily unavailable\nTraceback (most recent call last):\n  File \"/tmp/program.py\", line 3, in <module>\n";
        assert_eq!(
            Outcome::from_exit(Some(1), None, interleaved),
            Outcome::Killed {
                limit: "processes".into()
            }
        );
        let child_after = "Traceback (most recent call last):\nValueError: x\n  File \"/tmp/program.py\", line 9\n";
        assert_eq!(
            Outcome::from_exit(Some(1), None, child_after),
            Outcome::Failed {
                kind: "ValueError".into(),
                message: "ValueError: x".into()
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
