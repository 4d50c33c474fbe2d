//! `assay index`: index a folder of evaluation artifacts into DATA_MAPPING.md and JSON.

use std::path::{Path, PathBuf};

use anyhow::Context;
use assay_records::aligned_table;
use assay_validate::index::{
    index_folder, to_markdown, Category, FolderIndex, JSON_NAME, MARKDOWN_NAME,
};

use super::write_atomically;

/// Arguments of `assay index`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay index validation/\n  \
    assay index ~/lm-eval-out --markdown notes/MAPPING.md --json notes/mapping.json\n\n\
    Recognised by content: prompt/response JSONL (assay generate's and the like), assay sample \
    completions, assay convert sets, lm-eval results and samples (assay's own too), benchmark \
    JSON with per-question results, summaries of numbers, text logs, Markdown notes and Hugging \
    Face dataset folders. Anything else is listed as unknown; a file that cannot be read or \
    parsed is listed as unreadable with the reason, and the rest is indexed.")]
pub struct IndexArgs {
    /// The folder to index.
    dir: PathBuf,
    /// Where to write the Markdown index [default: DIR/DATA_MAPPING.md].
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Where to write the JSON index [default: DIR/data_mapping.json].
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Indexes `dir` and writes both index files (Markdown to `markdown`, JSON to `json`, by default
/// inside `dir`); warns on stderr about each unreadable file. Used by `assay generate` too.
pub fn write_index(
    dir: &Path,
    markdown: Option<&Path>,
    json: Option<&Path>,
) -> anyhow::Result<(FolderIndex, PathBuf, PathBuf)> {
    let generated = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let index =
        index_folder(dir, generated).with_context(|| format!("indexing {}", dir.display()))?;
    for f in index
        .files
        .iter()
        .filter(|f| f.category == Category::Unreadable)
    {
        eprintln!(
            "warning: {}: {}",
            dir.join(&f.path).display(),
            f.error.as_deref().unwrap_or("unreadable")
        );
    }
    let md_path = markdown.map_or_else(|| dir.join(MARKDOWN_NAME), Path::to_path_buf);
    let json_path = json.map_or_else(|| dir.join(JSON_NAME), Path::to_path_buf);
    write_atomically(&md_path, to_markdown(&index).as_bytes())?;
    write_atomically(&json_path, serde_json::to_string_pretty(&index)?.as_bytes())?;
    Ok((index, md_path, json_path))
}

/// Runs `assay index`; returns the exit code.
pub fn run(args: IndexArgs) -> anyhow::Result<i32> {
    if !args.dir.is_dir() {
        anyhow::bail!("{}: not a folder", args.dir.display());
    }
    let (index, md, json) = write_index(&args.dir, args.markdown.as_deref(), args.json.as_deref())?;
    let mut rows = vec![vec![
        "Category".to_string(),
        "Files".into(),
        "Entries".into(),
    ]];
    let mut categories: Vec<Category> = index.files.iter().map(|f| f.category).collect();
    categories.sort();
    categories.dedup();
    for c in categories {
        let files: Vec<_> = index.files.iter().filter(|f| f.category == c).collect();
        rows.push(vec![
            c.name(),
            files.len().to_string(),
            files
                .iter()
                .filter_map(|f| f.entries)
                .sum::<usize>()
                .to_string(),
        ]);
    }
    print!("{}", aligned_table(&rows));
    println!(
        "{} files indexed -> {} and {}",
        index.files.len(),
        md.display(),
        json.display()
    );
    Ok(0)
}
