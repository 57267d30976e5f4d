//! A short run of the `train` example's model on the CPU: the whole model's
//! backward pass against central finite differences of an f64 reference,
//! and a training run whose loss must fall well below its starting point.

#[allow(dead_code)]
#[path = "../examples/train/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "../examples/train/glu.rs"]
mod glu;
#[allow(dead_code)]
#[path = "../examples/train/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../examples/train/trainer.rs"]
mod trainer;

use data::{Chain, Rng};
use glu::Glu;
use model::{Dims, Model};
use trainer::Config;

#[test]
fn f64_reference_matches_the_f32_forward() {
    let mut rng = Rng::new(7);
    let dims = Dims {
        vocab: 7,
        dim: 8,
        hidden: 12,
        blocks: 3,
    };
    let chain = Chain::new(dims.vocab, &mut rng);
    let b = chain.batch(3, 6, &mut rng);
    let m = Model::new(dims, &mut rng, 1.0);
    let f32_loss = m.loss(&Glu::Cpu, &b).unwrap() as f64;
    let f64_loss = m.loss_f64(&b, (0, 0, 0.0));
    assert!(
        (f32_loss - f64_loss).abs() < 1e-5 * f64_loss.abs().max(1.0),
        "{f32_loss} vs {f64_loss}"
    );
}

#[test]
fn gradients_match_finite_differences() {
    for seed in [1, 2, 3] {
        let err = model::grad_check(&Glu::Cpu, seed, 12).unwrap();
        assert!(err < 1e-3, "seed {seed}: worst relative error {err:.2e}");
    }
}

#[test]
fn every_gradient_matches_and_a_one_percent_error_would_not() {
    // All ~240 parameters of a tiny model, not a sample; and the tolerance is
    // tight enough that an analytic gradient 1 % off would fail it.
    let mut rng = Rng::new(11);
    let dims = Dims {
        vocab: 5,
        dim: 4,
        hidden: 6,
        blocks: 2,
    };
    let chain = Chain::new(dims.vocab, &mut rng);
    let b = chain.batch(2, 5, &mut rng);
    let m = Model::new(dims, &mut rng, 1.0);
    let (_, g) = m.loss_and_grads(&Glu::Cpu, &b).unwrap();
    let (eps, tol) = (1e-5, 1e-3);
    let mut resolved = 0;
    for (t, gt) in g.iter().enumerate() {
        for (i, &a) in gt.iter().enumerate() {
            let num = (m.loss_f64(&b, (t, i, eps)) - m.loss_f64(&b, (t, i, -eps))) / (2.0 * eps);
            let scale = num.abs() + 1e-3;
            assert!(
                (a as f64 - num).abs() < tol * scale,
                "tensor {t}[{i}]: {a} vs {num}"
            );
            if num.abs() > 1e-2 {
                assert!((1.01 * a as f64 - num).abs() > tol * scale);
                resolved += 1;
            }
        }
    }
    assert!(
        resolved > 50,
        "only {resolved} gradients large enough to test"
    );
}

#[test]
fn training_lowers_the_loss() {
    let cfg = Config {
        steps: 150,
        batch: 8,
        seq: 32,
        vocab: 16,
        dim: 32,
        hidden: 64,
        blocks: 2,
        lr: 1e-2,
        seed: 3,
        ..Config::default()
    };
    let mut seen = 0;
    let r = trainer::run(&cfg, &Glu::Cpu, &mut |p| {
        seen += 1;
        assert_eq!(p.step, seen);
        assert!(p.loss.is_finite() && p.tokens_per_s > 0.0);
    })
    .unwrap();
    assert_eq!(seen, cfg.steps);
    assert_eq!(r.losses.len(), cfg.steps);
    assert!(
        (r.initial_loss - r.ln_v).abs() < 0.15,
        "untrained loss {} vs ln V {}",
        r.initial_loss,
        r.ln_v
    );
    assert!(
        r.final_loss < 0.6 * r.initial_loss,
        "loss {} → {}",
        r.initial_loss,
        r.final_loss
    );
    assert!(
        r.final_loss >= r.floor - 0.05,
        "below the entropy floor: {} < {}",
        r.final_loss,
        r.floor
    );
    assert!(r.grad_check_err < 1e-3, "{}", r.grad_check_err);
    eprintln!(
        "initial {:.3}, final {:.3}, floor {:.3}, ln V {:.3}, target {:.3} ({}), {:.2} s",
        r.initial_loss,
        r.final_loss,
        r.floor,
        r.ln_v,
        r.target,
        r.reached(),
        r.seconds
    );
}
