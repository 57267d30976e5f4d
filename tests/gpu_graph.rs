//! `CudaGlu::forward` captured in a CUDA graph and replayed: what a decode
//! loop does to drop the per-launch host cost. Each path is run once
//! directly (which loads its kernel and, for the decode kernel's split-K
//! plans, allocates the `CudaGlu`'s scratch), then captured, then replayed on
//! new inputs written into the same buffers; the replay must equal a direct
//! call on those inputs (bit for bit for this crate's kernels, within the
//! dtype's tolerance of an f64 reference for every path). One more case
//! grows the decode scratch between capture and replay: the graph keeps
//! using the outgrown buffers, which the `CudaGlu` keeps alive.
//!
//! Its own test binary: capture needs a context without cudarc's per-buffer
//! event tracking (events recorded outside a capture cannot be waited on
//! inside it), which is a context-wide switch. Without a usable GPU the test
//! prints why and passes as skipped; with `SWIGLU_REQUIRE_GPU=1` it fails.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::{cluster_skipped, shrink_on_emulator, tolerance};
use common::{Rng, check_elems, reference, rel_err, worst_of};
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode, CUstreamCaptureStatus};
use cudarc::driver::{CudaContext, CudaGraph, CudaStream};
use std::sync::Arc;
use swiglu::cuda::{CudaElement, CudaGlu, DeviceGluWeights, Path, unavailable_reason};
use swiglu::{Activation, GluWeights, bf16, f16};

/// One problem: shape, activation, forced path.
#[derive(Clone, Copy)]
struct Case {
    m: usize,
    k: usize,
    n: usize,
    act: Activation,
    path: Path,
}

const fn case(m: usize, k: usize, n: usize, act: Activation, path: Path) -> Case {
    Case { m, k, n, act, path }
}

/// Ends the capture on `s` whatever happened during it: first takes any
/// error a `Drop` recorded in the context (cudarc records driver errors of
/// its destructors there instead of returning them; this also takes one
/// recorded before the capture began, which is then reported against this
/// case), ends the capture, and if the stream is somehow still capturing,
/// ends it through the raw driver call and discards its graph.
fn finish_capture(s: &Arc<CudaStream>) -> Result<CudaGraph, String> {
    let recorded = s.context().check_err();
    let graph = s.end_capture(CUgraphInstantiate_flags(0));
    if s.capture_status() != Ok(CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE) {
        // SAFETY: `s` is a live stream of this context in capture mode; the
        // returned graph (if any) is owned here and destroyed at once.
        unsafe {
            if let Ok(gr) = cudarc::driver::result::stream::end_capture(s.cu_stream()) {
                if !gr.is_null() {
                    let _ = cudarc::driver::result::graph::destroy(gr);
                }
            }
        }
    }
    match (recorded, graph) {
        (Err(e), _) => Err(format!("error recorded during capture: {e:?}")),
        (_, Err(e)) => Err(format!("end_capture: {e:?}")),
        (_, Ok(None)) => Err("end_capture returned no graph".to_string()),
        (Ok(()), Ok(Some(gr))) => Ok(gr),
    }
}

/// `c` on `g`: direct, captured, `between` (after the capture, before the
/// replays), replayed twice on new inputs. Returns a table line, and whether
/// it failed.
fn run_case<T: CudaElement>(
    g: &CudaGlu,
    rng: &mut Rng,
    c: Case,
    between: &dyn Fn() -> Result<(), String>,
) -> (String, bool) {
    let s = g.stream();
    let Case { m, k, n, act, path } = c;
    let (m, k, n) = shrink_on_emulator(g, (m, k, n));
    let w_host: Vec<T> = rng.vec(2 * n * k, 1.0 / (k as f32).sqrt());
    let x0: Vec<T> = rng.vec(m * k, 1.0);
    let dw_buf = s.clone_htod(&w_host).unwrap();
    let dw = DeviceGluWeights::from_gate_up(dw_buf.as_view(), k, n).unwrap();
    let hw = GluWeights::from_gate_up(&w_host, k, n).unwrap();
    let mut dx = s.clone_htod(&x0).unwrap();
    let mut out = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
    let label = format!("{}\t{m}x{k}x{n}\t{}\t{path:?}", T::DTYPE.name(), act.name());
    let fail = |why: String| (format!("{label}\t{why}\tFAIL"), true);

    // Direct call first: kernel loading, smem limits and scratch happen here.
    let ran = match g.forward(&dx, &[m, k], &dw, act, &mut out, path) {
        Ok(p) => p,
        Err(e) => return fail(format!("direct call: {e}")),
    };
    s.synchronize().unwrap();

    if let Err(e) = s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) {
        return fail(format!("begin_capture: {e:?}"));
    }
    let captured = g.forward(&dx, &[m, k], &dw, act, &mut out, path);
    let graph = finish_capture(s);
    let graph = match (captured, graph) {
        (Err(e), _) => return fail(format!("forward under capture: {e}")),
        (_, Err(e)) => return fail(e),
        (Ok(p), Ok(_)) if p != ran => {
            return fail(format!(
                "captured call ran {}, direct {}",
                p.name(),
                ran.name()
            ));
        }
        (Ok(_), Ok(gr)) => gr,
    };
    if let Err(e) = between() {
        return fail(e);
    }

    let mut worst = 0.0f64;
    for round in 0..2 {
        // New inputs in the captured buffers, output poisoned.
        let x: Vec<T> = rng.vec(m * k, 1.0);
        s.memcpy_htod(&x, &mut dx).unwrap();
        s.memcpy_htod(&vec![T::from_f32(f32::NAN); m * n], &mut out)
            .unwrap();
        if let Err(e) = graph.launch() {
            return fail(format!("graph launch: {e:?}"));
        }
        let replayed = s.clone_dtoh(&out).unwrap();

        let mut direct = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
        g.forward(&dx, &[m, k], &dw, act, &mut direct, path)
            .unwrap();
        let direct = s.clone_dtoh(&direct).unwrap();

        let want = reference(&x, m, &hw, act);
        let err = rel_err(&replayed, &want);
        worst = worst_of(worst, err);
        if err.is_nan() || err > tolerance(T::DTYPE) {
            return fail(format!(
                "ran {}, replay {round}: rel_err {err:.3e}",
                ran.name()
            ));
        }
        // Elementwise too: one wrong element in thousands passes the
        // normwise bound.
        if let Err(e) = check_elems(&replayed, &want, tolerance(T::DTYPE)) {
            return fail(format!("ran {}, replay {round}: {e}", ran.name()));
        }
        // This crate's kernels reduce in a fixed order, so a replay is the
        // same computation; cuBLAS may pick another algorithm under capture.
        let own = !matches!(
            ran,
            Path::CublasSplit | Path::CublasConcat | Path::CublasEager
        );
        let same = replayed
            .iter()
            .zip(&direct)
            .all(|(a, b)| a.to_f32().to_bits() == b.to_f32().to_bits());
        if own && !same {
            return fail(format!(
                "ran {}, replay {round} differs from a direct call (rel_err {err:.3e})",
                ran.name()
            ));
        }
    }
    (
        format!("{label}\tran {}\trel_err {worst:.3e}\tok", ran.name()),
        false,
    )
}

#[test]
fn forward_replays_in_a_cuda_graph() {
    let require = std::env::var("SWIGLU_REQUIRE_GPU").is_ok_and(|v| v == "1");
    if let Some(why) = unavailable_reason() {
        assert!(!require, "SWIGLU_REQUIRE_GPU=1 but no usable GPU: {why}");
        eprintln!("SKIPPED (no usable GPU): {why}");
        return;
    }
    let ctx = CudaContext::new(0).unwrap();
    // SAFETY: this binary's only test; every buffer below is created after
    // this call and used on the one stream `s` (and its captured graphs),
    // so no cross-stream synchronisation is needed.
    unsafe { ctx.disable_event_tracking() };
    let s = ctx.new_stream().unwrap();
    let g = CudaGlu::with_stream(s.clone()).unwrap();
    g.set_autotune(false); // whatever SWIGLU_AUTOTUNE says: g3 below is the tuned one
    let hopper = g.compute_capability() == (9, 0);
    let mut rng = Rng::fresh("forward_replays_in_a_cuda_graph");
    let (silu, gelu) = (Activation::Silu, Activation::GeluTanh);
    let nothing = || Ok(());

    let mut lines = Vec::new();
    let mut failed = Vec::new();
    let mut record = |(line, bad): (String, bool)| {
        eprintln!("{line}");
        if bad {
            failed.push(line.clone());
        }
        lines.push(line);
    };
    // Decode: split-K (16 slices on 132 SMs), no split (K = 256: 4 k-tiles),
    // split with 32-row padding, and Auto's pick.
    let bf16_cases = [
        case(1, 4096, 1000, silu, Path::FusedSkinny),
        case(16, 256, 8192, silu, Path::FusedSkinny),
        // Stream-K: shared tiles, so replays must find the counters at zero.
        case(5, 2048, 1000, silu, Path::FusedSkinnyStreamK),
        // Register streaming (split-K on 132 SMs: the shared scratch).
        case(3, 2048, 1000, silu, Path::FusedSkinnyRs),
        case(7, 2048, 1000, silu, Path::Auto),
        // Prefill sizes.
        case(200, 1024, 1000, silu, Path::FusedMma),
        case(300, 512, 2048, silu, Path::Auto),
        // The cuBLAS baselines: their [M, 2N] intermediate is allocated and
        // freed inside the graph.
        case(64, 1024, 1000, silu, Path::CublasSplit),
        case(64, 1024, 1000, silu, Path::CublasConcat),
    ];
    for c in bf16_cases {
        record(run_case::<bf16>(&g, &mut rng, c, &nothing));
    }
    record(run_case::<f16>(
        &g,
        &mut rng,
        case(20, 520, 4104, gelu, Path::FusedSkinny),
        &nothing,
    ));
    if hopper {
        for c in [
            case(200, 1024, 1000, silu, Path::FusedWgmma),
            case(200, 1024, 1000, gelu, Path::FusedWgmmaStaged),
            // A cooperative launch (4 parts on 132 SMs): replays must find
            // the split counters back at zero.
            case(200, 1024, 1000, silu, Path::FusedWgmmaTailSplit),
            // Clusters of two CTAs; 3 m tiles: one CTA without a tile.
            case(300, 1024, 1000, silu, Path::FusedWgmmaCluster),
        ] {
            if c.path == Path::FusedWgmmaCluster && cluster_skipped() {
                continue;
            }
            record(run_case::<bf16>(&g, &mut rng, c, &nothing));
        }
    }
    record(run_case::<f32>(
        &g,
        &mut rng,
        case(33, 72, 40, gelu, Path::FusedSimt),
        &nothing,
    ));

    // A graph captured with a 16-row decode scratch, replayed after the
    // scratch grew for 64 rows (a fresh handle, so the growth happens here).
    let g2 = CudaGlu::with_stream(s.clone()).unwrap();
    g2.set_autotune(false);
    let grow = || -> Result<(), String> {
        let (m, k, n) = shrink_on_emulator(&g2, (40, 2048, 1000));
        let x = s.clone_htod(&vec![bf16::from_f32(0.25); m * k]).unwrap();
        let w = s
            .clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])
            .unwrap();
        let w = DeviceGluWeights::from_gate_up(w.as_view(), k, n).unwrap();
        let mut out = s.alloc_zeros::<bf16>(m * n).unwrap();
        g2.forward(&x, &[m, k], &w, silu, &mut out, Path::FusedSkinny)
            .map(|_| ())
            .map_err(|e| format!("growing the scratch: {e}"))
    };
    let (line, bad) = run_case::<bf16>(
        &g2,
        &mut rng,
        case(1, 4096, 1000, silu, Path::FusedSkinny),
        &grow,
    );
    record((format!("{line}\t(scratch grown before the replays)"), bad));

    // The autotuner: the direct call times the candidates and keeps one;
    // the captured call must run that decision without timing anything
    // (run_case checks it ran the same path). The kept path may be a cuBLAS
    // baseline (the line says which ran): if those fail under capture, the
    // forced baseline cases above fail the same way. A class first met under
    // capture takes the built-in choice and keeps nothing.
    let g3 = CudaGlu::with_stream(s.clone()).unwrap();
    g3.set_autotune(true);
    for c in [
        case(5, 1024, 1000, silu, Path::Auto),
        case(300, 512, 2048, silu, Path::Auto),
    ] {
        let (line, bad) = run_case::<bf16>(&g3, &mut rng, c, &nothing);
        record((format!("{line}\t(autotuned)"), bad));
    }
    let tuned_before = g3.tuned_paths().len();
    let untuned = || -> Result<(), String> {
        // The rule's choice here is a fused kernel (fused-wgmma on an H200:
        // 512 tiles fill 97% of 4 waves; fused-mma on sm_80..89), so this
        // case does not depend on cuBLAS under capture.
        let (m, k, n) = shrink_on_emulator(&g3, (1000, 256, 8192));
        let x = s.clone_htod(&vec![bf16::from_f32(0.25); m * k]).unwrap();
        let w = s
            .clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])
            .unwrap();
        let w = DeviceGluWeights::from_gate_up(w.as_view(), k, n).unwrap();
        let mut out = s.alloc_zeros::<bf16>(m * n).unwrap();
        let builtin = g3.auto_path(
            m,
            k,
            n,
            swiglu::DType::BF16,
            swiglu::WeightLayout::NK,
            true,
            true,
        );
        s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| format!("begin_capture: {e:?}"))?;
        let ran = g3.forward(&x, &[m, k], &w, silu, &mut out, Path::Auto);
        let graph = finish_capture(&s);
        let ran = ran.map_err(|e| format!("autotuned Auto under capture: {e}"))?;
        graph?;
        if ran != builtin {
            return Err(format!(
                "under capture ran {}, built-in {}",
                ran.name(),
                builtin.name()
            ));
        }
        if g3.tuned_paths().len() != tuned_before {
            return Err("a class was tuned under capture".into());
        }
        Ok(())
    };
    let line = "bf16\t1000x256x8192\tsilu\tAuto\t(autotune, class first met under capture)";
    record(match untuned() {
        Ok(()) => (format!("{line}\tok"), false),
        Err(e) => (format!("{line}\t{e}\tFAIL"), true),
    });

    common::gpu::save("gpu_graph.tsv", &lines.join("\n"));
    assert!(
        failed.is_empty(),
        "{} of {} graph cases failed:\n{}",
        failed.len(),
        lines.len(),
        failed.join("\n")
    );
}
