//! A sanity alarm for multiple-choice tasks: scores that carry no signal (every choice scored
//! the same, or the same position picked in every document) come from a broken model, adapter
//! or server far more often than from a real model, and would otherwise pass as a number.

use assay_core::Loglikelihood;

/// Documents needed before an alarm is raised: with fewer, one position picked every time is
/// plausible chance (4 choices, 10 documents: 4 in a million).
const MIN_DOCS: usize = 10;

/// What the choices of a task's documents looked like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChoiceStats {
    /// Documents with two choices or more.
    docs: usize,
    /// Of those, documents whose choices all scored the same.
    ties: usize,
    /// How often each position had the highest log-likelihood (the first of equals).
    picked: Vec<usize>,
}

impl ChoiceStats {
    /// Counts one document's answers, one per choice.
    pub fn observe(&mut self, answers: &[Loglikelihood]) {
        if answers.len() < 2 {
            return;
        }
        self.docs += 1;
        let first = answers[0].logprob;
        if answers.iter().all(|a| a.logprob == first) {
            self.ties += 1;
        }
        let best = answers.iter().enumerate().fold(0, |best, (i, a)| {
            if a.logprob > answers[best].logprob {
                i
            } else {
                best
            }
        });
        if self.picked.len() <= best {
            self.picked.resize(best + 1, 0);
        }
        self.picked[best] += 1;
    }

    /// The alarm, when the scores look degenerate.
    pub fn alarm(&self) -> Option<String> {
        if self.docs < MIN_DOCS {
            return None;
        }
        if self.ties * 2 >= self.docs {
            return Some(format!(
                "degenerate scores: in {} of {} documents every choice scored the same; the accuracy is the gold position's share, not the model's (check the model, adapter or server)",
                self.ties, self.docs
            ));
        }
        let (position, &count) = self.picked.iter().enumerate().max_by_key(|(_, c)| **c)?;
        (count == self.docs).then(|| {
            format!(
                "degenerate scores: choice {position} was picked in all {} documents; the accuracy is that position's share of the gold answers (check the model, adapter or server)",
                self.docs
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(logprobs: &[f64]) -> Vec<Loglikelihood> {
        logprobs
            .iter()
            .map(|&logprob| Loglikelihood {
                logprob,
                is_greedy: false,
                continuation_tokens: 1,
                truncated: false,
            })
            .collect()
    }

    #[test]
    fn ties_and_one_position_always_are_flagged() {
        let mut ties = ChoiceStats::default();
        let mut first = ChoiceStats::default();
        let mut healthy = ChoiceStats::default();
        for i in 0..12 {
            ties.observe(&doc(&[0.0, 0.0, 0.0, 0.0]));
            first.observe(&doc(&[-1.0, -2.0, -3.0 - i as f64]));
            let mut varied = vec![-5.0; 4];
            varied[i % 4] = -1.0;
            healthy.observe(&doc(&varied));
        }
        assert!(ties
            .alarm()
            .unwrap()
            .contains("12 of 12 documents every choice"));
        assert!(first
            .alarm()
            .unwrap()
            .contains("choice 0 was picked in all 12"));
        assert_eq!(healthy.alarm(), None);
    }

    #[test]
    fn few_documents_or_single_choices_raise_nothing() {
        let mut few = ChoiceStats::default();
        let mut single = ChoiceStats::default();
        for _ in 0..(MIN_DOCS - 1) {
            few.observe(&doc(&[0.0, 0.0]));
        }
        for _ in 0..50 {
            single.observe(&doc(&[-1.0]));
        }
        assert_eq!(few.alarm(), None);
        assert_eq!(single.alarm(), None);
    }
}
