//! The `configs:` section of a dataset card (the YAML front matter of `README.md`), as the
//! `datasets` library reads it: each config names its data files per split, as globs.

use serde_yaml::Value as Yaml;

/// One config of a dataset card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardConfig {
    /// `config_name` (`default` when absent).
    pub name: String,
    /// `default: true`.
    pub default: bool,
    /// Split name to glob patterns, in the card's order, relative to `data_dir` if set.
    pub data_files: Vec<(String, Vec<String>)>,
    /// `data_dir`: a folder the patterns are relative to.
    pub data_dir: Option<String>,
}

/// The configs of the card `text`; empty when it has no front matter or no `configs:`.
pub fn parse_card(text: &str) -> Result<Vec<CardConfig>, String> {
    let Some(front) = front_matter(text) else {
        return Ok(Vec::new());
    };
    let yaml: Yaml = serde_yaml::from_str(front)
        .map_err(|e| format!("the YAML front matter does not parse: {e}"))?;
    let Some(configs) = yaml.get("configs") else {
        return Ok(Vec::new());
    };
    let list = configs
        .as_sequence()
        .ok_or("`configs` is not a list".to_string())?;
    list.iter().map(parse_config).collect()
}

fn front_matter(text: &str) -> Option<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some(&rest[..offset]);
        }
        offset += line.len();
    }
    None
}

fn parse_config(value: &Yaml) -> Result<CardConfig, String> {
    let name = value
        .get("config_name")
        .and_then(Yaml::as_str)
        .unwrap_or("default")
        .to_string();
    let default = value
        .get("default")
        .and_then(Yaml::as_bool)
        .unwrap_or(false);
    let data_dir = value
        .get("data_dir")
        .and_then(Yaml::as_str)
        .map(str::to_string);
    let data_files = match value.get("data_files") {
        None | Some(Yaml::Null) => Vec::new(),
        Some(files) => parse_data_files(files).map_err(|e| format!("config `{name}`: {e}"))?,
    };
    Ok(CardConfig {
        name,
        default,
        data_files,
        data_dir,
    })
}

/// `data_files` in any of the card's forms: a pattern, a list of patterns (both the `train`
/// split), a list of `{split, path}` (path a pattern or a list), or a split-to-pattern map.
pub fn parse_data_files(value: &Yaml) -> Result<Vec<(String, Vec<String>)>, String> {
    let patterns = |v: &Yaml| -> Result<Vec<String>, String> {
        match v {
            Yaml::String(s) => Ok(vec![s.clone()]),
            Yaml::Sequence(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or("a data file pattern is not a string".to_string())
                })
                .collect(),
            _ => Err("a data file entry is neither a pattern nor a list of patterns".into()),
        }
    };
    match value {
        Yaml::String(_) => Ok(vec![("train".into(), patterns(value)?)]),
        Yaml::Sequence(items) if items.iter().all(Yaml::is_string) => {
            Ok(vec![("train".into(), patterns(value)?)])
        }
        Yaml::Sequence(items) => items
            .iter()
            .map(|item| {
                let split = item
                    .get("split")
                    .and_then(Yaml::as_str)
                    .unwrap_or("train")
                    .to_string();
                let path = item
                    .get("path")
                    .ok_or(format!("split `{split}` has no `path`"))?;
                Ok((split, patterns(path)?))
            })
            .collect(),
        Yaml::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let split = k
                    .as_str()
                    .ok_or("a split name is not a string".to_string())?;
                Ok((split.to_string(), patterns(v)?))
            })
            .collect(),
        _ => Err("`data_files` is neither a pattern, a list nor a map".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_in_every_form() {
        let card = "---\nlicense: mit\nconfigs:\n- config_name: main\n  data_files:\n  - split: train\n    path: main/train-*\n  - split: test\n    path: [main/test-*]\n- config_name: socratic\n  data_files: socratic/*.parquet\n  default: true\n---\n# GSM8K\n";
        let configs = parse_card(card).unwrap();
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[0].name, "main");
        assert_eq!(
            configs[0].data_files,
            vec![
                ("train".to_string(), vec!["main/train-*".to_string()]),
                ("test".to_string(), vec!["main/test-*".to_string()])
            ]
        );
        assert!(!configs[0].default);
        assert!(configs[1].default);
        assert_eq!(configs[1].data_files[0].0, "train");
    }

    #[test]
    fn cards_without_configs() {
        assert!(parse_card("# just text\n").unwrap().is_empty());
        assert!(parse_card("---\nlicense: mit\n---\nbody")
            .unwrap()
            .is_empty());
        assert!(parse_card("---\nconfigs: 3\n---\n").is_err());
        let err = parse_card("---\nconfigs:\n- config_name: a\n  data_files:\n  - split: x\n---\n")
            .unwrap_err();
        assert!(
            err.contains("config `a`") && err.contains("no `path`"),
            "{err}"
        );
    }
}
