//! Where a task's documents come from. [`PreparedTask::prepare`](crate::PreparedTask::prepare)
//! reads them through a [`DataSource`]: today a local folder ([`DataDir`]); a dataset hub or a
//! user's Python hook is another implementation of the same three questions.

use assay_data::Record;

use crate::dataset::{self, DataDir};
use crate::spec::TaskSpec;
use crate::TaskError;

/// A place a task's documents can be read from.
pub trait DataSource {
    /// Whether `task` has documents for `split` here.
    fn has_split(&self, task: &str, spec: &TaskSpec, split: &str) -> bool;

    /// The documents of `split`, in order.
    fn load_split(
        &self,
        task: &str,
        spec: &TaskSpec,
        split: &str,
    ) -> Result<Vec<Record>, TaskError>;

    /// Where `split` is read from, for messages (a file, a dataset id), if known.
    fn describe_split(&self, task: &str, spec: &TaskSpec, split: &str) -> Option<String>;

    /// Whether a local data folder backs this source (else tasks with `hub` fields use them).
    fn has_data_folder(&self) -> bool {
        true
    }
}

impl DataSource for DataDir {
    fn has_split(&self, task: &str, spec: &TaskSpec, split: &str) -> bool {
        dataset::has_split(task, spec, split)
    }

    fn load_split(
        &self,
        task: &str,
        spec: &TaskSpec,
        split: &str,
    ) -> Result<Vec<Record>, TaskError> {
        dataset::load_split(task, spec, split, self)
    }

    fn describe_split(&self, task: &str, spec: &TaskSpec, split: &str) -> Option<String> {
        let file = dataset::split_file(task, spec, split).ok()??;
        Some(self.resolve(&file).display().to_string())
    }
}
