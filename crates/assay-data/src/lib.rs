//! Dataset readers: every benchmark file becomes a list of records (JSON objects), and every
//! error names the file and the line where the input went wrong.
//!
//! Formats are chosen by extension, with an optional trailing `.gz`:
//! `.jsonl` (one object per line), `.json` (an array of objects), `.csv` / `.tsv` (a header row, or
//! no header when column names are given), `.lst` / `.txt` (one value per line), `.py` (data
//! held as Python literals, e.g. few-shot exemplars; read, never run) and `.parquet` (one record
//! per row, as Hugging Face datasets ship them).

mod parquet;
mod pyliteral;

pub use pyliteral::parse_literal;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// One dataset row: field name to value.
pub type Record = Map<String, Value>;

/// Why a dataset file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file does not exist or cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid in its format at a given line.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A Parquet file that the Parquet reader rejects (not Parquet, truncated, unsupported).
    #[error("{path}: cannot read it as Parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        message: String,
    },
    /// The extension names no format this reader knows.
    #[error("{path}: unknown dataset format (expected .jsonl, .json, .csv, .tsv, .lst, .txt, .py or .parquet, optionally .gz)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
}

/// How to read a file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Column names for CSV/TSV files without a header row; `None` reads the first row as header.
    pub column_names: Option<Vec<String>>,
    /// Field name for the values of `.lst` / `.txt` files (default `"text"`).
    pub line_field: Option<String>,
    /// `.py` files: the variable holding the records (a list of objects, or an object whose
    /// values are objects; their keys become the `id` field).
    pub python_variable: Option<String>,
    /// `.py` files: a key to descend into first (e.g. a language code).
    pub python_key: Option<String>,
    /// `.py` files: extra fields taken from list variables, aligned with the records by position.
    pub python_aligned: Vec<(String, String)>,
    /// A field to add to every record holding the 1-based line it starts on (JSONL, CSV, TSV
    /// and line files; the row for Parquet), so that later checks can name the line.
    pub line_number_field: Option<String>,
}

/// The file formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// One JSON array of objects.
    Json,
    /// Comma-separated values.
    Csv,
    /// Tab-separated values.
    Tsv,
    /// One value per line.
    Lines,
    /// Python literals (`NAME = {...}`).
    PythonLiteral,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// The format of `path` from its extension (a trailing `.gz` is looked through).
    pub fn of(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = name.rsplit_once('.')?.1;
        Some(match ext {
            "jsonl" | "ndjson" => Format::JsonLines,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "lst" | "txt" => Format::Lines,
            "py" => Format::PythonLiteral,
            "parquet" => Format::Parquet,
            _ => return None,
        })
    }
}

fn open(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let file = File::open(path).map_err(|source| DataError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Ok(Box::new(file))
    }
}

/// Reads every record of `path`.
pub fn read_records(path: &Path, options: &ReadOptions) -> Result<Vec<Record>, DataError> {
    let format = Format::of(path).ok_or_else(|| DataError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let reader = open(path)?;
    match format {
        Format::JsonLines => read_jsonl(path, reader, options),
        Format::Json => read_json(path, reader),
        Format::Csv => read_delimited(path, reader, b',', options),
        Format::Tsv => read_delimited(path, reader, b'\t', options),
        Format::Lines => read_lines(path, reader, options),
        Format::PythonLiteral => read_python(path, reader, options),
        Format::Parquet => parquet::read(path, reader, options),
    }
}

fn read_python(
    path: &Path,
    mut reader: Box<dyn Read>,
    options: &ReadOptions,
) -> Result<Vec<Record>, DataError> {
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| read_error(path, 1, e))?;
    let vars = pyliteral::parse_assignments(&text).map_err(|(line, m)| malformed(path, line, m))?;
    let name = options.python_variable.as_deref().ok_or_else(|| {
        malformed(
            path,
            1,
            "which variable holds the records? (python_variable)",
        )
    })?;
    let mut value = vars.get(name).cloned().ok_or_else(|| {
        malformed(
            path,
            1,
            format!(
                "no variable `{name}` (found: {})",
                vars.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    if let Some(key) = &options.python_key {
        value = value
            .get(key)
            .cloned()
            .ok_or_else(|| malformed(path, 1, format!("`{name}` has no key `{key}`")))?;
    }
    let mut records: Vec<Record> = match value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => Ok(m),
                other => Err(malformed(
                    path,
                    1,
                    format!("`{name}` holds {}, expected objects", kind(&other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::Object(mut m) => {
                    m.entry("id").or_insert(Value::String(k));
                    Ok(m)
                }
                other => Err(malformed(
                    path,
                    1,
                    format!("`{name}` holds {}, expected objects", kind(&other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(malformed(
                path,
                1,
                format!(
                    "`{name}` is {}, expected a list or dict of objects",
                    kind(&other)
                ),
            ))
        }
    };
    for (field, var) in &options.python_aligned {
        let Some(Value::Array(values)) = vars.get(var) else {
            return Err(malformed(path, 1, format!("no list variable `{var}`")));
        };
        if values.len() != records.len() {
            return Err(malformed(
                path,
                1,
                format!(
                    "`{var}` has {} values for {} records",
                    values.len(),
                    records.len()
                ),
            ));
        }
        for (record, v) in records.iter_mut().zip(values) {
            record.insert(field.clone(), v.clone());
        }
    }
    Ok(records)
}

fn malformed(path: &Path, line: usize, message: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

fn read_error(path: &Path, line: usize, err: std::io::Error) -> DataError {
    malformed(path, line, format!("read failed: {err}"))
}

/// Adds the line number field to `record` when `options` asks for one.
fn number(mut record: Record, line: usize, options: &ReadOptions) -> Record {
    if let Some(field) = &options.line_number_field {
        record.insert(field.clone(), Value::from(line));
    }
    record
}

fn read_jsonl(
    path: &Path,
    reader: Box<dyn Read>,
    options: &ReadOptions,
) -> Result<Vec<Record>, DataError> {
    let mut records = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| read_error(path, i + 1, e))?;
        let text = line.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => records.push(number(map, i + 1, options)),
            Ok(other) => {
                return Err(malformed(
                    path,
                    i + 1,
                    format!("expected a JSON object, found {}", kind(&other)),
                ))
            }
            Err(e) => return Err(malformed(path, i + 1, format!("invalid JSON: {e}"))),
        }
    }
    Ok(records)
}

fn read_json(path: &Path, mut reader: Box<dyn Read>) -> Result<Vec<Record>, DataError> {
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| read_error(path, 1, e))?;
    let value: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| malformed(path, e.line(), format!("invalid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(malformed(path, 1, "expected a JSON array of objects"));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => Ok(map),
            other => Err(malformed(
                path,
                1,
                format!("item {i} is {}, expected an object", kind(&other)),
            )),
        })
        .collect()
}

fn read_delimited(
    path: &Path,
    reader: Box<dyn Read>,
    delimiter: u8,
    options: &ReadOptions,
) -> Result<Vec<Record>, DataError> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(options.column_names.is_none())
        .flexible(true)
        .quoting(delimiter == b',')
        .from_reader(reader);
    let columns: Vec<String> = match &options.column_names {
        Some(names) => names.clone(),
        None => csv
            .headers()
            .map_err(|e| malformed(path, 1, format!("cannot read header: {e}")))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect(),
    };
    let mut records = Vec::new();
    for row in csv.records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            malformed(path, line, e.to_string())
        })?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        if row.len() != columns.len() {
            return Err(malformed(
                path,
                line,
                format!("expected {} fields, found {}", columns.len(), row.len()),
            ));
        }
        let mut record = Record::new();
        for (name, field) in columns.iter().zip(row.iter()) {
            let field = if records.is_empty() && record.is_empty() {
                field.trim_start_matches('\u{feff}')
            } else {
                field
            };
            record.insert(name.clone(), Value::String(field.to_string()));
        }
        records.push(number(record, line, options));
    }
    Ok(records)
}

fn read_lines(
    path: &Path,
    reader: Box<dyn Read>,
    options: &ReadOptions,
) -> Result<Vec<Record>, DataError> {
    let field = options.line_field.as_deref().unwrap_or("text");
    let mut records = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| read_error(path, i + 1, e))?;
        let mut record = Record::new();
        record.insert(
            field.to_string(),
            Value::String(line.trim_end().to_string()),
        );
        records.push(number(record, i + 1, options));
    }
    // A trailing empty line is the end of the file, not a record.
    while records
        .last()
        .is_some_and(|r| r[field].as_str() == Some(""))
    {
        records.pop();
    }
    Ok(records)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        path
    }

    #[test]
    fn jsonl_reports_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.jsonl", b"{\"a\": 1}\n\n{\"a\": 2\n");
        let err = read_records(&path, &ReadOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a.jsonl:3:"), "{msg}");
    }

    #[test]
    fn jsonl_rejects_non_objects() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.jsonl", b"[1, 2]\n");
        let err = read_records(&path, &ReadOptions::default()).unwrap_err();
        assert!(err
            .to_string()
            .contains("expected a JSON object, found an array"));
    }

    #[test]
    fn gzip_jsonl_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"x\": \"y\"}\n").unwrap();
        let path = write(&dir, "a.jsonl.gz", &gz.finish().unwrap());
        let records = read_records(&path, &ReadOptions::default()).unwrap();
        assert_eq!(records[0]["x"], "y");
    }

    #[test]
    fn headerless_csv_uses_given_columns_and_checks_widths() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.csv", b"\xef\xbb\xbfq1,\"x, y\",B\nq2,z\n");
        let options = ReadOptions {
            column_names: Some(vec!["question".into(), "choice".into(), "answer".into()]),
            ..Default::default()
        };
        let err = read_records(&path, &options).unwrap_err().to_string();
        assert!(err.contains("a.csv:2: expected 3 fields, found 2"), "{err}");
        let path = write(&dir, "b.csv", b"\xef\xbb\xbfq1,\"x, y\",B\n");
        let records = read_records(&path, &options).unwrap();
        assert_eq!(records[0]["question"], "q1");
        assert_eq!(records[0]["choice"], "x, y");
        let numbered = ReadOptions {
            line_number_field: Some("_line".into()),
            ..options.clone()
        };
        let path = write(&dir, "c.csv", b"q1,\"x\ny\",B\nq2,z,C\n");
        let lines = read_records(&path, &numbered).unwrap();
        assert_eq!(lines[0]["_line"], 1);
        assert_eq!(lines[1]["_line"], 3, "a quoted newline spans two lines");
    }

    #[test]
    fn tsv_does_not_treat_quotes_specially() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.tsv", b"He said \"hi\tthere\t5\n");
        let options = ReadOptions {
            column_names: Some(vec!["q".into(), "a".into(), "n".into()]),
            ..Default::default()
        };
        let records = read_records(&path, &options).unwrap();
        assert_eq!(records[0]["q"], "He said \"hi");
    }

    #[test]
    fn lines_drop_the_final_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "labels.lst", b"0\n1\n\n");
        let records = read_records(&path, &ReadOptions::default()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1]["text"], "1");
    }

    #[test]
    fn python_literal_records_with_aligned_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "ex.py",
            b"N = [11, 29]\nEX = {\"en\": {\"1\": {\"q\": \"a\"}, \"2\": {\"q\": \"b\"}}}\n",
        );
        let options = ReadOptions {
            python_variable: Some("EX".into()),
            python_key: Some("en".into()),
            python_aligned: vec![("answer_number".into(), "N".into())],
            ..Default::default()
        };
        let records = read_records(&path, &options).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1]["q"], "b");
        assert_eq!(records[1]["id"], "2");
        assert_eq!(records[1]["answer_number"], 29);
        let err = read_records(
            &path,
            &ReadOptions {
                python_key: Some("xx".into()),
                ..options
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("has no key `xx`"), "{err}");
    }

    #[test]
    fn missing_file_and_unknown_format_are_named() {
        let err = read_records(Path::new("/nonexistent/x.jsonl"), &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/x.jsonl"));
        let err = read_records(Path::new("x.parquetz"), &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown dataset format"));
    }
}
