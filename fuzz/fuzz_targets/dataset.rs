//! Dataset readers: the input, saved under the extension the low four bits of its first byte
//! pick (JSONL, JSON, CSV, TSV, lines, Python literals, Parquet, each also gzipped), is read as
//! records; the high bits pick reading options.
#![no_main]

use assay_data::{read_records, ReadOptions};
use libfuzzer_sys::fuzz_target;

const EXTENSIONS: [&str; 14] = [
    "jsonl", "json", "csv", "tsv", "txt", "py", "jsonl.gz", "json.gz", "csv.gz", "tsv.gz",
    "txt.gz", "py.gz", "parquet", "parquet.gz",
];

fuzz_target!(
    init: {
        // assay-data turns a panic inside the Parquet crate (it asserts on some corrupt pages)
        // into that file's error; libFuzzer's hook would abort on it before the unwind, so those
        // panics are let through to be caught. Any other panic still aborts.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|at| at.file().contains("/parquet-")) {
                abort(info);
            }
        }));
    },
    |data: &[u8]| {
        let Some((pick, body)) = data.split_first() else {
            return;
        };
        let ext = EXTENSIONS[(pick & 0x0f) as usize % EXTENSIONS.len()];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("d.{ext}"));
        std::fs::write(&path, body).unwrap();
        let options = ReadOptions {
            python_variable: (pick & 0x80 != 0).then(|| "DATA".to_string()),
            column_names: (pick & 0x40 != 0).then(|| vec!["a".into(), "b".into()]),
            line_number_field: Some("_line".into()),
            ..ReadOptions::default()
        };
        let _ = read_records(&path, &options);
    }
);
