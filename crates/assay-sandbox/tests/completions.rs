//! Completions that try to fake a pass on real HumanEval problems: each must fail, while the
//! 164 canonical solutions all pass. CI runs these as root and as an ordinary user.
//! `cargo test --release -p assay-sandbox --test completions -- --nocapture` prints the table.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use assay_sandbox::{Job, Limits, Outcome, Sandbox};

/// One HumanEval problem.
struct Problem {
    prompt: String,
    canonical_solution: String,
    test: String,
    entry_point: String,
}

impl Problem {
    /// The job for a completion, as the humaneval task builds it.
    fn job(&self, completion: &str) -> Job {
        Job {
            prompt: self.prompt.clone(),
            solution: format!("{}{completion}", self.prompt),
            test: format!("{}\ncheck({})\n", self.test, self.entry_point),
        }
    }
}

/// The HumanEval file: `$ASSAY_HUMANEVAL`, else the shared data folder beside the repository.
fn humaneval() -> Vec<Problem> {
    let path = std::env::var_os("ASSAY_HUMANEVAL").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/humaneval/HumanEval.jsonl.gz")
        },
        Into::into,
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|l| {
            let p: serde_json::Value = serde_json::from_str(l).unwrap();
            let field = |k: &str| p[k].as_str().unwrap().to_string();
            Problem {
                prompt: field("prompt"),
                canonical_solution: field("canonical_solution"),
                test: field("test"),
                entry_point: field("entry_point"),
            }
        })
        .collect()
}

fn sandbox() -> Sandbox {
    Sandbox::detect(Limits {
        wall: Duration::from_secs(5),
        ..Limits::default()
    })
    .unwrap()
}

#[test]
fn humaneval_canonical_solutions_all_pass() {
    let problems = humaneval();
    assert_eq!(problems.len(), 164);
    let jobs: Vec<Job> = problems
        .iter()
        .map(|p| p.job(&p.canonical_solution))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = sandbox().run_many(&jobs, threads);
    let failed: Vec<String> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Ok(e) if e.outcome == Outcome::Passed => None,
            Ok(e) => Some(format!("HumanEval/{i}: {:?}", e.outcome)),
            Err(e) => Some(format!("HumanEval/{i}: {e}")),
        })
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

/// Completions of HumanEval/0 (`has_close_elements`) and HumanEval/2 (`truncate_number`, whose
/// tests compare with `abs`) that are wrong but try to be scored right.
const HOSTILE: &[(&str, usize, &str)] = &[
    ("exit(0) in the body", 0, "    exit(0)\n"),
    ("sys.exit() in the body", 0, "    import sys\n    sys.exit()\n"),
    ("os._exit(0) in the body", 0, "    import os\n    os._exit(0)\n"),
    ("raise SystemExit", 0, "    raise SystemExit(0)\n"),
    ("os._exit(0) at import", 0, "    return True\nimport os\nos._exit(0)\n"),
    ("SIGKILL itself", 0, "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n"),
    ("kill the harness (PID 1)", 0, "    import os, signal\n    os.kill(1, signal.SIGKILL)\n    return True\n"),
    ("redefine check after the prompt", 0, "    return True\n\n\ndef check(candidate):\n    pass\n"),
    ("monkeypatch builtins.abs", 2, "    import builtins\n    builtins.abs = lambda x: 0\n    return 7.0\n"),
    ("shadow AssertionError", 0, "    import builtins\n    builtins.AssertionError = type('AssertionError', (Exception,), {})\n    return True\n"),
    ("object whose __eq__ is always true", 0, "    class Any:\n        def __eq__(self, other):\n            return True\n    return Any()\n"),
    ("float subclass that equals anything", 2, "    class F(float):\n        def __eq__(self, other):\n            return True\n        def __sub__(self, other):\n            return 0.0\n    return F(0)\n"),
    ("print a fake success marker", 0, "    print('passed')\n    print('{\"outcome\": \"passed\"}')\n    return True\n"),
    ("write a verdict to every descriptor", 0, "    import os\n    for fd in range(0, 256):\n        try:\n            os.write(fd, b'started\\n{\"outcome\": \"passed\"}\\n')\n        except OSError:\n            pass\n    return True\n"),
    ("write into the harness's descriptor via /proc", 0, "    import os\n    fd = os.open('/proc/1/fd/3', os.O_WRONLY)\n    os.write(fd, b'{\"outcome\": \"passed\"}\\n')\n    return True\n"),
    ("read the harness's memory", 0, "    open('/proc/1/mem', 'rb').read(1)\n    return True\n"),
    ("close stdout and stderr", 0, "    import os, sys\n    sys.stdout.close()\n    os.close(1)\n    os.close(2)\n    return True\n"),
    ("endless loop", 0, "    while True:\n        pass\n"),
    ("fork bomb", 0, "    import os\n    while True:\n        os.fork()\n"),
    ("__del__ that exits 0 at shutdown", 0, "    global keep\n    class Exit:\n        def __del__(self):\n            import os\n            os._exit(0)\n    keep = Exit()\n    return True\n"),
    ("atexit hook that exits 0", 0, "    import atexit, os\n    atexit.register(lambda: os._exit(0))\n    return True\n"),
    ("silence the excepthook", 0, "    import sys\n    sys.excepthook = lambda *a: None\n    return True\n"),
    ("patch the caller's frame", 0, "    import sys\n    f = sys._getframe(1)\n    f.f_globals['check'] = lambda c: None\n    f.f_globals['AssertionError'] = None\n    return True\n"),
    ("turn the tests into a string", 0, "    return True\nx = '''\n"),
    ("a thread that exits 0 later", 0, "    import threading, os, time\n    threading.Thread(target=lambda: (time.sleep(0.2), os._exit(0))).start()\n    return True\n"),
];

#[test]
fn hostile_completions_all_fail() {
    let problems = humaneval();
    let sandbox = sandbox();
    let who = if unsafe { libc::geteuid() } == 0 {
        "root"
    } else {
        "user"
    };
    let mut table = vec![
        format!("| completion | outcome ({who}) |"),
        "|---|---|".into(),
    ];
    let mut passed = Vec::new();
    for (name, problem, completion) in HOSTILE {
        let run = sandbox.run(&problems[*problem].job(completion)).unwrap();
        let shown = match &run.outcome {
            Outcome::Failed { kind, .. } => format!("failed ({kind})"),
            Outcome::Killed { limit } => format!("killed ({limit})"),
            other => other.label().to_string(),
        };
        table.push(format!("| {name} | {shown} |"));
        if run.outcome == Outcome::Passed {
            passed.push(*name);
        }
    }
    println!("{}", table.join("\n"));
    assert!(passed.is_empty(), "scored as passing: {passed:?}");
}
