//! `cpu::forward` (and `unfused_forward`, `forward_train`) against the f64
//! reference on odd shapes, every activation, dtype and weight arrangement.

mod cpu_common;

use cpu_common::{DIMS, LAYS, Lay, Owned, check_out, check_out_cond, f64s, rand_vec, rng, seed};
use proptest::prelude::*;
use swiglu::{Activation, DType, Element, bf16, cpu, f16, reference};

/// Bias patterns: none, gate only, up only, both.
const BIASES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// Runs one case for dtype `T`: fused, unfused and the training forward
/// against the reference (the training forward must equal `forward` bit for bit).
fn case<T: Element>(
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
        "seed {seed} (SWIGLU_TEST_SEED), {:?} x_shape {x_shape:?} N {n} {lay:?} bias {bias:?} {act:?}",
        T::DTYPE
    );
    let mut r = rng(seed);
    let w = Owned::<T>::random(&mut r, k, n, lay, bias);
    let x: Vec<T> = rand_vec(&mut r, m * k, 1.0);
    let wv = w.view();
    let want = reference::forward_f64(&x, x_shape, &wv, act).unwrap();

    let cond = (T::DTYPE == DType::F32).then(|| w.condition(&x, m, act));
    let got = cpu::forward_alloc(&x, x_shape, &wv, act).unwrap();
    check_out_cond(&got, &want, cond.as_deref(), &ctx);

    let mut unfused = vec![T::from_f32(7.0); m * n];
    cpu::unfused_forward(&x, x_shape, &wv, act, &mut unfused).unwrap();
    check_out_cond(&unfused, &want, cond.as_deref(), &format!("{ctx}: unfused"));

    let mut train = vec![T::from_f32(7.0); m * n];
    let saved = cpu::forward_train(
        &x,
        x_shape,
        &wv,
        act,
        cpu::SaveMode::PreActivations,
        &mut train,
    )
    .unwrap();
    assert_eq!(train, got, "{ctx}: forward_train differs from forward");
    assert_eq!(saved.bytes(), 2 * m * n * 4, "{ctx}");
    // The saved pre-activations are the biased f32 gate/up values.
    let (g, u) = (saved.gate_pre().unwrap(), saved.up_pre().unwrap());
    let act_of = |i: usize| T::from_f32(act.apply_f32(g[i]) * u[i]);
    assert!(
        (0..m * n).all(|i| act_of(i) == got[i]),
        "{ctx}: saved pre-activations do not reproduce out"
    );
}

/// Two Latin squares over DIMS: every value appears in every position (M, K,
/// N), with small and large partners, without the full 7³ cube.
fn sweep_shapes() -> Vec<(usize, usize, usize)> {
    let d = |i: usize| DIMS[i % DIMS.len()];
    let mut v: Vec<_> = (0..7).map(|i| (d(i), d(i + 3), d(i + 5))).collect();
    v.extend((0..7).map(|i| (d(i), d(i + 1), d(i + 2))));
    v.push((257, 257, 257));
    v
}

#[test]
fn shape_sweep_every_dtype_activation_and_arrangement() {
    let s0 = seed();
    for (si, &(m, k, n)) in sweep_shapes().iter().enumerate() {
        for (ai, act) in Activation::ALL.into_iter().enumerate() {
            let lay = LAYS[(si + ai) % 3];
            let bias = BIASES[(si + 2 * ai) % 4];
            let s = s0.wrapping_add((si * 7 + ai) as u64);
            // Rotate the dtype too on the largest shape, to keep the run short.
            if m * k * n > 1 << 22 {
                match ai % 3 {
                    0 => case::<f32>(s, &[m, k], n, lay, bias, act),
                    1 => case::<f16>(s, &[m, k], n, lay, bias, act),
                    _ => case::<bf16>(s, &[m, k], n, lay, bias, act),
                }
                continue;
            }
            case::<f32>(s, &[m, k], n, lay, bias, act);
            case::<f16>(s, &[m, k], n, lay, bias, act);
            case::<bf16>(s, &[m, k], n, lay, bias, act);
        }
    }
}

#[test]
fn full_shape_cube_with_rotating_configs() {
    // All 7³ (M, K, N) combinations, each with one activation / arrangement /
    // bias pattern / dtype picked in rotation (the other tests cover the
    // configurations exhaustively on fewer shapes).
    let s0 = seed();
    let mut i = 0usize;
    for m in DIMS {
        for k in DIMS {
            for n in DIMS {
                i += 1;
                let s = s0.wrapping_add(1000 + i as u64);
                let act = Activation::ALL[i % 7];
                let (lay, bias) = (LAYS[i % 3], BIASES[(i / 3) % 4]);
                match i % 3 {
                    0 => case::<f32>(s, &[m, k], n, lay, bias, act),
                    1 => case::<bf16>(s, &[m, k], n, lay, bias, act),
                    _ => case::<f16>(s, &[m, k], n, lay, bias, act),
                }
            }
        }
    }
}

#[test]
fn every_activation_arrangement_bias_and_dtype_on_one_shape() {
    let s0 = seed();
    let mut i = 0u64;
    for act in Activation::ALL {
        for lay in LAYS {
            for bias in BIASES {
                i += 1;
                let s = s0.wrapping_add(i);
                case::<f32>(s, &[31, 64], 129, lay, bias, act);
                case::<f16>(s, &[31, 64], 129, lay, bias, act);
                case::<bf16>(s, &[31, 64], 129, lay, bias, act);
            }
        }
    }
}

#[test]
fn leading_batch_dims_flatten_into_rows() {
    let s = seed();
    case::<f32>(s, &[3, 5, 31], 7, Lay::Nk, (true, true), Activation::Silu);
    case::<bf16>(
        s,
        &[2, 1, 4, 64],
        129,
        Lay::GateUp,
        (false, false),
        Activation::GeluTanh,
    );
    case::<f16>(
        s,
        &[7, 2, 7],
        2,
        Lay::Kn,
        (true, false),
        Activation::Swish { beta: 1.5 },
    );
    // The batch layout must not matter: [B, S, K] equals [B*S, K].
    let mut r = rng(s);
    let w = Owned::<f32>::random(&mut r, 31, 64, Lay::Nk, (true, true));
    let x: Vec<f32> = rand_vec(&mut r, 6 * 31, 1.0);
    let a = cpu::forward_alloc(&x, &[2, 3, 31], &w.view(), Activation::Silu).unwrap();
    let b = cpu::forward_alloc(&x, &[6, 31], &w.view(), Activation::Silu).unwrap();
    assert_eq!(a, b, "seed {s}");
}

#[test]
fn many_row_blocks_and_column_blocks() {
    // M above the 512-row tile with a ragged last block; N not a multiple of 64.
    let s = seed();
    case::<f32>(s, &[1100, 31], 70, Lay::Kn, (true, true), Activation::Silu);
    case::<bf16>(
        s,
        &[2, 520, 7],
        129,
        Lay::Nk,
        (true, false),
        Activation::Relu,
    );
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let s = seed();
    let mut r = rng(s);
    let w = Owned::<f32>::random(&mut r, 64, 257, Lay::Nk, (true, true));
    let x: Vec<f32> = rand_vec(&mut r, 129 * 64, 1.0);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| cpu::forward_alloc(&x, &[129, 64], &w.view(), Activation::GeluErf).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(3), "seed {s}");
    assert_eq!(one, run(8), "seed {s}");
}

#[test]
fn zero_rows_is_ok_and_empty() {
    let mut r = rng(1);
    let w = Owned::<f32>::random(&mut r, 7, 5, Lay::Kn, (true, true));
    for shape in [&[0usize, 7][..], &[2, 0, 7], &[0, 3, 7]] {
        assert!(
            cpu::forward_alloc::<f32>(&[], shape, &w.view(), Activation::Silu)
                .unwrap()
                .is_empty()
        );
        let mut out: [f32; 0] = [];
        cpu::forward(&[], shape, &w.view(), Activation::Silu, &mut out).unwrap();
        cpu::unfused_forward(&[], shape, &w.view(), Activation::Silu, &mut out).unwrap();
        let saved = cpu::forward_train(
            &[],
            shape,
            &w.view(),
            Activation::Silu,
            cpu::SaveMode::PreActivations,
            &mut out,
        )
        .unwrap();
        assert_eq!((saved.m(), saved.bytes()), (0, 0));
    }
}

/// A NaN in one element of x poisons exactly its own output row.
fn nan_case<T: Element>(seed: u64, act: Activation) {
    let (m, k, n) = (9, 31, 70);
    let mut r = rng(seed);
    let w = Owned::<T>::random(&mut r, k, n, Lay::Nk, (true, true));
    let mut x: Vec<T> = rand_vec(&mut r, m * k, 1.0);
    let bad_row = 4;
    x[bad_row * k + 13] = T::from_f32(f32::NAN);
    let got = f64s(&cpu::forward_alloc(&x, &[m, k], &w.view(), act).unwrap());
    let mut unfused = vec![T::default(); m * n];
    cpu::unfused_forward(&x, &[m, k], &w.view(), act, &mut unfused).unwrap();
    for (i, row) in got.chunks(n).enumerate() {
        let ctx = format!("seed {seed} {:?} {act:?} row {i}", T::DTYPE);
        if i == bad_row {
            assert!(
                row.iter().all(|v| v.is_nan()),
                "{ctx}: NaN row not all NaN: {row:?}"
            );
        } else {
            assert!(
                row.iter().all(|v| v.is_finite()),
                "{ctx}: NaN leaked: {row:?}"
            );
        }
    }
    let want = reference::forward_f64(&x, &[m, k], &w.view(), act).unwrap();
    check_out(
        &cpu::forward_alloc(&x, &[m, k], &w.view(), act).unwrap(),
        &want,
        "NaN case, fused",
    );
    check_out(&unfused, &want, "NaN case, unfused");
}

#[test]
fn nan_in_x_propagates_to_its_row_only() {
    let s = seed();
    for act in Activation::ALL {
        nan_case::<f32>(s, act);
        nan_case::<bf16>(s, act);
        nan_case::<f16>(s, act);
    }
}

#[test]
fn infinities_behave_like_the_reference() {
    let s = seed();
    for act in Activation::ALL {
        for (j, inf) in [f32::INFINITY, f32::NEG_INFINITY].into_iter().enumerate() {
            let (m, k, n) = (6, 7, 31);
            let mut r = rng(s.wrapping_add(j as u64));
            let w = Owned::<f32>::random(&mut r, k, n, Lay::Kn, (false, true));
            let mut x: Vec<f32> = rand_vec(&mut r, m * k, 1.0);
            x[2 * k + 3] = inf;
            let want = reference::forward_f64(&x, &[m, k], &w.view(), act).unwrap();
            let got = cpu::forward_alloc(&x, &[m, k], &w.view(), act).unwrap();
            // rel_err inside check_out fails unless NaN/±Inf land exactly where the reference has them.
            check_out(&got, &want, &format!("seed {s} {act:?} x has {inf}"));
            let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
            let wb = Owned::<bf16>::random(&mut r, k, n, Lay::Nk, (true, true));
            let want = reference::forward_f64(&xb, &[m, k], &wb.view(), act).unwrap();
            check_out(
                &cpu::forward_alloc(&xb, &[m, k], &wb.view(), act).unwrap(),
                &want,
                "bf16 Inf",
            );
        }
    }
}

#[test]
fn recompute_mode_saves_nothing() {
    let mut r = rng(seed());
    let w = Owned::<f32>::random(&mut r, 31, 64, Lay::Nk, (true, false));
    let x: Vec<f32> = rand_vec(&mut r, 7 * 31, 1.0);
    let mut out = vec![0.0f32; 7 * 64];
    let saved = cpu::forward_train(
        &x,
        &[7, 31],
        &w.view(),
        Activation::Silu,
        cpu::SaveMode::Recompute,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        (saved.bytes(), saved.mode(), saved.m(), saved.n()),
        (0, cpu::SaveMode::Recompute, 7, 64)
    );
    assert!(saved.gate_pre().is_none() && saved.up_pre().is_none());
    assert_eq!(
        out,
        cpu::forward_alloc(&x, &[7, 31], &w.view(), Activation::Silu).unwrap()
    );
}

#[test]
fn working_set_of_fused_is_far_below_unfused() {
    let (fused, unfused) = cpu::working_set_bytes::<f32>(512, 1024, 2816);
    assert_eq!(unfused, 2 * 512 * 2816 * 4);
    assert!(fused * 8 <= unfused, "fused {fused} vs unfused {unfused}");
    let (f16_fused, f16_unfused) = cpu::working_set_bytes::<bf16>(512, 1024, 2816);
    assert!(f16_fused < f16_unfused);
    // Saturates rather than overflowing.
    let (a, b) = cpu::working_set_bytes::<f16>(usize::MAX, usize::MAX, usize::MAX);
    assert_eq!((a, b), (usize::MAX, usize::MAX));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_shapes_match_reference(
        m in 0usize..70, k in 1usize..90, n in 1usize..150,
        ai in 0usize..7, li in 0usize..3, bi in 0usize..4, seed in any::<u64>(),
    ) {
        let act = Activation::ALL[ai];
        case::<f32>(seed, &[m, k], n, LAYS[li], BIASES[bi], act);
        case::<bf16>(seed, &[m, k], n, LAYS[li], BIASES[bi], act);
    }
}
