//! # swiglu
//!
//! Fused gated feed-forward layers — SwiGLU and the rest of the GLU family —
//! for Rust training and inference loops:
//!
//! ```text
//! out = act(x·Wg + bg) ⊙ (x·Wu + bu)
//! ```
//!
//! with `x: [.., K]` (leading dims flattened to M rows), `Wg, Wu: [K, N]`
//! (stored `[K,N]` or, as checkpoints do, `[N,K]`), optional biases, and
//! `act` one of [`Activation`]. Arithmetic is f32 throughout and the output
//! is rounded once.
//!
//! ```
//! use swiglu::{bf16, cpu, Activation, GluWeights, WeightLayout};
//! let (k, n) = (16, 8);
//! // gate_proj / up_proj as checkpoints store them: [N, K].
//! let wg: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32((i as f32 * 0.3).cos() * 0.2)).collect();
//! let wu: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32((i as f32 * 0.7).sin() * 0.2)).collect();
//! let w = GluWeights::new(&wg, &wu, k, n, WeightLayout::NK)?;
//! let x = vec![bf16::from_f32(0.5); 2 * 3 * k]; // [batch 2, seq 3, K]
//! let h = cpu::forward_alloc(&x, &[2, 3, k], &w, Activation::Silu)?; // [2, 3, N]
//! assert_eq!(h.len(), 2 * 3 * n);
//! // Bad shapes are typed errors, never panics.
//! assert!(cpu::forward_alloc(&x, &[2, 3, k + 1], &w, Activation::Silu).is_err());
//! # Ok::<(), swiglu::GluError>(())
//! ```
//!
//! ## Conventions
//!
//! The activation is applied to the **gate** projection, the first argument
//! of [`GluWeights::new`] and rows `0..N` of a merged `[2N, K]` tensor:
//!
//! * LLaMA / Mistral `w2(silu(w1·x) ⊙ w3·x)`: gate = `w1` (`gate_proj`),
//!   up = `w3` (`up_proj`), [`Activation::Silu`]; the down projection `w2`
//!   is not part of this crate's kernel.
//! * PyTorch `F.glu(t, dim=-1)` splits `t = [a | b]` and returns `a·σ(b)`: it
//!   gates the **second** half, so pass `b`'s weights as the gate and `a`'s as
//!   up, with [`Activation::Sigmoid`].
//! * GEGLU (T5 v1.1 uses the tanh form): [`Activation::GeluTanh`] or
//!   [`Activation::GeluErf`]; ReGLU: [`Activation::Relu`]; bilinear:
//!   [`Activation::Identity`].
//!
//! ## Where it runs
//!
//! * [`cpu`]: fused, blocked, multi-threaded; exact f32 accumulation; the
//!   fallback without a GPU and the oracle for the kernels.
//! * `cuda` (feature `cuda`, on by default): `CudaGlu` picks a kernel per
//!   problem with `Path::Auto` and reports which one ran: for bf16/f16 the
//!   Hopper kernel (TMA + wgmma) on compute capability 9.0 for M > 32, a
//!   weight-streaming kernel for M ≤ 32 (except on 9.x and newer with
//!   concatenated weights at 16 ≤ M ≤ 32, where cuBLAS B2 runs), the
//!   portable `mma.sync` kernel on sm_80..sm_89, and the exact SIMT kernel
//!   for data the tensor cores cannot take (K or N not a multiple of 8,
//!   buffers not 16-byte aligned); for f32 cuBLAS's exact SGEMM (B2 for
//!   concatenated weights, else B1) unless tf32 is allowed; and the cuBLAS
//!   baselines where no fused kernel has been measured faster. Without a driver, GPU,
//!   cuBLAS or embedded kernels, or on a GPU below compute capability 8.0
//!   (Volta and older have none of the tensor-core instructions the kernels
//!   use), `CudaGlu::new` returns [`GluError::CudaUnavailable`]; nothing
//!   panics. `CudaGlu::set_autotune(true)` makes `Path::Auto` time the
//!   candidate paths on the first call of each problem class and keep the
//!   fastest (for GPUs the built-in rule was not measured on).
//! * f32 on the GPU is exact (f32 FMA, no tf32) unless the caller opts in
//!   with `CudaGlu::set_allow_tf32(true)`: then f32 may run on the tf32
//!   tensor cores (10-bit mantissa products, f32 accumulation), like
//!   PyTorch's `allow_tf32`.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `cuda` | on | the `cuda` module. Builds with no CUDA installed: `build.rs` embeds the kernels when it finds nvcc (else the crate is CPU-only and `CudaGlu::new` says so), and the driver and cuBLAS are loaded at run time. |
//! | `candle` | off | `candle`: the fused FFN as a candle `Module` / `CustomOp` with its gradient, loaded from a `VarBuilder` under Hugging Face names, on candle's CPU device. |
//! | `candle-cuda` | off | the same op on candle CUDA tensors, running this crate's kernels on candle's stream (needs what candle's `cuda` feature needs to build). |
//!
//! ## Training
//!
//! `forward_train` keeps either the pre-activations (`2·M·N` values) or
//! nothing (`SaveMode::Recompute`: the backward recomputes them), and
//! `backward`/`backward_into` return `dX`, `dWg`, `dWu` and the bias
//! gradients, optionally accumulating into existing buffers.
//!
//! ## Errors
//!
//! Every entry point validates shapes, lengths, dtypes, layouts and
//! alignment first and returns a [`GluError`] naming what is wrong; a call
//! that fails has written nothing to its outputs. `M = 0` is valid and does
//! nothing. NaN and Inf propagate as in the f64 reference.
//!
//! ## Layers
//!
//! | layer | where | what |
//! |---|---|---|
//! | safe API | [`GluWeights`], [`cpu`], `cuda`, [`checkpoint`] | validated calls that never panic on user input |
//! | launch | `src/cuda/*.rs` | each kernel launch in an `unsafe` block whose `SAFETY` comment names the checked preconditions |
//! | kernels | `kernels/*.cu` | hand-written CUDA, embedded as fatbins by `build.rs` |
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "candle")]
#[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
pub mod candle;
pub mod checkpoint;
pub mod cpu;
#[cfg(feature = "cuda")]
#[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
pub mod cuda;
mod error;
pub mod reference;
mod types;
mod weights;

pub use error::{GluError, Result};
pub use half::{bf16, f16};
pub use types::{Activation, DType, Element, WeightLayout};
pub use weights::{GluWeights, rows_of};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
