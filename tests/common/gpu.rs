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
