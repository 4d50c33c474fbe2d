//! Benchmark: assay's scoring of a task's documents against the engine floor, the engine's own
//! time for the same tokens. Alternates the modes A B A B; prints a table and writes JSON.
//!
//! Log-likelihood tasks: assay's scoring (the task's shared prefix computed once, each
//! document's shared context once), the same without the task prefix, naive scoring (one decode
//! per request), the floor (assay's decode calls with logits where needed, not read) and pure
//! prefill (logits at the last token only). Generation tasks: `generate_until` one document at a
//! time (assay's default), with `--parallel`-style batching of PARALLEL sequences, and the floor
//! (the same prompt and number of generated tokens, decoded without sampling or detokenising).
//!
//! cargo run --release -p assay-llama --example floor -- TASK [DOCS] [ROUNDS] [JSON_OUT] [PARALLEL] [NUM_FEWSHOT]

use std::time::Instant;

use assay_backend::Backend;
use assay_dirs::default_model_path;
use assay_llama::{EngineSettings, LlamaEngine};
use assay_tasks::{DataDir, DocKind, PreparedTask, Registry};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).cloned().unwrap_or_else(|| "hellaswag".into());
    let docs: usize = args.get(2).map_or(Ok(100), |s| s.parse())?;
    let rounds: usize = args.get(3).map_or(Ok(2), |s| s.parse())?;
    let json_out = args.get(4).cloned();
    let parallel: usize = args.get(5).map_or(Ok(8), |s| s.parse())?;
    let num_fewshot: Option<usize> = args.get(6).map(|s| s.parse()).transpose()?;

    let registry = Registry::load(&[])?;
    let (spec, _) = registry.task(&name).ok_or("unknown task")?;
    let task = PreparedTask::prepare(&name, spec, &DataDir::locate(None)?, num_fewshot)?;
    let prefix = task.shared_prefix()?;
    let instances: Vec<_> = (0..docs.min(task.docs.len()))
        .map(|i| task.instance(i))
        .collect::<Result<_, _>>()?;
    let settings = EngineSettings::default();
    let mut engine = LlamaEngine::load(&default_model_path(), &settings)?;
    let mut batched = LlamaEngine::load(
        &default_model_path(),
        &EngineSettings {
            parallel,
            ..settings.clone()
        },
    )?;

    let generation = task.is_generation();
    let modes: Vec<String> = if generation {
        vec![
            "assay, one document at a time".into(),
            format!("assay, --parallel {parallel}"),
            "floor: same tokens, no sampling".into(),
        ]
    } else {
        vec![
            "assay".into(),
            "assay without the task prefix".into(),
            "naive (one decode per request)".into(),
            "floor: needed logits".into(),
            "floor: prefill only".into(),
        ]
    };
    let requests: Vec<_> = instances
        .iter()
        .filter_map(|i| match &i.kind {
            DocKind::Generate { request } => Some(request.clone()),
            _ => None,
        })
        .collect();
    // Tokens generated per document by assay, replayed by the floor.
    let mut generated = vec![0usize; requests.len()];
    let mut seconds = vec![0.0f64; modes.len()];
    let mut tokens = vec![0u64; modes.len()];
    for round in 0..rounds {
        for (m, mode) in modes.iter().enumerate() {
            let without_prefix = !generation && (m == 1 || m == 2);
            engine.set_shared_prefix(if without_prefix {
                None
            } else {
                prefix.as_deref()
            })?;
            batched.set_shared_prefix(prefix.as_deref())?;
            let before = engine.tokens_processed() + batched.tokens_processed();
            let start = Instant::now();
            match (generation, m) {
                (true, 0) => {
                    for (k, r) in requests.iter().enumerate() {
                        generated[k] = engine.generate_until(r)?.iter().map(|g| g.tokens).sum();
                    }
                }
                (true, 1) => {
                    batched.generate_until_many(&requests, &mut |_, _| {})?;
                }
                (true, _) => {
                    for (r, &n) in requests.iter().zip(&generated) {
                        engine.generation_floor(r, n)?;
                    }
                }
                (false, 0 | 1) => {
                    for inst in &instances {
                        engine.loglikelihood(&inst.requests)?;
                    }
                }
                (false, 2) => {
                    for inst in &instances {
                        for r in &inst.requests {
                            engine.loglikelihood(std::slice::from_ref(r))?;
                        }
                    }
                }
                (false, m) => {
                    for inst in &instances {
                        engine.forward_only(&inst.requests, m == 3)?;
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            seconds[m] += secs;
            tokens[m] += engine.tokens_processed() + batched.tokens_processed() - before;
            eprintln!("round {round}: {mode:<32} {secs:7.2}s");
        }
    }
    report(
        &name,
        instances.len(),
        rounds,
        &settings,
        &modes,
        &seconds,
        &tokens,
        json_out,
    )
}

#[allow(clippy::too_many_arguments)]
fn report(
    name: &str,
    docs: usize,
    rounds: usize,
    settings: &EngineSettings,
    modes: &[String],
    seconds: &[f64],
    tokens: &[u64],
    json_out: Option<String>,
) -> Result<(), Error> {
    let n = docs as f64 * rounds as f64;
    println!(
        "{name}, {docs} docs x {rounds} rounds, {} threads",
        settings.threads
    );
    println!(
        "| {:<32} | {:>8} | {:>10} | {:>12} | {:>10} |",
        "mode", "docs/s", "tokens/s", "tokens/doc", "time vs 1st"
    );
    println!(
        "|{:-<34}|{:->10}|{:->12}|{:->14}|{:->13}|",
        "", "", "", "", ""
    );
    let mut rows = Vec::new();
    for (m, mode) in modes.iter().enumerate() {
        let docs_s = n / seconds[m];
        let toks_s = tokens[m] as f64 / seconds[m];
        let ratio = seconds[m] / seconds[0];
        let per_doc = tokens[m] as f64 / n;
        println!(
            "| {mode:<32} | {docs_s:>8.2} | {toks_s:>10.0} | {per_doc:>12.1} | {ratio:>10.2}x |"
        );
        rows.push(serde_json::json!({
            "mode": mode, "docs_per_s": docs_s, "tokens_per_s": toks_s,
            "tokens_per_doc": per_doc, "seconds": seconds[m], "time_vs_first": ratio,
        }));
    }
    if let Some(path) = json_out {
        let json = serde_json::json!({
            "benchmark": format!("{name}-floor"), "docs": docs, "rounds": rounds,
            "threads": settings.threads, "model": assay_dirs::DEFAULT_MODEL_FILE,
            "results": rows,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")?;
        eprintln!("wrote {path}");
    }
    Ok(())
}
