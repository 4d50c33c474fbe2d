//! lm-eval's `!function module.name` hooks, run in the user's Python: one long-lived worker
//! process per assay process (`worker.py`), fed one JSON line per call. The user's hooks may
//! import anything their Python has (`datasets`, `numpy`, `sklearn`...), which embedding an
//! interpreter could not promise, and a hook that crashes takes down the worker, not assay.
//!
//! A hook is named by `<task file folder>/<module>.<function>`: the registry writes the folder of
//! the file that holds the `!function` tag into it, as lm-eval resolves the module beside that
//! file.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use assay_data::Record;
use serde_json::{json, Value};

const WORKER: &str = include_str!("worker.py");

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn worker() -> &'static Mutex<Option<Worker>> {
    static WORKER_PROCESS: OnceLock<Mutex<Option<Worker>>> = OnceLock::new();
    WORKER_PROCESS.get_or_init(|| Mutex::new(None))
}

/// The Python hooks run in: `$ASSAY_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("ASSAY_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn start() -> Result<Worker, String> {
    let python = python();
    let mut child = Command::new(&python)
        .args(["-u", "-c", WORKER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            format!("cannot start Python (`{python}`: {e}); `!function` hooks run in your Python: install Python 3 or set ASSAY_PYTHON to its path")
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the Python worker has no pipes".into());
    };
    Ok(Worker {
        child,
        stdin,
        stdout: BufReader::new(stdout),
    })
}

fn request(message: &Value) -> Result<Value, String> {
    let mut slot = worker().lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        *slot = Some(start()?);
    }
    let Some(w) = slot.as_mut() else {
        return Err("the Python worker did not start".into());
    };
    let mut line = message.to_string();
    line.push('\n');
    let mut reply = String::new();
    let io = w
        .stdin
        .write_all(line.as_bytes())
        .and_then(|_| w.stdin.flush())
        .and_then(|_| w.stdout.read_line(&mut reply));
    if !matches!(io, Ok(n) if n > 0) {
        // The worker died (a hook called os._exit, or crashed): the next call starts a new one.
        *slot = None;
        return Err(format!(
            "the Python worker ({}) exited during the call",
            python()
        ));
    }
    let reply: Value = serde_json::from_str(&reply)
        .map_err(|e| format!("the Python worker answered something that is not JSON: {e}"))?;
    if let Some(value) = reply.get("ok") {
        return Ok(value.clone());
    }
    let kind = reply["error"].as_str().unwrap_or("Error");
    let message = reply["message"].as_str().unwrap_or("");
    let hint = match kind {
        "ModuleNotFoundError" | "ImportError" => format!(
            " (install the missing package in the Python hooks run in, `{}`, or point ASSAY_PYTHON at one that has it)",
            python()
        ),
        _ => String::new(),
    };
    let trace = reply["traceback"].as_str().unwrap_or("").trim_end();
    Err(format!("{kind}: {message}{hint}\n{trace}"))
}

/// Calls the hook `path` (`folder/module.function`) with `args`.
pub fn call(path: &str, args: &[Value]) -> Result<Value, String> {
    request(&json!({"op": "call", "hook": path, "args": args}))
}

/// Runs a `process_docs` hook over `docs` (as a `datasets.Dataset` where `datasets` is
/// installed) and returns the documents it gives back.
pub fn process_docs(path: &str, docs: Vec<Record>) -> Result<Vec<Record>, String> {
    let out = request(&json!({"op": "process_docs", "hook": path, "docs": docs}))?;
    let Value::Array(rows) = out else {
        return Err("process_docs did not return a list of documents".into());
    };
    rows.into_iter()
        .map(|r| match r {
            Value::Object(map) => Ok(map),
            other => Err(format!(
                "process_docs returned a row that is not a mapping: {other}"
            )),
        })
        .collect()
}

/// `folder/module.function` of a `!function` tag written in a file in `folder`.
pub fn hook_path(folder: &std::path::Path, target: &str) -> String {
    folder.join(target).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(dir: &std::path::Path, name: &str, source: &str) {
        std::fs::write(dir.join(format!("{name}.py")), source).unwrap();
    }

    #[test]
    fn hooks_run_in_python_and_errors_come_back() {
        let dir = tempfile::tempdir().unwrap();
        module(
            dir.path(),
            "utils",
            "def text(doc):\n    print('noise on stdout')\n    return 'Q: ' + doc['q'].upper()\n\
             def boom(doc):\n    raise ValueError('bad doc')\n\
             def leave(doc):\n    raise SystemExit(3)\n\
             def process(ds):\n    return ds.filter(lambda d: d['keep']).map(lambda d: {'q': d['q'] + '!'})\n",
        );
        let hook = |f: &str| hook_path(dir.path(), &format!("utils.{f}"));
        assert_eq!(
            call(&hook("text"), &[json!({"q": "why"})]).unwrap(),
            json!("Q: WHY")
        );
        let err = call(&hook("boom"), &[json!({})]).unwrap_err();
        assert!(err.starts_with("ValueError: bad doc"), "{err}");
        // A hook's SystemExit is answered as an error; the worker lives on.
        let err = call(&hook("leave"), &[json!({})]).unwrap_err();
        assert!(err.starts_with("SystemExit"), "{err}");
        let err = call(&hook("absent"), &[json!({})]).unwrap_err();
        assert!(err.contains("has no function `absent`"), "{err}");
        let missing = hook_path(dir.path(), "nowhere.f");
        let err = call(&missing, &[]).unwrap_err();
        assert!(err.contains("no module file"), "{err}");
        let docs: Vec<Record> = [
            json!({"q": "a", "keep": true}),
            json!({"q": "b", "keep": false}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        let out = process_docs(&hook("process"), docs).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["q"], json!("a!"));
        module(
            dir.path(),
            "needs",
            "import no_such_package_here\ndef f(d):\n    return 1\n",
        );
        let err = call(&hook_path(dir.path(), "needs.f"), &[json!({})]).unwrap_err();
        assert!(
            err.starts_with("ModuleNotFoundError") && err.contains("install the missing package"),
            "{err}"
        );
    }
}
