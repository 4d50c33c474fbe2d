//! Parquet files, the format Hugging Face datasets ship their splits in: every row becomes a
//! record; lists and structs become JSON arrays and objects, nulls stay null.

use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use arrow_json::writer::{LineDelimited, WriterBuilder};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaData;
use serde_json::Value;

use crate::{number, DataError, ReadOptions, Record};

fn unreadable(path: &Path, message: impl std::fmt::Display) -> DataError {
    DataError::Parquet {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Reads every row of a Parquet file (already decompressed when it was gzipped); the line
/// number field, when asked for, holds the 1-based row.
pub(crate) fn read(
    path: &Path,
    mut reader: Box<dyn Read>,
    options: &ReadOptions,
) -> Result<Vec<Record>, DataError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(path, e))?;
    // The Parquet reader asserts instead of failing on some corrupt pages (a data page that
    // names a dictionary the chunk lacks, found by fuzzing): such a panic is this file's error.
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        decode(path, Bytes::from(bytes), options)
    }))
    .unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the reader stopped".into());
        Err(unreadable(path, format!("{why}: the file is corrupt")))
    })
}

fn decode(path: &Path, bytes: Bytes, options: &ReadOptions) -> Result<Vec<Record>, DataError> {
    let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::default())
        .map_err(|e| unreadable(path, e))?;
    check_column_chunks(path, metadata.metadata(), bytes.len() as u64)?;
    let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata)
        .build()
        .map_err(|e| unreadable(path, e))?;
    let mut records = Vec::new();
    for batch in batches {
        let batch = batch.map_err(|e| unreadable(path, e))?;
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(Vec::new());
        writer.write(&batch).map_err(|e| unreadable(path, e))?;
        writer.finish().map_err(|e| unreadable(path, e))?;
        for line in writer.into_inner().split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let row = records.len() + 1;
            match serde_json::from_slice::<Value>(line) {
                Ok(Value::Object(map)) => records.push(number(map, row, options)),
                Ok(_) | Err(_) => {
                    return Err(unreadable(path, format!("row {row} has no JSON form")))
                }
            }
        }
    }
    Ok(records)
}

/// Every column chunk must lie inside the file: the Parquet reader asserts (panics) on a
/// negative offset or size, which a corrupt footer can hold (found by fuzzing).
fn check_column_chunks(
    path: &Path,
    metadata: &ParquetMetaData,
    file_len: u64,
) -> Result<(), DataError> {
    for (group, row_group) in metadata.row_groups().iter().enumerate() {
        for column in row_group.columns() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let len = column.compressed_size();
            let end = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(start, len)| start.checked_add(len));
            if end.is_none_or(|end| end > file_len) {
                return Err(unreadable(
                    path,
                    format!(
                        "column {} of row group {group} claims bytes {start}..+{len}, outside the file ({file_len} bytes): the file is corrupt or cut short",
                        column.column_path()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use arrow_array::builder::{Int64Builder, ListBuilder, StringBuilder};
    use arrow_array::{ArrayRef, RecordBatch};
    use parquet::arrow::ArrowWriter;

    use crate::{read_records, ReadOptions};

    /// `batch` as the bytes of a Parquet file.
    fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
        bytes
    }

    /// The message of the error reading `path` gives.
    fn error_reading(path: &Path) -> String {
        read_records(path, &ReadOptions::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn rows_become_records_with_lists_and_nulls() {
        let mut question = StringBuilder::new();
        question.append_value("2+2?");
        question.append_null();
        let mut choices = ListBuilder::new(StringBuilder::new());
        choices.values().append_value("3");
        choices.values().append_value("4");
        choices.append(true);
        choices.append(true);
        let mut label = Int64Builder::new();
        label.append_value(1);
        label.append_value(0);
        let batch = RecordBatch::try_from_iter([
            ("question", Arc::new(question.finish()) as ArrayRef),
            ("choices", Arc::new(choices.finish()) as ArrayRef),
            ("label", Arc::new(label.finish()) as ArrayRef),
        ])
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test-00000-of-00001.parquet");
        std::fs::write(&path, parquet_bytes(&batch)).unwrap();
        let options = ReadOptions {
            line_number_field: Some("_row".into()),
            ..ReadOptions::default()
        };
        let records = read_records(&path, &options).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["question"], "2+2?");
        assert_eq!(records[0]["choices"], serde_json::json!(["3", "4"]));
        assert_eq!(records[0]["label"], 1);
        assert!(records[1]["question"].is_null());
        assert_eq!(records[1]["choices"], serde_json::json!([]));
        assert_eq!(records[1]["_row"], 2);
    }

    #[test]
    fn a_footer_pointing_outside_the_file_is_an_error() {
        // A valid file cut after its first row group's data but keeping its footer: the
        // footer's column chunks then point past the end (the fuzzer's finding was a negative
        // offset, which panicked inside the Parquet reader).
        let mut names = StringBuilder::new();
        for i in 0..64 {
            names.append_value(format!("row {i} with some text to make the chunk long"));
        }
        let batch =
            RecordBatch::try_from_iter([("name", Arc::new(names.finish()) as ArrayRef)]).unwrap();
        let bytes = parquet_bytes(&batch);
        let footer_len =
            u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap())
                as usize;
        let footer = bytes[bytes.len() - 8 - footer_len..].to_vec();
        let mut cut = bytes[..16].to_vec();
        cut.extend_from_slice(&footer);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.parquet");
        std::fs::write(&path, cut).unwrap();
        let err = error_reading(&path);
        assert!(err.contains("outside the file"), "{err}");
    }

    #[test]
    fn a_negative_column_offset_is_an_error_not_a_panic() {
        // The fuzzer's input (its first byte, which picked the extension, removed).
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/negative_column_offset.parquet");
        let err = error_reading(&path);
        assert!(err.contains("outside the file"), "{err}");
    }

    #[test]
    fn a_page_naming_a_missing_dictionary_is_an_error_not_a_panic() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/missing_dictionary.parquet");
        let err = error_reading(&path);
        assert!(
            err.contains("missing_dictionary.parquet: cannot read it as Parquet"),
            "{err}"
        );
        assert!(err.contains("the file is corrupt"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_parquet_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.parquet");
        std::fs::write(&path, b"{\"not\": \"parquet\"}\n").unwrap();
        let err = error_reading(&path);
        assert!(
            err.contains("train.parquet: cannot read it as Parquet"),
            "{err}"
        );
    }
}
