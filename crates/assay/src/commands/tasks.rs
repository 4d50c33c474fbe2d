//! `assay tasks`: list tasks with their document counts, groups and tags.

use assay_tasks::PreparedTask;

use super::TaskSourceArgs;

/// Arguments of `assay tasks`.
#[derive(clap::Args, Debug)]
pub struct TasksArgs {
    #[command(flatten)]
    pub source: TaskSourceArgs,
}

/// Prints the task list; returns the exit code.
pub fn run(args: TasksArgs) -> anyhow::Result<i32> {
    let registry = args.source.registry()?;
    let data_dir = args.source.data_dir().ok();
    let data = args.source.data(None)?;
    println!("{:<52} {:>8}  {:<16} source", "task", "docs", "type");
    for name in registry.task_names() {
        let (spec, source) = registry.task(name).expect("listed tasks exist");
        let docs = match &data_dir {
            // Counting a Hub dataset's documents would download it: `assay run` does that.
            _ if data.reads_hub(spec) => "hub".into(),
            Some(dir) => match PreparedTask::prepare(name, spec, dir, Some(0)) {
                Ok(t) => t.docs.len().to_string(),
                Err(_) => "missing".into(),
            },
            None => "-".into(),
        };
        let kind = spec.output_type.map_or("?", |o| o.name());
        println!("{name:<52} {docs:>8}  {kind:<16} {source}");
    }
    println!();
    for name in registry.group_names() {
        match registry.resolve(&[name.to_string()]) {
            Ok(sel) => println!("group {name:<46} {:>3} tasks", sel.tasks.len()),
            Err(e) => println!("group {name:<46}   ? tasks ({e})"),
        }
    }
    for (tag, tasks) in registry.tags() {
        println!("tag   {tag:<46} {:>3} tasks", tasks.len());
    }
    print_files(
        "tasks need what assay cannot run (images, beam search, unitxt, Python-built data, dataset-script options)",
        &registry.refused(),
    );
    print_files(
        "task files could not be read (running one of their tasks shows why)",
        &registry.unreadable(),
    );
    Ok(0)
}

/// `files` ((file, what about it)) under a heading that counts them; nothing when empty.
fn print_files(heading: &str, files: &[(&str, &str)]) {
    if files.is_empty() {
        return;
    }
    println!("\n{} {heading}:", files.len());
    for (file, message) in files {
        println!("  {file}: {message}");
    }
}
