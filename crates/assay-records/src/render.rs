//! Comparisons as text: an aligned Markdown table, CSV, a written summary of the largest
//! changes, and the `summary.json` of the customer's records (accuracy, correct, total and
//! average time per benchmark and run).

use serde_json::{json, Map, Value};

use crate::compare::{Cell, Comparison, Delta, Row, Test, Verdict};

/// `47.00% ± 5.02%` for proportions, `12.3456 ± 0.1234` otherwise.
pub fn format_cell(cell: &Cell, proportion: bool) -> String {
    let (value, se) = if proportion {
        (
            format!("{:.2}%", cell.value * 100.0),
            cell.stderr.map(|s| format!("{:.2}%", s * 100.0)),
        )
    } else {
        (
            format!("{:.4}", cell.value),
            cell.stderr.map(|s| format!("{s:.4}")),
        )
    };
    match se {
        Some(se) => format!("{value} ± {se}"),
        None => value,
    }
}

/// The delta in points (proportions) or units.
fn format_diff(diff: f64, proportion: bool) -> String {
    if proportion {
        format!("{:+.2}", diff * 100.0)
    } else {
        format!("{diff:+.4}")
    }
}

/// `p=0.003` or `p<0.001`.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".into()
    } else {
        format!("p={p:.3}")
    }
}

/// The mark of a verdict: ▲ significant improvement, ▼ significant regression.
pub fn verdict_mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Improved => "▲",
        Verdict::Regressed => "▼",
        Verdict::Unchanged | Verdict::Untested => "",
    }
}

/// The short name of a test: M (McNemar), t (paired t), z (unpaired).
fn test_letter(t: &Test) -> &'static str {
    match t {
        Test::Mcnemar { .. } => "M",
        Test::PairedT { .. } => "t",
        Test::Unpaired => "z",
        Test::None => "",
    }
}

/// `-13.00 ▼ M p=0.003`.
pub fn format_delta(d: &Delta, proportion: bool) -> String {
    let mut s = format_diff(d.diff, proportion);
    let mark = verdict_mark(d.verdict);
    if !mark.is_empty() {
        s.push(' ');
        s.push_str(mark);
    }
    if let Some(p) = d.p_value {
        s.push_str(&format!(" {} {}", test_letter(&d.test), format_p(p)));
    }
    s
}

/// `acc` or `exact_match (flexible-extract)`.
pub fn metric_label(row: &Row) -> String {
    if row.filter == "none" {
        row.metric.clone()
    } else {
        format!("{} ({})", row.metric, row.filter)
    }
}

/// Rows as an aligned Markdown table; the first row is the header.
pub fn aligned_table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String]| {
        let cells: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let c = r.get(i).map_or("", String::as_str);
                format!(" {c}{} ", " ".repeat(w - c.chars().count()))
            })
            .collect();
        format!("|{}|\n", cells.join("|"))
    };
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        out += &line(r);
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
            out += &format!("|{}|\n", rule.join("|"));
        }
    }
    out
}

/// The comparison as an aligned Markdown table, with a legend line.
pub fn text_table(c: &Comparison) -> String {
    let mut header = vec!["Task".to_string(), "Metric".to_string()];
    for (i, r) in c.runs.iter().enumerate() {
        header.push(if i == c.baseline {
            format!("{} (baseline)", r.name)
        } else {
            r.name.clone()
        });
    }
    for (i, r) in c.runs.iter().enumerate() {
        if i != c.baseline {
            header.push(format!("Δ {}", r.name));
        }
    }
    let mut rows = vec![header];
    for row in &c.rows {
        let mut cells = vec![
            if row.is_group {
                format!("{} (group)", row.task)
            } else {
                row.task.clone()
            },
            format!(
                "{} {}",
                metric_label(row),
                if row.higher_is_better { "↑" } else { "↓" }
            ),
        ];
        for cell in &row.cells {
            cells.push(
                cell.as_ref()
                    .map_or("—".into(), |c| format_cell(c, row.proportion)),
            );
        }
        for (i, d) in row.deltas.iter().enumerate() {
            if i != c.baseline {
                cells.push(
                    d.as_ref()
                        .map_or("—".into(), |d| format_delta(d, row.proportion)),
                );
            }
        }
        rows.push(cells);
    }
    let mut out = aligned_table(&rows);
    out += &format!(
        "\nΔ: difference from the baseline (percentage points for proportions). ▲/▼: significant improvement/regression at α = {}. Tests: M = McNemar's exact test on paired documents, t = paired t-test, z = unpaired z-test on the standard errors.\n",
        c.alpha
    );
    for note in &c.notes {
        out += &format!("note: {note}\n");
    }
    out
}

/// The comparison in long CSV form: one line per task, metric and run.
pub fn csv_table(c: &Comparison) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "task",
        "metric",
        "filter",
        "run_id",
        "run",
        "baseline",
        "value",
        "stderr",
        "n",
        "correct",
        "seconds_per_doc",
        "delta",
        "test",
        "paired_n",
        "p_value",
        "verdict",
    ];
    w.write_record(header).expect("writing to memory");
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for row in &c.rows {
        for (i, (cell, delta)) in row.cells.iter().zip(&row.deltas).enumerate() {
            let Some(cell) = cell else { continue };
            let run = &c.runs[i];
            let (test, paired_n) = match delta.as_ref().map(|d| &d.test) {
                Some(Test::Mcnemar { n, .. }) => ("mcnemar", n.to_string()),
                Some(Test::PairedT { n, .. }) => ("paired_t", n.to_string()),
                Some(Test::Unpaired) => ("unpaired_z", String::new()),
                _ => ("", String::new()),
            };
            w.write_record([
                row.task.clone(),
                row.metric.clone(),
                row.filter.clone(),
                run.id.to_string(),
                run.name.clone(),
                (i == c.baseline).to_string(),
                cell.value.to_string(),
                opt(cell.stderr),
                cell.n.map_or(String::new(), |n| n.to_string()),
                cell.correct.map_or(String::new(), |n| n.to_string()),
                opt(cell.seconds_per_doc),
                opt(delta.as_ref().map(|d| d.diff)),
                test.to_string(),
                paired_n,
                opt(delta.as_ref().and_then(|d| d.p_value)),
                delta
                    .as_ref()
                    .map_or(String::new(), |d| format!("{:?}", d.verdict).to_lowercase()),
            ])
            .expect("writing to memory");
        }
    }
    String::from_utf8(w.into_inner().expect("flushing to memory")).expect("CSV of UTF-8 text")
}

/// How big a change is, to rank them: points for proportions, percent of the baseline else.
fn magnitude(row: &Row, d: &Delta, base: Option<&Cell>) -> f64 {
    if row.proportion {
        d.diff.abs() * 100.0
    } else {
        let b = base.map_or(1.0, |b| b.value.abs().max(1e-12));
        d.diff.abs() / b * 100.0
    }
}

/// A written summary: per run, how many tasks changed significantly, and the largest changes.
pub fn summary_lines(c: &Comparison) -> Vec<String> {
    let base = c.baseline_run();
    let mut out = Vec::new();
    for (i, run) in c.runs.iter().enumerate() {
        if i == c.baseline {
            continue;
        }
        // The task's first metric (its headline) counts; groups are left to their tasks.
        let mut seen = std::collections::HashSet::new();
        let headline: Vec<(&Row, &Delta)> = c
            .rows
            .iter()
            .filter(|r| !r.is_group && seen.insert(r.task.clone()))
            .filter_map(|r| r.deltas[i].as_ref().map(|d| (r, d)))
            .collect();
        let count = |v: Verdict| headline.iter().filter(|(_, d)| d.verdict == v).count();
        let (down, up) = (count(Verdict::Regressed), count(Verdict::Improved));
        out.push(format!(
            "{} vs {}: {} task{} significantly worse, {} significantly better, {} without a significant change (α = {}).",
            run.name,
            base.name,
            down,
            if down == 1 { "" } else { "s" },
            up,
            headline.len() - down - up,
            c.alpha
        ));
        let mut ranked: Vec<(&Row, &Delta)> = c
            .rows
            .iter()
            .filter_map(|r| r.deltas[i].as_ref().map(|d| (r, d)))
            .collect();
        ranked.sort_by(|(ra, da), (rb, db)| {
            let sig = |d: &Delta| matches!(d.verdict, Verdict::Improved | Verdict::Regressed);
            sig(db).cmp(&sig(da)).then(
                magnitude(rb, db, rb.cells[c.baseline].as_ref()).total_cmp(&magnitude(
                    ra,
                    da,
                    ra.cells[c.baseline].as_ref(),
                )),
            )
        });
        for (row, d) in ranked.into_iter().take(4) {
            let (Some(b), Some(r)) = (row.cells[c.baseline].as_ref(), row.cells[i].as_ref()) else {
                continue;
            };
            let value = |x: f64| {
                if row.proportion {
                    format!("{:.2}%", x * 100.0)
                } else {
                    format!("{x:.4}")
                }
            };
            let change = if row.proportion {
                format!("{:+.2} points", d.diff * 100.0)
            } else {
                format!("{:+.4}", d.diff)
            };
            let test = match (&d.test, d.p_value) {
                (Test::Mcnemar { n, b, c }, Some(p)) => format!(
                    "McNemar {} over {n} paired docs ({b} right only in {}, {c} only in {})",
                    format_p(p),
                    base.name,
                    run.name
                ),
                (Test::PairedT { n, .. }, Some(p)) => {
                    format!("paired t-test {} over {n} docs", format_p(p))
                }
                (Test::Unpaired, Some(p)) => format!("unpaired z-test {}", format_p(p)),
                _ => "not tested".into(),
            };
            let verdict = match d.verdict {
                Verdict::Regressed => "significant regression",
                Verdict::Improved => "significant improvement",
                Verdict::Unchanged => "not significant",
                Verdict::Untested => "untested",
            };
            out.push(format!(
                "  {} {}: {} -> {} ({change}; {test}): {verdict}",
                row.task,
                metric_label(row),
                value(b.value),
                value(r.value),
            ));
        }
    }
    out
}

/// The customer's `summary.json`: per benchmark (its headline metric) and run, accuracy,
/// correct, total and average seconds per document, with each run's delta and test against
/// the baseline.
pub fn summary_json(c: &Comparison) -> Value {
    let mut benchmarks = Map::new();
    for row in &c.rows {
        if benchmarks.contains_key(&row.task) {
            continue;
        }
        let mut entry = Map::new();
        entry.insert("metric".into(), json!(row.metric));
        entry.insert("filter".into(), json!(row.filter));
        entry.insert("higher_is_better".into(), json!(row.higher_is_better));
        for (i, (cell, delta)) in row.cells.iter().zip(&row.deltas).enumerate() {
            let Some(cell) = cell else { continue };
            let mut v = json!({
                "run_id": c.runs[i].id,
                "accuracy": cell.value,
                "stderr": cell.stderr,
                "correct": cell.correct.or_else(|| {
                    (row.proportion).then(|| cell.n.map(|n| (cell.value * n as f64).round() as u64)).flatten()
                }),
                "total": cell.n,
                "avg_time": cell.seconds_per_doc,
            });
            if let Some(d) = delta {
                v["delta"] = json!(d.diff);
                v["p_value"] = json!(d.p_value);
                v["test"] = serde_json::to_value(&d.test)
                    .ok()
                    .and_then(|t| t.get("test").cloned())
                    .unwrap_or(Value::Null);
                v["verdict"] = serde_json::to_value(d.verdict).unwrap_or(Value::Null);
            }
            entry.insert(c.runs[i].name.clone(), v);
        }
        benchmarks.insert(row.task.clone(), Value::Object(entry));
    }
    json!({
        "baseline": c.baseline_run().name,
        "runs": c.runs,
        "alpha": c.alpha,
        "benchmarks": benchmarks,
        "summary": summary_lines(c),
        "notes": c.notes,
    })
}
