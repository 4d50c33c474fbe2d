//! From the task names a user typed to prepared tasks: resolved through the registry (groups and
//! tags included), their documents read from the data source (a built-in task's Hub dataset
//! when there is no data folder), the few-shot count and generation overrides applied, each
//! checked before any inference.

use assay_tasks::{DataSource, PreparedTask, Selection, TaskError};

/// The tasks of `selection`, prepared from `data` with `num_fewshot` (each task's own when
/// `None`), the few-shot sampler seed `fewshot_seed` (each task's own when `None`, as lm-eval's
/// `--seed`) and the `--gen-kwargs` overrides `gen_kwargs` (on generation tasks).
pub fn prepare_tasks(
    selection: &Selection,
    data: &dyn DataSource,
    num_fewshot: Option<usize>,
    fewshot_seed: Option<u64>,
    gen_kwargs: &[(String, String)],
) -> Result<Vec<PreparedTask>, TaskError> {
    let mut tasks = Vec::with_capacity(selection.tasks.len());
    let draws = selection.lm_eval_draws_before();
    for (name, draws) in selection.tasks.iter().zip(draws) {
        assay_tasks::hook_draws_before(draws);
        let spec = selection.spec(name).expect("resolved tasks have fields");
        // Without a data folder, a built-in task reads its benchmark from the Hub.
        let mut spec = if data.has_data_folder() {
            spec.clone()
        } else {
            spec.on_hub().map_err(|message| TaskError::Invalid {
                task: name.clone(),
                message,
            })?
        };
        if let Some(seed) = fewshot_seed {
            spec.fewshot_config
                .get_or_insert_with(Default::default)
                .seed = Some(seed);
        }
        tasks.push(PreparedTask::prepare(name, &spec, data, num_fewshot)?);
    }
    for task in &mut tasks {
        task.override_generation(gen_kwargs)?;
    }
    Ok(tasks)
}
