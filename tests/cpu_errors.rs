//! Bad input gives a typed error, never a panic, and leaves outputs untouched.

mod cpu_common;

use cpu_common::{Lay, Owned, rand_vec, rng};
use swiglu::cpu::{self, Grads, SaveMode};
use swiglu::{Activation, GluError, GluWeights, WeightLayout, bf16, reference};

const SENTINEL: f32 = -12345.5;

struct Setup {
    w: Owned<f32>,
    x: Vec<f32>,
}

/// M = 3, K = 7, N = 5 with both biases.
fn setup() -> Setup {
    let mut r = rng(11);
    Setup {
        w: Owned::random(&mut r, 7, 5, Lay::Nk, (true, true)),
        x: rand_vec(&mut r, 3 * 7, 1.0),
    }
}

/// Runs every forward entry point on the given arguments, expects an error
/// matching `check` from each, and checks the output buffer stayed untouched.
fn all_forwards_fail(
    x: &[f32],
    x_shape: &[usize],
    w: &GluWeights<f32>,
    act: Activation,
    out_len: usize,
    check: impl Fn(&GluError) -> bool,
) {
    let mut out = vec![SENTINEL; out_len];
    let e = cpu::forward(x, x_shape, w, act, &mut out).unwrap_err();
    assert!(check(&e), "forward: unexpected {e:?}");
    let e = cpu::unfused_forward(x, x_shape, w, act, &mut out).unwrap_err();
    assert!(check(&e), "unfused_forward: unexpected {e:?}");
    for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
        let e = cpu::forward_train(x, x_shape, w, act, mode, &mut out).unwrap_err();
        assert!(check(&e), "forward_train: unexpected {e:?}");
    }
    assert!(
        out.iter().all(|&v| v == SENTINEL),
        "output written on error"
    );
    let e = cpu::forward_alloc(x, x_shape, w, act).unwrap_err();
    assert!(check(&e), "forward_alloc: unexpected {e:?}");
    assert!(!e.to_string().is_empty());
}

#[test]
fn wrong_x_length() {
    let s = setup();
    let w = s.w.view();
    let f = |e: &GluError| matches!(e, GluError::LengthMismatch { what: "x", .. });
    all_forwards_fail(&s.x[1..], &[3, 7], &w, Activation::Silu, 15, f);
    all_forwards_fail(&s.x, &[2, 7], &w, Activation::Silu, 10, f);
    assert!(cpu::forward_alloc(&s.x[1..], &[3, 7], &w, Activation::Silu).is_err());
    assert!(reference::forward_f64(&s.x[1..], &[3, 7], &w, Activation::Silu).is_err());
}

#[test]
fn wrong_out_length() {
    let s = setup();
    let f = |e: &GluError| matches!(e, GluError::LengthMismatch { what: "out", .. });
    let mut out = vec![SENTINEL; 14];
    for len in [0, 14, 16, 21] {
        out.resize(len, SENTINEL);
        let e = cpu::forward(&s.x, &[3, 7], &s.w.view(), Activation::Silu, &mut out).unwrap_err();
        assert!(f(&e), "{e:?}");
        let e = cpu::unfused_forward(&s.x, &[3, 7], &s.w.view(), Activation::Silu, &mut out)
            .unwrap_err();
        assert!(f(&e), "{e:?}");
        assert!(out.iter().all(|&v| v == SENTINEL));
    }
}

#[test]
fn k_mismatch_and_empty_shape() {
    let s = setup();
    let w = s.w.view();
    all_forwards_fail(&s.x, &[7, 3], &w, Activation::Silu, 35, |e| {
        matches!(e, GluError::DimMismatch { .. })
    });
    all_forwards_fail(&s.x, &[21], &w, Activation::Silu, 15, |e| {
        matches!(e, GluError::DimMismatch { .. })
    });
    all_forwards_fail(&s.x, &[], &w, Activation::Silu, 15, |e| {
        matches!(e, GluError::BadShape { .. })
    });
    assert!(matches!(
        reference::forward_f64(&s.x, &[7, 3], &w, Activation::Silu),
        Err(GluError::DimMismatch { .. })
    ));
}

#[test]
fn overflowing_dims() {
    let s = setup();
    let w = s.w.view();
    let f = |e: &GluError| matches!(e, GluError::Overflow { .. });
    all_forwards_fail(
        &s.x,
        &[usize::MAX / 2 + 1, 4, 7],
        &w,
        Activation::Silu,
        15,
        f,
    );
    all_forwards_fail(
        &s.x,
        &[usize::MAX, usize::MAX, 7],
        &w,
        Activation::Silu,
        15,
        f,
    );
    assert!(matches!(
        Grads::<f32>::zeros(&[usize::MAX, 7], &w),
        Err(GluError::Overflow { .. })
    ));
    assert!(matches!(
        cpu::forward_alloc(&s.x, &[usize::MAX / 3, 7], &w, Activation::Silu),
        Err(GluError::Overflow { .. } | GluError::LengthMismatch { .. })
    ));
}

#[test]
fn bad_weights_and_biases_are_rejected_at_construction() {
    let wg = vec![0.5f32; 35];
    let b4 = vec![0.0f32; 4];
    let w = GluWeights::new(&wg, &wg, 7, 5, WeightLayout::KN).unwrap();
    assert!(matches!(
        w.with_biases(Some(&b4), None),
        Err(GluError::LengthMismatch {
            what: "gate bias",
            ..
        })
    ));
    assert!(matches!(
        w.with_biases(None, Some(&b4)),
        Err(GluError::LengthMismatch {
            what: "up bias",
            ..
        })
    ));
    assert!(matches!(
        GluWeights::new(&wg, &wg, 0, 5, WeightLayout::NK),
        Err(GluError::BadShape { .. })
    ));
    assert!(matches!(
        GluWeights::new(&wg, &wg, 7, 0, WeightLayout::NK),
        Err(GluError::BadShape { .. })
    ));
    assert!(matches!(
        GluWeights::<f32>::new(&[], &[], 0, 0, WeightLayout::KN),
        Err(GluError::BadShape { .. })
    ));
    assert!(matches!(
        GluWeights::from_gate_up(&wg, 7, 5),
        Err(GluError::LengthMismatch { .. })
    ));
}

#[test]
fn zero_rows_is_ok() {
    let s = setup();
    let w = s.w.view();
    let mut out: Vec<f32> = Vec::new();
    cpu::forward(&[], &[0, 7], &w, Activation::Silu, &mut out).unwrap();
    cpu::unfused_forward(&[], &[4, 0, 7], &w, Activation::Silu, &mut out).unwrap();
    assert!(
        cpu::forward_alloc::<f32>(&[], &[0, 7], &w, Activation::Silu)
            .unwrap()
            .is_empty()
    );
    assert!(
        reference::forward_f64::<f32>(&[], &[0, 7], &w, Activation::Silu)
            .unwrap()
            .is_empty()
    );
    // ... but M = 0 with a non-empty x or out is still a length error.
    let mut out = vec![SENTINEL; 1];
    assert!(cpu::forward(&[], &[0, 7], &w, Activation::Silu, &mut out).is_err());
    assert!(cpu::forward(&s.x, &[0, 7], &w, Activation::Silu, &mut []).is_err());
    assert_eq!(out, [SENTINEL]);
}

#[test]
fn non_finite_swish_beta() {
    let s = setup();
    let w = s.w.view();
    for beta in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let act = Activation::Swish { beta };
        all_forwards_fail(&s.x, &[3, 7], &w, act, 15, |e| {
            matches!(e, GluError::BadActivation(_))
        });
        assert!(matches!(
            reference::forward_f64(&s.x, &[3, 7], &w, act),
            Err(GluError::BadActivation(_))
        ));
        assert!(matches!(
            reference::backward_f64(&s.x, &[3, 7], &w, act, &[0.5; 15]),
            Err(GluError::BadActivation(_))
        ));
        let mut out = vec![0.0f32; 15];
        let saved = cpu::forward_train(
            &s.x,
            &[3, 7],
            &w,
            Activation::Silu,
            SaveMode::Recompute,
            &mut out,
        )
        .unwrap();
        let mut g = Grads::<f32>::zeros(&[3, 7], &w).unwrap();
        g.dx.fill(SENTINEL);
        let e =
            cpu::backward_into(&s.x, &[3, 7], &w, act, &saved, &out, &mut g, false).unwrap_err();
        assert!(matches!(e, GluError::BadActivation(_)), "{e:?}");
        assert!(g.dx.iter().all(|&v| v == SENTINEL));
    }
}

#[test]
fn saved_state_mismatch() {
    let s = setup();
    let w = s.w.view();
    let act = Activation::Silu;
    let mut out = vec![0.0f32; 15];
    for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
        let saved = cpu::forward_train(&s.x, &[3, 7], &w, act, mode, &mut out).unwrap();
        // Fewer rows than were saved.
        let e = cpu::backward::<f32, f32>(&s.x[..14], &[2, 7], &w, act, &saved, &out[..10])
            .unwrap_err();
        assert!(matches!(e, GluError::SavedMismatch(_)), "{e:?}");
        // Different N.
        let mut r = rng(5);
        let w6 = Owned::<f32>::random(&mut r, 7, 6, Lay::Kn, (false, false));
        let d6 = vec![0.5f32; 18];
        let e = cpu::backward::<f32, f32>(&s.x, &[3, 7], &w6.view(), act, &saved, &d6).unwrap_err();
        assert!(matches!(e, GluError::SavedMismatch(_)), "{e:?}");
        // Wrong d_out length is a length error, checked before the saved state.
        let e = cpu::backward::<f32, f32>(&s.x, &[3, 7], &w, act, &saved, &out[..14]).unwrap_err();
        assert!(
            matches!(e, GluError::LengthMismatch { what: "d_out", .. }),
            "{e:?}"
        );
    }
    assert!(matches!(
        reference::backward_f64(&s.x, &[3, 7], &w, act, &[0.5; 14]),
        Err(GluError::LengthMismatch { what: "d_out", .. })
    ));
}

/// A way to make a gradient buffer the wrong shape.
type Spoil = Box<dyn Fn(&mut Grads<bf16>)>;

#[test]
fn backward_into_rejects_misshapen_gradients_without_writing() {
    let s = setup();
    let w = s.w.view();
    let act = Activation::GeluTanh;
    let mut out = vec![0.0f32; 15];
    let saved =
        cpu::forward_train(&s.x, &[3, 7], &w, act, SaveMode::PreActivations, &mut out).unwrap();
    let fresh = || {
        let mut g = Grads::<bf16>::zeros(&[3, 7], &w).unwrap();
        let sent = bf16::from_f32(SENTINEL);
        g.dx.fill(sent);
        g.d_w_gate.fill(sent);
        g.d_w_up.fill(sent);
        g.d_b_gate.as_mut().unwrap().fill(sent);
        g.d_b_up.as_mut().unwrap().fill(sent);
        g
    };
    let untouched = fresh();
    let cases: Vec<(Spoil, &str)> = vec![
        (Box::new(|g| g.dx.truncate(20)), "grads.dx"),
        (Box::new(|g| g.d_w_gate.push(bf16::ZERO)), "grads.d_w_gate"),
        (Box::new(|g| g.d_w_up.clear()), "grads.d_w_up"),
        (
            Box::new(|g| g.d_b_gate.as_mut().unwrap().push(bf16::ZERO)),
            "grads.d_b_gate",
        ),
        (Box::new(|g| g.d_b_up = None), "grads.d_b_up"),
    ];
    for (spoil, what) in cases {
        let mut g = fresh();
        spoil(&mut g);
        let before = g.clone();
        let e = cpu::backward_into(&s.x, &[3, 7], &w, act, &saved, &out, &mut g, true).unwrap_err();
        let ok = match &e {
            GluError::LengthMismatch { what: w, .. } | GluError::BadShape { what: w, .. } => {
                *w == what
            }
            _ => false,
        };
        assert!(ok, "{what}: {e:?}");
        assert_eq!(g, before, "{what}: gradients written on error");
    }
    // Bias gradients for a layer without biases are rejected too.
    let nb = Owned::<f32>::random(&mut rng(6), 7, 5, Lay::Kn, (false, false));
    let mut g = untouched.clone();
    let saved = cpu::forward_train(
        &s.x,
        &[3, 7],
        &nb.view(),
        act,
        SaveMode::Recompute,
        &mut out,
    )
    .unwrap();
    let e = cpu::backward_into(&s.x, &[3, 7], &nb.view(), act, &saved, &out, &mut g, false)
        .unwrap_err();
    assert!(
        matches!(
            e,
            GluError::BadShape {
                what: "grads.d_b_gate",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(g, untouched);
}
