//! Every task, tag and group known to a run: the built-in task files embedded in the binary,
//! plus the user's `--include-path` folders (a user task with a built-in name replaces it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use serde_yaml::{Mapping, Value as Yaml};

use crate::spec::{self, GroupSpec, TaskSpec};
use crate::TaskError;

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../tasks");

/// Where a task file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSource {
    /// Embedded in the binary: the path under `tasks/`.
    Builtin(PathBuf),
    /// A file on disk.
    File(PathBuf),
}

impl fmt::Display for TaskSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskSource::Builtin(p) => write!(f, "builtin:tasks/{}", p.display()),
            TaskSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl TaskSource {
    fn read(&self) -> Result<String, TaskError> {
        match self {
            TaskSource::Builtin(p) => BUILTIN
                .get_file(p)
                .and_then(|f| f.contents_utf8())
                .map(str::to_string)
                .ok_or_else(|| self.error("no such built-in file")),
            TaskSource::File(p) => {
                std::fs::read_to_string(p).map_err(|e| self.error(&format!("cannot read: {e}")))
            }
        }
    }

    fn sibling(&self, name: &str) -> TaskSource {
        match self {
            TaskSource::Builtin(p) => {
                TaskSource::Builtin(p.parent().unwrap_or(Path::new("")).join(name))
            }
            TaskSource::File(p) => {
                TaskSource::File(p.parent().unwrap_or(Path::new(".")).join(name))
            }
        }
    }

    fn error(&self, message: &str) -> TaskError {
        TaskError::Spec {
            source_name: self.to_string(),
            message: message.to_string(),
        }
    }
}

/// A group after its members were resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupNode {
    /// The group file.
    pub spec: GroupSpec,
    /// Direct members: task names and group names (tags expanded to their tasks).
    pub children: Vec<String>,
}

/// What a list of names selects: tasks to run and groups to report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Tasks to evaluate, in the order first named, without repeats.
    pub tasks: Vec<String>,
    /// Groups to report, members before the groups that contain them.
    pub groups: Vec<GroupNode>,
}

/// All known tasks, tags and groups.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    tasks: BTreeMap<String, (TaskSpec, TaskSource)>,
    groups: BTreeMap<String, (GroupSpec, TaskSource)>,
    tags: BTreeMap<String, Vec<String>>,
    replaced: BTreeSet<String>,
    /// User files that could not be read, by the task (or group) name they define when it can
    /// be told, else by file: (file, what was wrong). Reported when such a name is selected, so
    /// one bad file does not keep a whole folder (lm-eval's task library) from loading.
    broken: BTreeMap<String, (String, String)>,
    /// Tasks read but needing what assay cannot do (`TaskSpec::unsupported`), by name: (file,
    /// what they need).
    refused: BTreeMap<String, (String, String)>,
}

impl Registry {
    /// The built-in tasks plus every `.yaml` file under `include_paths`.
    pub fn load(include_paths: &[PathBuf]) -> Result<Registry, TaskError> {
        let mut registry = Registry::default();
        let mut builtin = Vec::new();
        collect_builtin(&BUILTIN, &mut builtin);
        for path in builtin {
            registry.add(TaskSource::Builtin(path))?;
        }
        registry.build_tags();
        for dir in include_paths {
            registry.include(dir)?;
        }
        Ok(registry)
    }

    /// Adds every `.yaml` file under `dir` (a user's task may replace a built-in one).
    pub fn include(&mut self, dir: &Path) -> Result<(), TaskError> {
        if !dir.exists() {
            return Err(TaskError::Spec {
                source_name: dir.display().to_string(),
                message: "include path does not exist".into(),
            });
        }
        let mut files = Vec::new();
        collect_disk(dir, &mut files).map_err(|e| TaskError::Spec {
            source_name: dir.display().to_string(),
            message: format!("cannot list: {e}"),
        })?;
        // A file named on its own must load; files found in a folder that cannot be read are
        // kept with their error until one of their tasks is selected.
        let named_alone = dir.is_file();
        for file in files {
            let source = TaskSource::File(file);
            if let Err(e) = self.add(source.clone()) {
                if named_alone {
                    return Err(e);
                }
                let key = defined_name(&source).unwrap_or_else(|| source.to_string());
                let (file, message) = match e {
                    TaskError::Spec {
                        source_name,
                        message,
                    } => (source_name, message),
                    other => (source.to_string(), other.to_string()),
                };
                self.broken.insert(key, (file, message));
            }
        }
        self.build_tags();
        Ok(())
    }

    /// The user's task files that could not be read: (file, what was wrong), sorted.
    pub fn unreadable(&self) -> Vec<(&str, &str)> {
        sorted_pairs(&self.broken)
    }

    /// The user's tasks that need what assay cannot do: (file, what they need), sorted.
    pub fn refused(&self) -> Vec<(&str, &str)> {
        sorted_pairs(&self.refused)
    }

    fn add(&mut self, source: TaskSource) -> Result<(), TaskError> {
        // A file with `!function` hooks loads; the hook is refused when the task is prepared, so
        // one hooked task does not keep a folder such as lm-eval's task library from loading.
        let text = source.read()?;
        let value: Yaml = crate::lenient::parse(&text)
            .map_err(|e| source.error(&spec::describe_yaml_error(&e)))?;
        let Some(map) = value.as_mapping() else {
            return Err(source.error("expected a mapping of task fields"));
        };
        if map.contains_key("group") {
            let group = spec::parse_group_yaml(&text).map_err(|m| source.error(&m))?;
            self.groups.insert(group.group.clone(), (group, source));
            return Ok(());
        }
        if !map.contains_key("task") {
            // A template, used only through `include`.
            spec::check_task_yaml(&text).map_err(|m| source.error(&m))?;
            return Ok(());
        }
        let merged = resolve_includes(&source, &text, 0)?;
        let spec: TaskSpec = serde_yaml::from_value(Yaml::Mapping(merged))
            .map_err(|e| source.error(&spec::describe_yaml_error(&e)))?;
        let name = spec.task.clone().unwrap_or_default();
        if let Some(reason) = spec.unsupported() {
            self.refused.insert(name, (source.to_string(), reason));
            return Ok(());
        }
        // A user's file may replace a built-in task, but two files of the user's with one task
        // name leave no way to tell which is meant.
        if let Some((_, earlier @ TaskSource::File(_))) = self.tasks.get(&name) {
            return Err(source.error(&format!(
                "task `{name}` is also defined in {earlier}: rename one of them"
            )));
        }
        if matches!(
            (self.tasks.get(&name), &source),
            (Some((_, TaskSource::Builtin(_))), TaskSource::File(_))
        ) {
            self.replaced.insert(name.clone());
        }
        self.tasks.insert(name, (spec, source));
        Ok(())
    }

    /// Whether the user's task file `name` replaced a built-in task of that name.
    pub fn replaces_builtin(&self, name: &str) -> bool {
        self.replaced.contains(name)
    }

    fn build_tags(&mut self) {
        self.tags.clear();
        for (name, (spec, _)) in &self.tasks {
            for tag in spec.tag.iter().flat_map(|t| t.to_vec()) {
                self.tags.entry(tag).or_default().push(name.clone());
            }
        }
    }

    /// Task names, sorted.
    pub fn task_names(&self) -> impl Iterator<Item = &str> {
        self.tasks.keys().map(String::as_str)
    }

    /// Group names, sorted.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Tag names with their tasks.
    pub fn tags(&self) -> &BTreeMap<String, Vec<String>> {
        &self.tags
    }

    /// A task's merged spec and file.
    pub fn task(&self, name: &str) -> Option<(&TaskSpec, &TaskSource)> {
        self.tasks.get(name).map(|(s, src)| (s, src))
    }

    /// Resolves names (tasks, groups or tags) to the tasks to run and the groups to report.
    pub fn resolve(&self, names: &[String]) -> Result<Selection, TaskError> {
        let mut selection = Selection::default();
        let mut seen_groups = BTreeSet::new();
        for name in names {
            self.resolve_one(name, &mut selection, &mut seen_groups, 0)?;
        }
        Ok(selection)
    }

    fn resolve_one(
        &self,
        name: &str,
        selection: &mut Selection,
        seen_groups: &mut BTreeSet<String>,
        depth: usize,
    ) -> Result<Vec<String>, TaskError> {
        if let Some((file, message)) = self.broken.get(name) {
            return Err(TaskError::Spec {
                source_name: file.clone(),
                message: message.clone(),
            });
        }
        if let Some((file, needs)) = self.refused.get(name) {
            return Err(TaskError::Invalid {
                task: name.into(),
                message: format!("{file} needs {needs}; assay cannot run it"),
            });
        }
        if depth > 16 {
            return Err(TaskError::Invalid {
                task: name.into(),
                message: "groups nest more than 16 deep (a cycle?)".into(),
            });
        }
        if self.tasks.contains_key(name) {
            if !selection.tasks.iter().any(|t| t == name) {
                selection.tasks.push(name.to_string());
            }
            return Ok(vec![name.to_string()]);
        }
        if let Some((group, _)) = self.groups.get(name) {
            let mut children = Vec::new();
            for member in &group.task {
                let resolved = self.resolve_one(member, selection, seen_groups, depth + 1)?;
                if self.tags.contains_key(member) && !self.tasks.contains_key(member) {
                    children.extend(resolved);
                } else {
                    children.push(member.clone());
                }
            }
            if seen_groups.insert(name.to_string()) {
                selection.groups.push(GroupNode {
                    spec: group.clone(),
                    children,
                });
            }
            return Ok(vec![name.to_string()]);
        }
        if let Some(tasks) = self.tags.get(name) {
            for task in tasks {
                self.resolve_one(task, selection, seen_groups, depth + 1)?;
            }
            return Ok(tasks.clone());
        }
        Err(TaskError::Unknown {
            name: name.to_string(),
            suggestions: self.suggest(name),
        })
    }

    /// Up to three known names close to `name`.
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(f64, &str)> = self
            .tasks
            .keys()
            .chain(self.groups.keys())
            .chain(self.tags.keys())
            .map(|k| {
                let mut score = strsim::jaro_winkler(name, k);
                if k.contains(name) {
                    score = score.max(0.9);
                }
                (score, k.as_str())
            })
            .filter(|(s, _)| *s >= 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(3)
            .map(|(_, k)| k.to_string())
            .collect()
    }
}

/// The (file, message) values of `map`, sorted.
fn sorted_pairs(map: &BTreeMap<String, (String, String)>) -> Vec<(&str, &str)> {
    let mut list: Vec<(&str, &str)> = map
        .values()
        .map(|(f, m)| (f.as_str(), m.as_str()))
        .collect();
    list.sort();
    list
}

fn resolve_includes(source: &TaskSource, text: &str, depth: usize) -> Result<Mapping, TaskError> {
    if depth > 8 {
        return Err(source.error("`include` chains more than 8 files deep (a cycle?)"));
    }
    let own = spec::check_task_yaml(text).map_err(|m| source.error(&m))?;
    let value: Yaml =
        crate::lenient::parse(text).map_err(|e| source.error(&spec::describe_yaml_error(&e)))?;
    let mut map = value.as_mapping().cloned().unwrap_or_default();
    map.remove("include");
    if let TaskSource::File(path) = source {
        let folder = path.parent().unwrap_or(Path::new("."));
        for (_, v) in map.iter_mut() {
            locate_hooks(v, folder);
        }
    }
    let Some(includes) = own.include else {
        return Ok(map);
    };
    // lm-eval's order: the included files in turn, a later one's keys replacing an earlier
    // one's, then this file's own.
    let mut merged = Mapping::new();
    for include in includes.to_vec() {
        let parent = source.sibling(&include);
        let parent_text = parent.read().map_err(|_| {
            source.error(&format!(
                "included file `{include}` not found (looked for {parent})"
            ))
        })?;
        merge_into(
            &mut merged,
            resolve_includes(&parent, &parent_text, depth + 1)?,
        );
    }
    merge_into(&mut merged, map);
    Ok(merged)
}

/// `map`'s keys into `merged`, replacing its values; except that `hub` fields add to the
/// inherited `hub` (an assay extension, so that a subject's file names only its Hub config).
fn merge_into(merged: &mut Mapping, map: Mapping) {
    for (k, v) in map {
        if let (true, Some(Yaml::Mapping(inherited)), Yaml::Mapping(own)) =
            (k == "hub", merged.get_mut(&k), &v)
        {
            inherited.extend(own.clone());
            continue;
        }
        merged.insert(k, v);
    }
}

/// `!function module.name` tags under `value` rewritten to `folder/module.name`: the module is
/// the file beside the task file that holds the tag, as lm-eval resolves it.
fn locate_hooks(value: &mut Yaml, folder: &Path) {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "function" => {
            if let Some(target) = tagged.value.as_str() {
                tagged.value = Yaml::String(crate::hooks::hook_path(folder, target));
            }
        }
        Yaml::Mapping(map) => map.iter_mut().for_each(|(_, v)| locate_hooks(v, folder)),
        Yaml::Sequence(items) => items.iter_mut().for_each(|v| locate_hooks(v, folder)),
        _ => {}
    }
}

/// The `task:` (or `group:`) name a file defines, read loosely from the file alone.
fn defined_name(source: &TaskSource) -> Option<String> {
    // Lossy: a file that is not UTF-8 still tells its name.
    let text = match source {
        TaskSource::File(path) => String::from_utf8_lossy(&std::fs::read(path).ok()?).into_owned(),
        TaskSource::Builtin(_) => source.read().ok()?,
    };
    if let Ok(value) = serde_yaml::from_str::<Yaml>(&text) {
        return ["task", "group"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Yaml::as_str).map(str::to_string));
    }
    // Not YAML at all: a top-level `task: name` line still tells which task it meant to be.
    text.lines().find_map(|line| {
        let name = line.strip_prefix("task:")?.trim().trim_matches(['"', '\'']);
        (!name.is_empty()).then(|| name.to_string())
    })
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn collect_builtin(dir: &Dir<'static>, out: &mut Vec<PathBuf>) {
    for file in dir.files() {
        if file.path().to_str().is_some_and(is_yaml) {
            out.push(file.path().to_path_buf());
        }
    }
    for sub in dir.dirs() {
        collect_builtin(sub, out);
    }
}

fn collect_disk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect_disk(&path, out)?;
        } else if path.to_str().is_some_and(is_yaml) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn registry_with(files: &[(&str, &str)]) -> Result<Registry, TaskError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::File::create(dir.path().join(name))
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let r = Registry::load(&[dir.path().to_path_buf()]);
        drop(dir);
        r
    }

    #[test]
    fn builtin_tasks_load_and_resolve() {
        let r = Registry::load(&[]).unwrap();
        let sel = r.resolve(&["mmlu".into()]).unwrap();
        assert_eq!(sel.tasks.len(), 57);
        let names: Vec<&str> = sel.groups.iter().map(|g| g.spec.group.as_str()).collect();
        assert_eq!(names.last(), Some(&"mmlu"));
        assert_eq!(names.len(), 5);
        for t in [
            "hellaswag",
            "arc_easy",
            "arc_challenge",
            "piqa",
            "boolq",
            "winogrande",
            "openbookqa",
            "truthfulqa_mc1",
            "truthfulqa_mc2",
        ] {
            assert!(r.task(t).is_some(), "{t}");
        }
    }

    #[test]
    fn two_user_files_may_not_define_one_task() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.yaml", "b.yaml"] {
            std::fs::write(dir.path().join(name), "task: twin\ndataset_path: x.jsonl\n").unwrap();
        }
        let err = Registry::load(&[dir.path().to_path_buf()])
            .unwrap()
            .resolve(&["twin".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("task `twin` is also defined in"), "{err}");
        assert!(err.contains("a.yaml") && err.contains("b.yaml"), "{err}");
        // Replacing a built-in task stays allowed.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("arc.yaml"),
            "task: arc_easy\ndataset_path: x.jsonl\n",
        )
        .unwrap();
        assert!(Registry::load(&[dir.path().to_path_buf()]).is_ok());
    }

    #[test]
    fn lm_evals_looser_forms_load_with_lm_evals_meaning() {
        let r = registry_with(&[
            ("_a.yaml", "output_type: multiple_choice\ndoc_to_text: a\ndescription: from a\n"),
            ("_b.yaml", "doc_to_text: b\nnum_fewshot: 3\n"),
            // Several includes: a later file's keys replace an earlier one's, this file's win.
            (
                "t.yaml",
                "include: [_a.yaml, _b.yaml]\ntask: t\nnum_fewshot: 1\nunsafe_code: true\n\
                 metric_list:\n  - metric: exact_match\n    ignore_punctuation: true\n      - \".\"\n",
            ),
            // One member and one aggregate metric, not lists.
            (
                "g.yaml",
                "group: g\ntask: t\naggregate_metric_list:\n  metric: exact_match\n",
            ),
        ])
        .unwrap();
        let (spec, _) = r.task("t").unwrap();
        assert_eq!(spec.doc_to_text, Some(Yaml::from("b")));
        assert_eq!(spec.description.as_deref(), Some("from a"));
        assert_eq!(spec.num_fewshot, Some(1));
        // YAML folds the stray list into the string "true - \".\"": true, as Python reads it.
        let metrics = spec.metric_list.as_ref().unwrap();
        assert_eq!(metrics[0].ignore_punctuation, Some(true));
        let selection = r.resolve(&["g".into()]).unwrap();
        assert_eq!(selection.tasks, vec!["t".to_string()]);
        assert_eq!(selection.groups[0].spec.aggregate_metric_list.len(), 1);
        assert!(r.unreadable().is_empty(), "{:?}", r.unreadable());

        // What assay cannot run is read and refused by name; one beam is greedy decoding.
        let r = registry_with(&[
            ("img.yaml", "task: img\ndoc_to_image: [image]\n"),
            (
                "beams.yaml",
                "task: beams\ngeneration_kwargs:\n  num_beams: 4\n",
            ),
            (
                "greedy.yaml",
                "task: greedy\ngeneration_kwargs:\n  num_beams: 1\n",
            ),
        ])
        .unwrap();
        assert!(r.unreadable().is_empty(), "{:?}", r.unreadable());
        assert_eq!(r.refused().len(), 2);
        assert!(r.task("greedy").is_some());
        let err = r.resolve(&["img".into()]).unwrap_err().to_string();
        assert!(err.contains("images") && err.contains("img.yaml"), "{err}");
        let err = r.resolve(&["beams".into()]).unwrap_err().to_string();
        assert!(err.contains("beam search"), "{err}");
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let r = Registry::load(&[]).unwrap();
        let err = r.resolve(&["helaswag".into()]).unwrap_err().to_string();
        assert!(err.contains("did you mean hellaswag"), "{err}");
    }

    #[test]
    fn includes_merge_and_user_files_report_lines() {
        let r = registry_with(&[
            (
                "_base.yaml",
                "output_type: multiple_choice\ndoc_to_text: q\n",
            ),
            (
                "mine.yaml",
                "include: _base.yaml\ntask: mine\ndoc_to_text: other\n",
            ),
        ])
        .unwrap();
        let (spec, _) = r.task("mine").unwrap();
        assert_eq!(spec.doc_to_text, Some(Yaml::from("other")));
        assert!(spec.output_type.is_some());

        // A bad file does not stop the others from loading; selecting it gives its error.
        let bad = registry_with(&[
            ("bad.yaml", "task: bad\nnum_fewshot: [1\n"),
            ("odd.yaml", "task: odd\nnum_fewshots: 1\n"),
            ("good.yaml", "task: good\ndataset_path: x.jsonl\n"),
        ])
        .unwrap();
        assert!(bad.task("good").is_some());
        let msg = bad.resolve(&["bad".into()]).unwrap_err().to_string();
        assert!(msg.contains("bad.yaml: line"), "{msg}");
        let msg = bad.resolve(&["odd".into()]).unwrap_err().to_string();
        assert!(
            msg.contains("odd.yaml: line 2") && msg.contains("unknown field `num_fewshots`"),
            "{msg}"
        );
        assert_eq!(bad.unreadable().len(), 2);

        let hooked =
            registry_with(&[("f.yaml", "task: f\nprocess_docs: !function utils.process\n")])
                .unwrap();
        let (spec, _) = hooked.task("f").unwrap();
        assert!(matches!(spec.process_docs, Some(Yaml::Tagged(_))));

        let err = registry_with(&[("g.yaml", "task: g\ninclude: nowhere.yaml\n")])
            .unwrap()
            .resolve(&["g".into()])
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("included file `nowhere.yaml` not found"));
    }
}
