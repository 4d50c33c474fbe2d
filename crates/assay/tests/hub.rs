//! End to end: task files in lm-eval's form naming Hub datasets (`dataset_path: org/name`),
//! run by the real binary on the real model against the stand-in Hub, whose repositories are
//! built from ../shared/data in the real layouts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use assay_hub_standin::{build_repos, HubStandIn, Options, GATED_REPO};
use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

struct Hub {
    _root: tempfile::TempDir,
    server: HubStandIn,
}

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        build_repos(&data_dir(), root.path()).unwrap();
        let server = HubStandIn::start(
            root.path(),
            "127.0.0.1:0".parse().unwrap(),
            Options::default(),
        )
        .unwrap();
        Hub {
            _root: root,
            server,
        }
    })
}

/// `HF_ENDPOINT` at the stand-in Hub and `HF_HOME` at `home`.
fn hub_env(home: &Path) -> [(&'static str, String); 2] {
    [
        ("HF_ENDPOINT", hub().server.url()),
        ("HF_HOME", home.display().to_string()),
    ]
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Task files written the way lm-eval's own are (Hub ids, configs, Jinja with Python methods).
fn task_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "arc_easy.yaml",
        "task: arc_easy\ntag: [ai2_arc]\ndataset_path: allenai/ai2_arc\ndataset_name: ARC-Easy\n\
         output_type: multiple_choice\ntraining_split: train\nvalidation_split: validation\n\
         test_split: test\ndoc_to_text: \"Question: {{question}}\\nAnswer:\"\n\
         doc_to_target: \"{{choices.label.index(answerKey)}}\"\ndoc_to_choice: \"{{choices.text}}\"\n\
         should_decontaminate: true\ndoc_to_decontamination_query: \"Question: {{question}}\\nAnswer:\"\n\
         metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n\
         \x20 - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n\
         metadata:\n  version: 1.0\n",
    );
    write(
        "piqa.yaml",
        "task: piqa_hub\ndataset_path: baber/piqa\ndataset_name: null\noutput_type: multiple_choice\n\
         training_split: train\nvalidation_split: validation\ntest_split: null\n\
         doc_to_text: \"Question: {{goal}}\\nAnswer:\"\ndoc_to_target: label\n\
         doc_to_choice: \"{{[sol1, sol2]}}\"\nmetric_list:\n  - metric: acc\n",
    );
    write(
        "gated.yaml",
        &format!(
            "task: gated_gsm8k\ndataset_path: {GATED_REPO}\ndataset_name: main\noutput_type: loglikelihood\n\
             test_split: test\ndoc_to_text: \"Question: {{{{question}}}}\\nAnswer:\"\n\
             doc_to_target: \" {{{{answer}}}}\"\nmetric_list:\n  - metric: perplexity\n"
        ),
    );
    write(
        "hooked.yaml",
        "task: hooked\ndataset_path: truthfulqa/truthful_qa\ndataset_name: multiple_choice\n\
         output_type: multiple_choice\nvalidation_split: validation\n\
         doc_to_text: !function hooks.doc_to_text\ndoc_to_target: 0\n\
         doc_to_choice: \"{{mc1_targets.choices}}\"\n\
         process_docs: !function hooks.first_two_choices\n\
         process_results: !function hooks.process_results\nmetric_list:\n  - metric: acc\n",
    );
    write(
        "hooks.py",
        "def doc_to_text(doc):\n    return 'Q: ' + doc['question'] + '\\nA:'\n\
         def first_two_choices(dataset):\n\
         \x20   def cut(doc):\n\
         \x20       doc['mc1_targets']['choices'] = doc['mc1_targets']['choices'][:2]\n\
         \x20       return doc\n\
         \x20   return dataset.map(cut)\n\
         def process_results(doc, results):\n\
         \x20   lls = [r[0] for r in results]\n\
         \x20   assert len(lls) == 2\n\
         \x20   return {'acc': float(lls.index(max(lls)) == 0)}\n",
    );
    write(
        "missing_module.yaml",
        "task: missing_module\ndataset_path: openai/gsm8k\ndataset_name: main\n\
         output_type: loglikelihood\ntest_split: test\nprocess_docs: !function nowhere.process\n\
         doc_to_text: question\ndoc_to_target: answer\nmetric_list:\n  - metric: perplexity\n",
    );
    dir
}

struct Run {
    code: i32,
    stderr: String,
    results: Option<Value>,
}

fn run(tasks: &str, include: Option<&Path>, env: &[(&str, &str)]) -> Run {
    run_on(Some(&data_dir()), tasks, include, env)
}

/// `assay run` with the data folder `data`, or with none to be found (`None`).
fn run_on(data: Option<&Path>, tasks: &str, include: Option<&Path>, env: &[(&str, &str)]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.args(["run", "--no-cache", "--no-record"]);
    match data {
        Some(dir) => {
            cmd.arg("--data-dir").arg(dir);
        }
        None => {
            // A folder whose `../shared/data` does not exist (a /tmp/shared may).
            let cwd = out.path().join("no/data");
            std::fs::create_dir_all(&cwd).unwrap();
            cmd.env_remove("ASSAY_DATA_DIR").current_dir(cwd);
        }
    }
    cmd.args(["--tasks", tasks, "--limit", "8", "--output-path"])
        .arg(out.path())
        .env_remove("HF_TOKEN")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1");
    if let Some(dir) = include {
        cmd.arg("--include-path").arg(dir);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    let results = find_results(out.path())
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap());
    Run {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        results,
    }
}

fn find_results(dir: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_results(&path) {
                return Some(found);
            }
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("results_"))
        {
            return Some(path);
        }
    }
    None
}

fn metric(results: &Value, task: &str, name: &str) -> f64 {
    results["results"][task][name]
        .as_f64()
        .unwrap_or_else(|| panic!("{task} {name} in {}", results["results"]))
}

#[test]
fn hub_tasks_score_as_the_local_tasks_and_record_the_commit() {
    let home = tempfile::tempdir().unwrap();
    let tasks = task_folder();
    let vars = hub_env(home.path());
    let env = borrowed(&vars);
    let from_hub = run("arc_easy,piqa_hub,hooked", Some(tasks.path()), &env);
    assert_eq!(from_hub.code, 0, "{}", from_hub.stderr);
    assert!(
        from_hub
            .stderr
            .contains("replaces the built-in task of that name"),
        "{}",
        from_hub.stderr
    );
    let results = from_hub.results.unwrap();
    let origin = &results["assay"]["datasets"]["arc_easy"];
    assert_eq!(origin["repo"], "allenai/ai2_arc");
    assert_eq!(origin["config"], "ARC-Easy");
    assert_eq!(origin["commit"].as_str().unwrap().len(), 40);
    assert_eq!(
        results["assay"]["datasets"]["piqa_hub"]["repo"],
        "baber/piqa"
    );
    // The built-in tasks read the same benchmark from ../shared/data with the same prompts.
    let local = run("arc_easy,piqa", None, &[]);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let local = local.results.unwrap();
    assert!(local["assay"]["datasets"].as_object().unwrap().is_empty());
    for m in ["acc,none", "acc_norm,none"] {
        assert_eq!(
            metric(&results, "arc_easy", m),
            metric(&local, "arc_easy", m),
            "{m}"
        );
    }
    assert_eq!(
        metric(&results, "piqa_hub", "acc,none"),
        metric(&local, "piqa", "acc,none")
    );

    // Offline, with the Hub gone: the cache alone answers, with the same commit.
    let offline = [
        ("HF_ENDPOINT", "http://127.0.0.1:9".to_string()),
        ("HF_HOME", home.path().display().to_string()),
        ("HF_HUB_OFFLINE", "1".to_string()),
    ];
    let offline: Vec<(&str, &str)> = offline.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let again = run("arc_easy", Some(tasks.path()), &offline);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let again = again.results.unwrap();
    assert_eq!(
        again["assay"]["datasets"]["arc_easy"]["commit"],
        origin["commit"]
    );
    assert_eq!(
        metric(&again, "arc_easy", "acc,none"),
        metric(&results, "arc_easy", "acc,none")
    );
}

#[test]
fn hub_errors_name_the_task_and_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let tasks = task_folder();
    let vars = hub_env(home.path());
    let env = borrowed(&vars);
    let gated = run("gated_gsm8k", Some(tasks.path()), &env);
    assert_ne!(gated.code, 0);
    assert!(
        gated.stderr.contains("task gated_gsm8k")
            && gated.stderr.contains("is gated")
            && gated.stderr.contains("HF_TOKEN"),
        "{}",
        gated.stderr
    );
    let missing = run("missing_module", Some(tasks.path()), &env);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("task missing_module")
            && missing.stderr.contains("process_docs")
            && missing.stderr.contains("no module file"),
        "{}",
        missing.stderr
    );
    let empty = tempfile::tempdir().unwrap();
    let offline = [
        ("HF_HOME", empty.path().display().to_string()),
        ("HF_HUB_OFFLINE", "1".to_string()),
    ];
    let offline: Vec<(&str, &str)> = offline.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let nothing = run("arc_easy", Some(tasks.path()), &offline);
    assert_ne!(nothing.code, 0);
    assert!(
        nothing.stderr.contains("allenai/ai2_arc") && nothing.stderr.contains("HF_HUB_OFFLINE"),
        "{}",
        nothing.stderr
    );
}

#[test]
fn a_task_library_loads_despite_files_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "good.yaml",
        "task: good_one\ndataset_path: openai/gsm8k\ndataset_name: main\noutput_type: loglikelihood\ntest_split: test\ndoc_to_text: question\ndoc_to_target: answer\n",
    );
    write(
        "odd.yaml",
        "task: odd_one\ndataset_path: openai/gsm8k\ngen_prefix: x\n",
    );
    write("_group.yaml", "group: both\ntask: [good_one, odd_one]\n");
    let out = Command::cargo_bin("assay")
        .unwrap()
        .arg("tasks")
        .arg("--include-path")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("good_one") && stdout.contains("hub"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 task files could not be read")
            && stdout.contains("odd.yaml: line 3, column 1: unknown field `gen_prefix`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("group both") && stdout.contains("? tasks"),
        "{stdout}"
    );
    // Selecting the unreadable task gives its error.
    let r = run("odd_one", Some(dir.path()), &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("odd.yaml: line 3"), "{}", r.stderr);
    // A package that Python cannot import is said so.
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args(["tasks", "--tasks-from", "lm_eval"])
        .env("ASSAY_PYTHON", "python3")
        .env("PYTHONPATH", dir.path())
        .output()
        .unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot import lm_eval") && stderr.contains("pip install lm-eval"),
            "{stderr}"
        );
    }
}

#[test]
fn without_a_data_folder_built_in_tasks_read_the_hub() {
    let home = tempfile::tempdir().unwrap();
    let vars = hub_env(home.path());
    let env = borrowed(&vars);
    let tasks = "arc_challenge,piqa,winogrande,mmlu_astronomy";
    let hub_run = run_on(None, tasks, None, &env);
    assert_eq!(hub_run.code, 0, "{}", hub_run.stderr);
    let from_hub = hub_run.results.unwrap();
    let local = run(tasks, None, &[]);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let local = local.results.unwrap();
    for (task, repo) in [
        ("arc_challenge", "allenai/ai2_arc"),
        ("piqa", "baber/piqa"),
        ("winogrande", "allenai/winogrande"),
        ("mmlu_astronomy", "cais/mmlu"),
    ] {
        assert_eq!(from_hub["assay"]["datasets"][task]["repo"], repo, "{task}");
        assert_eq!(
            metric(&from_hub, task, "acc,none"),
            metric(&local, task, "acc,none"),
            "{task}: the Hub dataset and the data folder give the same documents and prompts"
        );
    }
    // A built-in task with no Hub fields still needs the folder, and says so.
    let none = run_on(None, "hellaswag", None, &env);
    assert_ne!(none.code, 0);
    assert!(none.stderr.contains("--data-dir"), "{}", none.stderr);
}
