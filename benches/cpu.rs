//! CPU benchmark: the fused `cpu::forward` against `cpu::unfused_forward`
//! (two full GEMMs on the same `gemm` engine, then a separate activation
//! pass) at M=512, K=1024, N=2816, f32, SiLU, NK weights.
//!
//! Throughput is reported through criterion's `Throughput::Elements` with one
//! "element" per floating-point operation (`4·M·N·K`: two GEMMs of `2·M·N·K`
//! each), so the `Gelem/s` criterion prints **is GFLOP/s**. Before the
//! criterion runs, a plain median-of-7 timing of each path is printed in
//! GFLOP/s too, together with the extra memory each path needs.
//!
//! Run with `cargo bench --bench cpu` (about a minute on 2 cores).

use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use swiglu::{Activation, GluWeights, WeightLayout, cpu};

const M: usize = 512;
const K: usize = 1024;
const N: usize = 2816;

/// Deterministic pseudo-random values in [-scale, scale] (no RNG dependency
/// in the timed setup; the values only need to be non-trivial).
fn fill(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn median_secs(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..7)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let x = fill(M * K, 1, 1.0);
    let scale = 1.0 / (K as f32).sqrt();
    let wg = fill(N * K, 2, scale);
    let wu = fill(N * K, 3, scale);
    let w = GluWeights::new(&wg, &wu, K, N, WeightLayout::NK).expect("weights");
    let act = Activation::Silu;
    let mut out = vec![0.0f32; M * N];
    let flops = 4.0 * (M * N * K) as f64;

    let threads = rayon::current_num_threads();
    let (fused_ws, unfused_ws) = cpu::working_set_bytes::<f32>(M, K, N);
    println!("cpu bench: M={M} K={K} N={N} f32 SiLU NK, {threads} rayon threads");
    println!(
        "extra memory: fused {:.2} MiB (per-thread tiles) vs unfused {:.2} MiB (2·M·N·4 intermediates)",
        fused_ws as f64 / (1 << 20) as f64,
        unfused_ws as f64 / (1 << 20) as f64
    );
    let tf = median_secs(|| cpu::forward(&x, &[M, K], &w, act, &mut out).expect("fused"));
    let tu = median_secs(|| cpu::unfused_forward(&x, &[M, K], &w, act, &mut out).expect("unfused"));
    println!(
        "median of 7: fused {:.2} ms = {:.1} GFLOP/s, unfused {:.2} ms = {:.1} GFLOP/s (fused/unfused speed {:.3}x)",
        tf * 1e3,
        flops / tf / 1e9,
        tu * 1e3,
        flops / tu / 1e9,
        tu / tf
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(7))
        .configure_from_args();
    {
        let mut g = c.benchmark_group("cpu_forward_silu_f32_nk");
        // One "element" = one FLOP: criterion's Gelem/s is GFLOP/s.
        g.throughput(Throughput::Elements(4 * (M * N * K) as u64));
        let id = format!("M{M}_K{K}_N{N}");
        g.bench_function(BenchmarkId::new("fused", &id), |b| {
            b.iter(|| {
                cpu::forward(black_box(&x), &[M, K], &w, act, black_box(&mut out)).expect("fused")
            })
        });
        g.bench_function(BenchmarkId::new("unfused", &id), |b| {
            b.iter(|| {
                cpu::unfused_forward(black_box(&x), &[M, K], &w, act, black_box(&mut out))
                    .expect("unfused")
            })
        });
        g.finish();
    }
    c.final_summary();
}
