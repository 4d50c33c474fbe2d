//! Finding and reading a task's data files under the data directory.

use std::path::{Path, PathBuf};

use assay_data::{read_records, ReadOptions, Record};
use serde_json::Value;

use crate::spec::{DataFiles, TaskSpec};
use crate::TaskError;

/// Loader names that lm-eval task files put in `dataset_path` when `data_files` names the files.
const LOADER_NAMES: [&str; 5] = ["json", "csv", "parquet", "text", "arrow"];

/// The directory benchmark files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    /// `explicit` if given, else `$ASSAY_DATA_DIR`, else `../shared/data` when it exists.
    pub fn locate(explicit: Option<&Path>) -> Result<DataDir, TaskError> {
        assay_dirs::data_dir(explicit)
            .map(DataDir)
            .ok_or_else(|| TaskError::NoDataDir {
                looked: assay_dirs::DATA_DIR_SEARCH.into(),
            })
    }

    pub(crate) fn resolve(&self, relative: &str) -> PathBuf {
        let p = Path::new(relative);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.0.join(p)
        }
    }
}

/// The Hub dataset id a task names in `dataset_path` (`allenai/ai2_arc`, `piqa`), or `None`
/// when the task reads local files (a loader name such as `json`, or a path to a file).
pub fn hub_dataset_id(spec: &TaskSpec) -> Option<&str> {
    let path = spec.dataset_path.as_deref()?;
    let local = LOADER_NAMES.contains(&path)
        || path.starts_with('/')
        || path.starts_with('.')
        || path.contains('\\')
        || Path::new(path.strip_suffix(".gz").unwrap_or(path))
            .extension()
            .is_some_and(|e| {
                ["jsonl", "json", "csv", "tsv", "txt", "lst", "py", "parquet"]
                    .contains(&e.to_string_lossy().as_ref())
            });
    let id_like = path.split('/').count() <= 2
        && path.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    (!local && id_like).then_some(path)
}

/// The file holding `split` for a task, or `None` when the task has no such split.
pub(crate) fn split_file(
    task: &str,
    spec: &TaskSpec,
    split: &str,
) -> Result<Option<String>, TaskError> {
    let kwargs = spec.dataset_kwargs.clone().unwrap_or_default();
    let name = spec.dataset_name.clone().unwrap_or_default();
    let file = match (&kwargs.data_files, &spec.dataset_path) {
        (Some(DataFiles::PerSplit(map)), _) => map.get(split).cloned(),
        (Some(DataFiles::One(file)), _) => Some(file.clone()),
        (None, Some(path)) if !LOADER_NAMES.contains(&path.as_str()) => Some(path.clone()),
        _ => {
            return Err(TaskError::Invalid {
                task: task.into(),
                message: "no data: set dataset_path to a file or dataset_kwargs.data_files".into(),
            })
        }
    };
    Ok(file.map(|f| f.replace("{dataset_name}", &name)))
}

/// Reads the documents of `split`.
pub(crate) fn load_split(
    task: &str,
    spec: &TaskSpec,
    split: &str,
    data_dir: &DataDir,
) -> Result<Vec<Record>, TaskError> {
    let file = split_file(task, spec, split)?.ok_or_else(|| TaskError::Invalid {
        task: task.into(),
        message: format!("split `{split}` has no entry in dataset_kwargs.data_files"),
    })?;
    let path = data_dir.resolve(&file);
    if path.is_dir() {
        return Err(TaskError::Invalid {
            task: task.into(),
            message: format!(
                "{} is a folder, not a data file: dataset_path and data_files name files",
                path.display()
            ),
        });
    }
    if !path.is_file() {
        return Err(TaskError::DataMissing {
            task: task.into(),
            path,
            data_dir: data_dir.0.clone(),
        });
    }
    let kwargs = spec.dataset_kwargs.clone().unwrap_or_default();
    let name = spec.dataset_name.clone().unwrap_or_default();
    let column_names = kwargs.csv_columns().map_err(|message| TaskError::Invalid {
        task: task.into(),
        message,
    })?;
    let options = ReadOptions {
        column_names,
        line_field: None,
        python_variable: kwargs.python_variable.clone(),
        python_key: kwargs
            .python_key
            .as_ref()
            .map(|k| k.replace("{dataset_name}", &name)),
        python_aligned: kwargs
            .python_aligned_fields
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        line_number_field: None,
    };
    let mut docs = read_records(&path, &options).map_err(|source| TaskError::Data {
        task: task.into(),
        source,
    })?;
    for (field, file) in kwargs.line_aligned_fields.iter().flatten() {
        let extra_path = data_dir.resolve(file);
        if !extra_path.is_file() {
            return Err(TaskError::DataMissing {
                task: task.into(),
                path: extra_path,
                data_dir: data_dir.0.clone(),
            });
        }
        let values = read_records(
            &extra_path,
            &ReadOptions {
                line_field: Some(field.clone()),
                ..ReadOptions::default()
            },
        )
        .map_err(|source| TaskError::Data {
            task: task.into(),
            source,
        })?;
        if values.len() != docs.len() {
            return Err(TaskError::Invalid {
                task: task.into(),
                message: format!(
                    "{} has {} lines but {} has {} records; line-aligned files must match",
                    extra_path.display(),
                    values.len(),
                    path.display(),
                    docs.len()
                ),
            });
        }
        for (doc, mut value) in docs.iter_mut().zip(values) {
            let v = value.remove(field).unwrap_or(Value::Null);
            doc.insert(field.clone(), v);
        }
    }
    Ok(docs)
}

/// Whether the task has a file for `split`.
pub(crate) fn has_split(task: &str, spec: &TaskSpec, split: &str) -> bool {
    matches!(split_file(task, spec, split), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> TaskSpec {
        TaskSpec {
            dataset_path: Some(path.into()),
            ..TaskSpec::default()
        }
    }

    #[test]
    fn hub_ids_and_local_files() {
        for id in [
            "allenai/ai2_arc",
            "piqa",
            "openai/gsm8k",
            "cais/mmlu",
            "EleutherAI/hendrycks_math",
        ] {
            assert_eq!(hub_dataset_id(&spec(id)), Some(id), "{id}");
        }
        for local in [
            "json",
            "csv",
            "arc/arc_easy_test.jsonl",
            "/abs/data",
            "./here",
            "x.csv.gz",
            "a/b/c",
        ] {
            assert_eq!(hub_dataset_id(&spec(local)), None, "{local}");
        }
        assert_eq!(hub_dataset_id(&TaskSpec::default()), None);
    }
}
