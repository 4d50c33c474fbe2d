//! The simple repository API that pip reads (PEP 503 HTML and PEP 691 JSON): a project's page
//! lists its files with their download URLs.

use serde::Deserialize;

/// The media type of a PEP 691 JSON page, asked first; HTML is accepted as a fallback.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, text/html;q=0.01";

/// A project's name as the index spells it in URLs (PEP 503): lowercase, runs of `-`, `_`
/// and `.` as one `-`.
pub fn normalize(project: &str) -> String {
    let mut out = String::with_capacity(project.len());
    for c in project.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The URL of a project's page under `index` (`https://pypi.org/simple`).
pub fn project_url(index: &str, project: &str) -> String {
    format!("{}/{}/", index.trim_end_matches('/'), normalize(project))
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
}

/// The files a project page lists, as (file name, URL as written); `json` says which of the
/// two formats `body` is.
pub fn files(body: &str, json: bool) -> Result<Vec<(String, String)>, String> {
    if json {
        let page: JsonPage = serde_json::from_str(body).map_err(|e| e.to_string())?;
        return Ok(page
            .files
            .into_iter()
            .map(|f| (f.filename, f.url))
            .collect());
    }
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = find_ascii_case(rest, "<a ") {
        rest = &rest[start + 3..];
        let Some(end) = rest.find('>') else { break };
        let attributes = &rest[..end];
        rest = &rest[end + 1..];
        let Some(close) = find_ascii_case(rest, "</a>") else {
            break;
        };
        let text = unescape(rest[..close].trim());
        rest = &rest[close + 4..];
        if let Some(href) = attribute(attributes, "href") {
            out.push((text, unescape(&href)));
        }
    }
    Ok(out)
}

/// The value of `name="..."` (or single-quoted) in an anchor's attributes.
fn attribute(attributes: &str, name: &str) -> Option<String> {
    let mut rest = attributes;
    while let Some(at) = find_ascii_case(rest, name) {
        let after = rest[at + name.len()..].trim_start();
        let preceded = at == 0 || rest.as_bytes()[at - 1].is_ascii_whitespace();
        if let (true, Some(value)) = (preceded, after.strip_prefix('=')) {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let value = &value[1..];
                return value.find(quote).map(|end| value[..end].to_string());
            }
            let end = value.find(char::is_whitespace).unwrap_or(value.len());
            return Some(value[..end].to_string());
        }
        rest = &rest[at + name.len()..];
    }
    None
}

fn find_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The HTML entities an index writes in URLs and names.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_as_pep_503_says() {
        assert_eq!(normalize("Gemma3_270m.Q4--K_M"), "gemma3-270m-q4-k-m");
        assert_eq!(
            project_url("https://pypi.org/simple/", "a_b"),
            "https://pypi.org/simple/a-b/"
        );
    }

    #[test]
    fn json_pages_list_their_files() {
        let body = r#"{"meta":{"api-version":"1.1"},"name":"p","files":[
            {"filename":"p-1.0-py3-none-any.whl","url":"https://files.example/p-1.0-py3-none-any.whl","hashes":{"sha256":"ab"}}]}"#;
        assert_eq!(
            files(body, true).unwrap(),
            vec![(
                "p-1.0-py3-none-any.whl".to_string(),
                "https://files.example/p-1.0-py3-none-any.whl".to_string()
            )]
        );
        assert!(files("<html>", true).is_err());
    }

    #[test]
    fn html_pages_list_their_anchors_with_entities_and_fragments() {
        let body = "<!DOCTYPE html><html><body>\n\
            <A HREF=\"../../files/p-1.0.tar.gz#sha256=00\" data-requires-python=\"&gt;=3.9\">p-1.0.tar.gz</A><br/>\n\
            <a data-x='1' href='/f/p-1.0-py3-none-any.whl?a=1&amp;b=2'> p-1.0-py3-none-any.whl </a>\n\
            <a name=\"no-href\">ignored</a></body></html>";
        assert_eq!(
            files(body, false).unwrap(),
            vec![
                (
                    "p-1.0.tar.gz".to_string(),
                    "../../files/p-1.0.tar.gz#sha256=00".to_string()
                ),
                (
                    "p-1.0-py3-none-any.whl".to_string(),
                    "/f/p-1.0-py3-none-any.whl?a=1&b=2".to_string()
                ),
            ]
        );
        assert_eq!(files("no anchors", false).unwrap(), vec![]);
        assert_eq!(files("<a href=\"x\">unclosed", false).unwrap(), vec![]);
    }
}
