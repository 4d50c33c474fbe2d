//! What assay may write over: its SQLite files carry an `application_id` so the run registry,
//! the request cache and another program's database are told apart by name, and no output
//! replaces a device, a folder or a database.

use std::path::Path;

/// `PRAGMA application_id` of a run registry ("asRG").
pub const REGISTRY_APPLICATION_ID: i32 = 0x6173_5247;
/// `PRAGMA application_id` of a request cache ("asRC").
pub const CACHE_APPLICATION_ID: i32 = 0x6173_5243;

/// What an SQLite file with `application_id` is, for messages.
pub fn sqlite_kind(application_id: i32) -> &'static str {
    match application_id {
        REGISTRY_APPLICATION_ID => "assay's run registry",
        CACHE_APPLICATION_ID => "assay's request cache",
        _ => "an SQLite database of another program",
    }
}

/// Refuses a `path` that exists and is not a regular file (a folder, a device such as
/// `/dev/null`, a FIFO, a socket): assay opens and writes regular files only, and SQLite would
/// create its journal beside a device.
pub fn check_regular(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(format!(
            "{} is {}, not a regular file; pass a file path",
            path.display(),
            if meta.is_dir() {
                "a folder"
            } else {
                "a device, FIFO or socket"
            }
        )),
        _ => Ok(()),
    }
}

/// Refuses to replace `path` with an output: a non-regular file, or an SQLite database (a run
/// registry or request cache named by mistake would lose every recorded run or answer).
pub fn check_replaceable(path: &Path) -> Result<(), String> {
    check_regular(path)?;
    let mut header = [0u8; 16];
    let is_sqlite = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok_and(|()| &header == b"SQLite format 3\0");
    if is_sqlite {
        return Err(format!(
            "{} is an SQLite database (a run registry or request cache?): writing there would destroy it; pick another output path",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_that_are_not_databases_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("report.html");
        std::fs::write(&text, "<html>").unwrap();
        assert_eq!(check_replaceable(&text), Ok(()));
        assert_eq!(check_replaceable(&dir.path().join("new.json")), Ok(()));
        let err = check_replaceable(dir.path()).unwrap_err();
        assert!(err.contains("a folder"), "{err}");
        #[cfg(unix)]
        {
            let err = check_replaceable(Path::new("/dev/null")).unwrap_err();
            assert!(err.contains("device"), "{err}");
        }
        let db = dir.path().join("runs.sqlite");
        std::fs::write(&db, b"SQLite format 3\0rest of the header").unwrap();
        let err = check_replaceable(&db).unwrap_err();
        assert!(err.contains("SQLite database"), "{err}");
        assert_eq!(sqlite_kind(CACHE_APPLICATION_ID), "assay's request cache");
    }
}
