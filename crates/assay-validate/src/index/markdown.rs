//! The index as Markdown (DATA_MAPPING.md).

use std::fmt::Write as _;

use super::*;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The index as Markdown: the files table, a summary by category, the format comparison, and
/// the unreadable or unknown files with the reasons.
pub fn to_markdown(index: &FolderIndex) -> String {
    let name = index
        .root
        .file_name()
        .map_or(index.root.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        });
    let mut md = format!(
        "# Data mapping: {name}\n\nGenerated: {} by assay index\n\n## Files\n\n",
        index.generated
    );
    md.push_str(
        "| File | Entries | Format | Category | Model | Description |\n|---|---|---|---|---|---|\n",
    );
    for f in &index.files {
        let model = match (&f.model, &f.role) {
            (Some(m), Some(r)) => format!("{m} ({r})"),
            (Some(m), None) => m.clone(),
            _ => "-".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&f.path),
            f.entries.map_or("-".into(), |n| n.to_string()),
            cell(&f.format),
            f.category.name(),
            cell(&model),
            cell(&f.description)
        );
    }
    md.push_str(
        "\n## Summary by category\n\n| Category | Files | Entries | Models |\n|---|---|---|---|\n",
    );
    let mut by: BTreeMap<Category, (usize, usize, Vec<String>)> = BTreeMap::new();
    for f in &index.files {
        let c = by.entry(f.category).or_default();
        c.0 += 1;
        c.1 += f.entries.unwrap_or(0);
        if let Some(m) = &f.model {
            if !c.2.contains(m) {
                c.2.push(m.clone());
            }
        }
    }
    for (cat, (files, entries, models)) in &by {
        let _ = writeln!(
            md,
            "| {} | {files} | {entries} | {} |",
            cat.name(),
            cell(&models.join(", "))
        );
    }
    if !index.format_comparison.is_empty() {
        md.push_str("\n## Format comparison\n\n| Model | Format | Responses | Mean chars | Mean reasoning chars | Tokens/s | Refusal rate |\n|---|---|---|---|---|---|---|\n");
        for r in &index.format_comparison {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {:.0} | {} | {} |",
                cell(&r.model),
                cell(&r.format),
                r.responses,
                r.mean_chars,
                r.mean_reasoning_chars,
                r.tokens_per_s.map_or("-".into(), |t| format!("{t:.1}")),
                r.refusal_rate
                    .map_or("-".into(), |x| format!("{:.1}%", 100.0 * x))
            );
        }
    }
    let odd: Vec<&FileEntry> = index
        .files
        .iter()
        .filter(|f| matches!(f.category, Category::Unknown | Category::Unreadable))
        .collect();
    if !odd.is_empty() {
        md.push_str("\n## Unreadable or unknown files\n\n");
        for f in odd {
            let _ = writeln!(
                md,
                "- `{}`: {}",
                f.path,
                f.error.as_deref().unwrap_or(&f.description)
            );
        }
    }
    md
}
