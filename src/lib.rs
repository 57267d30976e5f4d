//! # swiglu
//!
//! Fused gated feed-forward layers — SwiGLU and the rest of the GLU family —
//! for Rust training and inference loops:
//!
//! ```text
//! out = act(x·Wg + bg) ⊙ (x·Wu + bu)
//! ```
//!
//! with `x: [.., K]`, `Wg, Wu: [K, N]` (stored `[K,N]` or, as checkpoints do,
//! `[N,K]`), optional biases, and `act` one of [`Activation`]. Arithmetic is
//! f32 throughout and the output is rounded once.
//!
//! The crate has three layers:
//!
//! | layer | where | what |
//! |---|---|---|
//! | safe API | [`GluWeights`], [`cpu`], `cuda` | validated calls that never panic on user input |
//! | launch | `cuda::launch` | one `unsafe fn` per kernel, each documenting its preconditions |
//! | kernels | `kernels/*.cu` | hand-written CUDA, embedded as fatbins by `build.rs` |
#![warn(missing_docs)]

#[cfg(feature = "candle")]
pub mod candle;
pub mod checkpoint;
pub mod cpu;
#[cfg(feature = "cuda")]
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
