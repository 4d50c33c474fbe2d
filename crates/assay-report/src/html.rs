//! HTML pieces: the comparison (written summary, table, charts), the provenance of each run,
//! and the whole self-contained report with its embedded sample browser.

use assay_records::{
    doc_rows, format_cell, format_delta, metric_label, summary_lines, Comparison, DocRow,
    RecordsError, Registry, Run, Test, Verdict,
};
use serde_json::json;

use crate::charts::{bar_chart, delta_chart};

/// The stylesheet shared by the report and the web view.
pub(crate) const STYLE: &str = include_str!("../assets/style.css");
/// The sample browser script shared by the report and the web view.
pub(crate) const BROWSER_JS: &str = include_str!("../assets/browser.js");

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside a `<script>` element: `<`, `>` and `&` (and the line separators
/// older JavaScript rejects) as `\uXXXX` escapes, so no text in it (`</script>`, `<!--`,
/// `<script>`) can change how the HTML parser reads the element.
fn script_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

fn test_title(test: &Test, p: Option<f64>) -> String {
    let p = p.map_or("no p-value".to_string(), |p| format!("p = {p:.4}"));
    match test {
        Test::Mcnemar { n, b, c } => format!(
            "McNemar's exact test, {n} paired documents: {b} right only in the baseline, {c} only in this run; {p}"
        ),
        Test::PairedT { n, .. } => format!("paired t-test over {n} documents; {p}"),
        Test::Unpaired => format!("unpaired z-test on the standard errors; {p}"),
        Test::None => "not tested: no per-sample lines and no standard errors".into(),
    }
}

/// The written summary, the comparison table and the two charts.
pub fn comparison_fragment(c: &Comparison) -> String {
    let mut h = String::new();
    h += "<section class=\"summary\"><h2>Summary</h2><ul>";
    let mut open = false;
    for line in summary_lines(c) {
        match line.strip_prefix("  ") {
            Some(detail) => {
                if !open {
                    h += "<ul>";
                    open = true;
                }
                h += &format!("<li>{}</li>", escape(detail));
            }
            None => {
                if open {
                    h += "</ul>";
                    open = false;
                }
                h += &format!("<li>{}</li>", escape(&line));
            }
        }
    }
    if open {
        h += "</ul>";
    }
    h += "</ul></section>";

    h += "<section><h2>Comparison</h2><table class=\"comparison\" id=\"comparison-table\"><thead><tr><th>Task</th><th>Metric</th>";
    for (i, r) in c.runs.iter().enumerate() {
        let base = if i == c.baseline { " (baseline)" } else { "" };
        h += &format!(
            "<th title=\"run {} · {}\">{}{base}</th>",
            r.id,
            escape(&r.model),
            escape(&r.name)
        );
    }
    for (i, r) in c.runs.iter().enumerate() {
        if i != c.baseline {
            h += &format!("<th>Δ {}</th>", escape(&r.name));
        }
    }
    h += "</tr></thead><tbody>";
    for row in &c.rows {
        let group = if row.is_group {
            " <span class=\"tag\">group</span>"
        } else {
            ""
        };
        h += &format!(
            "<tr><td>{}{group}</td><td>{} {}</td>",
            escape(&row.task),
            escape(&metric_label(row)),
            if row.higher_is_better { "↑" } else { "↓" }
        );
        for cell in &row.cells {
            h += &format!(
                "<td class=\"num\">{}</td>",
                cell.as_ref()
                    .map_or("—".into(), |c| escape(&format_cell(c, row.proportion)))
            );
        }
        for (i, d) in row.deltas.iter().enumerate() {
            if i == c.baseline {
                continue;
            }
            match d {
                Some(d) => {
                    let class = match d.verdict {
                        Verdict::Regressed => "regressed",
                        Verdict::Improved => "improved",
                        _ => "unchanged",
                    };
                    h += &format!(
                        "<td class=\"num {class}\" title=\"{}\">{}</td>",
                        escape(&test_title(&d.test, d.p_value)),
                        escape(&format_delta(d, row.proportion))
                    );
                }
                None => h += "<td class=\"num\">—</td>",
            }
        }
        h += "</tr>";
    }
    h += "</tbody></table>";
    h += &format!(
        "<p class=\"legend\">Values: mean ± standard error. Δ: difference from the baseline (percentage points for proportions). ▲/▼: significant improvement/regression at α = {}. M: McNemar's exact test on paired documents; t: paired t-test; z: unpaired z-test. Hover a Δ for the counts.</p>",
        c.alpha
    );
    for note in &c.notes {
        h += &format!("<p class=\"note\">note: {}</p>", escape(note));
    }
    h += "</section>";
    let charts: Vec<String> = [bar_chart(c), delta_chart(c)]
        .into_iter()
        .flatten()
        .collect();
    if !charts.is_empty() {
        h += "<section class=\"charts\"><h2>Charts</h2>";
        for svg in charts {
            h += &format!("<figure>{svg}</figure>");
        }
        h += "</section>";
    }
    h
}

/// A table of each run's provenance and metadata.
pub fn provenance_fragment(runs: &[Run]) -> String {
    let mut h = String::from(
        "<section><h2>Runs</h2><table class=\"provenance\" id=\"provenance-table\"><thead><tr><th></th>",
    );
    for r in runs {
        h += &format!(
            "<th>{} <span class=\"muted\">(run {})</span></th>",
            escape(&r.name()),
            r.id
        );
    }
    h += "</tr></thead><tbody>";
    type Field = fn(&Run) -> Option<String>;
    let fields: [(&str, Field); 12] = [
        ("Evaluation date", |r| r.provenance.date.clone()),
        ("Model", |r| Some(r.provenance.model.clone())),
        ("Model SHA-256", |r| r.provenance.model_sha.clone()),
        ("Tool", |r| Some(r.provenance.tool.clone())),
        ("Backend", |r| r.provenance.backend.clone()),
        ("Command", |r| r.provenance.command.clone()),
        ("Device", |r| r.provenance.device.clone()),
        ("Batch size", |r| r.provenance.batch_size.clone()),
        ("Data type", |r| r.provenance.dtype.clone()),
        ("Limit", |r| r.provenance.limit.clone()),
        ("Tags", |r| (!r.tags.is_empty()).then(|| r.tags.join(", "))),
        ("Origin", |r| Some(r.origin.clone())),
    ];
    for (name, get) in fields {
        let values: Vec<Option<String>> = runs.iter().map(get).collect();
        if values.iter().all(Option::is_none) {
            continue;
        }
        h += &format!("<tr><th>{name}</th>");
        for v in values {
            h += &format!("<td>{}</td>", escape(v.as_deref().unwrap_or("")));
        }
        h += "</tr>";
    }
    let mut keys: Vec<&String> = runs.iter().flat_map(|r| r.meta.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        h += &format!("<tr><th>{}</th>", escape(k));
        for r in runs {
            h += &format!(
                "<td>{}</td>",
                escape(r.meta.get(k).map_or("", String::as_str))
            );
        }
        h += "</tr>";
    }
    h += "</tbody></table></section>";
    h
}

/// What a report shows.
struct ReportInput<'a> {
    comparison: &'a Comparison,
    /// The compared runs, in the comparison's order.
    runs: &'a [Run],
    /// Per task with per-sample lines in every run: its documents.
    samples: Vec<(String, Vec<DocRow>)>,
    /// When the report was made.
    generated: &'a str,
}

/// A report ready to write.
pub struct Report {
    /// The HTML file's text.
    pub html: String,
    /// Tasks whose sample browser holds only the first documents: (task, documents logged).
    pub cut: Vec<(String, usize)>,
}

/// The report of comparison `c`: its runs read from `registry`, the sample browser holding at
/// most `max_docs` documents per task (0: no browser); `generated` is the date shown.
pub fn build_report(
    registry: &Registry,
    c: &Comparison,
    max_docs: usize,
    generated: &str,
) -> Result<Report, RecordsError> {
    let order: Vec<i64> = c.runs.iter().map(|r| r.id).collect();
    let runs = order
        .iter()
        .map(|id| registry.run(*id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut samples = Vec::new();
    let mut cut = Vec::new();
    if max_docs > 0 {
        for task in registry.shared_sample_tasks(&order)? {
            let mut docs = doc_rows(registry, &order, &task, None)?;
            if docs.len() > max_docs {
                cut.push((task.clone(), docs.len()));
                docs.truncate(max_docs);
            }
            samples.push((task, docs));
        }
    }
    let html = report_html(&ReportInput {
        comparison: c,
        runs: &runs,
        samples,
        generated,
    });
    Ok(Report { html, cut })
}

/// The whole report: one HTML file that needs no network.
fn report_html(input: &ReportInput) -> String {
    let c = input.comparison;
    let names: Vec<&str> = c.runs.iter().map(|r| r.name.as_str()).collect();
    let title = format!("assay report: {}", names.join(" vs "));
    let tasks: serde_json::Map<String, serde_json::Value> = input
        .samples
        .iter()
        .map(|(t, docs)| (t.clone(), json!(docs)))
        .collect();
    let data = json!({"runs": names, "tasks": tasks});
    let samples_section = if input.samples.is_empty() {
        "<p class=\"note\">No per-sample lines common to these runs: record runs with `assay run` (it keeps them) or import lm-eval output written with --log_samples.</p>".to_string()
    } else {
        "<div id=\"samples\"></div>".to_string()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title><style>{STYLE}</style></head>\n<body><header><h1>{title}</h1><p class=\"muted\">Generated by assay {version} on {generated}; baseline: {base}.</p></header>\n{comparison}\n{provenance}\n<section><h2>Samples</h2>{samples_section}</section>\n<script type=\"application/json\" id=\"assay-data\">{data}</script>\n<script>{BROWSER_JS}</script>\n<script>(function () {{ var data = JSON.parse(document.getElementById('assay-data').textContent); var el = document.getElementById('samples'); if (el) AssayBrowser.mount(el, {{runs: data.runs, tasks: Object.keys(data.tasks), load: function (t) {{ return Promise.resolve(data.tasks[t]); }}}}); }})();</script>\n</body></html>\n",
        title = escape(&title),
        version = env!("CARGO_PKG_VERSION"),
        generated = escape(input.generated),
        base = escape(&c.baseline_run().name),
        comparison = comparison_fragment(c),
        provenance = provenance_fragment(input.runs),
        data = script_json(&data),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_script_ends() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        for hostile in [
            "</script><script>alert(1)</script>",
            "<!--<script>",
            "</SCRIPT >",
            "a & b > c \u{2028}",
        ] {
            let value = json!({"label": hostile});
            let s = script_json(&value);
            assert!(!s.contains(['<', '>', '&', '\u{2028}']), "{s}");
            // Still the same JSON once parsed.
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&s).unwrap(),
                value
            );
        }
    }
}
