//! Answer extraction and comparison for generation tasks: exact match with lm-eval's options,
//! and the final answer of a MATH solution compared after normalisation.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use fancy_regex::Regex;

/// lm-eval's `exact_match` options.
#[derive(Debug, Clone, Default)]
pub struct ExactMatch {
    /// Lowercase both sides.
    pub ignore_case: bool,
    /// Remove ASCII punctuation from both sides.
    pub ignore_punctuation: bool,
    /// Patterns removed from both sides first.
    pub regexes_to_ignore: Vec<Regex>,
}

impl ExactMatch {
    fn normalise(&self, text: &str) -> String {
        let mut s = text.to_string();
        for re in &self.regexes_to_ignore {
            s = replace_or_keep(re, &s, "");
        }
        if self.ignore_case {
            s = s.to_lowercase();
        }
        if self.ignore_punctuation {
            s.retain(|c| !c.is_ascii_punctuation());
        }
        s
    }

    /// 1.0 when the prediction equals the reference after normalisation.
    pub fn score(&self, prediction: &str, reference: &str) -> f64 {
        f64::from(u8::from(
            self.normalise(prediction) == self.normalise(reference),
        ))
    }
}

/// The final answer of a MATH-style solution: the text after the last "final answer is"
/// (up to "I hope it is correct"), else the content of the last `\boxed{}` / `\fbox{}`, else
/// `[invalid]`.
pub fn math_answer(solution: &str) -> String {
    // ASCII lower-casing keeps every byte offset (full lower-casing does not: 'İ' grows), so
    // positions found in `lower` are positions in `solution`.
    let lower = solution.to_ascii_lowercase();
    if let Some(at) = lower.rfind("final answer is") {
        let rest = &solution[at + "final answer is".len()..];
        let rest = match rest.to_ascii_lowercase().find("i hope") {
            Some(end) => &rest[..end],
            None => rest,
        };
        let answer = rest.trim().trim_end_matches('.').trim();
        if !answer.is_empty() {
            return answer.to_string();
        }
    }
    // An empty box is no answer (found by fuzzing: `\boxed{}` gave an empty answer).
    last_boxed(solution)
        .filter(|boxed| !boxed.trim().is_empty())
        .unwrap_or_else(|| "[invalid]".to_string())
}

/// The content of the last `\boxed{...}` or `\fbox{...}` (braces balanced).
pub fn last_boxed(text: &str) -> Option<String> {
    let start = ["\\boxed{", "\\fbox{"]
        .iter()
        .filter_map(|m| text.rfind(m).map(|i| (i, m.len())))
        .max_by_key(|(i, _)| *i)?;
    let body = &text[start.0 + start.1..];
    let mut depth = 1;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(body[..i].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Units and words that do not change a final answer.
const DROPPED_WORDS: [&str; 30] = [
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "hours",
    "km",
    "units",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "multiples",
    "seconds",
    "days",
    "years",
    "miles",
    "sq",
    "ft",
    "gm",
    "m",
];

/// A built-in pattern, compiled on first use and kept (scoring calls these once per answer).
fn builtin(re: &'static str) -> Regex {
    static COMPILED: LazyLock<Mutex<HashMap<&'static str, Regex>>> =
        LazyLock::new(Default::default);
    COMPILED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(re)
        .or_insert_with(|| Regex::new(re).expect("a valid built-in pattern"))
        .clone()
}

/// `re.replace_all(text, with)`, except that a search that fails (a pattern past
/// fancy-regex's backtracking limit) counts as no match and leaves `text` as it is:
/// fancy-regex's own `replace_all` panics then.
pub fn replace_or_keep(re: &Regex, text: &str, with: &str) -> String {
    re.try_replacen(text, 0, with)
        .map_or_else(|_| text.to_string(), |s| s.into_owned())
}

fn replace_all(re: &'static str, text: &str, with: &str) -> String {
    replace_or_keep(&builtin(re), text, with)
}

/// Normalises a final answer for comparison: the right side of an equation, no spaces, `$`,
/// `\left`/`\right`, `\!`, text wrappers, units or trailing period; `\dfrac`/`\tfrac` as `\frac`;
/// shorthand `\frac12` and `\sqrt2` braced; `1,000` as `1000`.
pub fn normalize_math(answer: &str) -> String {
    let mut s = answer
        .rsplit('=')
        .next()
        .unwrap_or(answer)
        .trim()
        .to_string();
    for (from, to) in [
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\ ", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^\\circ", ""),
        ("^{\\circ}", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\$", ""),
        ("$", ""),
        ("mbox", "text"),
        ("\\dots", ""),
        ("\\ldots", ""),
    ] {
        s = s.replace(from, to);
    }
    s = replace_all(r"\\text\{\s*([^{}]*)\}", &s, "$1");
    s = replace_all(r"\\textbf\{([^{}]*)\}", &s, "$1");
    s = replace_all(r"\\mathrm\{([^{}]*)\}", &s, "$1");
    s = replace_all(r"\\boxed\{(.*)\}", &s, "$1");
    static DROPPED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
        DROPPED_WORDS
            .iter()
            .map(|word| {
                Regex::new(&format!(r"(?<=[0-9}}\s]){word}\b")).expect("a valid built-in pattern")
            })
            .collect()
    });
    for word in DROPPED.iter() {
        s = replace_or_keep(word, &s, "");
    }
    s.retain(|c| !c.is_whitespace());
    s = replace_all(r"frac([^{\\])([^{\\])", &s, "frac{$1}{$2}");
    s = replace_all(r"frac\{([^{}]*)\}([^{\\])", &s, "frac{$1}{$2}");
    s = replace_all(r"sqrt([^{\\])", &s, "sqrt{$1}");
    let s = s.trim_end_matches('.').to_string();
    if !s.is_empty() && s.replace(',', "").chars().all(|c| c.is_ascii_digit()) {
        return s.replace(',', "");
    }
    s
}

/// A number written plainly or as `\frac{a}{b}` (with an optional sign).
fn as_number(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    let caps = builtin(r"^(-?)\\frac\{(-?[0-9.]+)\}\{(-?[0-9.]+)\}$")
        .captures(s)
        .ok()??;
    let num: f64 = caps.get(2)?.as_str().parse().ok()?;
    let den: f64 = caps.get(3)?.as_str().parse().ok()?;
    let sign = if caps.get(1).is_some_and(|m| !m.as_str().is_empty()) {
        -1.0
    } else {
        1.0
    };
    (den != 0.0).then(|| sign * num / den)
}

/// 1.0 when two final answers are equal after [`normalize_math`], or are the same number.
pub fn math_equiv(prediction: &str, reference: &str) -> f64 {
    let (p, r) = (normalize_math(prediction), normalize_math(reference));
    let same = p == r
        || matches!((as_number(&p), as_number(&r)), (Some(a), Some(b)) if (a - b).abs() <= 1e-9 * b.abs().max(1.0));
    f64::from(u8::from(same))
}

/// DROP's answer normalisation of one token: lowercase, punctuation removed unless it is a
/// number, numbers in a canonical float form, articles dropped.
fn drop_token(token: &str) -> String {
    let lower = token.to_lowercase();
    let number = lower.replace(',', "").parse::<f64>().ok();
    let text = match number {
        Some(n) => format!("{n:?}"),
        None => lower
            .chars()
            .filter(|c| !c.is_ascii_punctuation())
            .collect(),
    };
    match text.as_str() {
        "a" | "an" | "the" => String::new(),
        _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// DROP's normalised form of an answer (tokens split on spaces and hyphens).
fn drop_normalize(answer: &str) -> String {
    answer
        .split([' ', '-'])
        .map(drop_token)
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_number(token: &str) -> bool {
    token.parse::<f64>().is_ok()
}

/// DROP's exact match and bag-of-words F1 of a prediction against one gold answer (the official
/// evaluation's rules for single-span strings: F1 is 0 when the gold answer has numbers and the
/// prediction shares none of them; F1 rounded to two decimals).
pub fn drop_em_f1(prediction: &str, gold: &str) -> (f64, f64) {
    let (p, g) = (drop_normalize(prediction), drop_normalize(gold));
    let em = f64::from(u8::from(p == g));
    let pbag: std::collections::BTreeSet<&str> = p.split_whitespace().collect();
    let gbag: std::collections::BTreeSet<&str> = g.split_whitespace().collect();
    let gold_numbers: Vec<&&str> = gbag.iter().filter(|t| is_number(t)).collect();
    let numbers_match = gold_numbers.is_empty() || gold_numbers.iter().any(|n| pbag.contains(**n));
    let common = pbag.intersection(&gbag).count() as f64;
    let precision = if pbag.is_empty() {
        1.0
    } else {
        common / pbag.len() as f64
    };
    let recall = if gbag.is_empty() {
        1.0
    } else {
        common / gbag.len() as f64
    };
    let f1 = if precision + recall == 0.0 || !numbers_match {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (em, (f1 * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn math_answer_survives_characters_that_grow_when_lower_cased() {
        // 'İ' is 2 bytes and lower-cases to 3: offsets from a fully lower-cased copy were wrong.
        let text = "İİİİİİİİ The Final Answer is $x=2$. I hope it is correct.";
        assert_eq!(math_answer(text), "$x=2$");
        let text = "ẞİ final answer is İ5İ. i hope";
        assert_eq!(math_answer(text), "İ5İ");
    }

    #[test]
    fn an_empty_box_is_no_answer() {
        // Found by the `extract` fuzz target: both gave an empty answer.
        assert_eq!(
            math_answer("The \\frac{3}{w \\boxed{3}{4}} {3}{w \\boxed{} c)"),
            "[invalid]"
        );
        assert_eq!(math_answer("Thus \\boxed{}} and \\fb`ox{x"), "[invalid]");
        assert_eq!(math_answer("so \\boxed{ } then"), "[invalid]");
        assert_eq!(math_answer("so \\boxed{7}"), "7");
    }

    #[test]
    fn gsm8k_exact_match_options() {
        let em = ExactMatch {
            ignore_case: true,
            ignore_punctuation: false,
            regexes_to_ignore: [",", "\\$", "(?s).*#### ", "\\.$"]
                .iter()
                .map(|r| Regex::new(r).unwrap())
                .collect(),
        };
        assert_eq!(em.score("$1,250.", "Sold 1250 so\n#### 1,250"), 1.0);
        assert_eq!(em.score("[invalid]", "#### 18"), 0.0);
    }

    #[test]
    fn drop_scores() {
        assert_eq!(drop_em_f1("The Eagles", "eagles"), (1.0, 1.0));
        assert_eq!(drop_em_f1("1,000 yards", "1000"), (0.0, 0.67));
        assert_eq!(drop_em_f1("12", "13"), (0.0, 0.0));
        assert_eq!(
            drop_em_f1(
                "25 to 44 and 45 to 64",
                "under the age of 18 and 25 to 44 and 45 to 64"
            )
            .0,
            0.0
        );
        let (_, f1) = drop_em_f1(
            "25 to 44 and 45 to 64",
            "under the age of 18 and 25 to 44 and 45 to 64",
        );
        assert!(f1 > 0.5 && f1 < 1.0, "{f1}");
    }

    #[test]
    fn final_answers_are_found() {
        assert_eq!(math_answer("so x = 2.\nFinal Answer: The final answer is $\\frac{1}{2}$. I hope it is correct."), "$\\frac{1}{2}$");
        assert_eq!(
            math_answer("Thus \\boxed{\\frac{3}{4}} and \\boxed{x^{2}}"),
            "x^{2}"
        );
        assert_eq!(math_answer("no answer"), "[invalid]");
    }

    #[test]
    fn final_answers_after_characters_that_change_length_when_lower_cased() {
        // 'İ' lower-cases to 3 bytes (from 2), 'Ⱥ' to 3 (from 2), 'ẞ' to 2 (from 3), the Kelvin
        // sign to 1 (from 3): positions found in the lower-cased text were cut in the original.
        for (text, expected) in [
            ("İİİ The final answer is $5$. I hope it is correct.", "$5$"),
            ("ȺȺȺȺ Final answer is 12", "12"),
            ("ẞẞ the final answer is 7. I hope so", "7"),
            ("\u{212a}\u{212a} The final answer is €5", "€5"),
            ("\u{212a} The final answer is €5", "€5"),
            (
                "The final answer is İİ5 İİ. I hope it is correct.",
                "İİ5 İİ",
            ),
            ("The final answer is ΣﬁẞK. I HOPE it is", "ΣﬁẞK"),
            ("FINAL ANSWER IS x İ hope", "x İ hope"),
        ] {
            assert_eq!(math_answer(text), expected, "{text}");
        }
    }

    #[test]
    fn a_pattern_past_the_backtracking_limit_removes_nothing() {
        // Exponential backtracking inside the VM (the look-ahead keeps it from the regex crate).
        let catastrophic = Regex::new("(a|b|ab)*(?=c)").unwrap();
        let text = "ab".repeat(30);
        assert!(
            catastrophic.is_match(&text).is_err(),
            "the pattern must hit the limit"
        );
        let em = ExactMatch {
            ignore_case: false,
            ignore_punctuation: false,
            regexes_to_ignore: vec![catastrophic],
        };
        assert_eq!(em.score(&text, &text), 1.0);
        assert_eq!(em.score(&text, "abc"), 0.0);
    }

    #[test]
    fn normalisation_handles_fractions_units_and_spacing() {
        assert_eq!(math_equiv("\\dfrac{1}{2}", "\\frac12"), 1.0);
        assert_eq!(math_equiv("0.5", "\\frac{1}{2}"), 1.0);
        assert_eq!(math_equiv("\\left( 3, 4 \\right)", "(3,4)"), 1.0);
        assert_eq!(math_equiv("10\\text{ inches}", "10"), 1.0);
        assert_eq!(math_equiv("x = 1,000", "1000"), 1.0);
        assert_eq!(math_equiv("90^\\circ", "90"), 1.0);
        assert_eq!(math_equiv("\\sqrt2", "\\sqrt{2}"), 1.0);
        assert_eq!(math_equiv("3", "4"), 0.0);
        assert_eq!(math_equiv("[invalid]", "4"), 0.0);
    }
}
