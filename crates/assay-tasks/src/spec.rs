//! The task file format, modelled on lm-eval's TaskConfig (DESIGN.md section 4).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_yaml::Value as Yaml;

/// What kind of requests a task sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// One log-likelihood request per choice; the best-scoring choice is the answer.
    MultipleChoice,
    /// One log-likelihood request: the target given the context.
    Loglikelihood,
    /// Every token of the target text scored (perplexity).
    LoglikelihoodRolling,
    /// Free generation until a stop string.
    GenerateUntil,
}

impl OutputType {
    /// The name used in task files.
    pub fn name(self) -> &'static str {
        match self {
            OutputType::MultipleChoice => "multiple_choice",
            OutputType::Loglikelihood => "loglikelihood",
            OutputType::LoglikelihoodRolling => "loglikelihood_rolling",
            OutputType::GenerateUntil => "generate_until",
        }
    }
}

/// A task file string that may be one string or a list of them (`tag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Where a task's data lives, relative to the data directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetKwargs {
    /// One file for every split, or a file per split name. `{dataset_name}` is replaced by the
    /// task's `dataset_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_files: Option<DataFiles>,
    /// Column names for CSV/TSV files that have no header row (as `datasets`' CSV reader
    /// takes them: the first row is data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_names: Option<Vec<String>>,
    /// `header: null`, as lm-eval files write beside `column_names`: no header row. Any other
    /// value is refused (see [`DatasetKwargs::csv_columns`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<Yaml>,
    /// Extra fields read from line-aligned files, e.g. `{label: piqa/valid-labels.lst}`
    /// (an assay extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_aligned_fields: Option<BTreeMap<String, String>>,
    /// `.py` data files: the variable holding the records (an assay extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_variable: Option<String>,
    /// `.py` data files: a key to descend into first; `{dataset_name}` is replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_key: Option<String>,
    /// `.py` data files: extra fields from list variables aligned by position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_aligned_fields: Option<BTreeMap<String, String>>,
    /// A Hub dataset's branch, tag or commit (default `main`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Accepted as lm-eval's task files set it: assay runs no dataset script; a dataset that
    /// has only a script is read from the Hub's parquet export, as `datasets` 4 does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_remote_code: Option<bool>,
    /// `load_dataset`'s `verification_mode` and `streaming`: how `datasets` fetches and checks
    /// the files, not which rows they hold; read, and not needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_mode: Option<Yaml>,
    /// See `verification_mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streaming: Option<Yaml>,
    /// Every other key: an option for the dataset's loading script or builder (`qa_split`,
    /// `features`, ...), which assay cannot pass on; the task is refused by name.
    #[serde(flatten)]
    pub builder_options: BTreeMap<String, Yaml>,
}

impl DatasetKwargs {
    /// The column names of header-less CSV/TSV files; an error for a `header` other than
    /// `null` (a header row to replace), which assay does not read.
    pub fn csv_columns(&self) -> Result<Option<Vec<String>>, String> {
        match &self.header {
            None | Some(Yaml::Null) => Ok(self.column_names.clone()),
            Some(other) => Err(format!(
                "dataset_kwargs.header: only `null` (no header row, names from column_names) is supported, not {}",
                serde_yaml::to_string(other).unwrap_or_default().trim()
            )),
        }
    }
}

/// `data_files`: one path, or split name to path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataFiles {
    /// The same file for every split.
    One(String),
    /// A file per split.
    PerSplit(BTreeMap<String, String>),
}

impl DataFiles {
    /// Split name to patterns, as the `datasets` library reads `data_files` of a Hub
    /// dataset: one pattern is the `train` split.
    pub fn patterns(&self) -> Vec<(String, Vec<String>)> {
        match self {
            DataFiles::One(p) => vec![("train".into(), vec![p.clone()])],
            DataFiles::PerSplit(map) => map
                .iter()
                .map(|(split, p)| (split.clone(), vec![p.clone()]))
                .collect(),
        }
    }
}

/// How few-shot examples are chosen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FewshotConfig {
    /// `first_n`, or `default` / `random` (lm-eval's draws: one `random.Random(seed)` per task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    /// Seed for the random sampler (default 1234).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The split examples come from (before the task's `fewshot_split`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// The examples themselves (a list of documents, or a `!function` returning one), used
    /// when no few-shot split is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<Yaml>,
    /// Only these documents of the few-shot pool, in this order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fewshot_indices: Option<Vec<usize>>,
    /// A `process_docs` hook for the few-shot split instead of the task's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_docs: Option<Yaml>,
    /// The examples' prompt (default: the task's `doc_to_text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_text: Option<Yaml>,
    /// The examples' answer (default: the task's `doc_to_target`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_target: Option<Yaml>,
    /// The examples' choices (default: the task's `doc_to_choice`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_choice: Option<Yaml>,
    /// Between an example's prompt and answer (default: the task's `target_delimiter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_delimiter: Option<String>,
    /// After each example (default: the task's `fewshot_delimiter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fewshot_delimiter: Option<String>,
    /// Before each example's answer (default: the task's `gen_prefix`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gen_prefix: Option<String>,
}

/// One metric of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// Metric name (`acc`, `acc_norm`, `mc2`, ...), a name the task's `process_results` hook
    /// fills, or a `!function module.name` scoring each generated answer.
    pub metric: Yaml,
    /// Aggregation name (`mean`, `perplexity`, `weighted_perplexity`, `bits_per_byte`) or a
    /// `!function module.name` called with every document's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<Yaml>,
    /// Whether higher is better; the metric's own default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub higher_is_better: Option<bool>,
    /// `exact_match`: lowercase both sides.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "python_truth"
    )]
    pub ignore_case: Option<bool>,
    /// `exact_match`: drop ASCII punctuation from both sides.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "python_truth"
    )]
    pub ignore_punctuation: Option<bool>,
    /// `exact_match`: patterns removed from both sides first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexes_to_ignore: Option<Vec<String>>,
    /// An option of the metric function (`average: weighted`): passed to a `!function`
    /// metric; on multiple-choice tasks it changes nothing, as in lm-eval, which calls no
    /// metric function there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<Yaml>,
    /// lm-eval: the metric comes from Hugging Face `evaluate` (as `average`: only where no
    /// metric function is called).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf_evaluate: Option<bool>,
    /// As `average` (a group option some task files repeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_by_size: Option<bool>,
    /// An option of a `!function` metric (pass@k's `k: [1, 10]`): passed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<Yaml>,
}

impl MetricSpec {
    /// The metric's name: as written, or a `!function`'s function name (lm-eval's `__name__`).
    pub fn name(&self) -> String {
        match &self.metric {
            Yaml::Tagged(t) => t
                .value
                .as_str()
                .map(|p| crate::metrics::function_name(p).to_string())
                .unwrap_or_default(),
            other => other.as_str().unwrap_or_default().to_string(),
        }
    }
}

/// Generation settings of a `generate_until` task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationKwargs {
    /// Stop strings (default: the few-shot delimiter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<OneOrMany>,
    /// Most tokens generated (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gen_toks: Option<usize>,
    /// Sample instead of greedy decoding (needs temperature > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub do_sample: Option<bool>,
    /// Sampling temperature (0 = greedy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass (1 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling (0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Base seed of the sampler (default 1234); each document mixes in its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Hugging Face's name for the most tokens generated, which lm-eval's `hf` model passes to
    /// `generate`, where it wins over `max_gen_toks`: so here too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
    /// Beams of a beam search: 1 (greedy, as assay decodes) is accepted; more is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_beams: Option<u32>,
}

/// A task file. Every field is optional so that a file can be checked on its own before its
/// `include` is merged in; [`TaskSpec::validate`]-style checks happen when the task is prepared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Other task files whose fields this one extends (relative to this file): one, or a list
    /// merged in order (a later file's keys replace an earlier one's; this file's win).
    #[serde(skip_serializing)]
    pub include: Option<OneOrMany>,
    /// lm-eval's flag for tasks that run generated code: accepted; assay runs such code in its
    /// sandbox whatever the flag says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsafe_code: Option<bool>,
    /// The task's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Display name in tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_alias: Option<String>,
    /// Tags: names that select several tasks at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<OneOrMany>,
    /// A data file (relative to the data directory), or a loader name such as `json` when
    /// `dataset_kwargs.data_files` names the files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_path: Option<String>,
    /// Sub-dataset name; replaces `{dataset_name}` in data file paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    /// Data files and reading options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_kwargs: Option<DatasetKwargs>,
    /// Split for few-shot examples when there is no fewshot_split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_split: Option<String>,
    /// Split evaluated when there is no test split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_split: Option<String>,
    /// Split evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_split: Option<String>,
    /// Split few-shot examples come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fewshot_split: Option<String>,
    /// The prompt: a field name, a Jinja template, or (for choices that are contexts) an index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_text: Option<Yaml>,
    /// The answer: a field name, a template, an index or a list of indices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_target: Option<Yaml>,
    /// The choices: a field name, a template giving a list, or a literal list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_choice: Option<Yaml>,
    /// Text placed before the few-shot examples (a template).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Between a prompt and its answer (default " ").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_delimiter: Option<String>,
    /// Between few-shot examples (default "\n\n").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fewshot_delimiter: Option<String>,
    /// Number of few-shot examples (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_fewshot: Option<usize>,
    /// Few-shot sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fewshot_config: Option<FewshotConfig>,
    /// Request kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_type: Option<OutputType>,
    /// Text that starts the answer after the prompt (a template or a document field), as
    /// lm-eval's `gen_prefix`: "The best answer is".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gen_prefix: Option<String>,
    /// Metrics reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_list: Option<Vec<MetricSpec>>,
    /// Generation settings (`generate_until`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_kwargs: Option<GenerationKwargs>,
    /// Named answer-extraction pipelines (`generate_until`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_list: Option<Vec<crate::filters::FilterSpec>>,
    /// `version` and free metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, Yaml>>,
    /// Accepted for lm-eval compatibility; contamination checks are `assay decontam`'s job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub should_decontaminate: Option<bool>,
    /// Accepted for lm-eval compatibility (see `should_decontaminate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_decontamination_query: Option<String>,
    /// lm-eval's `process_docs` hook (`!function module.name`); named in an error when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_docs: Option<Yaml>,
    /// lm-eval's `process_results` hook (`!function module.name`); named in an error when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_results: Option<Yaml>,
    /// Generations per document (`generate_until`; default 1); filters such as
    /// `majority_vote` combine them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    /// Fields that replace this task's own when no data folder is found: the same benchmark
    /// read from the Hub dataset lm-eval uses (`dataset_path`, `dataset_name`, the templates of
    /// that dataset's fields; `dataset_kwargs: null` drops the local files). An assay extension
    /// for the built-in tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub: Option<serde_yaml::Mapping>,
    /// lm-eval's image input of multimodal tasks: read, and the task refused by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_image: Option<Yaml>,
    /// lm-eval's audio input: read, and the task refused by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_to_audio: Option<Yaml>,
    /// A unitxt recipe: read, and the task refused by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Yaml>,
    /// A dataset built by a Python function: read, and the task refused by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_dataset: Option<Yaml>,
    /// A Python task class (`class: !function module.Class`): read, and the task refused by
    /// name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<Yaml>,
    /// An old file's `group: name` on a task (a task class's file still has one): lm-eval
    /// drops it.
    #[serde(default, skip_serializing)]
    pub group: Option<Yaml>,
}

impl TaskSpec {
    /// What this task needs that assay cannot do, when it needs something: images or audio,
    /// beam search, a unitxt recipe, a Python-built dataset or task class.
    pub fn unsupported(&self) -> Option<String> {
        let beams = self
            .generation_kwargs
            .as_ref()
            .and_then(|g| g.num_beams)
            .filter(|&n| n > 1);
        let reason = if self.doc_to_image.is_some() || self.doc_to_audio.is_some() {
            "images or audio (`doc_to_image`, `doc_to_audio`): assay evaluates text models".into()
        } else if let Some(n) = beams {
            format!("beam search (`generation_kwargs.num_beams: {n}`): assay decodes greedily or samples")
        } else if self.recipe.is_some() {
            "a unitxt recipe (`recipe`): unitxt builds its prompts in its own Python package".into()
        } else if self.custom_dataset.is_some() {
            "a dataset built by Python (`custom_dataset`)".into()
        } else if self.class.is_some() {
            "a Python task class (`class`)".into()
        } else if let Some(option) = self
            .dataset_kwargs
            .as_ref()
            .and_then(|k| k.builder_options.keys().next())
        {
            format!(
                "an option for a dataset's loading script or builder (`dataset_kwargs.{option}`): \
                 assay reads the Hub's data files and runs no loading script"
            )
        } else {
            return None;
        };
        Some(reason)
    }
}

impl TaskSpec {
    /// This spec with its `hub` fields in place of its own (itself when it has none).
    pub fn on_hub(&self) -> Result<TaskSpec, String> {
        let Some(hub) = &self.hub else {
            return Ok(self.clone());
        };
        let mut spec = self.with_fields(hub).map_err(|e| format!("hub: {e}"))?;
        spec.hub = None;
        Ok(spec)
    }

    /// This spec with `fields` replacing its own (a group's overrides, a `hub` block).
    pub fn with_fields(&self, fields: &serde_yaml::Mapping) -> Result<TaskSpec, String> {
        let mut base = match serde_yaml::to_value(self).map_err(|e| e.to_string())? {
            Yaml::Mapping(m) => m,
            _ => serde_yaml::Mapping::new(),
        };
        for (k, v) in fields {
            base.insert(k.clone(), v.clone());
        }
        serde_yaml::from_value(Yaml::Mapping(base)).map_err(|e| describe_yaml_error(&e))
    }
}

impl TaskSpec {
    /// The task's version (`metadata.version`, default 0).
    pub fn version(&self) -> f64 {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("version"))
            .and_then(Yaml::as_f64)
            .unwrap_or(0.0)
    }
}

/// How a group combines a metric over its tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateMetric {
    /// The metric.
    pub metric: String,
    /// Only `mean` is supported.
    #[serde(default = "mean")]
    pub aggregation: String,
    /// Weight each task by its number of documents (true) or equally (false).
    #[serde(default = "yes")]
    pub weight_by_size: bool,
    /// Only the members' values under these filters (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_list: Option<OneOrMany>,
}

impl AggregateMetric {
    /// Whether the group aggregates the metric's values under `filter`.
    pub fn covers_filter(&self, filter: &str) -> bool {
        self.filter_list
            .as_ref()
            .is_none_or(|list| list.to_vec().iter().any(|f| f == filter))
    }
}

fn mean() -> String {
    "mean".into()
}

fn yes() -> bool {
    true
}

/// A group file: a named set of tasks (or tags, or groups) reported together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// The group's name.
    pub group: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_alias: Option<String>,
    /// Members (one alone, as lm-eval also reads it).
    #[serde(deserialize_with = "one_or_many")]
    pub task: Vec<GroupMember>,
    /// Metrics aggregated over the members (one metric alone, as lm-eval also reads it).
    #[serde(default, deserialize_with = "one_or_many")]
    pub aggregate_metric_list: Vec<AggregateMetric>,
    /// `version` and free metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, Yaml>>,
    /// Every other field (`num_fewshot`, `metric_list`, ...): it replaces that field of every
    /// task in the group, nested groups included, as in lm-eval 0.4.13.
    #[serde(skip)]
    pub overrides: serde_yaml::Mapping,
}

/// One entry of a group's `task:` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, try_from = "Yaml")]
pub enum GroupMember {
    /// A task, tag or group by name.
    Name(String),
    /// A map: `task: name` (or `group: name`) naming a known task (or group) with fields that
    /// replace its own; else a task (or group) defined in place, which lm-eval names
    /// `parent::name`.
    Inline(serde_yaml::Mapping),
}

impl TryFrom<Yaml> for GroupMember {
    type Error = String;

    fn try_from(value: Yaml) -> Result<Self, String> {
        match value {
            Yaml::String(name) => Ok(GroupMember::Name(name)),
            Yaml::Mapping(map) => Ok(GroupMember::Inline(map)),
            _ => Err("expected a task name or a map with `task:` or `group:`".into()),
        }
    }
}

/// Fields of a group file; the rest of an inline group's map are overrides.
pub(crate) const GROUP_FIELDS: [&str; 5] = [
    "group",
    "group_alias",
    "task",
    "aggregate_metric_list",
    "metadata",
];

/// A flag as lm-eval tests it (`if flag:`): a boolean, or any other value by Python's truth (a
/// non-empty string is true: several lm-eval files give `ignore_punctuation` a multi-line
/// string that YAML folds into one).
fn python_truth<'de, D>(deserializer: D) -> Result<Option<bool>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Yaml::deserialize(deserializer)? {
        Yaml::Null => None,
        Yaml::Bool(b) => Some(b),
        Yaml::String(s) => Some(!s.is_empty()),
        Yaml::Number(n) => Some(n.as_f64() != Some(0.0)),
        Yaml::Sequence(items) => Some(!items.is_empty()),
        Yaml::Mapping(map) => Some(!map.is_empty()),
        Yaml::Tagged(_) => Some(true),
    })
}

/// A list, or one item standing for a list of one (lm-eval's files write both).
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match Yaml::deserialize(deserializer)? {
        Yaml::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                serde_yaml::from_value(item).map_err(|e| D::Error::custom(format!("[{i}]: {e}")))
            })
            .collect(),
        one => serde_yaml::from_value(one)
            .map(|item| vec![item])
            .map_err(D::Error::custom),
    }
}

/// Parses one YAML document as a task file on its own (before includes), so that errors point
/// at the line in that file.
pub(crate) fn check_task_yaml(text: &str) -> Result<TaskSpec, String> {
    crate::lenient::from_str::<TaskSpec>(text).map_err(|e| describe_yaml_error(&e))
}

/// Parses a group file.
pub(crate) fn parse_group_yaml(text: &str) -> Result<GroupSpec, String> {
    let mut group =
        crate::lenient::from_str::<GroupSpec>(text).map_err(|e| describe_yaml_error(&e))?;
    let fields: serde_yaml::Mapping =
        crate::lenient::from_str(text).map_err(|e| describe_yaml_error(&e))?;
    group.overrides = fields
        .into_iter()
        .filter(|(k, _)| !k.as_str().is_some_and(|k| GROUP_FIELDS.contains(&k)))
        .collect();
    Ok(group)
}

/// A YAML error as "line L, column C: message".
pub(crate) fn describe_yaml_error(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(loc) => {
            let msg = e.to_string();
            // serde_yaml appends " at line L column C"; keep the message, put the place first.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            format!("line {}, column {}: {msg}", loc.line(), loc.column())
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_null_means_the_column_names_name_every_row() {
        let kwargs: DatasetKwargs =
            serde_yaml::from_str("column_names: [q, a]\nheader: null\n").unwrap();
        assert_eq!(
            kwargs.csv_columns().unwrap(),
            Some(vec!["q".into(), "a".into()])
        );
        let kwargs: DatasetKwargs =
            serde_yaml::from_str("column_names: [q, a]\nheader: 0\n").unwrap();
        assert!(kwargs.csv_columns().unwrap_err().contains("only `null`"));
    }

    #[test]
    fn unknown_fields_are_reported_with_their_line() {
        let err = check_task_yaml("task: x\ndoc_to_txt: \"{{q}}\"\n").unwrap_err();
        assert!(
            err.starts_with("line 2, column 1: unknown field `doc_to_txt`"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_are_reported() {
        let err = check_task_yaml("task: x\nnum_fewshot: five\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("num_fewshot"), "{err}");
    }

    #[test]
    fn doc_fields_accept_strings_numbers_and_lists() {
        let spec = check_task_yaml(
            "task: x\ndoc_to_target: 0\ndoc_to_choice: [\"A\", \"B\"]\ndoc_to_text: q\noutput_type: multiple_choice\nmetadata: {version: 1.0}\n",
        )
        .unwrap();
        assert_eq!(spec.doc_to_target, Some(Yaml::from(0)));
        assert_eq!(spec.version(), 1.0);
        assert_eq!(spec.output_type, Some(OutputType::MultipleChoice));
    }
}
