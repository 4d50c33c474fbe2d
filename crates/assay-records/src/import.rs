//! Finding results files (and their per-sample logs) in an lm-eval or assay output folder.
//!
//! Both tools write `<dir>/<model>/results_<stamp>.json` beside `samples_<task>_<stamp>.jsonl`;
//! lm-eval 0.3 wrote a single `results.json` of any name given to `--output_path`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::results::parse_results;
use crate::{NewRun, RecordsError};

/// A results file with the per-sample logs found beside it.
#[derive(Debug, Clone)]
pub struct ResultsFiles {
    /// The results JSON.
    pub results: PathBuf,
    /// (task, samples JSONL) pairs.
    pub samples: Vec<(String, PathBuf)>,
}

impl ResultsFiles {
    /// Reads the results file (checking it is one) and finds its samples, as a run to record.
    pub fn load(results: &Path) -> Result<NewRun, RecordsError> {
        let origin = results.display().to_string();
        let text = std::fs::read_to_string(results).map_err(|source| RecordsError::Io {
            path: results.to_path_buf(),
            source,
        })?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| RecordsError::BadResults {
            origin: origin.clone(),
            message: format!("not JSON: {e}"),
        })?;
        let (tasks, _) = parse_results(&doc, &origin)?;
        let dir = results.parent().unwrap_or(Path::new("."));
        let name = results.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stamp = name
            .strip_prefix("results_")
            .and_then(|n| n.strip_suffix(".json"));
        let samples = match stamp {
            Some(stamp) => tasks
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        dir.join(format!("samples_{}_{stamp}.jsonl", t.name)),
                    )
                })
                .filter(|(_, p)| p.is_file())
                .collect(),
            None => Vec::new(),
        };
        Ok(NewRun {
            results_text: text,
            origin,
            samples,
            ..Default::default()
        })
    }
}

/// The results files under `path` (itself, when it is a file), sorted.
pub fn find_results(path: &Path) -> Result<Vec<PathBuf>, RecordsError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| RecordsError::Io { path: p, source }
    };
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let p = entry.map_err(io(&dir))?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() {
                pending.push(p);
            } else if name.starts_with("results") && name.ends_with(".json") {
                found.push(p);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_results_and_their_samples() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("org__model");
        std::fs::create_dir_all(&model).unwrap();
        let stamp = "2025-03-08T10-00-00.000001";
        std::fs::write(
            model.join(format!("results_{stamp}.json")),
            r#"{"results": {"arc_easy": {"acc,none": 0.5}, "arc_challenge": {"acc,none": 0.3}}}"#,
        )
        .unwrap();
        std::fs::write(model.join(format!("samples_arc_easy_{stamp}.jsonl")), "").unwrap();
        std::fs::write(model.join("samples_arc_easy_2020-01-01.jsonl"), "").unwrap();
        std::fs::write(model.join("notes.json"), "{}").unwrap();
        let found = find_results(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        let run = ResultsFiles::load(&found[0]).unwrap();
        assert_eq!(run.samples.len(), 1);
        assert_eq!(run.samples[0].0, "arc_easy");
        assert!(run.samples[0]
            .1
            .ends_with(format!("samples_arc_easy_{stamp}.jsonl")));
    }
}
