//! Writing a Hugging Face dataset folder that `datasets.load_from_disk` opens: one Arrow IPC
//! stream file with the features in its schema metadata, `dataset_info.json` and `state.json`,
//! written to a temporary folder and renamed into place.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int64Builder, Int8Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{json, Value};

use crate::ValidateError;

/// One tokenized example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Unique id (`<prompt_id>-<generation_idx>`).
    pub id: String,
    /// The prompt's id.
    pub prompt_id: String,
    /// The prompt.
    pub prompt: String,
    /// The completion.
    pub completion: String,
    /// Which sample of the prompt.
    pub generation_idx: i64,
    /// Metadata as a JSON string.
    pub metadata: String,
    /// Token ids of prompt + completion.
    pub input_ids: Vec<i32>,
    /// `input_ids` with the prompt's positions set to -100.
    pub labels: Vec<i64>,
    /// 1 for every token.
    pub attention_mask: Vec<i8>,
}

const DATA_FILE: &str = "data-00000-of-00001.arrow";

/// The `features` of the dataset, in the `datasets` library's JSON form.
fn features() -> Value {
    let value = |t: &str| json!({"dtype": t, "_type": "Value"});
    let list = |t: &str| json!({"feature": {"dtype": t, "_type": "Value"}, "_type": "List"});
    json!({
        "id": value("string"),
        "prompt_id": value("string"),
        "prompt": value("string"),
        "completion": value("string"),
        "generation_idx": value("int64"),
        "metadata": value("string"),
        "input_ids": list("int32"),
        "labels": list("int64"),
        "attention_mask": list("int8"),
    })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ValidateError + '_ {
    move |source| ValidateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn arrow_error(path: &Path, e: arrow_schema::ArrowError) -> ValidateError {
    ValidateError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

/// Writes `examples` as a dataset folder at `dir` (replacing nothing: `dir` must not exist).
pub fn write_dataset(dir: &Path, examples: &[Example]) -> Result<(), ValidateError> {
    if dir.exists() {
        return Err(ValidateError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists: choose a new output folder",
            ),
        });
    }
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let hf = json!({"info": {"features": features()}}).to_string();
    let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("prompt_id", DataType::Utf8, true),
            Field::new("prompt", DataType::Utf8, true),
            Field::new("completion", DataType::Utf8, true),
            Field::new("generation_idx", DataType::Int64, true),
            Field::new("metadata", DataType::Utf8, true),
            Field::new("input_ids", list(DataType::Int32), true),
            Field::new("labels", list(DataType::Int64), true),
            Field::new("attention_mask", list(DataType::Int8), true),
        ])
        .with_metadata(std::collections::HashMap::from([(
            "huggingface".to_string(),
            hf,
        )])),
    );
    let strings = |get: fn(&Example) -> &str| -> ArrayRef {
        let mut b = StringBuilder::new();
        for e in examples {
            b.append_value(get(e));
        }
        Arc::new(b.finish())
    };
    let mut ids = ListBuilder::new(Int32Builder::new());
    let mut labels = ListBuilder::new(Int64Builder::new());
    let mut mask = ListBuilder::new(Int8Builder::new());
    for e in examples {
        ids.values().append_slice(&e.input_ids);
        ids.append(true);
        labels.values().append_slice(&e.labels);
        labels.append(true);
        mask.values().append_slice(&e.attention_mask);
        mask.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(|e| &e.id),
        strings(|e| &e.prompt_id),
        strings(|e| &e.prompt),
        strings(|e| &e.completion),
        Arc::new(Int64Array::from_iter_values(
            examples.iter().map(|e| e.generation_idx),
        )),
        strings(|e| &e.metadata),
        Arc::new(ids.finish()),
        Arc::new(labels.finish()),
        Arc::new(mask.finish()),
    ];
    let data = tmp.join(DATA_FILE);
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| arrow_error(&data, e))?;
    let file = std::fs::File::create(&data).map_err(io(&data))?;
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(file, &schema)
        .map_err(|e| arrow_error(&data, e))?;
    writer.write(&batch).map_err(|e| arrow_error(&data, e))?;
    writer.finish().map_err(|e| arrow_error(&data, e))?;
    let info = json!({"citation": "", "description": "", "features": features(), "homepage": "", "license": ""});
    let fingerprint: String = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for e in examples {
            h.update(e.id.as_bytes());
            h.update(e.completion.as_bytes());
        }
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let state = json!({
        "_data_files": [{"filename": DATA_FILE}],
        "_fingerprint": fingerprint,
        "_format_columns": null,
        "_format_kwargs": {},
        "_format_type": null,
        "_output_all_columns": false,
        "_split": null,
    });
    for (name, v) in [("dataset_info.json", info), ("state.json", state)] {
        let p = tmp.join(name);
        std::fs::write(&p, serde_json::to_string_pretty(&v).expect("JSON")).map_err(io(&p))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_three_files_and_refuses_an_existing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ds");
        let e = Example {
            id: "p-0".into(),
            prompt_id: "p".into(),
            prompt: "Q: Who?\nA:".into(),
            completion: " Grace Miller".into(),
            generation_idx: 0,
            metadata: "{\"city\": \"Veldria\"}".into(),
            input_ids: vec![2, 10, 11, 12],
            labels: vec![-100, -100, 11, 12],
            attention_mask: vec![1, 1, 1, 1],
        };
        write_dataset(&out, &[e.clone(), e]).unwrap();
        for f in [DATA_FILE, "dataset_info.json", "state.json"] {
            assert!(out.join(f).is_file(), "{f}");
        }
        assert!(!dir.path().join("ds.partial").exists());
        assert!(write_dataset(&out, &[])
            .unwrap_err()
            .to_string()
            .contains("already exists"));
    }
}
