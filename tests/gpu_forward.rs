//! GPU forward tests: every path against an f64 reference on odd shapes,
//! every activation, biases on/off, every layout and dtype.
//!
//! Without a usable GPU these tests print why and pass as skipped; with
//! `SWIGLU_REQUIRE_GPU=1` they fail instead.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{cluster_skipped, emulated, gpu, runs_here, save, shrink_on_emulator, tolerance};

use common::{Rng, check_elems, preact_f64, rel_err, store};
use std::fmt::Write as _;
use swiglu::cuda::{CudaElement, CudaGlu, DeviceGluWeights, Path};
use swiglu::{Activation, DType, GluError, GluWeights, WeightLayout, bf16, f16};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Kn,
    Nk,
    Concat,
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 8, 8),
    (2, 16, 8),
    (7, 40, 24),
    (31, 64, 72),
    (64, 128, 64),
    (129, 72, 136),
    (127, 256, 56),
    (128, 32, 128),
    (255, 264, 200),
    (257, 512, 264),
    (1, 4096, 128),
    (33, 1024, 520),
    // Not multiples of 8: tensor-core path not eligible, everything else is.
    (1, 1, 1),
    (2, 7, 2),
    (7, 31, 129),
    (129, 257, 7),
    (31, 33, 65),
];

/// Normwise bound of the tf32 path (f32 inputs, 10 mantissa bits inside the
/// tensor core): the bf16 bound.
const TF32_TOL: f64 = 1e-2;

/// The bias settings `(gate, up)`: none, gate only, both, up only.
const BIASES: [(bool, bool); 4] = [(false, false), (true, false), (true, true), (false, true)];

/// Where a path rounds to the storage type before the final output.
#[derive(Clone, Copy)]
enum Rounding {
    /// Fused kernels: f32 accumulators, bias, activation, product, one rounding.
    Once,
    /// B1/B2: the GEMMs store x·Wg and x·Wu in T; `act_and_mul` adds the
    /// biases and rounds once more.
    Split,
    /// B3: as B1, and the activation is stored in T before the multiply.
    Eager,
}

/// Runs one dtype through every shape, form, activation, bias setting and
/// applicable path; returns the table rows and the failures.
fn sweep<T: CudaElement>(g: &CudaGlu, rng: &mut Rng, table: &mut String) -> Vec<String> {
    let d = T::DTYPE;
    let tol = tolerance(d);
    let mut failures = Vec::new();
    let skip_cluster = cluster_skipped();
    let s = g.stream();
    // On the host emulator, one activation in three per (shape, form),
    // rotating: every activation still meets every form and path.
    let emu = emulated(g);
    for (si, &(m, k, n)) in SHAPES.iter().enumerate() {
        if !runs_here(g, "forward sweep", (m, k, n)) {
            continue;
        }
        let x: Vec<T> = rng.vec(m * k, 1.0);
        let scale = 1.0 / (k as f32).sqrt();
        let wg_l: Vec<T> = rng.vec(k * n, scale);
        let wu_l: Vec<T> = rng.vec(k * n, scale);
        let bg: Vec<T> = rng.vec(n, 0.5);
        let bu: Vec<T> = rng.vec(n, 0.5);
        let dx = s.clone_htod(&x).unwrap();
        for (fi, form) in [Form::Kn, Form::Nk, Form::Concat].into_iter().enumerate() {
            let layout = if form == Form::Kn {
                WeightLayout::KN
            } else {
                WeightLayout::NK
            };
            let (wg, wu) = (store(&wg_l, k, n, layout), store(&wu_l, k, n, layout));
            let mut gu = wg.clone();
            gu.extend_from_slice(&wu);
            let (dwg, dwu, dgu) = (
                s.clone_htod(&wg).unwrap(),
                s.clone_htod(&wu).unwrap(),
                s.clone_htod(&gu).unwrap(),
            );
            let (dbg, dbu) = (s.clone_htod(&bg).unwrap(), s.clone_htod(&bu).unwrap());
            // Unbiased products, then the biases: the fused kernels add
            // them before rounding; the cuBLAS baselines store x·W in T
            // first and add them in the elementwise kernel.
            let gate0 = preact_f64(&x, m, &wg, None, k, n, layout);
            let up0 = preact_f64(&x, m, &wu, None, k, n, layout);
            for (ai, act) in Activation::ALL.into_iter().enumerate() {
                let pick = si + fi + ai;
                if emu && pick % 3 != 0 {
                    continue;
                }
                // Two of the four bias settings per (shape, form, activation),
                // rotating with the case: every activation and every form
                // meets none, gate-only, both and up-only across the sweep.
                for bi in 0..2 {
                    let (bias_g, bias_u) = BIASES[(pick + bi) % BIASES.len()];
                    let hw = GluWeights::new(&wg, &wu, k, n, layout)
                        .unwrap()
                        .with_biases(bias_g.then_some(&bg[..]), bias_u.then_some(&bu[..]))
                        .unwrap();
                    let bias_at =
                        |b: Option<&[T]>, i: usize| b.map_or(0.0, |b| b[i % n].to_f32() as f64);
                    let round = |v: f64| T::from_f32(v as f32).to_f32() as f64;
                    let refs = |model: Rounding| -> Vec<f64> {
                        (0..m * n)
                            .map(|i| {
                                let (bgi, bui) =
                                    (bias_at(hw.bias_gate(), i), bias_at(hw.bias_up(), i));
                                match model {
                                    Rounding::Once => {
                                        act.apply_f64(gate0[i] + bgi) * (up0[i] + bui)
                                    }
                                    Rounding::Split => {
                                        act.apply_f64(round(gate0[i]) + bgi) * (round(up0[i]) + bui)
                                    }
                                    Rounding::Eager => {
                                        round(act.apply_f64(round(gate0[i]) + bgi))
                                            * (round(up0[i]) + bui)
                                    }
                                }
                            })
                            .collect()
                    };
                    let want_once = refs(Rounding::Once);
                    let want_split = refs(Rounding::Split);
                    let want_eager = refs(Rounding::Eager);
                    let dw = match form {
                        Form::Concat => DeviceGluWeights::from_gate_up(dgu.as_view(), k, n),
                        _ => DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, layout),
                    }
                    .unwrap()
                    .with_biases(bias_g.then(|| dbg.as_view()), bias_u.then(|| dbu.as_view()))
                    .unwrap();
                    let mut paths = vec![Path::FusedSimt, Path::CublasSplit, Path::CublasEager];
                    if d != DType::F32 && k % 8 == 0 && n % 8 == 0 {
                        paths.push(Path::FusedMma);
                        // Hopper-only / decode-only kernels: skipped below where
                        // they answer Unsupported.
                        paths.push(Path::FusedWgmma);
                        paths.push(Path::FusedWgmmaStaged);
                        paths.push(Path::FusedWgmmaTailSplit);
                        if !skip_cluster {
                            paths.push(Path::FusedWgmmaCluster);
                        }
                        if m <= 64 {
                            paths.push(Path::FusedSkinny);
                            paths.push(Path::FusedSkinnyStreamK);
                        }
                        if m <= 16 && form != Form::Kn {
                            paths.push(Path::FusedSkinnyRs);
                        }
                    }
                    if d == DType::F32 && k % 4 == 0 && n % 4 == 0 {
                        paths.push(Path::FusedMmaTf32);
                    }
                    if form == Form::Concat {
                        paths.push(Path::CublasConcat);
                    }
                    paths.push(Path::Auto);
                    for path in paths {
                        let mut out = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
                        let ran = g.forward(&dx, &[m, k], &dw, act, &mut out, path);
                        let row = match ran {
                            Ok(ran) => {
                                let got = s.clone_dtoh(&out).unwrap();
                                let want = match ran {
                                    Path::CublasSplit | Path::CublasConcat => &want_split,
                                    Path::CublasEager => &want_eager,
                                    _ => &want_once,
                                };
                                let err = rel_err(&got, want);
                                // tf32 keeps 10 mantissa bits per input: bf16's bound.
                                let tol = if ran == Path::FusedMmaTf32 {
                                    TF32_TOL
                                } else {
                                    tol
                                };
                                // Normwise, and elementwise (one wrong element
                                // in thousands passes the normwise bound).
                                let elems = check_elems(&got, want, tol);
                                let ok = err <= tol && elems.is_ok();
                                let line = format!(
                                    "{}\t{form:?}\t{m}x{k}x{n}\t{}\tbias={}{}\t{}\t{err:.3e}\t{}",
                                    d.name(),
                                    act.name(),
                                    bias_g as u8,
                                    bias_u as u8,
                                    ran.name(),
                                    match (ok, elems) {
                                        (true, _) => "ok".to_string(),
                                        (false, Ok(())) => "FAIL".to_string(),
                                        (false, Err(e)) => format!("FAIL ({e})"),
                                    }
                                );
                                if !ok {
                                    failures.push(line.clone());
                                }
                                line
                            }
                            Err(GluError::Unsupported { .. })
                                if matches!(
                                    path,
                                    Path::FusedWgmma
                                        | Path::FusedWgmmaStaged
                                        | Path::FusedWgmmaTailSplit
                                        | Path::FusedWgmmaCluster
                                ) && g.compute_capability() != (9, 0) =>
                            {
                                continue;
                            }
                            Err(e) => {
                                let line = format!(
                                    "{}\t{form:?}\t{m}x{k}x{n}\t{}\t{}\tERROR {e}",
                                    d.name(),
                                    act.name(),
                                    path.name()
                                );
                                failures.push(line.clone());
                                line
                            }
                        };
                        writeln!(table, "{row}").unwrap();
                    }
                }
            }
        }
    }
    failures
}

#[test]
fn forward_all_paths_match_reference() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("forward_all_paths_match_reference");
    let mut table = String::from("dtype\tform\tMxKxN\tact\tbias\tpath\trel_err\tstatus\n");
    let mut failures = sweep::<bf16>(g, &mut rng, &mut table);
    failures.extend(sweep::<f16>(g, &mut rng, &mut table));
    failures.extend(sweep::<f32>(g, &mut rng, &mut table));
    save("gpu_forward_errors.tsv", &table);
    // Worst error per (dtype, path), a compact summary for the log.
    let mut worst: std::collections::BTreeMap<(String, String), f64> = Default::default();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 8 {
            let e: f64 = f[6].parse().unwrap_or(f64::INFINITY);
            let w = worst
                .entry((f[0].to_string(), f[5].to_string()))
                .or_insert(0.0);
            *w = w.max(e);
        }
    }
    for ((d, p), e) in &worst {
        // The tf32 rows were checked against TF32_TOL (the summary printed
        // f32's 1e-5 for them until session 16).
        let tol = if p.ends_with("tf32") {
            TF32_TOL
        } else {
            tolerance(match d.as_str() {
                "bf16" => DType::BF16,
                "f16" => DType::F16,
                _ => DType::F32,
            })
        };
        eprintln!("worst rel_err {d:>5} {p:<12} {e:.3e} (tol {tol:.0e})");
    }
    for f in failures.iter().take(60) {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} GPU forward checks failed (see above)",
        failures.len(),
        table.lines().count() - 1
    );
}

/// The error checks themselves (CPU only): one sign-flipped element in
/// 51,000 passes bf16's normwise bound but not the elementwise check; a NaN
/// or a left-over finite sentinel fails both ways; a NaN reference matched
/// by a NaN passes; the normwise error is never NaN.
#[test]
fn elementwise_check_finds_one_bad_element() {
    let want: Vec<f64> = (0..51_000)
        .map(|i| ((i % 97) as f64 - 48.0) / 16.0)
        .collect();
    let exact: Vec<bf16> = want.iter().map(|&w| bf16::from_f64(w)).collect();
    let tol = tolerance(DType::BF16);
    assert!(rel_err(&exact, &want) <= tol);
    assert_eq!(check_elems(&exact, &want, tol), Ok(()));
    let mut flipped = exact.clone();
    flipped[40_000] = -flipped[40_000];
    assert!(want[40_000].abs() > 0.5);
    assert!(
        rel_err(&flipped, &want) <= tol,
        "the normwise bound misses it"
    );
    let e = check_elems(&flipped, &want, tol).unwrap_err();
    assert!(e.starts_with("element 40000:"), "{e}");
    let mut sentinel = exact.clone();
    sentinel[7] = bf16::from_f32(12345.0);
    assert!(check_elems(&sentinel, &want, tol).is_err());
    let mut nan = exact.clone();
    nan[3] = bf16::NAN;
    assert_eq!(rel_err(&nan, &want), f64::INFINITY);
    assert!(check_elems(&nan, &want, tol).is_err());
    // NaN where the reference is NaN: equal; anything else there is not.
    let mut want_nan = want.clone();
    want_nan[3] = f64::NAN;
    assert!(rel_err(&nan, &want_nan) <= tol);
    assert_eq!(check_elems(&nan, &want_nan, tol), Ok(()));
    assert_eq!(rel_err(&exact, &want_nan), f64::INFINITY);
    assert!(check_elems(&exact, &want_nan, tol).is_err());
    assert!(check_elems(&exact[1..], &want, tol).is_err(), "length");
}

#[test]
fn params_reach_kernels_intact() {
    let Some(g) = gpu() else { return };
    g.probe_params().unwrap();
}

#[test]
fn mma_fragment_layouts_match() {
    let Some(g) = gpu() else { return };
    let bad = g.probe_mma_fragments().unwrap();
    for b in bad.iter().take(20) {
        eprintln!("fragment mismatch: {b:?}");
    }
    assert!(bad.is_empty(), "{} fragment mismatches", bad.len());
}

#[test]
fn large_shape_fused_matches_cublas_and_reference_rows() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("large_shape");
    let (m, k, n) = (1000, 4096, 2816);
    if !runs_here(g, "large_shape", (m, k, n)) {
        return;
    }
    let s = g.stream();
    let x: Vec<bf16> = rng.vec(m * k, 1.0);
    let gu: Vec<bf16> = rng.vec(2 * n * k, 1.0 / 64.0);
    let dx = s.clone_htod(&x).unwrap();
    let dgu = s.clone_htod(&gu).unwrap();
    let dw = DeviceGluWeights::from_gate_up(dgu.as_view(), k, n).unwrap();
    let run = |p| {
        let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
        let ran = g
            .forward(&dx, &[m, k], &dw, Activation::Silu, &mut out, p)
            .unwrap();
        assert_eq!(ran, p);
        s.clone_dtoh(&out).unwrap()
    };
    let fused = run(Path::FusedMma);
    let b1 = run(Path::CublasSplit);
    let b2 = run(Path::CublasConcat);
    let b1f: Vec<f64> = b1.iter().map(|v| v.to_f64()).collect();
    let e_b1 = rel_err(&fused, &b1f);
    let e_b2 = rel_err(&b2, &b1f);
    eprintln!("1000x4096x2816 bf16: fused vs B1 {e_b1:.3e}, B2 vs B1 {e_b2:.3e}");
    assert!(e_b1 < 1e-2 && e_b2 < 1e-2);
    // 16 sampled rows against f64.
    let hw = GluWeights::from_gate_up(&gu, k, n).unwrap();
    for i in 0..16 {
        let r = (rng.next_u64() as usize) % m;
        let want = common::reference(&x[r * k..(r + 1) * k], 1, &hw, Activation::Silu);
        let e = rel_err(&fused[r * n..(r + 1) * n], &want);
        assert!(e < 1e-2, "row {r} (sample {i}): rel_err {e}");
    }
}

#[test]
fn misaligned_buffers_take_the_exact_path_or_error() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("misaligned");
    let (m, k, n) = (33, 64, 72);
    let s = g.stream();
    let x: Vec<bf16> = rng.vec(m * k + 1, 1.0);
    let wg: Vec<bf16> = rng.vec(k * n, 0.125);
    let wu: Vec<bf16> = rng.vec(k * n, 0.125);
    let dx = s.clone_htod(&x).unwrap();
    let (dwg, dwu) = (s.clone_htod(&wg).unwrap(), s.clone_htod(&wu).unwrap());
    let dw = DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, WeightLayout::NK).unwrap();
    let xv = dx.slice(1..); // 2-byte offset: not 16-byte aligned
    let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
    let err = g
        .forward(
            &xv,
            &[m, k],
            &dw,
            Activation::Silu,
            &mut out,
            Path::FusedMma,
        )
        .unwrap_err();
    assert!(matches!(err, GluError::Misaligned { .. }), "{err}");
    assert!(
        s.clone_dtoh(&out).unwrap().iter().all(|v| v.is_nan()),
        "output written on error"
    );
    let ran = g
        .forward(&xv, &[m, k], &dw, Activation::Silu, &mut out, Path::Auto)
        .unwrap();
    assert_eq!(ran, Path::FusedSimt);
    let hw = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK).unwrap();
    let want = common::reference(&x[1..], m, &hw, Activation::Silu);
    let e = rel_err(&s.clone_dtoh(&out).unwrap(), &want);
    assert!(e < 1e-2, "rel_err {e}");
}

/// The tf32 opt-in: Auto keeps f32 exact (cuBLAS SGEMM) until
/// `set_allow_tf32(true)`, then runs the tf32 kernel on eligible problems on
/// sm_80..89 (cuBLAS in tf32 on the rest) and cuBLAS in tf32 on 9.x; forced, the tf32
/// kernel runs on any sm_80+ GPU, and rejects other dtypes and K, N not
/// multiples of 4 with typed errors, writing nothing.
#[test]
fn tf32_is_opt_in_and_checked() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    let s = g.stream();
    let mut rng = Rng::fresh("tf32_opt_in");
    for (m, k, n, layout, tf32_ok) in [
        (300, 264, 200, WeightLayout::KN, true),
        (129, 1028, 132, WeightLayout::NK, true),
        (7, 30, 20, WeightLayout::NK, false),
    ] {
        let x: Vec<f32> = rng.vec(m * k, 1.0);
        let sc = 1.0 / (k as f32).sqrt();
        let (wg, wu): (Vec<f32>, Vec<f32>) = (rng.vec(k * n, sc), rng.vec(k * n, sc));
        let (wg, wu) = (store(&wg, k, n, layout), store(&wu, k, n, layout));
        let hw = GluWeights::new(&wg, &wu, k, n, layout).unwrap();
        let want = common::reference(&x, m, &hw, Activation::Silu);
        let (dx, dwg, dwu) = (
            s.clone_htod(&x).unwrap(),
            s.clone_htod(&wg).unwrap(),
            s.clone_htod(&wu).unwrap(),
        );
        let dw = DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, layout).unwrap();
        for allow in [false, true] {
            g.set_allow_tf32(allow);
            let mut out = s.clone_htod(&vec![f32::NAN; m * n]).unwrap();
            let ran = g
                .forward(&dx, &[m, k], &dw, Activation::Silu, &mut out, Path::Auto)
                .unwrap();
            let hopper = g.compute_capability().0 >= 9;
            let expect = match (allow, hopper) {
                (true, false) if tf32_ok => Path::FusedMmaTf32,
                _ => Path::CublasSplit,
            };
            assert_eq!(ran, expect, "{m}x{k}x{n} allow_tf32={allow}");
            let e = rel_err(&s.clone_dtoh(&out).unwrap(), &want);
            // Off, cuBLAS must stay exact f32 (no tf32 math mode).
            let tol = if allow {
                TF32_TOL
            } else {
                tolerance(DType::F32)
            };
            assert!(e <= tol, "{m}x{k}x{n} {}: rel_err {e:.3e}", ran.name());
        }
        g.set_allow_tf32(false);
        let mut out = s.clone_htod(&vec![f32::NAN; m * n]).unwrap();
        let r = g.forward(
            &dx,
            &[m, k],
            &dw,
            Activation::Silu,
            &mut out,
            Path::FusedMmaTf32,
        );
        if tf32_ok {
            assert_eq!(
                r.unwrap(),
                Path::FusedMmaTf32,
                "forcing ignores the opt-in flag"
            );
        } else {
            assert!(matches!(r, Err(GluError::Misaligned { .. })), "{r:?}");
            assert!(
                s.clone_dtoh(&out).unwrap().iter().all(|v| v.is_nan()),
                "output written on error"
            );
        }
    }
    // bf16 on the tf32 path: Unsupported.
    let (m, k, n) = (4, 16, 8);
    let x = s.clone_htod(&vec![bf16::from_f32(1.0); m * k]).unwrap();
    let w = s.clone_htod(&vec![bf16::from_f32(0.5); k * n]).unwrap();
    let dw = DeviceGluWeights::new(w.as_view(), w.as_view(), k, n, WeightLayout::KN).unwrap();
    let mut out = s.alloc_zeros::<bf16>(m * n).unwrap();
    let e = g
        .forward(
            &x,
            &[m, k],
            &dw,
            Activation::Silu,
            &mut out,
            Path::FusedMmaTf32,
        )
        .unwrap_err();
    assert!(matches!(e, GluError::Unsupported { .. }), "{e}");
}

#[test]
fn bad_requests_are_typed_errors_and_write_nothing() {
    let Some(g) = gpu() else { return };
    let s = g.stream();
    let (m, k, n) = (4, 16, 8);
    let x = s.clone_htod(&vec![1.0f32; m * k]).unwrap();
    let w = s.clone_htod(&vec![0.5f32; k * n]).unwrap();
    let dw = DeviceGluWeights::new(w.as_view(), w.as_view(), k, n, WeightLayout::KN).unwrap();
    let mut out = s.clone_htod(&vec![f32::NAN; m * n]).unwrap();
    let e = g
        .forward(&x, &[m, k], &dw, Activation::Silu, &mut out, Path::FusedMma)
        .unwrap_err();
    assert!(matches!(e, GluError::Unsupported { .. }), "{e}");
    let e = g
        .forward(
            &x,
            &[m, k],
            &dw,
            Activation::Silu,
            &mut out,
            Path::CublasConcat,
        )
        .unwrap_err();
    assert!(matches!(e, GluError::Unsupported { .. }), "{e}");
    let e = g
        .forward(&x, &[m, k + 1], &dw, Activation::Silu, &mut out, Path::Auto)
        .unwrap_err();
    assert!(matches!(e, GluError::DimMismatch { .. }), "{e}");
    let e = g
        .forward(&x, &[m + 1, k], &dw, Activation::Silu, &mut out, Path::Auto)
        .unwrap_err();
    assert!(matches!(e, GluError::LengthMismatch { .. }), "{e}");
    let e = g
        .forward(
            &x,
            &[m, k],
            &dw,
            Activation::Swish { beta: f32::NAN },
            &mut out,
            Path::Auto,
        )
        .unwrap_err();
    assert!(matches!(e, GluError::BadActivation(_)), "{e}");
    assert!(
        s.clone_dtoh(&out).unwrap().iter().all(|v| v.is_nan()),
        "output written on error"
    );
    // M = 0: nothing to do, Ok.
    let mut empty = s.alloc_zeros::<f32>(0).unwrap();
    let x0 = s.alloc_zeros::<f32>(0).unwrap();
    g.forward(&x0, &[0, k], &dw, Activation::Silu, &mut empty, Path::Auto)
        .unwrap();
}

#[test]
fn nan_in_x_poisons_only_its_row() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("nan_row");
    let (m, k, n) = (20, 64, 64);
    let s = g.stream();
    let mut x: Vec<bf16> = rng.vec(m * k, 1.0);
    x[5 * k + 3] = bf16::NAN;
    let w: Vec<bf16> = rng.vec(k * n, 0.125);
    let (dx, dw_) = (s.clone_htod(&x).unwrap(), s.clone_htod(&w).unwrap());
    let dw = DeviceGluWeights::new(dw_.as_view(), dw_.as_view(), k, n, WeightLayout::NK).unwrap();
    // The f64 pre-activations (gate = up: one weight for both); row 5 is NaN.
    let pre = preact_f64(&x, m, &w, None, k, n, WeightLayout::NK);
    let round = |v: f64| bf16::from_f64(v).to_f64();
    // A finite sentinel: an element a path leaves unwritten keeps it and
    // fails the comparison below.
    let sentinel = bf16::from_f32(12345.0);
    for path in [Path::FusedMma, Path::FusedSimt, Path::CublasSplit] {
        for act in Activation::ALL {
            // The fused kernels round once; cuBLAS split stores x·W in bf16
            // before the activation.
            let want: Vec<f64> = pre
                .iter()
                .map(|&p| match path {
                    Path::CublasSplit => act.apply_f64(round(p)) * round(p),
                    _ => act.apply_f64(p) * p,
                })
                .collect();
            let mut out = s.clone_htod(&vec![sentinel; m * n]).unwrap();
            g.forward(&dx, &[m, k], &dw, act, &mut out, path).unwrap();
            let o = s.clone_dtoh(&out).unwrap();
            for r in 0..m {
                let nans = o[r * n..(r + 1) * n].iter().filter(|v| v.is_nan()).count();
                if r == 5 {
                    assert_eq!(nans, n, "{path:?} {act:?}: NaN row not propagated");
                } else {
                    assert_eq!(nans, 0, "{path:?} {act:?}: NaN leaked into row {r}");
                }
            }
            // The other rows hold the reference's values (row 5 is NaN on
            // both sides): normwise and element by element, bf16's bound.
            let e = rel_err(&o, &want);
            assert!(e <= 1e-2, "{path:?} {act:?}: rel_err {e:.3e}");
            if let Err(e) = check_elems(&o, &want, 1e-2) {
                panic!("{path:?} {act:?}: {e}");
            }
        }
    }
}

#[test]
fn gate_grads_match_reference() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("gate_grads");
    let s = g.stream();
    for &(rows, n) in &[(1usize, 1usize), (7, 129), (64, 64), (33, 4104)] {
        for act in Activation::ALL {
            let gate: Vec<f32> = rng.vec(rows * n, 3.0);
            let up: Vec<f32> = rng.vec(rows * n, 2.0);
            let dout: Vec<f32> = rng.vec(rows * n, 1.0);
            let (dgt, dup, ddo) = (
                s.clone_htod(&gate).unwrap(),
                s.clone_htod(&up).unwrap(),
                s.clone_htod(&dout).unwrap(),
            );
            let mut dg = s.clone_htod(&vec![f32::NAN; rows * n]).unwrap();
            let mut du = s.clone_htod(&vec![f32::NAN; rows * n]).unwrap();
            g.gate_grads(&dgt, &dup, &ddo, rows, n, act, &mut dg, &mut du)
                .unwrap();
            let (dg, du) = (s.clone_dtoh(&dg).unwrap(), s.clone_dtoh(&du).unwrap());
            let want_g: Vec<f64> = (0..rows * n)
                .map(|i| dout[i] as f64 * up[i] as f64 * act.grad_f64(gate[i] as f64))
                .collect();
            let want_u: Vec<f64> = (0..rows * n)
                .map(|i| dout[i] as f64 * act.apply_f64(gate[i] as f64))
                .collect();
            let (eg, eu) = (rel_err(&dg, &want_g), rel_err(&du, &want_u));
            assert!(
                eg < 1e-5 && eu < 1e-5,
                "{act:?} {rows}x{n}: dGate {eg:.2e} dUp {eu:.2e}"
            );
        }
    }
}

#[test]
fn leading_batch_dims_are_flattened() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("batch_dims");
    let (b, t, k, n) = (3, 5, 32, 24);
    let x: Vec<f16> = rng.vec(b * t * k, 1.0);
    let w: Vec<f16> = rng.vec(2 * n * k, 0.2);
    let hw = GluWeights::from_gate_up(&w, k, n).unwrap();
    let (out, ran) = g
        .forward_host(&x, &[b, t, k], &hw, Activation::GeluTanh, Path::Auto)
        .unwrap();
    assert_ne!(ran, Path::Auto, "the path that ran is reported");
    let want = common::reference(&x, b * t, &hw, Activation::GeluTanh);
    assert!(rel_err(&out, &want) < 2e-3);
}

/// One `CudaGlu` shared by several threads (it is `Send + Sync`): each
/// thread runs its own shapes, so the decode kernel (its split-K scratch is
/// shared), the tensor-core kernels, the exact f32 kernel and a cuBLAS
/// baseline are all queued from several threads at once on the handle's
/// stream. Every result must match the f64 reference.
#[test]
fn one_handle_shared_by_threads() {
    let Some(g) = gpu() else { return };
    let seed = Rng::fresh("one_handle_shared_by_threads").next_u64();
    // (m, k, n, path): split-K decode at two paddings, decode without a
    // split, stream-K decode (its scratch is shared too), prefill sizes,
    // exact f32, a baseline.
    let jobs: &[(usize, usize, usize, Path)] = &[
        (3, 2048, 1000, Path::Auto),
        (20, 1024, 520, Path::FusedSkinny),
        (16, 512, 8192, Path::FusedSkinny),
        (9, 1024, 2000, Path::FusedSkinnyStreamK),
        (4, 2048, 1000, Path::FusedSkinnyRs),
        (200, 512, 264, Path::Auto),
        (130, 256, 136, Path::FusedMma),
        (64, 512, 264, Path::CublasSplit),
    ];
    let failures: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..6u64)
            .map(|t| {
                sc.spawn(move || {
                    let mut rng = Rng::from_seed(seed ^ (t + 1).wrapping_mul(0x9E37_79B9));
                    let s = g.stream();
                    let mut bad = Vec::new();
                    for round in 0..4 {
                        let (m, k, n, path) = jobs[(t as usize + round) % jobs.len()];
                        let x: Vec<bf16> = rng.vec(m * k, 1.0);
                        let w: Vec<bf16> = rng.vec(2 * n * k, 1.0 / (k as f32).sqrt());
                        let dx = s.clone_htod(&x).unwrap();
                        let dw_ = s.clone_htod(&w).unwrap();
                        let dw = DeviceGluWeights::from_gate_up(dw_.as_view(), k, n).unwrap();
                        let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
                        let act = Activation::ALL[(t as usize + round) % Activation::ALL.len()];
                        let act = if let Activation::Swish { .. } = act {
                            Activation::Swish { beta: 0.8 }
                        } else {
                            act
                        };
                        match g.forward(&dx, &[m, k], &dw, act, &mut out, path) {
                            Ok(ran) => {
                                let got = s.clone_dtoh(&out).unwrap();
                                let hw = GluWeights::from_gate_up(&w, k, n).unwrap();
                                let want = common::reference(&x, m, &hw, act);
                                let e = rel_err(&got, &want);
                                if e.is_nan() || e > tolerance(DType::BF16) {
                                    bad.push(format!(
                                        "thread {t} round {round}: {m}x{k}x{n} {} via {}: rel_err {e:.3e}",
                                        act.name(),
                                        ran.name()
                                    ));
                                }
                            }
                            Err(e) => bad.push(format!(
                                "thread {t} round {round}: {m}x{k}x{n} {path:?}: {e}"
                            )),
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread panicked"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One autotuner case: `(m, k, n, layout, concatenated weights, x offset
/// in elements)`.
type TuneCase = (usize, usize, usize, WeightLayout, bool, usize);

/// Runs `c` through the autotuner of `g` (cleared first) and checks the
/// decision it records; appends a line to `table`.
/// Autotunes one problem class and checks the kept path; false when the
/// case is left out here (the emulator's size limit), so that a caller does
/// not read the previous case's decision as this one's.
fn autotune_case<T: CudaElement>(
    g: &CudaGlu,
    rng: &mut Rng,
    c: TuneCase,
    table: &mut String,
) -> bool {
    let (m, k, n, layout, concat, off) = c;
    if !runs_here(g, "autotune case", (m, k, n)) {
        return false;
    }
    let s = g.stream();
    g.clear_tuned_paths();
    g.set_autotune(true);
    let label = format!(
        "{} {m}x{k}x{n} {layout:?} concat={concat} offset={off}",
        T::DTYPE.name()
    );
    let scale = 1.0 / (k as f32).sqrt();
    let x: Vec<T> = rng.vec(m * k + off, 1.0);
    let (wg, wu): (Vec<T>, Vec<T>) = (rng.vec(k * n, scale), rng.vec(k * n, scale));
    let (wg, wu) = (store(&wg, k, n, layout), store(&wu, k, n, layout));
    let mut gu = wg.clone();
    gu.extend_from_slice(&wu);
    let (dx, dwg, dwu, dgu) = (
        s.clone_htod(&x).unwrap(),
        s.clone_htod(&wg).unwrap(),
        s.clone_htod(&wu).unwrap(),
        s.clone_htod(&gu).unwrap(),
    );
    let dw = if concat {
        DeviceGluWeights::from_gate_up(dgu.as_view(), k, n)
    } else {
        DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, layout)
    }
    .unwrap();
    let hw = GluWeights::new(&wg, &wu, k, n, layout).unwrap();
    let want = common::reference(&x[off..], m, &hw, Activation::Silu);
    let xv = dx.slice(off..);
    let mut out = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
    let tol = tolerance(T::DTYPE);
    let ran = g
        .forward(&xv, &[m, k], &dw, Activation::Silu, &mut out, Path::Auto)
        .unwrap();
    let tuned_out = s.clone_dtoh(&out).unwrap();
    let e = rel_err(&tuned_out, &want);
    assert!(e <= tol, "{label}: {} rel_err {e:.3e}", ran.name());
    // The output is the kept path's own (its final run, after the timed
    // ones): this crate's kernels are deterministic, so the same path
    // forced gives the same bits.
    if ran.is_fused() {
        let mut forced = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
        g.forward(&xv, &[m, k], &dw, Activation::Silu, &mut forced, ran)
            .unwrap();
        let forced = s.clone_dtoh(&forced).unwrap();
        let same = tuned_out
            .iter()
            .zip(&forced)
            .all(|(a, b)| a.to_f32().to_bits() == b.to_f32().to_bits());
        assert!(
            same,
            "{label}: the tuned call's output is not {}'s",
            ran.name()
        );
    }

    let tuned = g.tuned_paths();
    assert_eq!(tuned.len(), 1, "{label}: {tuned:?}");
    let t = &tuned[0];
    let timings: Vec<String> = t
        .timings
        .iter()
        .map(|(p, us)| format!("{}={us:.1?}us", p.name()))
        .collect();
    writeln!(
        table,
        "{label}\tbuilt-in {}\tchosen {}\t{}",
        t.heuristic.name(),
        t.chosen.name(),
        timings.join(" ")
    )
    .unwrap();
    assert_eq!(t.chosen, ran, "{label}");
    assert_eq!((t.measured_m, t.k, t.n), (m, k, n), "{label}");
    assert_eq!(
        (t.dtype, t.layout, t.concatenated),
        (T::DTYPE, layout, concat),
        "{label}"
    );
    assert!(t.rows.0 <= m && m <= t.rows.1, "{label}: {:?}", t.rows);
    let aligned = off == 0;
    assert_eq!(t.aligned, aligned, "{label}");
    let builtin = g.auto_path(m, k, n, T::DTYPE, layout, aligned, concat);
    assert_eq!(t.heuristic, builtin, "{label}");
    assert_eq!(
        t.timings[0].0, builtin,
        "{label}: built-in choice not first"
    );
    // Every candidate can take the problem, so every one ran.
    assert!(t.failures.is_empty(), "{label}: {:?}", t.failures);
    let times: Vec<f64> = t
        .timings
        .iter()
        .map(|(p, us)| us.unwrap_or_else(|| panic!("{label}: {} did not run", p.name())))
        .collect();
    assert!(
        times.iter().all(|&us| us.is_finite() && us > 0.0),
        "{label}: {times:?}"
    );
    assert!(
        t.timings.iter().all(|(p, _)| *p != Path::FusedMmaTf32),
        "{label}: tf32 without the opt-in"
    );
    let fastest = times.iter().cloned().fold(f64::INFINITY, f64::min);
    let chosen_t = times[t.timings.iter().position(|(p, _)| *p == ran).unwrap()];
    // The fastest, or the built-in choice within the 2% margin of it.
    assert!(
        chosen_t == fastest || (ran == builtin && chosen_t * 0.98 <= fastest),
        "{label}: chose {} at {chosen_t} us, fastest {fastest} us",
        ran.name()
    );

    // Reused: same path, nothing timed again.
    s.memcpy_htod(&vec![T::from_f32(f32::NAN); m * n], &mut out)
        .unwrap();
    let again = g
        .forward(&xv, &[m, k], &dw, Activation::Silu, &mut out, Path::Auto)
        .unwrap();
    assert_eq!(again, ran, "{label}");
    assert_eq!(g.tuned_paths(), tuned, "{label}: timed again");
    let e = rel_err(&s.clone_dtoh(&out).unwrap(), &want);
    assert!(e <= tol, "{label}: reused {} rel_err {e:.3e}", ran.name());
    // Off: the built-in choice.
    g.set_autotune(false);
    let off_ran = g
        .forward(&xv, &[m, k], &dw, Activation::Silu, &mut out, Path::Auto)
        .unwrap();
    assert_eq!(off_ran, builtin, "{label}");
    true
}

/// The autotuner (`set_autotune(true)`): a `Path::Auto` call of a new
/// problem class times every candidate, keeps one and returns it; the result
/// is right whichever path won; every candidate could run (they are chosen
/// among the paths that can take the problem); the built-in choice is timed
/// first and stays unless another was clearly faster; later calls of the
/// class reuse the decision without timing again; turning it off restores
/// the built-in choice.
#[test]
fn autotune_times_the_candidates_and_keeps_one() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    let mut rng = Rng::fresh("autotune");
    let mut table = String::new();
    let bf16_cases: &[TuneCase] = &[
        (3, 1024, 520, WeightLayout::NK, true, 0), // decode
        (40, 512, 264, WeightLayout::NK, false, 0),
        (300, 264, 136, WeightLayout::KN, false, 0), // prefill, tails
        (512, 1024, 1024, WeightLayout::NK, true, 0),
        (7, 31, 129, WeightLayout::NK, false, 0), // no tensor cores
        (33, 64, 72, WeightLayout::KN, false, 1), // misaligned x
    ];
    for &c in bf16_cases {
        autotune_case::<bf16>(&g, &mut rng, c, &mut table);
    }
    // One candidate far slower than another: the exact CUDA-core kernel
    // against cuBLAS on a problem the fused tensor-core kernels cannot take
    // (K not a multiple of 8). It is not kept, and its time says why (a
    // timing filed under the wrong candidate would show here).
    // Left out on the emulator (its size limit; runs_here prints it), where
    // the tuned table still holds the previous case's decision.
    if autotune_case::<bf16>(
        &g,
        &mut rng,
        (512, 2044, 2048, WeightLayout::NK, false, 0),
        &mut table,
    ) {
        let t = &g.tuned_paths()[0];
        let us = |p: Path| {
            t.timings
                .iter()
                .find(|(q, _)| *q == p)
                .and_then(|(_, v)| *v)
        };
        assert_ne!(t.chosen, Path::FusedSimt, "{t:?}");
        let (simt, kept) = (us(Path::FusedSimt).unwrap(), us(t.chosen).unwrap());
        assert!(
            simt > 1.5 * kept,
            "SIMT {simt} us vs {} {kept} us",
            t.chosen.name()
        );
    }
    // f32 stays exact: the SIMT kernel or cuBLAS SGEMM.
    autotune_case::<f32>(
        &g,
        &mut rng,
        (65, 72, 40, WeightLayout::NK, false, 0),
        &mut table,
    );
    eprintln!("{table}");
    save("autotune.tsv", &table);
}

/// Threads sharing one autotuned handle: a class is measured once (the
/// others wait for the decision and reuse it), every thread runs the kept
/// path, and every result matches f64.
#[test]
fn autotune_shared_by_threads() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    g.set_autotune(true);
    let seed = Rng::fresh("autotune_shared_by_threads").next_u64();
    // Two classes: decode rows 3..=4, prefill rows 257..=384.
    let jobs: &[(usize, usize, usize)] = &[
        (3, 1024, 520),
        (4, 1024, 520),
        (300, 512, 264),
        (260, 512, 264),
    ];
    type Seen = (usize, Path, Option<swiglu::cuda::TunedPath>);
    let ran: Vec<Result<Vec<Seen>, String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4u64)
            .map(|t| {
                let g = &g;
                sc.spawn(move || {
                    let mut rng = Rng::from_seed(seed ^ (t + 1).wrapping_mul(0x9E37_79B9));
                    let s = g.stream();
                    let mut paths = Vec::new();
                    for round in 0..4 {
                        let (m, k, n) =
                            shrink_on_emulator(g, jobs[(t as usize + round) % jobs.len()]);
                        let x: Vec<bf16> = rng.vec(m * k, 1.0);
                        let w: Vec<bf16> = rng.vec(2 * n * k, 1.0 / (k as f32).sqrt());
                        let (dx, dw_) = (s.clone_htod(&x).unwrap(), s.clone_htod(&w).unwrap());
                        let dw = DeviceGluWeights::from_gate_up(dw_.as_view(), k, n).unwrap();
                        let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
                        let p = g
                            .forward(&dx, &[m, k], &dw, Activation::Silu, &mut out, Path::Auto)
                            .map_err(|e| format!("thread {t}: {m}x{k}x{n}: {e}"))?;
                        let hw = GluWeights::from_gate_up(&w, k, n).unwrap();
                        let want = common::reference(&x, m, &hw, Activation::Silu);
                        let e = rel_err(&s.clone_dtoh(&out).unwrap(), &want);
                        if e.is_nan() || e > tolerance(DType::BF16) {
                            return Err(format!(
                                "thread {t}: {m}x{k}x{n} via {}: rel_err {e:.3e}",
                                p.name()
                            ));
                        }
                        // The class's decision as this thread saw it: a
                        // second tuning pass would replace it (timings
                        // differ every time) and show below.
                        let seen = g
                            .tuned_paths()
                            .into_iter()
                            .find(|t| t.rows.0 <= m && m <= t.rows.1);
                        paths.push((m, p, seen));
                    }
                    Ok(paths)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let mut by_class: std::collections::HashMap<bool, Path> = std::collections::HashMap::new();
    let ran: Vec<Seen> = ran
        .into_iter()
        .flat_map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    for (m, p, _) in &ran {
        let kept = *by_class.entry(*m > 64).or_insert(*p);
        assert_eq!(*p, kept, "two paths ran for one class (m = {m})");
    }
    let tuned = g.tuned_paths();
    assert_eq!(tuned.len(), 2, "each class measured once: {tuned:?}");
    for t in &tuned {
        assert_eq!(Some(&t.chosen), by_class.get(&(t.measured_m > 64)), "{t:?}");
    }
    // Every thread saw, right after its call, the decision that stands at
    // the end: no class was measured twice.
    for (m, _, seen) in &ran {
        let last = tuned.iter().find(|t| t.rows.0 <= *m && *m <= t.rows.1);
        assert!(seen.is_some(), "m = {m}: no decision right after the call");
        assert_eq!(seen.as_ref(), last, "m = {m}: the class was measured again");
    }
}

/// A table exported by one handle and imported by another: the second runs
/// the first one's decisions without measuring anything.
#[test]
fn autotune_table_moves_between_handles() {
    let Some(shared) = gpu() else { return };
    let (g1, g2) = (
        common::gpu::own_handle(shared),
        common::gpu::own_handle(shared),
    );
    g1.set_autotune(true);
    g2.set_autotune(true);
    let mut rng = Rng::fresh("autotune_table");
    let shapes = [(5, 1024, 520), (300, 512, 264)];
    let mut bufs = Vec::new();
    for &shape in &shapes {
        let (m, k, n) = shrink_on_emulator(shared, shape);
        let x: Vec<bf16> = rng.vec(m * k, 1.0);
        let w: Vec<bf16> = rng.vec(2 * n * k, 1.0 / (k as f32).sqrt());
        bufs.push((m, k, n, x, w));
    }
    let run = |g: &CudaGlu, (m, k, n, x, w): &(usize, usize, usize, Vec<bf16>, Vec<bf16>)| {
        let s = g.stream();
        let (dx, dw_) = (s.clone_htod(x).unwrap(), s.clone_htod(w).unwrap());
        let dw = DeviceGluWeights::from_gate_up(dw_.as_view(), *k, *n).unwrap();
        let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
        let p = g
            .forward(&dx, &[*m, *k], &dw, Activation::Silu, &mut out, Path::Auto)
            .unwrap();
        let hw = GluWeights::from_gate_up(w, *k, *n).unwrap();
        let e = rel_err(
            &g.stream().clone_dtoh(&out).unwrap(),
            &common::reference(x, *m, &hw, Activation::Silu),
        );
        assert!(
            e <= tolerance(DType::BF16),
            "{m}x{k}x{n} via {}: {e:.3e}",
            p.name()
        );
        p
    };
    let first: Vec<Path> = bufs.iter().map(|b| run(&g1, b)).collect();
    let table = g1.export_tuned_paths();
    eprintln!("{table}");
    assert_eq!(g2.import_tuned_paths(&table).unwrap(), 2);
    let imported = g2.tuned_paths();
    let second: Vec<Path> = bufs.iter().map(|b| run(&g2, b)).collect();
    assert_eq!(first, second);
    assert_eq!(g2.tuned_paths(), imported, "g2 measured again");
    // Exported again, the same text.
    assert_eq!(g2.export_tuned_paths(), table);
    save("autotune_table.tsv", &table);
}
