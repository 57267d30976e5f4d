//! Gradients: the f64 reference against central finite differences, and
//! `cpu::backward` against the reference.

mod cpu_common;

use cpu_common::{LAYS, Lay, Owned, check_grad, f64s, rand_vec, rng, seed};
use swiglu::cpu::{self, Grads, SaveMode};
use swiglu::reference::{self, RefGrads};
use swiglu::{Activation, Element, bf16, f16};

const BIASES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// `L = Σ d_out ⊙ forward_f64(x, w)`.
fn loss(x: &[f32], x_shape: &[usize], w: &Owned<f32>, act: Activation, d_out: &[f64]) -> f64 {
    let out = reference::forward_f64(x, x_shape, &w.view(), act).unwrap();
    out.iter().zip(d_out).map(|(o, d)| o * d).sum()
}

/// Central difference of `f` at `v` for a parameter stored as f32: the steps
/// actually taken (after rounding `v ± h` to f32) form the denominator, so the
/// error is O(h²) plus O(ulp(v)·f''), far below the tolerance.
fn central(v: f32, mut f: impl FnMut(f32) -> f64) -> f64 {
    let h = 2f64.powi(-18);
    let (up, down) = ((v as f64 + h) as f32, (v as f64 - h) as f32);
    (f(up) - f(down)) / (up as f64 - down as f64)
}

/// Finite-difference gradients of [`loss`] with respect to every input.
fn finite_differences(
    x: &[f32],
    x_shape: &[usize],
    w: &Owned<f32>,
    act: Activation,
    d_out: &[f64],
) -> RefGrads {
    let mut xs = x.to_vec();
    let dx = (0..x.len())
        .map(|i| {
            central(x[i], |v| {
                xs[i] = v;
                let l = loss(&xs, x_shape, w, act, d_out);
                xs[i] = x[i];
                l
            })
        })
        .collect();
    let mut wp = w.clone();
    let kn = w.k * w.n;
    // For GateUp, `gate` holds both halves: the first K*N are the gate.
    let mut grad_of = |pick: &dyn Fn(&mut Owned<f32>) -> &mut Vec<f32>,
                       range: std::ops::Range<usize>|
     -> Vec<f64> {
        range
            .map(|i| {
                let orig = pick(&mut wp)[i];
                central(orig, |v| {
                    pick(&mut wp)[i] = v;
                    let l = loss(x, x_shape, &wp, act, d_out);
                    pick(&mut wp)[i] = orig;
                    l
                })
            })
            .collect()
    };
    let (d_w_gate, d_w_up) = match w.lay {
        Lay::GateUp => (
            grad_of(&|o| &mut o.gate, 0..kn),
            grad_of(&|o| &mut o.gate, kn..2 * kn),
        ),
        _ => (
            grad_of(&|o| &mut o.gate, 0..kn),
            grad_of(&|o| &mut o.up, 0..kn),
        ),
    };
    let n = w.n;
    let d_b_gate = if w.bg.is_some() {
        grad_of(&|o| o.bg.as_mut().unwrap(), 0..n)
    } else {
        vec![]
    };
    let d_b_up = if w.bu.is_some() {
        grad_of(&|o| o.bu.as_mut().unwrap(), 0..n)
    } else {
        vec![]
    };
    RefGrads {
        dx,
        d_w_gate,
        d_w_up,
        d_b_gate,
        d_b_up,
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let s0 = seed();
    let (k, n) = (4, 5);
    let x_shape = [1, 3, k];
    let mut i = 0;
    for act in Activation::ALL {
        for lay in LAYS {
            for bias in [(false, false), (true, true)] {
                i += 1;
                let s = s0.wrapping_add(i);
                let ctx = format!("seed {s} (SWIGLU_TEST_SEED) {act:?} {lay:?} bias {bias:?}");
                let mut r = rng(s);
                let w = Owned::<f32>::random(&mut r, k, n, lay, bias);
                let x: Vec<f32> = rand_vec(&mut r, 3 * k, 1.0);
                let d_out = f64s(&rand_vec::<f32>(&mut r, 3 * n, 1.0));
                let want = reference::backward_f64(&x, &x_shape, &w.view(), act, &d_out).unwrap();
                let fd = finite_differences(&x, &x_shape, &w, act, &d_out);
                let tol = 1e-6;
                check_grad(&want.dx, &fd.dx, tol, &format!("{ctx}: dx"));
                check_grad(&want.d_w_gate, &fd.d_w_gate, tol, &format!("{ctx}: dWg"));
                check_grad(&want.d_w_up, &fd.d_w_up, tol, &format!("{ctx}: dWu"));
                if bias.0 {
                    check_grad(&want.d_b_gate, &fd.d_b_gate, tol, &format!("{ctx}: dbg"));
                    check_grad(&want.d_b_up, &fd.d_b_up, tol, &format!("{ctx}: dbu"));
                }
            }
        }
    }
}

/// |act'(z)| as the f32 backward evaluates it, with each term's magnitude:
/// SiLU/Swish's `s + t·s·σ(−t)` cancels near t ≈ −1.28 (act' = 0), so there
/// its f32 rounding error is relative to `s + |t·s·σ(−t)|`, not to the result.
fn grad_magnitude(act: Activation, z: f64) -> f64 {
    match act {
        Activation::Silu | Activation::Swish { .. } => {
            let sig = |t: f64| 1.0 / (1.0 + (-t).exp());
            let t = act.beta() as f64 * z;
            sig(t) + (t * sig(t) * sig(-t)).abs()
        }
        _ => act.grad_f64(z).abs(),
    }
}

/// `cpu::backward` (both save modes) against the reference for input type `T`, G = f32.
fn backward_case<T: Element>(
    seed: u64,
    x_shape: &[usize],
    n: usize,
    lay: Lay,
    bias: (bool, bool),
    act: Activation,
) {
    let k = *x_shape.last().unwrap();
    let m: usize = x_shape[..x_shape.len() - 1].iter().product();
    let ctx = format!(
        "seed {seed} (SWIGLU_TEST_SEED) {:?} x_shape {x_shape:?} N {n} {lay:?} bias {bias:?} {act:?}",
        T::DTYPE
    );
    let mut r = rng(seed);
    let w = Owned::<T>::random(&mut r, k, n, lay, bias);
    let wv = w.view();
    let x: Vec<T> = rand_vec(&mut r, m * k, 1.0);
    let d_out: Vec<T> = rand_vec(&mut r, m * n, 1.0);
    // The oracle: the f64 backward from the pre-activations this forward
    // computed (f32, widened). The forward's own rounding is checked by the
    // forward tests; against f64 pre-activations it can flip ReLU' near 0 and,
    // where x·W cancels, dominate the gradients' error.
    let (want, scale) = {
        let mut scratch = vec![T::default(); m * n];
        let s = cpu::forward_train(
            &x,
            x_shape,
            &wv,
            act,
            SaveMode::PreActivations,
            &mut scratch,
        )
        .unwrap();
        let g: Vec<f64> = s.gate_pre().unwrap().iter().map(|&v| v as f64).collect();
        let u: Vec<f64> = s.up_pre().unwrap().iter().map(|&v| v as f64).collect();
        let d = f64s(&d_out);
        let want = reference::backward_f64_from_pre(&x, x_shape, &wv, act, &g, &u, &d).unwrap();
        // Every gradient is a sum of products (over N, M or rows); where the
        // terms cancel, the f32 rounding error is relative to Σ|terms|, not
        // to the (possibly tiny) result. The same oracle on |x|, |W|, |dG|,
        // |dU| (identity activation, d_out = 1, u = |dG|, g = |dU|) gives
        // those sums of magnitudes for every element.
        let abs = |v: &[T]| -> Vec<T> { v.iter().map(|e| T::from_f64(e.to_f64().abs())).collect() };
        let mut wa = w.clone();
        wa.gate = abs(&w.gate);
        wa.up = abs(&w.up);
        let adg: Vec<f64> = (0..m * n)
            .map(|i| (d[i] * u[i]).abs() * grad_magnitude(act, g[i]))
            .collect();
        let adu: Vec<f64> = (0..m * n)
            .map(|i| (d[i] * act.apply_f64(g[i])).abs())
            .collect();
        let scale = reference::backward_f64_from_pre(
            &abs(&x),
            x_shape,
            &wa.view(),
            Activation::Identity,
            &adu,
            &adg,
            &vec![1.0; m * n],
        )
        .unwrap();
        (want, scale)
    };
    for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
        let ctx = format!("{ctx} {mode:?}");
        let mut out = vec![T::default(); m * n];
        let saved = cpu::forward_train(&x, x_shape, &wv, act, mode, &mut out).unwrap();
        let got: Grads<f32> = cpu::backward(&x, x_shape, &wv, act, &saved, &d_out).unwrap();
        // Elementwise: |got − want| ≤ 1e-5·√terms·Σ|terms| (f32 accumulation),
        // plus the normwise check where nothing cancels.
        let check = |name: &str, got: &[f64], want: &[f64], scale: &[f64], terms: usize| {
            let tol = 1e-5 * (terms as f64).sqrt().max(1.0);
            assert_eq!(got.len(), want.len(), "{ctx}: {name}: length");
            assert_eq!(scale.len(), want.len(), "{ctx}: {name}: scale length");
            for (j, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
                let err = (g - w).abs();
                assert!(
                    err <= tol * s + 1e-30,
                    "{ctx}: {name}[{j}]: got {g:e}, reference {w:e}, error {err:e} > {tol:e} x Σ|terms| {s:e}"
                );
            }
        };
        check("dx", &f64s(&got.dx), &want.dx, &scale.dx, 2 * n);
        check(
            "dWg",
            &f64s(&got.d_w_gate),
            &want.d_w_gate,
            &scale.d_w_gate,
            m,
        );
        check("dWu", &f64s(&got.d_w_up), &want.d_w_up, &scale.d_w_up, m);
        assert_eq!(got.d_b_gate.is_some(), bias.0, "{ctx}");
        assert_eq!(got.d_b_up.is_some(), bias.1, "{ctx}");
        if let Some(db) = &got.d_b_gate {
            check("dbg", &f64s(db), &want.d_b_gate, &scale.d_b_gate, m);
        }
        if let Some(db) = &got.d_b_up {
            check("dbu", &f64s(db), &want.d_b_up, &scale.d_b_up, m);
        }
    }
}

#[test]
fn cpu_backward_matches_reference() {
    let s0 = seed();
    let shapes: [(&[usize], usize); 6] = [
        (&[7, 31], 64),
        (&[64, 7], 129),
        (&[1, 257], 2),
        (&[129, 64], 31),
        (&[2, 3, 31], 7),
        (&[257, 2], 1),
    ];
    let mut i = 0u64;
    for (si, &(shape, n)) in shapes.iter().enumerate() {
        for (ai, act) in Activation::ALL.into_iter().enumerate() {
            i += 1;
            let lay = LAYS[(si + ai) % 3];
            let bias = BIASES[(si + ai) % 4];
            backward_case::<f32>(s0.wrapping_add(i), shape, n, lay, bias, act);
            backward_case::<bf16>(s0.wrapping_add(i), shape, n, lay, bias, act);
        }
    }
    backward_case::<f16>(s0, &[31, 64], 129, Lay::Nk, (true, true), Activation::Silu);
    // Several row blocks in the fused forward that fills the saved state.
    backward_case::<f32>(
        s0,
        &[600, 7],
        70,
        Lay::Kn,
        (true, false),
        Activation::GeluTanh,
    );
}

/// A small random problem for the gradient-plumbing tests.
struct Problem {
    w: Owned<f32>,
    x: Vec<f32>,
    d_out: Vec<f32>,
    shape: [usize; 2],
}

fn problem(seed: u64, m: usize, k: usize, n: usize, lay: Lay, bias: (bool, bool)) -> Problem {
    let mut r = rng(seed);
    let w = Owned::<f32>::random(&mut r, k, n, lay, bias);
    let x = rand_vec(&mut r, m * k, 1.0);
    let d_out = rand_vec(&mut r, m * n, 1.0);
    Problem {
        w,
        x,
        d_out,
        shape: [m, k],
    }
}

#[test]
fn narrow_gradient_types_are_the_f32_gradients_rounded_once() {
    let s = seed();
    let p = problem(s, 31, 64, 129, Lay::Kn, (true, true));
    let act = Activation::GeluErf;
    let mut out = vec![0.0f32; 31 * 129];
    let saved = cpu::forward_train(
        &p.x,
        &p.shape,
        &p.w.view(),
        act,
        SaveMode::Recompute,
        &mut out,
    )
    .unwrap();
    let g32: Grads<f32> =
        cpu::backward(&p.x, &p.shape, &p.w.view(), act, &saved, &p.d_out).unwrap();
    let gb: Grads<bf16> =
        cpu::backward(&p.x, &p.shape, &p.w.view(), act, &saved, &p.d_out).unwrap();
    let round = |v: &[f32]| v.iter().map(|&x| bf16::from_f32(x)).collect::<Vec<_>>();
    assert_eq!(gb.dx, round(&g32.dx), "seed {s}");
    assert_eq!(gb.d_w_gate, round(&g32.d_w_gate), "seed {s}");
    assert_eq!(gb.d_w_up, round(&g32.d_w_up), "seed {s}");
    assert_eq!(gb.d_b_gate, g32.d_b_gate.as_deref().map(round), "seed {s}");
    assert_eq!(gb.d_b_up, g32.d_b_up.as_deref().map(round), "seed {s}");
}

#[test]
fn save_modes_agree() {
    // Both modes take their pre-activations from the same fused forward, so
    // the gradients agree bit for bit, for every activation (ReLU' included,
    // which a differently ordered recompute could flip near 0).
    let s = seed();
    for (i, lay) in LAYS.into_iter().enumerate() {
        for (j, act) in Activation::ALL.into_iter().enumerate() {
            let bias = BIASES[(i + j) % 4];
            let p = problem(s.wrapping_add((i * 16 + j) as u64), 64, 31, 129, lay, bias);
            let run = |mode| {
                let mut out = vec![0.0f32; 64 * 129];
                let saved =
                    cpu::forward_train(&p.x, &p.shape, &p.w.view(), act, mode, &mut out).unwrap();
                let g: Grads<f32> =
                    cpu::backward(&p.x, &p.shape, &p.w.view(), act, &saved, &p.d_out).unwrap();
                (out, g)
            };
            let ((oa, a), (ob, b)) = (run(SaveMode::PreActivations), run(SaveMode::Recompute));
            let ctx = format!("seed {s} {lay:?} {act:?} bias {bias:?}");
            let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&oa), bits(&ob), "{ctx}: out");
            assert_eq!(bits(&a.dx), bits(&b.dx), "{ctx}: dx");
            assert_eq!(bits(&a.d_w_gate), bits(&b.d_w_gate), "{ctx}: dWg");
            assert_eq!(bits(&a.d_w_up), bits(&b.d_w_up), "{ctx}: dWu");
            for (x, y) in [(&a.d_b_gate, &b.d_b_gate), (&a.d_b_up, &b.d_b_up)] {
                assert_eq!(x.as_deref().map(bits), y.as_deref().map(bits), "{ctx}: db");
            }
            assert!(a.dx.iter().all(|v| v.is_finite()), "{ctx}: dx not finite");
        }
    }
}

#[test]
fn backward_into_accumulates_weight_and_bias_grads_and_overwrites_dx() {
    let s = seed();
    let p = problem(s, 7, 31, 64, Lay::Nk, (false, true));
    let act = Activation::Silu;
    let wv = p.w.view();
    let mut out = vec![0.0f32; 7 * 64];
    let saved =
        cpu::forward_train(&p.x, &p.shape, &wv, act, SaveMode::PreActivations, &mut out).unwrap();
    let once: Grads<f32> = cpu::backward(&p.x, &p.shape, &wv, act, &saved, &p.d_out).unwrap();

    let mut acc = Grads::<f32>::zeros(&p.shape, &wv).unwrap();
    assert!(acc.d_b_gate.is_none() && acc.d_b_up.is_some());
    acc.dx.fill(123.0);
    cpu::backward_into(&p.x, &p.shape, &wv, act, &saved, &p.d_out, &mut acc, true).unwrap();
    assert_eq!(acc.dx, once.dx, "seed {s}: dx from zeros");
    cpu::backward_into(&p.x, &p.shape, &wv, act, &saved, &p.d_out, &mut acc, true).unwrap();
    let twice = |v: &[f32]| f64s(v).iter().map(|x| 2.0 * x).collect::<Vec<_>>();
    assert_eq!(
        acc.dx, once.dx,
        "seed {s}: dx is overwritten, not accumulated"
    );
    check_grad(
        &f64s(&acc.d_w_gate),
        &twice(&once.d_w_gate),
        1e-6,
        "dWg accumulated",
    );
    check_grad(
        &f64s(&acc.d_w_up),
        &twice(&once.d_w_up),
        1e-6,
        "dWu accumulated",
    );
    check_grad(
        &f64s(acc.d_b_up.as_ref().unwrap()),
        &twice(once.d_b_up.as_ref().unwrap()),
        1e-6,
        "dbu",
    );

    // accumulate = false overwrites everything.
    cpu::backward_into(&p.x, &p.shape, &wv, act, &saved, &p.d_out, &mut acc, false).unwrap();
    assert_eq!(acc, once, "seed {s}");

    // Accumulating into bf16 buffers: f32 sum of the existing value and the new gradient, rounded once.
    let mut accb = Grads::<bf16>::zeros(&p.shape, &wv).unwrap();
    cpu::backward_into(&p.x, &p.shape, &wv, act, &saved, &p.d_out, &mut accb, true).unwrap();
    cpu::backward_into(&p.x, &p.shape, &wv, act, &saved, &p.d_out, &mut accb, true).unwrap();
    check_grad(
        &f64s(&accb.d_w_up),
        &twice(&once.d_w_up),
        1e-2,
        "bf16 dWu accumulated",
    );
}

#[test]
fn zero_rows_gives_zero_weight_grads() {
    let p = problem(3, 1, 7, 5, Lay::Kn, (true, true));
    let wv = p.w.view();
    for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
        let mut out: [f32; 0] = [];
        let saved =
            cpu::forward_train(&[], &[0, 7], &wv, Activation::Silu, mode, &mut out).unwrap();
        let g: Grads<f32> =
            cpu::backward(&[], &[0, 7], &wv, Activation::Silu, &saved, &[]).unwrap();
        assert!(g.dx.is_empty());
        assert!(g.d_w_gate.iter().chain(&g.d_w_up).all(|&v| v == 0.0));
        assert_eq!(g.d_b_gate.as_deref(), Some(&[0.0f32; 5][..]));
        assert_eq!(g.d_b_up.as_deref(), Some(&[0.0f32; 5][..]));
        // Accumulating zero rows leaves existing gradients alone.
        let mut acc = Grads::<f32>::zeros(&[0, 7], &wv).unwrap();
        acc.d_w_gate.fill(1.5);
        cpu::backward_into(
            &[],
            &[0, 7],
            &wv,
            Activation::Silu,
            &saved,
            &[],
            &mut acc,
            true,
        )
        .unwrap();
        assert!(acc.d_w_gate.iter().all(|&v| v == 1.5));
    }
}

#[test]
fn saved_state_reports_its_memory() {
    let p = problem(4, 9, 7, 33, Lay::Nk, (false, false));
    let mut out = vec![0.0f32; 9 * 33];
    let pre = cpu::forward_train(
        &p.x,
        &p.shape,
        &p.w.view(),
        Activation::Relu,
        SaveMode::PreActivations,
        &mut out,
    )
    .unwrap();
    assert_eq!(pre.bytes(), 2 * 9 * 33 * 4);
    assert_eq!(
        (pre.m(), pre.n(), pre.mode()),
        (9, 33, SaveMode::PreActivations)
    );
    let re = cpu::forward_train(
        &p.x,
        &p.shape,
        &p.w.view(),
        Activation::Relu,
        SaveMode::Recompute,
        &mut out,
    )
    .unwrap();
    assert_eq!(re.bytes(), 0);
}
