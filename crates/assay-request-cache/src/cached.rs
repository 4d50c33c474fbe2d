//! The request cache in front of any backend: answers found in the cache are returned without
//! asking the backend; the others are asked for in one batch and stored as they arrive.

use assay_backend::{
    Backend, BackendError, BackendInfo, GenerationSink, LoglikelihoodSink, RequestStats,
    RollingSink,
};
use assay_core::{
    Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, Primitive,
    RollingLoglikelihood,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::{request_key, Entry, RequestCache, StoreError};

/// How many answers a run took from the cache and how many it asked the backend for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheCounts {
    /// Answers read from the cache.
    pub hits: u64,
    /// Answers asked of the backend (and stored).
    pub misses: u64,
}

/// A backend whose answers go through the request cache.
pub struct CachedBackend<B: ?Sized> {
    inner: Box<B>,
    cache: RequestCache,
    /// A readable name of backend and model, filed beside each answer.
    label: String,
    counts: CacheCounts,
}

impl<B: Backend + ?Sized> CachedBackend<B> {
    /// Puts `cache` in front of `inner`.
    pub fn new(inner: Box<B>, cache: RequestCache) -> CachedBackend<B> {
        let info = inner.info();
        let label = format!("{} {}", info.backend, info.model_name);
        CachedBackend {
            inner,
            cache,
            label,
            counts: CacheCounts::default(),
        }
    }

    /// Hits and misses so far.
    pub fn counts(&self) -> CacheCounts {
        self.counts
    }

    /// The cache file.
    pub fn cache_path(&self) -> &std::path::Path {
        self.cache.path()
    }

    /// The content hashes of `requests` for `primitive` under the backend's current scope.
    fn keys<R: Serialize>(&self, primitive: Primitive, requests: &[R]) -> Vec<String> {
        let scope = self.inner.answer_scope(primitive);
        requests
            .iter()
            .map(|r| request_key(&(&scope, primitive.name(), r)))
            .collect()
    }

    /// Cached answers of `keys` (`None` where absent or unreadable).
    fn lookup<T: DeserializeOwned>(&self, keys: &[String]) -> Result<Vec<Option<T>>, BackendError> {
        Ok(self
            .cache
            .get_many(keys)
            .map_err(cache_error)?
            .into_iter()
            .map(|a| a.and_then(|text| serde_json::from_str(&text).ok()))
            .collect())
    }
}

/// Stores answers of one primitive under their keys, one transaction per call.
struct Writer<'a> {
    cache: &'a RequestCache,
    primitive: Primitive,
    label: &'a str,
    /// The first write error; the run stops with it once the backend returns.
    failed: Option<StoreError>,
}

impl Writer<'_> {
    fn write<T: Serialize>(&mut self, answers: &[(&str, &T)]) {
        if self.failed.is_some() {
            return;
        }
        let texts: Vec<String> = answers
            .iter()
            .map(|(_, a)| serde_json::to_string(a).expect("answers serialise"))
            .collect();
        let entries: Vec<Entry<'_>> = answers
            .iter()
            .zip(&texts)
            .map(|((key, _), text)| Entry {
                key,
                primitive: self.primitive.name(),
                model: self.label,
                answer: text,
            })
            .collect();
        if let Err(e) = self.cache.put_many(&entries) {
            self.failed = Some(e);
        }
    }

    fn finish(self) -> Result<(), BackendError> {
        self.failed.map_or(Ok(()), |e| Err(cache_error(e)))
    }
}

fn cache_error(e: StoreError) -> BackendError {
    BackendError::Cache(e.to_string())
}

impl<B: Backend + ?Sized> Backend for CachedBackend<B> {
    fn info(&self) -> &BackendInfo {
        self.inner.info()
    }

    fn answer_scope(&self, primitive: Primitive) -> serde_json::Value {
        self.inner.answer_scope(primitive)
    }

    fn loglikelihood_many(
        &mut self,
        docs: &[Vec<LoglikelihoodRequest>],
        done: &mut LoglikelihoodSink<'_>,
    ) -> Result<Vec<Vec<Loglikelihood>>, BackendError> {
        let keys: Vec<Vec<String>> = docs
            .iter()
            .map(|d| self.keys(Primitive::Loglikelihood, d))
            .collect();
        let flat: Vec<String> = keys.iter().flatten().cloned().collect();
        let mut cached = self.lookup::<Loglikelihood>(&flat)?.into_iter();
        let mut answers: Vec<Vec<Option<Loglikelihood>>> = keys
            .iter()
            .map(|k| cached.by_ref().take(k.len()).collect())
            .collect();
        // Ask for what is missing: per document, only its missing requests.
        let mut asked: Vec<(usize, Vec<usize>)> = Vec::new();
        for (d, doc) in answers.iter().enumerate() {
            let hits: Vec<(usize, Loglikelihood)> = doc
                .iter()
                .enumerate()
                .filter_map(|(r, a)| a.map(|a| (r, a)))
                .collect();
            self.counts.hits += hits.len() as u64;
            if !hits.is_empty() {
                done(d, &hits);
            }
            let missing: Vec<usize> = (0..doc.len()).filter(|&r| doc[r].is_none()).collect();
            if !missing.is_empty() {
                asked.push((d, missing));
            }
        }
        if asked.is_empty() {
            return Ok(fill(answers));
        }
        let sub_docs: Vec<Vec<LoglikelihoodRequest>> = asked
            .iter()
            .map(|(d, missing)| missing.iter().map(|&r| docs[*d][r].clone()).collect())
            .collect();
        let mut writer = Writer {
            cache: &self.cache,
            primitive: Primitive::Loglikelihood,
            label: &self.label,
            failed: None,
        };
        let result =
            self.inner
                .loglikelihood_many(&sub_docs, &mut |i, part: &[(usize, Loglikelihood)]| {
                    let (d, missing) = &asked[i];
                    let entries: Vec<(&str, &Loglikelihood)> = part
                        .iter()
                        .map(|(r, a)| (keys[*d][missing[*r]].as_str(), a))
                        .collect();
                    writer.write(&entries);
                    let mapped: Vec<(usize, Loglikelihood)> =
                        part.iter().map(|(r, a)| (missing[*r], *a)).collect();
                    done(*d, &mapped);
                });
        writer.finish()?;
        let computed = result?;
        for ((d, missing), got) in asked.iter().zip(computed) {
            self.counts.misses += got.len() as u64;
            for (r, a) in missing.iter().zip(got) {
                answers[*d][*r] = Some(a);
            }
        }
        Ok(fill(answers))
    }

    fn loglikelihood_rolling_many(
        &mut self,
        texts: &[String],
        done: &mut RollingSink<'_>,
    ) -> Result<Vec<RollingLoglikelihood>, BackendError> {
        let keys = self.keys(Primitive::LoglikelihoodRolling, texts);
        let answers = self.lookup::<RollingLoglikelihood>(&keys)?;
        let mut writer = Writer {
            cache: &self.cache,
            primitive: Primitive::LoglikelihoodRolling,
            label: &self.label,
            failed: None,
        };
        let inner = &mut self.inner;
        let result = one_per_document(answers, texts, &mut self.counts, done, |asked, report| {
            inner.loglikelihood_rolling_many(asked.items, &mut |i, a| {
                writer.write(&[(keys[asked.index[i]].as_str(), a)]);
                report(asked.index[i], a);
            })
        });
        writer.finish()?;
        result
    }

    fn generate_until_many(
        &mut self,
        requests: &[GenerationRequest],
        done: &mut GenerationSink<'_>,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        let keys = self.keys(Primitive::GenerateUntil, requests);
        let answers = self.lookup::<Vec<Generation>>(&keys)?;
        let mut writer = Writer {
            cache: &self.cache,
            primitive: Primitive::GenerateUntil,
            label: &self.label,
            failed: None,
        };
        let inner = &mut self.inner;
        let result = one_per_document(
            answers,
            requests,
            &mut self.counts,
            &mut |d, a: &Vec<Generation>| done(d, a),
            |asked, report| {
                inner.generate_until_many(asked.items, &mut |i, a| {
                    let samples = a.to_vec();
                    writer.write(&[(keys[asked.index[i]].as_str(), &samples)]);
                    report(asked.index[i], &samples);
                })
            },
        );
        writer.finish()?;
        result
    }

    fn set_shared_prefix(&mut self, prefix: Option<&str>) -> Result<(), BackendError> {
        self.inner.set_shared_prefix(prefix)
    }

    fn batch_documents(&self, generation: bool) -> usize {
        self.inner.batch_documents(generation)
    }

    fn request_stats(&self) -> Option<std::sync::Arc<RequestStats>> {
        self.inner.request_stats()
    }

    fn chat_template(&self) -> Option<String> {
        self.inner.chat_template()
    }

    fn tokens_processed(&self) -> u64 {
        self.inner.tokens_processed()
    }
}

/// The requests of a batch that the cache did not answer, and their places in the batch.
struct Asked<'a, R> {
    items: &'a [R],
    index: &'a [usize],
}

/// Answers a batch of one-answer-per-document requests: cached answers are reported at once,
/// the rest asked for with `ask`, which reports each as it arrives.
fn one_per_document<R: Clone, T: Clone>(
    cached: Vec<Option<T>>,
    requests: &[R],
    counts: &mut CacheCounts,
    report: &mut dyn FnMut(usize, &T),
    ask: impl FnOnce(Asked<'_, R>, &mut dyn FnMut(usize, &T)) -> Result<Vec<T>, BackendError>,
) -> Result<Vec<T>, BackendError> {
    let mut answers = cached;
    let mut index = Vec::new();
    for (d, a) in answers.iter().enumerate() {
        match a {
            Some(a) => {
                counts.hits += 1;
                report(d, a);
            }
            None => index.push(d),
        }
    }
    if !index.is_empty() {
        let items: Vec<R> = index.iter().map(|&d| requests[d].clone()).collect();
        let computed = ask(
            Asked {
                items: &items,
                index: &index,
            },
            report,
        )?;
        counts.misses += computed.len() as u64;
        for (&d, a) in index.iter().zip(computed) {
            answers[d] = Some(a);
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.expect("every request answered"))
        .collect())
}

fn fill(answers: Vec<Vec<Option<Loglikelihood>>>) -> Vec<Vec<Loglikelihood>> {
    answers
        .into_iter()
        .map(|d| {
            d.into_iter()
                .map(|a| a.expect("every request answered"))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_backend::fake::FakeBackend;
    use assay_core::Sampling;

    fn ll(context: &str, continuation: &str) -> LoglikelihoodRequest {
        LoglikelihoodRequest {
            context: context.into(),
            continuation: continuation.into(),
        }
    }

    #[test]
    fn a_request_answered_before_a_failure_is_not_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let docs = vec![
            vec![ll("q1", " a"), ll("q1", " bb")],
            vec![ll("q2", " a"), ll("q2", " ccc")],
        ];
        let mut first = FakeBackend::new();
        first.fail_after = Some(3);
        let mut cached = CachedBackend::new(Box::new(first), RequestCache::open(&path).unwrap());
        let mut seen = Vec::new();
        let err = cached.loglikelihood_many(&docs, &mut |d, part| seen.push((d, part.len())));
        assert!(err.is_err());
        assert_eq!(seen, vec![(0, 1), (0, 1), (1, 1)]);

        // The next run asks only for the one request that was never answered.
        let mut again = CachedBackend::new(
            Box::new(FakeBackend::new()),
            RequestCache::open(&path).unwrap(),
        );
        let answers = again.loglikelihood_many(&docs, &mut |_, _| {}).unwrap();
        assert_eq!(again.inner.asked, 1);
        assert_eq!(again.counts(), CacheCounts { hits: 3, misses: 1 });
        let logprobs: Vec<Vec<f64>> = answers
            .iter()
            .map(|d| d.iter().map(|a| a.logprob).collect())
            .collect();
        assert_eq!(logprobs, vec![vec![-2.0, -3.0], vec![-2.0, -4.0]]);
    }

    #[test]
    fn generation_and_rolling_answers_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let request = |context: &str, seed| GenerationRequest {
            context: context.into(),
            until: vec![],
            max_gen_toks: 4,
            sampling: Sampling {
                seed,
                ..Sampling::greedy()
            },
            n: 1,
        };
        let mut cached = CachedBackend::new(
            Box::new(FakeBackend::new()),
            RequestCache::open(&path).unwrap(),
        );
        cached
            .generate_until_many(&[request("b", 0)], &mut |_, _| {})
            .unwrap();
        let mut order = Vec::new();
        let out = cached
            .generate_until_many(
                &[request("a", 0), request("b", 0), request("b", 1)],
                &mut |d, _| order.push(d),
            )
            .unwrap();
        let texts: Vec<&str> = out.iter().map(|g| g[0].text.as_str()).collect();
        assert_eq!(texts, ["A", "B", "B"]);
        // The cached document is reported first; a different seed is a different request.
        assert_eq!(order, [1, 0, 2]);
        assert_eq!(cached.inner.asked, 3);

        let texts = vec!["xx".to_string(), "yyy".to_string()];
        let first = cached
            .loglikelihood_rolling_many(&texts, &mut |_, _| {})
            .unwrap();
        let second = cached
            .loglikelihood_rolling_many(&texts, &mut |_, _| {})
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(cached.inner.asked, 5);
    }
}
