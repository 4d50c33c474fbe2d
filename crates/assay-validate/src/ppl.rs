//! Perplexity of reference responses: each item's response scored as the continuation of its
//! prompt (or, with `rolling`, every token of the whole text), summed into token-weighted mean
//! losses and perplexities overall and per source, difficulty and domain; and the comparison of
//! two such reports (the merge check: an adapter applied at run time against the merged model).

use std::collections::BTreeMap;
use std::path::Path;

use assay_backend::{Backend, BackendError};
use assay_core::request::LoglikelihoodRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::unified::for_each_json_line;
use crate::{Item, ValidateError};

/// One item's loss.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemLoss {
    /// Position in the data file (0-based, blank lines not counted).
    pub index: usize,
    /// `metadata.source`, `difficulty`, `domain` (empty when absent).
    pub source: String,
    /// Difficulty.
    pub difficulty: String,
    /// Domain.
    pub domain: String,
    /// Tokens scored.
    pub tokens: usize,
    /// Negative log-likelihood of those tokens (nats).
    pub nll: f64,
    /// Mean loss per token.
    pub loss: f64,
    /// Whether the text was cut from the left to fit the context.
    pub truncated: bool,
}

/// Totals of a group of items.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Group {
    /// Items.
    pub items: usize,
    /// Tokens scored.
    pub tokens: usize,
    /// Token-weighted mean loss (nats per token).
    pub loss: f64,
    /// exp(loss).
    pub perplexity: f64,
}

impl Group {
    fn of<'a>(items: impl Iterator<Item = &'a ItemLoss>) -> Group {
        let (mut n, mut tokens, mut nll) = (0, 0, 0.0);
        for i in items {
            n += 1;
            tokens += i.tokens;
            nll += i.nll;
        }
        let loss = nll / tokens.max(1) as f64;
        Group {
            items: n,
            tokens,
            loss,
            perplexity: loss.exp(),
        }
    }
}

/// A perplexity run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PplReport {
    /// What was measured: model, adapter, data, mode.
    pub setup: Value,
    /// All items.
    pub overall: Group,
    /// Per `metadata.source`.
    pub by_source: BTreeMap<String, Group>,
    /// Per `metadata.difficulty`.
    pub by_difficulty: BTreeMap<String, Group>,
    /// Per `metadata.domain`.
    pub by_domain: BTreeMap<String, Group>,
    /// Every item.
    pub items: Vec<ItemLoss>,
}

impl PplReport {
    /// Groups `items` into a report.
    pub fn new(setup: Value, items: Vec<ItemLoss>) -> PplReport {
        let by = |key: fn(&ItemLoss) -> &str| {
            let mut names: Vec<&str> = items.iter().map(key).collect();
            names.sort_unstable();
            names.dedup();
            names
                .into_iter()
                .map(|name| {
                    (
                        name.to_string(),
                        Group::of(items.iter().filter(|i| key(i) == name)),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        };
        PplReport {
            setup,
            overall: Group::of(items.iter()),
            by_source: by(|i| &i.source),
            by_difficulty: by(|i| &i.difficulty),
            by_domain: by(|i| &i.domain),
            items,
        }
    }
}

/// Reads the items of a unified JSONL file (`prompt`/`response`, or `text` for rolling runs).
pub fn read_items(path: &Path) -> Result<Vec<Item>, ValidateError> {
    let mut items = Vec::new();
    for_each_json_line(path, |_, v| {
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let metadata = v
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        items.push(match (field("prompt"), field("response"), field("text")) {
            (Some(prompt), Some(response), _) => Item {
                prompt,
                response,
                metadata,
            },
            (_, _, Some(text)) => Item {
                prompt: String::new(),
                response: text,
                metadata,
            },
            _ => return Err("expected `prompt` and `response` (or `text`)".into()),
        });
        Ok(())
    })?;
    if items.is_empty() {
        return Err(ValidateError::BadItem {
            path: path.to_path_buf(),
            line: 0,
            message: "no items: the file is empty".into(),
        });
    }
    Ok(items)
}

/// The response as a continuation of the prompt: a space between them when neither side has
/// whitespace at the join.
fn request(item: &Item) -> LoglikelihoodRequest {
    let joins = item.prompt.ends_with(char::is_whitespace)
        || item.response.starts_with(char::is_whitespace)
        || item.prompt.is_empty();
    LoglikelihoodRequest {
        context: item.prompt.clone(),
        continuation: if joins {
            item.response.clone()
        } else {
            format!(" {}", item.response)
        },
    }
}

fn loss_of(index: usize, item: &Item, tokens: usize, logprob: f64, truncated: bool) -> ItemLoss {
    ItemLoss {
        index,
        source: item.meta("source").to_string(),
        difficulty: item.meta("difficulty").to_string(),
        domain: item.meta("domain").to_string(),
        tokens,
        nll: -logprob,
        loss: -logprob / tokens.max(1) as f64,
        truncated,
    }
}

/// Scores `items` on `backend` in batches; `done` hears of each finished item. When `stop`
/// turns true, the items scored so far are returned (fewer than `items`).
pub fn score(
    backend: &mut dyn Backend,
    items: &[Item],
    rolling: bool,
    done: &mut dyn FnMut(),
    stop: &dyn Fn() -> bool,
) -> Result<Vec<ItemLoss>, BackendError> {
    let chunk = backend.batch_documents(false).max(1);
    let mut out = Vec::with_capacity(items.len());
    for (c, batch) in items.chunks(chunk).enumerate() {
        if stop() {
            break;
        }
        let first = c * chunk;
        if rolling {
            let texts: Vec<String> = batch
                .iter()
                .map(|i| format!("{}{}", i.prompt, request(i).continuation))
                .collect();
            let answers = backend.loglikelihood_rolling_many(&texts, &mut |_, _| done())?;
            for (k, (item, a)) in batch.iter().zip(answers).enumerate() {
                out.push(loss_of(first + k, item, a.tokens, a.logprob, false));
            }
        } else {
            let docs: Vec<Vec<LoglikelihoodRequest>> =
                batch.iter().map(|i| vec![request(i)]).collect();
            let answers = backend.loglikelihood_many(&docs, &mut |_, _| done())?;
            for (k, (item, a)) in batch.iter().zip(answers).enumerate() {
                let a = a[0];
                out.push(loss_of(
                    first + k,
                    item,
                    a.continuation_tokens,
                    a.logprob,
                    a.truncated,
                ));
            }
        }
    }
    Ok(out)
}

/// Two reports side by side.
#[derive(Debug, Clone, Serialize)]
pub struct PplComparison {
    /// Items compared.
    pub items: usize,
    /// Largest |loss difference| of an item, and which.
    pub max_item_delta: f64,
    /// Index of that item.
    pub max_item_index: usize,
    /// Items whose loss differs by more than the per-item tolerance (0 when none was set).
    pub items_over_tolerance: usize,
    /// Overall loss difference (B - A).
    pub loss_delta: f64,
    /// Overall perplexity difference (B - A).
    pub perplexity_delta: f64,
    /// Largest |overall loss difference| that counts as the same model.
    pub tolerance: f64,
    /// Largest |loss difference| of any one item, when that is checked too.
    pub item_tolerance: Option<f64>,
    /// Whether the overall loss (and each item, with an item tolerance) is within tolerance.
    pub identical: bool,
}

/// Compares two reports; they must cover the same items (same token counts). The verdict is
/// on the overall loss (`tolerance`) and, when `item_tolerance` is given, on every item too.
pub fn compare(
    a: &PplReport,
    b: &PplReport,
    tolerance: f64,
    item_tolerance: Option<f64>,
) -> Result<PplComparison, String> {
    if a.items.len() != b.items.len() {
        return Err(format!(
            "the reports cover {} and {} items: run both on the same data",
            a.items.len(),
            b.items.len()
        ));
    }
    let mut max = (0.0f64, 0usize);
    let mut over = 0;
    for (x, y) in a.items.iter().zip(&b.items) {
        if x.tokens != y.tokens {
            return Err(format!("item {}: {} vs {} tokens: the models tokenize differently, so losses are not comparable item by item", x.index, x.tokens, y.tokens));
        }
        let d = (y.loss - x.loss).abs();
        if item_tolerance.is_some_and(|t| d > t || d.is_nan()) {
            over += 1;
        }
        if d > max.0 || d.is_nan() {
            max = (d, x.index);
        }
    }
    let loss_delta = b.overall.loss - a.overall.loss;
    let perplexity_delta = b.overall.perplexity - a.overall.perplexity;
    Ok(PplComparison {
        items: a.items.len(),
        max_item_delta: max.0,
        max_item_index: max.1,
        items_over_tolerance: over,
        loss_delta,
        perplexity_delta,
        tolerance,
        item_tolerance,
        identical: over == 0 && loss_delta.abs() <= tolerance && !max.0.is_nan(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(index: usize, source: &str, tokens: usize, nll: f64) -> ItemLoss {
        ItemLoss {
            index,
            source: source.into(),
            difficulty: "hard".into(),
            domain: "d".into(),
            tokens,
            nll,
            loss: nll / tokens as f64,
            truncated: false,
        }
    }

    #[test]
    fn groups_are_token_weighted() {
        let r = PplReport::new(
            Value::Null,
            vec![loss(0, "A", 10, 10.0), loss(1, "B", 30, 60.0)],
        );
        assert_eq!(r.overall.tokens, 40);
        assert!((r.overall.loss - 70.0 / 40.0).abs() < 1e-12);
        assert!((r.overall.perplexity - (70.0f64 / 40.0).exp()).abs() < 1e-12);
        assert!((r.by_source["A"].loss - 1.0).abs() < 1e-12);
        assert_eq!(r.by_difficulty["hard"].items, 2);
    }

    #[test]
    fn comparison_judges_the_overall_loss_and_items_when_asked() {
        let a = PplReport::new(
            Value::Null,
            vec![loss(0, "A", 10, 10.0), loss(1, "A", 10, 20.0)],
        );
        let b = PplReport::new(
            Value::Null,
            vec![loss(0, "A", 10, 10.0000001), loss(1, "A", 10, 20.0)],
        );
        assert!(compare(&a, &b, 1e-4, Some(1e-4)).unwrap().identical);
        // Item 0 moves by 0.05 nats per token, the overall loss by 0.025.
        let c = PplReport::new(
            Value::Null,
            vec![loss(0, "A", 10, 10.5), loss(1, "A", 10, 20.0)],
        );
        let d = compare(&a, &c, 1e-2, None).unwrap();
        assert!(!d.identical, "the overall loss moved by more than 1e-2");
        assert_eq!((d.items_over_tolerance, d.max_item_index), (0, 0));
        assert!((d.max_item_delta - 0.05).abs() < 1e-12);
        assert!(compare(&a, &c, 3e-2, None).unwrap().identical);
        let strict = compare(&a, &c, 3e-2, Some(1e-2)).unwrap();
        assert!(!strict.identical, "one item is beyond the item tolerance");
        assert_eq!(strict.items_over_tolerance, 1);
        let e = PplReport::new(
            Value::Null,
            vec![loss(0, "A", 11, 10.0), loss(1, "A", 10, 20.0)],
        );
        assert!(compare(&a, &e, 1e-4, None)
            .unwrap_err()
            .contains("tokenize differently"));
    }

    #[test]
    fn continuation_gets_a_space_only_when_needed() {
        let item = |p: &str, r: &str| Item {
            prompt: p.into(),
            response: r.into(),
            metadata: Default::default(),
        };
        assert_eq!(request(&item("Answer:", "B. x")).continuation, " B. x");
        assert_eq!(
            request(&item("def f():\n", "    return 1")).continuation,
            "    return 1"
        );
        assert_eq!(request(&item("Q: ", "yes")).continuation, "yes");
    }
}
