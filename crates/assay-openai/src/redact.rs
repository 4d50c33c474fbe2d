//! Credentials written into a URL (`http://user:PASSWORD@host/v1`) kept out of everything assay
//! prints or stores: the results, the run registry, messages and logs.

/// `text` with the user information of every URL in it (`scheme://user:password@`) replaced by
/// `***`: the host and path stay, so messages still say where.
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the path, the query, or the end of the URL in the text.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                out.push_str("***");
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_replaced_and_the_rest_kept() {
        assert_eq!(
            redact_credentials("http://user:hunter2@127.0.0.1:8000/v1"),
            "http://***@127.0.0.1:8000/v1"
        );
        assert_eq!(
            redact_credentials("cannot reach https://a:b@x.io/v1/models: error (for url (https://a:b@x.io/v1/models))"),
            "cannot reach https://***@x.io/v1/models: error (for url (https://***@x.io/v1/models))"
        );
        // A password holding `@` is cut at the last one.
        assert_eq!(redact_credentials("http://u:p@ss@h"), "http://***@h");
        for plain in [
            "http://127.0.0.1:8000/v1",
            "no url here",
            "mail me@host.org",
            "",
        ] {
            assert_eq!(redact_credentials(plain), plain);
        }
    }
}
