//! The model of the `train` example and its backward pass.
//!
//! No attention: the context is the current and the previous token, embedded
//! by two tables and summed, so the blocks must learn the *interaction* of
//! the two tokens — which the multiplicative gate of a GLU is good at.
//!
//! ```text
//! h = Ecur[tok_t] + Eprev[tok_{t-1}]                     [M, D]
//! h = h + swiglu(h; Wg, bg, Wu, bu) · Wdown              × blocks  (swiglu: [M, H])
//! logits = h · Wout + bout                               [M, V]
//! loss = mean softmax cross-entropy against tok_{t+1}
//! ```
//!
//! The gated FFN (forward with saved pre-activations, backward) is this
//! crate's; the embedding, down and output projections and the loss are
//! written here in plain f32 Rust, with an f64 reference of the whole model
//! for the finite-difference check.

use crate::data::{Batch, Chain, Rng};
use crate::glu::{ACT, Glu, GluSaved, Res};
use rayon::prelude::*;

const ROWS: usize = 16;

/// `c (=|+=) a·b`, row-major, `a: [m, k]`, `b: [k, n]`, `c: [m, n]`.
fn mm(a: &[f32], b: &[f32], k: usize, n: usize, c: &mut [f32], acc: bool) {
    c.par_chunks_mut(ROWS * n)
        .zip(a.par_chunks(ROWS * k))
        .for_each(|(c, a)| {
            for (c, a) in c.chunks_mut(n).zip(a.chunks(k)) {
                if !acc {
                    c.fill(0.0);
                }
                for (&s, b) in a.iter().zip(b.chunks(n)) {
                    c.iter_mut().zip(b).for_each(|(c, b)| *c += s * b);
                }
            }
        });
}

/// `c += aᵀ·b` with `a: [m, k]`, `b: [m, n]`, `c: [k, n]` (weight gradients).
fn mm_tn(a: &[f32], b: &[f32], k: usize, n: usize, c: &mut [f32]) {
    c.par_chunks_mut(n).enumerate().for_each(|(p, c)| {
        for (a, b) in a.chunks(k).zip(b.chunks(n)) {
            let s = a[p];
            if s != 0.0 {
                c.iter_mut().zip(b).for_each(|(c, b)| *c += s * b);
            }
        }
    });
}

/// `b: [k, n]` → `[n, k]`.
fn transpose(b: &[f32], k: usize, n: usize) -> Vec<f32> {
    let mut t = vec![0.0; b.len()];
    for i in 0..k {
        for j in 0..n {
            t[j * k + i] = b[i * n + j];
        }
    }
    t
}

/// Model sizes.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// V.
    pub vocab: usize,
    /// D.
    pub dim: usize,
    /// H.
    pub hidden: usize,
    /// Residual blocks.
    pub blocks: usize,
}

/// All parameters as flat tensors: `Ecur [V,D]`, `Eprev [V+1,D]`, then per
/// block `Wg [D,H]`, `Wu [D,H]`, `bg [H]`, `bu [H]`, `Wdown [H,D]`, then
/// `Wout [D,V]`, `bout [V]`.
pub struct Model {
    /// Sizes.
    pub dims: Dims,
    /// The tensors, in the order above.
    pub params: Vec<Vec<f32>>,
}

const PER_BLOCK: usize = 5;

/// What the forward pass keeps for the backward pass.
struct Cache {
    /// Input of every block, then the final hidden state: `blocks + 1` × `[M, D]`.
    hs: Vec<Vec<f32>>,
    /// Gated FFN output of every block, `[M, H]`.
    acts: Vec<Vec<f32>>,
    saved: Vec<GluSaved>,
    /// Softmax probabilities `[M, V]`.
    probs: Vec<f32>,
}

impl Model {
    /// Random initial weights. `scale` multiplies the output and down
    /// projections (small for training, so the initial loss is about `ln V`;
    /// 1 for the gradient check, so every path carries signal).
    pub fn new(dims: Dims, rng: &mut Rng, scale: f64) -> Self {
        let Dims {
            vocab: v,
            dim: d,
            hidden: h,
            blocks,
        } = dims;
        let mut t = |len: usize, std: f64| -> Vec<f32> {
            (0..len).map(|_| (std * rng.normal()) as f32).collect()
        };
        let mut params = vec![t(v * d, 1.0), t((v + 1) * d, 1.0)];
        for _ in 0..blocks {
            let (sd, sh) = (1.0 / (d as f64).sqrt(), 1.0 / (h as f64).sqrt());
            params.extend([
                t(d * h, sd),
                t(d * h, sd),
                t(h, 0.1 * scale),
                t(h, 0.1 * scale),
                t(h * d, sh * scale),
            ]);
        }
        params.extend([t(d * v, scale / (d as f64).sqrt()), t(v, 0.1 * scale)]);
        Self { dims, params }
    }

    fn block(&self, l: usize) -> [&[f32]; 4] {
        let p = 2 + l * PER_BLOCK;
        [
            &self.params[p],
            &self.params[p + 1],
            &self.params[p + 2],
            &self.params[p + 3],
        ]
    }

    /// Whether tensor `i` gets weight decay (matrices, not biases or embeddings).
    pub fn decays(&self, i: usize) -> bool {
        let blocks_end = 2 + self.dims.blocks * PER_BLOCK;
        match i {
            0 | 1 => false,
            i if i < blocks_end => matches!((i - 2) % PER_BLOCK, 0 | 1 | 4),
            i => i == blocks_end,
        }
    }

    fn forward(&self, glu: &Glu, b: &Batch) -> Res<(f32, Cache)> {
        let Dims {
            vocab: v,
            dim: d,
            hidden: h,
            blocks,
        } = self.dims;
        let m = b.cur.len();
        let mut x = vec![0.0f32; m * d];
        for (i, row) in x.chunks_mut(d).enumerate() {
            let (ec, ep) = (
                &self.params[0][b.cur[i] * d..][..d],
                &self.params[1][b.prev[i] * d..][..d],
            );
            row.iter_mut()
                .zip(ec.iter().zip(ep))
                .for_each(|(r, (c, p))| *r = c + p);
        }
        let (mut hs, mut acts, mut saved) = (Vec::new(), Vec::new(), Vec::new());
        for l in 0..blocks {
            let mut a = vec![0.0f32; m * h];
            saved.push(glu.forward(&x, m, d, self.block(l), &mut a)?);
            let mut next = x.clone();
            mm(
                &a,
                &self.params[2 + l * PER_BLOCK + 4],
                h,
                d,
                &mut next,
                true,
            );
            hs.push(std::mem::replace(&mut x, next));
            acts.push(a);
        }
        let (wo, bo) = (
            &self.params[2 + blocks * PER_BLOCK],
            &self.params[3 + blocks * PER_BLOCK],
        );
        let mut probs = vec![0.0f32; m * v];
        mm(&x, wo, d, v, &mut probs, false);
        hs.push(x);
        let loss: f64 = probs
            .par_chunks_mut(v)
            .zip(&b.target)
            .map(|(row, &t)| {
                row.iter_mut().zip(bo).for_each(|(r, b)| *r += b);
                let mx = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let sum: f32 = row
                    .iter_mut()
                    .map(|r| {
                        *r = (*r - mx).exp();
                        *r
                    })
                    .sum();
                row.iter_mut().for_each(|r| *r /= sum);
                -(row[t].max(f32::MIN_POSITIVE) as f64).ln()
            })
            .sum();
        Ok((
            (loss / m as f64) as f32,
            Cache {
                hs,
                acts,
                saved,
                probs,
            },
        ))
    }

    /// Mean cross-entropy on `b`.
    pub fn loss(&self, glu: &Glu, b: &Batch) -> Res<f32> {
        Ok(self.forward(glu, b)?.0)
    }

    /// Loss and gradients (shaped like `params`).
    pub fn loss_and_grads(&self, glu: &Glu, b: &Batch) -> Res<(f32, Vec<Vec<f32>>)> {
        let Dims {
            vocab: v,
            dim: d,
            hidden: h,
            blocks,
        } = self.dims;
        let m = b.cur.len();
        let (loss, mut c) = self.forward(glu, b)?;
        let mut g: Vec<Vec<f32>> = self.params.iter().map(|p| vec![0.0; p.len()]).collect();
        // dlogits = (softmax − onehot) / M, in place.
        let mut dl = std::mem::take(&mut c.probs);
        for (row, &t) in dl.chunks_mut(v).zip(&b.target) {
            row[t] -= 1.0;
            row.iter_mut().for_each(|r| *r /= m as f32);
        }
        let (io, ib) = (2 + blocks * PER_BLOCK, 3 + blocks * PER_BLOCK);
        mm_tn(&c.hs[blocks], &dl, d, v, &mut g[io]);
        for row in dl.chunks(v) {
            g[ib].iter_mut().zip(row).for_each(|(g, r)| *g += r);
        }
        let mut dh = vec![0.0f32; m * d];
        mm(
            &dl,
            &transpose(&self.params[io], d, v),
            v,
            d,
            &mut dh,
            false,
        );
        for l in (0..blocks).rev() {
            let p = 2 + l * PER_BLOCK;
            // h_out = h_in + a·Wdown.
            mm_tn(&c.acts[l], &dh, h, d, &mut g[p + 4]);
            let mut da = vec![0.0f32; m * h];
            mm(
                &dh,
                &transpose(&self.params[p + 4], h, d),
                d,
                h,
                &mut da,
                false,
            );
            let [dx, dwg, dwu, dbg, dbu] =
                glu.backward(&c.hs[l], m, d, self.block(l), &c.saved[l], &da)?;
            dh.iter_mut().zip(&dx).for_each(|(a, b)| *a += b);
            for (i, gi) in [dwg, dwu, dbg, dbu].into_iter().enumerate() {
                g[p + i] = gi;
            }
        }
        for (i, row) in dh.chunks(d).enumerate() {
            g[0][b.cur[i] * d..][..d]
                .iter_mut()
                .zip(row)
                .for_each(|(g, r)| *g += r);
            g[1][b.prev[i] * d..][..d]
                .iter_mut()
                .zip(row)
                .for_each(|(g, r)| *g += r);
        }
        Ok((loss, g))
    }

    /// The loss in f64 with plain loops, with tensor `pi` element `ei`
    /// shifted by `delta`: the reference for the finite-difference check.
    pub fn loss_f64(&self, b: &Batch, (pi, ei, delta): (usize, usize, f64)) -> f64 {
        let Dims {
            vocab: v,
            dim: d,
            hidden: h,
            blocks,
        } = self.dims;
        let p = |t: usize, i: usize| {
            self.params[t][i] as f64 + if (t, i) == (pi, ei) { delta } else { 0.0 }
        };
        let mut total = 0.0;
        for r in 0..b.cur.len() {
            let mut x: Vec<f64> = (0..d)
                .map(|j| p(0, b.cur[r] * d + j) + p(1, b.prev[r] * d + j))
                .collect();
            for l in 0..blocks {
                let q = 2 + l * PER_BLOCK;
                let a: Vec<f64> = (0..h)
                    .map(|n| {
                        let g = p(q + 2, n) + (0..d).map(|k| x[k] * p(q, k * h + n)).sum::<f64>();
                        let u =
                            p(q + 3, n) + (0..d).map(|k| x[k] * p(q + 1, k * h + n)).sum::<f64>();
                        ACT.apply_f64(g) * u
                    })
                    .collect();
                for (j, xj) in x.iter_mut().enumerate() {
                    *xj += (0..h).map(|n| a[n] * p(q + 4, n * d + j)).sum::<f64>();
                }
            }
            let q = 2 + blocks * PER_BLOCK;
            let z: Vec<f64> = (0..v)
                .map(|o| p(q + 1, o) + (0..d).map(|k| x[k] * p(q, k * v + o)).sum::<f64>())
                .collect();
            let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + z.iter().map(|z| (z - mx).exp()).sum::<f64>().ln();
            total += lse - z[b.target[r]];
        }
        total / b.cur.len() as f64
    }
}

/// Checks `loss_and_grads` (this file's backward plus the crate's gated FFN
/// backward on `glu`) against central differences of [`Model::loss_f64`] on
/// a tiny model, `per_tensor` sampled elements of every tensor. Returns the
/// largest error, each measured as `|analytic − numeric| / (|numeric| + 1e-3)`
/// (+inf when one is NaN).
pub fn grad_check(glu: &Glu, seed: u64, per_tensor: usize) -> Res<f64> {
    let mut rng = Rng::new(seed);
    let dims = Dims {
        vocab: 5,
        dim: 4,
        hidden: 6,
        blocks: 2,
    };
    let chain = Chain::new(dims.vocab, &mut rng);
    let b = chain.batch(2, 5, &mut rng);
    let model = Model::new(dims, &mut rng, 1.0);
    let (_, g) = model.loss_and_grads(glu, &b)?;
    let eps = 1e-5;
    let mut worst = 0.0f64;
    for (t, gt) in g.iter().enumerate() {
        for _ in 0..per_tensor {
            let i = rng.below(gt.len());
            let num =
                (model.loss_f64(&b, (t, i, eps)) - model.loss_f64(&b, (t, i, -eps))) / (2.0 * eps);
            let err = (gt[i] as f64 - num).abs() / (num.abs() + 1e-3);
            // NaN-safe: `f64::max` would drop a NaN error (a NaN gradient
            // or loss), which then passed the caller's `worst < tol`.
            worst = if err.is_nan() {
                f64::INFINITY
            } else {
                worst.max(err)
            };
        }
    }
    Ok(worst)
}
