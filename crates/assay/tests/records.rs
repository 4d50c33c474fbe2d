//! End-to-end tests of the run registry, `assay compare`, `assay report` and `assay view`: two
//! real runs of the default model (0-shot and 2-shot arc_easy), compared with paired tests,
//! imported lm-eval folders, bad input, and the web view clicked through in headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{json, Value};

mod common;
use common::{assay_with, data_dir, Out};

const DOCS: usize = 40;

fn assay(registry: &Path, args: &[&str]) -> Out {
    assay_with(args, &["--registry".as_ref(), registry.as_os_str()])
}

fn ok(out: Out) -> Out {
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out
}

/// Two recorded runs shared by the tests (read only; tests that change runs copy the file).
struct Fixture {
    dir: tempfile::TempDir,
    registry: PathBuf,
    /// The 0-shot run's results folder (it logged samples there).
    output: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry.sqlite");
        let output = dir.path().join("runs");
        let limit = DOCS.to_string();
        let data = data_dir();
        let common = [
            "run",
            "--no-cache",
            "--tasks",
            "arc_easy",
            "--limit",
            &limit,
            "--data-dir",
            data.to_str().unwrap(),
        ];
        let mut zero = common.to_vec();
        zero.extend([
            "--label",
            "zero",
            "--meta",
            "shots=0",
            "--output-path",
            output.to_str().unwrap(),
            "--log-samples",
        ]);
        let out = ok(assay(&registry, &zero));
        assert!(
            out.stdout.contains("recorded as run 1 (zero)"),
            "{}",
            out.stdout
        );
        // Without --output-path: the samples are staged beside the registry, then removed.
        let mut two = common.to_vec();
        two.extend(["--num-fewshot", "2", "--label", "two", "--tag", "fewshot"]);
        let out = ok(assay(&registry, &two));
        assert!(
            out.stdout.contains("recorded as run 2 (two)"),
            "{}",
            out.stdout
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".staging"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        Fixture {
            dir,
            registry,
            output,
        }
    })
}

/// A copy of the fixture's registry that a test may change.
fn registry_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::copy(&f.registry, &path).unwrap();
    (dir, path)
}

fn sample_file(output: &Path) -> PathBuf {
    let model_dir = std::fs::read_dir(output)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_dir(&model_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("samples_arc_easy")
        })
        .unwrap()
}

#[test]
fn runs_are_listed_shown_and_compared_with_paired_tests() {
    let f = fixture();
    let list = ok(assay(&f.registry, &["runs", "list"])).stdout;
    assert!(
        list.contains("zero") && list.contains("two") && list.contains("shots=0"),
        "{list}"
    );
    let show = ok(assay(&f.registry, &["runs", "show", "zero"])).stdout;
    for needle in [
        "Evaluation date",
        "gemma-3-270m-q4_k_m.gguf",
        "Command",
        "arc_easy",
        "acc_norm",
        "shots: 0",
    ] {
        assert!(show.contains(needle), "{needle} in {show}");
    }

    let summary = f.dir.path().join("summary.json");
    let out = ok(assay(
        &f.registry,
        &[
            "compare",
            "zero",
            "two",
            "--format",
            "json",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    ));
    let json_text = out.stdout.split("wrote ").next().unwrap();
    let doc: Value = serde_json::from_str(json_text).unwrap();
    let rows = doc["comparison"]["rows"].as_array().unwrap();
    let acc = rows.iter().find(|r| r["metric"] == "acc").unwrap();
    let delta = &acc["deltas"][1];
    assert_eq!(delta["test"], "mcnemar");
    assert_eq!(delta["n"], DOCS);
    let (b, c) = (delta["b"].as_u64().unwrap(), delta["c"].as_u64().unwrap());
    let base = acc["cells"][0]["value"].as_f64().unwrap();
    let other = acc["cells"][1]["value"].as_f64().unwrap();
    // On the same documents the discordant pairs account for the whole difference.
    assert!((other - base - (c as f64 - b as f64) / DOCS as f64).abs() < 1e-9);
    // The exact two-sided binomial tail, computed here independently.
    let n = b + c;
    let tail: f64 = (0..=b.min(c))
        .map(|k| {
            let mut choose = 1.0;
            for i in 0..k {
                choose *= (n - i) as f64 / (i + 1) as f64;
            }
            choose / 2f64.powi(n as i32)
        })
        .sum();
    let p = delta["p_value"].as_f64().unwrap();
    assert!((p - (2.0 * tail).min(1.0)).abs() < 1e-9, "{p} vs {tail}");

    // The 0-shot run's correct count equals its logged per-sample scores.
    let logged: f64 = std::fs::read_to_string(sample_file(&f.output))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["acc"]
                .as_f64()
                .unwrap()
        })
        .sum();
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let zero = &summary["benchmarks"]["arc_easy"]["zero"];
    assert_eq!(zero["correct"].as_f64().unwrap(), logged);
    assert_eq!(zero["total"], DOCS);
    assert!((zero["accuracy"].as_f64().unwrap() - logged / DOCS as f64).abs() < 1e-12);
    assert!(zero["avg_time"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["benchmarks"]["arc_easy"]["two"]["test"], "mcnemar");
    assert_eq!(summary["baseline"], "zero");

    let table = ok(assay(&f.registry, &["compare", "zero", "two"])).stdout;
    assert!(
        table.contains("| arc_easy") && table.contains("Δ two") && table.contains("two vs zero:"),
        "{table}"
    );
    let csv = ok(assay(
        &f.registry,
        &["compare", "1", "2", "--format", "csv"],
    ))
    .stdout;
    assert!(
        csv.starts_with("task,metric,filter,run_id,run,baseline,value"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 2 * 2);
    let md = ok(assay(
        &f.registry,
        &[
            "compare",
            "zero",
            "two",
            "--baseline",
            "two",
            "--format",
            "markdown",
        ],
    ))
    .stdout;
    assert!(
        md.starts_with("## Comparison against two") && md.contains("### Summary"),
        "{md}"
    );
}

#[test]
fn report_is_one_self_contained_file() {
    let f = fixture();
    let path = f.dir.path().join("report-test.html");
    ok(assay(
        &f.registry,
        &["report", "zero", "two", "-o", path.to_str().unwrap()],
    ));
    let html = std::fs::read_to_string(&path).unwrap();
    assert_eq!(html.matches("<svg").count(), 2, "bar and delta charts");
    assert!(html.contains("id=\"comparison-table\"") && html.contains("id=\"provenance-table\""));
    assert!(html.contains("shots"), "metadata shown");
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no network assets"
    );
    assert!(!html.contains("<script src") && !html.contains("<link rel=\"stylesheet\" href"));
    // Every document of both runs is in the embedded data.
    let start = html.find("id=\"assay-data\">").unwrap() + "id=\"assay-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&html[start..end].replace("<\\/", "</")).unwrap();
    let docs = data["tasks"]["arc_easy"].as_array().unwrap();
    assert_eq!(docs.len(), DOCS);
    assert!(docs.iter().all(|d| d["answers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["logprobs"].as_array().unwrap().len() >= 3)));
}

#[test]
fn runs_can_be_labelled_tagged_removed_and_imported() {
    let (_dir, registry) = registry_copy("r.sqlite");
    let out = ok(assay(
        &registry,
        &[
            "runs",
            "tag",
            "two",
            "lora",
            "--label",
            "two-shot",
            "--meta",
            "train_examples=2000",
            "--remove",
            "fewshot",
        ],
    ));
    assert!(
        out.stdout
            .contains("label two-shot, tags [lora], meta {train_examples=2000}"),
        "{}",
        out.stdout
    );
    ok(assay(&registry, &["runs", "rm", "two-shot"]));
    let list = ok(assay(&registry, &["runs", "list", "--json"])).stdout;
    let runs: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);

    // assay's own output folder imports like lm-eval's, samples included; twice is skipped.
    let fresh = registry.with_file_name("fresh.sqlite");
    let out = ok(assay(
        &fresh,
        &[
            "runs",
            "import",
            fixture().output.to_str().unwrap(),
            "--label",
            "again",
        ],
    ));
    assert!(
        out.stdout.contains("run 1:") && out.stdout.contains("(1 per-sample log)"),
        "{}",
        out.stdout
    );
    let out = ok(assay(
        &fresh,
        &["runs", "import", fixture().output.to_str().unwrap()],
    ));
    assert!(
        out.stdout.contains("skipped:") && out.stdout.contains("already recorded as run 1"),
        "{}",
        out.stdout
    );
}

/// An lm-eval 0.4 output folder (fictional task and documents), an lm-eval 0.3 results file,
/// and a JSON file that is neither.
fn lm_eval_folder(root: &Path) {
    let model = root.join("org__tiny-model");
    std::fs::create_dir_all(&model).unwrap();
    let stamp = "2025-03-08T10-11-12.123456";
    let results = json!({
        "results": {"demo_qa": {"alias": "demo_qa", "acc,none": 0.5, "acc_stderr,none": 0.2886751345948129,
                                 "acc_norm,none": 0.75, "acc_norm_stderr,none": 0.25}},
        "group_subtasks": {"demo_qa": []},
        "configs": {"demo_qa": {"task": "demo_qa", "num_fewshot": 0}},
        "versions": {"demo_qa": 1.0},
        "n-shot": {"demo_qa": 0},
        "higher_is_better": {"demo_qa": {"acc": true, "acc_norm": true}},
        "n-samples": {"demo_qa": {"original": 4, "effective": 4}},
        "config": {"model": "hf", "model_args": "pretrained=org/tiny-model,dtype=float16",
                   "batch_size": "4", "device": "cuda:0", "limit": null},
        "git_hash": "abc1234", "date": 1741428672.0, "lm_eval_version": "0.4.8",
        "model_name": "org/tiny-model", "model_name_sanitized": "org__tiny-model",
    });
    std::fs::write(
        model.join(format!("results_{stamp}.json")),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
    let lines: String = (0..4)
        .map(|i| {
            let right = i % 2 == 0;
            json!({
                "doc_id": i, "doc": {"q": format!("Which colour is fictional thing {i}?")},
                "target": 0,
                "arguments": {"gen_args_0": {"arg_0": format!("Q{i}?\nA:"), "arg_1": " red"},
                              "gen_args_1": {"arg_0": format!("Q{i}?\nA:"), "arg_1": " blue"}},
                "resps": [[[if right { -0.5 } else { -2.0 }, right]], [[-1.0, !right]]],
                "filtered_resps": [[if right { -0.5 } else { -2.0 }, right], [-1.0, !right]],
                "filter": "none", "metrics": ["acc", "acc_norm"],
                "doc_hash": format!("hash{i}"), "prompt_hash": "p", "target_hash": "t",
                "acc": if right { 1.0 } else { 0.0 }, "acc_norm": if i < 3 { 1.0 } else { 0.0 },
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(model.join(format!("samples_demo_qa_{stamp}.jsonl")), lines).unwrap();
    let old = root.join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(
        old.join("results.json"),
        json!({"results": {"demo_qa": {"acc": 0.25, "acc_stderr": 0.25}}, "versions": {"demo_qa": 0},
               "config": {"model": "hf-causal", "model_args": "pretrained=org/tiny-model-ft", "num_fewshot": 0,
                          "batch_size": 8, "device": "mps"}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        root.join("results_other_tool.json"),
        r#"{"scores": {"demo_qa": 0.5}}"#,
    )
    .unwrap();
}

#[test]
fn lm_eval_folders_import_and_other_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    lm_eval_folder(dir.path());
    let registry = dir.path().join("r.sqlite");
    let base = dir.path().join("org__tiny-model");
    ok(assay(
        &registry,
        &["runs", "import", base.to_str().unwrap(), "--label", "base"],
    ));
    let old = dir.path().join("old/results.json");
    ok(assay(
        &registry,
        &[
            "runs",
            "import",
            old.to_str().unwrap(),
            "--label",
            "ft",
            "--meta",
            "finetune=lora",
        ],
    ));
    // The whole folder again: both known runs are skipped, the foreign file is named.
    let out = assay(&registry, &["runs", "import", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "results_other_tool.json: not a results file of lm-eval (0.3 or 0.4) or assay"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.matches("skipped:").count(), 2, "{}", out.stdout);
    assert!(out.stdout.contains("0 runs imported"), "{}", out.stdout);
    let list = ok(assay(&registry, &["runs", "list"])).stdout;
    assert!(
        list.contains("lm-eval 0.4.8") && list.contains("lm-eval 0.3"),
        "{list}"
    );
    let show = ok(assay(&registry, &["runs", "show", "base"])).stdout;
    for needle in [
        "2025-03-08T10:11:12Z",
        "org/tiny-model",
        "cuda:0",
        "float16",
        "Batch size: 4",
        "50.00% ± 28.87%",
    ] {
        assert!(show.contains(needle), "{needle} in {show}");
    }
    // The 0.3 run has no samples: the test falls back to the standard errors.
    let out = ok(assay(
        &registry,
        &["compare", "base", "ft", "--format", "json"],
    ));
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        doc["comparison"]["rows"][0]["deltas"][1]["test"],
        "unpaired"
    );
    assert!(doc["comparison"]["notes"].as_array().unwrap().is_empty());
}

#[test]
fn outputs_and_the_cache_never_destroy_the_registry() {
    let (dir, registry) = registry_copy("runs.sqlite");
    let before = std::fs::read(&registry).unwrap();
    let target = registry.to_str().unwrap();
    let attempts: [&[&str]; 4] = [
        &["report", "zero", "two", "-o", target],
        &["compare", "zero", "two", "--summary-json", target],
        &["cache", "stats", "--cache", target],
        &["cache", "prune", "--all", "--cache", target],
    ];
    for args in attempts {
        let out = match args[0] {
            "cache" => assay_with(args, &[]),
            _ => assay(&registry, args),
        };
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("SQLite database") || out.stderr.contains("assay's run registry"),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(
            std::fs::read(&registry).unwrap(),
            before,
            "{args:?} changed it"
        );
    }
    // A cache named as the registry is named as what it is.
    let cache = dir.path().join("requests.sqlite");
    drop(assay_request_cache::RequestCache::open(&cache).unwrap());
    let out = assay(&cache, &["runs", "list"]);
    assert!(
        out.code == 1 && out.stderr.contains("assay's request cache"),
        "{}",
        out.stderr
    );
    // Devices and folders are refused, and nothing is created beside them.
    let out = assay(
        &registry,
        &["report", "zero", "two", "-o", dir.path().to_str().unwrap()],
    );
    assert!(
        out.code == 1 && out.stderr.contains("a folder"),
        "{}",
        out.stderr
    );
    #[cfg(unix)]
    {
        let out = assay_with(&["cache", "stats", "--cache", "/dev/null"], &[]);
        assert!(
            out.code == 1 && out.stderr.contains("not a regular file"),
            "{}",
            out.stderr
        );
        assert!(!Path::new("/dev/null-journal").exists());
    }
    ok(assay(&registry, &["runs", "list"]));
}

#[test]
fn bad_input_gets_clear_messages() {
    let f = fixture();
    let out = assay(&f.registry, &["compare", "zero", "99"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no run `99`") && out.stderr.contains("1 (zero)"),
        "{}",
        out.stderr
    );
    let out = assay(&f.registry, &["compare", "zero", "two", "--alpha", "5"]);
    assert!(
        out.code == 1 && out.stderr.contains("--alpha 5"),
        "{}",
        out.stderr
    );
    let out = assay(&f.registry, &["compare", "zero"]);
    assert!(
        out.code == 1 && out.stderr.contains("nothing to compare"),
        "{}",
        out.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    lm_eval_folder(dir.path());
    let registry = dir.path().join("r.sqlite");
    let _ = assay(
        &registry,
        &[
            "runs",
            "import",
            dir.path().join("org__tiny-model").to_str().unwrap(),
        ],
    );
    let run = ok(assay(
        &registry,
        &["runs", "import", fixture().output.to_str().unwrap()],
    ));
    assert!(run.stdout.contains("run 2:"), "{}", run.stdout);
    let out = assay(&registry, &["compare", "1", "2"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no task in common") && out.stderr.contains("has arc_easy"),
        "{}",
        out.stderr
    );

    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let data = data_dir();
    let run = [
        "run",
        "--tasks",
        "arc_easy",
        "--limit",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    for args in [&["runs", "list"][..], &["view", "--port", "0"], &run] {
        let out = assay(&junk, args);
        assert_eq!(out.code, 1, "{args:?}");
        assert!(
            out.stderr.contains("not an assay registry") && out.stderr.contains("junk.sqlite"),
            "{}",
            out.stderr
        );
    }
}

/// `assay view` on a copy of the fixture registry; returns the server and its address.
struct View {
    child: std::process::Child,
    addr: String,
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_view(registry: &Path) -> View {
    let mut child = Command::cargo_bin("assay")
        .unwrap()
        .args(["view", "--port", "0", "--registry"])
        .arg(registry)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim()
        .trim_end_matches('/')
        .to_string();
    View { child, addr }
}

/// A raw GET (the path exactly as given, unnormalised): status and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    get_as(addr, addr, path)
}

/// A raw GET with the `Host` header given.
fn get_as(addr: &str, host: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        text.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    )
}

#[test]
fn view_serves_only_its_assets_and_the_registry() {
    let (_dir, registry) = registry_copy("view.sqlite");
    let view = start_view(&registry);
    let (status, body) = get(&view.addr, "/");
    assert_eq!(status, 200);
    assert!(body.contains("assay view"));
    for path in [
        "/../Cargo.toml",
        "/assets/../../../../etc/passwd",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "/assets/",
    ] {
        let (status, body) = get(&view.addr, path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("root:"), "{path}");
    }
    let (status, body) = get(&view.addr, "/api/runs");
    assert_eq!(status, 200);
    let runs: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2);
    let (status, body) = get(&view.addr, "/api/compare?runs=zero,nope");
    assert_eq!(status, 400);
    assert!(body.contains("no run `nope`"), "{body}");
    // DNS rebinding: a page on another site reaches 127.0.0.1 under its own name.
    let port = view.addr.rsplit(':').next().unwrap();
    for host in [format!("evil.example:{port}"), "evil.example".into()] {
        let (status, body) = get_as(&view.addr, &host, "/api/runs");
        assert_eq!(status, 403, "{host}: {body}");
        assert!(!body.contains("runs"), "{host}: {body}");
    }
    let (status, _) = get_as(&view.addr, &format!("localhost:{port}"), "/api/runs");
    assert_eq!(status, 200);
}

#[test]
fn view_and_report_click_through_in_headless_chromium() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian's chromium and playwright-core: run scripts/setup.sh"
    );
    let f = fixture();
    let (dir, registry) = registry_copy("browser.sqlite");
    let report = dir.path().join("report.html");
    ok(assay(
        &registry,
        &["report", "zero", "two", "-o", report.to_str().unwrap()],
    ));
    let view = start_view(&registry);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .current_dir(&browser_dir)
        .arg("view.mjs")
        .arg(format!("http://{}/", view.addr))
        .arg(&report)
        .arg("1")
        .arg(&shots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["runs_listed"], 2);
    let table = seen["comparison_text"].as_str().unwrap();
    assert!(
        table.contains("arc_easy") && table.contains("zero (baseline)") && table.contains("Δ two"),
        "{table}"
    );
    assert_eq!(seen["charts"], 2);
    assert_eq!(seen["tasks"], json!(["arc_easy"]));
    assert_eq!(seen["count_all"], format!("{DOCS} of {DOCS} documents"));
    let disagree: usize = seen["count_disagree"]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(disagree < DOCS);
    assert!(seen["detail"].as_str().unwrap().contains("Prompt of two"));
    assert_eq!(seen["bad_request"]["status"], 400);
    assert_eq!(seen["view_errors"], json!([]));
    assert_eq!(seen["report_charts"], 2);
    assert!(seen["report_provenance"]
        .as_str()
        .unwrap()
        .contains("shots"));
    assert_eq!(seen["report_count_disagree"], seen["count_disagree"]);
    assert_eq!(seen["report_errors"], json!([]));
    assert!(shots.join("view.png").is_file() && shots.join("report.png").is_file());
    let _ = f;
}
