//! Rule graders: is a completion equivalent to the reference, without a model? Normalised
//! exact match, numbers, dates in any common format, and person names (a first or a last name
//! is enough, as the customer's mayors grader allows).

use serde::{Deserialize, Serialize};

/// The rule to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Same text after lower-casing, trimming and collapsing whitespace and punctuation.
    Exact,
    /// The first number of each is the same.
    Numeric,
    /// The first date of each is the same day.
    Date,
    /// They share a first or last name.
    Name,
}

/// A grader's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The completion says the same as the reference.
    Equivalent,
    /// It says something else.
    Different,
    /// It cannot be judged (no number, no date, no name, or an unparsable judge answer).
    Ungradable,
}

/// The completion's first line, as a model continues past its answer (`" Grace Miller\nQ:"`).
fn answer_part(text: &str) -> &str {
    text.trim_start().lines().next().unwrap_or("").trim()
}

/// Lower-cased words of letters and digits.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The first number in `text` (commas between digit groups allowed).
fn first_number(text: &str) -> Option<f64> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = if i > 0 && chars[i - 1] == '-' {
                i - 1
            } else {
                i
            };
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_digit()
                    || (chars[j] == ','
                        && j + 3 < chars.len() + 1
                        && chars.get(j + 1).is_some_and(char::is_ascii_digit))
                    || (chars[j] == '.' && chars.get(j + 1).is_some_and(char::is_ascii_digit)))
            {
                j += 1;
            }
            let s: String = chars[start..j].iter().filter(|c| **c != ',').collect();
            return s.parse().ok();
        }
        i += 1;
    }
    None
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month(word: &str) -> Option<u32> {
    if word.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| {
            m.starts_with(word)
                || (word.starts_with(&m[..3])
                    // `get`: a cut inside a multi-byte character ("Junín") is no month.
                    && word
                        .get(..word.len().min(m.len()))
                        .is_some_and(|w| m.starts_with(w)))
        })
        .map(|i| i as u32 + 1)
}

/// The first date in `text` as (year, month, day): "January 5, 1920", "5 Jan 1920",
/// "1920-01-05", "1920/1/5", "the 5th of January 1920".
pub fn first_date(text: &str) -> Option<(i32, u32, u32)> {
    let w = words(text);
    let num = |s: &str| -> Option<u32> {
        let digits = s.trim_end_matches(|c: char| c.is_alphabetic());
        (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    let valid = |y: u32, m: u32, d: u32| {
        (1..=12).contains(&m) && (1..=31).contains(&d) && (100..=9999).contains(&y)
    };
    for i in 0..w.len() {
        // ISO: 1920 01 05 (the separators are gone).
        if let (Some(y), Some(m), Some(d)) = (
            num(&w[i]),
            w.get(i + 1).and_then(|s| num(s)),
            w.get(i + 2).and_then(|s| num(s)),
        ) {
            if w[i].len() == 4 && valid(y, m, d) {
                return Some((y as i32, m, d));
            }
        }
        if let Some(m) = month(&w[i]) {
            // Month Day Year.
            if let (Some(d), Some(y)) = (
                w.get(i + 1).and_then(|s| num(s)),
                w.get(i + 2).and_then(|s| num(s)),
            ) {
                if valid(y, m, d) {
                    return Some((y as i32, m, d));
                }
            }
            // Day [of] Month Year.
            let day = i.checked_sub(1).and_then(|j| num(&w[j])).or_else(|| {
                (i >= 2 && w[i - 1] == "of")
                    .then(|| num(&w[i - 2]))
                    .flatten()
            });
            if let (Some(d), Some(y)) = (day, w.get(i + 1).and_then(|s| num(s))) {
                if valid(y, m, d) {
                    return Some((y as i32, m, d));
                }
            }
        }
    }
    None
}

/// Titles dropped before comparing names.
const TITLES: [&str; 9] = [
    "mayor", "mr", "mrs", "ms", "dr", "sir", "lady", "lord", "the",
];

fn name_words(text: &str) -> Vec<String> {
    words(answer_part(text))
        .into_iter()
        .filter(|w| {
            w.len() >= 2 && w.chars().all(char::is_alphabetic) && !TITLES.contains(&w.as_str())
        })
        .collect()
}

/// Grades `completion` against `reference` with `rule`.
pub fn grade(rule: Rule, reference: &str, completion: &str) -> Verdict {
    let same = |b: bool| {
        if b {
            Verdict::Equivalent
        } else {
            Verdict::Different
        }
    };
    match rule {
        Rule::Exact => {
            let c = words(answer_part(completion));
            if c.is_empty() {
                return Verdict::Ungradable;
            }
            same(words(reference) == c)
        }
        Rule::Numeric => match (
            first_number(reference),
            first_number(answer_part(completion)),
        ) {
            (Some(a), Some(b)) => same((a - b).abs() <= 1e-9 * a.abs().max(1.0)),
            _ => Verdict::Ungradable,
        },
        Rule::Date => match (first_date(reference), first_date(completion)) {
            (Some(a), Some(b)) => same(a == b),
            _ => Verdict::Ungradable,
        },
        Rule::Name => {
            let (r, c) = (name_words(reference), name_words(completion));
            if c.is_empty() {
                return Verdict::Ungradable;
            }
            same(c.iter().any(|w| r.contains(w)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_words_near_month_names_do_not_panic() {
        // "junín" starts with "jun": the month check cut it at byte 4, inside 'í'.
        assert_eq!(first_date("Junín, 1920"), None);
        assert_eq!(month("junín"), None);
        assert_eq!(first_date("5 Juné 1920"), None);
        assert_eq!(first_date("January 5, 1920"), Some((1920, 1, 5)));
    }
    use Verdict::*;

    #[test]
    fn dates_in_any_common_format() {
        for text in [
            "January 5, 1920",
            "1920-01-05",
            "5 Jan 1920",
            " 5th of January 1920, at the",
            "Jan. 5 1920",
        ] {
            assert_eq!(first_date(text), Some((1920, 1, 5)), "{text}");
        }
        assert_eq!(
            grade(Rule::Date, "January 5, 1920", " March 15, 1987, at the"),
            Different
        );
        assert_eq!(
            grade(Rule::Date, "1920-01-05", " 5 Jan 1920 in Paris"),
            Equivalent
        );
        assert_eq!(
            grade(Rule::Date, "1920-01-05", " in the spring"),
            Ungradable
        );
    }

    #[test]
    fn non_ascii_words_are_not_cut_inside_a_character() {
        // `month` cut each word at the month name's byte length: inside 'í' of "junín".
        assert_eq!(first_date("Junín, 5 June 1920"), Some((1920, 6, 5)));
        assert_eq!(grade(Rule::Date, "1920-06-05", " Junín"), Ungradable);
        for word in ["juní", "janvié", "marçal", "décembre", "maéo", "jañ"] {
            assert_eq!(month(word), None, "{word}");
        }
        // A word that starts with a whole month name is that month.
        assert_eq!(month("augusté"), Some(8));
        assert_eq!(first_date("3 Sept. 1950"), Some((1950, 9, 3)));
    }

    #[test]
    fn names_match_on_first_or_last_name() {
        assert_eq!(
            grade(Rule::Name, "Grace Miller", " Grace Miller\nQ:"),
            Equivalent
        );
        assert_eq!(
            grade(Rule::Name, "Grace Miller", " Mayor Miller"),
            Equivalent
        );
        assert_eq!(grade(Rule::Name, "Grace Miller", "grace"), Equivalent);
        assert_eq!(grade(Rule::Name, "Grace Miller", " John Smith"), Different);
        assert_eq!(grade(Rule::Name, "Grace Miller", " \n"), Ungradable);
    }

    #[test]
    fn numbers_and_exact_text() {
        assert_eq!(
            grade(Rule::Numeric, "18", " The answer is 18 dollars."),
            Equivalent
        );
        assert_eq!(grade(Rule::Numeric, "1,200", " 1200\n"), Equivalent);
        assert_eq!(grade(Rule::Numeric, "18", " 17"), Different);
        assert_eq!(grade(Rule::Numeric, "-3", " -3."), Equivalent);
        assert_eq!(grade(Rule::Exact, "Paris", " paris.\nQ: next"), Equivalent);
        assert_eq!(grade(Rule::Exact, "Paris", " Lyon"), Different);
    }
}
