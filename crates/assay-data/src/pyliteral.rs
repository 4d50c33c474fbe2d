//! Reads the constants of a Python file that holds data as literals (`NAME = {...}`), such as
//! MGSM's `exemplars.py`, and single literals as `ast.literal_eval` reads them (MuSR's
//! `choices` column holds a list's repr): strings (with escapes and implicit concatenation),
//! numbers, lists, tuples, dicts, True/False/None. Nothing is executed.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

/// The top-level `NAME = literal` assignments of `source`.
pub fn parse_assignments(source: &str) -> Result<BTreeMap<String, Value>, (usize, String)> {
    let mut p = Parser {
        chars: source.chars().collect(),
        pos: 0,
    };
    let mut out = BTreeMap::new();
    loop {
        p.skip_space(true);
        if p.pos >= p.chars.len() {
            return Ok(out);
        }
        if matches!(p.peek(), Some('"') | Some('\'')) {
            // A module docstring or stray string.
            p.string()?;
            continue;
        }
        let name = p
            .identifier()
            .ok_or_else(|| p.error("expected NAME = value"))?;
        p.skip_space(false);
        if p.peek() != Some('=') {
            return Err(p.error(&format!("expected `=` after {name}")));
        }
        p.pos += 1;
        let value = p.value()?;
        out.insert(name, value);
    }
}

/// The one literal `text` spells, as Python's `ast.literal_eval` reads it; else the line and
/// what is wrong.
pub fn parse_literal(text: &str) -> Result<Value, (usize, String)> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let value = p.value()?;
    p.skip_space(true);
    if p.pos < p.chars.len() {
        return Err(p.error("more text after the literal"));
    }
    Ok(value)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn line(&self) -> usize {
        1 + self.chars[..self.pos.min(self.chars.len())]
            .iter()
            .filter(|&&c| c == '\n')
            .count()
    }

    fn error(&self, message: &str) -> (usize, String) {
        (self.line(), message.to_string())
    }

    /// Skips whitespace and comments (newlines too when `newlines`).
    fn skip_space(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
            } else if c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn identifier(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.chars[start..self.pos].iter().collect())
    }

    fn value(&mut self) -> Result<Value, (usize, String)> {
        self.skip_space(true);
        match self.peek() {
            Some('"') | Some('\'') => {
                let mut s = self.string()?;
                loop {
                    // Adjacent literals concatenate, across newlines inside brackets.
                    let save = self.pos;
                    self.skip_space(true);
                    if matches!(self.peek(), Some('"') | Some('\'')) {
                        s.push_str(&self.string()?);
                    } else {
                        self.pos = save;
                        return Ok(Value::String(s));
                    }
                }
            }
            Some('{') => {
                self.pos += 1;
                let mut map = Map::new();
                loop {
                    self.skip_space(true);
                    if self.peek() == Some('}') {
                        self.pos += 1;
                        return Ok(Value::Object(map));
                    }
                    let key = match self.value()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self.skip_space(true);
                    if self.peek() != Some(':') {
                        return Err(self.error("expected `:` in dict"));
                    }
                    self.pos += 1;
                    let v = self.value()?;
                    map.insert(key, v);
                    self.separator('}')?;
                }
            }
            Some('[') | Some('(') => {
                let close = if self.peek() == Some('[') { ']' } else { ')' };
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space(true);
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.separator(close)?;
                }
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '.' => {
                let start = self.pos;
                self.pos += 1;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || "._eE+-".contains(c))
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos]
                    .iter()
                    .filter(|&&c| c != '_')
                    .collect();
                if let Ok(i) = text.parse::<i64>() {
                    return Ok(Value::Number(i.into()));
                }
                text.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| self.error(&format!("bad number {text}")))
            }
            _ => match self.identifier().as_deref() {
                Some("True") => Ok(Value::Bool(true)),
                Some("False") => Ok(Value::Bool(false)),
                Some("None") => Ok(Value::Null),
                Some(other) => Err(self.error(&format!(
                    "`{other}` is not a literal (only data is read, nothing is run)"
                ))),
                None => Err(self.error("expected a literal")),
            },
        }
    }

    fn separator(&mut self, close: char) -> Result<(), (usize, String)> {
        self.skip_space(true);
        match self.peek() {
            Some(',') => {
                self.pos += 1;
                Ok(())
            }
            Some(c) if c == close => Ok(()),
            _ => Err(self.error(&format!("expected `,` or `{close}`"))),
        }
    }

    fn string(&mut self) -> Result<String, (usize, String)> {
        let quote = self.peek().ok_or_else(|| self.error("expected a string"))?;
        let triple = self.chars.get(self.pos..self.pos + 3) == Some(&[quote, quote, quote]);
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let c = self
                .peek()
                .ok_or_else(|| self.error("unterminated string"))?;
            if triple {
                if self.chars.get(self.pos..self.pos + 3) == Some(&[quote, quote, quote]) {
                    self.pos += 3;
                    return Ok(out);
                }
            } else if c == quote {
                self.pos += 1;
                return Ok(out);
            } else if c == '\n' {
                return Err(self.error("newline in a string"));
            }
            self.pos += 1;
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = self
                .peek()
                .ok_or_else(|| self.error("unterminated escape"))?;
            self.pos += 1;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\n' => {}
                'u' | 'x' | 'U' => {
                    let width = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = self
                        .chars
                        .get(self.pos..self.pos + width)
                        .map(|h| h.iter().collect())
                        .unwrap_or_default();
                    let code = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| self.error(&format!("bad escape \\{e}{hex}")))?;
                    self.pos += width;
                    out.push(code);
                }
                other => out.push(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nested_literals_with_escapes_and_concatenation() {
        let src = "\"\"\"Doc.\"\"\"\n# comment\nA = [1, 2, 3]\n\nB = {\n    \"en\": {\"q\": \"Question: \"\n               'caf\\u00e9?',  # trailing\n           \"n\": -4.5, \"ok\": True},\n}\n";
        let vars = parse_assignments(src).unwrap();
        assert_eq!(vars["A"], json!([1, 2, 3]));
        assert_eq!(
            vars["B"],
            json!({"en": {"q": "Question: café?", "n": -4.5, "ok": true}})
        );
    }

    #[test]
    fn reads_one_literal_as_literal_eval_does() {
        assert_eq!(
            parse_literal(r#"['Mara', "it's", 'a\'b', 3, -1.5, True, None,]"#).unwrap(),
            json!(["Mara", "it's", "a'b", 3, -1.5, true, null])
        );
        assert_eq!(parse_literal("('x', ['y'])").unwrap(), json!(["x", ["y"]]));
        for text in ["Mara", "['open", "['a'] + ['b']", "[__import__('os')]", ""] {
            assert!(parse_literal(text).is_err(), "{text}");
        }
    }

    #[test]
    fn code_is_refused_with_its_line() {
        let err = parse_assignments("A = 1\nB = open('x')\n").unwrap_err();
        assert_eq!(err.0, 2);
        assert!(err.1.contains("not a literal"), "{}", err.1);
    }
}
