//! n-gram contamination checks: which test items share a run of `n` normalised words (13 by
//! default) with any training text. Test sets are indexed in memory (their grams hashed, the
//! words kept to confirm each hit); the training data is streamed in chunks to worker threads,
//! so a file of any size is read once, in constant memory, on every core.
//!
//! Normalisation: lower case, every character that is not a letter or digit becomes a space.
//! Items shorter than `n` words are matched whole (their whole word sequence must appear).

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::ValidateError;

/// One test item to check.
#[derive(Debug, Clone)]
pub struct TestItem {
    /// Where it comes from (`file:line`, or `task/doc`).
    pub id: String,
    /// Its text.
    pub text: String,
}

/// A named test set.
#[derive(Debug, Clone)]
pub struct TestSet {
    /// Its name (a file or task).
    pub name: String,
    /// Its items.
    pub items: Vec<TestItem>,
}

/// Lower-cased words of `text`: runs of letters and digits.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn word_hash(word: &str) -> u64 {
    word.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Base of the rolling gram hash.
const BASE: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hashes of every window of `len` words, rolling.
fn window_hashes(words: &[u64], len: usize, mut each: impl FnMut(usize, u64)) {
    if words.len() < len || len == 0 {
        return;
    }
    let top = (1..len).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let mut h = words[..len]
        .iter()
        .fold(0u64, |h, w| h.wrapping_mul(BASE).wrapping_add(*w));
    each(0, h);
    for start in 1..=words.len() - len {
        h = h
            .wrapping_sub(words[start - 1].wrapping_mul(top))
            .wrapping_mul(BASE)
            .wrapping_add(words[start + len - 1]);
        each(start, h);
    }
}

/// Where a gram occurs in the test sets: (set, item, first word).
type Occurrence = (u32, u32, u32);

/// The test sets' grams.
pub struct Index {
    n: usize,
    sets: Vec<TestSet>,
    /// Normalised words of every item, per set.
    words: Vec<Vec<Vec<String>>>,
    grams: HashMap<u64, Vec<Occurrence>>,
    /// Gram lengths in use: `n`, and the lengths of shorter items.
    lengths: BTreeSet<usize>,
}

/// One match: a test item's gram found in a training line.
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// The matching words.
    pub text: String,
    /// 1-based line of the training file.
    pub train_line: u64,
    /// Which training file.
    pub train_file: String,
}

/// A contaminated test item.
#[derive(Debug, Clone, Serialize)]
pub struct Contaminated {
    /// The item's id.
    pub id: String,
    /// Up to three matching spans.
    pub spans: Vec<Span>,
    /// All matches found.
    pub matches: u64,
}

/// The result for one test set.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    /// The test set.
    pub name: String,
    /// Its items.
    pub items: usize,
    /// Items shorter than n words (matched whole).
    pub short_items: usize,
    /// Contaminated items, in item order.
    pub contaminated: Vec<Contaminated>,
    /// Contaminated / items.
    pub rate: f64,
}

/// Training data read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanStats {
    /// Bytes read (uncompressed).
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Lines with no text field (skipped).
    pub skipped_lines: u64,
    /// Seconds spent.
    pub seconds: f64,
}

impl ScanStats {
    /// Throughput in MB/s.
    pub fn mb_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

impl Index {
    /// Indexes `sets` with grams of `n` words.
    pub fn new(sets: Vec<TestSet>, n: usize) -> Index {
        let mut grams: HashMap<u64, Vec<Occurrence>> = HashMap::new();
        let mut lengths = BTreeSet::new();
        let mut words = Vec::new();
        for (s, set) in sets.iter().enumerate() {
            let mut set_words = Vec::new();
            for (i, item) in set.items.iter().enumerate() {
                let norm = normalise(&item.text);
                let w: Vec<String> = norm
                    .split(' ')
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect();
                let hashes: Vec<u64> = w.iter().map(|w| word_hash(w)).collect();
                let len = n.min(w.len());
                if len > 0 {
                    lengths.insert(len);
                    window_hashes(&hashes, len, |start, h| {
                        grams
                            .entry(h)
                            .or_default()
                            .push((s as u32, i as u32, start as u32));
                    });
                }
                set_words.push(w);
            }
            words.push(set_words);
        }
        Index {
            n,
            sets,
            words,
            grams,
            lengths,
        }
    }

    /// The n of the grams.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Matches in one training text: (set, item, first word, length) for each confirmed gram.
    fn matches(&self, text: &str, mut each: impl FnMut(usize, usize, &[&str])) {
        let norm = normalise(text);
        let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
        let hashes: Vec<u64> = words.iter().map(|w| word_hash(w)).collect();
        for &len in &self.lengths {
            window_hashes(&hashes, len, |start, h| {
                let Some(occ) = self.grams.get(&h) else {
                    return;
                };
                let window = &words[start..start + len];
                for &(s, i, at) in occ {
                    let item = &self.words[s as usize][i as usize];
                    let at = at as usize;
                    // Grams of shorter items must be the whole item; hash hits are confirmed.
                    if (len == self.n || item.len() == len)
                        && item[at..at + len].iter().zip(window).all(|(a, b)| a == b)
                    {
                        each(s as usize, i as usize, window);
                    }
                }
            });
        }
    }
}

/// The text of a training line: `text`, else `prompt` + `response`, else the contents of
/// `messages`, else every string field of the object (e.g. `question` + `answer`, or Alpaca's
/// `instruction` + `input` + `output`); `None` for a line that is not a JSON object with text.
pub fn training_text(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    if let Some(p) = v.get("prompt").and_then(Value::as_str) {
        let r = v
            .get("response")
            .or_else(|| v.get("completion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return Some(format!("{p}\n{r}"));
    }
    if let Some(m) = v.get("messages").and_then(Value::as_array) {
        return Some(
            m.iter()
                .filter_map(|x| x.get("content").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    let fields: Vec<&str> = v.as_object()?.values().filter_map(Value::as_str).collect();
    (!fields.is_empty()).then(|| fields.join("\n"))
}

/// Found so far: per (set, item), the spans kept and the match count.
type Found = HashMap<(usize, usize), (Vec<Span>, u64)>;

/// Streams each training file through the index on `threads` workers.
pub fn scan(
    index: &Index,
    train: &[PathBuf],
    threads: usize,
) -> Result<(Vec<SetReport>, ScanStats), ValidateError> {
    let start = Instant::now();
    let mut stats = ScanStats::default();
    let found: Mutex<Found> = Mutex::new(HashMap::new());
    for file in train {
        let name = file.display().to_string();
        let io = |e: std::io::Error| ValidateError::Io {
            path: file.clone(),
            source: e,
        };
        let raw = std::fs::File::open(file).map_err(io)?;
        let reader: Box<dyn Read> = if file.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let (send, receive) = mpsc::sync_channel::<(u64, Vec<String>)>(threads * 2);
        let receive = Arc::new(Mutex::new(receive));
        let skipped = std::sync::atomic::AtomicU64::new(0);
        let lines_read = std::thread::scope(|scope| -> Result<(u64, u64), ValidateError> {
            for _ in 0..threads.max(1) {
                let receive = receive.clone();
                let (found, skipped, name) = (&found, &skipped, &name);
                scope.spawn(move || loop {
                    let Ok((first, chunk)) = receive.lock().expect("queue lock").recv() else {
                        break;
                    };
                    let mut local: Found = HashMap::new();
                    for (k, line) in chunk.iter().enumerate() {
                        let Some(text) = training_text(line) else {
                            if !line.trim().is_empty() {
                                skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            continue;
                        };
                        index.matches(&text, |s, i, window| {
                            let entry = local.entry((s, i)).or_default();
                            entry.1 += 1;
                            if entry.0.len() < 3 {
                                entry.0.push(Span {
                                    text: window.join(" "),
                                    train_line: first + k as u64,
                                    train_file: name.clone(),
                                });
                            }
                        });
                    }
                    let mut all = found.lock().expect("results lock");
                    for (key, (spans, count)) in local {
                        let e = all.entry(key).or_default();
                        e.1 += count;
                        for s in spans {
                            if e.0.len() < 3 {
                                e.0.push(s);
                            }
                        }
                    }
                });
            }
            let mut line_no = 0u64;
            let mut bytes = 0u64;
            let mut chunk = Vec::new();
            let mut chunk_bytes = 0;
            let mut first = 1;
            loop {
                let mut line = String::new();
                let n = reader.read_line(&mut line).map_err(io)?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                bytes += n as u64;
                chunk_bytes += n;
                chunk.push(line);
                if chunk_bytes >= 4 << 20 {
                    send.send((first, std::mem::take(&mut chunk)))
                        .expect("workers alive");
                    first = line_no + 1;
                    chunk_bytes = 0;
                }
            }
            if !chunk.is_empty() {
                send.send((first, chunk)).expect("workers alive");
            }
            drop(send);
            Ok((line_no, bytes))
        })?;
        if lines_read.0 == 0 {
            return Err(ValidateError::EmptyTraining(file.clone()));
        }
        stats.lines += lines_read.0;
        stats.bytes += lines_read.1;
        stats.skipped_lines += skipped.into_inner();
    }
    stats.seconds = start.elapsed().as_secs_f64();
    let found = found.into_inner().expect("results lock");
    let reports = index
        .sets
        .iter()
        .enumerate()
        .map(|(s, set)| {
            let mut contaminated: Vec<(usize, Contaminated)> = found
                .iter()
                .filter(|((fs, _), _)| *fs == s)
                .map(|((_, i), (spans, count))| {
                    let mut spans = spans.clone();
                    spans.sort_by_key(|sp| sp.train_line);
                    (
                        *i,
                        Contaminated {
                            id: set.items[*i].id.clone(),
                            spans,
                            matches: *count,
                        },
                    )
                })
                .collect();
            contaminated.sort_by_key(|(i, _)| *i);
            let n = set.items.len();
            SetReport {
                name: set.name.clone(),
                items: n,
                short_items: index.words[s].iter().filter(|w| w.len() < index.n).count(),
                rate: contaminated.len() as f64 / n.max(1) as f64,
                contaminated: contaminated.into_iter().map(|(_, c)| c).collect(),
            }
        })
        .collect();
    Ok((reports, stats))
}

/// Reads a test file: JSONL lines with `prompt`/`response`, `text`, or `messages`.
pub fn read_test_file(path: &Path) -> Result<(TestSet, Vec<String>), ValidateError> {
    let io = |e: std::io::Error| ValidateError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut items = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let text = training_text(&line).ok_or_else(|| ValidateError::BadItem {
            path: path.to_path_buf(),
            line: i + 1,
            message: "expected a JSON object with text fields (`prompt`/`response`, `text`, `messages`, ...)".into(),
        })?;
        items.push(TestItem {
            id: format!("{}:{}", path.display(), i + 1),
            text,
        });
        lines.push(line);
    }
    if items.is_empty() {
        return Err(ValidateError::BadItem {
            path: path.to_path_buf(),
            line: 0,
            message: "no items: the test file is empty".into(),
        });
    }
    Ok((
        TestSet {
            name: path.display().to_string(),
            items,
        },
        lines,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn set(name: &str, texts: &[&str]) -> TestSet {
        TestSet {
            name: name.into(),
            items: texts
                .iter()
                .enumerate()
                .map(|(i, t)| TestItem {
                    id: format!("{name}:{i}"),
                    text: t.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn normalises_case_punctuation_and_space() {
        assert_eq!(
            normalise("  Hello, World!\n\tIt's  3.5°C "),
            "hello world it s 3 5 c"
        );
        assert_eq!(normalise("Ünïcode WORDS"), "ünïcode words");
    }

    #[test]
    fn finds_grams_across_punctuation_and_short_items_whole() {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("train.jsonl");
        let mut f = std::fs::File::create(&train).unwrap();
        writeln!(f, "{}", serde_json::json!({"text": "Intro. The Quick brown fox jumps over the lazy dog near the quiet river bank today, said Ann."})).unwrap();
        writeln!(
            f,
            "{}",
            serde_json::json!({"prompt": "What is two plus two?", "response": "Four."})
        )
        .unwrap();
        writeln!(f, "{{\"other\": 1}}").unwrap();
        writeln!(f, "{}", serde_json::json!({"question": "Why is the sky blue today", "answer": "Rayleigh scattering"})).unwrap();
        let sets = vec![set(
            "t",
            &[
                "the quick brown fox jumps over the lazy dog near the quiet river bank",
                "the quick brown fox jumps over the lazy cat near the quiet river bank",
                "what is two plus two",
                "two plus three",
                "why is the sky blue today rayleigh scattering",
            ],
        )];
        let index = Index::new(sets, 13);
        let (reports, stats) = scan(&index, &[train], 2).unwrap();
        let r = &reports[0];
        let ids: Vec<&str> = r.contaminated.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["t:0", "t:2", "t:4"]);
        assert_eq!(r.contaminated[0].spans[0].train_line, 1);
        assert_eq!(r.contaminated[1].spans[0].text, "what is two plus two");
        assert_eq!(r.short_items, 3);
        assert_eq!(stats.lines, 4);
        assert_eq!(stats.skipped_lines, 1);
        assert!((r.rate - 0.6).abs() < 1e-12);
    }

    #[test]
    fn empty_training_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let train = dir.path().join("empty.jsonl");
        std::fs::write(&train, "").unwrap();
        let index = Index::new(vec![set("t", &["a b c"])], 13);
        let err = scan(&index, &[train], 1).err().unwrap().to_string();
        assert!(
            err.contains("empty.jsonl") && err.contains("empty"),
            "{err}"
        );
    }
}
