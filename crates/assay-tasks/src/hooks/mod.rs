//! lm-eval's `!function module.name` hooks, run in the user's Python: one long-lived worker
//! process per assay process (`worker.py`), fed one JSON line per call. The user's hooks may
//! import anything their Python has (`datasets`, `numpy`, `sklearn`...), which embedding an
//! interpreter could not promise, and a hook that crashes takes down the worker, not assay.
//!
//! A hook is named by `<task file folder>/<module>.<function>`: the registry writes the folder of
//! the file that holds the `!function` tag into it, as lm-eval resolves the module beside that
//! file.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use assay_data::Record;
use assay_request_cache::{request_key, Entry, RequestCache};

use crate::Seeds;
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

/// The running worker's process id (0: none), for [`stop_hooks`], which cannot wait for the
/// lock that a call in progress holds.
static WORKER_PID: AtomicU32 = AtomicU32::new(0);
/// Set by [`stop_hooks`]: no hook runs after it.
static HOOKS_STOPPED: AtomicBool = AtomicBool::new(false);

/// Ends the hook worker now, in the middle of a hook if one runs (the command's stop: Ctrl-C,
/// SIGTERM, `--run-timeout`); later calls fail at once, saying so.
pub fn stop_hooks() {
    HOOKS_STOPPED.store(true, Ordering::SeqCst);
    let pid = WORKER_PID.swap(0, Ordering::SeqCst);
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 0 {
            // SAFETY: kill(2) with a pid we spawned and a signal number; no memory is shared.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
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

/// The seeds the worker sets before any hook runs, once [`seed_hooks`] gave them (else
/// lm-eval's defaults).
fn hook_seeds() -> &'static Mutex<Seeds> {
    static SEEDS: OnceLock<Mutex<Seeds>> = OnceLock::new();
    SEEDS.get_or_init(|| Mutex::new(Seeds::default()))
}

/// Seeds Python's `random`, NumPy's and torch's global generators in the hook worker with
/// `seeds` (lm-eval's `--seed`) before any hook runs, as lm-eval's `simple_evaluate` does
/// before it builds any task: a hook that shuffles with the global generator (the
/// leaderboard's GPQA) then gives lm-eval's documents, the same on every run.
pub fn seed_hooks(seeds: Seeds) {
    *hook_seeds().lock().unwrap_or_else(|e| e.into_inner()) = seeds;
}

/// The draws of Python's global `random` lm-eval has made before the task being prepared
/// (see [`crate::Selection::lm_eval_draws_before`]); the worker catches up to it before a
/// `process_docs` hook runs.
fn draws_before() -> &'static Mutex<u64> {
    static DRAWS: OnceLock<Mutex<u64>> = OnceLock::new();
    DRAWS.get_or_init(|| Mutex::new(0))
}

/// Sets how many draws of Python's global `random` lm-eval has made before the task whose
/// `process_docs` hook runs next.
pub fn hook_draws_before(draws: u64) {
    *draws_before().lock().unwrap_or_else(|e| e.into_inner()) = draws;
}

/// Spawns `command` from a thread that never ends: the worker's parent-death signal
/// (`PR_SET_PDEATHSIG`) fires when the thread that spawned it exits, and the thread calling a
/// hook may be short-lived (a test, a scoped worker). One parked thread per worker started.
fn spawn_from_lasting_thread(mut command: Command) -> std::io::Result<Child> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("hook-worker-parent".into())
        .spawn(move || {
            let _ = sender.send(command.spawn());
            loop {
                std::thread::park();
            }
        })?;
    receiver
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawning thread ended")))
}

fn start() -> Result<Worker, String> {
    let python = python();
    let seeds = *hook_seeds().lock().unwrap_or_else(|e| e.into_inner());
    let mut command = Command::new(&python);
    command
        .args(["-u", "-c", WORKER])
        .env(
            "ASSAY_HOOK_SEEDS",
            serde_json::to_string(&seeds).unwrap_or_default(),
        )
        .env("ASSAY_PARENT_PID", std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = spawn_from_lasting_thread(command).map_err(|e| {
        format!("cannot start Python (`{python}`: {e}); `!function` hooks run in your Python: install Python 3 or set ASSAY_PYTHON to its path")
    })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the Python worker has no pipes".into());
    };
    WORKER_PID.store(child.id(), Ordering::SeqCst);
    Ok(Worker {
        child,
        stdin,
        stdout: BufReader::new(stdout),
    })
}

fn request(message: &Value) -> Result<Value, String> {
    const STOPPED: &str = "stopped (interrupt or a limit) while a Python hook ran";
    if HOOKS_STOPPED.load(Ordering::SeqCst) {
        return Err(STOPPED.into());
    }
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
        if HOOKS_STOPPED.load(Ordering::SeqCst) {
            return Err(STOPPED.into());
        }
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

/// The request cache `process_docs` outputs are kept in, once [`use_cache`] gave one.
fn cache() -> &'static Mutex<Option<RequestCache>> {
    static CACHE: OnceLock<Mutex<Option<RequestCache>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(None))
}

/// Keeps `process_docs` outputs in `cache` from now on, under the request cache's rules: the
/// key hashes everything the output depends on that assay can see (the documents given, the
/// hook's name and the source of every `.py` file beside it), so the same documents through
/// the same code are read back instead of run again, and any change runs the hook anew.
pub fn use_cache(store: RequestCache) {
    *cache().lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
}

/// The content hash of the Python modules in `folder` (names and bytes, in name order).
fn sources_digest(folder: &Path) -> String {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (
                name.unwrap_or_default(),
                std::fs::read(&p).unwrap_or_default(),
            )
        })
        .collect();
    files.sort();
    request_key(&files)
}

/// Runs a `process_docs` hook over `docs` (as a `datasets.Dataset` where `datasets` is
/// installed) and returns the documents it gives back; read from the request cache when the
/// same documents went through the same code before. A hook that drew from a global random
/// generator is never cached: its output depends on the draws before it, so it runs on every
/// run, in lm-eval's order, from the same seeds.
pub fn process_docs(path: &str, docs: Vec<Record>) -> Result<Vec<Record>, String> {
    let name = display_name(path);
    let folder = Path::new(path).parent().unwrap_or(Path::new("."));
    // The key hashes every document: computed only when there is a cache to look in.
    let has_cache = cache().lock().unwrap_or_else(|e| e.into_inner()).is_some();
    let key = has_cache.then(|| {
        request_key(&(
            "hook-v2",
            "process_docs",
            name,
            sources_digest(folder),
            &docs,
        ))
    });
    let cached = key.as_ref().and_then(|key| {
        let store = cache().lock().unwrap_or_else(|e| e.into_inner());
        store
            .as_ref()
            .and_then(|c| c.get_many(std::slice::from_ref(key)).ok())
            .and_then(|mut found| found.pop().flatten())
    });
    let out = match cached.and_then(|text| serde_json::from_str(&text).ok()) {
        Some(out) => out,
        None => {
            let draws = *draws_before().lock().unwrap_or_else(|e| e.into_inner());
            let reply = request(&json!({
                "op": "process_docs", "hook": path, "docs": docs, "draws_before": draws
            }))?;
            let drew = reply["drew"].as_bool().unwrap_or(true);
            let out = reply["rows"].clone();
            let store = cache().lock().unwrap_or_else(|e| e.into_inner());
            if let (Some(c), Some(key), false) = (store.as_ref(), &key, drew) {
                let answer = out.to_string();
                let entry = Entry {
                    key,
                    primitive: "process_docs",
                    model: &format!("hook {name}"),
                    answer: &answer,
                };
                if let Err(e) = c.put_many(&[entry]) {
                    eprintln!("note: process_docs (`!function {name}`): output not cached: {e}");
                }
            }
            out
        }
    };
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

/// Scores one generated answer through a `metric: !function` hook, called as lm-eval calls it
/// (`references=[gold], predictions=[answer], **kwargs`, else `[gold, answer]`; with a list of
/// golds, 1 when any scores).
pub fn metric(path: &str, gold: &Value, answer: &str, kwargs: &Value) -> Result<Value, String> {
    request(
        &json!({"op": "metric", "hook": path, "gold": gold, "answer": answer, "kwargs": kwargs}),
    )
}

/// Applies a filter hook to one document's generations, as lm-eval applies a filter to all
/// documents at once (`apply(resps, docs)`, here with one of each): `filter_fn` of
/// `function: custom` is called as is; a `function: !function` class is built with `kwargs`
/// once and its `apply` called. The document's filtered answers come back as texts.
pub fn filter(
    path: &str,
    is_class: bool,
    kwargs: &Value,
    generations: &[String],
    doc: &Record,
) -> Result<Vec<String>, String> {
    let out = request(&json!({
        "op": "filter", "hook": path, "class": is_class, "kwargs": kwargs,
        "resps": [generations], "docs": [doc],
    }))?;
    let first = match out {
        Value::Array(mut per_doc) if per_doc.len() == 1 => per_doc.remove(0),
        other => {
            return Err(format!(
                "the filter returned {other} for one document, not a list with one entry"
            ))
        }
    };
    match first {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("the filter returned {other}, not a text")),
            })
            .collect(),
        other => Err(format!("the filter returned {other}, not texts")),
    }
}

/// `module.function` of a hook path, as the task file wrote it.
pub(crate) fn display_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `folder/module.function` of a `!function` tag written in a file in `folder`.
pub fn hook_path(folder: &Path, target: &str) -> String {
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
             def shell(doc):\n    import os\n    os.system('echo child noise on descriptor 1')\n    return 'fine'\n\
             def nan(doc):\n    return float('nan')\n\
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
        // A child process writing to descriptor 1 does not reach the protocol.
        assert_eq!(call(&hook("shell"), &[json!({})]).unwrap(), json!("fine"));
        let err = call(&hook("nan"), &[json!({})]).unwrap_err();
        assert!(
            err.contains("the hook returned nan, which JSON cannot carry"),
            "{err}"
        );
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

    #[test]
    fn process_docs_outputs_come_from_the_request_cache_until_the_code_changes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.txt");
        let source = |tag: &str| {
            format!(
                "def process(ds):\n    open({log:?}, 'a').write('x')\n    return ds.map(lambda d: {{'q': d['q'] + '{tag}'}})\n",
                log = log.display().to_string()
            )
        };
        module(dir.path(), "cached", &source("!"));
        use_cache(RequestCache::open(&dir.path().join("requests.sqlite")).unwrap());
        let docs = |q: &str| vec![json!({"q": q}).as_object().unwrap().clone()];
        let hook = hook_path(dir.path(), "cached.process");
        let calls = || std::fs::read_to_string(&log).unwrap_or_default().len();
        let first = process_docs(&hook, docs("a")).unwrap();
        assert_eq!(first[0]["q"], json!("a!"));
        assert_eq!(process_docs(&hook, docs("a")).unwrap(), first);
        assert_eq!(calls(), 1, "the second run is read from the cache");
        process_docs(&hook, docs("b")).unwrap();
        assert_eq!(calls(), 2, "other documents run the hook");
        module(dir.path(), "cached", &source("?"));
        // The worker keeps the module it imported; a new assay process imports the new one,
        // and the key already differs, so nothing stale is read back.
        process_docs(&hook, docs("a")).unwrap();
        assert_eq!(calls(), 3, "changed code runs the hook");
    }

    #[test]
    fn a_process_docs_drawing_from_the_global_generator_is_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.txt");
        module(
            dir.path(),
            "drawing",
            &format!(
                "import random\ndef process(ds):\n    open({log:?}, 'a').write('x')\n    return ds.map(lambda d: {{'q': d['q'], 'r': random.random()}})\n",
                log = log.display().to_string()
            ),
        );
        use_cache(RequestCache::open(&dir.path().join("requests.sqlite")).unwrap());
        let docs = || vec![json!({"q": "a"}).as_object().unwrap().clone()];
        let hook = hook_path(dir.path(), "drawing.process");
        let first = process_docs(&hook, docs()).unwrap();
        let second = process_docs(&hook, docs()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap().len(),
            2,
            "run both times"
        );
        assert_ne!(first, second, "the generator moved on between the calls");
    }
}
