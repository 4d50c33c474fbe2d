//! Hostile programs, written for assay, run in the sandbox: each is contained, reported with
//! the right outcome, and leaves the machine as it was. CI runs these as root and as an
//! ordinary user. (Completions that try to fake a pass: tests/completions.rs.)

use std::path::Path;
use std::time::Duration;

use assay_sandbox::{Job, Limits, Outcome, Sandbox};

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
    let ipc_namespace = std::fs::read_link("/proc/self/ns/ipc")
        .unwrap()
        .display()
        .to_string();
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
            // Every mount is read-only to the program (OSError: read-only file system); or the
            // project is not there at all when it lives under /tmp, which the sandbox replaces
            // with an empty tmpfs.
            |o| matches!(o, Outcome::Failed { kind, .. } if kind == "OSError" || kind == "PermissionError" || kind == "FileNotFoundError"),
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
            "unmount the hidden folders, then read the outputs",
            format!(
                "import subprocess\nfor d in {:?}:\n    subprocess.run(['umount', '-l', d], stderr=subprocess.DEVNULL)\nopen({:?}).read()",
                [outputs.path().display().to_string(), home.clone(), "/tmp".into()],
                canary.display().to_string()
            ),
            |o| matches!(o, Outcome::Failed { kind, .. } if kind == "FileNotFoundError"),
        ),
        (
            "no capabilities, no new privileges",
            "s = open('/proc/self/status').read()\nf = dict(l.split(':\\t', 1) for l in s.splitlines() if ':\\t' in l)\nassert int(f['CapEff'], 16) == 0 and int(f['CapPrm'], 16) == 0 and int(f['CapBnd'], 16) == 0, f\nassert f['NoNewPrivs'].strip() == '1', f".into(),
            |o| *o == Outcome::Passed,
        ),
        (
            "its own IPC namespace",
            format!("import os\nassert os.readlink('/proc/self/ns/ipc') != {:?}", ipc_namespace),
            |o| *o == Outcome::Passed,
        ),
        (
            "a world-writable host folder (/run/lock, /var/tmp, /dev/shm)",
            "import os\nassert os.listdir('/run') == [], os.listdir('/run')\nassert os.listdir('/var/tmp') == [] and os.listdir('/dev/shm') == []\nopen('/run/lock/assay-escape', 'w')".into(),
            |o| matches!(o, Outcome::Failed { kind, .. } if kind == "FileNotFoundError" || kind == "PermissionError"),
        ),
        (
            "a background process that outlives it",
            "import subprocess\nsubprocess.Popen(['sleep', '4321.5'], start_new_session=True)".into(),
            |o| *o == Outcome::Passed,
        ),
    ];
    let mut report = Vec::new();
    for (name, program, expected) in &cases {
        let run = sandbox.run(&Job::script(program)).unwrap();
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

/// RLIMIT_NPROC counts processes per user: set outside the namespaces it would count every
/// process of the user running assay, and a user with 40 processes could not run a program
/// that starts 5.
#[test]
fn the_process_limit_counts_the_programs_processes_only() {
    let outputs = tempfile::tempdir().unwrap();
    let sandbox = sandbox(outputs.path());
    let mut sleepers: Vec<std::process::Child> = (0..40)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap()
        })
        .collect();
    let run = sandbox.run(&Job::script(
        "import subprocess\nfor p in [subprocess.Popen(['true']) for _ in range(5)]:\n    assert p.wait() == 0",
    ));
    for s in &mut sleepers {
        let _ = s.kill();
        let _ = s.wait();
    }
    assert_eq!(run.unwrap().outcome, Outcome::Passed);
}

#[test]
fn programs_run_in_parallel_and_in_order() {
    let outputs = tempfile::tempdir().unwrap();
    let sandbox = sandbox(outputs.path());
    let programs: Vec<Job> = (0..6)
        .map(|i| Job::script(&format!("assert {i} % 2 == 0, 'odd {i}'")))
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
fn unsafe_mode_still_limits_and_cleans_up() {
    let sandbox = assay_sandbox::Sandbox::unsafe_no_sandbox(Limits {
        wall: Duration::from_secs(3),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(
        sandbox
            .run(&Job::script("x = bytearray(10 * 1024 ** 3)"))
            .unwrap()
            .outcome,
        Outcome::Killed {
            limit: "memory".into()
        }
    );
    assert_eq!(
        sandbox
            .run(&Job::script("while True:\n    pass"))
            .unwrap()
            .outcome,
        Outcome::TimedOut
    );
    let r = sandbox
        .run(&Job::script(
            "import subprocess\nsubprocess.Popen(['sleep', '4322.5'])",
        ))
        .unwrap();
    assert_eq!(r.outcome, Outcome::Passed);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        processes_with("4322.5"),
        0,
        "the child outlived the program"
    );
}
