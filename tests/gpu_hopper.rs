//! GPU tests of the Hopper (sm_90a) fused kernels `fused_glu_wgmma_*` and
//! `fused_glu_wgmma_staged_*` (staged TMA-store epilogue), the tail-split and
//! cluster schedules, reached through `CudaGlu::forward` with
//! `Path::FusedWgmma{,Staged,TailSplit,Cluster}`.
//!
//! Shapes straddle the 128 x 128 (x 64 k) tile; outputs are poisoned with NaN;
//! every activation, biases on/off, NK weights (separate and concatenated)
//! and KN weights,
//! bf16 and f16, against an f64 reference. Without a GPU these tests print
//! why and pass as skipped (with `SWIGLU_REQUIRE_GPU=1` they fail); on a GPU
//! other than compute capability 9.0 they print why and skip.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{cluster_skipped, emulated, gpu, runs_here, tolerance};

use common::{Rng, check_elems, preact_f64, rel_err, store, worst_of};
use swiglu::cuda::{CudaElement, CudaGlu, DeviceGluWeights, Path};
use swiglu::{Activation, GluError, GluWeights, WeightLayout, bf16, f16};

/// The GPU when it is a compute capability 9.0 part, else `None` (printed).
fn hopper() -> Option<&'static CudaGlu> {
    let g = gpu()?;
    if g.compute_capability() != (9, 0) {
        let (a, b) = g.compute_capability();
        eprintln!("SKIPPED (the wgmma kernel needs compute capability 9.0, this GPU is {a}.{b})");
        return None;
    }
    Some(g)
}

macro_rules! need_hopper {
    () => {
        match hopper() {
            Some(g) => g,
            None => return,
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Nk,
    Concat,
    Kn,
}
const FORMS: [Form; 3] = [Form::Nk, Form::Concat, Form::Kn];

/// `[N, K]` (NK storage) to `[K, N]` (KN storage) of the same logical matrix.
fn nk_to_kn<T: Copy>(nk: &[T], k: usize, n: usize) -> Vec<T> {
    let mut logical = Vec::with_capacity(k * n); // [k][n]
    for kk in 0..k {
        for nn in 0..n {
            logical.push(nk[nn * k + kk]);
        }
    }
    store(&logical, k, n, WeightLayout::KN)
}

const MS: &[usize] = &[1, 7, 64, 127, 128, 129, 255, 257, 1000];
const NS: &[usize] = &[8, 120, 128, 136, 264, 1000];
const KS: &[usize] = &[8, 16, 64, 72, 1024, 4096];

/// (M, N, K) cases: every M, N and K of the lists above at least once,
/// paired so that the f64 reference stays cheap (seconds in all).
fn shapes() -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    for (i, &m) in MS.iter().enumerate() {
        for (j, &n) in NS.iter().enumerate() {
            // A rotating K keeps the sweep small but covers every (M, K) and (N, K) edge.
            let k = KS[(i + j) % KS.len()];
            if m * n * k <= 300_000_000 {
                v.push((m, n, k));
            }
        }
    }
    v
}

/// The bias settings `(gate, up)`: none, both, gate only, up only.
const BIASES: [(bool, bool); 4] = [(false, false), (true, true), (true, false), (false, true)];

/// One dtype through the shapes; activation, bias setting and weight form
/// rotate per shape, each on its own index (`i % 7`, `(i / 3) % 4`, `i % 3`:
/// every form meets every bias setting), and one tail shape runs every
/// activation x bias x form.
fn sweep<T: CudaElement>(g: &CudaGlu, rng: &mut Rng) -> Vec<String> {
    let d = T::DTYPE;
    let tol = tolerance(d);
    let s = g.stream();
    let mut failures = Vec::new();
    let mut worst = [0.0f64; 4];
    let skip_cluster = cluster_skipped();
    let mut cases = Vec::new();
    for (i, &(m, n, k)) in shapes().iter().enumerate() {
        if !runs_here(g, "wgmma sweep", (m, k, n)) {
            continue;
        }
        let act = Activation::ALL[i % Activation::ALL.len()];
        let bias = BIASES[(i / 3) % BIASES.len()];
        cases.push((m, n, k, vec![act], vec![bias], FORMS[i % 3]));
    }
    for form in FORMS {
        cases.push((
            129,
            136,
            72,
            Activation::ALL.to_vec(),
            vec![(false, false), (true, true), (false, true)],
            form,
        ));
    }
    for (m, n, k, acts, bias_sets, form) in cases {
        let concat = form == Form::Concat;
        let layout = if form == Form::Kn {
            WeightLayout::KN
        } else {
            WeightLayout::NK
        };
        let x: Vec<T> = rng.vec(m * k, 1.0);
        let scale = 1.0 / (k as f32).sqrt();
        // NK storage: gate rows then up rows, as one [2N, K] tensor.
        let gu: Vec<T> = rng.vec(2 * n * k, scale);
        let (wg_nk, wu_nk) = gu.split_at(n * k);
        // The same logical weights in the layout under test.
        let (wg, wu) = match layout {
            WeightLayout::NK => (wg_nk.to_vec(), wu_nk.to_vec()),
            WeightLayout::KN => (nk_to_kn(wg_nk, k, n), nk_to_kn(wu_nk, k, n)),
        };
        let (wg, wu) = (&wg[..], &wu[..]);
        let bg: Vec<T> = rng.vec(n, 0.5);
        let bu: Vec<T> = rng.vec(n, 0.5);
        let dx = s.clone_htod(&x).unwrap();
        let dgu = s.clone_htod(&gu).unwrap();
        let (dwg, dwu) = (s.clone_htod(wg).unwrap(), s.clone_htod(wu).unwrap());
        let (dbg, dbu) = (s.clone_htod(&bg).unwrap(), s.clone_htod(&bu).unwrap());
        for (bias_g, bias_u) in bias_sets {
            let hw = GluWeights::new(wg, wu, k, n, layout)
                .unwrap()
                .with_biases(bias_g.then_some(&bg[..]), bias_u.then_some(&bu[..]))
                .unwrap();
            let gate = preact_f64(&x, m, hw.gate(), hw.bias_gate(), k, n, layout);
            let up = preact_f64(&x, m, hw.up(), hw.bias_up(), k, n, layout);
            let dw = if concat {
                DeviceGluWeights::from_gate_up(dgu.as_view(), k, n)
            } else {
                DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, layout)
            }
            .unwrap()
            .with_biases(bias_g.then(|| dbg.as_view()), bias_u.then(|| dbu.as_view()))
            .unwrap();
            for &act in &acts {
                let want: Vec<f64> = gate
                    .iter()
                    .zip(&up)
                    .map(|(g, u)| act.apply_f64(*g) * u)
                    .collect();
                // The direct kernel's output as f64 bit patterns (exact for
                // 16-bit values), which the cluster schedule (the same tile
                // computation) must reproduce exactly.
                let mut direct: Option<Vec<u64>> = None;
                for (pi, path) in [
                    Path::FusedWgmma,
                    Path::FusedWgmmaStaged,
                    Path::FusedWgmmaTailSplit,
                    Path::FusedWgmmaCluster,
                ]
                .into_iter()
                .enumerate()
                {
                    if path == Path::FusedWgmmaCluster && skip_cluster {
                        continue;
                    }
                    let mut out = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
                    let tag = format!(
                        "{} {} M={m} N={n} K={k} {act:?} bias=({bias_g},{bias_u}) {form:?}",
                        d.name(),
                        path.name()
                    );
                    match g.forward(&dx, &[m, k], &dw, act, &mut out, path) {
                        Ok(_) => {
                            let got = s.clone_dtoh(&out).unwrap();
                            let err = rel_err(&got, &want);
                            worst[pi] = worst_of(worst[pi], err);
                            if err.is_nan() || err > tol {
                                failures.push(format!("{tag}: rel_err {err:.3e} > {tol:.0e}"));
                            }
                            // Elementwise too: one wrong element in thousands
                            // passes the normwise bound.
                            if let Err(e) = check_elems(&got, &want, tol) {
                                failures.push(format!("{tag}: {e}"));
                            }
                            let bits: Vec<u64> = got.iter().map(|v| v.to_f64().to_bits()).collect();
                            if path == Path::FusedWgmma {
                                direct = Some(bits);
                            } else if let (Path::FusedWgmmaCluster, Some(d)) = (path, &direct) {
                                let differ = bits.iter().zip(d).filter(|(a, b)| a != b).count();
                                if differ > 0 {
                                    failures.push(format!(
                                        "{tag}: {differ} elements differ from fused-wgmma's bits"
                                    ));
                                }
                            }
                        }
                        Err(e) => failures.push(format!("{tag}: error {e}")),
                    }
                }
            }
        }
    }
    eprintln!(
        "wgmma {}: worst rel_err {:.3e} (direct epilogue), {:.3e} (staged), {:.3e} (tail split), \
         {:.3e} (cluster)",
        d.name(),
        worst[0],
        worst[1],
        worst[2],
        worst[3]
    );
    failures
}

#[test]
fn wgmma_matches_reference_on_tile_edges() {
    let g = need_hopper!();
    let mut rng = Rng::fresh("wgmma_sweep");
    let mut failures = sweep::<bf16>(g, &mut rng);
    failures.extend(sweep::<f16>(g, &mut rng));
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn wgmma_large_shape_matches_cublas_split() {
    let g = need_hopper!();
    let mut rng = Rng::fresh("wgmma_large");
    let (m, k, n) = (2048, 4096, 2816);
    if !runs_here(g, "wgmma large shape", (m, k, n)) {
        return;
    }
    let s = g.stream();
    let x: Vec<bf16> = rng.vec(m * k, 1.0);
    let gu: Vec<bf16> = rng.vec(2 * n * k, 1.0 / 64.0);
    let dx = s.clone_htod(&x).unwrap();
    let dgu = s.clone_htod(&gu).unwrap();
    let dw = DeviceGluWeights::from_gate_up(dgu.as_view(), k, n).unwrap();
    let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
    g.forward(
        &dx,
        &[m, k],
        &dw,
        Activation::Silu,
        &mut out,
        Path::FusedWgmma,
    )
    .map(|_| ())
    .unwrap();
    let fused = s.clone_dtoh(&out).unwrap();
    let mut out_b1 = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
    let ran = g
        .forward(
            &dx,
            &[m, k],
            &dw,
            Activation::Silu,
            &mut out_b1,
            Path::CublasSplit,
        )
        .unwrap();
    assert_eq!(ran, Path::CublasSplit);
    let b1: Vec<f64> = s
        .clone_dtoh(&out_b1)
        .unwrap()
        .iter()
        .map(|v| v.to_f64())
        .collect();
    let e = rel_err(&fused, &b1);
    eprintln!("{m}x{k}x{n} bf16: wgmma vs cuBLAS B1 rel_err {e:.3e}");
    // The same tile computation with another epilogue or schedule: the
    // number of elements whose bits differ from the direct kernel's.
    let bits_differ = |path: Path| {
        let mut o = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
        let ran = g
            .forward(&dx, &[m, k], &dw, Activation::Silu, &mut o, path)
            .unwrap();
        assert_eq!(ran, path);
        let got = s.clone_dtoh(&o).unwrap();
        got.iter()
            .zip(&fused)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count()
    };
    let differ = bits_differ(Path::FusedWgmmaStaged);
    assert_eq!(
        differ, 0,
        "staged epilogue differs from the direct one in {differ} elements"
    );
    assert!(e <= 1e-2, "wgmma vs B1: {e}");
    // 8 sampled rows against f64.
    let hw = GluWeights::from_gate_up(&gu, k, n).unwrap();
    for i in 0..8 {
        let r = if i == 0 {
            m - 1
        } else {
            (rng.next_u64() as usize) % m
        };
        let want = common::reference(&x[r * k..(r + 1) * k], 1, &hw, Activation::Silu);
        let e = rel_err(&fused[r * n..(r + 1) * n], &want);
        assert!(e <= 1e-2, "row {r}: rel_err {e}");
    }
    // The cluster schedule (16 m tiles = 8 pairs x 22 column tiles over 66
    // clusters) computes every tile as the plain one does: bit-identical.
    if cluster_skipped() {
        return;
    }
    let differ = bits_differ(Path::FusedWgmmaCluster);
    assert_eq!(
        differ, 0,
        "cluster schedule differs from the plain one in {differ} elements"
    );
}

/// The tail-split schedule on shapes where it splits (2, 3 and 4 parts on
/// 132 SMs; K tails; both layouts): the output equals the plain kernel's up
/// to the summation order of the split tiles, sampled rows match f64, and
/// repeated calls (counters reset by each launch, scratch reused and grown)
/// are bit-identical.
#[test]
fn wgmma_tail_split_matches_plain_and_reference() {
    let g = need_hopper!();
    let mut rng = Rng::fresh("wgmma_tail_split");
    let s = g.stream();
    let mut failures = Vec::new();
    // (m, k, n, layout) on 132 SMs: 48 tiles (all tails, 2 parts, a
    // partial last k-tile), 352 tiles (88 tails, 3 parts), 16 tiles (4
    // parts), and 39 KN tiles (3 parts).
    let cases: &[(usize, usize, usize, WeightLayout)] = &[
        (300, 1000, 2000, WeightLayout::NK),
        (2048, 4096, 2816, WeightLayout::NK),
        (200, 1000, 1000, WeightLayout::NK),
        (257, 2048, 1600, WeightLayout::KN),
    ];
    // The host emulator's 4 SMs (scripts/emu-gpu-tests.sh): 6 tiles each,
    // 2 of them in the tail wave, small enough to emulate.
    let emu_cases: &[(usize, usize, usize, WeightLayout)] = &[
        (300, 512, 264, WeightLayout::NK),
        (130, 512, 520, WeightLayout::KN),
    ];
    let emu = emulated(g);
    let cases = if emu { emu_cases } else { cases };
    for (ci, &(m, k, n, layout)) in cases.iter().enumerate() {
        let ws = g.workspace_bytes(Path::FusedWgmmaTailSplit, m, k, n, swiglu::DType::BF16);
        let x: Vec<bf16> = rng.vec(m * k, 1.0);
        let gu_nk: Vec<bf16> = rng.vec(2 * n * k, 1.0 / (k as f32).sqrt());
        let (wg_nk, wu_nk) = gu_nk.split_at(n * k);
        let (wg, wu) = match layout {
            WeightLayout::NK => (wg_nk.to_vec(), wu_nk.to_vec()),
            WeightLayout::KN => (nk_to_kn(wg_nk, k, n), nk_to_kn(wu_nk, k, n)),
        };
        let bg: Vec<bf16> = rng.vec(n, 0.5);
        let dx = s.clone_htod(&x).unwrap();
        let (dwg, dwu) = (s.clone_htod(&wg).unwrap(), s.clone_htod(&wu).unwrap());
        let dbg = s.clone_htod(&bg).unwrap();
        let act = Activation::ALL[ci % Activation::ALL.len()];
        let dw = DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, layout)
            .unwrap()
            .with_biases(Some(dbg.as_view()), None)
            .unwrap();
        // Other inputs of the same shape, run between the two split calls:
        // a finisher that read stale partial sums or a counter left nonzero
        // would show in the second call.
        let x_other: Vec<bf16> = x.iter().map(|v| -*v).collect();
        let dx_other = s.clone_htod(&x_other).unwrap();
        let run = |path: Path, input: &cudarc::driver::CudaSlice<bf16>| {
            let mut out = s.clone_htod(&vec![bf16::NAN; m * n]).unwrap();
            g.forward(input, &[m, k], &dw, act, &mut out, path)
                .map(|ran| (ran, s.clone_dtoh(&out).unwrap()))
        };
        let tag = format!("{m}x{k}x{n} {layout:?} {} (workspace {ws} B)", act.name());
        if ws == 0 {
            // The shapes were chosen for 132 SMs; elsewhere one may not
            // split, and the calls below still compare with the plain kernel.
            if g.sm_count() == 132 || emu {
                failures.push(format!(
                    "{tag}: the plan does not split on {} SMs",
                    g.sm_count()
                ));
            } else {
                eprintln!("{tag}: no split on {} SMs", g.sm_count());
            }
        }
        let (plain, split1, split2) = match (
            run(Path::FusedWgmma, &dx),
            run(Path::FusedWgmmaTailSplit, &dx),
            run(Path::FusedWgmmaTailSplit, &dx_other),
            run(Path::FusedWgmmaTailSplit, &dx),
        ) {
            (Ok((_, a)), Ok((ran, b)), Ok(_), Ok((_, c))) => {
                assert_eq!(ran, Path::FusedWgmmaTailSplit);
                (a, b, c)
            }
            (a, b, o, c) => {
                failures.push(format!(
                    "{tag}: error {:?} / {:?} / {:?} / {:?}",
                    a.err(),
                    b.err(),
                    o.err(),
                    c.err()
                ));
                continue;
            }
        };
        let plain64: Vec<f64> = plain.iter().map(|v| v.to_f64()).collect();
        let e = rel_err(&split1, &plain64);
        let same = split1
            .iter()
            .zip(&split2)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        eprintln!("{tag}: tail split vs plain rel_err {e:.3e}, repeat bit-identical: {same}");
        // Only the split tiles' f32 sums change order: a few bf16 roundings.
        if e.is_nan() || e > 4e-3 {
            failures.push(format!("{tag}: tail split vs plain rel_err {e:.3e}"));
        }
        if !same {
            failures.push(format!("{tag}: two tail-split calls differ"));
        }
        let hw = GluWeights::new(&wg, &wu, k, n, layout)
            .unwrap()
            .with_biases(Some(&bg[..]), None)
            .unwrap();
        // The last rows (in the split tail tiles) and a few others vs f64.
        for i in 0..6 {
            let r = if i < 2 {
                m - 1 - i
            } else {
                (rng.next_u64() as usize) % m
            };
            let want = common::reference(&x[r * k..(r + 1) * k], 1, &hw, act);
            let er = rel_err(&split1[r * n..(r + 1) * n], &want);
            if er.is_nan() || er > 1e-2 {
                failures.push(format!("{tag}: row {r} rel_err {er:.3e}"));
            }
            if let Err(e) = check_elems(&split1[r * n..(r + 1) * n], &want, 1e-2) {
                failures.push(format!("{tag}: row {r}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn wgmma_rejects_what_it_cannot_run() {
    let g = need_hopper!();
    let s = g.stream();
    let (m, k, n) = (4, 64, 16);
    let x = s.clone_htod(&vec![bf16::ONE; m * k + 8]).unwrap();
    let w = s.clone_htod(&vec![bf16::ONE; k * n]).unwrap();
    let sentinel = bf16::from_f32(7.0);
    let mut out = s.clone_htod(&vec![sentinel; m * n]).unwrap();
    // N not a multiple of 8 (TMA row stride of KN weights).
    let kn = DeviceGluWeights::new(
        w.slice(0..k * (n - 2)),
        w.slice(0..k * (n - 2)),
        k,
        n - 2,
        WeightLayout::KN,
    )
    .unwrap();
    let mut out2 = s.clone_htod(&vec![sentinel; m * (n - 2)]).unwrap();
    let e = g
        .forward(
            &x.slice(0..m * k),
            &[m, k],
            &kn,
            Activation::Silu,
            &mut out2,
            Path::FusedWgmma,
        )
        .map(|_| ());
    assert!(matches!(e, Err(GluError::Misaligned { .. })), "{e:?}");
    // x misaligned by one element.
    let nk = DeviceGluWeights::new(w.as_view(), w.as_view(), k, n, WeightLayout::NK).unwrap();
    let e = g
        .forward(
            &x.slice(1..1 + m * k),
            &[m, k],
            &nk,
            Activation::Silu,
            &mut out,
            Path::FusedWgmma,
        )
        .map(|_| ());
    assert!(matches!(e, Err(GluError::Misaligned { .. })), "{e:?}");
    // Wrong x length.
    let e = g
        .forward(
            &x.slice(0..m * k - 1),
            &[m, k],
            &nk,
            Activation::Silu,
            &mut out,
            Path::FusedWgmma,
        )
        .map(|_| ());
    assert!(e.is_err());
    // f32 is not a wgmma dtype here.
    let xf = s.clone_htod(&vec![1.0f32; m * k]).unwrap();
    let wf = s.clone_htod(&vec![1.0f32; k * n]).unwrap();
    let mut of = s.clone_htod(&vec![0.0f32; m * n]).unwrap();
    let nkf = DeviceGluWeights::new(wf.as_view(), wf.as_view(), k, n, WeightLayout::NK).unwrap();
    let e = g
        .forward(
            &xf,
            &[m, k],
            &nkf,
            Activation::Silu,
            &mut of,
            Path::FusedWgmma,
        )
        .map(|_| ());
    assert!(matches!(e, Err(GluError::Unsupported { .. })), "{e:?}");
    let got = s.clone_dtoh(&out).unwrap();
    assert!(
        got.iter().all(|v| *v == sentinel),
        "a rejected call wrote to out"
    );
    let got2 = s.clone_dtoh(&out2).unwrap();
    assert!(
        got2.iter().all(|v| *v == sentinel),
        "a rejected call wrote to out"
    );
}
