//! The run registry: one SQLite file holding every recorded run (its results document, the
//! per-sample lines, label, tags and free metadata), queried by id or label.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::results::{parse_results, Provenance, TaskResult};
use crate::RecordsError;

/// `PRAGMA application_id` of an assay registry ("asRG").
const APPLICATION_ID: i32 = assay_core::files::REGISTRY_APPLICATION_ID;
/// Schema version, in `PRAGMA user_version`.
const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT,
    recorded_at TEXT NOT NULL,
    origin TEXT NOT NULL,
    results_sha TEXT NOT NULL UNIQUE,
    results TEXT NOT NULL
);
CREATE TABLE run_tags (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE TABLE run_meta (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE samples (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    filter TEXT NOT NULL,
    doc_id INTEGER NOT NULL,
    doc_hash TEXT,
    line TEXT NOT NULL,
    PRIMARY KEY (run_id, task, filter, doc_id)
);
";

/// A run to record.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    /// The results document's text.
    pub results_text: String,
    /// Where it came from (a path, or `assay run`).
    pub origin: String,
    /// Per-sample logs: (task, JSONL file).
    pub samples: Vec<(String, PathBuf)>,
    /// A display name (`BASE`, `lora-2k`, ...).
    pub label: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Free metadata (`finetune=lora`, `train_examples=2000`).
    pub meta: BTreeMap<String, String>,
}

/// A recorded run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Registry id.
    pub id: i64,
    /// Display name, if given.
    pub label: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Free metadata.
    pub meta: BTreeMap<String, String>,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
    /// Where it came from.
    pub origin: String,
    /// Results per task and group.
    pub tasks: Vec<TaskResult>,
    /// Model, tool, device, command...
    pub provenance: Provenance,
    /// Tasks with per-sample lines.
    pub sample_tasks: Vec<String>,
}

impl Run {
    /// The label, else `run N`.
    pub fn name(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| format!("run {}", self.id))
    }

    /// The results of `task`, if the run has it.
    pub fn task(&self, name: &str) -> Option<&TaskResult> {
        self.tasks.iter().find(|t| t.name == name)
    }
}

/// One per-sample line of a run.
#[derive(Debug, Clone)]
pub struct SampleLine {
    /// Filter the line belongs to.
    pub filter: String,
    /// Document index.
    pub doc_id: u64,
    /// Hash of the document, when logged.
    pub doc_hash: Option<String>,
    /// The line as logged.
    pub line: Value,
}

/// An open registry.
pub struct Registry {
    conn: Connection,
    path: PathBuf,
}

impl Registry {
    /// Opens the registry at `path`, creating it (and its folder) when absent.
    pub fn open(path: &Path) -> Result<Registry, RecordsError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| RecordsError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        if path.is_dir() {
            return Err(RecordsError::Registry {
                path: path.to_path_buf(),
                message: "is a folder; --registry takes a file (e.g. runs.sqlite)".into(),
            });
        }
        assay_core::files::check_regular(path).map_err(|message| RecordsError::Registry {
            path: path.to_path_buf(),
            message,
        })?;
        let conn = Connection::open(path).map_err(|source| RecordsError::Sql {
            path: path.to_path_buf(),
            source,
        })?;
        let registry = Registry {
            conn,
            path: path.to_path_buf(),
        };
        registry.prepare()?;
        Ok(registry)
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, source: rusqlite::Error) -> RecordsError {
        RecordsError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn not_a_registry(&self, why: &str) -> RecordsError {
        RecordsError::Registry {
            path: self.path.clone(),
            message: format!(
                "not an assay registry ({why}); move the file away to start a new one, or pass --registry PATH"
            ),
        }
    }

    /// Checks the file is an assay registry (creating the schema in a new one).
    fn prepare(&self) -> Result<(), RecordsError> {
        let header = |e: rusqlite::Error| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
                self.not_a_registry(
                    "the file is not an SQLite database: corrupted, or another kind of file",
                )
            }
            other => self.sql(other),
        };
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;")
            .map_err(|e| self.sql(e))?;
        // Looked at and created under one write lock: two commands opening a new registry at
        // the same moment must not both create its schema.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(header)?;
        let app: i32 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(header)?;
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(header)?;
        if app == 0 && tables == 0 {
            tx.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {SCHEMA_VERSION}; {SCHEMA}"
            ))
            .map_err(|e| self.sql(e))?;
            tx.commit().map_err(|e| self.sql(e))?;
            use_write_ahead_log(&self.conn).map_err(|e| self.sql(e))?;
            return Ok(());
        }
        tx.commit().map_err(|e| self.sql(e))?;
        if app != APPLICATION_ID {
            return Err(self.not_a_registry(assay_core::files::sqlite_kind(app)));
        }
        let version: i32 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if version != SCHEMA_VERSION {
            return Err(RecordsError::Registry {
                path: self.path.clone(),
                message: format!(
                    "schema version {version}, this assay reads version {SCHEMA_VERSION}: use the assay that wrote it"
                ),
            });
        }
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(header)?;
        if check != "ok" {
            return Err(self.not_a_registry(&format!("SQLite integrity check: {check}")));
        }
        Ok(())
    }

    /// Records a run: its results (checked readable), samples, label, tags and metadata, in
    /// one transaction. Returns the new id.
    pub fn record(&mut self, run: &NewRun) -> Result<i64, RecordsError> {
        let doc: Value =
            serde_json::from_str(&run.results_text).map_err(|e| RecordsError::BadResults {
                origin: run.origin.clone(),
                message: format!("not JSON: {e}"),
            })?;
        parse_results(&doc, &run.origin)?;
        let sha = hex(&Sha256::digest(run.results_text.as_bytes()));
        let path = self.path.clone();
        let sql = |source| RecordsError::Sql {
            path: path.clone(),
            source,
        };
        // A write lock from the start: a check-then-write transaction that began as a reader
        // fails at once with "database is locked" when another command records at the same time.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM runs WHERE results_sha = ?1", [&sha], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
        if let Some(id) = existing {
            return Err(RecordsError::AlreadyRecorded {
                origin: run.origin.clone(),
                id,
            });
        }
        tx.execute(
            "INSERT INTO runs (label, recorded_at, origin, results_sha, results) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                run.label,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                run.origin,
                sha,
                run.results_text
            ],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        for tag in &run.tags {
            tx.execute(
                "INSERT OR IGNORE INTO run_tags VALUES (?1, ?2)",
                params![id, tag],
            )
            .map_err(sql)?;
        }
        for (k, v) in &run.meta {
            tx.execute(
                "INSERT INTO run_meta VALUES (?1, ?2, ?3)",
                params![id, k, v],
            )
            .map_err(sql)?;
        }
        {
            let mut insert = tx
                .prepare("INSERT OR REPLACE INTO samples VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .map_err(sql)?;
            for (task, file) in &run.samples {
                for_each_sample(file, |s, text| {
                    insert
                        .execute(params![
                            id,
                            task,
                            s.filter,
                            s.doc_id as i64,
                            s.doc_hash,
                            text
                        ])
                        .map(|_| ())
                        .map_err(sql)
                })?;
            }
        }
        tx.commit().map_err(sql)?;
        Ok(id)
    }

    /// The id that `key` names: a number, `latest`, or a label (its latest run).
    pub fn resolve(&self, key: &str) -> Result<i64, RecordsError> {
        let found: Option<i64> = if key == "latest" || key == "last" {
            self.conn
                .query_row("SELECT max(id) FROM runs", [], |r| r.get(0))
                .map_err(|e| self.sql(e))?
        } else if let Ok(id) = key.parse::<i64>() {
            self.conn
                .query_row("SELECT id FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(|e| self.sql(e))?
        } else {
            self.conn
                .query_row("SELECT max(id) FROM runs WHERE label = ?1", [key], |r| {
                    r.get(0)
                })
                .map_err(|e| self.sql(e))?
        };
        match found {
            Some(id) => Ok(id),
            None => {
                let runs = self.list()?;
                let hint = if runs.is_empty() {
                    "the registry is empty; `assay run` records runs, `assay runs import DIR` adds lm-eval results".to_string()
                } else {
                    let names: Vec<String> = runs
                        .iter()
                        .rev()
                        .take(8)
                        .map(|r| match &r.label {
                            Some(l) => format!("{} ({l})", r.id),
                            None => r.id.to_string(),
                        })
                        .collect();
                    format!(
                        "runs are {}{}; see `assay runs list`",
                        names.join(", "),
                        if runs.len() > 8 { ", ..." } else { "" }
                    )
                };
                Err(RecordsError::NoSuchRun {
                    key: key.to_string(),
                    path: self.path.clone(),
                    hint,
                })
            }
        }
    }

    /// Every run, oldest first.
    pub fn list(&self) -> Result<Vec<Run>, RecordsError> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM runs ORDER BY id")
                .map_err(|e| self.sql(e))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.sql(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))?
        };
        ids.into_iter().map(|id| self.run(id)).collect()
    }

    /// The run with `id`.
    pub fn run(&self, id: i64) -> Result<Run, RecordsError> {
        let (label, recorded_at, origin, results): (Option<String>, String, String, String) = self
            .conn
            .query_row(
                "SELECT label, recorded_at, origin, results FROM runs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(|e| self.sql(e))?;
        let doc: Value = serde_json::from_str(&results).map_err(|e| RecordsError::BadResults {
            origin: format!("run {id} in {}", self.path.display()),
            message: format!("stored results are not JSON: {e}"),
        })?;
        let (tasks, provenance) = parse_results(&doc, &format!("run {id}"))?;
        let strings = |sql: &str| -> Result<Vec<String>, RecordsError> {
            let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
            let rows = stmt
                .query_map([id], |r| r.get(0))
                .map_err(|e| self.sql(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
        };
        let tags = strings("SELECT tag FROM run_tags WHERE run_id = ?1 ORDER BY tag")?;
        let sample_tasks =
            strings("SELECT DISTINCT task FROM samples WHERE run_id = ?1 ORDER BY task")?;
        let meta = {
            let mut stmt = self
                .conn
                .prepare("SELECT key, value FROM run_meta WHERE run_id = ?1 ORDER BY key")
                .map_err(|e| self.sql(e))?;
            let rows = stmt
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.sql(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))?
        };
        Ok(Run {
            id,
            label,
            tags,
            meta,
            recorded_at,
            origin,
            tasks,
            provenance,
            sample_tasks,
        })
    }

    /// The stored results document of run `id`.
    pub fn results_document(&self, id: i64) -> Result<Value, RecordsError> {
        let text: String = self
            .conn
            .query_row("SELECT results FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        serde_json::from_str(&text).map_err(|e| RecordsError::BadResults {
            origin: format!("run {id}"),
            message: e.to_string(),
        })
    }

    /// The per-sample lines of `task` in run `id`, by filter then document.
    pub fn samples(&self, id: i64, task: &str) -> Result<Vec<SampleLine>, RecordsError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT filter, doc_id, doc_hash, line FROM samples
                 WHERE run_id = ?1 AND task = ?2 ORDER BY filter, doc_id",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![id, task], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (filter, doc_id, doc_hash, line) = row.map_err(|e| self.sql(e))?;
            out.push(SampleLine {
                filter,
                doc_id: doc_id as u64,
                doc_hash,
                line: serde_json::from_str(&line).unwrap_or(Value::Null),
            });
        }
        Ok(out)
    }

    /// Tasks with per-sample lines in every one of `ids`, in the first run's order.
    pub fn shared_sample_tasks(&self, ids: &[i64]) -> Result<Vec<String>, RecordsError> {
        let runs = ids
            .iter()
            .map(|id| self.run(*id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(runs.first().map_or(Vec::new(), |first| {
            first
                .sample_tasks
                .iter()
                .filter(|t| runs.iter().all(|r| r.sample_tasks.contains(t)))
                .cloned()
                .collect()
        }))
    }

    /// Sets (or with `None` clears) the label of run `id`.
    pub fn set_label(&self, id: i64, label: Option<&str>) -> Result<(), RecordsError> {
        self.conn
            .execute(
                "UPDATE runs SET label = ?1 WHERE id = ?2",
                params![label, id],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Adds `add` and removes `remove` from the tags of run `id`.
    pub fn tag(&self, id: i64, add: &[String], remove: &[String]) -> Result<(), RecordsError> {
        for t in add {
            self.conn
                .execute(
                    "INSERT OR IGNORE INTO run_tags VALUES (?1, ?2)",
                    params![id, t],
                )
                .map_err(|e| self.sql(e))?;
        }
        for t in remove {
            self.conn
                .execute(
                    "DELETE FROM run_tags WHERE run_id = ?1 AND tag = ?2",
                    params![id, t],
                )
                .map_err(|e| self.sql(e))?;
        }
        Ok(())
    }

    /// Sets metadata `key` of run `id` (an empty value removes it).
    pub fn set_meta(&self, id: i64, key: &str, value: &str) -> Result<(), RecordsError> {
        let sql = if value.is_empty() {
            "DELETE FROM run_meta WHERE run_id = ?1 AND key = ?2"
        } else {
            "INSERT OR REPLACE INTO run_meta VALUES (?1, ?2, ?3)"
        };
        let result = if value.is_empty() {
            self.conn.execute(sql, params![id, key])
        } else {
            self.conn.execute(sql, params![id, key, value])
        };
        result.map(|_| ()).map_err(|e| self.sql(e))
    }

    /// Deletes run `id` with its samples, tags and metadata.
    pub fn remove(&self, id: i64) -> Result<(), RecordsError> {
        self.conn
            .execute("DELETE FROM runs WHERE id = ?1", [id])
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }
}

/// The key fields of a sample line.
struct SampleKey {
    filter: String,
    doc_id: u64,
    doc_hash: Option<String>,
}

/// Calls `each` with every line of a per-sample JSONL file (its key and text); names the file
/// and line of anything unreadable.
fn for_each_sample(
    file: &Path,
    mut each: impl FnMut(&SampleKey, &str) -> Result<(), RecordsError>,
) -> Result<(), RecordsError> {
    let io = |source| RecordsError::Io {
        path: file.to_path_buf(),
        source,
    };
    let reader = std::io::BufReader::new(std::fs::File::open(file).map_err(io)?);
    for (i, line) in reader.lines().enumerate() {
        let bad = |message: String| RecordsError::BadSample {
            path: file.to_path_buf(),
            line: i + 1,
            message,
        };
        let text = line.map_err(|e| bad(format!("unreadable: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Some(doc_id) = value.get("doc_id").and_then(Value::as_u64) else {
            return Err(bad(
                "no `doc_id`: not a per-sample line of lm-eval or assay".into(),
            ));
        };
        let key = SampleKey {
            filter: value
                .get("filter")
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_string(),
            doc_id,
            doc_hash: value
                .get("doc_hash")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        each(&key, &text)?;
    }
    Ok(())
}

/// Switches `conn` to write-ahead logging. SQLite answers "database is locked" at once, without
/// waiting, when another connection opens the same new file at that moment; this waits instead.
fn use_write_ahead_log(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            done => return done,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results(acc: f64) -> String {
        json!({"results": {"arc_easy": {"acc,none": acc, "acc_stderr,none": 0.03}},
               "n-samples": {"arc_easy": {"original": 10, "effective": 4}}})
        .to_string()
    }

    /// Commands opening one new registry at the same moment: each found it empty and the
    /// later ones failed creating tables that already existed.
    #[test]
    fn commands_opening_a_new_registry_at_once_all_succeed() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("reg.sqlite");
            let start = std::sync::Arc::new(std::sync::Barrier::new(6));
            let openers: Vec<_> = (0..6)
                .map(|i| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Registry::open(&path)?.record(&NewRun {
                            results_text: results(i as f64 / 10.0),
                            origin: format!("{i}.json"),
                            ..Default::default()
                        })
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
            let runs = Registry::open(&path).unwrap().list().unwrap();
            assert_eq!(runs.len(), 6, "round {round}");
        }
    }

    #[test]
    fn records_lists_resolves_tags_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let samples = dir.path().join("s.jsonl");
        std::fs::write(
            &samples,
            "{\"doc_id\": 0, \"filter\": \"none\", \"doc_hash\": \"h0\", \"acc\": 1.0}\n{\"doc_id\": 1, \"acc\": 0.0}\n",
        )
        .unwrap();
        let path = dir.path().join("sub/reg.sqlite");
        let mut reg = Registry::open(&path).unwrap();
        let a = reg
            .record(&NewRun {
                results_text: results(0.5),
                origin: "a.json".into(),
                samples: vec![("arc_easy".into(), samples.clone())],
                label: Some("BASE".into()),
                meta: [("finetune".to_string(), "none".to_string())].into(),
                ..Default::default()
            })
            .unwrap();
        let b = reg
            .record(&NewRun {
                results_text: results(0.75),
                origin: "b.json".into(),
                label: Some("BASE".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(reg.resolve("BASE").unwrap(), b);
        assert_eq!(reg.resolve(&a.to_string()).unwrap(), a);
        assert_eq!(reg.resolve("latest").unwrap(), b);
        let err = reg.resolve("42").unwrap_err().to_string();
        assert!(
            err.contains("no run `42`") && err.contains("1 (BASE)"),
            "{err}"
        );
        let dup = reg
            .record(&NewRun {
                results_text: results(0.5),
                origin: "again.json".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert!(dup.to_string().contains("already recorded as run 1"));

        let run = reg.run(a).unwrap();
        assert_eq!(run.meta["finetune"], "none");
        assert_eq!(run.sample_tasks, vec!["arc_easy"]);
        assert_eq!(run.tasks[0].n, Some(4));
        let lines = reg.samples(a, "arc_easy").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].doc_hash.as_deref(), Some("h0"));
        assert_eq!(lines[1].filter, "none");

        reg.tag(a, &["lora".into(), "x".into()], &["x".into()])
            .unwrap();
        reg.set_label(a, Some("base-0shot")).unwrap();
        reg.set_meta(a, "finetune", "").unwrap();
        let run = reg.run(a).unwrap();
        assert_eq!(run.tags, vec!["lora"]);
        assert_eq!(run.name(), "base-0shot");
        assert!(run.meta.is_empty());
        reg.remove(a).unwrap();
        assert!(reg.samples(a, "arc_easy").unwrap().is_empty());
        assert_eq!(reg.list().unwrap().len(), 1);
    }

    #[test]
    fn bad_samples_name_file_and_line_and_record_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let samples = dir.path().join("s.jsonl");
        std::fs::write(&samples, "{\"doc_id\": 0}\n{\"doc_id\": 1\n").unwrap();
        let mut reg = Registry::open(&dir.path().join("r.sqlite")).unwrap();
        let err = reg
            .record(&NewRun {
                results_text: results(0.5),
                origin: "a.json".into(),
                samples: vec![("arc_easy".into(), samples.clone())],
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}:2: not JSON", samples.display())),
            "{err}"
        );
        assert!(reg.list().unwrap().is_empty());
    }

    #[test]
    fn files_that_are_not_registries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
        let err = Registry::open(&junk).err().unwrap().to_string();
        assert!(
            err.contains("not an assay registry") && err.contains("not an SQLite database"),
            "{err}"
        );

        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = Registry::open(&other).err().unwrap().to_string();
        assert!(err.contains("of another program"), "{err}");

        let err = Registry::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("is a folder"), "{err}");
    }
}
