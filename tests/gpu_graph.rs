//! `CudaGlu::forward` captured in a CUDA graph and replayed: what a decode
//! loop does to drop the per-launch host cost. Each path is run once
//! directly (which loads its kernel and, for the decode kernel's split-K
//! plans, allocates the `CudaGlu`'s scratch), then captured, then replayed on
//! new inputs written into the same buffers; the replay must equal a direct
//! call on those inputs (bit for bit for this crate's kernels, within the
//! dtype's tolerance of an f64 reference for every path).
//!
//! Its own test binary: capture needs a context without cudarc's per-buffer
//! event tracking (events recorded outside a capture cannot be waited on
//! inside it), which is a context-wide switch. Without a usable GPU the test
//! prints why and passes as skipped; with `SWIGLU_REQUIRE_GPU=1` it fails.
#![cfg(feature = "cuda")]

mod common;

use common::gpu::tolerance;
use common::{Rng, reference, rel_err};
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaContext, CudaStream};
use std::sync::Arc;
use swiglu::cuda::{CudaElement, CudaGlu, DeviceGluWeights, Path, unavailable_reason};
use swiglu::{Activation, GluWeights, bf16};

/// One path at one shape: direct, captured, replayed twice on new inputs.
/// Returns a table line, and whether it failed.
#[allow(clippy::too_many_arguments)]
fn case<T: CudaElement>(
    g: &CudaGlu,
    s: &Arc<CudaStream>,
    rng: &mut Rng,
    m: usize,
    k: usize,
    n: usize,
    act: Activation,
    path: Path,
) -> (String, bool) {
    let w_host: Vec<T> = rng.vec(2 * n * k, 1.0 / (k as f32).sqrt());
    let x0: Vec<T> = rng.vec(m * k, 1.0);
    let dw_buf = s.clone_htod(&w_host).unwrap();
    let dw = DeviceGluWeights::from_gate_up(dw_buf.as_view(), k, n).unwrap();
    let hw = GluWeights::from_gate_up(&w_host, k, n).unwrap();
    let mut dx = s.clone_htod(&x0).unwrap();
    let mut out = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
    let label = format!("{}\t{m}x{k}x{n}\t{:?}", T::DTYPE.name(), path);

    // Direct call first: kernel loading, smem limits and scratch happen here.
    let ran = match g.forward(&dx, &[m, k], &dw, act, &mut out, path) {
        Ok(p) => p,
        Err(e) => return (format!("{label}\tdirect call failed: {e}"), true),
    };
    s.synchronize().unwrap();

    if let Err(e) = s.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) {
        return (format!("{label}\tbegin_capture: {e:?}"), true);
    }
    let captured = g.forward(&dx, &[m, k], &dw, act, &mut out, path);
    // End the capture whatever happened, so the stream is usable again.
    let graph = s.end_capture(CUgraphInstantiate_flags(0));
    let graph = match (captured, graph) {
        (Err(e), _) => return (format!("{label}\tforward under capture: {e}"), true),
        (_, Err(e)) => return (format!("{label}\tend_capture: {e:?}"), true),
        (_, Ok(None)) => return (format!("{label}\tend_capture returned no graph"), true),
        (Ok(p), Ok(Some(gr))) => {
            if p != ran {
                let why = format!(
                    "captured call ran {}, the direct one {}",
                    p.name(),
                    ran.name()
                );
                return (format!("{label}\t{why}"), true);
            }
            gr
        }
    };

    let mut worst = 0.0f64;
    for round in 0..2 {
        // New inputs in the captured buffers, output poisoned.
        let x: Vec<T> = rng.vec(m * k, 1.0);
        s.memcpy_htod(&x, &mut dx).unwrap();
        s.memcpy_htod(&vec![T::from_f32(f32::NAN); m * n], &mut out)
            .unwrap();
        graph.launch().unwrap();
        let replayed = s.clone_dtoh(&out).unwrap();

        let mut direct = s.clone_htod(&vec![T::from_f32(f32::NAN); m * n]).unwrap();
        g.forward(&dx, &[m, k], &dw, act, &mut direct, path)
            .unwrap();
        let direct = s.clone_dtoh(&direct).unwrap();

        let want = reference(&x, m, &hw, act);
        let err = rel_err(&replayed, &want);
        worst = worst.max(err);
        if err > tolerance(T::DTYPE) {
            return (
                format!(
                    "{label}\tran {}\treplay {round}: rel_err {err:.3e} FAIL",
                    ran.name()
                ),
                true,
            );
        }
        // This crate's kernels reduce in a fixed order: a replay is the same
        // launch. cuBLAS may pick another algorithm under capture.
        let own = !matches!(
            ran,
            Path::CublasSplit | Path::CublasConcat | Path::CublasEager
        );
        let same = replayed
            .iter()
            .zip(&direct)
            .all(|(a, b)| a.to_f32().to_bits() == b.to_f32().to_bits());
        if own && !same {
            return (
                format!(
                    "{label}\tran {}\treplay {round} differs from a direct call (rel_err {err:.3e}) FAIL",
                    ran.name()
                ),
                true,
            );
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
    let hopper = g.compute_capability() == (9, 0);
    let mut rng = Rng::fresh("forward_replays_in_a_cuda_graph");
    let silu = Activation::Silu;
    let gelu = Activation::GeluTanh;

    let mut lines = Vec::new();
    let mut failed = Vec::new();
    let mut run = |(line, bad): (String, bool)| {
        eprintln!("{line}");
        if bad {
            failed.push(line.clone());
        }
        lines.push(line);
    };
    // Decode: split-K (scratch reused by the graph), no split, 32-row padding.
    run(case::<bf16>(
        &g,
        &s,
        &mut rng,
        1,
        4096,
        1000,
        silu,
        Path::FusedSkinny,
    ));
    run(case::<bf16>(
        &g,
        &s,
        &mut rng,
        16,
        1024,
        8192,
        silu,
        Path::FusedSkinny,
    ));
    run(case::<swiglu::f16>(
        &g,
        &s,
        &mut rng,
        20,
        520,
        4104,
        gelu,
        Path::FusedSkinny,
    ));
    run(case::<bf16>(
        &g,
        &s,
        &mut rng,
        7,
        2048,
        1000,
        silu,
        Path::Auto,
    ));
    // Prefill-sized.
    run(case::<bf16>(
        &g,
        &s,
        &mut rng,
        200,
        1024,
        1000,
        silu,
        Path::FusedMma,
    ));
    run(case::<bf16>(
        &g,
        &s,
        &mut rng,
        300,
        512,
        2048,
        silu,
        Path::Auto,
    ));
    if hopper {
        run(case::<bf16>(
            &g,
            &s,
            &mut rng,
            200,
            1024,
            1000,
            silu,
            Path::FusedWgmma,
        ));
        run(case::<bf16>(
            &g,
            &s,
            &mut rng,
            200,
            1024,
            1000,
            gelu,
            Path::FusedWgmmaStaged,
        ));
    }
    run(case::<f32>(
        &g,
        &s,
        &mut rng,
        33,
        72,
        40,
        gelu,
        Path::FusedSimt,
    ));
    // The cuBLAS baselines (their [M, 2N] intermediate is allocated and freed
    // inside the graph).
    run(case::<bf16>(
        &g,
        &s,
        &mut rng,
        64,
        1024,
        1000,
        silu,
        Path::CublasSplit,
    ));
    run(case::<bf16>(
        &g,
        &s,
        &mut rng,
        64,
        1024,
        1000,
        silu,
        Path::CublasConcat,
    ));

    common::gpu::save("gpu_graph.tsv", &lines.join("\n"));
    assert!(
        failed.is_empty(),
        "{} of {} graph cases failed:\n{}",
        failed.len(),
        lines.len(),
        failed.join("\n")
    );
}
