//! `#[repr(C)]` mirrors of the parameter blocks in `kernels/glu_params.cuh`.
//!
//! The header `static_assert`s the same offsets that the `const` blocks here
//! assert, so the two sides cannot drift apart silently; the GPU tests also
//! round-trip known values through the `glu_params_probe` kernel.

use cudarc::driver::DeviceRepr;
use std::ffi::c_void;
use std::mem::{offset_of, size_of};

/// Tile rows of the tensor-core fused kernel (`GLU_MMA_BM`).
pub const MMA_BM: usize = 128;
/// Tile columns of the tensor-core fused kernel (`GLU_MMA_BN`).
pub const MMA_BN: usize = 128;
/// k-step of the tensor-core fused kernel (`GLU_MMA_BK`).
pub const MMA_BK: usize = 32;
/// Pipeline stages of the tensor-core fused kernel (`GLU_MMA_STAGES`).
pub const MMA_STAGES: usize = 4;
/// Threads per block of the tensor-core fused kernel (`GLU_MMA_THREADS`).
pub const MMA_THREADS: u32 = 512;
/// Dynamic shared memory of the tensor-core fused kernel (`GLU_MMA_SMEM_BYTES`).
pub const MMA_SMEM_BYTES: u32 = (MMA_STAGES * (MMA_BM * MMA_BK + 2 * MMA_BN * MMA_BK) * 2) as u32;
/// Tile rows of the SIMT fused kernel (`GLU_SIMT_BM`).
pub const SIMT_BM: usize = 64;
/// Tile columns of the SIMT fused kernel (`GLU_SIMT_BN`).
pub const SIMT_BN: usize = 64;
/// Threads per block of the SIMT fused kernel (`GLU_SIMT_THREADS`).
pub const SIMT_THREADS: u32 = 256;
/// Threads per block of the elementwise kernels (`GLU_ELT_THREADS`).
pub const ELT_THREADS: u32 = 256;

/// Mirror of `struct GluParams` (field meanings are documented in the header).
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GluParams {
    pub x: *const c_void,
    pub w_gate: *const c_void,
    pub w_up: *const c_void,
    pub b_gate: *const c_void,
    pub b_up: *const c_void,
    pub out: *mut c_void,
    pub m: i64,
    pub n: i64,
    pub k: i64,
    pub layout: i32,
    pub act: i32,
    pub beta: f32,
    pub reserved: i32,
}

/// Mirror of `struct GluEltParams` (field meanings are documented in the header).
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GluEltParams {
    pub a: *const c_void,
    pub b: *const c_void,
    pub c: *const c_void,
    pub bias_a: *const c_void,
    pub bias_b: *const c_void,
    pub out0: *mut c_void,
    pub out1: *mut c_void,
    pub rows: i64,
    pub n: i64,
    pub ld_a: i64,
    pub ld_b: i64,
    pub ld_c: i64,
    pub ld_out0: i64,
    pub ld_out1: i64,
    pub act: i32,
    pub beta: f32,
}

/// `GLU_EPI_OUT_PRE`: the forward also writes the pre-activations.
pub const EPI_OUT_PRE: i32 = 1;
/// `GLU_EPI_DGU`: the backward's first stage (dGate | dUp from d_out).
pub const EPI_DGU: i32 = 2;
/// `GLU_EPI_OUT_PRE_TMA`: [`EPI_OUT_PRE`], staged in shared memory and stored
/// with TMA (`fused_glu_wgmma_prestaged_*`).
pub const EPI_OUT_PRE_TMA: i32 = 4;
/// `GLU_EPI_DGU_TMA`: [`EPI_DGU`], staged: d_out loaded into shared memory,
/// dGate and dUp stored with TMA.
pub const EPI_DGU_TMA: i32 = 5;
/// `GLU_EPI_DX`: the backward's dX, two K segments into one tile, written
/// in the input type (`fused_glu_wgmma_dx_*`).
pub const EPI_DX: i32 = 6;
/// `GLU_EPI_DX_F32`: [`EPI_DX`] written as f32 (`fused_glu_wgmma_dx32_*`).
pub const EPI_DX_F32: i32 = 7;
/// `GLU_EPI_DW`: the backward's weight gradients, A read M-major, tile rows
/// and halves routed by [`GluGemmOut`], in the input type
/// (`fused_glu_wgmma_dw_*`). The kernels take no epilogue code (it is their
/// template argument); kept to check the header's numbering.
#[cfg_attr(not(test), allow(dead_code))]
pub const EPI_DW: i32 = 8;
/// `GLU_EPI_DW_F32`: [`EPI_DW`] in f32 (`fused_glu_wgmma_dw32_*`).
#[cfg_attr(not(test), allow(dead_code))]
pub const EPI_DW_F32: i32 = 9;

/// Mirror of `struct GluTrainParams`: the extra argument of the Hopper
/// kernel's training variants (`fused_glu_wgmma_{pre,dgu}_*`).
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GluTrainParams {
    pub d_out: *const c_void,
    pub aux: *mut c_void,
    pub ld_aux: i64,
    pub epi: i32,
    pub reserved: i32,
}

/// Mirror of `struct GluGemmOut`: where the weight-gradient kernel's tile
/// rows and halves go (`ptr[2·segment + half]`, rows `>= split` in segment
/// 1), and whether it adds to them.
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GluGemmOut {
    pub ptr: [*mut c_void; 4],
    pub ld: i64,
    pub split: i64,
    pub accumulate: i32,
    pub reserved: i32,
}

/// Mirror of `struct GluTailSplit`: the tail-split schedule of the Hopper
/// forward (`fused_glu_wgmma_split_*`): partial-sum workspace, tile
/// counters (zero between launches), schedule width and part count.
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GluTailSplit {
    pub ws: *mut f32,
    pub flags: *mut u32,
    pub width: i64,
    pub parts: i32,
    pub reserved: i32,
}

// SAFETY: the structs are plain `#[repr(C)]` data whose layout matches the
// CUDA definitions (asserted below and in the header); the pointers they hold
// are device addresses that the launchers validate before each launch.
unsafe impl DeviceRepr for GluParams {}
// SAFETY: as above.
unsafe impl DeviceRepr for GluEltParams {}
// SAFETY: as above.
unsafe impl DeviceRepr for GluTrainParams {}
// SAFETY: as above.
unsafe impl DeviceRepr for GluGemmOut {}
// SAFETY: as above.
unsafe impl DeviceRepr for GluTailSplit {}

const _: () = {
    assert!(offset_of!(GluTailSplit, flags) == 8);
    assert!(offset_of!(GluTailSplit, width) == 16);
    assert!(offset_of!(GluTailSplit, parts) == 24);
    assert!(size_of::<GluTailSplit>() == 32);
    assert!(offset_of!(GluParams, x) == 0);
    assert!(offset_of!(GluParams, out) == 40);
    assert!(offset_of!(GluParams, m) == 48);
    assert!(offset_of!(GluParams, k) == 64);
    assert!(offset_of!(GluParams, layout) == 72);
    assert!(offset_of!(GluParams, act) == 76);
    assert!(offset_of!(GluParams, beta) == 80);
    assert!(size_of::<GluParams>() == 88);
    assert!(offset_of!(GluEltParams, out1) == 48);
    assert!(offset_of!(GluEltParams, rows) == 56);
    assert!(offset_of!(GluEltParams, ld_out1) == 104);
    assert!(offset_of!(GluEltParams, act) == 112);
    assert!(offset_of!(GluEltParams, beta) == 116);
    assert!(size_of::<GluEltParams>() == 120);
    assert!(offset_of!(GluTrainParams, aux) == 8);
    assert!(offset_of!(GluTrainParams, ld_aux) == 16);
    assert!(offset_of!(GluTrainParams, epi) == 24);
    assert!(size_of::<GluTrainParams>() == 32);
    assert!(offset_of!(GluGemmOut, ld) == 32);
    assert!(offset_of!(GluGemmOut, split) == 40);
    assert!(offset_of!(GluGemmOut, accumulate) == 48);
    assert!(size_of::<GluGemmOut>() == 56);
};

impl GluParams {
    /// The parameter block of one fused forward: device addresses of x,
    /// the two weights, the optional biases (0 for none) and out.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        [x, w_gate, w_up, b_gate, b_up, out]: [u64; 6],
        (m, n, k): (usize, usize, usize),
        layout: crate::WeightLayout,
        act: crate::Activation,
    ) -> Self {
        GluParams {
            x: x as *const c_void,
            w_gate: w_gate as *const c_void,
            w_up: w_up as *const c_void,
            b_gate: b_gate as *const c_void,
            b_up: b_up as *const c_void,
            out: out as *mut c_void,
            m: m as i64,
            n: n as i64,
            k: k as i64,
            layout: layout.code(),
            act: act.code(),
            beta: act.beta(),
            reserved: 0,
        }
    }
}

impl GluEltParams {
    /// All-null parameters for `rows x n`, contiguous rows, to be filled in.
    pub(crate) fn empty(rows: usize, n: usize, act: i32, beta: f32) -> Self {
        let null = std::ptr::null();
        let n64 = n as i64;
        Self {
            a: null,
            b: null,
            c: null,
            bias_a: null,
            bias_b: null,
            out0: std::ptr::null_mut(),
            out1: std::ptr::null_mut(),
            rows: rows as i64,
            n: n64,
            ld_a: n64,
            ld_b: n64,
            ld_c: n64,
            ld_out0: n64,
            ld_out1: n64,
            act,
            beta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses the `#define`s of the shared header and checks that the Rust
    /// constants mirror them, so a retuned tile cannot desynchronise.
    #[test]
    fn header_constants_match() {
        let header = include_str!("../../kernels/glu_params.cuh");
        let get = |name: &str| -> usize {
            let line = header
                .lines()
                .find(|l| l.starts_with(&format!("#define {name} ")))
                .unwrap_or_else(|| panic!("{name} missing from glu_params.cuh"));
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        assert_eq!(get("GLU_MMA_BM"), MMA_BM);
        assert_eq!(get("GLU_MMA_BN"), MMA_BN);
        assert_eq!(get("GLU_MMA_BK"), MMA_BK);
        assert_eq!(get("GLU_MMA_STAGES"), MMA_STAGES);
        assert_eq!(get("GLU_MMA_THREADS"), MMA_THREADS as usize);
        assert_eq!(get("GLU_SIMT_BM"), SIMT_BM);
        assert_eq!(get("GLU_SIMT_BN"), SIMT_BN);
        assert_eq!(get("GLU_SIMT_THREADS"), SIMT_THREADS as usize);
        assert_eq!(get("GLU_ELT_THREADS"), ELT_THREADS as usize);
        for (name, code) in [
            ("GLU_ACT_SILU", crate::Activation::Silu.code()),
            (
                "GLU_ACT_SWISH",
                crate::Activation::Swish { beta: 1.0 }.code(),
            ),
            ("GLU_ACT_SIGMOID", crate::Activation::Sigmoid.code()),
            ("GLU_ACT_GELU_ERF", crate::Activation::GeluErf.code()),
            ("GLU_ACT_GELU_TANH", crate::Activation::GeluTanh.code()),
            ("GLU_ACT_RELU", crate::Activation::Relu.code()),
            ("GLU_ACT_IDENTITY", crate::Activation::Identity.code()),
            ("GLU_LAYOUT_KN", crate::WeightLayout::KN.code()),
            ("GLU_LAYOUT_NK", crate::WeightLayout::NK.code()),
            ("GLU_EPI_OUT_PRE", EPI_OUT_PRE),
            ("GLU_EPI_DGU", EPI_DGU),
            ("GLU_EPI_OUT_PRE_TMA", EPI_OUT_PRE_TMA),
            ("GLU_EPI_DGU_TMA", EPI_DGU_TMA),
            ("GLU_EPI_DX", EPI_DX),
            ("GLU_EPI_DX_F32", EPI_DX_F32),
            ("GLU_EPI_DW", EPI_DW),
            ("GLU_EPI_DW_F32", EPI_DW_F32),
        ] {
            assert_eq!(get(name), code as usize, "{name}");
        }
        // The header asserts the same offsets as the const block above.
        for needle in [
            "offsetof(GluParams, out) == 40",
            "offsetof(GluParams, beta) == 80",
            "sizeof(GluParams) == 88",
            "offsetof(GluEltParams, ld_out1) == 104",
            "sizeof(GluEltParams) == 120",
            "offsetof(GluTrainParams, epi) == 24",
            "offsetof(GluGemmOut, accumulate) == 48",
            "sizeof(GluGemmOut) == 56",
            "sizeof(GluTrainParams) == 32",
        ] {
            assert!(header.contains(needle), "header lost `{needle}`");
        }
    }
}
