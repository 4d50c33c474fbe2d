//! Every default path of assay, in one place: the cache (the request cache and the models),
//! the data home (the run registry) and the benchmark data folder. Each honours its
//! environment variable first, then the XDG variable, then the home folder. A variable set to
//! the empty string counts as unset (as the XDG specification says), never as a folder named "".

use std::path::{Path, PathBuf};

/// File name of the default model (Gemma 3 270M, Q4_K_M), fetched by `scripts/setup.sh` or
/// `assay models pull default`.
pub const DEFAULT_MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// Where benchmark data is looked for, in order, when no `--data-dir` is given (for messages).
pub const DATA_DIR_SEARCH: &str = "--data-dir, $ASSAY_DATA_DIR, ../shared/data";

/// assay's cache directory: `$ASSAY_CACHE_DIR`, else `$XDG_CACHE_HOME/assay`, else
/// `~/.cache/assay`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = env_path("ASSAY_CACHE_DIR") {
        return dir;
    }
    let base = env_path("XDG_CACHE_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("assay")
}

/// The default request cache file.
pub fn default_cache_path() -> PathBuf {
    cache_dir().join("requests.sqlite")
}

/// Where the default model lives once fetched.
pub fn default_model_path() -> PathBuf {
    cache_dir().join("models").join(DEFAULT_MODEL_FILE)
}

/// assay's data folder: `$XDG_DATA_HOME/assay`, else `~/.local/share/assay`.
pub fn data_home() -> PathBuf {
    let base = env_path("XDG_DATA_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    base.join("assay")
}

/// The default run registry file: `$ASSAY_REGISTRY`, else `registry.sqlite` in [`data_home`].
pub fn default_registry_path() -> PathBuf {
    env_path("ASSAY_REGISTRY").unwrap_or_else(|| data_home().join("registry.sqlite"))
}

/// The benchmark data folder: `explicit` if given, else `$ASSAY_DATA_DIR`, else
/// `../shared/data` when it exists; `None` when none is found (see [`DATA_DIR_SEARCH`]).
pub fn data_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = env_path("ASSAY_DATA_DIR") {
        return Some(dir);
    }
    let fallback = PathBuf::from("../shared/data");
    fallback.is_dir().then_some(fallback)
}

/// The path in the environment variable `name`, unless it is unset or empty.
fn env_path(name: &str) -> Option<PathBuf> {
    non_empty_path(std::env::var_os(name))
}

fn non_empty_path(value: Option<std::ffi::OsString>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_variable_is_no_path() {
        assert_eq!(non_empty_path(Some("".into())), None);
        assert_eq!(non_empty_path(None), None);
        assert_eq!(
            non_empty_path(Some("/data".into())),
            Some(PathBuf::from("/data"))
        );
    }
}
