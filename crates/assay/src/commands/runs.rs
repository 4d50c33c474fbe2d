//! `assay runs`: list, show, label, tag, remove and import recorded runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use assay_records::{
    aligned_table, find_results, format_cell, NewRun, RecordsError, ResultsFiles, Run,
};

use super::{parse_meta, RegistryArgs};

/// Arguments of `assay runs`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay runs list\n  \
    assay runs show BASE\n  \
    assay runs tag 3 --label lora-2k --meta finetune=lora --meta train_examples=2000\n  \
    assay runs import ~/lm-eval-out/ --label llama-base\n  \
    assay runs rm 4\n\n\
    A RUN is an id, a label (its latest run) or `latest`.")]
pub struct RunsArgs {
    #[command(subcommand)]
    command: RunsCommand,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Subcommand, Debug)]
enum RunsCommand {
    /// List recorded runs, oldest first.
    List {
        /// Only runs with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one run: provenance, metadata and results.
    Show {
        /// Run id, label or `latest`.
        run: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set a run's label, tags and metadata.
    Tag {
        /// Run id, label or `latest`.
        run: String,
        /// Tags to add.
        tags: Vec<String>,
        /// A new label.
        #[arg(long, value_name = "NAME")]
        label: Option<String>,
        /// Remove the label.
        #[arg(long, conflicts_with = "label")]
        unlabel: bool,
        /// Tags to remove (repeatable).
        #[arg(long, value_name = "TAG")]
        remove: Vec<String>,
        /// Metadata to set (an empty value removes the key), repeatable.
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_meta)]
        meta: Vec<(String, String)>,
    },
    /// Remove runs (with their samples) from the registry.
    Rm {
        /// Run ids, labels or `latest`.
        #[arg(required = true)]
        runs: Vec<String>,
    },
    /// Record lm-eval (0.3 or 0.4) or assay results: results_*.json files, with the
    /// samples_<task>_<stamp>.jsonl logs beside them, found under each PATH.
    Import {
        /// Results files or folders to search.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Label for the imported runs.
        #[arg(long, value_name = "NAME")]
        label: Option<String>,
        /// Metadata for the imported runs (repeatable).
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_meta)]
        meta: Vec<(String, String)>,
        /// Tags for the imported runs (repeatable).
        #[arg(long, value_name = "TAG")]
        tag: Vec<String>,
    },
}

/// Runs `assay runs`; returns the exit code.
pub fn run(args: RunsArgs) -> anyhow::Result<i32> {
    let mut registry = args.registry.open()?;
    match args.command {
        RunsCommand::List { tag, json } => {
            let runs: Vec<Run> = registry
                .list()?
                .into_iter()
                .filter(|r| tag.as_ref().is_none_or(|t| r.tags.contains(t)))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                println!(
                    "no runs in {} (`assay run` records runs; `assay runs import DIR` adds lm-eval results)",
                    registry.path().display()
                );
            } else {
                print!("{}", list_table(&runs));
            }
        }
        RunsCommand::Show { run, json } => {
            let id = registry.resolve(&run)?;
            let run = registry.run(id)?;
            if json {
                let mut v = serde_json::to_value(&run)?;
                v["results_document"] = registry.results_document(id)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", show_text(&run));
            }
        }
        RunsCommand::Tag {
            run,
            tags,
            label,
            unlabel,
            remove,
            meta,
        } => {
            let id = registry.resolve(&run)?;
            if label.is_some() || unlabel {
                registry.set_label(id, label.as_deref())?;
            }
            registry.tag(id, &tags, &remove)?;
            for (k, v) in &meta {
                registry.set_meta(id, k, v)?;
            }
            let run = registry.run(id)?;
            println!(
                "run {id}: label {}, tags [{}], meta {{{}}}",
                run.label.as_deref().unwrap_or("none"),
                run.tags.join(", "),
                run.meta
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        RunsCommand::Rm { runs } => {
            let ids = runs
                .iter()
                .map(|r| registry.resolve(r))
                .collect::<Result<Vec<_>, _>>()?;
            for id in ids {
                registry.remove(id)?;
                println!("removed run {id}");
            }
        }
        RunsCommand::Import {
            paths,
            label,
            meta,
            tag,
        } => {
            let mut failed = 0;
            let mut imported = 0;
            for path in &paths {
                if !path.exists() {
                    eprintln!("error: {}: no such file or folder", path.display());
                    failed += 1;
                    continue;
                }
                let found = find_results(path)?;
                if found.is_empty() {
                    eprintln!(
                        "error: {}: no results*.json file found (lm-eval writes <output_path>/<model>/results_<date>.json)",
                        path.display()
                    );
                    failed += 1;
                }
                for file in found {
                    let outcome = ResultsFiles::load(&file).and_then(|new| {
                        let samples = new.samples.len();
                        let id = registry.record(&NewRun {
                            label: label.clone(),
                            tags: tag.clone(),
                            meta: meta.iter().cloned().collect::<BTreeMap<_, _>>(),
                            ..new
                        })?;
                        Ok((id, samples))
                    });
                    match outcome {
                        Ok((id, samples)) => {
                            imported += 1;
                            println!(
                                "run {id}: {} ({samples} per-sample log{})",
                                file.display(),
                                if samples == 1 { "" } else { "s" }
                            );
                        }
                        Err(e @ RecordsError::AlreadyRecorded { .. }) => {
                            println!("skipped: {e}");
                        }
                        Err(e) => {
                            eprintln!("error: {e}");
                            failed += 1;
                        }
                    }
                }
            }
            println!(
                "{imported} run{} imported into {}",
                if imported == 1 { "" } else { "s" },
                registry.path().display()
            );
            if failed > 0 {
                bail!("{failed} file(s) could not be imported (see above); the others were");
            }
        }
    }
    Ok(0)
}

/// The `runs list` table.
fn list_table(runs: &[Run]) -> String {
    let mut rows = vec![[
        "ID", "Label", "Date", "Model", "Tool", "Tasks", "Tags", "Meta",
    ]
    .map(String::from)
    .to_vec()];
    for r in runs {
        let tasks: Vec<&str> = r
            .tasks
            .iter()
            .filter(|t| !t.is_group)
            .map(|t| t.name.as_str())
            .collect();
        let shown = if tasks.len() > 4 {
            format!("{} +{} more", tasks[..4].join(","), tasks.len() - 4)
        } else {
            tasks.join(",")
        };
        let model = std::path::Path::new(&r.provenance.model)
            .file_name()
            .map_or(r.provenance.model.clone(), |n| {
                n.to_string_lossy().into_owned()
            });
        rows.push(vec![
            r.id.to_string(),
            r.label.clone().unwrap_or_default(),
            r.provenance
                .date
                .clone()
                .unwrap_or_else(|| r.recorded_at.clone()),
            model,
            r.provenance.tool.clone(),
            shown,
            r.tags.join(","),
            r.meta
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    aligned_table(&rows)
}

/// The `runs show` text: the customer's record of one evaluation.
fn show_text(run: &Run) -> String {
    let p = &run.provenance;
    let mut out = format!(
        "Run {}{}\n",
        run.id,
        run.label
            .as_ref()
            .map_or(String::new(), |l| format!(" ({l})"))
    );
    let mut field = |name: &str, value: Option<&str>| {
        if let Some(v) = value {
            out += &format!("- {name}: {v}\n");
        }
    };
    field("Evaluation date", p.date.as_deref());
    field("Model", Some(&p.model));
    field("Model SHA-256", p.model_sha.as_deref());
    field("Tool", Some(&p.tool));
    field("Backend", p.backend.as_deref());
    field("Command", p.command.as_deref());
    field("Device", p.device.as_deref());
    field("Batch size", p.batch_size.as_deref());
    field("Data type", p.dtype.as_deref());
    field("Limit", p.limit.as_deref());
    field("Recorded", Some(&run.recorded_at));
    field("Origin", Some(&run.origin));
    if !run.tags.is_empty() {
        field("Tags", Some(&run.tags.join(", ")));
    }
    for (k, v) in &run.meta {
        field(k, Some(v));
    }
    let mut rows = vec![["Task", "Metric", "Result", "n", "Shots", "Samples"]
        .map(String::from)
        .to_vec()];
    for t in &run.tasks {
        for m in &t.metrics {
            let proportion = t.higher_is_better(&m.metric) && (0.0..=1.0).contains(&m.value);
            rows.push(vec![
                if t.is_group {
                    format!("{} (group)", t.name)
                } else {
                    t.name.clone()
                },
                if m.filter == "none" {
                    m.metric.clone()
                } else {
                    format!("{} ({})", m.metric, m.filter)
                },
                format_cell(
                    &assay_records::Cell {
                        value: m.value,
                        stderr: m.stderr,
                        n: t.n,
                        correct: None,
                        seconds_per_doc: None,
                    },
                    proportion,
                ),
                t.n.map_or(String::new(), |n| n.to_string()),
                t.num_fewshot.map_or(String::new(), |n| n.to_string()),
                if run.sample_tasks.contains(&t.name) {
                    "yes".into()
                } else {
                    String::new()
                },
            ]);
        }
    }
    out += "\n";
    out += &aligned_table(&rows);
    out
}
