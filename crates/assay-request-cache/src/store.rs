//! The SQLite file mapping each request's content hash to its answer.
//!
//! The key of a request hashes everything its answer depends on: the backend's identity and model
//! fingerprint (its *scope*), the primitive and the request's arguments. Answers are written as
//! they arrive, each write its own transaction in write-ahead-log mode, so a process killed at any
//! point (`kill -9` included) keeps every answer it had received; the next run with the same
//! command reads them back instead of asking again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assay_core::files::{sqlite_kind, CACHE_APPLICATION_ID};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Bumped when the layout of keys or answers changes; older caches are cleared on open.
const SCHEMA_VERSION: i64 = 1;

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The folder for the cache file could not be created.
    #[error("cannot create the cache folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a request cache (another program's database, a run registry, a device).
    #[error("{path} is not an assay request cache: {message} (pass --cache OTHER.sqlite, or --no-cache to run without it)")]
    NotACache {
        /// The file.
        path: PathBuf,
        /// What it is.
        message: String,
    },
    /// SQLite failed.
    #[error("request cache {path}: {source} (pass --cache OTHER.sqlite or --no-cache to run without it)")]
    Sql {
        /// The cache file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

/// The content hash of a request: SHA-256 of the JSON of `parts`, as lowercase hex.
pub fn request_key(parts: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(parts).expect("request parts serialise to JSON");
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one cached answer is filed under besides its key, for `assay cache stats|prune`.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The content hash of the request.
    pub key: &'a str,
    /// The request primitive (`loglikelihood`, `loglikelihood_rolling`, `generate_until`).
    pub primitive: &'a str,
    /// A readable name of the backend and model that answered.
    pub model: &'a str,
    /// The answer, as JSON.
    pub answer: &'a str,
}

/// Counts of cached answers, per model and primitive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheStats {
    /// The cache file.
    pub path: PathBuf,
    /// Size of the file (and its write-ahead log) in bytes.
    pub bytes: u64,
    /// Answers in all.
    pub entries: u64,
    /// (model, primitive, answers, last used as Unix seconds), most answers first.
    pub groups: Vec<(String, String, u64, i64)>,
}

/// Which answers `prune` deletes.
#[derive(Debug, Clone, Default)]
pub struct PruneRule {
    /// Answers not read or written for at least this long.
    pub unused_for: Option<Duration>,
    /// Answers of models whose name contains this text.
    pub model: Option<String>,
}

/// The SQLite request cache.
pub struct RequestCache {
    conn: Connection,
    path: PathBuf,
}

/// Why a database was not claimed as a request cache.
enum Claim {
    Sql(rusqlite::Error),
    Other(String),
}

/// Makes sure the database is a request cache: one with the cache's `application_id`, or a new
/// (empty) one, or a cache written before the id (its only table `answers`), which get the id.
fn claim(conn: &Connection) -> Result<(), Claim> {
    let app: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
                Claim::Other("the file is not an SQLite database".into())
            }
            e => Claim::Sql(e),
        })?;
    if app == CACHE_APPLICATION_ID {
        return Ok(());
    }
    if app != 0 {
        return Err(Claim::Other(format!("it is {}", sqlite_kind(app))));
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(Claim::Sql)?;
    if tables.is_empty() || tables == ["answers"] {
        return conn
            .pragma_update(None, "application_id", CACHE_APPLICATION_ID)
            .map_err(Claim::Sql);
    }
    Err(Claim::Other(format!(
        "it is {} (tables {})",
        sqlite_kind(app),
        tables.join(", ")
    )))
}

impl RequestCache {
    /// Opens (creating when needed) the cache at `path`; refuses any other file.
    pub fn open(path: &Path) -> Result<RequestCache, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let sql = |source| StoreError::Sql {
            path: path.to_path_buf(),
            source,
        };
        let not_a_cache = |message| StoreError::NotACache {
            path: path.to_path_buf(),
            message,
        };
        assay_core::files::check_regular(path).map_err(not_a_cache)?;
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        // Before anything is changed: another program's database is left as it was.
        claim(&conn).map_err(|e| match e {
            Claim::Sql(e) => sql(e),
            Claim::Other(message) => not_a_cache(message),
        })?;
        // WAL: a committed write survives the process being killed; NORMAL: no fsync per write.
        use_write_ahead_log(&conn).map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        // The version is read and the schema written under one write lock, so that runs
        // opening a new cache at the same moment neither fail nor drop each other's answers.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        if version != SCHEMA_VERSION {
            tx.execute_batch(&format!(
                "DROP TABLE IF EXISTS answers;
                 CREATE TABLE answers (
                     key TEXT PRIMARY KEY,
                     primitive TEXT NOT NULL,
                     model TEXT NOT NULL,
                     answer TEXT NOT NULL,
                     used INTEGER NOT NULL
                 ) WITHOUT ROWID;
                 PRAGMA user_version = {SCHEMA_VERSION};"
            ))
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(RequestCache {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// The answers stored under `keys` (in order; `None` where absent). Marks them used now.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        // Reads, then writes the use times: the write lock is taken first, as a reader's
        // transaction cannot become a writer once another process has written.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.sql())?;
        let now = unix_now();
        let mut out = Vec::with_capacity(keys.len());
        {
            let mut get = tx
                .prepare_cached("SELECT answer FROM answers WHERE key = ?1")
                .map_err(self.sql())?;
            let mut touch = tx
                .prepare_cached("UPDATE answers SET used = ?2 WHERE key = ?1 AND used < ?2")
                .map_err(self.sql())?;
            for key in keys {
                let answer: Option<String> = get
                    .query_row([key], |r| r.get(0))
                    .optional()
                    .map_err(self.sql())?;
                if answer.is_some() {
                    touch.execute(params![key, now]).map_err(self.sql())?;
                }
                out.push(answer);
            }
        }
        tx.commit().map_err(self.sql())?;
        Ok(out)
    }

    /// Stores `entries` in one transaction: all of them survive a crash, or none.
    pub fn put_many(&self, entries: &[Entry<'_>]) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO answers (key, primitive, model, answer, used)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(self.sql())?;
            let now = unix_now();
            for e in entries {
                put.execute(params![e.key, e.primitive, e.model, e.answer, now])
                    .map_err(self.sql())?;
            }
        }
        tx.commit().map_err(self.sql())
    }

    /// How many answers the cache holds.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM answers", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.sql())
    }

    /// Whether the cache holds no answer.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Counts per model and primitive.
    pub fn stats(&self) -> Result<CacheStats, StoreError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT model, primitive, COUNT(*), MAX(used) FROM answers
                 GROUP BY model, primitive ORDER BY COUNT(*) DESC, model, primitive",
            )
            .map_err(self.sql())?;
        let groups = query
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64, r.get(3)?))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<(String, String, u64, i64)>, _>>()
            .map_err(self.sql())?;
        let file_size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        Ok(CacheStats {
            path: self.path.clone(),
            bytes: file_size(self.path.clone()) + file_size(wal),
            entries: groups.iter().map(|g| g.2).sum(),
            groups,
        })
    }

    /// Deletes the answers that match every condition of `rule` (all answers when it has
    /// none), compacts the file and returns how many were deleted.
    pub fn prune(&self, rule: &PruneRule) -> Result<u64, StoreError> {
        let cutoff = rule
            .unused_for
            .map_or(i64::MAX, |d| unix_now() - d.as_secs() as i64);
        let pattern = rule
            .model
            .as_deref()
            .map_or("%".to_string(), |m| format!("%{}%", escape_like(m)));
        let deleted = self
            .conn
            .execute(
                "DELETE FROM answers WHERE used <= ?1 AND model LIKE ?2 ESCAPE '\\'",
                params![cutoff, pattern],
            )
            .map_err(self.sql())?;
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
            .map_err(self.sql())?;
        Ok(deleted as u64)
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
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

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_databases_and_special_files_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs.sqlite");
        let conn = Connection::open(&theirs).unwrap();
        conn.execute_batch("CREATE TABLE notes (text TEXT);")
            .unwrap();
        drop(conn);
        let before = std::fs::read(&theirs).unwrap();
        let err = RequestCache::open(&theirs).err().unwrap().to_string();
        assert!(
            err.contains("another program") && err.contains("notes"),
            "{err}"
        );
        assert_eq!(std::fs::read(&theirs).unwrap(), before);

        let registry = dir.path().join("runs.sqlite");
        let conn = Connection::open(&registry).unwrap();
        conn.pragma_update(
            None,
            "application_id",
            assay_core::files::REGISTRY_APPLICATION_ID,
        )
        .unwrap();
        drop(conn);
        let err = RequestCache::open(&registry).err().unwrap().to_string();
        assert!(err.contains("assay's run registry"), "{err}");

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, just some text here").unwrap();
        let err = RequestCache::open(&text).err().unwrap().to_string();
        assert!(err.contains("not an SQLite database"), "{err}");

        #[cfg(unix)]
        {
            let err = RequestCache::open(Path::new("/dev/null"))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }

        // A new cache gets the id, and a cache written before the id is claimed.
        let old = dir.path().join("old.sqlite");
        let conn = Connection::open(&old).unwrap();
        conn.execute_batch("CREATE TABLE answers (key TEXT PRIMARY KEY);")
            .unwrap();
        drop(conn);
        for path in [dir.path().join("new.sqlite"), old] {
            drop(RequestCache::open(&path).unwrap());
            let id: i32 = Connection::open(&path)
                .unwrap()
                .pragma_query_value(None, "application_id", |r| r.get(0))
                .unwrap();
            assert_eq!(id, CACHE_APPLICATION_ID);
        }
    }

    fn entry<'a>(key: &'a str, model: &'a str, answer: &'a str) -> Entry<'a> {
        Entry {
            key,
            primitive: "loglikelihood",
            model,
            answer,
        }
    }

    #[test]
    fn keys_hash_the_whole_request() {
        let a = request_key(&("scope", "loglikelihood", "ctx", "cont"));
        assert_eq!(a.len(), 64);
        assert_eq!(a, request_key(&("scope", "loglikelihood", "ctx", "cont")));
        assert_ne!(a, request_key(&("scope", "loglikelihood", "ctx", "cont!")));
        assert_ne!(a, request_key(&("other", "loglikelihood", "ctx", "cont")));
    }

    /// Two runs sharing one new cache file opened it at the same moment: both found no
    /// schema, and the second's `CREATE TABLE` failed (or its `DROP` took the first's answers).
    #[test]
    fn processes_opening_a_new_cache_at_once_all_succeed_and_keep_every_answer() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cache.sqlite");
            let start = std::sync::Arc::new(std::sync::Barrier::new(6));
            let openers: Vec<_> = (0..6)
                .map(|i| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        let cache = RequestCache::open(&path)?;
                        let key = format!("k{i}");
                        cache.put_many(&[entry(&key, "m", "answer")])?;
                        cache.get_many(&[key, "k0".into()])
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
            let stored = RequestCache::open(&path).unwrap().len().unwrap();
            assert_eq!(stored, 6, "round {round}");
        }
    }

    #[test]
    fn answers_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.sqlite");
        {
            let cache = RequestCache::open(&path).unwrap();
            assert!(cache.is_empty().unwrap());
            cache
                .put_many(&[entry("k1", "m", "1"), entry("k2", "m", "2")])
                .unwrap();
        }
        let cache = RequestCache::open(&path).unwrap();
        let got = cache
            .get_many(&["k2".into(), "k3".into(), "k1".into()])
            .unwrap();
        assert_eq!(
            got,
            vec![Some("2".to_string()), None, Some("1".to_string())]
        );
        assert_eq!(cache.len().unwrap(), 2);
    }

    #[test]
    fn stats_and_prune_by_model() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RequestCache::open(&dir.path().join("c.sqlite")).unwrap();
        cache
            .put_many(&[
                entry("a", "llama.cpp gemma_50%", "1"),
                entry("b", "llama.cpp gemma_50%", "2"),
                entry("c", "openai qwen", "3"),
            ])
            .unwrap();
        let stats = cache.stats().unwrap();
        assert_eq!(stats.entries, 3);
        assert_eq!(stats.groups[0].0, "llama.cpp gemma_50%");
        assert_eq!(stats.groups[0].2, 2);
        // `%` and `_` in the pattern are literal.
        let rule = PruneRule {
            model: Some("gemmaX50".into()),
            ..Default::default()
        };
        assert_eq!(cache.prune(&rule).unwrap(), 0);
        let rule = PruneRule {
            model: Some("gemma_50%".into()),
            ..Default::default()
        };
        assert_eq!(cache.prune(&rule).unwrap(), 2);
        assert_eq!(cache.len().unwrap(), 1);
        // Recently used answers are kept by an age rule; no rule deletes everything.
        let rule = PruneRule {
            unused_for: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        assert_eq!(cache.prune(&rule).unwrap(), 0);
        assert_eq!(cache.prune(&PruneRule::default()).unwrap(), 1);
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        std::fs::write(
            &path,
            "this is not a database, just text long enough to matter",
        )
        .unwrap();
        let err = RequestCache::open(&path).err().expect("not a database");
        assert!(err.to_string().contains("c.sqlite"), "{err}");
    }
}
