//! GPU training step benchmark: `forward_train` + `backward_into` for both
//! save modes, with the unfused baseline (`TrainingKernels::Eager`: cuBLAS
//! GEMMs + one kernel per elementwise operation, keeping g, u and act(g),
//! what an eager framework runs; the reference), the cuBLAS-based
//! path (the default: cuBLAS GEMMs + this crate's fused elementwise
//! kernels; the weights are one `[2N, K]` tensor, so its pre-activations
//! and dX are one GEMM each where the eager baseline runs one per
//! projection) and the Hopper kernel's training variants
//! (`TrainingKernels::Fused`, `TrainingKernels::FusedStaged`), bf16, K = 4096,
//! N = 11008, M ∈ {512, 2048, 8192}; CUDA-event
//! timing (median of 15 single-step event pairs after warm-up, the
//! configurations interleaved round by round), TFLOP/s
//! counting the step's 12·M·N·K (forward 4MNK, backward 8MNK), and the bytes
//! each mode keeps between the passes. Results: `bench_gpu_train.md` and
//! `bench_gpu_train.json` in
//! `$SWIGLU_RESULTS_DIR` (default `target/bench-results/`).
//!
//! `SWIGLU_BENCH_QUICK=1` skips criterion's own sampling (the table is
//! always produced).
//! `SWIGLU_BENCH_K`, `_N`, `_M`, `_F32_M`, `_TRAIN_M` and `_ROUNDS` replace
//! the shapes and repetition counts (`common/shapes.rs`; the results then
//! say `"issue_shapes": false`): `scripts/emu-bench.sh` runs this bench on
//! the host emulator that way.

use criterion::{Criterion, criterion_group, criterion_main};
use cudarc::driver::sys::CUevent_flags;
use std::fmt::Write as _;
use std::time::Duration;
use swiglu::cpu::SaveMode;
use swiglu::cuda::{CudaGlu, DeviceGluWeights, DeviceGrads, TrainingKernels};
use swiglu::{Activation, bf16};

#[path = "common/shapes.rs"]
mod shapes;

/// The shapes; `SWIGLU_BENCH_K`, the first of `SWIGLU_BENCH_N`,
/// `SWIGLU_BENCH_TRAIN_M` and `SWIGLU_BENCH_ROUNDS` replace them
/// (`common/shapes.rs`).
const K: usize = 4096;
const N: usize = 11008;
const MS: [usize; 3] = [512, 2048, 8192];

fn bench(c: &mut Criterion) {
    let g = match CudaGlu::new(0) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("SKIPPED gpu_train bench: {e}");
            return;
        }
    };
    let quick = std::env::var("SWIGLU_BENCH_QUICK").is_ok_and(|v| v == "1");
    let s = g.stream().clone();
    let fill = |len: usize, scale: f32| -> Vec<bf16> {
        (0..len)
            .map(|i| bf16::from_f32((((i * 7919 % 1000) as f32) / 500.0 - 1.0) * scale))
            .collect()
    };
    let (k, n) = (
        shapes::one("SWIGLU_BENCH_K", K),
        shapes::list("SWIGLU_BENCH_N", &[N])[0],
    );
    let ms = shapes::list("SWIGLU_BENCH_TRAIN_M", &MS);
    let max_m = *ms.iter().max().unwrap();
    let x = s.clone_htod(&fill(max_m * k, 1.0)).unwrap();
    let d_out = s.clone_htod(&fill(max_m * n, 1.0)).unwrap();
    let gu = s.clone_htod(&fill(2 * n * k, 1.0 / 64.0)).unwrap();
    let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n).unwrap();
    let mut md = String::from(
        "| M | training path | mode | step time (ms) | backward alone (ms) | TFLOP/s (12MNK) | speedup vs unfused (eager) PreActivations | speedup vs cuBLAS-based PreActivations | saved between passes (MB) | step peak above its inputs (MB) | step, pool keeps freed memory (ms) | speedup vs eager, both with the pool keeping memory |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    shapes::banner(&mut md);
    let mut json = format!(
        "{{\n  \"device\": {:?},\n  \"dtype\": \"bf16\", \"k\": {k}, \"n\": {n}, \"issue_shapes\": {},\n  \"results\": [",
        g.device_name().unwrap_or_default(),
        !shapes::overridden()
    );
    let mut group = c.benchmark_group(format!("glu_train_step_bf16_k{k}_n{n}"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let ctx = g.context().clone();
    // Seconds for `iters` back-to-back steps between two CUDA events.
    let time = |iters: u64, step: &mut dyn FnMut()| -> f64 {
        let flags = Some(CUevent_flags::CU_EVENT_DEFAULT);
        let (a, b) = (ctx.new_event(flags).unwrap(), ctx.new_event(flags).unwrap());
        a.record(&s).unwrap();
        for _ in 0..iters {
            step();
        }
        b.record(&s).unwrap();
        b.synchronize().unwrap();
        a.elapsed_ms(&b).unwrap() as f64 / 1e3
    };
    // (training kernels, mode). The staged kernels differ from the fused ones
    // in the PreActivations forward and the Recompute backward's first stage.
    let configs = [
        (TrainingKernels::Eager, SaveMode::PreActivations),
        (TrainingKernels::Eager, SaveMode::Recompute),
        (TrainingKernels::Cublas, SaveMode::PreActivations),
        (TrainingKernels::Cublas, SaveMode::Recompute),
        (TrainingKernels::Fused, SaveMode::PreActivations),
        (TrainingKernels::Fused, SaveMode::Recompute),
        (TrainingKernels::FusedStaged, SaveMode::PreActivations),
        (TrainingKernels::FusedStaged, SaveMode::Recompute),
    ];
    let label = |kern: TrainingKernels| match kern {
        TrainingKernels::Eager => "unfused (eager) baseline",
        TrainingKernels::Cublas => "cuBLAS-based (default)",
        TrainingKernels::Fused => "fused (opt-in)",
        TrainingKernels::FusedStaged => "fused, staged epilogue (opt-in)",
    };
    let rounds = shapes::reps(15);
    let mut stage_rows: Vec<StageRow> = Vec::new();
    for &m in &ms {
        let xv = x.slice(..m * k);
        let dv = d_out.slice(..m * n);
        let mut out = s.alloc_zeros::<bf16>(m * n).unwrap();
        let mut grads = DeviceGrads::<f32>::zeros(&g, m, &w).unwrap();
        let mut saved_bytes = vec![0usize; configs.len()];
        let fwd = |c: usize, out: &mut cudarc::driver::CudaSlice<bf16>| {
            let (kernels, mode) = configs[c];
            g.set_training_kernels(kernels);
            g.forward_train(&xv, &[m, k], &w, Activation::Silu, mode, out)
                .unwrap()
        };
        let bwd = |sv: &swiglu::cuda::DeviceSaved<bf16>, grads: &mut DeviceGrads<f32>| {
            g.backward_into(&xv, &[m, k], &w, Activation::Silu, sv, &dv, grads, false)
                .unwrap();
        };
        let mut step = |c: usize| -> usize {
            let sv = fwd(c, &mut out);
            bwd(&sv, &mut grads);
            sv.bytes()
        };
        for (c, b) in saved_bytes.iter_mut().enumerate() {
            for _ in 0..shapes::reps(2) {
                *b = step(c);
            }
        }
        // Peak device memory of one step beyond what was allocated before it
        // (x, dOut, weights, out, gradients): the pool's high-water mark
        // minus its use before the step (cuBLAS's own workspace not counted).
        let peak: Vec<Option<u64>> = (0..configs.len())
            .map(|c| {
                s.synchronize().ok()?;
                let before = g.pool_usage().ok()?.used;
                g.reset_pool_peak().ok()?;
                step(c);
                s.synchronize().ok()?;
                let high = g.pool_usage().ok()?.used_peak;
                Some(high.saturating_sub(before))
            })
            .collect();
        // Interleaved: each round times every configuration once (one step
        // between two events), starting from a different one each round, so
        // clock or power drift hits them all alike.
        let mut t = vec![Vec::with_capacity(rounds); configs.len()];
        for r in 0..rounds {
            for i in 0..configs.len() {
                let c = (r + i) % configs.len();
                t[c].push(time(1, &mut || {
                    step(c);
                }));
            }
        }
        // The backward alone (after an untimed forward of the same
        // configuration): tells which pass a configuration gains or loses in.
        let mut tb = vec![Vec::with_capacity(rounds); configs.len()];
        {
            let mut out2 = s.alloc_zeros::<bf16>(m * n).unwrap();
            let mut grads2 = DeviceGrads::<f32>::zeros(&g, m, &w).unwrap();
            for r in 0..rounds {
                for i in 0..configs.len() {
                    let c = (r + i) % configs.len();
                    let sv = fwd(c, &mut out2);
                    tb[c].push(time(1, &mut || bwd(&sv, &mut grads2)));
                }
            }
        }
        // Where each configuration's step goes: stage timelines
        // (`CudaGlu::set_stage_timing`), first with the pool as the driver
        // leaves it (release threshold 0: freed memory goes back at every
        // synchronization, so each step maps its saved state and scratch
        // afresh), then with the pool keeping freed memory (threshold
        // u64::MAX, what a framework's caching allocator gives an eager
        // training loop), under which the steps are also timed again.
        let mut stage_pass = |kept: bool, step: &mut dyn FnMut(usize) -> usize| {
            for c in 0..configs.len() {
                for (stage, dev, host) in stage_medians(&g, shapes::reps(5), &mut || {
                    step(c);
                }) {
                    stage_rows.push(StageRow {
                        m,
                        config: c,
                        pool_kept: kept,
                        stage,
                        device_ms: dev,
                        host_us: host,
                    });
                }
            }
        };
        stage_pass(false, &mut step);
        let mut tk = vec![Vec::with_capacity(rounds); configs.len()];
        if let Ok(prev) = g.set_pool_release_threshold(u64::MAX) {
            for c in 0..configs.len() {
                step(c); // fills the pool
            }
            for r in 0..rounds {
                for i in 0..configs.len() {
                    let c = (r + i) % configs.len();
                    tk[c].push(time(1, &mut || {
                        step(c);
                    }));
                }
            }
            stage_pass(true, &mut step);
            if let Err(e) = g.set_pool_release_threshold(prev) {
                eprintln!("M={m}: restoring the pool's release threshold: {e}");
            }
        } else {
            eprintln!("M={m}: the pool's release threshold cannot be set: no pool-kept timings");
        }
        let median = |t: &mut Vec<Vec<f64>>| -> Vec<f64> {
            t.iter_mut()
                .map(|v| {
                    v.sort_by(|a, b| a.total_cmp(b));
                    v[v.len() / 2]
                })
                .collect()
        };
        let med = median(&mut t);
        let med_b = median(&mut tb);
        let med_k: Vec<Option<f64>> = if tk.iter().all(|v| !v.is_empty()) {
            median(&mut tk).into_iter().map(Some).collect()
        } else {
            vec![None; configs.len()]
        };
        let base = |kern| {
            configs
                .iter()
                .position(|&c| c == (kern, SaveMode::PreActivations))
        };
        let eager_base = base(TrainingKernels::Eager).map_or(f64::NAN, |i| med[i]);
        let eager_kept = base(TrainingKernels::Eager)
            .and_then(|i| med_k[i])
            .unwrap_or(f64::NAN);
        let cublas_base = base(TrainingKernels::Cublas).map_or(f64::NAN, |i| med[i]);
        let flops = 12.0 * m as f64 * n as f64 * k as f64;
        for (c, &(kernels, mode)) in configs.iter().enumerate() {
            let name = label(kernels);
            write!(
                json,
                "{}\n    {{\"m\": {m}, \"path\": \"{name}\", \"kernels\": \"{kernels:?}\", \"mode\": \"{mode:?}\", \"step_ms\": {:.6}, \"backward_ms\": {:.6}, \"saved_mb\": {:.3}, \"peak_mb\": {}, \"step_ms_pool_kept\": {}}}",
                if json.ends_with('[') { "" } else { "," },
                med[c] * 1e3,
                med_b[c] * 1e3,
                saved_bytes[c] as f64 / 1e6,
                peak[c].map_or("null".to_string(), |b| format!("{:.3}", b as f64 / 1e6)),
                med_k[c].map_or("null".to_string(), |t| format!("{:.6}", t * 1e3))
            )
            .unwrap();
            writeln!(
                md,
                "| {m} | {name} | {mode:?} | {:.3} | {:.3} | {:.1} | {:.3} | {:.3} | {:.1} | {} | {} | {} |",
                med[c] * 1e3,
                med_b[c] * 1e3,
                flops / med[c] / 1e12,
                eager_base / med[c],
                cublas_base / med[c],
                saved_bytes[c] as f64 / 1e6,
                peak[c].map_or("n/a".to_string(), |b| format!("{:.1}", b as f64 / 1e6)),
                med_k[c].map_or("n/a".to_string(), |t| format!("{:.3}", t * 1e3)),
                med_k[c].map_or("n/a".to_string(), |t| format!("{:.3}", eager_kept / t))
            )
            .unwrap();
            eprintln!(
                "M={m:>5} {name} {mode:?}: {:.3} ms, {:.1} TFLOP/s, saved {:.1} MB",
                med[c] * 1e3,
                flops / med[c] / 1e12,
                saved_bytes[c] as f64 / 1e6
            );
        }
        save(&json, &md);
        save_stages(&g, k, n, &configs, label, &stage_rows);
        if !quick {
            for (c, &(kernels, mode)) in configs.iter().enumerate() {
                let tag = format!("{kernels:?}").to_lowercase();
                group.bench_function(format!("{tag}/{mode:?}/m{m}"), |b| {
                    b.iter_custom(|iters| {
                        Duration::from_secs_f64(time(iters, &mut || {
                            step(c);
                        }))
                    })
                });
            }
        }
    }
    group.finish();
    save(&json, &md);
    println!("{md}");
}

/// One stage of a configuration's step: the median over the timed steps.
struct StageRow {
    m: usize,
    /// Index into the configurations.
    config: usize,
    /// Timed with the pool keeping freed memory.
    pool_kept: bool,
    stage: &'static str,
    device_ms: f64,
    host_us: f64,
}

/// Stage timelines of `rounds` runs of `step` (each after a synchronize):
/// per stage, the median device ms and host us. Runs that listed other
/// stages than the first (none should) are left out.
fn stage_medians(
    g: &CudaGlu,
    rounds: usize,
    step: &mut dyn FnMut(),
) -> Vec<(&'static str, f64, f64)> {
    let mut runs = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        g.stream().synchronize().unwrap();
        g.set_stage_timing(true);
        step();
        let st = g.take_stage_times().unwrap();
        g.set_stage_timing(false);
        runs.push(st);
    }
    let Some(first) = runs.first().cloned() else {
        return Vec::new();
    };
    let same: Vec<_> = runs
        .iter()
        .filter(|r| r.len() == first.len() && r.iter().zip(&first).all(|(a, b)| a.stage == b.stage))
        .collect();
    let med = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    (0..first.len())
        .map(|i| {
            (
                first[i].stage,
                med(same.iter().map(|r| f64::from(r[i].device_ms)).collect()),
                med(same.iter().map(|r| r[i].host_us).collect()),
            )
        })
        .collect()
}

/// Writes the stage table (`bench_gpu_train_stages.md` / `.json`) from all
/// rows so far, a sum row per configuration and pool setting added to the
/// table.
fn save_stages(
    g: &CudaGlu,
    k: usize,
    n: usize,
    configs: &[(TrainingKernels, SaveMode)],
    label: impl Fn(TrainingKernels) -> &'static str,
    rows: &[StageRow],
) {
    let mut md = String::from(
        "| M | training path | mode | pool keeps freed memory | stage | device (ms) | host (us) |\n|---|---|---|---|---|---|---|\n",
    );
    shapes::banner(&mut md);
    let mut json = format!(
        "{{\n  \"device\": {:?},\n  \"dtype\": \"bf16\", \"k\": {k}, \"n\": {n}, \"issue_shapes\": {},\n  \"stages\": [",
        g.device_name().unwrap_or_default(),
        !shapes::overridden()
    );
    let mut i = 0;
    while i < rows.len() {
        let (m, c, kept) = (rows[i].m, rows[i].config, rows[i].pool_kept);
        let (kernels, mode) = configs[c];
        let name = label(kernels);
        let (mut dev, mut host) = (0.0, 0.0);
        while i < rows.len() && (rows[i].m, rows[i].config, rows[i].pool_kept) == (m, c, kept) {
            let r = &rows[i];
            writeln!(
                md,
                "| {m} | {name} | {mode:?} | {kept} | {} | {:.3} | {:.1} |",
                r.stage.replace('|', "\\|"),
                r.device_ms,
                r.host_us
            )
            .unwrap();
            write!(
                json,
                "{}\n    {{\"m\": {m}, \"kernels\": \"{kernels:?}\", \"mode\": \"{mode:?}\", \"pool_kept\": {kept}, \"stage\": {:?}, \"device_ms\": {:.6}, \"host_us\": {:.3}}}",
                if json.ends_with('[') { "" } else { "," },
                r.stage,
                r.device_ms,
                r.host_us
            )
            .unwrap();
            dev += r.device_ms;
            host += r.host_us;
            i += 1;
        }
        writeln!(
            md,
            "| {m} | {name} | {mode:?} | {kept} | **all stages** | **{dev:.3}** | **{host:.1}** |"
        )
        .unwrap();
    }
    let dir = std::env::var("SWIGLU_RESULTS_DIR").unwrap_or_else(|_| "target/bench-results".into());
    let _ = std::fs::create_dir_all(&dir);
    let dir = std::path::Path::new(&dir);
    let _ = std::fs::write(dir.join("bench_gpu_train_stages.md"), md);
    let _ = std::fs::write(
        dir.join("bench_gpu_train_stages.json"),
        format!("{json}\n  ]\n}}\n"),
    );
}

/// Writes the rows gathered so far (`json` is the document up to its open
/// results array), so that a run cut short still leaves them; called after
/// every M and at the end.
fn save(json: &str, md: &str) {
    let dir = std::env::var("SWIGLU_RESULTS_DIR").unwrap_or_else(|_| "target/bench-results".into());
    let _ = std::fs::create_dir_all(&dir);
    let dir = std::path::Path::new(&dir);
    let _ = std::fs::write(dir.join("bench_gpu_train.md"), md);
    let _ = std::fs::write(
        dir.join("bench_gpu_train.json"),
        format!("{json}\n  ]\n}}\n"),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
