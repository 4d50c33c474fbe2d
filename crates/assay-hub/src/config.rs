//! Where the Hub is and where its files are kept, read from the environment exactly as
//! Python's `huggingface_hub` reads it, so that both share one cache.

use std::path::PathBuf;
use std::time::Duration;

/// The Hub's address when `HF_ENDPOINT` is unset.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How to reach the Hub and where its files are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Base URL, without a trailing slash (`HF_ENDPOINT`).
    pub endpoint: String,
    /// The hub cache: `datasets--org--name/{blobs,snapshots,refs}` live here (`HF_HUB_CACHE`).
    pub cache_dir: PathBuf,
    /// The access token (`HF_TOKEN`, else the token file), if any.
    pub token: Option<String>,
    /// Only the cache is read (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// How long a connection or a read may wait (`HF_HUB_DOWNLOAD_TIMEOUT`, 10 s by default).
    pub timeout: Duration,
}

impl HubConfig {
    /// The settings `huggingface_hub` would use in this process's environment.
    pub fn from_env() -> HubConfig {
        HubConfig::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The settings from `var` (an environment lookup), following `huggingface_hub.constants`:
    /// `HF_HOME` (else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`);
    /// `HF_HUB_CACHE` (else the legacy `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`);
    /// `HF_TOKEN` (else the legacy `HUGGING_FACE_HUB_TOKEN`, else the file `HF_TOKEN_PATH`,
    /// else `$HF_HOME/token`; none when `HF_HUB_DISABLE_IMPLICIT_TOKEN` is true);
    /// `HF_HUB_OFFLINE` true for 1/ON/YES/TRUE in any case; `HF_HUB_DOWNLOAD_TIMEOUT` in
    /// seconds (10 unless a positive number).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> HubConfig {
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home(&var).join(".cache"))
                .join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let truthy = |name: &str| {
            var(name).is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_uppercase().as_str(),
                    "1" | "ON" | "YES" | "TRUE"
                )
            })
        };
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                if truthy("HF_HUB_DISABLE_IMPLICIT_TOKEN") {
                    return None;
                }
                let file = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| hf_home.join("token"));
                std::fs::read_to_string(file).ok()
            })
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let endpoint = var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        let timeout = var("HF_HUB_DOWNLOAD_TIMEOUT")
            .and_then(|t| t.trim().parse::<f64>().ok())
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(10));
        HubConfig {
            endpoint,
            cache_dir,
            token,
            offline: truthy("HF_HUB_OFFLINE"),
            timeout,
        }
    }
}

fn home(var: &impl Fn(&str) -> Option<String>) -> PathBuf {
    var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> HubConfig {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let c = config(&[("HOME", "/home/u")]);
        assert_eq!(c.endpoint, "https://huggingface.co");
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(c.token, None);
        assert!(!c.offline);
        assert_eq!(c.timeout, Duration::from_secs(10));
        let c = config(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(c.cache_dir, PathBuf::from("/x/huggingface/hub"));
    }

    #[test]
    fn variables_override_in_order() {
        let c = config(&[
            ("HF_HOME", "/hf"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "yes"),
        ]);
        assert_eq!(c.cache_dir, PathBuf::from("/hf/hub"));
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert!(c.offline);
        let c = config(&[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/legacy")]);
        assert_eq!(c.cache_dir, PathBuf::from("/legacy"));
        let c = config(&[
            ("HF_HUB_CACHE", "/new"),
            ("HUGGINGFACE_HUB_CACHE", "/legacy"),
        ]);
        assert_eq!(c.cache_dir, PathBuf::from("/new"));
        assert!(!config(&[("HF_HUB_OFFLINE", "0")]).offline);
        let timeout = |t| config(&[("HF_HUB_DOWNLOAD_TIMEOUT", t)]).timeout;
        assert_eq!(timeout("2.5"), Duration::from_millis(2500));
        for bad in ["0", "-1", "soon", "1e99"] {
            assert_eq!(timeout(bad), Duration::from_secs(10), "{bad}");
        }
    }

    #[test]
    fn token_from_variable_then_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "hf_file\n").unwrap();
        let h = home.path().to_str().unwrap();
        assert_eq!(config(&[("HF_HOME", h)]).token.as_deref(), Some("hf_file"));
        assert_eq!(
            config(&[("HF_HOME", h), ("HF_TOKEN", "hf_env")])
                .token
                .as_deref(),
            Some("hf_env")
        );
        assert_eq!(
            config(&[("HF_HOME", h), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")]).token,
            None
        );
        let other = home.path().join("elsewhere");
        std::fs::write(&other, "hf_path").unwrap();
        assert_eq!(
            config(&[("HF_HOME", h), ("HF_TOKEN_PATH", other.to_str().unwrap())])
                .token
                .as_deref(),
            Some("hf_path")
        );
    }
}
