//! Hostile programs, written for assay, run in the sandbox: each is contained, reported with
//! the right outcome, and leaves the machine as it was. Also: HumanEval's canonical solutions
//! all pass inside it.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use assay_sandbox::{Limits, Outcome, Sandbox};

fn sandbox(outputs: &Path) -> Sandbox {
    let limits = Limits {
        wall: Duration::from_secs(5),
        ..Limits::default()
    };
    Sandbox::detect(limits).unwrap().hide(outputs.to_path_buf())
}

/// What a hostile program's outcome must satisfy.
type Expected = fn(&Outcome) -> bool;

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn hostile_programs_are_contained() {
    let outputs = tempfile::tempdir().unwrap();
    let canary = outputs.path().join("results.json");
    std::fs::write(&canary, "finished work").unwrap();
    let escape = std::env::temp_dir().join(format!("assay-escape-{}", std::process::id()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let project_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("escaped.txt");
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let sandbox = sandbox(outputs.path());

    let cases: Vec<(&str, String, Expected)> = vec![
        (
            "write outside its folder",
            format!("open({:?}, 'w').write('x')", escape.display().to_string()),
            |o| o.label() == "passed" || matches!(o, Outcome::Failed { kind, .. } if kind == "PermissionError"),
        ),
        (
            "write into the project",
            format!("open({:?}, 'w').write('x')", project_file.display().to_string()),
            // Read-only for the program's user; or not there at all when the project itself lives
            // under /tmp, which the sandbox replaces with an empty tmpfs.
            |o| matches!(o, Outcome::Failed { kind, .. } if kind == "PermissionError" || kind == "FileNotFoundError"),
        ),
        (
            "overwrite the run's outputs",
            format!("open({:?}, 'w').write('gone')", canary.display().to_string()),
            |o| matches!(o, Outcome::Failed { kind, .. } if kind == "FileNotFoundError" || kind == "PermissionError"),
        ),
        (
            "read ~/.ssh",
            format!("import os\nprint(os.listdir({:?}))\nopen({:?}).read()", home, format!("{home}/.ssh/id_rsa")),
            |o| matches!(o, Outcome::Failed { kind, .. } if kind == "FileNotFoundError"),
        ),
        (
            "socket to 127.0.0.1",
            format!("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"),
            |o| matches!(o, Outcome::Failed { kind, .. } if kind == "ConnectionRefusedError" || kind == "OSError"),
        ),
        (
            "socket to an outside address",
            "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)".into(),
            |o| matches!(o, Outcome::Failed { kind, .. } if kind == "OSError"),
        ),
        (
            "fork bomb",
            "import os\nwhile True:\n    os.fork()".into(),
            |o| *o == Outcome::Killed { limit: "processes".into() } || *o == Outcome::TimedOut,
        ),
        (
            "10 GB allocation",
            "x = bytearray(10 * 1024 ** 3)".into(),
            |o| *o == Outcome::Killed { limit: "memory".into() },
        ),
        (
            "infinite loop",
            "while True:\n    pass".into(),
            |o| *o == Outcome::TimedOut,
        ),
        (
            "kill the parent",
            "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.killpg(0, signal.SIGKILL)".into(),
            // It is PID 1 of its own namespace: its parent there is 0, its group only its own.
            |o| *o == Outcome::Passed || matches!(o, Outcome::Killed { limit } if limit == "signal 9"),
        ),
        (
            "a background process that outlives it",
            "import subprocess\nsubprocess.Popen(['sleep', '4321.5'], start_new_session=True)".into(),
            |o| *o == Outcome::Passed,
        ),
    ];
    let mut report = Vec::new();
    for (name, program, expected) in &cases {
        let run = sandbox.run(program).unwrap();
        report.push(format!(
            "{name}: {:?} in {:.2}s",
            run.outcome,
            run.elapsed.as_secs_f64()
        ));
        assert!(expected(&run.outcome), "{name}: {:?}", run.outcome);
    }
    println!("{}", report.join("\n"));
    // Nothing escaped: no file outside, the outputs intact, no connection, no process left.
    assert!(!escape.exists(), "{} was written", escape.display());
    assert!(
        !project_file.exists(),
        "{} was written",
        project_file.display()
    );
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "finished work");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's loopback"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        processes_with("4321.5"),
        0,
        "the background process survived"
    );
    // The test process itself survived "kill the parent" (it is running this line).
}

#[test]
fn programs_run_in_parallel_and_in_order() {
    let outputs = tempfile::tempdir().unwrap();
    let sandbox = sandbox(outputs.path());
    let programs: Vec<String> = (0..6)
        .map(|i| format!("assert {i} % 2 == 0, 'odd {i}'"))
        .collect();
    let runs = sandbox.run_many(&programs, 3);
    for (i, r) in runs.into_iter().enumerate() {
        let outcome = r.unwrap().outcome;
        if i % 2 == 0 {
            assert_eq!(outcome, Outcome::Passed);
        } else {
            assert_eq!(
                outcome,
                Outcome::Failed {
                    kind: "AssertionError".into(),
                    message: format!("AssertionError: odd {i}")
                }
            );
        }
    }
}

#[test]
fn humaneval_canonical_solutions_all_pass() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/humaneval/HumanEval.jsonl.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let programs: Vec<String> = text
        .lines()
        .map(|l| {
            let p: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}{}\n\n{}\n\ncheck({})\n",
                p["prompt"].as_str().unwrap(),
                p["canonical_solution"].as_str().unwrap(),
                p["test"].as_str().unwrap(),
                p["entry_point"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(programs.len(), 164);
    let outputs = tempfile::tempdir().unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = sandbox(outputs.path()).run_many(&programs, threads);
    let failed: Vec<String> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Ok(e) if e.outcome == Outcome::Passed => None,
            Ok(e) => Some(format!("HumanEval/{i}: {:?}", e.outcome.label())),
            Err(e) => Some(format!("HumanEval/{i}: {e}")),
        })
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn unsafe_mode_still_limits_and_cleans_up() {
    let sandbox = assay_sandbox::Sandbox::unsafe_no_sandbox(Limits {
        wall: Duration::from_secs(3),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(
        sandbox
            .run("x = bytearray(10 * 1024 ** 3)")
            .unwrap()
            .outcome,
        Outcome::Killed {
            limit: "memory".into()
        }
    );
    assert_eq!(
        sandbox.run("while True:\n    pass").unwrap().outcome,
        Outcome::TimedOut
    );
    let r = sandbox
        .run("import subprocess\nsubprocess.Popen(['sleep', '4322.5'])")
        .unwrap();
    assert_eq!(r.outcome, Outcome::Passed);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        processes_with("4322.5"),
        0,
        "the child outlived the program"
    );
}
