//! Benchmark: HellaSwag documents scored with shared-prefix scheduling (one decode per
//! document) against naive scheduling (one decode per choice), and the engine floor (the same
//! decode calls with logits only where needed but not read, and with logits at the last token
//! only, i.e. pure prefill). Alternates the modes A B A B; prints a table and writes JSON.
//!
//! cargo run --release -p assay-engine --example scheduling -- [DOCS] [ROUNDS] [JSON_OUT]

use std::time::Instant;

use assay_engine::{default_model_path, Backend, EngineSettings, LlamaEngine};
use assay_tasks::{DataDir, PreparedTask, Registry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let docs: usize = args.get(1).map_or(Ok(200), |s| s.parse())?;
    let rounds: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let json_out = args.get(3).cloned();

    let registry = Registry::load(&[])?;
    let (spec, _) = registry.task("hellaswag").ok_or("no hellaswag task")?;
    let task = PreparedTask::prepare("hellaswag", spec, &DataDir::locate(None)?, Some(0))?;
    let instances: Vec<_> = (0..docs.min(task.docs.len()))
        .map(|i| task.instance(i))
        .collect::<Result<_, _>>()?;
    let settings = EngineSettings::default();
    let mut engine = LlamaEngine::load(&default_model_path(), &settings)?;

    let modes = [
        "shared-prefix",
        "naive",
        "floor: needed logits",
        "floor: prefill only",
    ];
    let mut seconds = vec![0.0f64; modes.len()];
    let mut tokens = vec![0u64; modes.len()];
    for round in 0..rounds {
        for (m, mode) in modes.iter().enumerate() {
            let before = engine.tokens_processed();
            let start = Instant::now();
            for inst in &instances {
                match m {
                    0 => {
                        engine.loglikelihood(&inst.requests)?;
                    }
                    1 => {
                        for r in &inst.requests {
                            engine.loglikelihood(std::slice::from_ref(r))?;
                        }
                    }
                    2 => {
                        engine.forward_only(&inst.requests, true)?;
                    }
                    _ => {
                        engine.forward_only(&inst.requests, false)?;
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            seconds[m] += secs;
            tokens[m] += engine.tokens_processed() - before;
            eprintln!("round {round}: {mode:<22} {secs:7.2}s");
        }
    }
    let n = instances.len() as f64 * rounds as f64;
    println!(
        "HellaSwag, {} docs x {rounds} rounds, {} threads",
        instances.len(),
        settings.threads
    );
    println!(
        "| {:<22} | {:>8} | {:>10} | {:>12} | {:>10} |",
        "mode", "docs/s", "tokens/s", "tokens/doc", "vs shared"
    );
    println!(
        "|{:-<24}|{:->10}|{:->12}|{:->14}|{:->12}|",
        "", "", "", "", ""
    );
    let mut rows = Vec::new();
    for (m, mode) in modes.iter().enumerate() {
        let docs_s = n / seconds[m];
        let toks_s = tokens[m] as f64 / seconds[m];
        let ratio = seconds[m] / seconds[0];
        println!(
            "| {mode:<22} | {docs_s:>8.2} | {toks_s:>10.0} | {:>12.1} | {ratio:>9.2}x |",
            tokens[m] as f64 / n
        );
        rows.push(format!(
            "{{\"mode\": \"{mode}\", \"docs_per_s\": {docs_s:.4}, \"tokens_per_s\": {toks_s:.1}, \"tokens_per_doc\": {:.2}, \"seconds\": {:.3}, \"time_vs_shared\": {ratio:.4}}}",
            tokens[m] as f64 / n,
            seconds[m]
        ));
    }
    if let Some(path) = json_out {
        let json = format!(
            "{{\"benchmark\": \"hellaswag-scheduling\", \"docs\": {}, \"rounds\": {rounds}, \"threads\": {}, \"model\": \"{}\", \"results\": [{}]}}\n",
            instances.len(),
            settings.threads,
            engine.info().model_name,
            rows.join(", ")
        );
        std::fs::write(&path, json)?;
        eprintln!("wrote {path}");
    }
    Ok(())
}
