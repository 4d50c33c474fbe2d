//! One module per subcommand.

pub mod cache;
pub mod run;
pub mod tasks;

use std::path::PathBuf;

use assay_tasks::{DataDir, Registry};

/// Options shared by the commands that read tasks.
#[derive(clap::Args, Debug, Clone)]
pub struct TaskSourceArgs {
    /// Folder of benchmark data files [default: $ASSAY_DATA_DIR, else ../shared/data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Extra folder of task YAML files (repeatable); a task there replaces a built-in one of
    /// the same name.
    #[arg(long, value_name = "DIR")]
    pub include_path: Vec<PathBuf>,
}

impl TaskSourceArgs {
    /// The task registry with the user's folders.
    pub fn registry(&self) -> anyhow::Result<Registry> {
        Ok(Registry::load(&self.include_path)?)
    }

    /// The data directory.
    pub fn data_dir(&self) -> anyhow::Result<DataDir> {
        Ok(DataDir::locate(self.data_dir.as_deref())?)
    }
}
