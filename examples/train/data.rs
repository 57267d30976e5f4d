//! The task of the `train` example: next-token prediction on sequences
//! from a fixed random second-order Markov chain over `V` tokens. Every
//! context (previous token or BOS, current token) has three possible
//! successors with random probabilities, so an untrained model scores about
//! `ln V` and the best possible score is the chain's conditional entropy
//! (the "floor").

/// SplitMix64: small, seedable, good enough for data and initialisation.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

// ---------------------------------------------------------------- data

/// Successors per context.
const BRANCH: usize = 3;

/// A fixed random second-order Markov chain; context `(prev, cur)` with
/// `prev = V` meaning BOS.
pub struct Chain {
    vocab: usize,
    /// `[(V+1)·V]` contexts × `BRANCH` (token, probability).
    next: Vec<[(usize, f64); BRANCH]>,
}

/// One batch: `rows` examples of (previous token or BOS, current token, next token).
pub struct Batch {
    /// Current tokens.
    pub cur: Vec<usize>,
    /// Previous tokens, `V` for BOS.
    pub prev: Vec<usize>,
    /// Tokens to predict.
    pub target: Vec<usize>,
}

impl Chain {
    /// A random chain over `vocab` tokens.
    pub fn new(vocab: usize, rng: &mut Rng) -> Self {
        let next = (0..(vocab + 1) * vocab)
            .map(|_| {
                let mut toks = [usize::MAX; BRANCH];
                for i in 0..BRANCH.min(vocab) {
                    toks[i] = loop {
                        let t = rng.below(vocab);
                        if !toks[..i].contains(&t) {
                            break t;
                        }
                    };
                }
                let w: Vec<f64> = (0..BRANCH).map(|_| (1.5 * rng.normal()).exp()).collect();
                let sum: f64 = w
                    .iter()
                    .zip(&toks)
                    .filter(|(_, t)| **t != usize::MAX)
                    .map(|(w, _)| w)
                    .sum();
                std::array::from_fn(|i| {
                    (
                        toks[i],
                        if toks[i] == usize::MAX {
                            0.0
                        } else {
                            w[i] / sum
                        },
                    )
                })
            })
            .collect();
        Self { vocab, next }
    }

    fn sample(&self, prev: usize, cur: usize, rng: &mut Rng) -> usize {
        let mut r = rng.uniform();
        let succ = &self.next[prev * self.vocab + cur];
        for &(t, p) in succ {
            if r < p {
                return t;
            }
            r -= p;
        }
        succ[0].0
    }

    /// The chain's probability of `next` after `(prev, cur)`.
    pub fn prob(&self, prev: usize, cur: usize, next: usize) -> f64 {
        let succ = &self.next[prev * self.vocab + cur];
        succ.iter()
            .filter(|(t, _)| *t == next)
            .map(|(_, p)| p)
            .sum()
    }

    /// `batch` sequences of `seq + 1` tokens, as `batch·seq` examples.
    pub fn batch(&self, batch: usize, seq: usize, rng: &mut Rng) -> Batch {
        let rows = batch * seq;
        let (mut cur, mut prev, mut target) = (
            Vec::with_capacity(rows),
            Vec::with_capacity(rows),
            Vec::with_capacity(rows),
        );
        for _ in 0..batch {
            let (mut p, mut c) = (self.vocab, rng.below(self.vocab));
            for _ in 0..seq {
                let n = self.sample(p, c, rng);
                cur.push(c);
                prev.push(p);
                target.push(n);
                (p, c) = (c, n);
            }
        }
        Batch { cur, prev, target }
    }

    /// Mean `−ln p(target)` under the chain: the best loss any model can get.
    pub fn entropy(&self, b: &Batch) -> f64 {
        let s: f64 = (0..b.cur.len())
            .map(|i| -self.prob(b.prev[i], b.cur[i], b.target[i]).ln())
            .sum();
        s / b.cur.len() as f64
    }
}
