//! GPU forward benchmark: the fused kernel against the cuBLAS baselines
//! B1 (two GEMMs + act_and_mul), B2 (one GEMM over [2N,K] + act_and_mul) and
//! B3 (two GEMMs + separate activation and multiply kernels).
//!
//! bf16, K = 4096, N ∈ {11008, 14336}, M ∈ {1 … 16384}. Every timing is
//! CUDA-event based: criterion's `iter_custom` records an event pair around
//! the launches, and the summary table takes the median of per-launch event
//! timings after warm-up, taken round-robin over the paths (each round
//! times every path once, in a freshly shuffled order) so that clock or
//! power drift during the run, or the kernel that ran just before, does
//! not favour one path. The weights (2·N·K·2 bytes ≥ 180 MB) are three
//! times the H200's 60 MB L2 or more, so no run reads them from cache.
//!
//! Then f32 at N = 11008, M ∈ {1, 16, 256, 2048}: Auto (cuBLAS SGEMM since
//! session 16, which measured the exact SIMT kernel 2–6.5x slower), the
//! SIMT kernel, cuBLAS SGEMM (B1, B2, exact f32) and B1 with tf32 allowed; and the autotuner's decisions
//! for every shape above (a second handle with `set_autotune(true)`).
//!
//! `SWIGLU_BENCH_QUICK=1` shortens criterion's sampling (the table is
//! always complete).
//! `SWIGLU_BENCH_K`, `_N`, `_M`, `_F32_M`, `_TRAIN_M` and `_ROUNDS` replace
//! the shapes and repetition counts (`common/shapes.rs`; the results then
//! say `"issue_shapes": false`): `scripts/emu-bench.sh` runs this bench on
//! the host emulator that way. Results: `$SWIGLU_RESULTS_DIR/bench_gpu.json` and
//! `bench_gpu.md` (default `target/bench-results/`).

use criterion::{Criterion, criterion_group, criterion_main};
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaSlice, CudaStream};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use swiglu::cuda::{CudaElement, CudaGlu, DeviceGluWeights, Path};
use swiglu::{Activation, DType, bf16};

#[path = "common/shapes.rs"]
mod shapes;

/// The issues' shapes; `SWIGLU_BENCH_*` replace them (`common/shapes.rs`).
const K: usize = 4096;
const NS: [usize; 2] = [11008, 14336];
const MS: [usize; 11] = [1, 16, 32, 64, 128, 256, 512, 2048, 4096, 8192, 16384];
/// The f32 table's M (every path's time grows as M·N·K on CUDA cores); its
/// N is the first of the forward table's.
const F32_MS: [usize; 4] = [1, 16, 256, 2048];
const PATHS: [Path; 12] = [
    Path::Auto,
    Path::FusedWgmma,
    Path::FusedWgmmaStaged,
    Path::FusedWgmmaTailSplit,
    Path::FusedWgmmaCluster,
    Path::FusedSkinny,
    Path::FusedSkinnyStreamK,
    Path::FusedSkinnyRs,
    Path::FusedMma,
    Path::CublasSplit,
    Path::CublasConcat,
    Path::CublasEager,
];

/// `"driver_cuda_version": .., "commit": .., "date_unix": ..,` for the JSON
/// header: the CUDA version the driver supports (`cuDriverGetVersion`, e.g.
/// "13.0"; `env.log` has the driver release from nvidia-smi), the commit
/// the bundle was built from (`SWIGLU_COMMIT`, set by the bundle's run.sh
/// from its MANIFEST) and the time of the run.
fn run_meta() -> String {
    let mut v: std::ffi::c_int = 0;
    // SAFETY: FFI with a valid out-pointer; the driver is loaded (a
    // `CudaGlu` exists when this is called).
    let ok = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) }
        == cudarc::driver::sys::CUresult::CUDA_SUCCESS;
    let driver = if ok {
        format!("{}.{}", v / 1000, (v % 1000) / 10)
    } else {
        "unknown".into()
    };
    let commit = std::env::var("SWIGLU_COMMIT").unwrap_or_else(|_| "unknown".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("  \"driver_cuda_version\": {driver:?}, \"commit\": {commit:?}, \"date_unix\": {now},")
}

/// Writes the results gathered so far, `json` with the brackets it left
/// open closed, so that a run cut short (a timeout, a panic) still leaves
/// its tables; called after every shape and at the end.
fn save(json: &str, md: &str) {
    let dir = std::env::var("SWIGLU_RESULTS_DIR").unwrap_or_else(|_| "target/bench-results".into());
    let _ = std::fs::create_dir_all(&dir);
    let dir = std::path::Path::new(&dir);
    let _ = std::fs::write(dir.join("bench_gpu.json"), close_json(json));
    let _ = std::fs::write(dir.join("bench_gpu.md"), md);
}

/// `json` (a prefix of a document, cut between values) with the arrays and
/// objects it left open closed; brackets inside strings do not count.
fn close_json(json: &str) -> String {
    let (mut open, mut in_str, mut esc) = (Vec::new(), false, false);
    for c in json.chars() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' => open.push(']'),
            '{' => open.push('}'),
            ']' | '}' => {
                open.pop();
            }
            _ => {}
        }
    }
    let mut out = json.trim_end().trim_end_matches(',').to_string();
    while let Some(c) = open.pop() {
        out.push('\n');
        out.push(c);
    }
    out.push('\n');
    out
}

/// A table row's path: the forced path, or "auto (what it ran)".
fn row_label(p: Path, ran: Path) -> String {
    if p == Path::Auto {
        format!("auto ({})", ran.name())
    } else {
        p.name().to_string()
    }
}

fn quick() -> bool {
    std::env::var("SWIGLU_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Fills a device buffer with values uniform in [-scale, scale) (host-generated once).
fn random<T: CudaElement>(s: &Arc<CudaStream>, len: usize, scale: f32, seed: u64) -> CudaSlice<T> {
    let mut state = seed;
    let host: Vec<T> = (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((state >> 40) as f32) / (1u64 << 24) as f32;
            T::from_f32((u * 2.0 - 1.0) * scale)
        })
        .collect();
    s.clone_htod(&host).expect("upload")
}

struct Case<'a, T: CudaElement> {
    g: &'a CudaGlu,
    x: &'a CudaSlice<T>,
    w: &'a DeviceGluWeights<'a, T>,
    out: &'a std::cell::RefCell<CudaSlice<T>>,
    m: usize,
}

impl<T: CudaElement> Case<'_, T> {
    /// One launch; the path that ran, or why the path cannot take this problem.
    fn try_launch(&self, path: Path) -> Result<Path, swiglu::GluError> {
        let k = self.w.k();
        let xv = self.x.slice(..self.m * k);
        let mut out = self.out.borrow_mut();
        let n = self.w.n();
        let mut ov = out.slice_mut(..self.m * n);
        self.g
            .forward(&xv, &[self.m, k], self.w, Activation::Silu, &mut ov, path)
    }

    fn launch(&self, path: Path) {
        self.try_launch(path).expect("forward");
    }

    /// Seconds for `iters` back-to-back launches, by CUDA events.
    fn time(&self, path: Path, iters: u64) -> f64 {
        self.time_and_host(path, iters).0
    }

    /// As [`Case::time`], and also the host's wall-clock seconds spent
    /// enqueueing the `iters` launches (their host-side cost: argument
    /// checks, dispatch, tensor maps, cudarc's stream/event bookkeeping).
    fn time_and_host(&self, path: Path, iters: u64) -> (f64, f64) {
        let ctx = self.g.context();
        let s = self.g.stream();
        let start = ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .unwrap();
        let end = ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .unwrap();
        start.record(s).unwrap();
        let host = std::time::Instant::now();
        for _ in 0..iters {
            self.launch(path);
        }
        let host = host.elapsed().as_secs_f64();
        end.record(s).unwrap();
        end.synchronize().unwrap();
        (start.elapsed_ms(&end).unwrap() as f64 / 1e3, host)
    }

    /// Per call, launches queued back to back (8 per event pair): the
    /// median over 5 pairs of the GPU time and of the host's enqueue time.
    fn queued(&self, path: Path) -> (f64, f64) {
        let mut q: Vec<(f64, f64)> = (0..shapes::reps(5))
            .map(|_| {
                let (t, h) = self.time_and_host(path, 8);
                (t / 8.0, h / 8.0)
            })
            .collect();
        let mut h: Vec<f64> = q.iter().map(|v| v.1).collect();
        q.sort_by(|a, b| a.0.total_cmp(&b.0));
        h.sort_by(|a, b| a.total_cmp(b));
        (q[q.len() / 2].0, h[h.len() / 2])
    }

    /// `4·M·N·K`, the FLOPs of both projections.
    fn flops(&self) -> f64 {
        4.0 * self.m as f64 * self.w.n() as f64 * self.w.k() as f64
    }

    /// The paths that can take this problem, each with the path it ran
    /// (Auto's choice); the others (wrong arch, M too large) are left out
    /// with a line on stderr.
    fn runnable(&self, paths: &[Path]) -> Vec<(Path, Path)> {
        // run.sh sets SWIGLU_SKIP_CLUSTER when the cluster kernel's smoke
        // test failed: a kernel that traps would leave this process's CUDA
        // context unusable for every later row.
        let skip_cluster =
            std::env::var_os("SWIGLU_SKIP_CLUSTER").is_some_and(|v| !v.is_empty() && v != "0");
        paths
            .iter()
            .filter(|&&p| !(skip_cluster && p == Path::FusedWgmmaCluster))
            .filter_map(|&p| match self.try_launch(p) {
                Ok(ran) => Some((p, ran)),
                Err(e) => {
                    let (n, d) = (self.w.n(), T::DTYPE.name());
                    eprintln!("{d} N={n:>5} M={:>5} {} left out: {e}", self.m, p.name());
                    None
                }
            })
            .collect()
    }

    /// The median of `reps` single-launch times of each path, taken in
    /// rounds: each round times every path once, in a fresh shuffled order,
    /// so that no path always follows the same one (runs 2 and 3 showed
    /// Auto, in a fixed or rotated order, 2-10 us slower than the same
    /// kernel forced: an order effect or a host cost, to be told apart).
    fn interleaved_medians(&self, paths: &[Path], reps: usize) -> Vec<f64> {
        let np = paths.len();
        let mut samples = vec![Vec::with_capacity(reps); np];
        let mut order: Vec<usize> = (0..np).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (self.m as u64);
        for _ in 0..reps {
            for i in (1..np).rev() {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                order.swap(i, (state >> 33) as usize % (i + 1));
            }
            for &i in &order {
                samples[i].push(self.time(paths[i], 1));
            }
        }
        samples
            .iter_mut()
            .map(|t| {
                t.sort_by(|a, b| a.total_cmp(b));
                t[reps / 2]
            })
            .collect()
    }
}

/// The host cost of cudarc's stream bookkeeping at decode sizes. A context
/// with more than one stream (`CudaGlu::new` makes its own) records and
/// waits on an event for every buffer a call touches (`cuEventRecord` /
/// `cuStreamWaitEvent`, ~12 driver calls per fused call); the same handle
/// on a context whose event tracking is off makes none. Auto and cuBLAS
/// B1 at N = 11008, M = 1 and 16, on both: single-launch time (the GPU
/// waits for the host's work before the kernel), queued time and host
/// enqueue cost per call. Tells whether the README should advise
/// untracked contexts for decode loops, or the crate offer one.
fn event_tracking_rows(g: &CudaGlu, (k, n): (usize, usize), md: &mut String, json: &mut String) {
    let untracked = (|| -> Result<CudaGlu, swiglu::GluError> {
        let ctx = cudarc::driver::CudaContext::new(g.context().ordinal())?;
        // SAFETY: cudarc's contract for untracked contexts (no buffer used
        // on another stream before its allocation finished, freed while in
        // use elsewhere or written by two streams at once) holds: every
        // buffer of this context is allocated below, after this call, and
        // used only on its one stream `s`.
        unsafe { ctx.disable_event_tracking() };
        let s = ctx.new_stream()?;
        let h = CudaGlu::with_stream(s)?;
        h.set_autotune(false);
        Ok(h)
    })();
    let untracked = match untracked {
        Ok(h) => h,
        Err(e) => {
            eprintln!("event tracking rows left out: {e}");
            return;
        }
    };
    md.push_str(&format!(
        "\ncudarc event tracking, bf16, N = {n}, K = {k} (single launch / queued / host enqueue per call):\n\n| handle | M | path | time (us) | queued (us each) | host enqueue (us per call) |\n|---|---|---|---|---|---|\n"
    ));
    let mut first = true;
    for (label, h) in [("tracked (CudaGlu::new)", g), ("untracked", &untracked)] {
        let s = h.stream().clone();
        let ms = [1usize, 16];
        let x = random::<bf16>(&s, ms[1] * k, 1.0, 7);
        let gu = random::<bf16>(&s, 2 * n * k, 1.0 / 64.0, 8);
        let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n).unwrap();
        let out = std::cell::RefCell::new(s.alloc_zeros::<bf16>(ms[1] * n).unwrap());
        for m in ms {
            let case = Case {
                g: h,
                x: &x,
                w: &w,
                out: &out,
                m,
            };
            let runnable = case.runnable(&[Path::Auto, Path::CublasSplit]);
            let paths: Vec<Path> = runnable.iter().map(|r| r.0).collect();
            for &p in &paths {
                for _ in 0..shapes::reps(3) {
                    case.launch(p);
                }
            }
            for (&(p, ran), t) in runnable
                .iter()
                .zip(case.interleaved_medians(&paths, shapes::reps(41)))
            {
                let (tq, th) = case.queued(p);
                let name = row_label(p, ran);
                writeln!(
                    md,
                    "| {label} | {m} | {name} | {:.1} | {:.1} | {:.1} |",
                    t * 1e6,
                    tq * 1e6,
                    th * 1e6
                )
                .unwrap();
                write!(
                    json,
                    "{}\n    {{\"handle\": \"{label}\", \"n\": {n}, \"m\": {m}, \"path\": \"{}\", \"ran\": \"{}\", \"median_s\": {t:.9}, \"queued_s\": {tq:.9}, \"host_enqueue_s\": {th:.9}}}",
                    if first { "" } else { "," },
                    p.name(),
                    ran.name()
                )
                .unwrap();
                first = false;
                eprintln!(
                    "{label:<24} N={n} M={m:>3} {name:<24} {:>7.1} us, queued {:>7.1} us, host {:>5.1} us",
                    t * 1e6,
                    tq * 1e6,
                    th * 1e6
                );
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let g = match CudaGlu::new(0) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("SKIPPED gpu bench: {e}");
            return;
        }
    };
    // The "auto" rows time the built-in rule, whatever SWIGLU_AUTOTUNE says
    // (`tuner` below is the autotuned handle).
    g.set_autotune(false);
    let k = shapes::one("SWIGLU_BENCH_K", K);
    let ns = shapes::list("SWIGLU_BENCH_N", &NS);
    let ms = shapes::list("SWIGLU_BENCH_M", &MS);
    let f32_n = ns[0];
    let f32_ms = shapes::list("SWIGLU_BENCH_F32_M", &F32_MS);
    let name = g.device_name().unwrap_or_default();
    let s = g.stream().clone();
    let mut json = String::from("{\n");
    writeln!(
        json,
        "  \"device\": {name:?},\n  \"compute_capability\": \"{}.{}\",",
        g.compute_capability().0,
        g.compute_capability().1
    )
    .unwrap();
    writeln!(json, "{}", run_meta()).unwrap();
    writeln!(
        json,
        "  \"dtype\": \"bf16\", \"k\": {k}, \"activation\": \"silu\", \"issue_shapes\": {},\n  \"results\": [",
        !shapes::overridden()
    )
    .unwrap();
    let mut md = String::from(
        "| N | M | path | time (us) | TFLOP/s | auto speedup vs this | queued, 8 back to back (us each) | host enqueue (us per call) | extra device memory (MB) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    // A second handle with the autotuner on: per shape, which path it
    // keeps and the candidate times it measured (a table of its own; the
    // kept path's time is its row in the main table).
    let tuner = CudaGlu::with_stream(s.clone()).unwrap();
    tuner.set_autotune(true);
    shapes::banner(&mut md);
    let max_m = *ms.iter().max().unwrap();
    let x = random::<bf16>(&s, max_m * k, 1.0, 1);
    let mut first = true;
    for &n in &ns {
        let gu = random::<bf16>(&s, 2 * n * k, 1.0 / 64.0, 2 + n as u64);
        let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n).unwrap();
        let out = std::cell::RefCell::new(s.alloc_zeros::<bf16>(max_m * n).unwrap());
        let mut group = c.benchmark_group(format!("glu_fwd_bf16_k{k}_n{n}"));
        if quick() {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(200))
                .measurement_time(Duration::from_millis(400));
        } else {
            group
                .sample_size(20)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
        }
        for &m in &ms {
            let case = Case {
                g: &g,
                x: &x,
                w: &w,
                out: &out,
                m,
            };
            let flops = case.flops();
            let reps = shapes::reps(if m >= 4096 { 15 } else { 41 });
            // Paths that cannot take this problem (wrong arch, M too large) are left out.
            let runnable = case.runnable(&PATHS);
            // Interleaved: each round times every path once, so clock and
            // power drift over the run spreads evenly over the paths.
            for &(p, _) in &runnable {
                for _ in 0..shapes::reps(3) {
                    case.launch(p);
                }
            }
            let forced: Vec<Path> = runnable.iter().map(|r| r.0).collect();
            let times: Vec<(Path, Path, f64)> = runnable
                .iter()
                .zip(case.interleaved_medians(&forced, reps))
                .map(|(&(p, ran), t)| (p, ran, t))
                .collect();
            let auto = times[0].2;
            // Launches queued back to back (8 per event pair): the host's
            // per-call work overlaps the previous kernel, so a path whose
            // single-launch time exceeds this by more than noise pays for
            // host work the GPU waited on.
            // The host column is the enqueue cost per call in those queued
            // rounds (the GPU is busy, so the host never waits on it).
            let queued: Vec<(f64, f64)> = runnable.iter().map(|&(p, _)| case.queued(p)).collect();
            for (&(p, ran, t), &(tq, th)) in times.iter().zip(&queued) {
                let label = row_label(p, ran);
                let ws = g.workspace_bytes(ran, m, k, n, DType::BF16);
                writeln!(
                    md,
                    "| {n} | {m} | {label} | {:.1} | {:.1} | {:.3} | {:.1} | {:.1} | {:.1} |",
                    t * 1e6,
                    flops / t / 1e12,
                    t / auto,
                    tq * 1e6,
                    th * 1e6,
                    ws as f64 / 1e6
                )
                .unwrap();
                if !first {
                    json.push_str(",\n");
                }
                first = false;
                write!(
                    json,
                    "    {{\"n\": {n}, \"m\": {m}, \"path\": \"{}\", \"ran\": \"{}\", \"median_s\": {t:.9}, \"tflops\": {:.3}, \"auto_speedup\": {:.4}, \"queued_s\": {tq:.9}, \"host_enqueue_s\": {th:.9}, \"workspace_bytes\": {ws}}}",
                    p.name(),
                    ran.name(),
                    flops / t / 1e12,
                    t / auto
                )
                .unwrap();
                eprintln!(
                    "N={n:>5} M={m:>5} {label:<24} {:>9.1} us {:>6.1} TFLOP/s  auto speedup {:.3}",
                    t * 1e6,
                    flops / t / 1e12,
                    t / auto
                );
            }
            let tune = Case { g: &tuner, ..case };
            if let Err(e) = tune.try_launch(Path::Auto) {
                eprintln!("N={n:>5} M={m:>5} autotune failed: {e}");
            }
            save(&json, &md);
            // Quick mode keeps only the event-timed table above.
            for p in runnable.iter().map(|r| r.0).filter(|_| !quick()) {
                group.bench_function(format!("{}/m{m}", p.name()), |b| {
                    b.iter_custom(|iters| Duration::from_secs_f64(case.time(p, iters)))
                });
            }
        }
        group.finish();
    }
    json.push_str("\n  ],\n  \"event_tracking\": [");
    event_tracking_rows(&g, (k, ns[0]), &mut md, &mut json);
    save(&json, &md);
    // f32 is exact by default: Auto (cuBLAS SGEMM), the SIMT kernel, cuBLAS
    // SGEMM (B1, B2); then B1 with tf32 allowed.
    json.push_str("\n  ],\n  \"f32\": [");
    md.push_str(&format!(
        "\nf32, N = {f32_n}, K = {k} (exact unless marked tf32):\n\n| M | path | time (us) | TFLOP/s | auto speedup vs this |\n|---|---|---|---|---|\n"
    ));
    let max_m32 = *f32_ms.iter().max().unwrap();
    let x32 = random::<f32>(&s, max_m32 * k, 1.0, 98);
    let gu32 = random::<f32>(&s, 2 * f32_n * k, 1.0 / 64.0, 99);
    let w32 = DeviceGluWeights::from_gate_up(gu32.as_view(), k, f32_n).unwrap();
    let out32 = std::cell::RefCell::new(s.alloc_zeros::<f32>(max_m32 * f32_n).unwrap());
    let mut first32 = true;
    for &m in &f32_ms {
        let case = Case {
            g: &g,
            x: &x32,
            w: &w32,
            out: &out32,
            m,
        };
        let flops = case.flops();
        // A path that cannot take the problem is left out, not a panic.
        let runnable = case.runnable(&[
            Path::Auto,
            Path::FusedSimt,
            Path::CublasSplit,
            Path::CublasConcat,
        ]);
        let paths: Vec<Path> = runnable.iter().map(|r| r.0).collect();
        let mut rows: Vec<(String, f64)> = Vec::new();
        for &p in &paths {
            case.launch(p);
        }
        let reps = shapes::reps(if m >= 2048 { 5 } else { 11 });
        for (&(p, ran), t) in runnable.iter().zip(case.interleaved_medians(&paths, reps)) {
            let label = row_label(p, ran);
            rows.push((label, t));
        }
        // tf32 after the exact rows (not interleaved with them: the switch is
        // per handle).
        g.set_allow_tf32(true);
        if case.try_launch(Path::CublasSplit).is_ok() {
            let tf32 = case.interleaved_medians(&[Path::CublasSplit], reps)[0];
            rows.push(("cublas-b1 tf32 (timed after)".to_string(), tf32));
        }
        g.set_allow_tf32(false);
        let Some(auto) = rows
            .first()
            .filter(|r| r.0.starts_with("auto"))
            .map(|r| r.1)
        else {
            continue;
        };
        for (label, t) in rows {
            writeln!(
                md,
                "| {m} | {label} | {:.1} | {:.2} | {:.3} |",
                t * 1e6,
                flops / t / 1e12,
                t / auto
            )
            .unwrap();
            write!(
                json,
                "{}\n    {{\"n\": {f32_n}, \"m\": {m}, \"path\": \"{label}\", \"median_s\": {t:.9}, \"tflops\": {:.3}}}",
                if first32 { "" } else { "," },
                flops / t / 1e12
            )
            .unwrap();
            first32 = false;
            eprintln!(
                "f32 N={f32_n:>5} M={m:>5} {label:<24} {:>9.1} us {:>6.2} TFLOP/s",
                t * 1e6,
                flops / t / 1e12
            );
        }
        let tune = Case { g: &tuner, ..case };
        if let Err(e) = tune.try_launch(Path::Auto) {
            eprintln!("f32 N={f32_n:>5} M={m:>5} autotune failed: {e}");
        }
        save(&json, &md);
    }

    json.push_str("\n  ],\n  \"autotune\": [");
    md.push_str(
        "\nAutotuner (`set_autotune(true)`, median of 7 interleaved event-timed runs per candidate; one run for a candidate over 3x slower than the fastest in the first round):\n\n| dtype | N | M | built-in | kept | candidates (us) |\n|---|---|---|---|---|---|\n",
    );
    let mut tuned = tuner.tuned_paths();
    tuned.sort_by_key(|t| (t.dtype.name(), t.n, t.measured_m));
    for (i, t) in tuned.iter().enumerate() {
        for (p, e) in &t.failures {
            eprintln!(
                "autotune {} N={} M={}: {} failed: {e}",
                t.dtype.name(),
                t.n,
                t.measured_m,
                p.name()
            );
        }
        let us = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.2}"));
        let cands: Vec<String> = t
            .timings
            .iter()
            .map(|(p, v)| format!("{} {}", p.name(), us(*v)))
            .collect();
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            t.dtype.name(),
            t.n,
            t.measured_m,
            t.heuristic.name(),
            t.chosen.name(),
            cands.join(", ")
        )
        .unwrap();
        let cands: Vec<String> = t
            .timings
            .iter()
            .map(|(p, v)| format!("{{\"path\": \"{}\", \"us\": {}}}", p.name(), us(*v)))
            .collect();
        write!(
            json,
            "{}\n    {{\"dtype\": \"{}\", \"n\": {}, \"m\": {}, \"builtin\": \"{}\", \"kept\": \"{}\", \"candidates\": [{}]}}",
            if i > 0 { "," } else { "" },
            t.dtype.name(),
            t.n,
            t.measured_m,
            t.heuristic.name(),
            t.chosen.name(),
            cands.join(", ")
        )
        .unwrap();
    }
    json.push_str("\n  ]\n}\n");
    save(&json, &md);
    println!("{md}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
