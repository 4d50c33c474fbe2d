//! Multiple-choice repositories whose data folder holds only a pre-formatted layout
//! (`query`, `choices`, `gold`): HellaSwag, BoolQ and OpenBookQA rows are written back into the
//! real schema so that the fields reproduce the folder's prompts (HellaSwag's `ctx_a` holds the
//! whole cleaned context and `ctx_b` is empty, and an ending that lost a leading WikiHow tag in
//! the cleaning gets a `[substeps]` tag back; BoolQ's `passage` the "title -- passage" text);
//! GPQA's CSV is served as the real gated repository serves it.
//!
//! Splits the folder lacks (HellaSwag's and BoolQ's `train`, OpenBookQA's `train` and
//! `validation`) hold the rows of the split it has, so that layouts and 0-shot prompts are the
//! real ones; few-shot examples drawn from them are not the real Hub's.

use std::path::Path;

use assay_data::{read_records, ReadOptions, Record};
use serde_json::{json, Value};

use super::{
    arc_row, branch, choices_and_gold, shape, text_field, to_record, write, write_card_owned,
    write_splits, BuildError,
};

/// The gated repository GPQA lives in, opened by [`crate::GATED_TOKEN`].
pub const GPQA_REPO: &str = "Idavidrein/gpqa";

/// Builds the repositories under `root` from `data`; returns their ids.
pub(super) fn build(data: &Path, root: &Path) -> Result<Vec<String>, BuildError> {
    let read = |rel: &str| read_records(&data.join(rel), &ReadOptions::default());

    let hellaswag = read("hellaswag/validation.jsonl")?
        .iter()
        .enumerate()
        .map(|(i, d)| hellaswag_row(d, i))
        .collect::<Result<Vec<_>, _>>()?;
    let main = branch(root, "Rowan/hellaswag", "main")?;
    write_splits(
        &main,
        "default",
        "data",
        &["train", "validation"],
        &hellaswag,
    )?;

    let boolq = read("boolq/validation.jsonl")?
        .iter()
        .map(boolq_row)
        .collect::<Result<Vec<_>, _>>()?;
    let main = branch(root, "aps/super_glue", "main")?;
    write_splits(&main, "boolq", "boolq", &["train", "validation"], &boolq)?;

    let openbookqa = read("openbookqa/test.jsonl")?
        .iter()
        .map(openbookqa_row)
        .collect::<Result<Vec<_>, _>>()?;
    let main = branch(root, "allenai/openbookqa", "main")?;
    write_splits(
        &main,
        "main",
        "main",
        &["train", "validation", "test"],
        &openbookqa,
    )?;

    // Idavidrein/gpqa: the CSV files at the root, one config each, gated. The folder has only
    // the diamond set: `gpqa_main` and `gpqa_extended` hold its rows too (real names, layout
    // and columns; not the real sets' rows).
    let csv = data.join("gpqa/gpqa_diamond.csv");
    let main = branch(root, GPQA_REPO, "main")?;
    let configs = ["gpqa_diamond", "gpqa_extended", "gpqa_main"];
    for config in configs {
        let target = main.join(format!("{config}.csv"));
        std::fs::copy(&csv, &target).map_err(|e| BuildError::Io(target, e))?;
    }
    let files = configs.map(|c| format!("{c}.csv"));
    let card: Vec<(&str, Vec<(String, String)>)> = configs
        .iter()
        .zip(&files)
        .map(|(c, f)| (*c, vec![("train".to_string(), f.clone())]))
        .collect();
    write_card_owned(&main, &card)?;
    write(
        &root.join("datasets").join(GPQA_REPO).join(".gated"),
        crate::GATED_TOKEN,
    )?;

    Ok([
        "Rowan/hellaswag",
        "aps/super_glue",
        "allenai/openbookqa",
        GPQA_REPO,
    ]
    .map(String::from)
    .to_vec())
}

/// `query` "activity: context" back to HellaSwag's fields (see the module note).
fn hellaswag_row(d: &Record, i: usize) -> Result<Record, BuildError> {
    let query = text_field(d, "query")?;
    let (activity, context) = query
        .split_once(": ")
        .ok_or_else(|| shape("hellaswag query without an activity label"))?;
    let (choices, gold) = choices_and_gold(d, "hellaswag")?;
    // A cleaned ending that starts with a space lost a WikiHow tag after lm-eval's strip (as
    // "[substeps] Earn ..." becomes " Earn ..."): the tag goes back, so the cleaning gives it.
    let endings: Vec<String> = choices
        .iter()
        .map(|c| {
            let text = doubled_space_runs(c.as_str().unwrap_or_default());
            match text.starts_with(' ') {
                true => format!("[substeps]{text}"),
                false => text,
            }
        })
        .collect();
    to_record(json!({
        "ind": d.get("ind").cloned().unwrap_or(json!(i)),
        "activity_label": activity,
        "ctx_a": doubled_space_runs(context),
        "ctx_b": "",
        "ctx": context,
        "endings": endings,
        "source_id": format!("assay-standin~{i}"),
        "split": "val",
        "split_type": "indomain",
        "label": gold.to_string(),
    }))
}

/// `text` with every run of two or more spaces twice as long: lm-eval's cleaning replaces each
/// pair of spaces by one, so a run of n spaces in the folder came from 2n (or 2n - 1).
fn doubled_space_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = 0;
    let flush = |out: &mut String, run: usize| {
        let spaces = if run >= 2 { 2 * run } else { run };
        out.extend(std::iter::repeat_n(' ', spaces));
    };
    for c in text.chars() {
        if c == ' ' {
            run += 1;
            continue;
        }
        flush(&mut out, run);
        run = 0;
        out.push(c);
    }
    flush(&mut out, run);
    out
}

/// `query` "passage\nQuestion: question?\nAnswer:", `choices` ["yes", "no"] back to SuperGLUE's.
fn boolq_row(d: &Record) -> Result<Record, BuildError> {
    let query = text_field(d, "query")?;
    let (passage, rest) = query
        .rsplit_once("\nQuestion: ")
        .ok_or_else(|| shape("boolq query"))?;
    let question = rest
        .strip_suffix("?\nAnswer:")
        .ok_or_else(|| shape("boolq query end"))?;
    let (choices, gold) = choices_and_gold(d, "boolq")?;
    let answer = choices.get(gold).and_then(Value::as_str);
    let label = match answer {
        Some("yes") => 1,
        Some("no") => 0,
        _ => return Err(shape("boolq choice other than yes/no")),
    };
    to_record(json!({
        "question": question,
        "passage": passage,
        "idx": d.get("idx").cloned().unwrap_or(Value::Null),
        "label": label,
    }))
}

/// `query` "Question: stem\nAnswer:", `choices`, `gold` back to OpenBookQA's `main` fields
/// (ARC's, with the question as `question_stem`).
fn openbookqa_row(d: &Record) -> Result<Record, BuildError> {
    let mut row = arc_row(d, "")?;
    let stem = row.remove("question").unwrap_or(Value::Null);
    row.insert("question_stem".into(), stem);
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_runs_double_so_that_the_cleaning_halves_them_back() {
        assert_eq!(doubled_space_runs("a b  c   d  "), "a b    c      d    ");
        assert_eq!(doubled_space_runs(""), "");
    }
}
