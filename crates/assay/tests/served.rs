//! End-to-end tests of the OpenAI-compatible backend and the request cache: the real binary
//! against the stand-in server (the real model behind it), with injected faults and a killed run.

mod common;
use common::data_dir;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use assay_request_cache::RequestCache;
use assay_standin::{Backing, Fault, Faults, Lie, Options, StandIn};
use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

const MODEL: &str = "gemma-3-270m";

fn standin(configure: impl FnOnce(&mut Options)) -> StandIn {
    let mut options = Options {
        model_name: MODEL.into(),
        backing: Backing::Engine {
            model: assay_dirs::default_model_path(),
            threads: 1,
        },
        faults: Faults::default(),
        chat_only: false,
        no_logprobs: false,
        text_prompts_only: false,
        delay: Duration::ZERO,
        lie: None,
    };
    configure(&mut options);
    StandIn::start(options, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// `assay run` with per-sample logs into `out`.
fn assay(out: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.arg("run")
        .arg("--no-record")
        .arg("--data-dir")
        .arg(data_dir())
        .args(args)
        .arg("--log-samples")
        .arg("--output-path")
        .arg(out);
    cmd
}

/// `assay run --backend openai` against `server`.
fn served(server: &StandIn, out: &Path, args: &[&str]) -> Command {
    let mut cmd = assay(out, args);
    cmd.args(["--backend", "openai", "--model-name", MODEL, "--base-url"])
        .arg(server.url());
    cmd
}

fn ok(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {stderr}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

fn failed(output: Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The `resps` of every logged document of the newest run, in order.
/// The newest file of `dir` whose name starts with `prefix` (names end with the run's start
/// time: the greatest is the newest run's).
fn newest(dir: &Path, prefix: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .max()
        .unwrap_or_else(|| panic!("no {prefix} in {}", dir.display()))
}

fn resps(out: &Path, model_dir: &str) -> Vec<Value> {
    let file = newest(&out.join(model_dir), "samples_");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["resps"].clone())
        .collect()
}

fn logprobs(resps: &[Value]) -> Vec<f64> {
    resps
        .iter()
        .flat_map(|doc| doc.as_array().unwrap().clone())
        // lm-eval's layout: each log-likelihood as Python's str() of the float.
        .map(|r| r[0][0].as_str().unwrap().parse::<f64>().unwrap())
        .collect()
}

#[test]
fn served_scores_match_the_embedded_engine() {
    let server = standin(|_| {});
    let text_only = standin(|o| o.text_prompts_only = true);
    let dir = tempfile::tempdir().unwrap();
    let (embedded, tokens, text) = (
        dir.path().join("e"),
        dir.path().join("t"),
        dir.path().join("x"),
    );
    let task = ["--tasks", "arc_easy", "--limit", "5", "--no-cache"];
    ok(assay(&embedded, &task).output().unwrap());
    ok(served(&server, &tokens, &task)
        .args(["--tokenizer", "default"])
        .output()
        .unwrap());
    // A server that refuses token ids gets text prompts.
    let stderr = ok(served(&text_only, &text, &task)
        .args(["--tokenizer", "default"])
        .output()
        .unwrap());
    assert!(stderr.contains("refuses token-id prompts"), "{stderr}");
    let e = logprobs(&resps(&embedded, "gemma-3-270m-q4_k_m"));
    let t = logprobs(&resps(&tokens, MODEL));
    let x = logprobs(&resps(&text, MODEL));
    assert_eq!(e.len(), 20);
    // The same tokens scored one request at a time instead of a document's requests
    // together: llama.cpp rounds differently for the two batch shapes (docs/DESIGN.md).
    for (a, b) in e.iter().zip(&t) {
        assert!(
            (a - b).abs() <= 0.05 * a.abs() + 0.1,
            "embedded {a} vs served {b}"
        );
    }
    // Text prompts split at the server's text offsets give the very tokens of --tokenizer.
    assert_eq!(t, x);
}

#[test]
fn injected_faults_are_retried_and_change_no_answer() {
    let clean = standin(|_| {});
    let faulty = standin(|o| {
        o.faults = Faults {
            rate: 0.35,
            kinds: Fault::ALL.to_vec(),
            seed: 7,
            retry_after: 0.1,
            slow: Duration::from_secs(6),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let task = [
        "--tasks",
        "arc_easy",
        "--limit",
        "8",
        "--no-cache",
        "--concurrency",
        "2",
        "--timeout",
        "3",
        "--max-retries",
        "30",
    ];
    ok(served(&clean, &dir.path().join("clean"), &task)
        .output()
        .unwrap());
    let stderr = ok(served(&faulty, &dir.path().join("faulty"), &task)
        .output()
        .unwrap());
    assert_eq!(
        resps(&dir.path().join("clean"), MODEL),
        resps(&dir.path().join("faulty"), MODEL)
    );
    let injected: u64 = Fault::ALL.iter().map(|f| faulty.stats().faults(*f)).sum();
    assert!(injected > 0, "{}", faulty.stats().to_json());
    assert!(stderr.contains("retries: "), "{stderr}");
    assert!(!stderr.contains("retries: none"), "{stderr}");
}

#[test]
fn a_killed_run_resumes_without_asking_again() {
    let server = standin(|o| o.delay = Duration::from_millis(150));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.sqlite");
    let cache_arg = cache.to_str().unwrap();
    let task = [
        "--tasks",
        "arc_easy",
        "--limit",
        "15",
        "--concurrency",
        "2",
        "--cache",
        cache_arg,
    ];
    let requests = 60;
    let out = dir.path().join("resumed");
    let mut child = served(&server, &out, &task).spawn().unwrap();
    let start = Instant::now();
    loop {
        let stored = RequestCache::open(&cache)
            .and_then(|c| c.len())
            .unwrap_or(0);
        if stored >= 12 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Requests in flight at the kill may still finish on the server: wait until its count of
    // answers stops moving (a fixed pause was too short on a loaded machine).
    let mut last = server.stats().answered();
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(50));
        let now = server.stats().answered();
        if now != last {
            (last, still_since) = (now, Instant::now());
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the server never settled"
        );
    }
    let kept = RequestCache::open(&cache).unwrap().len().unwrap();
    assert!(kept < requests, "killed too late: {kept}");
    let before = server.stats().answered();
    let stderr = ok(served(&server, &out, &task).output().unwrap());
    let asked = server.stats().answered() - before;
    assert_eq!(asked, requests - kept, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{kept} answers reused, {} computed",
            requests - kept
        )),
        "{stderr}"
    );
    // The same answers as an uninterrupted run.
    let whole = dir.path().join("whole");
    let mut uninterrupted = task.to_vec();
    uninterrupted.truncate(6);
    uninterrupted.push("--no-cache");
    ok(served(&server, &whole, &uninterrupted).output().unwrap());
    assert_eq!(resps(&out, MODEL), resps(&whole, MODEL));
}

#[test]
fn replicas_share_the_work_and_cover_for_a_failed_one() {
    let (a, b) = (standin(|_| {}), standin(|_| {}));
    // A replica that resets every connection once the run is under way.
    let failing = standin(|o| {
        o.faults = Faults {
            rate: 1.0,
            kinds: vec![Fault::Reset],
            ..Faults::default()
        }
    });
    let dead = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}/v1")
    };
    let dir = tempfile::tempdir().unwrap();
    let task = [
        "--tasks",
        "arc_easy",
        "--limit",
        "6",
        "--no-cache",
        "--concurrency",
        "2",
    ];
    let run = |name: &str, urls: String| {
        let out = dir.path().join(name);
        let mut cmd = assay(&out, &task);
        cmd.args([
            "--backend",
            "openai",
            "--model-name",
            MODEL,
            "--base-url",
            &urls,
        ]);
        let stderr = ok(cmd.output().unwrap());
        (resps(&out, MODEL), stderr)
    };
    let (alone, _) = run("alone", a.url());
    let before = a.stats().answered();
    let (shared, _) = run("shared", format!("{},{}", a.url(), b.url()));
    assert_eq!(shared, alone);
    assert!(a.stats().answered() > before && b.stats().answered() > 0);
    let (covered, _) = run("covered", format!("{},{}", failing.url(), a.url()));
    assert_eq!(covered, alone);
    assert_eq!(failing.stats().answered(), 0);
    let (survived, stderr) = run("survived", format!("{dead},{}", a.url()));
    assert_eq!(survived, alone);
    assert!(
        stderr.contains("cannot reach") && stderr.contains("other replicas"),
        "{stderr}"
    );
}

#[test]
fn server_problems_are_named_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let task = ["--tasks", "arc_easy", "--limit", "2", "--no-cache"];

    let port = released_port();
    let stderr = failed(
        assay(dir.path(), &task)
            .args(["--backend", "openai", "--model-name", MODEL, "--base-url"])
            .arg(format!("http://127.0.0.1:{port}/v1"))
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("cannot reach"), "{stderr}");

    let server = standin(|_| {});
    let stderr = failed(
        assay(dir.path(), &task)
            .args([
                "--backend",
                "openai",
                "--model-name",
                "llama-70b",
                "--base-url",
            ])
            .arg(server.url())
            .output()
            .unwrap(),
    );
    assert!(
        stderr.contains("does not serve a model named `llama-70b`") && stderr.contains(MODEL),
        "{stderr}"
    );

    let no_logprobs = standin(|o| o.no_logprobs = true);
    let started = Instant::now();
    let stderr = failed(served(&no_logprobs, dir.path(), &task).output().unwrap());
    assert!(stderr.contains("no log-probabilities"), "{stderr}");
    // Not a transient fault: no retries.
    assert!(started.elapsed() < Duration::from_secs(20));

    // A server that ignores echo (llama.cpp's) or sends impossible log-probabilities is
    // refused at its first answer: never a score of 0 for every choice, never a score at all.
    for (lie, expect) in [
        (Lie::IgnoreEcho, "did not echo the prompt"),
        (Lie::PositiveLogprobs, "not a probability"),
    ] {
        let liar = standin(|o| o.lie = Some(lie));
        let started = Instant::now();
        let stderr = failed(served(&liar, dir.path(), &task).output().unwrap());
        assert!(stderr.contains(expect), "{lie:?}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{lie:?} was retried"
        );
        assert!(
            liar.stats().answered() <= 8,
            "{lie:?}: {}",
            liar.stats().answered()
        );
    }

    let chat_only = standin(|o| o.chat_only = true);
    let stderr = failed(
        served(&chat_only, dir.path(), &task)
            .args(["--api", "chat"])
            .output()
            .unwrap(),
    );
    assert!(
        stderr.contains("arc_easy") && stderr.contains("--api completions"),
        "{stderr}"
    );
    assert_eq!(chat_only.stats().answered(), 0);
}

#[test]
fn degenerate_scores_are_flagged_in_the_table_and_the_results() {
    // Every token scored 0: every choice ties, and the "accuracy" is the gold position's share.
    let server = standin(|o| o.lie = Some(Lie::ZeroLogprobs));
    let dir = tempfile::tempdir().unwrap();
    let output = served(
        &server,
        dir.path(),
        &["--tasks", "arc_easy", "--limit", "12", "--no-cache"],
    )
    .output()
    .unwrap();
    ok(output.clone());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("arc_easy (!)"), "{stdout}");
    assert!(
        stdout.contains("in 12 of 12 documents every choice scored the same"),
        "{stdout}"
    );
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(newest(&dir.path().join(MODEL), "results_")).unwrap(),
    )
    .unwrap();
    let alarm = results["assay"]["alarms"]["arc_easy"].as_str().unwrap();
    assert!(alarm.contains("degenerate"), "{alarm}");
}

#[test]
fn generation_runs_on_the_chat_endpoint() {
    let server = standin(|o| o.chat_only = true);
    let dir = tempfile::tempdir().unwrap();
    ok(served(
        &server,
        dir.path(),
        &[
            "--tasks",
            "gsm8k",
            "--limit",
            "2",
            "--no-cache",
            "--api",
            "chat",
            "--gen-kwargs",
            "max_gen_toks=8",
        ],
    )
    .output()
    .unwrap());
    let r = resps(dir.path(), MODEL);
    // A line per document and filter (strict-match, flexible-extract), as lm-eval writes them.
    assert_eq!(r.len(), 4);
    assert!(r[0][0][0].is_string(), "{r:?}");
    assert_eq!(server.stats().answered(), 2, "{}", server.stats().to_json());
    // The results name the backend that answered and the settings given.
    let results = newest(&dir.path().join(MODEL), "results_");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(results).unwrap()).unwrap();
    assert_eq!(results["config"]["model"], "openai-chat-completions");
    assert_eq!(
        results["config"]["gen_kwargs"],
        serde_json::json!({"max_gen_toks": 8})
    );
}

#[test]
fn the_cache_answers_a_repeated_run_and_can_be_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.sqlite");
    let cache_arg = cache.to_str().unwrap();
    let task = ["--tasks", "arc_easy", "--limit", "2", "--cache", cache_arg];
    let first = ok(assay(&dir.path().join("a"), &task).output().unwrap());
    assert!(first.contains("0 answers reused, 8 computed"), "{first}");
    let second = ok(assay(&dir.path().join("b"), &task).output().unwrap());
    assert!(second.contains("8 answers reused, 0 computed"), "{second}");
    assert_eq!(
        resps(&dir.path().join("a"), "gemma-3-270m-q4_k_m"),
        resps(&dir.path().join("b"), "gemma-3-270m-q4_k_m")
    );

    let cache_cmd = |args: &[&str]| {
        let mut cmd = Command::cargo_bin("assay").unwrap();
        cmd.arg("cache").args(args).args(["--cache", cache_arg]);
        cmd.output().unwrap()
    };
    let stats = cache_cmd(&["stats"]);
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(
        text.contains("8 answers") && text.contains("llama.cpp gemma-3-270m-q4_k_m"),
        "{text}"
    );
    assert!(!cache_cmd(&["prune"]).status.success());
    let pruned = cache_cmd(&["prune", "--model", "qwen"]);
    assert!(String::from_utf8_lossy(&pruned.stdout).contains("deleted 0 answers; 8 left"));
    let pruned = cache_cmd(&["prune", "--all"]);
    assert!(String::from_utf8_lossy(&pruned.stdout).contains("deleted 8 answers; 0 left"));
}

#[test]
fn generate_runs_a_prompt_set_on_a_served_model() {
    let server = standin(|o| o.chat_only = true);
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("p.jsonl");
    std::fs::write(
        &prompts,
        "{\"seed_id\": \"P01\", \"prompt\": \"Name a colour.\"}\n{\"seed_id\": \"P02\", \"prompt\": \"Name a fruit.\"}\n",
    )
    .unwrap();
    let out = dir.path().join("v");
    let output = Command::cargo_bin("assay")
        .unwrap()
        .args([
            "generate",
            "--backend",
            "openai",
            "--api",
            "chat",
            "--base-url",
        ])
        .arg(server.url())
        .args([
            "--model",
            MODEL,
            "--fine-tuned",
            MODEL,
            "--formats",
            "naked,system_style",
        ])
        .args(["--max-new-tokens", "6", "--prompts"])
        .arg(&prompts)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ok(output);
    assert!(stdout.contains("4 responses written"), "{stdout}");
    assert_eq!(server.stats().answered(), 4, "{}", server.stats().to_json());
    let lines =
        std::fs::read_to_string(out.join(format!("data/fine-tuned/{MODEL}/system_style.jsonl")))
            .unwrap();
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["model"], MODEL);
    assert!(first["tokens"].as_u64().unwrap() <= 6, "{first}");
    let log = std::fs::read_to_string(out.join(format!("logs/{MODEL}.log"))).unwrap();
    assert!(log.contains("chat template: the server's"), "{log}");
}

/// A port just released: nothing listens on it.
fn released_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every file under `dir`, read as text (lossy).
fn all_text_under(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text.push_str(&all_text_under(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    text
}

#[test]
fn a_password_in_the_base_url_is_never_printed_or_stored() {
    let server = standin(|_| {});
    let with_password = server.url().replacen("http://", "http://user:hunter2@", 1);
    let dir = tempfile::tempdir().unwrap();
    let output = assay(
        dir.path(),
        &["--tasks", "arc_easy", "--limit", "2", "--no-cache"],
    )
    .args(["--backend", "openai", "--model-name", MODEL, "--base-url"])
    .arg(&with_password)
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = ok(output);
    let stored = all_text_under(dir.path());
    assert!(stored.contains("results"), "the results were written");
    for text in [&stdout, &stderr, &stored] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert!(
        stored.contains("http://***@127.0.0.1"),
        "where it ran is kept"
    );

    // Nor in the error of a server that cannot be reached (reqwest's errors name the URL).
    let port = released_port();
    let stderr = failed(
        assay(
            dir.path(),
            &["--tasks", "arc_easy", "--limit", "2", "--no-cache"],
        )
        .args(["--backend", "openai", "--model-name", MODEL, "--base-url"])
        .arg(format!("http://user:hunter2@127.0.0.1:{port}/v1"))
        .output()
        .unwrap(),
    );
    assert!(
        stderr.contains("cannot reach") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}
