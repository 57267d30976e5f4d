//! GPU training path (forward_train + backward_into) against the CPU
//! backward (itself checked against finite differences in f64), at odd
//! shapes, every activation, biases on/off, every weight form, both save
//! modes, f32, bf16 and f16 inputs, f32 and input-typed gradients, and
//! gradient accumulation. With the opt-in fused training kernels on, an
//! H100/H200 runs the Hopper kernel's training variants (pre-activation and
//! gate-gradient epilogues) on the shapes with M > 32 and K, N multiples of
//! 8; a second test checks the default cuBLAS-based path on those shapes. Skips without a GPU unless SWIGLU_REQUIRE_GPU=1.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{emulated, gpu, runs_here_sampled};

use common::{Rng, check_elems_wide, store};
use swiglu::cpu::{self, SaveMode};
use swiglu::cuda::{
    CudaElement, CudaGlu, DeviceGluWeights, DeviceGrads, DeviceSaved, TrainingKernels,
};
use swiglu::{Activation, DType, Element, GluWeights, WeightLayout, bf16, f16};

/// `got` (values stored as `S`, widened to f32) against `want`: the
/// normwise ‖got − want‖/‖want‖ ([`common::rel_err`]: +inf on a NaN/Inf on
/// one side only, never NaN; lengths must match) ≤ `tol` and, element by
/// element, [`check_elems_wide`] with the same `tol` (one wrong element in
/// thousands passes the normwise bound). `None` when both pass, else the
/// error(s) as text.
fn compare<S: Element>(got: &[f32], want: &[f32], tol: f64) -> Option<String> {
    let (g, w): (Vec<f64>, Vec<f64>) = (
        got.iter().map(|&v| v as f64).collect(),
        want.iter().map(|&v| v as f64).collect(),
    );
    let e = common::rel_err(got, &w);
    let elems = check_elems_wide::<S>(&g, &w, tol);
    let normwise_bad = e.is_nan() || e > tol;
    if !normwise_bad && elems.is_ok() {
        return None;
    }
    Some(match elems {
        Ok(()) => format!("rel {e:.2e}"),
        Err(why) => format!("rel {e:.2e}, {why}"),
    })
}

/// Fills `v` with NaN, so that an element a call should write but leaves
/// alone fails the comparison.
fn poison<G: CudaElement>(
    s: &std::sync::Arc<cudarc::driver::CudaStream>,
    v: &mut cudarc::driver::CudaSlice<G>,
) {
    s.memcpy_htod(&vec![G::from_f32(f32::NAN); v.len()], v)
        .unwrap();
}

/// Every gradient buffer of `grads` filled with NaN: the start of a
/// backward with `accumulate = false`, which must overwrite them all.
fn poison_grads<G: CudaElement>(
    s: &std::sync::Arc<cudarc::driver::CudaStream>,
    grads: &mut DeviceGrads<G>,
) {
    poison(s, &mut grads.dx);
    poison(s, &mut grads.d_w_gate);
    poison(s, &mut grads.d_w_up);
    for b in [&mut grads.d_b_gate, &mut grads.d_b_up]
        .into_iter()
        .flatten()
    {
        poison(s, b);
    }
}

/// For a failed comparison: how many elements are exactly 0 or not finite,
/// the largest errors with their (row, col) in a `cols`-wide row-major
/// matrix, and the rows and columns the large errors fall in (a missed
/// tile, a transposed or shifted store, or an off-by-one row split shows
/// its shape there).
fn diagnose(got: &[f32], want: &[f32], cols: usize) -> String {
    let cols = cols.max(1);
    let err = |i: usize| {
        let d = (got[i] - want[i]).abs();
        if d.is_nan() { f32::INFINITY } else { d }
    };
    let mut worst: Vec<usize> = Vec::new();
    for i in 0..got.len().min(want.len()) {
        worst.push(i);
        worst.sort_by(|&a, &b| err(b).total_cmp(&err(a)));
        worst.truncate(4);
    }
    let scale = want
        .iter()
        .map(|v| v.abs())
        .fold(0.0f32, f32::max)
        .max(1e-30);
    let bad: Vec<usize> = (0..got.len().min(want.len()))
        .filter(|&i| err(i) > 0.05 * scale)
        .collect();
    let span = |f: &dyn Fn(usize) -> usize| {
        let (lo, hi) = bad
            .iter()
            .map(|&i| f(i))
            .fold((usize::MAX, 0), |(l, h), v| (l.min(v), h.max(v)));
        if bad.is_empty() {
            "-".to_string()
        } else {
            format!("{lo}..={hi}")
        }
    };
    let zeros = got.iter().filter(|v| **v == 0.0).count();
    let nonfinite = got.iter().filter(|v| !v.is_finite()).count();
    let list: Vec<String> = worst
        .iter()
        .map(|&i| {
            format!(
                "({}, {}) got {:.4e} want {:.4e}",
                i / cols,
                i % cols,
                got[i],
                want[i]
            )
        })
        .collect();
    format!(
        " [{zeros} zeros, {nonfinite} non-finite of {}; {} off by > 5% of max|want|, rows {}, cols {}; worst: {}]",
        got.len(),
        bad.len(),
        span(&|i| i / cols),
        span(&|i| i % cols),
        list.join(", ")
    )
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Kn,
    Nk,
    Concat,
}

/// A device buffer copied to the host and widened to f32.
fn host_f32<T: CudaElement>(
    s: &std::sync::Arc<cudarc::driver::CudaStream>,
    v: &cudarc::driver::CudaSlice<T>,
) -> Vec<f32> {
    s.clone_dtoh(v)
        .unwrap()
        .iter()
        .map(|v| v.to_f32())
        .collect()
}

/// Runs one configuration; returns the failures as text.
#[allow(clippy::too_many_arguments)]
fn check<T: CudaElement>(
    g: &CudaGlu,
    rng: &mut Rng,
    (m, k, n): (usize, usize, usize),
    form: Form,
    bias: (bool, bool),
    act: Activation,
    mode: SaveMode,
    tol: f64,
) -> Vec<String> {
    let key = format!(
        "{} {form:?} bias={bias:?} {} {mode:?}",
        T::DTYPE.name(),
        act.name()
    );
    if !runs_here_sampled(g, "training case", (m, k, n), &key, 6) {
        return Vec::new();
    }
    let s = g.stream();
    let layout = if form == Form::Kn {
        WeightLayout::KN
    } else {
        WeightLayout::NK
    };
    let x: Vec<T> = rng.vec(m * k, 1.0);
    let sc = 1.0 / (k as f32).sqrt();
    let (wg_l, wu_l): (Vec<T>, Vec<T>) = (rng.vec(k * n, sc), rng.vec(k * n, sc));
    let (wg, wu) = (store(&wg_l, k, n, layout), store(&wu_l, k, n, layout));
    let mut gu = wg.clone();
    gu.extend_from_slice(&wu);
    let (bg, bu): (Vec<T>, Vec<T>) = (rng.vec(n, 0.5), rng.vec(n, 0.5));
    let d_out: Vec<T> = rng.vec(m * n, 1.0);
    let hw = GluWeights::new(&wg, &wu, k, n, layout).unwrap();
    let hw = if bias != (false, false) {
        hw.with_biases(bias.0.then_some(&bg[..]), bias.1.then_some(&bu[..]))
            .unwrap()
    } else {
        hw
    };
    // CPU forward: the oracle for the forward output and the pre-activations.
    let mut out_cpu = vec![T::default(); m * n];
    let saved_cpu = cpu::forward_train(
        &x,
        &[m, k],
        &hw,
        act,
        SaveMode::PreActivations,
        &mut out_cpu,
    )
    .unwrap();

    let (dx, ddo) = (s.clone_htod(&x).unwrap(), s.clone_htod(&d_out).unwrap());
    let (dwg, dwu, dgu) = (
        s.clone_htod(&wg).unwrap(),
        s.clone_htod(&wu).unwrap(),
        s.clone_htod(&gu).unwrap(),
    );
    let (dbg, dbu) = (s.clone_htod(&bg).unwrap(), s.clone_htod(&bu).unwrap());
    let dw = match form {
        Form::Concat => DeviceGluWeights::from_gate_up(dgu.as_view(), k, n),
        _ => DeviceGluWeights::new(dwg.as_view(), dwu.as_view(), k, n, layout),
    }
    .unwrap();
    let dw = if bias != (false, false) {
        dw.with_biases(bias.0.then(|| dbg.as_view()), bias.1.then(|| dbu.as_view()))
            .unwrap()
    } else {
        dw
    };
    let mut out = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
    let sv = g
        .forward_train(&dx, &[m, k], &dw, act, mode, &mut out)
        .unwrap();
    // The backward oracle is the CPU backward fed the pre-activations the GPU
    // used (its saved ones, or for Recompute the ones a PreActivations forward
    // makes with the same GEMMs): act' of ReLU jumps at 0, so a gate the two
    // sides round to opposite sides of 0 would flip a whole dG element; the
    // pre-activations themselves are compared to the CPU's separately.
    let pre_run;
    let pre_dev = match sv.pre_activations() {
        Some(p) => p,
        None => {
            let mut scratch = s.alloc_zeros::<T>(m * n).unwrap();
            pre_run = g
                .forward_train(
                    &dx,
                    &[m, k],
                    &dw,
                    act,
                    SaveMode::PreActivations,
                    &mut scratch,
                )
                .unwrap();
            pre_run.pre_activations().unwrap()
        }
    };
    let pre: Vec<f32> = host_f32(s, pre_dev);
    let (gate_gpu, up_gpu): (Vec<f32>, Vec<f32>) = (
        pre.chunks(2 * n).flat_map(|r| r[..n].to_vec()).collect(),
        pre.chunks(2 * n).flat_map(|r| r[n..].to_vec()).collect(),
    );
    let (gate_cpu, up_cpu) = (saved_cpu.gate_pre().unwrap(), saved_cpu.up_pre().unwrap());
    let flips = gate_gpu
        .iter()
        .zip(gate_cpu)
        .filter(|(a, b)| (**a > 0.0) != (**b > 0.0))
        .count();
    let saved = cpu::Saved::from_pre_activations(m, n, gate_gpu.clone(), up_gpu.clone()).unwrap();
    let want = cpu::backward::<T, f32>(&x, &[m, k], &hw, act, &saved, &d_out).unwrap();
    let mut fails = Vec::new();
    let tag = format!(
        "{} {form:?} {m}x{k}x{n} {} bias={bias:?} {mode:?}",
        T::DTYPE.name(),
        act.name()
    );
    let o: Vec<f32> = host_f32(s, &out);
    let oc: Vec<f32> = out_cpu.iter().map(|v| v.to_f32()).collect();
    if let Some(why) = compare::<T>(&o, &oc, tol) {
        fails.push(format!("{tag}: forward_train out {why}"));
    }
    for (what, got, want) in [("gate", &gate_gpu, gate_cpu), ("up", &up_gpu, up_cpu)] {
        if let Some(why) = compare::<T>(got, want, tol) {
            fails.push(format!("{tag}: saved {what} pre-activations {why}"));
        }
    }
    if flips > 0 {
        eprintln!("{tag}: {flips} gate pre-activations differ in sign from the CPU's (diagnostic)");
    }
    // Poisoned: accumulate = false must write every element.
    let mut grads = DeviceGrads::<f32>::zeros(g, m, &dw).unwrap();
    poison_grads(s, &mut grads);
    g.backward_into(&dx, &[m, k], &dw, act, &sv, &ddo, &mut grads, false)
        .unwrap();
    // Row length of each gradient as stored: dx [m, k]; weights [n, k]
    // (NK) or [k, n] (KN); biases [n].
    let w_cols = if layout == WeightLayout::NK { k } else { n };
    let cols_of = |what: &str| {
        if what.starts_with("dx") {
            k
        } else if what.starts_with("dW") {
            w_cols
        } else {
            n
        }
    };
    let cmp = |what: &str,
               got: &cudarc::driver::CudaSlice<f32>,
               want: &[f32],
               fails: &mut Vec<String>| {
        let got = s.clone_dtoh(got).unwrap();
        if let Some(bad) = compare::<f32>(&got, want, tol) {
            let why = diagnose(&got, want, cols_of(what));
            fails.push(format!("{tag}: {what} {bad}{why}"));
        }
    };
    cmp("dx", &grads.dx, &want.dx, &mut fails);
    cmp("dWg", &grads.d_w_gate, &want.d_w_gate, &mut fails);
    cmp("dWu", &grads.d_w_up, &want.d_w_up, &mut fails);
    if grads.d_b_gate.is_some() != bias.0 || grads.d_b_up.is_some() != bias.1 {
        fails.push(format!(
            "{tag}: bias gradients present for the wrong biases"
        ));
    }
    if let (Some(got), Some(want)) = (&grads.d_b_gate, &want.d_b_gate) {
        cmp("dbg", got, want, &mut fails);
    }
    if let (Some(got), Some(want)) = (&grads.d_b_up, &want.d_b_up) {
        cmp("dbu", got, want, &mut fails);
    }
    // Accumulation: a second backward adds the same weight gradients again
    // (their start is the first call's result); dx is overwritten, so it
    // starts poisoned.
    poison(s, &mut grads.dx);
    g.backward_into(&dx, &[m, k], &dw, act, &sv, &ddo, &mut grads, true)
        .unwrap();
    let twice = |v: &[f32]| v.iter().map(|v| 2.0 * v).collect::<Vec<f32>>();
    cmp(
        "dWg accumulated",
        &grads.d_w_gate,
        &twice(&want.d_w_gate),
        &mut fails,
    );
    cmp(
        "dWu accumulated",
        &grads.d_w_up,
        &twice(&want.d_w_up),
        &mut fails,
    );
    if let (Some(got), Some(want)) = (&grads.d_b_gate, &want.d_b_gate) {
        cmp("dbg accumulated", got, &twice(want), &mut fails);
    }
    if let (Some(got), Some(want)) = (&grads.d_b_up, &want.d_b_up) {
        cmp("dbu accumulated", got, &twice(want), &mut fails);
    }
    cmp(
        "dx after accumulate (overwritten)",
        &grads.dx,
        &want.dx,
        &mut fails,
    );
    // Gradients in the input dtype.
    let mut gt = DeviceGrads::<T>::zeros(g, m, &dw).unwrap();
    poison_grads(s, &mut gt);
    g.backward_into(&dx, &[m, k], &dw, act, &sv, &ddo, &mut gt, false)
        .unwrap();
    // dWg, dWu, and dX: accumulated in f32 and rounded once, also where it
    // takes two GEMMs (separate weights: an f32 temporary and the `narrow`
    // kernel).
    let tol_t = tol.max(if T::DTYPE == DType::F32 { 0.0 } else { 1e-2 });
    let cmp_t =
        |what: &str, got: &cudarc::driver::CudaSlice<T>, want: &[f32], fails: &mut Vec<String>| {
            let got: Vec<f32> = host_f32(s, got);
            if let Some(bad) = compare::<T>(&got, want, tol_t) {
                let why = diagnose(&got, want, cols_of(what));
                fails.push(format!("{tag}: {what} in {} {bad}{why}", T::DTYPE.name()));
            }
        };
    cmp_t("dWg", &gt.d_w_gate, &want.d_w_gate, &mut fails);
    cmp_t("dWu", &gt.d_w_up, &want.d_w_up, &mut fails);
    cmp_t("dx", &gt.dx, &want.dx, &mut fails);
    // Accumulating into input-typed weight gradients: the old value read in
    // T, added in f32, rounded once more.
    g.backward_into(&dx, &[m, k], &dw, act, &sv, &ddo, &mut gt, true)
        .unwrap();
    cmp_t(
        "dWg accumulated",
        &gt.d_w_gate,
        &twice(&want.d_w_gate),
        &mut fails,
    );
    cmp_t(
        "dWu accumulated",
        &gt.d_w_up,
        &twice(&want.d_w_up),
        &mut fails,
    );
    // Memory held between the passes.
    // The eager baseline also keeps act(g), as autograd does.
    let kept = if g.training_kernels() == TrainingKernels::Eager {
        3
    } else {
        2
    };
    let want_bytes = if mode == SaveMode::PreActivations {
        kept * m * n * T::DTYPE.size()
    } else {
        0
    };
    if sv.bytes() != want_bytes {
        fails.push(format!("{tag}: saved bytes {} != {want_bytes}", sv.bytes()));
    }
    fails
}

/// Prints the first 40 failures and fails the test if there is any.
fn assert_no_failures(fails: &[String]) {
    for f in fails.iter().take(40) {
        eprintln!("{f}");
    }
    assert!(fails.is_empty(), "{} failures", fails.len());
}

/// [`check`] in f32 (tolerance 1e-5) with `bias`, then in bf16 (2e-2: the
/// saved pre-activations and dG/dU are rounded to bf16) with the opposite
/// bias pattern.
#[allow(clippy::too_many_arguments)]
fn check_f32_bf16(
    g: &CudaGlu,
    rng: &mut Rng,
    shape: (usize, usize, usize),
    form: Form,
    bias: bool,
    act: Activation,
    mode: SaveMode,
) -> Vec<String> {
    let mut fails = check::<f32>(g, rng, shape, form, (bias, bias), act, mode, 1e-5);
    fails.extend(check::<bf16>(
        g,
        rng,
        shape,
        form,
        (!bias, !bias),
        act,
        mode,
        2e-2,
    ));
    fails
}

#[test]
fn gpu_backward_matches_cpu_backward() {
    let Some(shared) = gpu() else { return };
    // Its own handle with the fused training kernels on (off by default), so
    // that on an H100/H200 the eligible shapes run them; elsewhere they never
    // run and this is the cuBLAS-based path again.
    let g = &common::gpu::own_handle(shared);
    g.set_training_kernels(TrainingKernels::Fused);
    let mut rng = Rng::fresh("gpu_backward");
    let shapes = [
        (1, 8, 8),
        (7, 40, 24),
        (33, 64, 72),
        (129, 72, 136),
        (64, 31, 7),
        (2, 128, 520),
        // Tails of every tile of the Hopper kernel's training variants
        // (128 x 128 x 64): M, N and K all one step past a multiple.
        (300, 200, 264),
        // K a multiple of 16, so dX and the NK weight gradients run on the
        // Hopper kernel too (fused_glu_wgmma_dx*, fused_glu_wgmma_dw*): tails
        // in M, in each output half (K/2 = 104), in both contraction
        // segments (N = 264), and the dW row split at N inside a tile.
        (300, 208, 264),
    ];
    let mut fails = Vec::new();
    let mut count = 0;
    for (i, &shape) in shapes.iter().enumerate() {
        for form in [Form::Kn, Form::Nk, Form::Concat] {
            for (j, act) in Activation::ALL.into_iter().enumerate() {
                let bias = (i + j) % 2 == 0;
                let mode = if (i + j) % 3 == 0 {
                    SaveMode::Recompute
                } else {
                    SaveMode::PreActivations
                };
                fails.extend(check_f32_bf16(g, &mut rng, shape, form, bias, act, mode));
                fails.extend(check::<f16>(
                    g,
                    &mut rng,
                    shape,
                    form,
                    (bias, bias),
                    act,
                    mode,
                    4e-3,
                ));
                count += 3;
            }
        }
    }
    for f in fails.iter().take(40) {
        eprintln!("{f}");
    }
    assert!(
        fails.is_empty(),
        "{} failures in {count} configurations",
        fails.len()
    );
}

/// The staged training kernels (`TrainingKernels::FusedStaged`): the
/// PreActivations forward (`fused_glu_wgmma_prestaged_*`) and the Recompute
/// backward's gradient stage (`fused_glu_wgmma_dgustaged_*`) differ from
/// `TrainingKernels::Fused`.
#[test]
fn staged_training_kernels_match_cpu_backward() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    g.set_training_kernels(TrainingKernels::FusedStaged);
    let mut rng = Rng::fresh("staged_training");
    let mut fails = Vec::new();
    for shape in [
        (33, 64, 72),
        (129, 72, 136),
        (300, 200, 264),
        (300, 208, 264),
    ] {
        for form in [Form::Kn, Form::Nk, Form::Concat] {
            for (j, act) in Activation::ALL.into_iter().enumerate() {
                let bias = j % 2 == 0;
                for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
                    fails.extend(check::<bf16>(
                        &g,
                        &mut rng,
                        shape,
                        form,
                        (bias, bias),
                        act,
                        mode,
                        2e-2,
                    ));
                    fails.extend(check::<f16>(
                        &g,
                        &mut rng,
                        shape,
                        form,
                        (!bias, !bias),
                        act,
                        mode,
                        4e-3,
                    ));
                }
            }
        }
    }
    assert_no_failures(&fails);
}

/// More output tiles than SMs, so that each CTA of the persistent training
/// kernels walks several tiles: the staging tile's reuse, the mbarrier
/// phases carried across tiles and the producer running ahead into the
/// next tile. (1536, 64, 1536): 144 forward / gradient-stage tiles;
/// (2200, 2048, 64): 144 tiles of the dX kernel; (96, 2048, 1160): 152 / 160
/// tiles of the weight-gradient kernel (NK / KN), its NK row split (at
/// N = 1160) inside a tile and its contraction over 96 rows one and a half
/// k-tiles.
#[test]
fn fused_training_kernels_on_many_tiles() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    let mut rng = Rng::fresh("fused_training_many_tiles");
    let mut fails = Vec::new();
    for (kernels, form) in [
        (TrainingKernels::Fused, Form::Nk),
        (TrainingKernels::FusedStaged, Form::Kn),
    ] {
        g.set_training_kernels(kernels);
        // On the host emulator (4 SMs, scripts/emu-gpu-tests.sh): 9
        // forward / gradient-stage tiles of 128 x 128 and the dW row split
        // inside a tile, small enough to emulate.
        let shapes: &[(usize, usize, usize)] = if emulated(&g) {
            &[(257, 48, 264), (264, 32, 264)]
        } else {
            &[(1536, 64, 1536), (2200, 2048, 64), (96, 2048, 1160)]
        };
        for &shape in shapes {
            for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
                fails.extend(check::<bf16>(
                    &g,
                    &mut rng,
                    shape,
                    form,
                    (true, false),
                    Activation::Silu,
                    mode,
                    2e-2,
                ));
            }
        }
    }
    assert_no_failures(&fails);
}

/// One small case of each staged training kernel (both layouts, both save
/// modes): what `run.sh` runs under compute-sanitizer's racecheck, where the
/// full sweep above would take too long.
#[test]
fn staged_kernels_sanitizer_case() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    g.set_training_kernels(TrainingKernels::FusedStaged);
    let mut rng = Rng::fresh("staged_sanitizer_case");
    let mut fails = Vec::new();
    for form in [Form::Kn, Form::Nk] {
        for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
            fails.extend(check::<bf16>(
                &g,
                &mut rng,
                (129, 72, 136),
                form,
                (true, true),
                Activation::Silu,
                mode,
                2e-2,
            ));
        }
    }
    assert_no_failures(&fails);
}

/// The default, cuBLAS-based training path on shapes where the opt-in fused
/// training kernels would run on an H100/H200.
#[test]
fn cublas_training_path_matches_cpu_backward() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    assert_eq!(
        g.training_kernels(),
        TrainingKernels::Cublas,
        "the fused training kernels are opt-in"
    );
    let mut rng = Rng::fresh("cublas_training_path");
    let mut fails = Vec::new();
    for shape in [(33, 64, 72), (300, 200, 264)] {
        for form in [Form::Kn, Form::Concat] {
            for act in [Activation::Silu, Activation::GeluErf, Activation::Relu] {
                for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
                    fails.extend(check::<bf16>(
                        &g,
                        &mut rng,
                        shape,
                        form,
                        (true, true),
                        act,
                        mode,
                        2e-2,
                    ));
                }
            }
        }
        // One bias only: concatenated weights then take the per-projection
        // GEMMs (one-GEMM pre-activations need both or neither), and a
        // single bias-gradient GEMM runs against the ones vector.
        for (form, bias) in [(Form::Concat, (true, false)), (Form::Kn, (false, true))] {
            for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
                fails.extend(check::<bf16>(
                    &g,
                    &mut rng,
                    shape,
                    form,
                    bias,
                    Activation::Silu,
                    mode,
                    2e-2,
                ));
                fails.extend(check::<f32>(
                    &g,
                    &mut rng,
                    shape,
                    form,
                    bias,
                    Activation::GeluTanh,
                    mode,
                    1e-5,
                ));
            }
        }
    }
    assert_no_failures(&fails);
}

/// The unfused baseline of the training bench (`TrainingKernels::Eager`):
/// separate activation / multiply / activation-backward kernels around the
/// same cuBLAS GEMMs. Its intermediates (`act(g)`, `dOut ⊙ u`) are rounded
/// to T, hence the same tolerances as the other paths (one rounding of a
/// factor adds at most one unit of T to the normwise error).
#[test]
fn eager_training_baseline_matches_cpu_backward() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    g.set_training_kernels(TrainingKernels::Eager);
    let mut rng = Rng::fresh("eager_training");
    let mut fails = Vec::new();
    for (i, shape) in [(1, 8, 8), (7, 40, 24), (33, 64, 72), (300, 200, 264)]
        .into_iter()
        .enumerate()
    {
        for form in [Form::Kn, Form::Nk, Form::Concat] {
            for (j, act) in Activation::ALL.into_iter().enumerate() {
                let bias = (i + j) % 2 == 0;
                for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
                    fails.extend(check_f32_bf16(&g, &mut rng, shape, form, bias, act, mode));
                }
            }
        }
        fails.extend(check::<f16>(
            &g,
            &mut rng,
            shape,
            Form::Nk,
            (true, true),
            Activation::GeluTanh,
            SaveMode::PreActivations,
            4e-3,
        ));
    }
    assert_no_failures(&fails);
}

/// x (0.5), one weight used as both projections (0.25) and the saved state
/// of a PreActivations forward on them: the setup of the error tests.
fn tiny_saved<T: CudaElement>(
    g: &CudaGlu,
    (m, k, n): (usize, usize, usize),
    layout: WeightLayout,
) -> (
    cudarc::driver::CudaSlice<T>,
    cudarc::driver::CudaSlice<T>,
    DeviceSaved<T>,
) {
    let s = g.stream();
    let x = s.clone_htod(&vec![T::from_f32(0.5); m * k]).unwrap();
    let w = s.clone_htod(&vec![T::from_f32(0.25); k * n]).unwrap();
    let dw = DeviceGluWeights::new(w.as_view(), w.as_view(), k, n, layout).unwrap();
    let mut out = s.alloc_zeros::<T>(m * n).unwrap();
    let sv = g
        .forward_train(
            &x,
            &[m, k],
            &dw,
            Activation::Silu,
            SaveMode::PreActivations,
            &mut out,
        )
        .unwrap();
    (x, w, sv)
}

#[test]
fn backward_rejects_mismatched_state() {
    let Some(g) = gpu() else { return };
    let s = g.stream();
    let (m, k, n) = (4, 8, 8);
    let (_, w, sv) = tiny_saved::<f32>(g, (m, k, n), WeightLayout::NK);
    let dw = DeviceGluWeights::new(w.as_view(), w.as_view(), k, n, WeightLayout::NK).unwrap();
    let x2 = s.clone_htod(&vec![0.5f32; 2 * m * k]).unwrap();
    let d2 = s.clone_htod(&vec![1.0f32; 2 * m * n]).unwrap();
    let mut grads = DeviceGrads::<f32>::zeros(g, 2 * m, &dw).unwrap();
    let e = g
        .backward_into(
            &x2,
            &[2 * m, k],
            &dw,
            Activation::Silu,
            &sv,
            &d2,
            &mut grads,
            false,
        )
        .unwrap_err();
    assert!(matches!(e, swiglu::GluError::SavedMismatch(_)), "{e}");
}

/// The device memory pool's settings and counters through the crate's API
/// (the training bench reads the step's peak from them): the release
/// threshold round-trips, a live 4 MiB buffer shows in the use and in the
/// peak since the reset. Other tests allocate concurrently, so only lower
/// bounds are checked.
#[test]
fn pool_threshold_and_usage() {
    let Some(g) = gpu() else { return };
    let s = g.stream();
    let prev = g.set_pool_release_threshold(u64::MAX).unwrap();
    assert_eq!(g.pool_release_threshold().unwrap(), u64::MAX);
    s.synchronize().unwrap();
    g.reset_pool_peak().unwrap();
    let bytes = 4u64 << 20;
    let buf = s.alloc_zeros::<f32>((bytes / 4) as usize).unwrap();
    s.synchronize().unwrap();
    let u = g.pool_usage().unwrap();
    assert!(u.used >= bytes, "{u:?}");
    assert!(u.used_peak >= u.used.min(bytes), "{u:?}");
    assert!(u.reserved >= bytes, "{u:?}");
    drop(buf);
    s.synchronize().unwrap();
    assert!(g.pool_usage().unwrap().used_peak >= bytes);
    assert_eq!(g.set_pool_release_threshold(prev).unwrap(), u64::MAX);
    assert_eq!(g.pool_release_threshold().unwrap(), prev);
}

/// M = 0: no rows, so the weight and bias gradients are sums over nothing.
/// With `accumulate = false` they are stored as 0 (as the CPU backward
/// does), whatever the buffers held; with `accumulate = true` they keep
/// their contents. Both save modes, bf16 and f32 gradients.
#[test]
fn backward_with_no_rows_stores_zero_weight_gradients() {
    fn case<G: CudaElement>(g: &CudaGlu, mode: SaveMode) {
        let (k, n) = (8, 16);
        let s = g.stream();
        let x = s.alloc_zeros::<bf16>(0).unwrap();
        let w = s.clone_htod(&vec![bf16::from_f32(0.25); k * n]).unwrap();
        let b = s.clone_htod(&vec![bf16::from_f32(0.5); n]).unwrap();
        let dw = DeviceGluWeights::new(w.as_view(), w.as_view(), k, n, WeightLayout::NK)
            .unwrap()
            .with_biases(Some(b.as_view()), Some(b.as_view()))
            .unwrap();
        let mut out = s.alloc_zeros::<bf16>(0).unwrap();
        let sv = g
            .forward_train(&x, &[0, k], &dw, Activation::Silu, mode, &mut out)
            .unwrap();
        let d_out = s.alloc_zeros::<bf16>(0).unwrap();
        let mut grads = DeviceGrads::<G>::zeros(g, 0, &dw).unwrap();
        let host = |v: &cudarc::driver::CudaSlice<G>| {
            s.clone_dtoh(v)
                .unwrap()
                .iter()
                .map(|e| e.to_f32())
                .collect::<Vec<f32>>()
        };
        for (accumulate, fill, want) in [(true, 3.0, 3.0), (false, f32::NAN, 0.0)] {
            for v in [&mut grads.d_w_gate, &mut grads.d_w_up] {
                s.memcpy_htod(&vec![G::from_f32(fill); k * n], v).unwrap();
            }
            for v in [&mut grads.d_b_gate, &mut grads.d_b_up]
                .into_iter()
                .flatten()
            {
                s.memcpy_htod(&vec![G::from_f32(fill); n], v).unwrap();
            }
            g.backward_into(
                &x,
                &[0, k],
                &dw,
                Activation::Silu,
                &sv,
                &d_out,
                &mut grads,
                accumulate,
            )
            .unwrap();
            assert!(grads.dx.is_empty());
            let bias = [&grads.d_b_gate, &grads.d_b_up].map(|b| host(b.as_ref().unwrap()));
            for (what, got) in [
                ("d_w_gate", host(&grads.d_w_gate)),
                ("d_w_up", host(&grads.d_w_up)),
                ("d_b_gate", bias[0].clone()),
                ("d_b_up", bias[1].clone()),
            ] {
                assert!(
                    got.iter().all(|&v| v == want),
                    "{} {mode:?} accumulate={accumulate}: {what} should be all {want}, got {:?}",
                    G::DTYPE.name(),
                    &got[..got.len().min(4)]
                );
            }
        }
    }
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    for mode in [SaveMode::PreActivations, SaveMode::Recompute] {
        case::<bf16>(&g, mode);
        case::<f32>(&g, mode);
    }
}

#[test]
fn backward_refuses_gradient_dtypes_cublas_cannot_write() {
    // bf16 weights with f16 gradients, f32 weights with bf16 gradients: a
    // typed error before anything is launched; the gradients keep their
    // contents.
    fn case<T: CudaElement, G: CudaElement>(g: &CudaGlu) {
        let (m, k, n) = (4, 8, 8);
        let s = g.stream();
        let (x, w, sv) = tiny_saved::<T>(g, (m, k, n), WeightLayout::KN);
        let dw = DeviceGluWeights::new(w.as_view(), w.as_view(), k, n, WeightLayout::KN).unwrap();
        let d = s.clone_htod(&vec![T::from_f32(1.0); m * n]).unwrap();
        let mut grads = DeviceGrads::<G>::zeros(g, m, &dw).unwrap();
        grads.dx = s.clone_htod(&vec![G::from_f32(7.0); m * k]).unwrap();
        let e = g
            .backward_into(
                &x,
                &[m, k],
                &dw,
                Activation::Silu,
                &sv,
                &d,
                &mut grads,
                false,
            )
            .unwrap_err();
        assert!(matches!(e, swiglu::GluError::Unsupported { .. }), "{e}");
        let dx = s.clone_dtoh(&grads.dx).unwrap();
        assert!(dx.iter().all(|v| v.to_f32() == 7.0), "dx written on error");
    }
    let Some(g) = gpu() else { return };
    case::<bf16, f16>(g);
    case::<f32, bf16>(g);
}

/// Stage timing (`set_stage_timing`, `take_stage_times`): every training
/// configuration lists the stages its step passes through, with finite,
/// non-negative times that add up to no more than the step between two
/// outer events; exactly one "(between calls)" stage (forward → backward);
/// nothing is recorded with timing off. The bench's stage table
/// (benches/gpu_train.rs) relies on these names.
#[test]
fn stage_timing_lists_each_pass() {
    let Some(shared) = gpu() else { return };
    let g = common::gpu::own_handle(shared);
    let s = g.stream();
    let (m, k, n) = (48, 64, 72);
    let mut rng = Rng::fresh("stage_timing");
    let x = s.clone_htod(&rng.vec::<bf16>(m * k, 1.0)).unwrap();
    let d_out = s.clone_htod(&rng.vec::<bf16>(m * n, 1.0)).unwrap();
    let gu = s.clone_htod(&rng.vec::<bf16>(2 * n * k, 0.1)).unwrap();
    let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n).unwrap();
    let mut out = s.alloc_zeros::<bf16>(m * n).unwrap();
    let mut grads = DeviceGrads::<f32>::zeros(&g, m, &w).unwrap();
    let hopper = g.compute_capability().0 == 9;
    let mut step = |g: &CudaGlu| {
        let sv = g
            .forward_train(
                &x,
                &[m, k],
                &w,
                Activation::Silu,
                SaveMode::PreActivations,
                &mut out,
            )
            .unwrap();
        g.backward_into(
            &x,
            &[m, k],
            &w,
            Activation::Silu,
            &sv,
            &d_out,
            &mut grads,
            false,
        )
        .unwrap();
    };
    step(&g);
    assert!(
        g.take_stage_times().unwrap().is_empty(),
        "timing is off by default"
    );
    for (kern, must) in [
        (
            TrainingKernels::Eager,
            vec![
                "activation kernel (eager)",
                "bwd: three gradient kernels (eager)",
                "bwd: gate dX GEMM (cuBLAS)",
                "bwd: up dW GEMM (cuBLAS)",
            ],
        ),
        (
            TrainingKernels::Cublas,
            vec![
                "fwd: act_and_mul kernel",
                "bwd: dX (one cuBLAS GEMM over K=2N)",
                "bwd: gate dW GEMM (cuBLAS)",
            ],
        ),
        (
            TrainingKernels::FusedStaged,
            if hopper {
                vec![
                    "fwd: fused forward, out + pre-activations (Hopper)",
                    "bwd: dX (Hopper kernel)",
                    "bwd: dW (Hopper kernel)",
                ]
            } else {
                vec!["fwd: act_and_mul kernel"]
            },
        ),
    ] {
        g.set_training_kernels(kern);
        s.synchronize().unwrap();
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let a = s.record_event(flags).unwrap();
        g.set_stage_timing(true);
        step(&g);
        let b = s.record_event(flags).unwrap();
        let st = g.take_stage_times().unwrap();
        g.set_stage_timing(false);
        let outer = a.elapsed_ms(&b).unwrap();
        let names: Vec<_> = st.iter().map(|t| t.stage).collect();
        for want in must.iter().chain(&[
            "allocate [M,2N] pre-activations",
            "bwd: allocate dG|dU [M,2N]",
        ]) {
            assert!(
                names.contains(want),
                "{kern:?}: no stage {want:?} in {names:?}"
            );
        }
        assert_eq!(
            names.iter().filter(|n| **n == "(between calls)").count(),
            1,
            "{kern:?}: {names:?}"
        );
        for t in &st {
            assert!(
                t.device_ms.is_finite()
                    && t.device_ms >= 0.0
                    && t.host_us.is_finite()
                    && t.host_us >= 0.0,
                "{kern:?}: {t:?}"
            );
        }
        let sum: f32 = st.iter().map(|t| t.device_ms).sum();
        assert!(
            sum <= outer * 1.001 + 1e-3,
            "{kern:?}: stages add to {sum} ms, the step took {outer} ms"
        );
        eprintln!("{kern:?}: {} stages, {sum:.3} of {outer:.3} ms", st.len());
    }
    g.set_stage_timing(false);
    step(&g);
    assert!(
        g.take_stage_times().unwrap().is_empty(),
        "timing switched off"
    );
}
