//! From a dataset id, a config and a revision to the files of each split, resolved as the
//! `datasets` library resolves them: the card's `configs:` globs on the revision; else files
//! named after their split; else the Hub's parquet export (`refs/convert/parquet`).

use std::collections::BTreeMap;

use assay_data::{read_records, ReadOptions, Record};

use crate::card::{parse_card, CardConfig};
use crate::client::{Hub, Snapshot};
use crate::HubError;

/// The branch the Hub's parquet export lives on.
pub const PARQUET_EXPORT: &str = "refs/convert/parquet";

/// Extensions of files the readers take as data (optionally `.gz`).
const DATA_EXTENSIONS: [&str; 6] = ["parquet", "jsonl", "json", "csv", "tsv", "txt"];

/// The split names the `datasets` library recognises in file and folder names.
const SPLIT_KEYWORDS: [(&str, &[&str]); 3] = [
    ("train", &["train", "training"]),
    ("validation", &["validation", "valid", "dev", "val"]),
    ("test", &["test", "testing", "eval", "evaluation"]),
];

/// What to read: a dataset id with its config, revision and optional data-file patterns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatasetQuery {
    /// `org/name`.
    pub repo: String,
    /// The config (`dataset_name`), if given.
    pub config: Option<String>,
    /// The revision (`dataset_kwargs.revision`), default `main`.
    pub revision: Option<String>,
    /// Split to patterns given by the task (`dataset_kwargs.data_files`), overriding the card.
    pub data_files: Option<Vec<(String, Vec<String>)>>,
}

/// A dataset resolved to files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDataset {
    /// The files' snapshot (its commit goes into the results).
    pub snapshot: Snapshot,
    /// The config read.
    pub config: String,
    /// Split name to the files in the repository, in reading order.
    pub splits: BTreeMap<String, Vec<String>>,
    /// Splits whose patterns match no file here (offline, only downloaded files are known):
    /// an error when read, not when resolved.
    pub unmatched: BTreeMap<String, Vec<String>>,
}

impl ResolvedDataset {
    /// `hf://datasets/org/name@commit`, the provenance written to results.
    pub fn url(&self) -> String {
        format!(
            "hf://datasets/{}@{}",
            self.snapshot.repo, self.snapshot.commit
        )
    }
}

/// Resolves `query` on `hub`.
pub fn resolve(hub: &Hub, query: &DatasetQuery) -> Result<ResolvedDataset, HubError> {
    let revision = query.revision.as_deref().unwrap_or("main");
    let snapshot = hub.snapshot(&query.repo, revision)?;
    let config_or_default = query.config.clone().unwrap_or_else(|| "default".into());
    if let Some(data_files) = &query.data_files {
        let (splits, unmatched) = match_splits(&query.repo, &snapshot, data_files, None)?;
        return Ok(ResolvedDataset {
            snapshot,
            config: config_or_default,
            splits,
            unmatched,
        });
    }
    let configs = if snapshot.files.iter().any(|f| f == "README.md") {
        let card = hub.file(&snapshot, "README.md")?;
        let text = std::fs::read_to_string(&card).map_err(|e| HubError::Card {
            repo: query.repo.clone(),
            message: e.to_string(),
        })?;
        parse_card(&text).map_err(|message| HubError::Card {
            repo: query.repo.clone(),
            message,
        })?
    } else {
        Vec::new()
    };
    if !configs.is_empty() {
        let chosen = choose_config(&query.repo, query.config.as_deref(), &configs)?;
        let (splits, unmatched) = if chosen.data_files.is_empty() {
            (
                infer_splits(&snapshot.files, chosen.data_dir.as_deref()),
                BTreeMap::new(),
            )
        } else {
            match_splits(
                &query.repo,
                &snapshot,
                &chosen.data_files,
                chosen.data_dir.as_deref(),
            )?
        };
        return Ok(ResolvedDataset {
            snapshot,
            config: chosen.name.clone(),
            splits,
            unmatched,
        });
    }
    let inferred = infer_splits(&snapshot.files, None);
    if !inferred.is_empty() && query.config.as_deref().is_none_or(|c| c == "default") {
        return Ok(ResolvedDataset {
            snapshot,
            config: "default".into(),
            splits: inferred,
            unmatched: BTreeMap::new(),
        });
    }
    parquet_export(hub, query)
}

/// The records of `split`, in order; `options` say how to read the files (column names of
/// header-less CSV).
pub fn read_split(
    hub: &Hub,
    dataset: &ResolvedDataset,
    split: &str,
    options: &ReadOptions,
) -> Result<Vec<Record>, HubError> {
    if let Some(patterns) = dataset.unmatched.get(split) {
        return Err(HubError::NoDataFiles {
            repo: dataset.snapshot.repo.clone(),
            config: dataset.config.clone(),
            split: split.into(),
            patterns: patterns.clone(),
        });
    }
    let files = dataset
        .splits
        .get(split)
        .ok_or_else(|| HubError::UnknownSplit {
            repo: dataset.snapshot.repo.clone(),
            config: dataset.config.clone(),
            split: split.into(),
            known: dataset.splits.keys().cloned().collect(),
        })?;
    let mut records = Vec::new();
    for file in files {
        let local = hub.file(&dataset.snapshot, file)?;
        let mut part = read_records(&local, options).map_err(|source| HubError::Read {
            repo: dataset.snapshot.repo.clone(),
            source,
        })?;
        records.append(&mut part);
    }
    Ok(records)
}

fn choose_config<'a>(
    repo: &str,
    asked: Option<&str>,
    configs: &'a [CardConfig],
) -> Result<&'a CardConfig, HubError> {
    let known = || configs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    match asked {
        Some(name) => {
            configs
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| HubError::UnknownConfig {
                    repo: repo.into(),
                    config: name.into(),
                    known: known(),
                })
        }
        None => configs
            .iter()
            .find(|c| c.default)
            .or_else(|| (configs.len() == 1).then(|| &configs[0]))
            .or_else(|| configs.iter().find(|c| c.name == "default"))
            .ok_or_else(|| HubError::ConfigNeeded {
                repo: repo.into(),
                known: known(),
            }),
    }
}

/// Each split's patterns matched against the snapshot's files (`*` within a folder, `**`
/// across folders), sorted as `datasets` sorts them.
fn match_splits(
    repo: &str,
    snapshot: &Snapshot,
    data_files: &[(String, Vec<String>)],
    data_dir: Option<&str>,
) -> Result<Splits, HubError> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut splits = BTreeMap::new();
    let mut unmatched = BTreeMap::new();
    for (split, patterns) in data_files {
        let mut matched = Vec::new();
        for pattern in patterns {
            let full = match data_dir {
                Some(dir) => format!("{}/{}", dir.trim_end_matches('/'), pattern),
                None => pattern.clone(),
            };
            let full = full.trim_start_matches("./").to_string();
            let compiled = glob::Pattern::new(&full).map_err(|e| HubError::Card {
                repo: repo.into(),
                message: format!("data file pattern `{full}`: {e}"),
            })?;
            matched.extend(
                snapshot
                    .files
                    .iter()
                    .filter(|f| compiled.matches_with(f, options))
                    .cloned(),
            );
        }
        matched.sort();
        matched.dedup();
        if matched.is_empty() {
            unmatched.insert(split.clone(), patterns.clone());
            continue;
        }
        splits
            .entry(split.clone())
            .or_insert_with(Vec::new)
            .extend(matched);
    }
    Ok((splits, unmatched))
}

/// Matched files per split, and the patterns of splits that matched nothing.
type Splits = (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>);

/// Splits from file and folder names (`train.jsonl`, `data/test-00000-of-00001.parquet`,
/// `validation/part.csv`); data files that name no split are all `train`.
fn infer_splits(files: &[String], data_dir: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let prefix = data_dir.map(|d| format!("{}/", d.trim_end_matches('/')));
    let data: Vec<&String> = files
        .iter()
        .filter(|f| prefix.as_ref().is_none_or(|p| f.starts_with(p.as_str())))
        .filter(|f| is_data_file(f))
        .collect();
    let mut splits: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &data {
        let relative = prefix
            .as_ref()
            .and_then(|p| file.strip_prefix(p.as_str()))
            .unwrap_or(file);
        let words: Vec<String> = relative
            .split(|c: char| "-._ /".contains(c) || c.is_ascii_digit())
            .map(str::to_ascii_lowercase)
            .collect();
        if let Some((split, _)) = SPLIT_KEYWORDS
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| words.iter().any(|w| w == k)))
        {
            splits
                .entry(split.to_string())
                .or_default()
                .push(file.to_string());
        }
    }
    if splits.is_empty() && !data.is_empty() {
        splits.insert("train".into(), data.iter().map(|f| f.to_string()).collect());
    }
    for files in splits.values_mut() {
        files.sort();
    }
    splits
}

fn is_data_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.starts_with('.') {
        return false;
    }
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| DATA_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// The Hub's parquet export: `{config}/{split}/0000.parquet`, or the older
/// `{config}/{name}-{split}[-00000-of-00002].parquet`.
fn parquet_export(hub: &Hub, query: &DatasetQuery) -> Result<ResolvedDataset, HubError> {
    let snapshot = match hub.snapshot(&query.repo, PARQUET_EXPORT) {
        Ok(s) => s,
        Err(HubError::RevisionNotFound { .. }) | Err(HubError::Offline { .. }) => {
            return Err(HubError::NoData {
                repo: query.repo.clone(),
            })
        }
        Err(e) => return Err(e),
    };
    let mut configs: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for file in snapshot.files.iter().filter(|f| f.ends_with(".parquet")) {
        let parts: Vec<&str> = file.split('/').collect();
        let (config, split) = match parts.as_slice() {
            [config, split, _] => (config.to_string(), split.to_string()),
            [config, name] => {
                let stem = name.trim_end_matches(".parquet");
                let stem = strip_shard_suffix(stem);
                match stem.rsplit_once('-') {
                    Some((_, split)) => (config.to_string(), split.to_string()),
                    None => continue,
                }
            }
            _ => continue,
        };
        configs
            .entry(config)
            .or_default()
            .entry(split)
            .or_default()
            .push(file.clone());
    }
    if configs.is_empty() {
        return Err(HubError::NoData {
            repo: query.repo.clone(),
        });
    }
    let known: Vec<String> = configs.keys().cloned().collect();
    let name = match query.config.as_deref() {
        Some(c) if configs.contains_key(c) => c.to_string(),
        Some(c) => {
            return Err(HubError::UnknownConfig {
                repo: query.repo.clone(),
                config: c.into(),
                known,
            })
        }
        None if known.len() == 1 => known[0].clone(),
        None if configs.contains_key("default") => "default".into(),
        None => {
            return Err(HubError::ConfigNeeded {
                repo: query.repo.clone(),
                known,
            })
        }
    };
    let mut splits = configs.remove(&name).unwrap_or_default();
    for files in splits.values_mut() {
        files.sort();
    }
    Ok(ResolvedDataset {
        snapshot,
        config: name,
        splits,
        unmatched: BTreeMap::new(),
    })
}

/// `train-00000-of-00002` -> `train`.
fn strip_shard_suffix(stem: &str) -> &str {
    let bytes = stem.as_bytes();
    // "-NNNNN-of-NNNNN" is 15 bytes.
    if bytes.len() > 15 {
        let tail = &stem[stem.len() - 15..];
        let shaped = tail.starts_with('-')
            && tail[1..6].bytes().all(|b| b.is_ascii_digit())
            && &tail[6..10] == "-of-"
            && tail[10..].bytes().all(|b| b.is_ascii_digit());
        if shaped {
            return &stem[..stem.len() - 15];
        }
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_from_file_names() {
        let splits = infer_splits(
            &files(&[
                ".gitattributes",
                "README.md",
                "data/test-00000-of-00001.parquet",
                "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet",
                "dev.jsonl",
                "script.py",
            ]),
            None,
        );
        assert_eq!(splits["train"].len(), 2);
        assert_eq!(splits["test"], vec!["data/test-00000-of-00001.parquet"]);
        assert_eq!(splits["validation"], vec!["dev.jsonl"]);
        let single = infer_splits(&files(&["README.md", "questions.csv.gz"]), None);
        assert_eq!(single["train"], vec!["questions.csv.gz"]);
        assert!(infer_splits(&files(&["README.md", "x.py"]), None).is_empty());
    }

    #[test]
    fn globs_stay_inside_folders() {
        let snapshot = Snapshot {
            kind: crate::RepoKind::Dataset,
            repo: "o/n".into(),
            revision: "main".into(),
            commit: "c".into(),
            files: files(&[
                "main/test-00000-of-00001.parquet",
                "main/train-00000-of-00001.parquet",
                "socratic/train-00000-of-00001.parquet",
                "deep/main/train-1.parquet",
            ]),
        };
        let spec = vec![("train".to_string(), vec!["main/train-*".to_string()])];
        let (splits, _) = match_splits("o/n", &snapshot, &spec, None).unwrap();
        assert_eq!(splits["train"], vec!["main/train-00000-of-00001.parquet"]);
        let deep = vec![("train".to_string(), vec!["**/train-*".to_string()])];
        assert_eq!(
            match_splits("o/n", &snapshot, &deep, None).unwrap().0["train"].len(),
            3
        );
        let missing = vec![("test".to_string(), vec!["other/*".to_string()])];
        let (found, unmatched) = match_splits("o/n", &snapshot, &missing, None).unwrap();
        assert!(found.is_empty());
        assert_eq!(unmatched["test"], vec!["other/*"]);
    }

    #[test]
    fn configs_chosen_as_datasets_does() {
        let config = |name: &str, default: bool| CardConfig {
            name: name.into(),
            default,
            data_files: Vec::new(),
            data_dir: None,
        };
        let two = vec![config("a", false), config("b", false)];
        assert!(matches!(
            choose_config("o/n", None, &two),
            Err(HubError::ConfigNeeded { .. })
        ));
        let err = choose_config("o/n", Some("c"), &two).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dataset o/n has no config `c`; its configs: a, b"
        );
        let with_default = vec![config("a", false), config("b", true)];
        assert_eq!(choose_config("o/n", None, &with_default).unwrap().name, "b");
    }

    #[test]
    fn shard_suffixes() {
        assert_eq!(
            strip_shard_suffix("piqa-train-00000-of-00002"),
            "piqa-train"
        );
        assert_eq!(strip_shard_suffix("piqa-validation"), "piqa-validation");
    }
}
