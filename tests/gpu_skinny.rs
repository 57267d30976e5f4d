//! GPU tests of the decode-sized (M ≤ 64) skinny kernel against an f64
//! reference: M across the 16/32/64 padding boundaries, K and N tails, both
//! layouts and the concatenated form, every activation, biases on/off,
//! bf16 and f16, split-K on and off; and of the same kernel on its stream-K
//! schedule ([`Path::FusedSkinnyStreamK`]) on every one of those cases, and
//! of the register-streaming kernel ([`Path::FusedSkinnyRs`]) on those it
//! takes (M ≤ 16, NK and concatenated weights).
//!
//! Without a usable GPU these tests print why and pass as skipped; with
//! `SWIGLU_REQUIRE_GPU=1` they fail instead.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{gpu, runs_here, save, tolerance};

use common::{Rng, preact_f64, rel_err, store, worst_block_rel_err, worst_of};
use std::fmt::Write as _;
use swiglu::cuda::{CudaElement, CudaGlu, DeviceGluWeights, Path};
use swiglu::{Activation, GluError, WeightLayout, bf16, f16};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Kn,
    Nk,
    Concat,
}

const MS: &[usize] = &[1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64];
// 1000 is not a multiple of the 64-deep k-tile.
const KS: &[usize] = &[8, 40, 1000, 4096];
const NS: &[usize] = &[8, 24, 72, 1000, 4104];

/// The decode kernel's two schedules: split-K and stream-K.
const PATHS: [Path; 2] = [Path::FusedSkinny, Path::FusedSkinnyStreamK];
/// Largest M of the register-streaming kernel (`GLU_SKINNY_RS_MAX_M`).
const RS_MAX_M: usize = 16;

/// The decode paths that take `m` rows in weight form `form`.
fn paths_for(m: usize, form: Form) -> impl Iterator<Item = Path> {
    let rs = form != Form::Kn && m <= RS_MAX_M;
    PATHS.into_iter().chain(rs.then_some(Path::FusedSkinnyRs))
}

/// One (M, K, N) case: every form, a rotating activation and bias setting,
/// both schedules.
fn run_case<T: CudaElement>(
    g: &CudaGlu,
    rng: &mut Rng,
    m: usize,
    k: usize,
    n: usize,
    salt: usize,
    table: &mut String,
) -> Vec<String> {
    if !runs_here(g, "skinny case", (m, k, n)) {
        return Vec::new();
    }
    let d = T::DTYPE;
    let tol = tolerance(d);
    let s = g.stream();
    let mut failures = Vec::new();
    let x: Vec<T> = rng.vec(m * k, 1.0);
    let scale = 1.0 / (k as f32).sqrt();
    let wg_l: Vec<T> = rng.vec(k * n, scale);
    let wu_l: Vec<T> = rng.vec(k * n, scale);
    let bg: Vec<T> = rng.vec(n, 0.5);
    let bu: Vec<T> = rng.vec(n, 0.5);
    let dx = s.clone_htod(&x).unwrap();
    let (dbg, dbu) = (s.clone_htod(&bg).unwrap(), s.clone_htod(&bu).unwrap());
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
        // Rotate activation and bias setting over (case, form) so every
        // combination is hit across the sweep without running all of them.
        let pick = salt * 3 + fi;
        let act = Activation::ALL[pick % Activation::ALL.len()];
        let act = if let Activation::Swish { .. } = act {
            Activation::Swish { beta: 1.7 }
        } else {
            act
        };
        let (bias_g, bias_u) =
            [(false, false), (true, true), (true, false), (false, true)][(pick / 7) % 4];
        let gate = preact_f64(&x, m, &wg, bias_g.then_some(&bg[..]), k, n, layout);
        let up = preact_f64(&x, m, &wu, bias_u.then_some(&bu[..]), k, n, layout);
        let want: Vec<f64> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| act.apply_f64(*g) * u)
            .collect();
        let dw = match form {
            Form::Concat => DeviceGluWeights::from_gate_up(dgu.as_view(), k, n),
            _ => DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, layout),
        }
        .unwrap()
        .with_biases(bias_g.then(|| dbg.as_view()), bias_u.then(|| dbu.as_view()))
        .unwrap();
        for path in paths_for(m, form) {
            let mut out = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
            let line = match g.forward(&dx, &[m, k], &dw, act, &mut out, path) {
                Ok(_) => {
                    let got = s.clone_dtoh(&out).unwrap();
                    // Whole output, and each 64-column tile (where a lost
                    // split-K or stream-K partial would show).
                    let err = worst_of(
                        rel_err(&got, &want),
                        worst_block_rel_err(&got, &want, n, 64),
                    );
                    let ok = err <= tol;
                    format!(
                        "{}\t{}\t{form:?}\t{m}x{k}x{n}\t{}\tbias={}{}\t{err:.3e}\t{}",
                        path.name(),
                        d.name(),
                        act.name(),
                        bias_g as u8,
                        bias_u as u8,
                        if ok { "ok" } else { "FAIL" }
                    )
                }
                Err(e) => format!(
                    "{}\t{}\t{form:?}\t{m}x{k}x{n}\t{}\tERROR {e}",
                    path.name(),
                    d.name(),
                    act.name()
                ),
            };
            if !line.ends_with("\tok") {
                failures.push(line.clone());
            }
            writeln!(table, "{line}").unwrap();
        }
    }
    failures
}

/// The per-tile error check (CPU only): one 64-column tile off by 3% in an
/// 11-tile output passes the whole-output bf16 tolerance, not this one.
#[test]
fn tile_error_check_finds_one_bad_tile() {
    let (m, n) = (3, 648);
    let want: Vec<f64> = (0..m * n).map(|i| 1.0 + (i % 7) as f64).collect();
    let exact: Vec<f32> = want.iter().map(|&w| w as f32).collect();
    let mut got = exact.clone();
    for r in 0..m {
        for c in 320..384 {
            got[r * n + c] *= 1.03;
        }
    }
    let tol = tolerance(swiglu::DType::BF16);
    let whole = rel_err(&got, &want);
    let tiles = worst_block_rel_err(&got, &want, n, 64);
    assert!(whole > 0.0 && whole <= tol, "whole-output error {whole}");
    assert!(
        tiles > tol && (tiles - 0.03).abs() < 1e-3,
        "worst tile error {tiles}"
    );
    assert_eq!(worst_block_rel_err(&exact, &want, n, 64), 0.0);
}

#[test]
fn skinny_matches_reference() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("skinny_matches_reference");
    let mut table = String::from("path\tdtype\tform\tMxKxN\tact\tbias\trel_err\tstatus\n");
    let mut failures = Vec::new();
    let mut salt = 0usize;
    for &m in MS {
        for &k in KS {
            for &n in NS {
                salt += 1;
                // Keep the f64 reference to seconds: the largest cases only
                // at a few M, everything else everywhere.
                if k * n >= 4096 * 1000 && !matches!(m, 1 | 17 | 64) {
                    continue;
                }
                if salt % 2 == 0 {
                    failures.extend(run_case::<bf16>(g, &mut rng, m, k, n, salt, &mut table));
                } else {
                    failures.extend(run_case::<f16>(g, &mut rng, m, k, n, salt, &mut table));
                }
            }
        }
    }
    save("gpu_skinny_errors.tsv", &table);
    for f in failures.iter().take(60) {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} skinny checks failed (see above)",
        failures.len(),
        table.lines().count() - 1
    );
}

/// Both dtypes on the shapes that decide the kernel choice (split-K on for
/// the narrow N, off for the wide one) with every activation.
#[test]
fn skinny_every_activation_both_dtypes() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("skinny_every_activation");
    let mut table = String::new();
    let mut failures = Vec::new();
    for (i, &(m, k, n)) in [(5usize, 4096usize, 72usize), (40, 520, 4104)]
        .iter()
        .enumerate()
    {
        for a in 0..7 {
            let salt = a + 7 * 4 * i; // walks every activation for form 0
            failures.extend(run_case::<bf16>(g, &mut rng, m, k, n, salt, &mut table));
            failures.extend(run_case::<f16>(g, &mut rng, m, k, n, salt + 1, &mut table));
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(failures.is_empty(), "{} failures", failures.len());
}

/// Split-K and stream-K reuse their tile counters: repeated calls must stay
/// correct and bit-identical (the reduction order is fixed).
#[test]
fn skinny_repeat_calls_are_deterministic() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::fresh("skinny_deterministic");
    let s = g.stream();
    let cases = [
        (3usize, 4096usize, 1000usize),
        (64, 2048, 200),
        (1, 4096, 11008),
    ];
    for (path, &(m, k, n)) in cases
        .iter()
        .flat_map(|c| paths_for(c.0, Form::Concat).map(move |p| (p, c)))
    {
        let x: Vec<bf16> = rng.vec(m * k, 1.0);
        let w: Vec<bf16> = rng.vec(2 * n * k, 1.0 / 64.0);
        let (dx, dw_) = (s.clone_htod(&x).unwrap(), s.clone_htod(&w).unwrap());
        let dw = DeviceGluWeights::from_gate_up(dw_.as_view(), k, n).unwrap();
        let mut first: Option<Vec<bf16>> = None;
        for _ in 0..3 {
            let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
            g.forward(&dx, &[m, k], &dw, Activation::Silu, &mut out, path)
                .unwrap();
            let o = s.clone_dtoh(&out).unwrap();
            match &first {
                None => first = Some(o),
                Some(f) => assert!(
                    f.iter().zip(&o).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{} {m}x{k}x{n}: not bit-identical",
                    path.name()
                ),
            }
        }
        let hw = swiglu::GluWeights::from_gate_up(&w, k, n).unwrap();
        let want = common::reference(&x, m, &hw, Activation::Silu);
        let e = rel_err(first.as_ref().unwrap(), &want);
        assert!(e < 1e-2, "{} {m}x{k}x{n}: rel_err {e}", path.name());
    }
}

#[test]
fn skinny_rejects_ineligible_and_writes_nothing() {
    let Some(g) = gpu() else { return };
    for path in PATHS.into_iter().chain([Path::FusedSkinnyRs]) {
        rejects(g, path);
    }
    // The register-streaming kernel also refuses M = 17 and KN weights.
    let s = g.stream();
    let mut rng = Rng::fresh("skinny_rs_rejects");
    let (k, n) = (64, 72);
    let w: Vec<bf16> = rng.vec(k * n, 0.1);
    let dw_ = s.clone_htod(&w).unwrap();
    let x: Vec<bf16> = rng.vec(17 * k, 1.0);
    let dx = s.clone_htod(&x).unwrap();
    for (m, layout) in [(17, WeightLayout::NK), (4, WeightLayout::KN)] {
        let dw = DeviceGluWeights::new(dw_.as_view(), dw_.as_view(), k, n, layout).unwrap();
        let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
        let e = g
            .forward(
                &dx.slice(0..m * k),
                &[m, k],
                &dw,
                Activation::Silu,
                &mut out,
                Path::FusedSkinnyRs,
            )
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(e, GluError::Unsupported { .. }) && e.to_string().contains("NK weights"),
            "M={m} {layout:?}: {e}"
        );
        assert!(
            s.clone_dtoh(&out).unwrap().iter().all(|v| v.is_nan()),
            "output written on error"
        );
    }
}

fn rejects(g: &CudaGlu, path: Path) {
    let s = g.stream();
    let mut rng = Rng::fresh("skinny_rejects");
    let (k, n) = (64, 72);
    let w: Vec<f16> = rng.vec(k * n, 0.1);
    let dw_ = s.clone_htod(&w).unwrap();
    let dw = DeviceGluWeights::new(dw_.as_view(), dw_.as_view(), k, n, WeightLayout::NK).unwrap();
    // M = 65: too many rows.
    let x: Vec<f16> = rng.vec(65 * k + 8, 1.0);
    let dx = s.clone_htod(&x).unwrap();
    let mut out = s.clone_htod(&vec![f16::NAN; 65 * n]).unwrap();
    let e = g
        .forward(
            &dx.slice(0..65 * k),
            &[65, k],
            &dw,
            Activation::Silu,
            &mut out,
            path,
        )
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, GluError::Unsupported { .. }), "{e}");
    // Misaligned x.
    let mut out = s.clone_htod(&vec![f16::NAN; 2 * n]).unwrap();
    let e = g
        .forward(
            &dx.slice(1..2 * k + 1),
            &[2, k],
            &dw,
            Activation::Silu,
            &mut out,
            path,
        )
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, GluError::Misaligned { .. }), "{e}");
    assert!(
        s.clone_dtoh(&out).unwrap().iter().all(|v| v.is_nan()),
        "output written on error"
    );
    // f32: not taken.
    let w32 = s.clone_htod(&vec![0.5f32; k * n]).unwrap();
    let dw32 = DeviceGluWeights::new(w32.as_view(), w32.as_view(), k, n, WeightLayout::KN).unwrap();
    let x32 = s.clone_htod(&vec![1.0f32; k]).unwrap();
    let mut o32 = s.clone_htod(&vec![f32::NAN; n]).unwrap();
    let e = g
        .forward(&x32, &[1, k], &dw32, Activation::Silu, &mut o32, path)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, GluError::Unsupported { .. }), "{e}");
}

/// Timing against baseline B1 at decode shapes (not a correctness test):
/// `cargo test --test gpu_skinny -- --ignored --nocapture skinny_timing`.
#[test]
#[ignore]
fn skinny_timing_vs_b1() {
    let Some(g) = gpu() else { return };
    let s = g.stream();
    let k = 4096;
    for n in [11008usize, 14336] {
        let w: Vec<bf16> = vec![bf16::from_f32(0.01); 2 * n * k];
        let dw_ = s.clone_htod(&w).unwrap();
        for form in [Form::Concat, Form::Kn] {
            let dw = match form {
                Form::Kn => {
                    let (a, b) = dw_.as_view().split_at(n * k);
                    DeviceGluWeights::new(a, b, k, n, WeightLayout::KN).unwrap()
                }
                _ => DeviceGluWeights::from_gate_up(dw_.as_view(), k, n).unwrap(),
            };
            for m in [1usize, 8, 16, 32, 64] {
                let dx = s.clone_htod(&vec![bf16::from_f32(0.5); m * k]).unwrap();
                let mut out = s.alloc_zeros::<bf16>(m * n).unwrap();
                let time = |f: &mut dyn FnMut()| {
                    for _ in 0..5 {
                        f();
                    }
                    g.synchronize().unwrap();
                    let iters = 50;
                    let t = std::time::Instant::now();
                    for _ in 0..iters {
                        f();
                    }
                    g.synchronize().unwrap();
                    t.elapsed().as_secs_f64() * 1e6 / iters as f64
                };
                let ts = time(&mut || {
                    g.forward(
                        &dx,
                        &[m, k],
                        &dw,
                        Activation::Silu,
                        &mut out,
                        Path::FusedSkinny,
                    )
                    .map(|_| ())
                    .unwrap()
                });
                let tb = time(&mut || {
                    g.forward(
                        &dx,
                        &[m, k],
                        &dw,
                        Activation::Silu,
                        &mut out,
                        Path::CublasSplit,
                    )
                    .unwrap();
                });
                let tm = time(&mut || {
                    g.forward(
                        &dx,
                        &[m, k],
                        &dw,
                        Activation::Silu,
                        &mut out,
                        Path::FusedMma,
                    )
                    .unwrap();
                });
                let gbs = (4 * n * k) as f64 / ts * 1e-3;
                eprintln!(
                    "timing bf16 {form:?} M={m:<3} N={n:<5} K={k}: skinny {ts:7.2} us ({gbs:5.0} GB/s)  B1 {tb:7.2} us  mma {tm:7.2} us  speedup vs B1 {:.2}x",
                    tb / ts
                );
            }
        }
    }
}
