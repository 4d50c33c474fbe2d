//! Task data from a local folder or the Hub: a task whose `dataset_path` is a Hub id (and not a
//! file of the data folder) is read from the Hub; every other task from the folder, as before.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use assay_data::{ReadOptions, Record};
use assay_tasks::{hub_dataset_id, DataDir, DataSource, TaskError, TaskSpec};

use crate::client::Hub;
use crate::dataset::{read_split, resolve, DatasetQuery, ResolvedDataset};
use crate::HubError;

/// A split read once per run: the dataset, the split, and the CSV column names it was read with.
type SplitKey = (DatasetQuery, String, Option<Vec<String>>);

/// Where a task's documents were read from, for the results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatasetOrigin {
    /// `org/name`.
    pub repo: String,
    /// The config read.
    pub config: String,
    /// The revision asked for.
    pub revision: String,
    /// The commit it resolved to.
    pub commit: String,
}

/// The data folder (if any) and the Hub, behind one [`DataSource`].
pub struct TaskData {
    dir: Option<DataDir>,
    hub: Hub,
    resolved: Mutex<HashMap<DatasetQuery, ResolvedDataset>>,
    splits: Mutex<HashMap<SplitKey, Vec<Record>>>,
}

impl TaskData {
    /// `dir`: the data folder, if one was given or found (a local task without one fails when
    /// it is prepared, saying where it looked).
    pub fn new(dir: Option<DataDir>, hub: Hub) -> TaskData {
        TaskData {
            dir,
            hub,
            resolved: Mutex::new(HashMap::new()),
            splits: Mutex::new(HashMap::new()),
        }
    }

    /// The Hub datasets read so far, by task, for the results' provenance.
    pub fn origins(&self, tasks: &[(String, TaskSpec)]) -> BTreeMap<String, DatasetOrigin> {
        let resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        tasks
            .iter()
            .filter_map(|(task, spec)| {
                let query = self.hub_query(spec)?;
                let dataset = resolved.get(&query)?;
                Some((
                    task.clone(),
                    DatasetOrigin {
                        repo: dataset.snapshot.repo.clone(),
                        config: dataset.config.clone(),
                        revision: dataset.snapshot.revision.clone(),
                        commit: dataset.snapshot.commit.clone(),
                    },
                ))
            })
            .collect()
    }

    /// Whether `spec` is read from the Hub (its `dataset_path` a Hub id that is not a file of
    /// the data folder) rather than from the data folder.
    pub fn reads_hub(&self, spec: &TaskSpec) -> bool {
        self.hub_query(spec).is_some()
    }

    /// The Hub query of a task read from the Hub, `None` for a local task.
    fn hub_query(&self, spec: &TaskSpec) -> Option<DatasetQuery> {
        let id = hub_dataset_id(spec)?;
        if self.dir.as_ref().is_some_and(|d| d.0.join(id).exists()) {
            return None;
        }
        let kwargs = spec.dataset_kwargs.clone().unwrap_or_default();
        Some(DatasetQuery {
            repo: id.to_string(),
            config: spec.dataset_name.clone(),
            revision: kwargs.revision.clone(),
            data_files: kwargs.data_files.map(|files| files.patterns()),
        })
    }

    fn dataset(&self, task: &str, query: &DatasetQuery) -> Result<ResolvedDataset, TaskError> {
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = resolved.get(query) {
            return Ok(d.clone());
        }
        let dataset = resolve(&self.hub, query).map_err(|e| source_error(task, query, e))?;
        resolved.insert(query.clone(), dataset.clone());
        Ok(dataset)
    }

    fn local(&self) -> Result<&DataDir, TaskError> {
        self.dir.as_ref().ok_or_else(|| TaskError::NoDataDir {
            looked: assay_dirs::DATA_DIR_SEARCH.into(),
        })
    }
}

fn source_error(task: &str, query: &DatasetQuery, e: HubError) -> TaskError {
    let config = query
        .config
        .as_deref()
        .map(|c| format!(" (config {c})"))
        .unwrap_or_default();
    TaskError::Source {
        task: task.into(),
        message: format!("{}{config}: {e}", query.repo),
    }
}

impl DataSource for TaskData {
    fn has_split(&self, task: &str, spec: &TaskSpec, split: &str) -> bool {
        match self.hub_query(spec) {
            Some(query) => self
                .dataset(task, &query)
                .is_ok_and(|d| d.splits.contains_key(split)),
            None => self
                .dir
                .as_ref()
                .is_some_and(|d| d.has_split(task, spec, split)),
        }
    }

    fn load_split(
        &self,
        task: &str,
        spec: &TaskSpec,
        split: &str,
    ) -> Result<Vec<Record>, TaskError> {
        let Some(query) = self.hub_query(spec) else {
            return self.local()?.load_split(task, spec, split);
        };
        let column_names = spec
            .dataset_kwargs
            .as_ref()
            .map(|k| k.csv_columns())
            .transpose()
            .map_err(|message| TaskError::Invalid {
                task: task.into(),
                message,
            })?
            .flatten();
        let key = (query.clone(), split.to_string(), column_names.clone());
        if let Some(docs) = self
            .splits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(docs.clone());
        }
        let dataset = self.dataset(task, &query)?;
        let options = ReadOptions {
            column_names,
            ..ReadOptions::default()
        };
        let docs =
            read_split(&self.hub, &dataset, split, &options).map_err(|e| TaskError::Source {
                task: task.into(),
                message: format!("split {split}: {e}"),
            })?;
        self.splits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, docs.clone());
        Ok(docs)
    }

    fn has_data_folder(&self) -> bool {
        self.dir.is_some()
    }

    fn describe_split(&self, task: &str, spec: &TaskSpec, split: &str) -> Option<String> {
        match self.hub_query(spec) {
            Some(query) => {
                let dataset = self.dataset(task, &query).ok()?;
                Some(format!("{} {}/{split}", dataset.url(), dataset.config))
            }
            None => self.dir.as_ref()?.describe_split(task, spec, split),
        }
    }
}
