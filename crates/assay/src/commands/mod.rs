//! One module per subcommand.

pub mod cache;
pub mod compare;
pub mod convert;
pub mod decontam;
pub mod generate;
pub mod grade;
pub mod index;
pub mod lora;
pub mod models;
pub mod ppl;
pub mod report;
pub mod run;
pub mod runs;
pub mod sample;
pub mod tasks;
pub mod view;

use std::path::{Path, PathBuf};

use anyhow::Context;

use assay_tasks::{DataDir, Registry};

/// Options shared by the commands that read tasks.
#[derive(clap::Args, Debug, Clone)]
pub struct TaskSourceArgs {
    /// Folder of benchmark data files [default: $ASSAY_DATA_DIR, else ../shared/data].
    #[arg(long, alias = "data_dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Extra folder of task YAML files (repeatable); a task there replaces a built-in one of
    /// the same name.
    #[arg(long, alias = "include_path", value_name = "DIR")]
    pub include_path: Vec<PathBuf>,
    /// Also read the task library of an installed Python package: `lm_eval` (lm-eval's
    /// `lm_eval/tasks`, found with the Python hooks run in: python3, or $ASSAY_PYTHON).
    #[arg(long, value_name = "PACKAGE")]
    pub tasks_from: Option<String>,
}

impl TaskSourceArgs {
    /// The task registry with the user's folders.
    pub fn registry(&self) -> anyhow::Result<Registry> {
        let mut paths = Vec::new();
        if let Some(package) = &self.tasks_from {
            paths.push(package_tasks(package)?);
        }
        // The user's own folders come last: their tasks replace the package's.
        paths.extend(self.include_path.iter().cloned());
        Ok(Registry::load(&paths)?)
    }

    /// The data directory.
    pub fn data_dir(&self) -> anyhow::Result<DataDir> {
        Ok(DataDir::locate(self.data_dir.as_deref())?)
    }

    /// Where tasks read their documents: the data directory for local task files, the Hugging
    /// Face Hub (`HF_ENDPOINT`, `HF_HOME`, `HF_TOKEN`, `HF_HUB_OFFLINE`) for a `dataset_path`
    /// that names a Hub dataset. Without a data directory only Hub tasks can run. Downloads end
    /// (resumable) once `stop` is raised.
    pub fn data(
        &self,
        stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    ) -> anyhow::Result<assay_hub::TaskData> {
        let dir = match &self.data_dir {
            Some(_) => Some(self.data_dir()?),
            None => DataDir::locate(None).ok(),
        };
        let mut hub = assay_hub::Hub::new(assay_hub::HubConfig::from_env(), true)?;
        if let Some(stop) = stop {
            hub = hub.stop_on(stop);
        }
        Ok(assay_hub::TaskData::new(dir, hub))
    }
}

/// The task folder of an installed Python package (`lm_eval`).
fn package_tasks(package: &str) -> anyhow::Result<PathBuf> {
    if package != "lm_eval" {
        anyhow::bail!("--tasks-from {package}: only `lm_eval` (lm-eval's task library) is known");
    }
    let python = assay_tasks::python();
    let output = std::process::Command::new(&python)
        .args([
            "-c",
            "import os, lm_eval.tasks as t; print(os.path.dirname(t.__file__))",
        ])
        .output()
        .with_context(|| {
            format!("--tasks-from lm_eval: cannot run `{python}` (install Python 3 or set ASSAY_PYTHON)")
        })?;
    if !output.status.success() {
        anyhow::bail!(
            "--tasks-from lm_eval: `{python}` cannot import lm_eval: {}(pip install lm-eval, or set ASSAY_PYTHON to a Python that has it)",
            String::from_utf8_lossy(&output.stderr).lines().last().map(|l| format!("{l} ")).unwrap_or_default()
        );
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !dir.is_dir() {
        anyhow::bail!("--tasks-from lm_eval: {} is not a folder", dir.display());
    }
    Ok(dir)
}

/// The run registry option shared by the commands that read or write runs.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// The run registry (SQLite) [default: $ASSAY_REGISTRY, else
    /// ~/.local/share/assay/registry.sqlite].
    #[arg(long, value_name = "PATH", global = true)]
    pub registry: Option<PathBuf>,
}

impl RegistryArgs {
    /// The registry file.
    pub fn path(&self) -> PathBuf {
        self.registry
            .clone()
            .unwrap_or_else(assay_dirs::default_registry_path)
    }

    /// Opens (or creates) the registry.
    pub fn open(&self) -> anyhow::Result<assay_records::Registry> {
        Ok(assay_records::Registry::open(&self.path())?)
    }
}

/// `KEY=VALUE` of a `--meta` option.
pub fn parse_meta(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => anyhow::bail!("--meta {text:?}: expected KEY=VALUE, e.g. --meta finetune=lora"),
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, then renames it into
/// place, so that a reader never sees a half-written file and an older file at `path` stays
/// whole until the new one is complete. On failure (a full disk, say) the temporary file is
/// removed. A folder, a device or an SQLite database (a registry or cache named by mistake) is
/// never replaced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    assay_core::files::check_replaceable(path).map_err(anyhow::Error::msg)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .with_context(|| format!("writing {}", path.display()));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
