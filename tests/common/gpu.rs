//! GPU test plumbing shared by the `gpu_*` test files.

use std::sync::OnceLock;
use swiglu::DType;
use swiglu::cuda::CudaGlu;

/// The shared GPU handle, or `None` with the reason printed (the test then
/// returns early and counts as skipped). With `SWIGLU_REQUIRE_GPU=1` a
/// missing GPU panics instead, so a GPU run cannot pass by skipping.
/// Its autotuner is off whatever `SWIGLU_AUTOTUNE` says: the tests assert
/// the built-in rule's choices (the autotuner has tests of its own).
pub fn gpu() -> Option<&'static CudaGlu> {
    static GPU: OnceLock<Option<CudaGlu>> = OnceLock::new();
    GPU.get_or_init(|| match CudaGlu::new(0) {
        Ok(g) => {
            g.set_autotune(false);
            Some(g)
        }
        Err(e) => {
            if std::env::var("SWIGLU_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("SWIGLU_REQUIRE_GPU=1 but no usable GPU: {e}");
            }
            eprintln!("SKIPPED (no usable GPU): {e}");
            None
        }
    })
    .as_ref()
}

/// Normwise relative-error threshold per element type.
pub fn tolerance(d: DType) -> f64 {
    match d {
        DType::BF16 => 1e-2,
        DType::F16 => 2e-3,
        DType::F32 => 1e-5,
    }
}

/// Writes `text` to `$SWIGLU_RESULTS_DIR/name` when that variable is set.
pub fn save(name: &str, text: &str) {
    if let Ok(dir) = std::env::var("SWIGLU_RESULTS_DIR") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(std::path::Path::new(&dir).join(name), text);
    }
}

/// A handle of its own (a new stream on the shared handle's context), with
/// its autotuner off like the shared one's.
pub fn own_handle(shared: &CudaGlu) -> CudaGlu {
    let g = CudaGlu::with_stream(shared.context().new_stream().unwrap()).unwrap();
    g.set_autotune(false);
    g
}

/// Whether the GPU run asked to leave out the Hopper cluster schedule
/// (`Path::FusedWgmmaCluster`): the bundle's `run.sh` sets
/// `SWIGLU_SKIP_CLUSTER=1` when that kernel's smoke test (`wgmma_selftest
/// --cluster-smoke`, run first) failed or timed out, so that a kernel that
/// traps or hangs cannot take the rest of a test binary with it (a trap
/// leaves the process's CUDA context unusable). The smoke test's failure is
/// recorded in the run's summary; this prints that the path is left out.
pub fn cluster_skipped() -> bool {
    let skip = std::env::var_os("SWIGLU_SKIP_CLUSTER").is_some_and(|v| !v.is_empty() && v != "0");
    if skip {
        eprintln!(
            "SKIPPED fused-wgmma-cluster: SWIGLU_SKIP_CLUSTER is set (its smoke test failed)"
        );
    }
    skip
}

/// Whether the "GPU" is the host emulator's stand-in driver
/// (`kernels/emu/standin`, `scripts/emu-gpu-tests.sh`): the kernels' own
/// source running on the CPU, thousands of times slower than a GPU.
pub fn emulated(g: &CudaGlu) -> bool {
    g.device_name()
        .is_ok_and(|n| n.starts_with("swiglu host emulator"))
}

/// Whether an `m x k x n` problem runs in this test run: always on a GPU;
/// on the host emulator only up to `SWIGLU_EMU_MAX_MACS` multiply-adds per
/// projection (default 4M, which keeps every tile edge of the shape lists
/// but not their large cases). A case left out is printed, so a run shows
/// what it did not check.
pub fn runs_here(g: &CudaGlu, what: &str, (m, k, n): (usize, usize, usize)) -> bool {
    if !emulated(g) {
        return true;
    }
    let limit = emu_limit();
    let macs = m.saturating_mul(k).saturating_mul(n);
    if macs > limit {
        eprintln!(
            "EMULATOR: left out {what} {m}x{k}x{n} ({macs} multiply-adds > SWIGLU_EMU_MAX_MACS {limit})"
        );
        return false;
    }
    true
}

fn emu_limit() -> usize {
    std::env::var("SWIGLU_EMU_MAX_MACS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(4 << 20)
}

/// [`runs_here`] with a second tier for sweeps over many settings: on the
/// host emulator a problem up to 5x the limit runs for one `key` (the
/// settings of the call) in `one_in`, picked by a fixed hash, so the sweep
/// still meets its tail shapes under some of its settings. Printed when
/// left out.
pub fn runs_here_sampled(
    g: &CudaGlu,
    what: &str,
    (m, k, n): (usize, usize, usize),
    key: &str,
    one_in: u64,
) -> bool {
    if !emulated(g) {
        return true;
    }
    let limit = emu_limit();
    let macs = m.saturating_mul(k).saturating_mul(n);
    if macs <= limit {
        return true;
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (m, k, n, key).hash(&mut h);
    if macs <= limit.saturating_mul(5) && h.finish() % one_in.max(1) == 0 {
        return true;
    }
    eprintln!(
        "EMULATOR: left out {what} {m}x{k}x{n} {key} ({macs} multiply-adds; up to 5x SWIGLU_EMU_MAX_MACS {limit} one setting in {one_in} runs)"
    );
    false
}

/// `(m, k, n)` on a GPU; on the host emulator clamped to at most 130 x 512
/// x 264 (still over a tile edge in each dimension), printed when it
/// changes: for tests whose point is the call sequence (graph capture,
/// scratch growth) rather than the size.
pub fn shrink_on_emulator(g: &CudaGlu, (m, k, n): (usize, usize, usize)) -> (usize, usize, usize) {
    if !emulated(g) {
        return (m, k, n);
    }
    let s = (m.min(130), k.min(512), n.min(264));
    if s != (m, k, n) {
        eprintln!("EMULATOR: {m}x{k}x{n} runs as {}x{}x{}", s.0, s.1, s.2);
    }
    s
}
