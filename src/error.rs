//! The crate's one error type.

use crate::types::{DType, WeightLayout};

/// Everything that can go wrong in a `swiglu` call.
///
/// Every variant names the offending shape, dtype, layout or alignment. A call
/// that returns an error has written nothing to its output.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// catch-all arm.
///
/// ```
/// use swiglu::{cpu, Activation, GluError, GluWeights, WeightLayout};
/// let (k, n) = (4, 2);
/// let wg = vec![0.5f32; k * n];
/// let w = GluWeights::new(&wg, &wg, k, n, WeightLayout::NK)?;
/// let x = vec![1.0f32; 3 * 5];
/// let mut out = vec![7.0f32; 3 * n];
/// // x's last dimension (5) is not K (4).
/// let err = cpu::forward(&x, &[3, 5], &w, Activation::Silu, &mut out).unwrap_err();
/// match &err {
///     GluError::DimMismatch { expected, got, .. } => assert_eq!((*expected, *got), (4, 5)),
///     other => panic!("unexpected error: {other}"),
/// }
/// assert!(err.to_string().contains("expected 4, got 5"));
/// assert!(out.iter().all(|&v| v == 7.0)); // nothing written
/// # Ok::<(), GluError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GluError {
    /// A buffer's length does not match the shape it was declared with.
    #[error("{what}: expected {expected} elements for shape {shape:?}, got {got}")]
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// The declared shape.
        shape: Vec<usize>,
        /// Elements the shape implies.
        expected: usize,
        /// Elements supplied.
        got: usize,
    },
    /// Two arguments disagree on a dimension.
    #[error("dimension mismatch: {what} (expected {expected}, got {got})")]
    DimMismatch {
        /// Which dimension.
        what: &'static str,
        /// The value implied by the other arguments.
        expected: usize,
        /// The value supplied.
        got: usize,
    },
    /// A dimension that must be positive is zero, or an input has no dimensions.
    #[error("invalid shape {shape:?} for {what}: {why}")]
    BadShape {
        /// Which argument.
        what: &'static str,
        /// The shape supplied.
        shape: Vec<usize>,
        /// Why it is rejected.
        why: &'static str,
    },
    /// A product of dimensions overflows `usize` or a kernel's index range.
    #[error("{what} = {dims:?} overflows {limit}")]
    Overflow {
        /// Which product.
        what: &'static str,
        /// Its factors.
        dims: Vec<usize>,
        /// The bound it exceeds.
        limit: &'static str,
    },
    /// An activation parameter is not usable (for example a non-finite Swish beta).
    #[error("invalid activation parameter: {0}")]
    BadActivation(String),
    /// The requested combination of dtype, layout and path is not supported.
    #[error("unsupported: {what} (dtype {dtype:?}, layout {layout:?})")]
    Unsupported {
        /// What was asked for.
        what: String,
        /// The element type.
        dtype: DType,
        /// The weight layout.
        layout: WeightLayout,
    },
    /// A device pointer or stride does not meet a kernel's alignment requirement.
    #[error("misaligned {what}: needs {required}-byte alignment (address or stride {value:#x})")]
    Misaligned {
        /// Which argument.
        what: &'static str,
        /// Required alignment in bytes.
        required: usize,
        /// The offending address or byte stride.
        value: usize,
    },
    /// The backward pass was given saved state that does not match its inputs.
    #[error("saved state mismatch: {0}")]
    SavedMismatch(String),
    /// A tensor the caller asked for is not in the checkpoint.
    #[error("checkpoint: tensor `{name}` not found{note}")]
    MissingTensor {
        /// The full tensor name looked up.
        name: String,
        /// Extra context (for example which alternatives were tried), empty or
        /// starting with a separator.
        note: String,
    },
    /// A checkpoint tensor has a dtype that is unsupported or disagrees with
    /// the other tensors or with the requested element type.
    #[error("checkpoint: tensor `{name}` has dtype {found}, expected {expected}")]
    TensorDType {
        /// The tensor's name.
        name: String,
        /// The dtype stored in the file (as safetensors names it).
        found: String,
        /// What was required.
        expected: String,
    },
    /// A checkpoint tensor's shape is not what a gated FFN needs, or disagrees
    /// with the other tensors.
    #[error("checkpoint: tensor `{name}` has shape {shape:?}: {why}")]
    TensorShape {
        /// The tensor's name.
        name: String,
        /// The shape stored in the file.
        shape: Vec<usize>,
        /// Why it is rejected.
        why: String,
    },
    /// A checkpoint file could not be read or is not valid safetensors.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// No usable CUDA device: no driver library, no GPU, no cuBLAS, kernels
    /// not built, a device ordinal that is not present, or a GPU below
    /// compute capability 8.0.
    #[error("CUDA unavailable: {0}")]
    CudaUnavailable(String),
    /// An autotuner table (`CudaGlu::import_tuned_paths`) that cannot be used
    /// here: malformed, made on another kind of GPU, or naming a path that
    /// cannot take its problem class. Nothing was imported.
    #[error("autotuner table, line {line}: {why}")]
    TuningTable {
        /// 1-based line of the table.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A CUDA driver call failed.
    #[cfg(feature = "cuda")]
    #[error("CUDA driver error: {0:?}")]
    Driver(#[from] cudarc::driver::DriverError),
    /// A cuBLAS call failed.
    #[cfg(feature = "cuda")]
    #[error("cuBLAS error: {0:?}")]
    Cublas(#[from] cudarc::cublas::result::CublasError),
}

/// Shorthand for `Result<T, GluError>`.
///
/// ```
/// use swiglu::{cpu, Activation, GluWeights, WeightLayout};
/// fn hidden(x: &[f32], wg: &[f32], wu: &[f32], k: usize, n: usize) -> swiglu::Result<Vec<f32>> {
///     let w = GluWeights::new(wg, wu, k, n, WeightLayout::NK)?;
///     cpu::forward_alloc(x, &[x.len() / k, k], &w, Activation::Silu)
/// }
/// assert_eq!(hidden(&[1.0; 6], &[0.1; 6], &[0.2; 6], 3, 2).unwrap().len(), 4);
/// assert!(hidden(&[1.0; 6], &[0.1; 5], &[0.2; 6], 3, 2).is_err());
/// ```
pub type Result<T> = std::result::Result<T, GluError>;
