//! Charts as inline SVG, drawn with plotters: each task's headline value per run with 95%
//! confidence intervals, and each run's change from the baseline with the interval of the
//! (paired) difference, coloured by verdict. Proportions only (in percent); other metrics stay
//! in the table.

use assay_records::{Comparison, Row, Verdict};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Run colours, in run order.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x4c, 0x72, 0xb0),
    RGBColor(0xdd, 0x84, 0x52),
    RGBColor(0x55, 0xa8, 0x68),
    RGBColor(0x81, 0x72, 0xb3),
    RGBColor(0x93, 0x78, 0x60),
    RGBColor(0xda, 0x8b, 0xc3),
    RGBColor(0x8c, 0x8c, 0x8c),
    RGBColor(0xcc, 0xb9, 0x74),
];
const REGRESSED: RGBColor = RGBColor(0xc4, 0x4e, 0x52);
const IMPROVED: RGBColor = RGBColor(0x2e, 0x8b, 0x57);
const UNCHANGED: RGBColor = RGBColor(0xa0, 0xa0, 0xa0);
/// z of a two-sided 95% interval.
const Z95: f64 = 1.959_964;
/// At most this many tasks are drawn.
const MAX_TASKS: usize = 60;

/// Each task's headline row: its first metric, when that is a proportion.
fn headline_rows(c: &Comparison) -> Vec<&Row> {
    let mut seen = std::collections::HashSet::new();
    c.rows
        .iter()
        .filter(|r| seen.insert(r.task.clone()))
        .filter(|r| r.proportion)
        .take(MAX_TASKS)
        .collect()
}

fn label_width(labels: &[String]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4) as u32;
    (longest * 8 + 16).clamp(60, 360)
}

/// One horizontal bar with its error whisker, in chart coordinates.
struct Bar {
    y: f64,
    height: f64,
    value: f64,
    half_ci: Option<f64>,
    color: RGBColor,
}

/// Draws labelled horizontal bars; returns the SVG text.
fn horizontal_bars(
    caption: &str,
    axis: &str,
    labels: &[String],
    bars: &[Bar],
    x_range: (f64, f64),
    legend: &[(String, RGBColor)],
) -> Result<String, Box<dyn std::error::Error>> {
    let band = 22 + 10 * legend.len().max(1) as u32;
    let left = label_width(labels);
    let top = 56;
    let height = 60 + top + band * labels.len() as u32;
    let width = 780;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            caption.to_string(),
            (10, 14),
            TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_top(top)
            .x_label_area_size(44)
            .y_label_area_size(left)
            .build_cartesian_2d(x_range.0..x_range.1, 0f64..labels.len() as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(axis)
            .x_label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if x_range.0 < 0.0 {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (0.0, labels.len() as f64)],
                BLACK.stroke_width(1),
            )))?;
        }
        for bar in bars {
            let (lo, hi) = if bar.value >= 0.0 {
                (0.0_f64.max(x_range.0), bar.value)
            } else {
                (bar.value, 0.0)
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(lo, bar.y), (hi, bar.y + bar.height)],
                bar.color.filled(),
            )))?;
            if let Some(h) = bar.half_ci {
                let yc = bar.y + bar.height / 2.0;
                let cap = bar.height * 0.3;
                let (a, b) = (bar.value - h, bar.value + h);
                chart.draw_series([
                    PathElement::new(vec![(a, yc), (b, yc)], BLACK.stroke_width(1)),
                    PathElement::new(vec![(a, yc - cap), (a, yc + cap)], BLACK.stroke_width(1)),
                    PathElement::new(vec![(b, yc - cap), (b, yc + cap)], BLACK.stroke_width(1)),
                ])?;
            }
        }
        let style = TextStyle::from(("sans-serif", 13).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (i, label) in labels.iter().enumerate() {
            let y = labels.len() as f64 - i as f64 - 0.5;
            let (px, py) = chart.backend_coord(&(x_range.0, y));
            root.draw(&Text::new(label.clone(), (px - 6, py), &style))?;
        }
        let mut x = 10;
        let legend_style =
            TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (name, color) in legend {
            let y = 38;
            root.draw(&Rectangle::new(
                [(x, y - 5), (x + 10, y + 5)],
                color.filled(),
            ))?;
            root.draw(&Text::new(name.clone(), (x + 14, y), &legend_style))?;
            x += 28 + 8 * name.chars().count() as i32;
        }
        root.present()?;
    }
    Ok(svg)
}

/// The headline value of each task per run, in percent, with 95% intervals (±1.96 standard
/// errors); `None` when no task has a proportion metric.
pub fn bar_chart(c: &Comparison) -> Option<String> {
    let rows = headline_rows(c);
    if rows.is_empty() {
        return None;
    }
    let runs = c.runs.len();
    let height = 0.8 / runs as f64;
    let mut bars = Vec::new();
    let mut top: f64 = 0.0;
    for (i, row) in rows.iter().enumerate() {
        let base_y = rows.len() as f64 - i as f64 - 0.9;
        for (j, cell) in row.cells.iter().enumerate() {
            let Some(cell) = cell else { continue };
            let value = cell.value * 100.0;
            let half_ci = cell.stderr.map(|s| s * 100.0 * Z95);
            top = top.max(value + half_ci.unwrap_or(0.0));
            bars.push(Bar {
                // The first run on top.
                y: base_y + (runs - 1 - j) as f64 * height,
                height: height * 0.9,
                value,
                half_ci,
                color: PALETTE[j % PALETTE.len()],
            });
        }
    }
    let labels: Vec<String> = rows.iter().map(|r| headline_label(r)).collect();
    let legend: Vec<(String, RGBColor)> = c
        .runs
        .iter()
        .enumerate()
        .map(|(j, r)| (r.name.clone(), PALETTE[j % PALETTE.len()]))
        .collect();
    horizontal_bars(
        "Headline metric per task (bars: 95% confidence intervals)",
        "percent",
        &labels,
        &bars,
        (0.0, (top * 1.08).clamp(1.0, 100.0)),
        &legend,
    )
    .ok()
}

fn headline_label(row: &Row) -> String {
    if row.filter == "none" {
        format!("{} {}", row.task, row.metric)
    } else {
        format!("{} {} ({})", row.task, row.metric, row.filter)
    }
}

/// Each run's change from the baseline per task, in points, with the 95% interval of the
/// difference; red: significant regression, green: significant improvement.
pub fn delta_chart(c: &Comparison) -> Option<String> {
    let rows = headline_rows(c);
    let others: Vec<usize> = (0..c.runs.len()).filter(|i| *i != c.baseline).collect();
    let mut labels = Vec::new();
    let mut entries = Vec::new();
    for row in &rows {
        for &j in &others {
            if let Some(d) = &row.deltas[j] {
                labels.push(if others.len() > 1 {
                    format!("{} · {}", headline_label(row), c.runs[j].name)
                } else {
                    headline_label(row)
                });
                entries.push(d);
            }
        }
    }
    if entries.is_empty() {
        return None;
    }
    let mut reach: f64 = 1.0;
    let bars: Vec<Bar> = entries
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let value = d.diff * 100.0;
            let half_ci = d.stderr.map(|s| s * 100.0 * Z95);
            reach = reach.max(value.abs() + half_ci.unwrap_or(0.0));
            Bar {
                y: entries.len() as f64 - i as f64 - 0.85,
                height: 0.7,
                value,
                half_ci,
                color: match d.verdict {
                    Verdict::Regressed => REGRESSED,
                    Verdict::Improved => IMPROVED,
                    Verdict::Unchanged | Verdict::Untested => UNCHANGED,
                },
            }
        })
        .collect();
    let legend = vec![
        ("significant regression".to_string(), REGRESSED),
        ("significant improvement".to_string(), IMPROVED),
        ("not significant".to_string(), UNCHANGED),
    ];
    let reach = reach * 1.1;
    horizontal_bars(
        &format!(
            "Change from {} (points; bars: 95% interval of the difference)",
            c.baseline_run().name
        ),
        "percentage points",
        &labels,
        &bars,
        (-reach, reach),
        &legend,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_records::{Cell, Delta, RunHeader, Test};

    fn cell(value: f64) -> Option<Cell> {
        Some(Cell {
            value,
            stderr: Some(0.05),
            n: Some(100),
            correct: None,
            seconds_per_doc: None,
        })
    }

    fn row(task: &str, metric: &str, values: [f64; 2], verdict: Verdict) -> Row {
        Row {
            task: task.into(),
            metric: metric.into(),
            filter: "none".into(),
            is_group: false,
            higher_is_better: metric != "word_perplexity",
            proportion: metric != "word_perplexity",
            cells: vec![cell(values[0]), cell(values[1])],
            deltas: vec![
                None,
                Some(Delta {
                    diff: values[1] - values[0],
                    stderr: Some(0.03),
                    test: Test::Mcnemar {
                        n: 100,
                        b: 20,
                        c: 5,
                    },
                    p_value: Some(0.002),
                    verdict,
                }),
            ],
        }
    }

    fn comparison() -> Comparison {
        let run = |id: i64, name: &str| RunHeader {
            id,
            name: name.into(),
            model: "m.gguf".into(),
            date: None,
            tool: "assay".into(),
        };
        Comparison {
            runs: vec![run(1, "BASE"), run(2, "FT")],
            baseline: 0,
            alpha: 0.05,
            rows: vec![
                row("gsm8k", "exact_match", [0.335, 0.037], Verdict::Regressed),
                row(
                    "wikitext",
                    "word_perplexity",
                    [20.0, 21.0],
                    Verdict::Unchanged,
                ),
            ],
            notes: vec![],
        }
    }

    #[test]
    fn charts_draw_proportions_with_intervals_and_verdict_colours() {
        let c = comparison();
        let bars = bar_chart(&c).unwrap();
        assert!(bars.starts_with("<svg"));
        assert!(bars.contains("gsm8k exact_match") && !bars.contains("wikitext"));
        assert!(bars.contains("BASE") && bars.contains("FT"));
        let deltas = delta_chart(&c).unwrap();
        let red = format!("#{:02X}{:02X}{:02X}", REGRESSED.0, REGRESSED.1, REGRESSED.2);
        let reds = |svg: &str| svg.matches(&format!("fill=\"{red}\"")).count();
        // The legend's swatch and the regression's bar.
        assert_eq!(reds(&deltas), 2, "a regression is drawn red");
        let mut unchanged = c.clone();
        unchanged.rows[0].deltas[1].as_mut().unwrap().verdict = Verdict::Unchanged;
        assert_eq!(reds(&delta_chart(&unchanged).unwrap()), 1);
        assert!(deltas.contains("Change from BASE"));
    }

    #[test]
    fn no_proportions_no_charts() {
        let mut c = comparison();
        c.rows.remove(0);
        assert!(bar_chart(&c).is_none() && delta_chart(&c).is_none());
    }
}
