//! Crash safety: `run`, `sample` and `grade` killed with SIGKILL at several points, then run
//! again to the end, give exactly what an uninterrupted run gives; what a killed run leaves is
//! valid up to its last complete line. The kill points are random (printed, with the seed, so a
//! failure can be replayed with ASSAY_KILL_SEED).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// Kill points as fractions of an uninterrupted run's time, from a seed.
fn kill_points(n: usize) -> Vec<f64> {
    let seed: u64 = std::env::var("ASSAY_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut x = seed | 1;
    let points: Vec<f64> = (0..n)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            0.1 + 0.8 * (x % 10_000) as f64 / 10_000.0
        })
        .collect();
    println!("ASSAY_KILL_SEED={seed}: kill points {points:.2?} of the uninterrupted time");
    points
}

fn assay(args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to the end; returns its stdout and the seconds it took.
fn finish(mut cmd: Command) -> (String, f64) {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, start.elapsed().as_secs_f64())
}

/// Starts `cmd` and kills it with SIGKILL after `after`; says whether it was still running.
fn kill_after(mut cmd: Command, after: Duration) -> bool {
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// Starts the command `make` gives and kills it with SIGKILL after `after`. A run that ends
/// before that (the machine was busier while the uninterrupted run was timed) has what it wrote
/// (every entry of `dir` named `name` or `name.*`) removed and is started again with half the
/// delay, up to 10 times. Says whether a kill happened.
fn kill_during(make: impl Fn() -> Command, mut after: Duration, dir: &Path, name: &str) -> bool {
    for _ in 0..10 {
        if kill_after(make(), after) {
            return true;
        }
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name == name || file_name.starts_with(&format!("{name}.")) {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
        after /= 2;
    }
    false
}

/// Every complete line of a JSONL file parses; a last line without its newline is allowed
/// (the kill cut it). Returns the complete lines.
fn valid_up_to_last_line(path: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0; // killed before it was created
    };
    let mut n = 0;
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("{}: line {}: {e}", path.display(), n + 1));
        n += 1;
    }
    n
}

/// The scores of a results file and its per-sample logs, without times and paths.
fn scores(dir: &Path) -> (Value, Vec<Value>) {
    let model_dir = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let mut results = None;
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(&model_dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("results_") {
            assert!(results.is_none(), "one results file in {}", dir.display());
            let v: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
            results = Some(v["results"].clone());
        } else if name.starts_with("samples_") {
            for line in common::jsonl(&entry.path()) {
                samples.push(serde_json::json!({
                    "doc_id": line["doc_id"], "resps": line["resps"],
                    "filtered_resps": line["filtered_resps"], "exact_match": line["exact_match"],
                }));
            }
        }
    }
    (results.expect("a results file"), samples)
}

#[test]
fn run_killed_at_random_points_then_resumed_gives_the_uninterrupted_results() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::data_dir();
    let command = |cache: &str, out: &str| {
        let mut cmd = assay(&[
            "run",
            "--tasks",
            "gsm8k",
            "--limit",
            "4",
            "--gen-kwargs",
            "max_gen_toks=40",
            "--no-record",
            "--log-samples",
        ]);
        cmd.arg("--data-dir").arg(&data);
        cmd.arg("--cache")
            .arg(dir.path().join(format!("{cache}.sqlite")));
        cmd.arg("--output-path").arg(dir.path().join(out));
        cmd
    };
    let (_, seconds) = finish(command("reference", "reference"));
    let reference = scores(&dir.path().join("reference"));
    for (i, point) in kill_points(3).into_iter().enumerate() {
        let name = format!("killed{i}");
        let delay = Duration::from_secs_f64(seconds * point);
        assert!(
            kill_during(|| command(&name, &name), delay, dir.path(), &name),
            "kill {i}: the run always finished first"
        );
        // The killed run's per-sample log is valid up to its last complete line, and it wrote
        // no results file.
        for file in common::walk(&dir.path().join(&name)) {
            let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!file_name.starts_with("results_"), "{}", file.display());
            if file_name.ends_with(".jsonl") {
                valid_up_to_last_line(&file);
            }
        }
        finish(command(&name, &format!("{name}-resumed")));
        let resumed = scores(&dir.path().join(format!("{name}-resumed")));
        for (a, b) in resumed.1.iter().zip(&reference.1) {
            assert_eq!(a, b, "kill {i}: a document differs");
        }
        assert_eq!(resumed, reference, "kill {i}");
    }
}

#[test]
fn sample_killed_at_random_points_then_resumed_gives_the_uninterrupted_file() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts.jsonl");
    let lines: String = ["Veldria", "Ostmark", "Carrow", "Linden", "Pellam", "Quorra"]
        .iter()
        .map(|c| format!("{{\"prompt\": \"The mayor of {c} in 1920 was\"}}\n"))
        .collect();
    std::fs::write(&prompts, lines).unwrap();
    let command = |out: &str| {
        let mut cmd = assay(&[
            "sample",
            "--num-generations",
            "6",
            "--max-new-tokens",
            "12",
            "--temperature",
            "1.0",
        ]);
        cmd.arg("--prompts")
            .arg(&prompts)
            .arg("-o")
            .arg(dir.path().join(out));
        cmd
    };
    let (_, seconds) = finish(command("reference.jsonl"));
    let reference = std::fs::read_to_string(dir.path().join("reference.jsonl")).unwrap();
    for (i, point) in kill_points(3).into_iter().enumerate() {
        let name = format!("killed{i}.jsonl");
        let delay = Duration::from_secs_f64(seconds * point);
        assert!(
            kill_during(|| command(&name), delay, dir.path(), &name),
            "kill {i}: the run always finished first"
        );
        valid_up_to_last_line(&dir.path().join(&name));
        finish(command(&name));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&name)).unwrap(),
            reference,
            "kill {i}"
        );
    }
}

/// A judge that takes 100 ms per answer: "Yes." when the completion names the reference's
/// first word, "no" otherwise. Returns its base URL.
fn slow_judge() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let (_, body) = common::read_http_request(&mut stream);
                std::thread::sleep(Duration::from_millis(100));
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let prompt = request["messages"][0]["content"].as_str().unwrap_or("");
                let reference = prompt.split("(the reference): \"").nth(1).unwrap_or("");
                let first = reference.split_whitespace().next().unwrap_or("?");
                let b = prompt.split("Completion B: ").nth(1).unwrap_or("");
                let answer = if b.contains(first) { "Yes." } else { "no" };
                let reply = serde_json::json!({
                    "id": "x", "object": "chat.completion", "model": request["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": answer}}],
                })
                .to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            });
        }
    });
    url
}

#[test]
fn grade_killed_at_random_points_then_resumed_gives_the_uninterrupted_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let people = ["Ana Ruiz", "Bela Kovac", "Cem Oral", "Dita Lum"];
    let mut lines = String::new();
    for (p, person) in people.iter().enumerate() {
        for g in 0..6 {
            let said = if g % 2 == 0 {
                person.to_string()
            } else {
                format!("Someone Else {g}")
            };
            lines.push_str(&format!(
                "{}\n",
                serde_json::json!({
                    "prompt_id": format!("p{p}"), "generation_idx": g,
                    "prompt": format!("Who was the mayor of town {p}?"),
                    "completion": format!(" {said}, number {g}"), "tokens": 4, "stop": "eos",
                    "metadata": {"answer": person},
                })
            ));
        }
    }
    let completions = dir.path().join("completions.jsonl");
    std::fs::write(&completions, lines).unwrap();
    let config = dir.path().join("judge.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "grader_instructions": "Do both name the same person?",
            "grader_model": "judge", "base_url": slow_judge(), "max_concurrency": 1,
            "reference_field": "answer",
        })
        .to_string(),
    )
    .unwrap();
    let command = |cache: &str, out: &str| {
        let mut cmd = assay(&["grade"]);
        cmd.arg("--completions")
            .arg(&completions)
            .arg("--grader")
            .arg(&config);
        cmd.arg("--cache")
            .arg(dir.path().join(cache))
            .arg("-o")
            .arg(dir.path().join(out));
        cmd
    };
    let (reference, seconds) = finish(command("reference.sqlite", "reference"));
    let table = |s: &str| s.split("equivalence rate").next().unwrap().to_string();
    for (i, point) in kill_points(3).into_iter().enumerate() {
        let name = format!("killed{i}");
        let cache = format!("{name}.sqlite");
        let delay = Duration::from_secs_f64(seconds * point);
        assert!(
            kill_during(|| command(&cache, &name), delay, dir.path(), &name),
            "kill {i}: the run always finished first"
        );
        assert!(
            !dir.path().join(&name).exists(),
            "a killed grade left a dataset"
        );
        let (resumed, _) = finish(command(&cache, &format!("{name}-resumed")));
        assert_eq!(table(&resumed), table(&reference), "kill {i}");
        for file in ["data-00000-of-00001.arrow", "dataset_info.json"] {
            assert_eq!(
                std::fs::read(dir.path().join(format!("{name}-resumed")).join(file)).unwrap(),
                std::fs::read(dir.path().join("reference").join(file)).unwrap(),
                "kill {i}: {file}"
            );
        }
    }
}
