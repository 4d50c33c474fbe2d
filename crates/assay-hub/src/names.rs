//! Names that come from a task file or from the Hub's answers and become paths in the cache:
//! each is checked before it touches the file system, so a hostile `HF_ENDPOINT` or task file
//! never writes outside `HF_HUB_CACHE`.

/// Why a name was refused.
pub type Refusal = String;

/// A repository id as `huggingface_hub.utils.validate_repo_id` accepts it: `name` or
/// `org/name`, each part of letters, digits, `-`, `_` and `.`, without `--` or `..`, not
/// starting or ending with `-` or `.`, at most 96 characters.
pub fn check_repo_id(repo: &str) -> Result<(), Refusal> {
    let parts: Vec<&str> = repo.split('/').collect();
    let well_formed = repo.len() <= 96
        && parts.len() <= 2
        && !repo.contains("--")
        && !repo.contains("..")
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && !part.starts_with(['-', '.'])
                && !part.ends_with(['-', '.'])
        });
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a Hub repository id (`name` or `org/name` of letters, digits, `-`, `_` and `.`, without `--` or `..`)",
            shown(repo)
        ))
    }
}

/// A path inside a repository (a listing's `rfilename`, a revision such as
/// `refs/convert/parquet`): `/`-separated parts, none empty, `.` or `..`, without `\` or
/// control characters, at most 4096 bytes.
pub fn check_repo_path(path: &str) -> Result<(), Refusal> {
    let well_formed = !path.is_empty()
        && path.len() <= 4096
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a safe path inside a repository (relative, `/`-separated, without empty, `.` or `..` parts)",
            shown(path)
        ))
    }
}

/// A commit hash: 40 hexadecimal digits.
pub fn is_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A commit hash, refused otherwise (a name from a server that becomes a snapshot folder).
pub fn check_commit(text: &str) -> Result<(), Refusal> {
    if is_commit(text) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a commit hash (40 hexadecimal digits)",
            shown(text)
        ))
    }
}

/// The blob name an ETag header names, as `huggingface_hub` normalises it (`W/` and quotes
/// removed), accepted only as the Hub sends it: a git SHA-1 (40 hex digits) or an LFS SHA-256
/// (64), lower-cased.
pub fn blob_name(etag: &str) -> Result<String, Refusal> {
    let name = etag.trim().trim_start_matches("W/").trim_matches('"');
    if matches!(name.len(), 40 | 64) && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(format!(
            "the ETag `{}` is not a SHA-1 or SHA-256 in hexadecimal, as the Hub sends",
            shown(etag)
        ))
    }
}

/// `text` cut to 120 characters with controls escaped, for messages.
fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(120)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 120 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_as_huggingface_hub_validates_them() {
        for ok in ["gpt2", "openai/gsm8k", "Idavidrein/gpqa", "a.b_c-d/e.f"] {
            assert_eq!(check_repo_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/../b",
            "a/b/c",
            "a--b/c",
            "a/.hidden",
            "a/b.",
            "/abs",
            "a b/c",
            "a\\b",
            &"x".repeat(97),
        ] {
            assert!(check_repo_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repo_paths_never_leave_the_snapshot() {
        for ok in [
            "README.md",
            "data/test-00000-of-00001.parquet",
            "refs/convert/parquet",
        ] {
            assert_eq!(check_repo_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "../escape",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            "./a",
            "a/",
            "a\\..\\b",
            "a\0b",
            "a\nb",
        ] {
            assert!(check_repo_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn etags_must_be_hashes() {
        let sha1 = "ce013625030ba8dba906f756967f9e9ca394464a";
        assert_eq!(blob_name(&format!("\"{sha1}\"")).unwrap(), sha1);
        assert_eq!(
            blob_name(&format!("W/\"{}\"", sha1.to_uppercase())).unwrap(),
            sha1
        );
        for bad in [
            "\"../../../etc/x\"",
            "\"abc\"",
            "",
            "\"zz13625030ba8dba906f756967f9e9ca394464a\"",
        ] {
            assert!(blob_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_quote_the_name_safely() {
        let err = check_repo_path("a\u{1b}[31m/../b").unwrap_err();
        assert!(err.contains("\\u{1b}"), "{err}");
    }
}
