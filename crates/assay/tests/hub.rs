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
    /// Every line of the per-sample logs.
    samples: Vec<Value>,
}

fn run(tasks: &str, include: Option<&Path>, env: &[(&str, &str)]) -> Run {
    run_on(Some(&data_dir()), tasks, include, env)
}

/// `assay run` with the data folder `data`, or with none to be found (`None`).
fn run_on(data: Option<&Path>, tasks: &str, include: Option<&Path>, env: &[(&str, &str)]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.args(["run", "--no-cache", "--no-record", "--log-samples"]);
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
    let results = find_files(out.path(), "results_")
        .first()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap());
    let samples = find_files(out.path(), "samples_")
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    Run {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        results,
        samples,
    }
}

/// The files under `dir` whose names start with `prefix`.
fn find_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(find_files(&path, prefix));
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        {
            found.push(path);
        }
    }
    found
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
        "task: odd_one\ndataset_path: openai/gsm8k\ndoc_to_image: x\n",
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
            && stdout.contains("odd.yaml: line 3, column 1: unknown field `doc_to_image`"),
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
    let tasks = "arc_challenge,piqa,winogrande,mmlu_astronomy,truthfulqa_mc1,truthfulqa_mc2";
    let hub_run = run_on(None, tasks, None, &env);
    assert_eq!(hub_run.code, 0, "{}", hub_run.stderr);
    let from_hub = hub_run.results.unwrap();
    let local = run(tasks, None, &[]);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let local = local.results.unwrap();
    for (task, repo, key) in [
        ("arc_challenge", "allenai/ai2_arc", "acc,none"),
        ("piqa", "baber/piqa", "acc,none"),
        ("winogrande", "allenai/winogrande", "acc,none"),
        ("mmlu_astronomy", "cais/mmlu", "acc,none"),
        ("truthfulqa_mc1", "truthfulqa/truthful_qa", "acc,none"),
        ("truthfulqa_mc2", "truthfulqa/truthful_qa", "mc2,none"),
    ] {
        assert_eq!(from_hub["assay"]["datasets"][task]["repo"], repo, "{task}");
        assert_eq!(
            metric(&from_hub, task, key),
            metric(&local, task, key),
            "{task}: the Hub dataset and the data folder give the same documents and prompts"
        );
    }
    // A built-in task with no Hub fields still needs the folder, and says so.
    let none = run_on(None, "hellaswag", None, &env);
    assert_ne!(none.code, 0);
    assert!(none.stderr.contains("--data-dir"), "{}", none.stderr);
}

#[test]
fn filter_metric_and_aggregation_hooks_score_generations() {
    let home = tempfile::tempdir().unwrap();
    let vars = hub_env(home.path());
    let env = borrowed(&vars);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "gsm8k_hooked.yaml",
        "task: gsm8k_hooked\ndataset_path: openai/gsm8k\ndataset_name: main\n\
         output_type: generate_until\ntest_split: test\n\
         doc_to_text: \"Question: {{question}}\\nAnswer:\"\ndoc_to_target: !function gen_hooks.target\n\
         generation_kwargs:\n  until: [\"\\n\\n\"]\n  max_gen_toks: 12\n\
         filter_list:\n  - name: numbers\n    filter:\n\
         \x20     - function: custom\n        filter_fn: !function gen_hooks.last_number\n\
         \x20     - function: take_first\n\
         \x20 - name: loud\n    filter:\n      - function: !function gen_hooks.Shout\n        ignore_case: true\n\
         \x20     - function: take_first\n\
         metric_list:\n  - metric: exact_match\n\
         \x20 - metric: !function gen_hooks.length\n    aggregation: mean\n    higher_is_better: false\n\
         \x20 - metric: !function gen_hooks.pair\n    aggregation: !function gen_hooks.pair_agg\n    higher_is_better: true\n",
    );
    write(
        "gen_hooks.py",
        "import re\n\
         def target(doc):\n    return doc['answer'].split('####')[-1].strip()\n\
         def last_number(resps, docs):\n\
         \x20   return [[(re.findall(r'-?[0-9]+', r) or ['[none]'])[-1] for r in rs] for rs in resps]\n\
         class Shout:\n\
         \x20   def __init__(self, ignore_case=False):\n        self.upper = ignore_case\n\
         \x20   def apply(self, resps, docs):\n\
         \x20       return [[r.upper() if self.upper else r for r in rs] for rs in resps]\n\
         def length(references, predictions):\n    return float(len(predictions[0]))\n\
         def pair(items):\n    return items\n\
         def pair_agg(items):\n    return 1000 + sum(g == a for g, a in items) / len(items)\n",
    );
    let r = run("gsm8k_hooked", Some(dir.path()), &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let results = r.results.unwrap();
    let task = "gsm8k_hooked";
    assert_eq!(r.samples.len(), 16, "8 documents, 2 filters");
    for filter in ["numbers", "loud"] {
        let lines: Vec<&Value> = r.samples.iter().filter(|l| l["filter"] == filter).collect();
        let mut right = 0.0;
        let mut length = 0.0;
        for line in &lines {
            let answer = line["filtered_resps"][0].as_str().unwrap();
            let raw = line["resps"][0][0].as_str().unwrap();
            match filter {
                "numbers" => assert!(
                    answer == "[none]" || (raw.contains(answer) && answer.parse::<i64>().is_ok()),
                    "{answer} from {raw}"
                ),
                _ => assert_eq!(answer, raw.to_uppercase()),
            }
            assert_eq!(line["pair"], serde_json::json!([line["target"], answer]));
            right += f64::from(u8::from(line["target"] == answer));
            length += answer.chars().count() as f64;
            assert_eq!(
                line["exact_match"],
                f64::from(u8::from(line["target"] == answer))
            );
        }
        let n = lines.len() as f64;
        let em = metric(&results, task, &format!("exact_match,{filter}"));
        assert!((em - right / n).abs() < 1e-9, "{filter}: {em}");
        let len = metric(&results, task, &format!("length,{filter}"));
        assert!((len - length / n).abs() < 1e-9, "{filter}: {len}");
        let pair = metric(&results, task, &format!("pair,{filter}"));
        assert!((pair - 1000.0 - right / n).abs() < 1e-9, "{filter}: {pair}");
        assert_eq!(
            results["results"][task][format!("pair_stderr,{filter}")],
            "N/A"
        );
    }
    assert_eq!(results["higher_is_better"][task]["length"], false);
    let listed = &results["configs"][task]["metric_list"];
    assert_eq!(listed[2]["metric"], "pair");
    assert_eq!(listed[2]["aggregation"], "gen_hooks.pair_agg");
}
