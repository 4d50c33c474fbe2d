//! Generation benchmarks' repositories: HumanEval, MATH (lm-eval's `EleutherAI/hendrycks_math`
//! configs, and `HuggingFaceH4/MATH-500`), MGSM (once a script dataset: here as
//! `datasets-cli convert_to_parquet` leaves one, its `train` split the exemplars), DROP and TruthfulQA's `generation` config.
//!
//! DROP's data folder has the simple-evals layout ("Passage: ...\nQuestion: ...\nAnswer:" and
//! the acceptable answers joined by "|"): each row is written back into the real schema, the
//! first acceptable answer as `answer`'s one span and the others as validated answers (which
//! of them were numbers or dates is not known here, so every answer is a span). MATH's subject
//! rows keep the real columns (`problem`, `level`, `type`, `solution`: no `answer`).

use std::path::Path;

use assay_data::{read_records, ReadOptions, Record};
use serde_json::{json, Value};

use super::{
    branch, shape, text_field, to_record, write, write_card, write_card_owned, write_parquet,
    write_splits, BuildError,
};

/// The MATH subjects: lm-eval's `hendrycks_math` (and MATH-lighteval's) config names, the data
/// folder's file names.
pub(super) const MATH_SUBJECTS: [&str; 7] = [
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
];

/// The MGSM languages.
const MGSM_LANGUAGES: [&str; 11] = [
    "bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh",
];

/// Builds the repositories under `root` from `data`; returns their ids.
pub(super) fn build(data: &Path, root: &Path) -> Result<Vec<String>, BuildError> {
    let read = |rel: &str, options: ReadOptions| read_records(&data.join(rel), &options);

    let humaneval = read("humaneval/HumanEval.jsonl.gz", ReadOptions::default())?;
    let main = branch(root, "openai/openai_humaneval", "main")?;
    write_parquet(
        &main.join("openai_humaneval/test-00000-of-00001.parquet"),
        &humaneval,
    )?;
    write_card(
        &main,
        &[("openai_humaneval", &[("test", "openai_humaneval/test-*")])],
    )?;

    let main = branch(root, "EleutherAI/hendrycks_math", "main")?;
    let mut configs = Vec::new();
    for subject in MATH_SUBJECTS {
        let rows = math_test_rows(data, subject, &["problem", "level", "type", "solution"])?;
        // `train` <- the test rows: the data folder has no MATH train split.
        for split in ["train", "test"] {
            write_parquet(
                &main.join(format!("{subject}/{split}-00000-of-00001.parquet")),
                &rows,
            )?;
        }
        let splits = ["train", "test"]
            .map(|s| (s.to_string(), format!("{subject}/{s}-*")))
            .to_vec();
        configs.push((subject, splits));
    }
    write_card_owned(&main, &configs)?;

    // HuggingFaceH4/MATH-500: one test.jsonl at the root, no card configs; the folder's file
    // has the real columns already.
    let main = branch(root, "HuggingFaceH4/MATH-500", "main")?;
    let source = data.join("math/math500_test.jsonl");
    std::fs::copy(&source, main.join("test.jsonl")).map_err(|e| BuildError::Io(source, e))?;
    write(
        &main.join("README.md"),
        "---\nlicense: mit\n---\n# MATH-500\n",
    )?;

    build_mgsm(data, root)?;

    let drop = read("drop/drop_v0_dev.jsonl.gz", ReadOptions::default())?
        .iter()
        .enumerate()
        .map(|(i, d)| drop_row(d, i))
        .collect::<Result<Vec<_>, _>>()?;
    let main = branch(root, "EleutherAI/drop", "main")?;
    // `train` <- the validation rows: the data folder has only the dev set.
    write_splits(&main, "default", "data", &["train", "validation"], &drop)?;

    Ok([
        "openai/openai_humaneval",
        "EleutherAI/hendrycks_math",
        "HuggingFaceH4/MATH-500",
        "juletxara/mgsm",
        "EleutherAI/drop",
    ]
    .map(String::from)
    .to_vec())
}

/// juletxara/mgsm, as `datasets-cli convert_to_parquet` leaves a script dataset (the layout
/// `datasets` 4 reads; it refuses a repository that still holds its script): one config per
/// language, `test` (question, answer: null, answer_number, equation_solution: null) and `train`
/// (the exemplars: question with its native prefix, the worked answer, the number).
fn build_mgsm(data: &Path, root: &Path) -> Result<(), BuildError> {
    let main = branch(root, "juletxara/mgsm", "main")?;
    let mut configs = Vec::new();
    for language in MGSM_LANGUAGES {
        let test = read_records(
            &data.join(format!("mgsm/mgsm_{language}.tsv")),
            &ReadOptions {
                column_names: Some(vec!["question".into(), "answer".into()]),
                ..ReadOptions::default()
            },
        )?;
        let test = test
            .iter()
            .map(mgsm_test_row)
            .collect::<Result<Vec<_>, _>>()?;
        let exemplars = read_records(
            &data.join("mgsm/exemplars.py"),
            &ReadOptions {
                python_variable: Some("MGSM_EXEMPLARS".into()),
                python_key: Some(language.into()),
                python_aligned: vec![
                    ("answer_number".into(), "EXEMPLAR_NUMBER_ANSWERS".into()),
                    (
                        "equation_solution".into(),
                        "EXEMPLAR_EQUATION_SOLUTIONS".into(),
                    ),
                ],
                ..ReadOptions::default()
            },
        )?;
        let train = exemplars
            .iter()
            .map(|d| {
                to_record(json!({
                    "question": text_field(d, "q")?,
                    "answer": text_field(d, "a")?,
                    "answer_number": d.get("answer_number").cloned().unwrap_or(Value::Null),
                    "equation_solution": d.get("equation_solution").cloned().unwrap_or(Value::Null),
                }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (split, rows) in [("train", &train), ("test", &test)] {
            let file = format!("{language}/{split}-00000-of-00001.parquet");
            write_parquet(&main.join(file), rows)?;
        }
        let splits = ["train", "test"]
            .map(|s| (s.to_string(), format!("{language}/{s}-*")))
            .to_vec();
        configs.push((language, splits));
    }
    write_card_owned(&main, &configs)
}

/// A TSV row (question, answer "1,000") in the real schema: the number as an integer.
fn mgsm_test_row(d: &Record) -> Result<Record, BuildError> {
    let answer = text_field(d, "answer")?;
    let number: i64 = answer
        .replace(',', "")
        .trim()
        .parse()
        .map_err(|_| shape("mgsm answer that is not an integer"))?;
    to_record(json!({
        "question": text_field(d, "question")?,
        "answer": null,
        "answer_number": number,
        "equation_solution": null,
    }))
}

/// A simple-evals DROP row in EleutherAI/drop's schema (see the module note).
fn drop_row(d: &Record, i: usize) -> Result<Record, BuildError> {
    let context = text_field(d, "context")?;
    let (passage, question) = context
        .strip_prefix("Passage: ")
        .and_then(|c| c.strip_suffix("\nAnswer:"))
        .and_then(|c| c.rsplit_once("\nQuestion: "))
        .ok_or_else(|| shape("drop context"))?;
    let mut answers = text_field(d, "ref_text")?
        .split('|')
        .map(str::to_string)
        .collect::<Vec<_>>();
    let first = answers.remove(0);
    let no_date = json!({"day": "", "month": "", "year": ""});
    let one = |text: String| json!({"number": "", "date": no_date, "spans": [text]});
    to_record(json!({
        "section_id": format!("standin_{i}"),
        "query_id": format!("standin-query-{i}"),
        "passage": passage,
        "question": question,
        "answer": one(first),
        "validated_answers": {
            "number": answers.iter().map(|_| "").collect::<Vec<_>>(),
            "date": answers.iter().map(|_| no_date.clone()).collect::<Vec<_>>(),
            "spans": answers.iter().map(|a| vec![a.clone()]).collect::<Vec<_>>(),
        },
    }))
}

/// TruthfulQA's `generation` rows from the CSV (answers split on "; ", as the Hub's lists).
pub(super) fn truthfulqa_generation_rows(data: &Path) -> Result<Vec<Record>, BuildError> {
    let rows = read_records(
        &data.join("truthfulqa/TruthfulQA.csv"),
        &ReadOptions::default(),
    )?;
    rows.iter()
        .map(|d| {
            let column = |name: &str| {
                d.get(name)
                    .or_else(|| d.get(&format!("\u{feff}{name}")))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| shape("truthfulqa csv column"))
            };
            let list = |name: &str| -> Result<Vec<String>, BuildError> {
                Ok(column(name)?.split("; ").map(str::to_string).collect())
            };
            to_record(json!({
                "type": column("Type")?,
                "category": column("Category")?,
                "question": column("Question")?,
                "best_answer": column("Best Answer")?,
                "correct_answers": list("Correct Answers")?,
                "incorrect_answers": list("Incorrect Answers")?,
                "source": column("Source")?,
            }))
        })
        .collect()
}

/// The data folder's MATH test rows of `subject`, with `fields` in that order (each repository
/// has its own column order).
pub(super) fn math_test_rows(
    data: &Path,
    subject: &str,
    fields: &[&str],
) -> Result<Vec<Record>, BuildError> {
    let docs = read_records(
        &data.join(format!("math/test/{subject}.jsonl")),
        &ReadOptions::default(),
    )?;
    Ok(docs.iter().map(|d| super::pick(d, fields)).collect())
}
