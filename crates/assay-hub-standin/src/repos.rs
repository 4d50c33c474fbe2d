//! Dataset repositories in the layouts the real Hub repositories have, built from the
//! benchmark files of a data folder (`../shared/data`): the same fields, configs, split file
//! names and card `configs:` as `openai/gsm8k`, `allenai/ai2_arc`, `cais/mmlu`,
//! `allenai/winogrande`, `truthfulqa/truthful_qa` and `baber/piqa`; `ybisk/piqa` as a script
//! dataset readable only through its parquet export; and a gated copy of GSM8K.
//!
//! HellaSwag, BoolQ, OpenBookQA and GPQA are built in [`choice`]; HumanEval, MATH, MATH-500,
//! MGSM and DROP in [`generation`], with what each had to write back into the real schema; the
//! Open LLM Leaderboard v2's BBH, MMLU-Pro, MuSR, IFEval and MATH-lighteval in [`leaderboard`].
//!
//! The data folder has no `train` split for ARC, PIQA and WinoGrande, which lm-eval's task files
//! name (and `datasets` must find) even at 0 shots: there the stand-in's `train` holds the
//! validation rows, so layouts and 0-shot prompts are the real ones; few-shot examples drawn
//! from such a `train` are not the real Hub's.

mod choice;
mod generation;
mod leaderboard;

pub use choice::GPQA_REPO;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use assay_data::{read_records, ReadOptions, Record};
use serde_json::{json, Value};

/// The token that opens the gated repository.
pub const GATED_TOKEN: &str = "hf_standin_gated_token";

/// The gated repository.
pub const GATED_REPO: &str = "assay-standin/gated-gsm8k";

/// Why the repositories could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A benchmark file could not be read.
    #[error("{0}")]
    Data(#[from] assay_data::DataError),
    /// A file could not be written.
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    /// Records could not become Parquet.
    #[error("{path}: cannot write Parquet: {message}", path = .0.display(), message = .1)]
    Parquet(PathBuf, String),
    /// A benchmark file has an unexpected shape.
    #[error("{0}")]
    Shape(String),
}

/// Writes every repository under `root` (as [`crate::HubStandIn`] serves it) from `data`.
/// Returns the repository ids.
pub fn build_repos(data: &Path, root: &Path) -> Result<Vec<String>, BuildError> {
    let mut built = Vec::new();
    let read = |rel: &str, options: ReadOptions| read_records(&data.join(rel), &options);

    // openai/gsm8k: configs main and socratic (only main is built), question/answer.
    let gsm_train = read("gsm8k/train.jsonl", ReadOptions::default())?;
    let gsm_test = read("gsm8k/test.jsonl", ReadOptions::default())?;
    for (repo, gated) in [("openai/gsm8k", false), (GATED_REPO, true)] {
        let main = branch(root, repo, "main")?;
        write_parquet(&main.join("main/train-00000-of-00001.parquet"), &gsm_train)?;
        write_parquet(&main.join("main/test-00000-of-00001.parquet"), &gsm_test)?;
        write_card(
            &main,
            &[(
                "main",
                &[("train", "main/train-*"), ("test", "main/test-*")],
            )],
        )?;
        if gated {
            write(
                &root.join("datasets").join(repo).join(".gated"),
                GATED_TOKEN,
            )?;
        }
        built.push(repo.to_string());
    }

    // allenai/ai2_arc: id, question, choices {text, label}, answerKey.
    let repo = "allenai/ai2_arc";
    let main = branch(root, repo, "main")?;
    let mut configs = Vec::new();
    for (config, file_name) in [("ARC-Challenge", "arc_challenge"), ("ARC-Easy", "arc_easy")] {
        // `train` <- the validation rows (see the module note).
        for (split, suffix) in [("test", "test"), ("train", "val"), ("validation", "val")] {
            let docs = read(
                &format!("arc/{file_name}_{suffix}.jsonl"),
                ReadOptions::default(),
            )?;
            let rows = docs
                .iter()
                .enumerate()
                .map(|(i, d)| arc_row(d, &format!("{config}/{split}/{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            write_parquet(
                &main.join(format!("{config}/{split}-00000-of-00001.parquet")),
                &rows,
            )?;
        }
        configs.push(config);
    }
    let arc: Vec<(&str, Vec<(String, String)>)> = configs
        .iter()
        .map(|c| {
            (
                *c,
                ["test", "train", "validation"]
                    .iter()
                    .map(|s| (s.to_string(), format!("{c}/{s}-*")))
                    .collect(),
            )
        })
        .collect();
    write_card_owned(&main, &arc)?;
    built.push(repo.into());

    // cais/mmlu: one config per subject; question, subject, choices, answer (0-3).
    let repo = "cais/mmlu";
    let main = branch(root, repo, "main")?;
    let mut subjects: Vec<String> = std::fs::read_dir(data.join("mmlu/test"))
        .map_err(|e| BuildError::Io(data.join("mmlu/test"), e))?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix("_test.csv")
                .map(str::to_string)
        })
        .collect();
    subjects.sort();
    let columns = ["question", "A", "B", "C", "D", "answer"]
        .map(String::from)
        .to_vec();
    let mut mmlu_configs = Vec::new();
    for subject in &subjects {
        let mut splits = Vec::new();
        for (split, folder) in [("test", "test"), ("validation", "val"), ("dev", "dev")] {
            let docs = read(
                &format!("mmlu/{folder}/{subject}_{folder}.csv"),
                ReadOptions {
                    column_names: Some(columns.clone()),
                    ..ReadOptions::default()
                },
            )?;
            let rows: Vec<Record> = docs
                .iter()
                .map(|d| mmlu_row(d, subject))
                .collect::<Result<_, _>>()?;
            write_parquet(
                &main.join(format!("{subject}/{split}-00000-of-00001.parquet")),
                &rows,
            )?;
            splits.push((split.to_string(), format!("{subject}/{split}-*")));
        }
        mmlu_configs.push((subject.as_str(), splits));
    }
    write_card_owned(&main, &mmlu_configs)?;
    built.push(repo.into());

    // allenai/winogrande: sentence, option1, option2, answer ("1"/"2").
    let repo = "allenai/winogrande";
    let main = branch(root, repo, "main")?;
    let wino = read("winogrande/validation.jsonl", ReadOptions::default())?;
    let rows: Vec<Record> = wino
        .iter()
        .map(|d| pick(d, &["sentence", "option1", "option2", "answer"]))
        .collect();
    for split in ["train", "validation"] {
        // `train` <- the validation rows (see the module note).
        let file = format!("winogrande_xl/{split}-00000-of-00001.parquet");
        write_parquet(&main.join(file), &rows)?;
    }
    write_card(
        &main,
        &[(
            "winogrande_xl",
            &[
                ("train", "winogrande_xl/train-*"),
                ("validation", "winogrande_xl/validation-*"),
            ],
        )],
    )?;
    built.push(repo.into());

    // truthfulqa/truthful_qa: multiple_choice with mc1/mc2 targets {choices, labels}.
    let repo = "truthfulqa/truthful_qa";
    let main = branch(root, repo, "main")?;
    let text = std::fs::read_to_string(data.join("truthfulqa/mc_task.json"))
        .map_err(|e| BuildError::Io(data.join("truthfulqa/mc_task.json"), e))?;
    let items: Vec<Value> = serde_json::from_str(&text)
        .map_err(|e| BuildError::Shape(format!("truthfulqa/mc_task.json: {e}")))?;
    let rows: Vec<Record> = items.iter().map(truthfulqa_row).collect::<Result<_, _>>()?;
    write_parquet(
        &main.join("multiple_choice/validation-00000-of-00001.parquet"),
        &rows,
    )?;
    write_parquet(
        &main.join("generation/validation-00000-of-00001.parquet"),
        &generation::truthfulqa_generation_rows(data)?,
    )?;
    write_card(
        &main,
        &[
            ("generation", &[("validation", "generation/validation-*")]),
            (
                "multiple_choice",
                &[("validation", "multiple_choice/validation-*")],
            ),
        ],
    )?;
    built.push(repo.into());

    // baber/piqa: goal, sol1, sol2, label; no card configs (splits from file names).
    let piqa = read_piqa(data)?;
    let repo = "baber/piqa";
    let main = branch(root, repo, "main")?;
    write_parquet(&main.join("data/validation-00000-of-00001.parquet"), &piqa)?;
    write_parquet(&main.join("data/train-00000-of-00001.parquet"), &piqa)?;
    write(
        &main.join("README.md"),
        "---\nlicense: afl-3.0\n---\n# PIQA\n",
    )?;
    built.push(repo.into());

    // ybisk/piqa: a script dataset; its rows only in refs/convert/parquet.
    let repo = "ybisk/piqa";
    let main = branch(root, repo, "main")?;
    write(
        &main.join("piqa.py"),
        "# a dataset script: never run by datasets 4 or assay\n",
    )?;
    write(
        &main.join("README.md"),
        "---\nlicense: afl-3.0\n---\n# PIQA (script)\n",
    )?;
    let export = branch(root, repo, PARQUET_EXPORT)?;
    write_parquet(&export.join("plain_text/validation/0000.parquet"), &piqa)?;
    write_parquet(&export.join("plain_text/train/0000.parquet"), &piqa)?;
    built.push(repo.into());

    built.extend(choice::build(data, root)?);
    built.extend(generation::build(data, root)?);
    built.extend(leaderboard::build(data, root)?);
    Ok(built)
}

/// The branch the Hub's parquet export lives on.
const PARQUET_EXPORT: &str = "refs/convert/parquet";

fn branch(root: &Path, repo: &str, name: &str) -> Result<PathBuf, BuildError> {
    let dir = root
        .join("datasets")
        .join(repo)
        .join(name.replace('/', "%2F"));
    std::fs::create_dir_all(&dir).map_err(|e| BuildError::Io(dir.clone(), e))?;
    write(
        &dir.join(".gitattributes"),
        "*.parquet filter=lfs diff=lfs merge=lfs -text\n",
    )?;
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<(), BuildError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::Io(parent.into(), e))?;
    }
    std::fs::write(path, text).map_err(|e| BuildError::Io(path.into(), e))
}

fn write_card(dir: &Path, configs: &[(&str, &[(&str, &str)])]) -> Result<(), BuildError> {
    let owned: Vec<(&str, Vec<(String, String)>)> = configs
        .iter()
        .map(|(c, splits)| {
            (
                *c,
                splits
                    .iter()
                    .map(|(s, p)| (s.to_string(), p.to_string()))
                    .collect(),
            )
        })
        .collect();
    write_card_owned(dir, &owned)
}

/// `rows` as the one Parquet file of each split in `splits` (`{folder}/{split}-00000-of-00001`)
/// on branch folder `main`, and a card naming them as the config `config`.
fn write_splits(
    main: &Path,
    config: &str,
    folder: &str,
    splits: &[&str],
    rows: &[Record],
) -> Result<(), BuildError> {
    for split in splits {
        let file = format!("{folder}/{split}-00000-of-00001.parquet");
        write_parquet(&main.join(file), rows)?;
    }
    let patterns = splits
        .iter()
        .map(|s| (s.to_string(), format!("{folder}/{s}-*")))
        .collect();
    write_card_owned(main, &[(config, patterns)])
}

/// README.md with a `configs:` front matter as the Hub's cards have it.
fn write_card_owned(
    dir: &Path,
    configs: &[(&str, Vec<(String, String)>)],
) -> Result<(), BuildError> {
    let mut text = String::from("---\nconfigs:\n");
    for (config, splits) in configs {
        text.push_str(&format!("- config_name: {config}\n  data_files:\n"));
        for (split, pattern) in splits {
            text.push_str(&format!("  - split: {split}\n    path: {pattern}\n"));
        }
    }
    text.push_str("---\n\nServed by assay-hub-standin for tests.\n");
    write(&dir.join("README.md"), &text)
}

fn pick(d: &Record, fields: &[&str]) -> Record {
    fields
        .iter()
        .map(|f| (f.to_string(), d.get(*f).cloned().unwrap_or(Value::Null)))
        .collect()
}

fn shape(what: &str) -> BuildError {
    BuildError::Shape(format!("unexpected record shape: {what}"))
}

/// A record's string field, or a shape error naming it.
fn text_field<'a>(d: &'a Record, field: &str) -> Result<&'a str, BuildError> {
    d.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| shape(&format!("no text field `{field}`")))
}

/// The pre-formatted layout's `choices` and `gold` index; a shape error names `what`.
fn choices_and_gold<'a>(d: &'a Record, what: &str) -> Result<(&'a Vec<Value>, usize), BuildError> {
    let choices = d
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| shape(&format!("{what} choices")))?;
    let gold = d
        .get("gold")
        .and_then(Value::as_u64)
        .ok_or_else(|| shape(&format!("{what} gold")))?;
    Ok((choices, gold as usize))
}

/// A JSON object as a record.
fn to_record(value: Value) -> Result<Record, BuildError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(shape("a row that is not an object")),
    }
}

/// `query` "Question: X\nAnswer:", `choices`, `gold` back to ai2_arc's fields.
fn arc_row(d: &Record, id: &str) -> Result<Record, BuildError> {
    let query = d
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| shape("arc query"))?;
    let question = query
        .strip_prefix("Question: ")
        .and_then(|q| q.strip_suffix("\nAnswer:"))
        .ok_or_else(|| shape("arc query form"))?;
    let (choices, gold) = choices_and_gold(d, "arc")?;
    let labels: Vec<String> = (0..choices.len())
        .map(|i| ((b'A' + i as u8) as char).to_string())
        .collect();
    let answer = labels
        .get(gold)
        .cloned()
        .ok_or_else(|| shape("arc gold range"))?;
    let id = d.get("id").cloned().unwrap_or_else(|| json!(id));
    Ok(json!({"id": id, "question": question, "choices": {"text": choices, "label": labels}, "answerKey": answer})
        .as_object()
        .cloned()
        .unwrap_or_default())
}

fn mmlu_row(d: &Record, subject: &str) -> Result<Record, BuildError> {
    let text = |k: &str| {
        d.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| shape("mmlu column"))
    };
    let letter = text("answer")?;
    let answer = ["A", "B", "C", "D"]
        .iter()
        .position(|l| *l == letter.trim())
        .ok_or_else(|| shape("mmlu answer"))?;
    Ok(json!({
        "question": text("question")?,
        "subject": subject,
        "choices": [text("A")?, text("B")?, text("C")?, text("D")?],
        "answer": answer,
    })
    .as_object()
    .cloned()
    .unwrap_or_default())
}

fn truthfulqa_row(item: &Value) -> Result<Record, BuildError> {
    let targets = |k: &str| -> Result<Value, BuildError> {
        let map = item
            .get(k)
            .and_then(Value::as_object)
            .ok_or_else(|| shape("truthfulqa targets"))?;
        let choices: Vec<&String> = map.keys().collect();
        let labels: Vec<i64> = map.values().map(|v| v.as_i64().unwrap_or(0)).collect();
        Ok(json!({"choices": choices, "labels": labels}))
    };
    Ok(json!({
        "question": item.get("question").cloned().unwrap_or(Value::Null),
        "mc1_targets": targets("mc1_targets")?,
        "mc2_targets": targets("mc2_targets")?,
    })
    .as_object()
    .cloned()
    .unwrap_or_default())
}

fn read_piqa(data: &Path) -> Result<Vec<Record>, BuildError> {
    let docs = read_records(&data.join("piqa/valid.jsonl"), &ReadOptions::default())?;
    let labels = read_records(
        &data.join("piqa/valid-labels.lst"),
        &ReadOptions {
            line_field: Some("label".into()),
            ..ReadOptions::default()
        },
    )?;
    if docs.len() != labels.len() {
        return Err(shape("piqa labels do not align"));
    }
    docs.iter()
        .zip(labels)
        .map(|(d, l)| {
            let mut row = pick(d, &["goal", "sol1", "sol2"]);
            let label = l
                .get("label")
                .and_then(Value::as_str)
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| shape("piqa label"))?;
            row.insert("label".into(), json!(label));
            Ok(row)
        })
        .collect()
}

/// Records as one Parquet file, with the schema inferred from them.
pub fn write_parquet(path: &Path, rows: &[Record]) -> Result<(), BuildError> {
    let err = |m: String| BuildError::Parquet(path.into(), m);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::Io(parent.into(), e))?;
    }
    let values: Vec<Value> = rows.iter().map(|r| Value::Object(r.clone())).collect();
    let schema = arrow_json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))
        .map_err(|e| err(e.to_string()))?;
    let schema = Arc::new(schema);
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(|e| err(e.to_string()))?;
    let file = std::fs::File::create(path).map_err(|e| BuildError::Io(path.into(), e))?;
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(|e| err(e.to_string()))?;
    for chunk in values.chunks(1024) {
        decoder.serialize(chunk).map_err(|e| err(e.to_string()))?;
        if let Some(batch) = decoder.flush().map_err(|e| err(e.to_string()))? {
            writer.write(&batch).map_err(|e| err(e.to_string()))?;
        }
    }
    writer.close().map_err(|e| err(e.to_string()))?;
    Ok(())
}
