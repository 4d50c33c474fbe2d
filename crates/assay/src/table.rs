//! lm-eval-style Markdown tables of task and group results.

use assay_eval::{MetricResult, Outcome};

fn row(out: &mut Vec<[String; 9]>, name: &str, version: f64, shot: String, m: &MetricResult) {
    out.push([
        name.to_string(),
        format_version(version),
        m.filter.clone(),
        shot,
        m.metric.name().into(),
        if m.metric.higher_is_better() {
            "↑"
        } else {
            "↓"
        }
        .into(),
        format!("{:.4}", m.value),
        "±".into(),
        m.stderr.map_or("N/A".into(), |s| format!("{s:.4}")),
    ]);
}

fn format_version(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn render(header: [&str; 9], rows: &[[String; 9]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = [false, true, false, true, false, false, true, false, true];
    let cell = |text: &str, i: usize| {
        let pad = widths[i] - text.chars().count();
        if right[i] {
            format!("{}{text}", " ".repeat(pad))
        } else {
            format!("{text}{}", " ".repeat(pad))
        }
    };
    let mut s = String::new();
    let line = |cells: Vec<String>| format!("|{}|\n", cells.join("|"));
    s += &line(header.iter().enumerate().map(|(i, h)| cell(h, i)).collect());
    s += &line(
        widths
            .iter()
            .zip(right)
            .map(|(&w, r)| {
                if r {
                    format!("{}:", "-".repeat(w - 1))
                } else {
                    "-".repeat(w)
                }
            })
            .collect(),
    );
    for r in rows {
        s += &line(r.iter().enumerate().map(|(i, c)| cell(c, i)).collect());
    }
    s
}

/// The per-task table.
pub fn tasks_table(outcome: &Outcome) -> String {
    let mut rows = Vec::new();
    let mut notes = String::new();
    for t in &outcome.tasks {
        let flagged = match &t.alarm {
            Some(alarm) => {
                notes.push_str(&format!("(!) {}: {alarm}\n", t.alias));
                format!("{} (!)", t.alias)
            }
            None => t.alias.clone(),
        };
        for (i, m) in t.metrics.iter().enumerate() {
            let name = if i == 0 { flagged.as_str() } else { "" };
            row(&mut rows, name, t.version, t.num_fewshot.to_string(), m);
        }
    }
    let table = render(
        [
            "Tasks", "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr",
        ],
        &rows,
    );
    format!("{table}{notes}")
}

/// The per-group table.
pub fn groups_table(outcome: &Outcome) -> String {
    let mut rows = Vec::new();
    for g in &outcome.groups {
        for (i, m) in g.metrics.iter().enumerate() {
            let name = if i == 0 { g.alias.as_str() } else { "" };
            row(&mut rows, name, g.version, String::new(), m);
        }
    }
    render(
        [
            "Groups", "Version", "Filter", "n-shot", "Metric", "", "Value", "", "Stderr",
        ],
        &rows,
    )
}
