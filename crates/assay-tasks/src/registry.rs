//! Every task, tag and group known to a run: the built-in task files embedded in the binary,
//! plus the user's `--include-path` folders (a user task with a built-in name replaces it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use serde_yaml::{Mapping, Value as Yaml};

use crate::spec::{self, GroupMember, GroupSpec, TaskSpec};
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
    /// Each task's fields, with what a group replaced applied (a task defined inside a group
    /// file exists only here).
    pub specs: BTreeMap<String, TaskSpec>,
    /// Groups to report, members before the groups that contain them.
    pub groups: Vec<GroupNode>,
}

impl Selection {
    /// The fields of the selected task `name`.
    pub fn spec(&self, name: &str) -> Option<&TaskSpec> {
        self.specs.get(name)
    }

    /// For each task of `tasks` (same order), how many draws of Python's global `random`
    /// lm-eval 0.4.13 has made, after seeding, by the time it builds that task. Adding a task to
    /// a group reads the task's `task_name` twice, and each read draws a random 8-character id
    /// (`random.choices(k=8)`: eight draws) even though the task has a name; a group adds its
    /// members once all of them are built. A `process_docs` hook that shuffles with `random`
    /// (the leaderboard's GPQA) sees those draws, so the hook worker makes them too.
    pub fn lm_eval_draws_before(&self) -> Vec<u64> {
        const DRAWS_PER_ADD: u64 = 2 * 8;
        let position = |task: &str| self.tasks.iter().position(|t| t == task);
        // Each group's adds happen right after its last task is built.
        let mut adds_after = vec![0u64; self.tasks.len()];
        for group in &self.groups {
            let last = self.leaves(&group.spec.group).filter_map(position).max();
            let tasks = group
                .children
                .iter()
                .filter(|c| self.specs.contains_key(*c));
            if let Some(last) = last {
                adds_after[last] += tasks.count() as u64;
            }
        }
        let mut before = 0;
        adds_after
            .iter()
            .map(|adds| {
                let now = before;
                before += adds * DRAWS_PER_ADD;
                now
            })
            .collect()
    }

    /// The tasks under group `name`, nested groups included.
    fn leaves<'a>(&'a self, name: &'a str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match self.groups.iter().find(|g| g.spec.group == name) {
            Some(group) => Box::new(group.children.iter().flat_map(|c| self.leaves(c))),
            None => Box::new(std::iter::once(name)),
        }
    }
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
        // lm-eval's order: a task class first, then a group (even with `task:` one name).
        if map.contains_key("group") && !map.contains_key("class") {
            let mut group = spec::parse_group_yaml(&text).map_err(|m| source.error(&m))?;
            if let TaskSource::File(path) = &source {
                locate_group_hooks(&mut group, path.parent().unwrap_or(Path::new(".")));
            }
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
        let mut walk = Walk::default();
        for name in names {
            self.resolve_one(name, &Mapping::new(), &mut walk, 0)?;
        }
        Ok(walk.selection)
    }

    /// Selects `name` with `overrides` (a group's replaced fields) on its tasks; returns the
    /// names a group lists it under (a tag's tasks, else `name`).
    fn resolve_one(
        &self,
        name: &str,
        overrides: &Mapping,
        walk: &mut Walk,
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
        if let Some((spec, source)) = self.tasks.get(name) {
            let spec = with_overrides(spec, overrides).map_err(|m| {
                source.error(&format!("task `{name}` with its group's fields: {m}"))
            })?;
            walk.select(name, spec)?;
            return Ok(vec![name.to_string()]);
        }
        if let Some((group, _)) = self.groups.get(name) {
            self.resolve_group(group.clone(), overrides, walk, depth)?;
            return Ok(vec![name.to_string()]);
        }
        if let Some(tasks) = self.tags.get(name) {
            for task in tasks {
                self.resolve_one(task, overrides, walk, depth + 1)?;
            }
            return Ok(tasks.clone());
        }
        Err(TaskError::Unknown {
            name: name.to_string(),
            suggestions: self.suggest(name),
        })
    }

    /// Selects `group`'s members, its own overrides under the caller's `overrides`.
    fn resolve_group(
        &self,
        group: GroupSpec,
        overrides: &Mapping,
        walk: &mut Walk,
        depth: usize,
    ) -> Result<(), TaskError> {
        let mut inherited = group.overrides.clone();
        inherited.extend(overrides.clone());
        let mut children = Vec::new();
        for member in &group.task {
            let (name, fields) = match member {
                GroupMember::Name(name) => (name.clone(), inherited.clone()),
                GroupMember::Inline(map) => {
                    let (name, fields) = self.inline_member(&group.group, map, &inherited)?;
                    if !self.knows(&name) {
                        self.resolve_inline(&name, map, &fields, walk, depth)?;
                        children.push(name);
                        continue;
                    }
                    (name, fields)
                }
            };
            let resolved = self.resolve_one(&name, &fields, walk, depth + 1)?;
            if self.tags.contains_key(&name) && !self.tasks.contains_key(&name) {
                children.extend(resolved);
            } else {
                children.push(name);
            }
        }
        if walk.seen_groups.insert(group.group.clone()) {
            walk.selection.groups.push(GroupNode {
                spec: group,
                children,
            });
        }
        Ok(())
    }

    /// An inline member's name (`parent::name` when no file defines it) and the fields it
    /// replaces: `inherited`, then its own (a group's fields excepted).
    fn inline_member(
        &self,
        parent: &str,
        map: &Mapping,
        inherited: &Mapping,
    ) -> Result<(String, Mapping), TaskError> {
        let key = if map.contains_key("group") {
            "group"
        } else {
            "task"
        };
        let Some(name) = map.get(key).and_then(Yaml::as_str) else {
            return Err(TaskError::Invalid {
                task: parent.into(),
                message: "a map in the group's `task:` list needs `task: name` or `group: name`"
                    .into(),
            });
        };
        let own: Mapping = map
            .iter()
            .filter(|(k, _)| !k.as_str().is_some_and(|k| spec::GROUP_FIELDS.contains(&k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if self.knows(name) {
            let mut fields = inherited.clone();
            fields.extend(own);
            return Ok((name.to_string(), fields));
        }
        // lm-eval: a group defined in place takes its parent's fields over its own; a task
        // defined in place, its own over its parent's.
        let (mut fields, top) = if key == "group" {
            (own, inherited.clone())
        } else {
            (inherited.clone(), own)
        };
        fields.extend(top);
        Ok((format!("{parent}::{name}"), fields))
    }

    /// Selects a task or group defined inside a group file's `task:` list.
    fn resolve_inline(
        &self,
        name: &str,
        map: &Mapping,
        fields: &Mapping,
        walk: &mut Walk,
        depth: usize,
    ) -> Result<(), TaskError> {
        let invalid = |message: String| TaskError::Invalid {
            task: name.into(),
            message,
        };
        if map.contains_key("group") {
            let mut inline = map.clone();
            inline.insert("group".into(), name.into());
            // Its own other fields are already in `fields`.
            let group: GroupSpec = serde_yaml::from_value(Yaml::Mapping(inline))
                .map_err(|e| invalid(spec::describe_yaml_error(&e)))?;
            return self.resolve_group(group, fields, walk, depth + 1);
        }
        let mut fields = task_fields(fields);
        fields.insert("task".into(), name.into());
        let spec: TaskSpec = serde_yaml::from_value(Yaml::Mapping(fields))
            .map_err(|e| invalid(spec::describe_yaml_error(&e)))?;
        if let Some(needs) = spec.unsupported() {
            return Err(invalid(format!("needs {needs}; assay cannot run it")));
        }
        walk.select(name, spec)
    }

    /// Whether a file defines `name` as a task, group or tag.
    fn knows(&self, name: &str) -> bool {
        self.tasks.contains_key(name)
            || self.groups.contains_key(name)
            || self.tags.contains_key(name)
            || self.broken.contains_key(name)
            || self.refused.contains_key(name)
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

/// The selection being built: tasks with their fields, and the groups already listed.
#[derive(Default)]
struct Walk {
    selection: Selection,
    seen_groups: BTreeSet<String>,
}

impl Walk {
    /// Adds task `name` with `spec`, unless it is there already with the same fields.
    fn select(&mut self, name: &str, spec: TaskSpec) -> Result<(), TaskError> {
        match self.selection.specs.get(name) {
            Some(earlier) if *earlier != spec => Err(TaskError::Invalid {
                task: name.into(),
                message: "selected twice with different fields (a group replaces some of \
                          them): run the two selections apart"
                    .into(),
            }),
            Some(_) => Ok(()),
            None => {
                self.selection.tasks.push(name.to_string());
                self.selection.specs.insert(name.to_string(), spec);
                Ok(())
            }
        }
    }
}

/// `spec` with a group's `overrides`.
fn with_overrides(spec: &TaskSpec, overrides: &Mapping) -> Result<TaskSpec, String> {
    if overrides.is_empty() {
        return Ok(spec.clone());
    }
    spec.with_fields(&task_fields(overrides))
}

/// `fields` without the structure keys lm-eval drops before it builds a task (`tag`, `group`,
/// `task_list`) and without `task`: a task keeps its own name.
fn task_fields(fields: &Mapping) -> Mapping {
    let mut fields = fields.clone();
    for key in ["tag", "group", "task_list", "task"] {
        fields.remove(key);
    }
    fields
}

/// A group file's `!function` tags (in its overrides and inline members) located in `folder`.
fn locate_group_hooks(group: &mut GroupSpec, folder: &Path) {
    for (_, v) in group.overrides.iter_mut() {
        locate_hooks(v, folder);
    }
    for member in &mut group.task {
        if let GroupMember::Inline(map) = member {
            map.iter_mut().for_each(|(_, v)| locate_hooks(v, folder));
        }
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
    fn groups_replace_their_members_fields_and_define_members_in_place() {
        // lm-eval 0.4.13: a group's other fields replace its members' (nested ones too); a
        // member map's own fields replace both; a map naming no file is defined in place.
        let group = [
            "group: g",
            "num_fewshot: 5",
            "tag: ignored",
            "task:",
            "  - t",
            "  - task: u",
            "    num_fewshot: 2",
            "  - task: fresh",
            "    doc_to_text: new",
            "  - group: sub",
            "    task: [t]",
        ]
        .join("\n");
        let r = registry_with(&[
            ("t.yaml", "task: t\ndoc_to_text: q\nnum_fewshot: 0\n"),
            ("u.yaml", "task: u\ndoc_to_text: q\n"),
            ("g.yaml", &group),
            // A task class's file keeps an old `group:`: a task, refused by name.
            (
                "py.yaml",
                "group: py_group\ntask: py\nclass: !function m.C\n",
            ),
            // A builder option of a loading script: refused by name; streaming is not needed.
            (
                "script.yaml",
                "task: script\ndataset_kwargs:\n  qa_split: qa1\n  streaming: true\n",
            ),
        ])
        .unwrap();
        assert!(r.unreadable().is_empty(), "{:?}", r.unreadable());
        let selection = r.resolve(&["g".into()]).unwrap();
        assert_eq!(selection.tasks, ["t", "u", "g::fresh"]);
        assert_eq!(selection.spec("t").unwrap().num_fewshot, Some(5));
        assert_eq!(selection.spec("u").unwrap().num_fewshot, Some(2));
        let fresh = selection.spec("g::fresh").unwrap();
        assert_eq!(fresh.doc_to_text, Some(Yaml::from("new")));
        assert_eq!(fresh.num_fewshot, Some(5));
        let names: Vec<&str> = selection
            .groups
            .iter()
            .map(|g| g.spec.group.as_str())
            .collect();
        assert_eq!(names, ["g::sub", "g"]);
        assert_eq!(
            selection.groups[1].children,
            ["t", "u", "g::fresh", "g::sub"]
        );
        // The files themselves are unchanged: the replacement is the group's.
        assert_eq!(r.task("t").unwrap().0.num_fewshot, Some(0));
        let alone = r.resolve(&["t".into()]).unwrap();
        assert_eq!(alone.spec("t").unwrap().num_fewshot, Some(0));
        // The same task with two sets of fields in one run cannot be told apart in the results.
        let err = r
            .resolve(&["t".into(), "g".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("selected twice with different fields"),
            "{err}"
        );
        let refused: Vec<&str> = r.refused().iter().map(|(_, why)| *why).collect();
        assert!(
            refused.iter().any(|w| w.contains("task class")),
            "{refused:?}"
        );
        assert!(
            refused
                .iter()
                .any(|w| w.contains("dataset_kwargs.qa_split")),
            "{refused:?}"
        );
    }

    #[test]
    fn lm_evals_draws_follow_its_group_building_order() {
        let r = registry_with(&[
            ("a.yaml", "task: a\n"),
            ("b.yaml", "task: b\n"),
            ("c.yaml", "task: c\n"),
            ("d.yaml", "task: d\n"),
            ("inner.yaml", "group: inner\ntask: [b, c]\n"),
            ("outer.yaml", "group: outer\ntask: [a, inner, d]\n"),
        ])
        .unwrap();
        let selection = r.resolve(&["outer".into()]).unwrap();
        assert_eq!(selection.tasks, ["a", "b", "c", "d"]);
        // `inner` adds its two tasks once `c` is built: 2 adds x 2 reads x 8 draws before `d`;
        // `outer` adds `a` and `d` after everything.
        assert_eq!(selection.lm_eval_draws_before(), [0, 0, 0, 32]);
        // Tasks named on their own are never added to a group: no draws.
        let alone = r.resolve(&["a".into(), "d".into()]).unwrap();
        assert_eq!(alone.lm_eval_draws_before(), [0, 0]);
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
