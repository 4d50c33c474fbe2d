//! lm-eval's four seeds (`--seed`): Python's `random`, NumPy's and torch's global generators,
//! which the hook worker seeds before any hook runs, as lm-eval's `simple_evaluate` seeds them
//! before it builds any task, and the few-shot sampler's.

use serde::Serialize;

use crate::FEWSHOT_SEED;

/// The four seeds; `None` leaves that generator unseeded (lm-eval's `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Seeds {
    /// Python's `random` (lm-eval's `random_seed`, default 0).
    pub python: Option<u64>,
    /// NumPy's global generator (`numpy_seed`, default 1234).
    pub numpy: Option<u64>,
    /// torch's global generator (`torch_seed`, default 1234).
    pub torch: Option<u64>,
    /// The few-shot sampler of every task (`fewshot_seed`, default 1234); `None` keeps each
    /// task's own.
    pub fewshot: Option<u64>,
}

impl Default for Seeds {
    /// lm-eval's defaults: 0, 1234, 1234, 1234.
    fn default() -> Self {
        Seeds {
            python: Some(0),
            numpy: Some(1234),
            torch: Some(1234),
            fewshot: Some(FEWSHOT_SEED),
        }
    }
}

impl Seeds {
    /// lm-eval's `--seed` value: one seed for all four, or `python,numpy,torch,fewshot`, each a
    /// whole number or `None`.
    pub fn parse(text: &str) -> Result<Seeds, String> {
        let one = |part: &str| -> Result<Option<u64>, String> {
            match part.trim() {
                "None" => Ok(None),
                n => n
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("--seed {text}: `{n}` is not a whole number or None")),
            }
        };
        let parts: Vec<&str> = text.split(',').collect();
        match parts.as_slice() {
            [all] => {
                let seed = one(all)?;
                Ok(Seeds {
                    python: seed,
                    numpy: seed,
                    torch: seed,
                    fewshot: seed,
                })
            }
            [python, numpy, torch, fewshot] => Ok(Seeds {
                python: one(python)?,
                numpy: one(numpy)?,
                torch: one(torch)?,
                fewshot: one(fewshot)?,
            }),
            _ => Err(format!(
                "--seed {text}: give one seed, or four (python,numpy,torch,fewshot) as lm-eval takes them"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lm_evals_seed_forms() {
        assert_eq!(Seeds::default(), Seeds::parse("0,1234,1234,1234").unwrap());
        let all = Seeds::parse("7").unwrap();
        assert_eq!(
            (all.python, all.torch, all.fewshot),
            (Some(7), Some(7), Some(7))
        );
        let some = Seeds::parse("1,None,3, 4").unwrap();
        assert_eq!(
            (some.python, some.numpy, some.torch, some.fewshot),
            (Some(1), None, Some(3), Some(4))
        );
        assert!(Seeds::parse("1,2").unwrap_err().contains("four"));
        assert!(Seeds::parse("x").unwrap_err().contains("`x`"));
    }
}
