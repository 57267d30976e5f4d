//! Configuration, AdamW and the training loop of the `train` example.

use crate::data::{Chain, Rng};
use crate::glu::{Glu, Res};
use crate::model::{Dims, Model, grad_check};
use std::time::Instant;

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Predicted tokens per sequence.
    pub seq: usize,
    /// Vocabulary size V.
    pub vocab: usize,
    /// Model width D.
    pub dim: usize,
    /// Gated FFN hidden width H.
    pub hidden: usize,
    /// Residual blocks.
    pub blocks: usize,
    /// Peak learning rate (linear warm-up, cosine decay to 10 %).
    pub lr: f32,
    /// AdamW decoupled weight decay (matrices only).
    pub weight_decay: f32,
    /// Seed of the chain, the data and the initial weights.
    pub seed: u64,
    /// Loss to reach; `None`: `floor + 0.25·(ln V − floor)`.
    pub target: Option<f32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            steps: 300,
            batch: 16,
            seq: 64,
            vocab: 32,
            dim: 64,
            hidden: 128,
            blocks: 2,
            lr: 1e-2,
            weight_decay: 0.01,
            seed: 1,
            target: None,
        }
    }
}

impl Config {
    /// Roughly how many f32 values a run holds (parameters and AdamW state,
    /// one step's activations, the evaluation set); `None` on overflow.
    pub fn floats(&self) -> Option<usize> {
        let (v, d, h, l) = (self.vocab, self.dim, self.hidden, self.blocks);
        let per_block = d
            .checked_mul(h)?
            .checked_mul(3)?
            .checked_add(h.checked_mul(2)?)?;
        let params = v
            .checked_mul(2)?
            .checked_add(1)?
            .checked_mul(d)?
            .checked_add(l.checked_mul(per_block)?)?
            .checked_add(d.checked_add(1)?.checked_mul(v)?)?;
        let per_row = (l.checked_add(2)?.checked_mul(d)?)
            .checked_add(l.checked_mul(h)?.checked_mul(4)?)?
            .checked_add(v.checked_mul(2)?)?;
        let rows = self.batch.max(64).checked_mul(self.seq)?;
        params
            .checked_mul(4)?
            .checked_add(rows.checked_mul(per_row)?)
    }
}

/// What one step reports to the caller (for a progress display).
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Steps done (1-based).
    pub step: usize,
    /// Training loss of this step's batch.
    pub loss: f32,
    /// Tokens per second so far.
    pub tokens_per_s: f64,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Largest relative error of the finite-difference check.
    pub grad_check_err: f64,
    /// `ln V`.
    pub ln_v: f32,
    /// The chain's conditional entropy on the evaluation set.
    pub floor: f32,
    /// The loss to reach.
    pub target: f32,
    /// Evaluation loss before training.
    pub initial_loss: f32,
    /// Evaluation loss after training.
    pub final_loss: f32,
    /// Training loss of every step.
    pub losses: Vec<f32>,
    /// Training throughput.
    pub tokens_per_s: f64,
    /// Wall time of the training loop, seconds.
    pub seconds: f64,
}

impl Report {
    /// Whether the final loss reached the target.
    pub fn reached(&self) -> bool {
        self.final_loss <= self.target
    }
}

/// AdamW (Loshchilov & Hutter): Adam moments with bias correction, and weight
/// decay applied to the weights directly, not through the gradient.
pub struct AdamW {
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
    /// β1, β2, ε.
    pub betas: (f32, f32, f32),
}

impl AdamW {
    /// Zero moments for `params`.
    pub fn new(params: &[Vec<f32>]) -> Self {
        let z = || params.iter().map(|p| vec![0.0; p.len()]).collect();
        Self {
            m: z(),
            v: z(),
            t: 0,
            betas: (0.9, 0.999, 1e-8),
        }
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, model: &mut Model, grads: &[Vec<f32>], lr: f32, wd: f32) {
        self.t += 1;
        let (b1, b2, eps) = self.betas;
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let decays: Vec<bool> = (0..grads.len()).map(|i| model.decays(i)).collect();
        let tensors = model
            .params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v);
        for ((((p, g), m), v), decays) in tensors.zip(decays) {
            let decay = if decays { lr * wd } else { 0.0 };
            for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= decay * *p + lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        }
    }
}

/// Learning rate at `step` of `steps`: linear warm-up over the first 5 %,
/// then cosine decay to 10 % of `peak`.
pub fn lr_at(peak: f32, step: usize, steps: usize) -> f32 {
    let warm = (steps / 20).max(1);
    if step < warm {
        return peak * (step + 1) as f32 / warm as f32;
    }
    let t = (step - warm) as f32 / (steps - warm).max(1) as f32;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f32::consts::PI * t).cos()))
}

/// Checks the gradients (on `glu`), trains, and evaluates; `on_step` sees
/// every step.
pub fn run(cfg: &Config, glu: &Glu, on_step: &mut dyn FnMut(&Progress)) -> Res<Report> {
    let grad_check_err = grad_check(glu, cfg.seed ^ 0x5eed, 8)?;
    if grad_check_err > 1e-2 {
        return Err(
            format!("gradient check failed: worst relative error {grad_check_err:.2e}").into(),
        );
    }
    let mut rng = Rng::new(cfg.seed);
    let chain = Chain::new(cfg.vocab, &mut rng);
    let dims = Dims {
        vocab: cfg.vocab,
        dim: cfg.dim,
        hidden: cfg.hidden,
        blocks: cfg.blocks,
    };
    let mut model = Model::new(dims, &mut rng, 0.1);
    let eval = chain.batch(cfg.batch.max(64), cfg.seq, &mut Rng::new(cfg.seed ^ 0xe7a1));
    let floor = chain.entropy(&eval) as f32;
    let ln_v = (cfg.vocab as f32).ln();
    let target = cfg.target.unwrap_or(floor + 0.25 * (ln_v - floor));
    let initial_loss = model.loss(glu, &eval)?;
    let mut opt = AdamW::new(&model.params);
    let mut losses = Vec::with_capacity(cfg.steps);
    let start = Instant::now();
    for step in 0..cfg.steps {
        let b = chain.batch(cfg.batch, cfg.seq, &mut rng);
        let (loss, grads) = model.loss_and_grads(glu, &b)?;
        if !loss.is_finite() {
            return Err(format!("loss became {loss} at step {step}").into());
        }
        opt.step(
            &mut model,
            &grads,
            lr_at(cfg.lr, step, cfg.steps),
            cfg.weight_decay,
        );
        losses.push(loss);
        let tokens = ((step + 1) * b.cur.len()) as f64;
        on_step(&Progress {
            step: step + 1,
            loss,
            tokens_per_s: tokens / start.elapsed().as_secs_f64(),
        });
    }
    let seconds = start.elapsed().as_secs_f64();
    let final_loss = model.loss(glu, &eval)?;
    Ok(Report {
        grad_check_err,
        ln_v,
        floor,
        target,
        initial_loss,
        final_loss,
        losses,
        tokens_per_s: (cfg.steps * cfg.batch * cfg.seq) as f64 / seconds.max(1e-9),
        seconds,
    })
}
