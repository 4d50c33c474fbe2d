//! A bit-exact port of CPython 3's `random.Random` (Mersenne Twister MT19937) for the operations
//! lm-eval's few-shot sampler uses: seeding from a non-negative integer, `random()`,
//! `getrandbits(k)`, `_randbelow(n)`, `sample(range(n), k)` and `shuffle(x)`.
//!
//! The same seed gives the same stream of draws as Python, so assay picks the same few-shot
//! examples as lm-eval. The expected values in the tests below were printed by CPython 3.11.

use std::collections::HashSet;

/// Why a [`PyRandom`] operation refused its arguments (where Python would raise `ValueError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyRandomError {
    /// `sample(range(n), k)` with `k > n`.
    #[error("sample larger than population: k = {k} > n = {n}")]
    SampleLargerThanPopulation { n: usize, k: usize },
    /// `getrandbits(k)` with `k > 64`, which does not fit the `u64` this port returns.
    #[error("getrandbits({0}) does not fit in 64 bits")]
    TooManyBits(u32),
}

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython's `random.Random`: an MT19937 generator seeded the way `random.Random(seed)` seeds it.
#[derive(Clone)]
pub struct PyRandom {
    mt: [u32; N],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative integer seed: `init_by_array` with the seed split
    /// into 32-bit words, least significant first (seed 0 gives the key `[0]`).
    pub fn new(seed: u64) -> Self {
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        let key: &[u32] = if high == 0 { &[low] } else { &[low, high] };
        Self::from_key(key)
    }

    /// MT19937's `init_by_array` with the given key (an empty key is treated as `[0]`, as
    /// CPython does for the seed 0).
    pub fn from_key(key: &[u32]) -> Self {
        let key: &[u32] = if key.is_empty() { &[0] } else { key };
        let mut mt = Self::init_genrand(19_650_218);
        let mut i = 1usize;
        let mut j = 0usize;
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        Self { mt, index: N }
    }

    fn init_genrand(s: u32) -> [u32; N] {
        let mut mt = [0u32; N];
        mt[0] = s;
        for i in 1..N {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = prev.wrapping_mul(1_812_433_253).wrapping_add(i as u32);
        }
        mt
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.mt[i] & UPPER_MASK) | (self.mt[(i + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.mt[i] = self.mt[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// The next tempered 32-bit output of MT19937 (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `random()`: a float in [0, 1) with 53 random bits, from two 32-bit outputs.
    pub fn random(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `getrandbits(k)` for `k <= 64`; larger `k` is refused since the result is a `u64`.
    pub fn getrandbits(&mut self, k: u32) -> Result<u64, PyRandomError> {
        if k > 64 {
            return Err(PyRandomError::TooManyBits(k));
        }
        Ok(self.bits(k))
    }

    /// `getrandbits(k)` for `k <= 64`: 32-bit words are filled least significant first, and the
    /// last (most significant) word keeps only the top bits of its output.
    fn bits(&mut self, k: u32) -> u64 {
        debug_assert!(k <= 64);
        match k {
            0 => 0,
            1..=32 => (self.next_u32() >> (32 - k)) as u64,
            _ => {
                let low = self.next_u32() as u64;
                let high = (self.next_u32() >> (64 - k)) as u64;
                low | (high << 32)
            }
        }
    }

    /// `_randbelow(n)` (CPython's `_randbelow_with_getrandbits`): draw `getrandbits(k)` with
    /// `k = n.bit_length()` until it is below `n`. Python loops forever on `n == 0`; this returns
    /// 0 without drawing.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.bits(k);
            if r < n {
                return r;
            }
        }
    }

    fn randbelow_usize(&mut self, n: usize) -> usize {
        self.randbelow(n as u64) as usize
    }

    /// The indices `random.sample(range(n), k)` returns, in order, following CPython 3.11: a
    /// partial Fisher-Yates over a pool when `n` is at most the set size, otherwise rejection
    /// against a set of the indices already selected. `k > n` is an error, as in Python.
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Result<Vec<usize>, PyRandomError> {
        if k > n {
            return Err(PyRandomError::SampleLargerThanPopulation { n, k });
        }
        let mut result = Vec::with_capacity(k);
        if n <= sample_setsize(k) {
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow_usize(n - i);
                result.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.randbelow_usize(n);
                while selected.contains(&j) {
                    j = self.randbelow_usize(n);
                }
                selected.insert(j);
                result.push(j);
            }
        }
        Ok(result)
    }

    /// `random.sample(population, k)`: clones of the elements at [`Self::sample_indices`].
    pub fn sample<T: Clone>(
        &mut self,
        population: &[T],
        k: usize,
    ) -> Result<Vec<T>, PyRandomError> {
        Ok(self
            .sample_indices(population.len(), k)?
            .into_iter()
            .map(|i| population[i].clone())
            .collect())
    }

    /// `random.shuffle(x)` in place: for `i` from `len - 1` down to 1, swap `x[i]` with
    /// `x[randbelow(i + 1)]`.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow_usize(i + 1);
            x.swap(i, j);
        }
    }

    /// `x = list(range(n)); random.shuffle(x); x`.
    pub fn shuffle_indices(&mut self, n: usize) -> Vec<usize> {
        let mut x: Vec<usize> = (0..n).collect();
        self.shuffle(&mut x);
        x
    }
}

/// The threshold in CPython 3.11's `sample`: 21, plus `4 ** ceil(log(3 * k, 4))` when `k > 5`,
/// with the logarithm taken in floating point as Python's `math.log(x, 4)` does.
fn sample_setsize(k: usize) -> usize {
    let mut setsize = 21usize;
    if k > 5 {
        let exponent = (((k * 3) as f64).ln() / 4f64.ln()).ceil() as u32;
        setsize = setsize.saturating_add(4usize.saturating_pow(exponent));
    }
    setsize
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: u64 = (1 << 40) + 7;

    // python3 -c "import random; R=random.Random; print([repr(R(s).random()) for s in (0,1234,42,2**40+7)])"
    #[test]
    fn first_random_matches_python() {
        assert_eq!(PyRandom::new(0).random(), 0.8444218515250481);
        assert_eq!(PyRandom::new(1234).random(), 0.9664535356921388);
        assert_eq!(PyRandom::new(42).random(), 0.6394267984578837);
        assert_eq!(PyRandom::new(BIG).random(), 0.6137037779936511);
    }

    // python3 -c "import random; r=random.Random(1234); print([repr(r.random()) for _ in range(3)])"
    #[test]
    fn random_stream_matches_python() {
        let mut r = PyRandom::new(1234);
        let got: Vec<f64> = (0..3).map(|_| r.random()).collect();
        assert_eq!(
            got,
            [0.9664535356921388, 0.4407325991753527, 0.007491470058587191]
        );
        let mut r = PyRandom::new(0);
        let got: Vec<f64> = (0..3).map(|_| r.random()).collect();
        assert_eq!(
            got,
            [0.8444218515250481, 0.7579544029403025, 0.420571580830845]
        );
    }

    // python3 -c "import random; [print(s, [(r:=random.Random(s)).getrandbits(32)] + [r.getrandbits(32) for _ in range(2)]) for s in (0,1234,42,2**40+7)]"
    #[test]
    fn getrandbits_32_matches_python() {
        let cases: [(u64, [u64; 3]); 4] = [
            (0, [3626764237, 1654615998, 3255389356]),
            (1234, [4150886329, 3342196574, 1892932127]),
            (42, [2746317213, 478163327, 107420369]),
            (BIG, [2635837658, 3209733218, 3500038837]),
        ];
        for (seed, expected) in cases {
            let mut r = PyRandom::new(seed);
            let got: Vec<u64> = (0..3).map(|_| r.getrandbits(32).unwrap()).collect();
            assert_eq!(got, expected, "seed {seed}");
        }
    }

    // python3 -c "import random; [print(s, [(r:=random.Random(s)).getrandbits(1)] + [r.getrandbits(k) for k in (7,33,40,64,0,5)]) for s in (0,1234,42,2**40+7)]"
    #[test]
    fn getrandbits_widths_match_python() {
        let cases: [(u64, [u64; 7]); 4] = [
            (
                0,
                [1, 49, 7550356652, 44756014165, 17809683713383489082, 0, 16],
            ),
            (
                1234,
                [1, 99, 1892932127, 98816423444, 17386697504169769072, 0, 30],
            ),
            (
                42,
                [1, 14, 4402387665, 267469214295, 2574020394472462046, 0, 23],
            ),
            (
                BIG,
                [1, 95, 7795006133, 704138462757, 13015927955237707764, 0, 15],
            ),
        ];
        for (seed, expected) in cases {
            let mut r = PyRandom::new(seed);
            let got: Vec<u64> = [1, 7, 33, 40, 64, 0, 5]
                .iter()
                .map(|&k| r.getrandbits(k).unwrap())
                .collect();
            assert_eq!(got, expected, "seed {seed}");
        }
        assert_eq!(
            PyRandom::new(0).getrandbits(65),
            Err(PyRandomError::TooManyBits(65))
        );
    }

    // python3 -c "import random; [print(s, [(r:=random.Random(s))._randbelow(1)] + [r._randbelow(n) for n in (2,3,10,1000,7473,2**40)]) for s in (0,1234,42,2**40+7)]"
    #[test]
    fn randbelow_matches_python() {
        let cases: [(u64, [u64; 7]); 4] = [
            (0, [0, 1, 0, 4, 988, 4188, 891145273829]),
            (1234, [0, 0, 0, 1, 932, 6610, 75515092441]),
            (42, [0, 0, 2, 4, 250, 1828, 191320892468]),
            (BIG, [0, 1, 2, 2, 529, 3074, 864848161417]),
        ];
        for (seed, expected) in cases {
            let mut r = PyRandom::new(seed);
            let got: Vec<u64> = [1, 2, 3, 10, 1000, 7473, 1 << 40]
                .iter()
                .map(|&n| r.randbelow(n))
                .collect();
            assert_eq!(got, expected, "seed {seed}");
        }
        assert_eq!(PyRandom::new(0).randbelow(0), 0);
    }

    fn sample(seed: u64, n: usize, k: usize) -> Vec<usize> {
        PyRandom::new(seed).sample_indices(n, k).unwrap()
    }

    // python3 -c "import random; [print(s, n, k, random.Random(s).sample(range(n), k)) for s in (0,1234,42,2**40+7) for n, k in ((1000,5),(7473,5),(7473,8),(22,5))]"
    // All of these take the set branch (n > setsize: 21 for k <= 5, 85 for k = 8).
    #[test]
    fn sample_set_branch_matches_python() {
        assert_eq!(sample(0, 1000, 5), [864, 394, 776, 911, 430]);
        assert_eq!(sample(1234, 1000, 5), [989, 796, 451, 119, 7]);
        assert_eq!(sample(42, 1000, 5), [654, 114, 25, 759, 281]);
        assert_eq!(sample(BIG, 1000, 5), [628, 765, 834, 960, 967]);
        assert_eq!(sample(0, 7473, 5), [6917, 3155, 6209, 7292, 3445]);
        assert_eq!(sample(1234, 7473, 5), [6374, 3610, 957, 61, 742]);
        assert_eq!(sample(42, 7473, 5), [5238, 912, 204, 6074, 2253]);
        assert_eq!(sample(BIG, 7473, 5), [5027, 6122, 6675, 5238, 4672]);
        assert_eq!(
            sample(0, 7473, 8),
            [6917, 3155, 6209, 7292, 3445, 331, 2121, 4188]
        );
        assert_eq!(
            sample(1234, 7473, 8),
            [6374, 3610, 957, 61, 742, 7462, 6610, 4769]
        );
        assert_eq!(
            sample(42, 7473, 8),
            [5238, 912, 204, 6074, 2253, 2006, 1828, 1143]
        );
        assert_eq!(
            sample(BIG, 7473, 8),
            [5027, 6122, 6675, 5238, 4672, 5780, 3898, 2054]
        );
        assert_eq!(sample(0, 22, 5), [12, 13, 1, 8, 16]);
        assert_eq!(sample(1234, 22, 5), [14, 3, 0, 2, 18]);
        assert_eq!(sample(42, 22, 5), [20, 3, 0, 8, 7]);
        assert_eq!(sample(BIG, 22, 5), [19, 20, 18, 15, 8]);
    }

    // python3 -c "import random; print(random.Random(11).sample(range(22), 5))"
    // Seed 11 draws two indices already selected, exercising the rejection loop.
    #[test]
    fn sample_set_branch_rejects_repeats_like_python() {
        assert_eq!(sample(11, 22, 5), [14, 17, 16, 18, 6]);
    }

    // python3 -c "import random; [print(s, n, k, random.Random(s).sample(range(n), k)) for s in (0,1234,42,2**40+7) for n, k in ((10,10),(50,30),(1,1),(100,0))]"
    // (10, 10) and (50, 30) take the pool branch (setsize 85 and 277).
    #[test]
    fn sample_pool_branch_matches_python() {
        assert_eq!(sample(0, 10, 10), [6, 9, 0, 2, 4, 3, 5, 1, 8, 7]);
        assert_eq!(sample(1234, 10, 10), [7, 1, 0, 9, 4, 6, 5, 3, 8, 2]);
        assert_eq!(sample(42, 10, 10), [1, 0, 4, 9, 6, 5, 8, 2, 3, 7]);
        assert_eq!(sample(BIG, 10, 10), [9, 7, 4, 8, 1, 6, 3, 2, 5, 0]);
        assert_eq!(
            sample(0, 50, 30),
            [
                24, 48, 26, 2, 16, 32, 31, 25, 19, 30, 22, 37, 13, 44, 8, 18, 35, 6, 45, 29, 17,
                39, 42, 41, 4, 9, 3, 46, 21, 10
            ]
        );
        assert_eq!(
            sample(1234, 50, 30),
            [
                49, 28, 7, 0, 5, 37, 2, 42, 45, 6, 22, 15, 1, 44, 36, 39, 30, 29, 9, 43, 41, 34, 3,
                46, 16, 38, 47, 33, 21, 17
            ]
        );
        assert_eq!(
            sample(42, 50, 30),
            [
                40, 7, 1, 17, 15, 14, 8, 6, 34, 5, 37, 27, 2, 47, 49, 13, 44, 32, 36, 46, 42, 22,
                20, 28, 30, 41, 48, 33, 18, 43
            ]
        );
        assert_eq!(
            sample(BIG, 50, 30),
            [
                39, 47, 40, 36, 45, 30, 16, 49, 8, 33, 24, 48, 23, 25, 28, 35, 37, 14, 34, 42, 19,
                5, 4, 38, 43, 26, 18, 31, 1, 41
            ]
        );
        for seed in [0, 1234, 42, BIG] {
            assert_eq!(sample(seed, 1, 1), [0]);
            assert_eq!(sample(seed, 100, 0), Vec::<usize>::new());
        }
    }

    // python3 -c "import random; r=random.Random(1234); print(r.sample(range(1000),5), r.sample(range(1000),5))"
    #[test]
    fn successive_samples_continue_the_stream() {
        let mut r = PyRandom::new(1234);
        assert_eq!(r.sample_indices(1000, 5).unwrap(), [989, 796, 451, 119, 7]);
        assert_eq!(r.sample_indices(1000, 5).unwrap(), [92, 932, 965, 961, 826]);
        let mut r = PyRandom::new(0);
        assert_eq!(
            r.sample_indices(1000, 5).unwrap(),
            [864, 394, 776, 911, 430]
        );
        assert_eq!(r.sample_indices(1000, 5).unwrap(), [41, 265, 988, 523, 497]);
    }

    // python3 -c "import random; print(random.Random(1234).sample('abcdefghij', 10))"
    #[test]
    fn sample_of_elements_and_errors() {
        let docs = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let got = PyRandom::new(1234).sample(&docs, 10).unwrap();
        assert_eq!(got, ["h", "b", "a", "j", "e", "g", "f", "d", "i", "c"]);
        assert_eq!(
            PyRandom::new(0).sample_indices(3, 4),
            Err(PyRandomError::SampleLargerThanPopulation { n: 3, k: 4 })
        );
    }

    // python3 -c "import random; [print(s, (x:=list(range(10)), random.Random(s).shuffle(x))[0]) for s in (0,1234,42,2**40+7)]"
    #[test]
    fn shuffle_matches_python() {
        assert_eq!(
            PyRandom::new(0).shuffle_indices(10),
            [7, 8, 1, 5, 3, 4, 2, 0, 9, 6]
        );
        assert_eq!(
            PyRandom::new(1234).shuffle_indices(10),
            [2, 8, 3, 5, 6, 4, 9, 0, 1, 7]
        );
        assert_eq!(
            PyRandom::new(42).shuffle_indices(10),
            [7, 3, 2, 8, 5, 6, 9, 4, 0, 1]
        );
        assert_eq!(
            PyRandom::new(BIG).shuffle_indices(10),
            [0, 5, 2, 3, 6, 1, 8, 4, 7, 9]
        );
        assert_eq!(PyRandom::new(42).shuffle_indices(2), [1, 0]);
        assert_eq!(PyRandom::new(0).shuffle_indices(2), [0, 1]);
        // python3 -c "import random; x=list('abcdefghij'); random.Random(1234).shuffle(x); print(x)"
        let mut letters = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
        PyRandom::new(1234).shuffle(&mut letters);
        assert_eq!(letters, ['c', 'i', 'd', 'f', 'g', 'e', 'j', 'a', 'b', 'h']);
        assert!(PyRandom::new(0).shuffle_indices(0).is_empty());
    }

    // python3 -c "import math; print([21 + (4**math.ceil(math.log(k*3, 4)) if k > 5 else 0) for k in (5,6,10,30,100)])"
    #[test]
    fn setsize_matches_python() {
        let got: Vec<usize> = [5, 6, 10, 30, 100]
            .iter()
            .map(|&k| sample_setsize(k))
            .collect();
        assert_eq!(got, [21, 85, 85, 277, 1045]);
    }

    // python3 -c "import random; r=random.Random(5); [r.random() for _ in range(700)]; print(r.getrandbits(32))"
    #[test]
    fn stream_past_one_twist_matches_python() {
        let mut r = PyRandom::new(5);
        for _ in 0..700 {
            r.random();
        }
        assert_eq!(r.getrandbits(32).unwrap(), 4109901898);
    }
}
