//! Probes for a first run on a new GPU: do the parameter blocks reach the
//! kernels intact, and do the tensor-core fragment layouts match what the
//! fused kernel assumes? Each returns a description of the first mismatch.

use super::CudaGlu;
use super::params::{GluEltParams, GluParams};
use crate::error::{GluError, Result};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use std::ffi::c_void;

/// One wrong element of the fragment probe's 16x8 result.
///
/// Returned by [`CudaGlu::probe_mma_fragments`]; see there for an example.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FragmentMismatch {
    /// `"nk"` (non-transposed B) or `"kn"` (`ldmatrix.trans` B).
    pub path: &'static str,
    /// Row of the product.
    pub row: usize,
    /// Column of the product.
    pub col: usize,
    /// What the kernel produced.
    pub got: f32,
    /// What the layouts imply.
    pub want: f32,
}

impl CudaGlu {
    /// Sends known values through `glu_params_probe` and checks that the
    /// kernel reads every field of both parameter blocks at the offsets the
    /// Rust mirrors use.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// let g = swiglu::cuda::CudaGlu::new(0)?;
    /// g.probe_params()?; // an error names the first field that arrived wrong
    /// # Ok(())
    /// # }
    /// ```
    pub fn probe_params(&self) -> Result<()> {
        let p = GluParams {
            x: 0x1000 as *const c_void,
            w_gate: 0x2000 as *const c_void,
            w_up: 0x3000 as *const c_void,
            b_gate: 0x4000 as *const c_void,
            b_up: 0x5000 as *const c_void,
            out: 0x6000 as *mut c_void,
            m: 123_456_789_012,
            n: 11008,
            k: -4096,
            layout: 1,
            act: 4,
            beta: 1.5,
            reserved: -7,
        };
        let e = GluEltParams {
            a: 0x7000 as *const c_void,
            b: 0x8000 as *const c_void,
            c: 0x9000 as *const c_void,
            bias_a: 0xa000 as *const c_void,
            bias_b: 0xb000 as *const c_void,
            out0: 0xc000 as *mut c_void,
            out1: 0xd000 as *mut c_void,
            rows: 77,
            n: 88,
            ld_a: 99,
            ld_b: 111,
            ld_c: 222,
            ld_out0: 333,
            ld_out1: 444,
            act: 5,
            beta: -2.25,
        };
        let s64 = |v: i64| v as u64;
        let want: Vec<u64> = vec![
            s64(p.m),
            s64(p.n),
            s64(p.k),
            1,
            4,
            p.beta.to_bits() as u64,
            s64(-7),
            0x1000,
            0x2000,
            0x3000,
            0x4000,
            0x5000,
            0x6000,
            77,
            88,
            99,
            111,
            222,
            333,
            444,
            5,
            e.beta.to_bits() as u64,
            0x7000,
            0x8000,
            0x9000,
            0xa000,
            0xb000,
            0xc000,
            0xd000,
        ];
        let mut out = self.stream.alloc_zeros::<u64>(want.len())?;
        let f = self.function("probe", "glu_params_probe")?;
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (1, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the probe only reads its by-value arguments (the pointers in
        // them are never dereferenced) and writes 29 u64 to `out`, which holds 29.
        unsafe {
            self.stream
                .launch_builder(&f)
                .arg(&p)
                .arg(&e)
                .arg(&mut out)
                .launch(cfg)
        }?;
        let got = self.stream.clone_dtoh(&out)?;
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            if g != w {
                return Err(GluError::CudaUnavailable(format!(
                    "parameter block mismatch at probe slot {i}: kernel read {g:#x}, host wrote {w:#x}"
                )));
            }
        }
        Ok(())
    }

    /// Runs `mma_fragment_probe`: the fused kernel's own ldmatrix/mma
    /// fragment code on a known 16x16 product, via both the `[N,K]` (non
    /// transposed) and `[K,N]` (`.trans`) B paths. Returns the mismatches;
    /// empty means the layouts are right.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// let g = swiglu::cuda::CudaGlu::new(0)?;
    /// let bad = g.probe_mma_fragments()?;
    /// for m in &bad {
    ///     eprintln!("{} path: ({}, {}) = {}, want {}", m.path, m.row, m.col, m.got, m.want);
    /// }
    /// assert!(bad.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn probe_mma_fragments(&self) -> Result<Vec<FragmentMismatch>> {
        let mut out = self.stream.clone_htod(&vec![f32::NAN; 256])?;
        let f = self.function("probe", "mma_fragment_probe")?;
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (32, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the probe writes 256 f32 to `out`, which holds 256; it uses
        // only static shared memory.
        unsafe { self.stream.launch_builder(&f).arg(&mut out).launch(cfg) }?;
        let got = self.stream.clone_dtoh(&out)?;
        let mut bad = Vec::new();
        for (half, path) in ["nk", "kn"].into_iter().enumerate() {
            for r in 0..16 {
                for c in 0..8 {
                    let g = got[half * 128 + r * 8 + c];
                    let w = (r * 16 + c) as f32;
                    if g != w {
                        bad.push(FragmentMismatch {
                            path,
                            row: r,
                            col: c,
                            got: g,
                            want: w,
                        });
                    }
                }
            }
        }
        Ok(bad)
    }
}
