//! What became of a program.

use std::time::Duration;

use serde_json::Value;

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The harness ran every test to its end and none failed.
    Passed,
    /// A test failed or the solution raised: the exception's type (`AssertionError`,
    /// `SyntaxError`, `SystemExit`, ...) or `exit` when its process ended early, and a message.
    Failed {
        /// The error kind.
        kind: String,
        /// What the harness says of it.
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

    /// Reads the harness's verdict line (`{"outcome": "passed"}`, `{"outcome": "failed",
    /// "kind", "message"}`, `{"outcome": "killed", "limit"}`); `None` for anything else.
    pub(crate) fn from_verdict(line: &str) -> Option<Outcome> {
        let v: Value = serde_json::from_str(line.trim()).ok()?;
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        match v.get("outcome")?.as_str()? {
            "passed" => Some(Outcome::Passed),
            "failed" => Some(Outcome::Failed {
                kind: text("kind")?,
                message: text("message").unwrap_or_default(),
            }),
            "killed" => Some(Outcome::Killed {
                limit: text("limit")?,
            }),
            _ => None,
        }
    }

    /// A harness that ended without a verdict: by a signal (a limit), or otherwise, with the
    /// last line of its error output.
    pub(crate) fn without_verdict(signal: Option<i32>, code: Option<i32>, stderr: &str) -> Outcome {
        if let Some(sig) = signal {
            let limit = match sig {
                libc::SIGXCPU => "cpu".to_string(),
                libc::SIGXFSZ => "file size".to_string(),
                libc::SIGSEGV => "memory".to_string(),
                s => format!("signal {s}"),
            };
            return Outcome::Killed { limit };
        }
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        if last.starts_with("MemoryError") {
            return Outcome::Killed {
                limit: "memory".into(),
            };
        }
        Outcome::Failed {
            kind: "no verdict".into(),
            message: format!(
                "the harness ended (status {}) without a verdict: {last}",
                code.unwrap_or(-1)
            ),
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
    fn verdicts_are_read_and_anything_else_is_not_a_pass() {
        assert_eq!(
            Outcome::from_verdict(r#"{"outcome": "passed"}"#),
            Some(Outcome::Passed)
        );
        assert_eq!(
            Outcome::from_verdict(
                r#"{"outcome": "failed", "kind": "AssertionError", "message": "AssertionError: bad"}"#
            ),
            Some(Outcome::Failed {
                kind: "AssertionError".into(),
                message: "AssertionError: bad".into()
            })
        );
        assert_eq!(
            Outcome::from_verdict(r#"{"outcome": "killed", "limit": "memory"}"#),
            Some(Outcome::Killed {
                limit: "memory".into()
            })
        );
        for bad in [
            "",
            "passed",
            "{}",
            r#"{"outcome": "PASSED"}"#,
            r#"{"outcome": "failed"}"#,
        ] {
            assert_eq!(Outcome::from_verdict(bad), None, "{bad}");
        }
        assert_eq!(
            Outcome::without_verdict(Some(libc::SIGXCPU), None, ""),
            Outcome::Killed {
                limit: "cpu".into()
            }
        );
        assert_eq!(
            Outcome::without_verdict(None, Some(0), "").label(),
            "failed"
        );
        assert_eq!(
            Outcome::without_verdict(None, Some(1), "Traceback\nMemoryError\n").label(),
            "killed"
        );
    }
}
