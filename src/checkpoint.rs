//! Gated-FFN weights from `.safetensors` checkpoints (Hugging Face names).
//!
//! A LLaMA / Mistral / Qwen style checkpoint stores the FFN of layer `L` as
//!
//! ```text
//! model.layers.{L}.mlp.gate_proj.weight   [N, K]
//! model.layers.{L}.mlp.up_proj.weight     [N, K]
//! model.layers.{L}.mlp.down_proj.weight   [K, N]
//! ```
//!
//! (the `nn.Linear` layout, i.e. [`WeightLayout::NK`]), optionally with
//! `.bias` tensors of shape `[N]` (`[K]` for `down_proj`). Phi-3 style
//! checkpoints merge gate and up into one `gate_up_proj.weight` of shape
//! `[2N, K]` (rows `0..N` gate, `N..2N` up; a merged bias is `[2N]`). Both
//! forms are found automatically under a name prefix: [`layer_prefix`] for
//! the `model.layers.{L}.mlp.` convention, or any prefix the caller gives.
//!
//! Loading has three steps, each cheap:
//!
//! 1. [`SafetensorsBuffer::map`] memory-maps the file (only the pages of
//!    the tensors used are ever read: one layer of a multi-GB shard costs
//!    that layer's bytes), [`SafetensorsBuffer::read`] reads all of it into
//!    an 8-byte-aligned buffer, or [`Checkpoint::parse`] borrows bytes the
//!    caller already has;
//! 2. [`Checkpoint::ffn`] / [`Checkpoint::ffn_layer`] find the tensors and
//!    check names, dtypes and shapes, giving an [`FfnTensors`] (raw bytes,
//!    dtype known at run time);
//! 3. [`FfnTensors::typed`] views them as `&[T]` for `T` = `f32`,
//!    [`f16`](crate::f16) or [`bf16`](crate::bf16) (the file's dtype; no
//!    conversion), and [`FfnWeights::weights`] gives the [`GluWeights`] that
//!    [`cpu::forward`](crate::cpu::forward) and friends take.
//!
//! **Copies.** Step 3 casts the file's bytes in place when they are aligned
//! for `T` (checked with [`bytemuck::try_cast_slice`]). The safetensors
//! format does not promise that: its header length is arbitrary in principle,
//! so a tensor's data may start at an odd address. Files written by the
//! reference `safetensors` implementations pad the header to a multiple of 8
//! and order tensors by decreasing alignment, so with a
//! [`SafetensorsBuffer`] (8-byte aligned) their tensors are always aligned
//! and nothing is copied. Where a tensor is not aligned (or on a big-endian
//! target, since safetensors data is little-endian) that tensor is copied
//! into a fresh `Vec<T>`; [`FfnWeights::is_zero_copy`] tells which happened.
//!
//! ```
//! use safetensors::{serialize, tensor::TensorView, Dtype};
//! use swiglu::checkpoint::{Checkpoint, layer_prefix};
//! use swiglu::{bf16, cpu, Activation};
//!
//! // A tiny one-layer checkpoint: K = 4, N = 3, bf16.
//! let (k, n) = (4, 3);
//! let w: Vec<bf16> = (0..n * k).map(|i| bf16::from_f32(i as f32 * 0.01)).collect();
//! let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
//! let t = || TensorView::new(Dtype::BF16, vec![n, k], &bytes).unwrap();
//! let file = serialize(
//!     [
//!         ("model.layers.0.mlp.gate_proj.weight", t()),
//!         ("model.layers.0.mlp.up_proj.weight", t()),
//!     ],
//!     None,
//! )
//! .unwrap();
//!
//! let ckpt = Checkpoint::parse(&file)?;
//! assert_eq!(layer_prefix(0), "model.layers.0.mlp.");
//! let ffn = ckpt.ffn_layer(0)?; // names, dtypes and shapes checked here
//! assert_eq!((ffn.k(), ffn.n(), ffn.dtype()), (k, n, swiglu::DType::BF16));
//! let typed = ffn.typed::<bf16>()?; // zero-copy where aligned
//! let out = cpu::forward_alloc(&vec![bf16::ONE; 2 * k], &[2, k], &typed.weights()?, Activation::Silu)?;
//! assert_eq!(out.len(), 2 * n);
//! # Ok::<(), swiglu::GluError>(())
//! ```

use crate::error::{GluError, Result};
use crate::types::{DType, Element};
use crate::weights::GluWeights;
use safetensors::{Dtype, SafeTensors};
use std::borrow::Cow;
use std::path::Path;

#[cfg(doc)]
use crate::types::WeightLayout;

/// The conventional FFN name prefix of transformer layer `layer` in Hugging
/// Face LLaMA-family checkpoints: `model.layers.{layer}.mlp.`.
///
/// ```
/// use swiglu::checkpoint::layer_prefix;
/// assert_eq!(layer_prefix(12), "model.layers.12.mlp.");
/// assert_eq!(format!("{}gate_proj.weight", layer_prefix(0)), "model.layers.0.mlp.gate_proj.weight");
/// ```
pub fn layer_prefix(layer: usize) -> String {
    format!("model.layers.{layer}.mlp.")
}

/// A whole `.safetensors` file in memory, read into an 8-byte-aligned buffer
/// or memory-mapped (page-aligned), so that well-formed files can be viewed
/// as `f32`/`f16`/`bf16` slices without copying (see the [module docs](self)).
///
/// ```
/// # use safetensors::{serialize, tensor::TensorView, Dtype};
/// # // A safetensors file of f32 tensors, built in memory.
/// # fn f32_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
/// #     let bytes: Vec<Vec<u8>> = tensors
/// #         .iter()
/// #         .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
/// #         .collect();
/// #     let views = tensors.iter().zip(&bytes).map(|((name, shape, _), b)| {
/// #         (*name, TensorView::new(Dtype::F32, shape.clone(), b).unwrap())
/// #     });
/// #     serialize(views, None).unwrap()
/// # }
/// use swiglu::checkpoint::SafetensorsBuffer;
/// use swiglu::GluError;
/// let file = f32_file(&[("w", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])]);
/// let path = std::env::temp_dir().join(format!("swiglu-doc-{}.safetensors", std::process::id()));
/// std::fs::write(&path, &file).unwrap();
///
/// let buf = SafetensorsBuffer::read(&path)?;
/// std::fs::remove_file(&path).unwrap();
/// assert_eq!(buf.as_bytes(), &file[..]);
/// assert_eq!(buf.as_bytes().as_ptr() as usize % 8, 0); // aligned for any dtype
/// assert_eq!(buf.checkpoint()?.names(), ["w"]);
///
/// // Bytes already in memory: copied once into an aligned buffer.
/// let copy = SafetensorsBuffer::from_bytes(&file);
/// assert_eq!(copy.checkpoint()?.tensor("w")?.shape(), [2, 2]);
///
/// // A missing file is an error naming the path.
/// assert!(matches!(SafetensorsBuffer::read(&path), Err(GluError::Checkpoint(_))));
/// # Ok::<(), GluError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SafetensorsBuffer {
    storage: Storage,
}

#[derive(Clone, Debug)]
enum Storage {
    /// `len` bytes in u64 words (8-byte aligned).
    Owned { words: Vec<u64>, len: usize },
    /// A read-only map of the whole file (page aligned); shared by clones.
    Mapped(std::sync::Arc<memmap2::Mmap>),
}

impl SafetensorsBuffer {
    /// Reads the whole file at `path` into memory. (See the type's example;
    /// for large files prefer [`map`](Self::map), which reads only what is
    /// used.)
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("swiglu-read-{}.st", std::process::id()));
    /// # let (k, n) = (4, 2);
    /// # let w = vec![0u8; 4 * n * k];
    /// # let t = || safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![n, k], &w).unwrap();
    /// # let names = ["model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"];
    /// # safetensors::serialize_to_file(names.map(|m| (m, t())), None, &path).unwrap();
    /// use swiglu::checkpoint::SafetensorsBuffer;
    /// let buf = SafetensorsBuffer::read(&path)?;
    /// assert_eq!(buf.checkpoint()?.ffn_layer(0)?.k(), 4);
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`GluError::Checkpoint`] naming the path if it cannot be opened or read.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Read;
        let path = path.as_ref();
        let io = |e: std::io::Error| GluError::Checkpoint(format!("{}: {e}", path.display()));
        let mut f = std::fs::File::open(path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        let len = usize::try_from(len).map_err(|_| {
            GluError::Checkpoint(format!(
                "{}: {len} bytes do not fit in memory",
                path.display()
            ))
        })?;
        let mut words = vec![0u64; len.div_ceil(8)];
        f.read_exact(&mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len])
            .map_err(io)?;
        Ok(Self {
            storage: Storage::Owned { words, len },
        })
    }

    /// Memory-maps the file at `path` read-only. Nothing is read up front:
    /// the OS pages in the bytes that are used, so taking one layer's FFN
    /// from a multi-GB shard reads about that layer's tensors (and the
    /// header). Tensors are used in place, as with [`read`](Self::read).
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("swiglu-map-{}.st", std::process::id()));
    /// # let (k, n) = (4, 2);
    /// # let w = vec![0u8; 2 * n * k];
    /// # let t = || safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, vec![n, k], &w).unwrap();
    /// # let names = ["model.layers.3.mlp.gate_proj.weight", "model.layers.3.mlp.up_proj.weight"];
    /// # safetensors::serialize_to_file(names.map(|m| (m, t())), None, &path).unwrap();
    /// use swiglu::{bf16, checkpoint::SafetensorsBuffer};
    /// // SAFETY: nothing else writes to or truncates this file while `buf` lives.
    /// let buf = unsafe { SafetensorsBuffer::map(&path) }?;
    /// let ffn = buf.checkpoint()?.ffn_layer(3)?;
    /// let typed = ffn.typed::<bf16>()?;
    /// assert!(typed.is_zero_copy()); // the weights are the mapped file's bytes
    /// assert_eq!(typed.weights()?.n(), 2);
    /// # drop(typed);
    /// # drop(buf);
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// # Safety
    ///
    /// The file must not be modified or truncated (by this or any other
    /// process) while the buffer or anything borrowed from it is alive: the
    /// bytes are the file's pages, so a concurrent write changes them under
    /// shared references, and a truncation makes reading them fault. This is
    /// the contract of every memory-mapped loader (candle's
    /// `VarBuilder::from_mmaped_safetensors` has the same); checkpoints that
    /// are only read while a model runs satisfy it.
    ///
    /// # Errors
    ///
    /// [`GluError::Checkpoint`] naming the path if it cannot be opened or mapped.
    pub unsafe fn map(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |e: std::io::Error| GluError::Checkpoint(format!("{}: {e}", path.display()));
        let f = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the caller guarantees that the file is neither modified nor
        // truncated while the map (or a borrow of its bytes) is alive, the
        // condition under which a read-only map behaves as an immutable
        // byte slice.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io)?;
        Ok(Self {
            storage: Storage::Mapped(std::sync::Arc::new(map)),
        })
    }

    /// Copies `bytes` (a whole safetensors file) into an aligned buffer.
    ///
    /// ```
    /// # let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4]).unwrap();
    /// # let file = safetensors::serialize([("w", t)], None).unwrap();
    /// use swiglu::checkpoint::SafetensorsBuffer;
    /// let buf = SafetensorsBuffer::from_bytes(&file[..]); // e.g. bytes from the network
    /// assert_eq!(buf.as_bytes(), &file[..]);
    /// assert!(buf.checkpoint()?.contains("w"));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let len = bytes.len();
        let mut words = vec![0u64; len.div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len].copy_from_slice(bytes);
        Self {
            storage: Storage::Owned { words, len },
        }
    }

    /// The file's bytes (8-byte aligned when read or copied, page-aligned
    /// when mapped).
    ///
    /// ```
    /// # let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4]).unwrap();
    /// # let file = safetensors::serialize([("w", t)], None).unwrap();
    /// let buf = swiglu::checkpoint::SafetensorsBuffer::from_bytes(&file);
    /// assert_eq!(buf.as_bytes().len(), file.len());
    /// assert_eq!(buf.as_bytes().as_ptr() as usize % 8, 0);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Owned { words, len } => &bytemuck::cast_slice::<u64, u8>(words)[..*len],
            Storage::Mapped(map) => map,
        }
    }

    /// Whether the bytes are a memory map of the file ([`map`](Self::map)).
    ///
    /// ```
    /// # let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4]).unwrap();
    /// # let file = safetensors::serialize([("w", t)], None).unwrap();
    /// let buf = swiglu::checkpoint::SafetensorsBuffer::from_bytes(&file);
    /// assert!(!buf.is_mapped());
    /// ```
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }

    /// Parses the buffer: [`Checkpoint::parse`] on [`as_bytes`](Self::as_bytes).
    ///
    /// ```
    /// # let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &[0u8; 8]).unwrap();
    /// # let file = safetensors::serialize([("b", t)], None).unwrap();
    /// let buf = swiglu::checkpoint::SafetensorsBuffer::from_bytes(&file);
    /// assert_eq!(buf.checkpoint()?.tensor("b")?.shape(), [2]);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Checkpoint::parse`].
    pub fn checkpoint(&self) -> Result<Checkpoint<'_>> {
        Checkpoint::parse(self.as_bytes())
    }
}

/// A parsed safetensors file borrowing its bytes.
///
/// ```
/// # use safetensors::{serialize, tensor::TensorView, Dtype};
/// # // A safetensors file of f32 tensors, built in memory.
/// # fn f32_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
/// #     let bytes: Vec<Vec<u8>> = tensors
/// #         .iter()
/// #         .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
/// #         .collect();
/// #     let views = tensors.iter().zip(&bytes).map(|((name, shape, _), b)| {
/// #         (*name, TensorView::new(Dtype::F32, shape.clone(), b).unwrap())
/// #     });
/// #     serialize(views, None).unwrap()
/// # }
/// use swiglu::checkpoint::Checkpoint;
/// use swiglu::{DType, GluError};
/// let file = f32_file(&[
///     ("b.bias", vec![3], vec![0.0; 3]),
///     ("a.weight", vec![3, 2], vec![1.0; 6]),
/// ]);
/// let ckpt = Checkpoint::parse(&file)?;
/// assert_eq!(ckpt.names(), ["a.weight", "b.bias"]); // sorted
/// assert!(ckpt.contains("b.bias") && !ckpt.contains("c"));
/// let t = ckpt.tensor("a.weight")?;
/// assert_eq!((t.name(), t.dtype(), t.shape()), ("a.weight", DType::F32, &[3, 2][..]));
/// assert_eq!(t.bytes().len(), 6 * 4);
/// assert!(matches!(ckpt.tensor("c"), Err(GluError::MissingTensor { .. })));
///
/// // Not a safetensors file:
/// assert!(matches!(Checkpoint::parse(b"not safetensors"), Err(GluError::Checkpoint(_))));
/// # Ok::<(), GluError>(())
/// ```
pub struct Checkpoint<'a> {
    st: SafeTensors<'a>,
}

impl std::fmt::Debug for Checkpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("tensors", &self.st.len())
            .finish()
    }
}

impl<'a> Checkpoint<'a> {
    /// Parses the header of a safetensors file held in `bytes`; tensor data
    /// is not touched (so `bytes` may be a memory map).
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, b) = (vec![0u8; 2 * 2 * n * k], vec![0u8; 2 * 2 * n]);
    /// # let file = serialize([
    /// #     ("model.layers.2.mlp.gate_up_proj.weight", TensorView::new(Dtype::BF16, vec![2 * n, k], &w).unwrap()),
    /// #     ("model.layers.2.mlp.gate_up_proj.bias", TensorView::new(Dtype::BF16, vec![2 * n], &b).unwrap()),
    /// # ], None).unwrap();
    /// use swiglu::checkpoint::Checkpoint;
    /// let ckpt = Checkpoint::parse(&file)?; // any &[u8]: a Vec, a map, a buffer
    /// assert_eq!(ckpt.names().len(), 2);
    /// assert!(ckpt.contains("model.layers.2.mlp.gate_up_proj.bias"));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`GluError::Checkpoint`] if the header is malformed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        check_data_offsets(bytes)?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| GluError::Checkpoint(format!("not a valid safetensors file: {e}")))?;
        Ok(Self { st })
    }

    /// The names of all tensors in the file, sorted.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, b) = (vec![0u8; 2 * 2 * n * k], vec![0u8; 2 * 2 * n]);
    /// # let file = serialize([
    /// #     ("model.layers.2.mlp.gate_up_proj.weight", TensorView::new(Dtype::BF16, vec![2 * n, k], &w).unwrap()),
    /// #     ("model.layers.2.mlp.gate_up_proj.bias", TensorView::new(Dtype::BF16, vec![2 * n], &b).unwrap()),
    /// # ], None).unwrap();
    /// let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// assert_eq!(ckpt.names(), [
    ///     "model.layers.2.mlp.gate_up_proj.bias",
    ///     "model.layers.2.mlp.gate_up_proj.weight",
    /// ]);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn names(&self) -> Vec<&str> {
        let mut v = self.st.names();
        v.sort_unstable();
        v
    }

    /// Whether the file holds a tensor called `name`.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, b) = (vec![0u8; 2 * 2 * n * k], vec![0u8; 2 * 2 * n]);
    /// # let file = serialize([
    /// #     ("model.layers.2.mlp.gate_up_proj.weight", TensorView::new(Dtype::BF16, vec![2 * n, k], &w).unwrap()),
    /// #     ("model.layers.2.mlp.gate_up_proj.bias", TensorView::new(Dtype::BF16, vec![2 * n], &b).unwrap()),
    /// # ], None).unwrap();
    /// let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// assert!(ckpt.contains("model.layers.2.mlp.gate_up_proj.weight"));
    /// assert!(!ckpt.contains("model.layers.2.mlp.gate_proj.weight"));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// The tensor called `name`, with its dtype checked to be one this crate
    /// computes in (f32, f16, bf16).
    ///
    /// # Errors
    ///
    /// [`GluError::MissingTensor`] if absent, [`GluError::TensorDType`] if its
    /// dtype is not f32, f16 or bf16.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, b) = (vec![0u8; 2 * 2 * n * k], vec![0u8; 2 * 2 * n]);
    /// # let file = serialize([
    /// #     ("model.layers.2.mlp.gate_up_proj.weight", TensorView::new(Dtype::BF16, vec![2 * n, k], &w).unwrap()),
    /// #     ("model.layers.2.mlp.gate_up_proj.bias", TensorView::new(Dtype::BF16, vec![2 * n], &b).unwrap()),
    /// # ], None).unwrap();
    /// use swiglu::{DType, GluError};
    /// let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let t = ckpt.tensor("model.layers.2.mlp.gate_up_proj.weight")?;
    /// assert_eq!((t.dtype(), t.shape()), (DType::BF16, &[6, 4][..]));
    /// assert!(matches!(ckpt.tensor("lm_head.weight"), Err(GluError::MissingTensor { .. })));
    /// # Ok::<(), GluError>(())
    /// ```
    pub fn tensor(&self, name: &str) -> Result<RawTensor<'a>> {
        let view = self.st.tensor(name).map_err(|_| GluError::MissingTensor {
            name: name.to_string(),
            note: String::new(),
        })?;
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            other => {
                return Err(GluError::TensorDType {
                    name: name.to_string(),
                    found: format!("{other:?}"),
                    expected: "F32, F16 or BF16".into(),
                });
            }
        };
        Ok(RawTensor {
            name: name.to_string(),
            dtype,
            shape: view.shape().to_vec(),
            data: view.data(),
        })
    }

    fn optional(&self, name: &str) -> Result<Option<RawTensor<'a>>> {
        if self.contains(name) {
            self.tensor(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The FFN of transformer layer `layer` under the conventional prefix
    /// [`layer_prefix`]`(layer)`; see [`ffn`](Self::ffn).
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, b) = (vec![0u8; 2 * 2 * n * k], vec![0u8; 2 * 2 * n]);
    /// # let file = serialize([
    /// #     ("model.layers.2.mlp.gate_up_proj.weight", TensorView::new(Dtype::BF16, vec![2 * n, k], &w).unwrap()),
    /// #     ("model.layers.2.mlp.gate_up_proj.bias", TensorView::new(Dtype::BF16, vec![2 * n], &b).unwrap()),
    /// # ], None).unwrap();
    /// let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let ffn = ckpt.ffn_layer(2)?;
    /// assert!(ffn.is_merged() && ffn.has_biases() == (true, true));
    /// assert_eq!((ffn.k(), ffn.n()), (4, 3));
    /// assert!(ckpt.ffn_layer(0).is_err()); // no layer 0 in this file
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`ffn`](Self::ffn).
    pub fn ffn_layer(&self, layer: usize) -> Result<FfnTensors<'a>> {
        self.ffn(&layer_prefix(layer))
    }

    /// The FFN tensors under `prefix` (a trailing `.` is added if missing;
    /// an empty prefix means bare names such as `gate_proj.weight`).
    ///
    /// Looks for `{prefix}gate_proj.weight` and `{prefix}up_proj.weight`
    /// (each `[N, K]`), else the merged `{prefix}gate_up_proj.weight`
    /// (`[2N, K]`); the matching `.bias` tensors if present (`[N]` each, or
    /// `[2N]` merged); and `{prefix}down_proj.weight` (`[K, N]`) with its
    /// optional bias (`[K]`) if present. All must have the same dtype, one of
    /// f32, f16, bf16.
    ///
    /// # Errors
    ///
    /// - [`GluError::MissingTensor`] naming the missing gate or up tensor
    ///   (when only one of the pair exists, or neither it nor the merged form);
    /// - [`GluError::TensorDType`] naming a tensor whose dtype is unsupported
    ///   or differs from the gate's;
    /// - [`GluError::TensorShape`] naming a tensor whose shape is not as
    ///   above (gate and up must have the same `[N, K]`, N, K > 0).
    ///
    /// # Examples
    ///
    /// A Phi-3 style merged `gate_up_proj` with a bias and a `down_proj`,
    /// under a custom prefix:
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # // A safetensors file of f32 tensors, built in memory.
    /// # fn f32_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    /// #     let bytes: Vec<Vec<u8>> = tensors
    /// #         .iter()
    /// #         .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
    /// #         .collect();
    /// #     let views = tensors.iter().zip(&bytes).map(|((name, shape, _), b)| {
    /// #         (*name, TensorView::new(Dtype::F32, shape.clone(), b).unwrap())
    /// #     });
    /// #     serialize(views, None).unwrap()
    /// # }
    /// use swiglu::checkpoint::{Checkpoint, GateUp};
    /// use swiglu::GluError;
    /// let (k, n) = (4, 3);
    /// let file = f32_file(&[
    ///     ("blk.mlp.gate_up_proj.weight", vec![2 * n, k], vec![0.1; 2 * n * k]),
    ///     ("blk.mlp.gate_up_proj.bias", vec![2 * n], vec![0.0; 2 * n]),
    ///     ("blk.mlp.down_proj.weight", vec![k, n], vec![0.2; k * n]),
    /// ]);
    /// let ckpt = Checkpoint::parse(&file)?;
    /// let ffn = ckpt.ffn("blk.mlp")?; // the trailing '.' is added
    /// assert_eq!(ffn.prefix(), "blk.mlp.");
    /// assert_eq!((ffn.k(), ffn.n()), (k, n));
    /// assert!(ffn.is_merged());
    /// assert!(matches!(ffn.gate_up(), GateUp::Merged(t) if t.shape() == [2 * n, k]));
    /// assert_eq!(ffn.has_biases(), (true, true)); // one merged [2N] bias
    /// assert_eq!(ffn.down().map(|d| d.shape()), Some(&[k, n][..]));
    /// assert!(ffn.down_bias().is_none());
    ///
    /// // Nothing under this prefix: the error names what was looked for.
    /// let err = ckpt.ffn("other").unwrap_err();
    /// assert!(matches!(&err, GluError::MissingTensor { name, .. } if name == "other.gate_proj.weight"));
    /// # Ok::<(), GluError>(())
    /// ```
    pub fn ffn(&self, prefix: &str) -> Result<FfnTensors<'a>> {
        let prefix = if prefix.is_empty() || prefix.ends_with('.') {
            prefix.to_string()
        } else {
            format!("{prefix}.")
        };
        let name = |s: &str| format!("{prefix}{s}");
        let (gate_name, up_name, merged_name) = (
            name("gate_proj.weight"),
            name("up_proj.weight"),
            name("gate_up_proj.weight"),
        );
        let has_gate = self.contains(&gate_name);
        let has_up = self.contains(&up_name);
        let (gate_up, k, n) = if has_gate || has_up {
            if !has_gate || !has_up {
                let (missing, present) = if has_gate {
                    (&up_name, &gate_name)
                } else {
                    (&gate_name, &up_name)
                };
                return Err(GluError::MissingTensor {
                    name: missing.clone(),
                    note: format!(" (but `{present}` is present)"),
                });
            }
            let gate = self.tensor(&gate_name)?;
            let up = self.tensor(&up_name)?;
            let (n, k) = matrix_dims(&gate, "gate_proj weight must be [N, K] with N, K > 0")?;
            if up.shape != gate.shape {
                return Err(GluError::TensorShape {
                    why: format!("must equal the gate_proj shape {:?} ([N, K])", gate.shape),
                    name: up.name,
                    shape: up.shape,
                });
            }
            same_dtype(&gate, &up)?;
            (GateUp::Separate { gate, up }, k, n)
        } else if self.contains(&merged_name) {
            let gu = self.tensor(&merged_name)?;
            let (two_n, k) = matrix_dims(&gu, "gate_up_proj weight must be [2N, K] with N, K > 0")?;
            if two_n % 2 != 0 {
                return Err(GluError::TensorShape {
                    name: gu.name,
                    shape: gu.shape,
                    why: "gate_up_proj weight must be [2N, K]: its first dim is odd".into(),
                });
            }
            (GateUp::Merged(gu), k, two_n / 2)
        } else {
            let mlp_like: Vec<&str> = self
                .names()
                .into_iter()
                .filter(|s| s.contains("proj") || s.contains("mlp"))
                .take(4)
                .collect();
            return Err(GluError::MissingTensor {
                name: gate_name,
                note: format!(
                    " (nor `{up_name}`, nor merged `{merged_name}`; {} tensors in the file{})",
                    self.st.len(),
                    if mlp_like.is_empty() {
                        String::new()
                    } else {
                        format!(", e.g. {mlp_like:?}")
                    }
                ),
            });
        };
        let first = gate_up.first();
        let vector = |t: &RawTensor<'a>, len: usize, what: &str| -> Result<()> {
            same_dtype(first, t)?;
            if t.shape != [len] {
                return Err(GluError::TensorShape {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    why: format!("{what} must be [{len}]"),
                });
            }
            Ok(())
        };
        let biases = match &gate_up {
            GateUp::Separate { .. } => {
                let bg = self.optional(&name("gate_proj.bias"))?;
                let bu = self.optional(&name("up_proj.bias"))?;
                if let Some(b) = &bg {
                    vector(b, n, "gate_proj bias")?;
                }
                if let Some(b) = &bu {
                    vector(b, n, "up_proj bias")?;
                }
                Biases::Separate { gate: bg, up: bu }
            }
            GateUp::Merged(_) => {
                let b = self.optional(&name("gate_up_proj.bias"))?;
                if let Some(b) = &b {
                    vector(b, 2 * n, "gate_up_proj bias ([2N])")?;
                }
                Biases::Merged(b)
            }
        };
        let down = self.optional(&name("down_proj.weight"))?;
        if let Some(d) = &down {
            same_dtype(first, d)?;
            if d.shape != [k, n] {
                return Err(GluError::TensorShape {
                    name: d.name.clone(),
                    shape: d.shape.clone(),
                    why: format!("down_proj weight must be [K, N] = [{k}, {n}]"),
                });
            }
        }
        let down_bias = if down.is_some() {
            let b = self.optional(&name("down_proj.bias"))?;
            if let Some(b) = &b {
                vector(b, k, "down_proj bias ([K])")?;
            }
            b
        } else {
            None
        };
        Ok(FfnTensors {
            prefix,
            dtype: first.dtype,
            k,
            n,
            gate_up,
            biases,
            down,
            down_bias,
        })
    }
}

/// `[rows, cols]` of a 2-D tensor with both positive.
fn matrix_dims(t: &RawTensor<'_>, why: &str) -> Result<(usize, usize)> {
    match t.shape[..] {
        [r, c] if r > 0 && c > 0 => Ok((r, c)),
        _ => Err(GluError::TensorShape {
            name: t.name.clone(),
            shape: t.shape.clone(),
            why: why.into(),
        }),
    }
}

fn same_dtype(reference: &RawTensor<'_>, t: &RawTensor<'_>) -> Result<()> {
    if t.dtype != reference.dtype {
        return Err(GluError::TensorDType {
            name: t.name.clone(),
            found: safetensors_name(t.dtype).into(),
            expected: format!(
                "{} (the dtype of `{}`)",
                safetensors_name(reference.dtype),
                reference.name
            ),
        });
    }
    Ok(())
}

/// The safetensors spelling of a dtype (`F32`, `F16`, `BF16`).
fn safetensors_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "F32",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
    }
}

/// One tensor of a checkpoint: its name, dtype, shape and little-endian bytes
/// (borrowed from the file).
#[derive(Clone, Debug)]
pub struct RawTensor<'a> {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    data: &'a [u8],
}

impl<'a> RawTensor<'a> {
    /// The tensor's full name in the file.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let v = |s: Vec<usize>, b: &'static [u8]| TensorView::new(Dtype::BF16, s, b).unwrap();
    /// # let (w, d, db): (&'static [u8], &'static [u8], &'static [u8]) = (w.leak(), d.leak(), db.leak());
    /// # let file = serialize([
    /// #     ("model.layers.0.mlp.gate_proj.weight", v(vec![n, k], w)),
    /// #     ("model.layers.0.mlp.up_proj.weight", v(vec![n, k], w)),
    /// #     ("model.layers.0.mlp.down_proj.weight", v(vec![k, n], d)),
    /// #     ("model.layers.0.mlp.down_proj.bias", v(vec![k], db)),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let t = ckpt.tensor("model.layers.0.mlp.down_proj.bias")?;
    /// assert_eq!(t.name(), "model.layers.0.mlp.down_proj.bias");
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let t = ckpt.tensor("model.layers.0.mlp.down_proj.bias")?;
    /// assert_eq!(t.name(), "model.layers.0.mlp.down_proj.bias");
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its element type.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let t = ckpt.tensor("model.layers.0.mlp.up_proj.weight")?;
    /// assert_eq!(t.dtype(), swiglu::DType::BF16);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Its shape, as stored.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let t = ckpt.tensor("model.layers.0.mlp.down_proj.weight")?;
    /// assert_eq!(t.shape(), [4, 3]); // [K, N], as stored
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Its raw little-endian bytes.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let t = ckpt.tensor("model.layers.0.mlp.gate_proj.weight")?;
    /// assert_eq!(t.bytes().len(), 3 * 4 * 2); // N·K bf16 values
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The elements as `&[T]`: borrowed from the file when the bytes are
    /// aligned for `T` (and the target is little-endian), else decoded into
    /// an owned copy. No numeric conversion: `T` must be the tensor's dtype.
    ///
    /// # Errors
    ///
    /// [`GluError::TensorDType`] naming the tensor if `T` is not its dtype.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # // A safetensors file of f32 tensors, built in memory.
    /// # fn f32_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    /// #     let bytes: Vec<Vec<u8>> = tensors
    /// #         .iter()
    /// #         .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
    /// #         .collect();
    /// #     let views = tensors.iter().zip(&bytes).map(|((name, shape, _), b)| {
    /// #         (*name, TensorView::new(Dtype::F32, shape.clone(), b).unwrap())
    /// #     });
    /// #     serialize(views, None).unwrap()
    /// # }
    /// use std::borrow::Cow;
    /// use swiglu::checkpoint::SafetensorsBuffer;
    /// use swiglu::{bf16, GluError};
    /// let file = f32_file(&[("w", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])]);
    /// let buf = SafetensorsBuffer::from_bytes(&file);
    /// let ckpt = buf.checkpoint()?;
    /// let t = ckpt.tensor("w")?;
    /// let v = t.to_slice::<f32>()?;
    /// assert_eq!(&*v, &[1.0, 2.0, 3.0, 4.0]);
    /// # if cfg!(target_endian = "little") {
    /// assert!(matches!(v, Cow::Borrowed(_))); // aligned buffer: no copy
    /// # }
    /// // No conversion: asking for another element type is an error.
    /// assert!(matches!(t.to_slice::<bf16>(), Err(GluError::TensorDType { .. })));
    /// # Ok::<(), GluError>(())
    /// ```
    pub fn to_slice<T: Element + bytemuck::Pod>(&self) -> Result<Cow<'a, [T]>> {
        if T::DTYPE != self.dtype {
            return Err(GluError::TensorDType {
                name: self.name.clone(),
                found: safetensors_name(self.dtype).into(),
                expected: format!(
                    "{} (the requested element type)",
                    safetensors_name(T::DTYPE)
                ),
            });
        }
        if cfg!(target_endian = "little") {
            if let Ok(s) = bytemuck::try_cast_slice::<u8, T>(self.data) {
                return Ok(Cow::Borrowed(s));
            }
        }
        let size = std::mem::size_of::<T>();
        Ok(Cow::Owned(
            self.data
                .chunks_exact(size)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..size].copy_from_slice(c);
                    if cfg!(target_endian = "big") {
                        b[..size].reverse();
                    }
                    bytemuck::pod_read_unaligned(&b[..size])
                })
                .collect(),
        ))
    }
}

/// How a checkpoint stores the gate and up projections.
#[derive(Clone, Debug)]
pub enum GateUp<'a> {
    /// `gate_proj.weight` and `up_proj.weight`, `[N, K]` each.
    Separate {
        /// The gate projection.
        gate: RawTensor<'a>,
        /// The up projection.
        up: RawTensor<'a>,
    },
    /// One `gate_up_proj.weight`, `[2N, K]`: gate rows first.
    Merged(RawTensor<'a>),
}

impl<'a> GateUp<'a> {
    fn first(&self) -> &RawTensor<'a> {
        match self {
            GateUp::Separate { gate, .. } => gate,
            GateUp::Merged(t) => t,
        }
    }
}

/// The gate and up biases, matching the form of [`GateUp`].
#[derive(Clone, Debug)]
enum Biases<'a> {
    Separate {
        gate: Option<RawTensor<'a>>,
        up: Option<RawTensor<'a>>,
    },
    Merged(Option<RawTensor<'a>>),
}

/// The FFN tensors of one layer, found and checked by [`Checkpoint::ffn`]:
/// names, dtype and shapes are consistent; the element type is known only at
/// run time ([`dtype`](Self::dtype)).
#[derive(Clone, Debug)]
pub struct FfnTensors<'a> {
    prefix: String,
    dtype: DType,
    k: usize,
    n: usize,
    gate_up: GateUp<'a>,
    biases: Biases<'a>,
    down: Option<RawTensor<'a>>,
    down_bias: Option<RawTensor<'a>>,
}

impl<'a> FfnTensors<'a> {
    /// The name prefix the tensors were found under (ending in `.`, or empty).
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// assert_eq!(ckpt.ffn_layer(0)?.prefix(), "model.layers.0.mlp.");
    /// assert_eq!(ckpt.ffn("model.layers.0.mlp")?.prefix(), "model.layers.0.mlp.");
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The element type shared by all the FFN tensors.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// assert_eq!(ckpt.ffn_layer(0)?.dtype(), swiglu::DType::BF16);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Input (model) features K.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// assert_eq!(ckpt.ffn_layer(0)?.k(), 4); // from the [N, K] weights
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn k(&self) -> usize {
        self.k
    }
    /// Hidden (intermediate) features N.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// assert_eq!(ckpt.ffn_layer(0)?.n(), 3);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn n(&self) -> usize {
        self.n
    }
    /// Whether gate and up come from one merged `gate_up_proj` tensor.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// assert!(!ckpt.ffn_layer(0)?.is_merged()); // gate_proj + up_proj
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn is_merged(&self) -> bool {
        matches!(self.gate_up, GateUp::Merged(_))
    }
    /// The gate and up weight tensors as found.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// use swiglu::checkpoint::GateUp;
    /// let ffn = ckpt.ffn_layer(0)?;
    /// assert!(matches!(ffn.gate_up(), GateUp::Separate { .. }));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn gate_up(&self) -> &GateUp<'a> {
        &self.gate_up
    }
    /// Whether the file has gate/up biases (`(gate, up)`).
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// assert_eq!(ckpt.ffn_layer(0)?.has_biases(), (false, false)); // only down_proj has one
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn has_biases(&self) -> (bool, bool) {
        match &self.biases {
            Biases::Separate { gate, up } => (gate.is_some(), up.is_some()),
            Biases::Merged(b) => (b.is_some(), b.is_some()),
        }
    }
    /// `down_proj.weight` (`[K, N]`), if the file has it.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let ffn = ckpt.ffn_layer(0)?;
    /// assert_eq!(ffn.down().map(|t| t.shape()), Some(&[4, 3][..]));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn down(&self) -> Option<&RawTensor<'a>> {
        self.down.as_ref()
    }
    /// `down_proj.bias` (`[K]`), if the file has it.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let ffn = ckpt.ffn_layer(0)?;
    /// assert_eq!(ffn.down_bias().map(|t| t.shape()), Some(&[4][..]));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn down_bias(&self) -> Option<&RawTensor<'a>> {
        self.down_bias.as_ref()
    }

    /// Views every tensor as `[T]` (`T` must be [`dtype`](Self::dtype)):
    /// zero-copy where the file's bytes are aligned, see the
    /// [module docs](self).
    ///
    /// # Errors
    ///
    /// [`GluError::TensorDType`] naming the gate (or merged) tensor if `T`
    /// is not the checkpoint's dtype.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # // A safetensors file of f32 tensors, built in memory.
    /// # fn f32_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    /// #     let bytes: Vec<Vec<u8>> = tensors
    /// #         .iter()
    /// #         .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
    /// #         .collect();
    /// #     let views = tensors.iter().zip(&bytes).map(|((name, shape, _), b)| {
    /// #         (*name, TensorView::new(Dtype::F32, shape.clone(), b).unwrap())
    /// #     });
    /// #     serialize(views, None).unwrap()
    /// # }
    /// use swiglu::checkpoint::Checkpoint;
    /// use swiglu::{f16, DType, GluError};
    /// let (k, n) = (2, 2);
    /// let file = f32_file(&[
    ///     ("gate_proj.weight", vec![n, k], vec![0.5; n * k]),
    ///     ("up_proj.weight", vec![n, k], vec![1.0; n * k]),
    /// ]);
    /// let ckpt = Checkpoint::parse(&file)?;
    /// let ffn = ckpt.ffn("")?; // bare names
    /// assert_eq!(ffn.dtype(), DType::F32);
    /// let typed = ffn.typed::<f32>()?;
    /// assert_eq!((typed.k(), typed.n(), typed.is_merged()), (k, n, false));
    /// // The element type must be the file's.
    /// assert!(matches!(ffn.typed::<f16>(), Err(GluError::TensorDType { .. })));
    /// # Ok::<(), GluError>(())
    /// ```
    pub fn typed<T: Element + bytemuck::Pod>(&self) -> Result<FfnWeights<'a, T>> {
        let gate_up = match &self.gate_up {
            GateUp::Separate { gate, up } => {
                TypedGateUp::Separate(gate.to_slice()?, up.to_slice()?)
            }
            GateUp::Merged(t) => TypedGateUp::Merged(t.to_slice()?),
        };
        let opt = |t: &Option<RawTensor<'a>>| t.as_ref().map(|t| t.to_slice::<T>()).transpose();
        let biases = match &self.biases {
            Biases::Separate { gate, up } => TypedBiases::Separate(opt(gate)?, opt(up)?),
            Biases::Merged(b) => TypedBiases::Merged(opt(b)?),
        };
        Ok(FfnWeights {
            k: self.k,
            n: self.n,
            gate_up,
            biases,
            down: opt(&self.down)?,
            down_bias: opt(&self.down_bias)?,
        })
    }
}

#[derive(Clone, Debug)]
enum TypedGateUp<'a, T: Clone> {
    Separate(Cow<'a, [T]>, Cow<'a, [T]>),
    Merged(Cow<'a, [T]>),
}

#[derive(Clone, Debug)]
enum TypedBiases<'a, T: Clone> {
    Separate(Option<Cow<'a, [T]>>, Option<Cow<'a, [T]>>),
    Merged(Option<Cow<'a, [T]>>),
}

/// The FFN weights of one layer as `[T]` slices (borrowed from the file where
/// possible), from [`FfnTensors::typed`].
///
/// ```
/// # use safetensors::{serialize, tensor::TensorView, Dtype};
/// # // A safetensors file of f32 tensors, built in memory.
/// # fn f32_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
/// #     let bytes: Vec<Vec<u8>> = tensors
/// #         .iter()
/// #         .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
/// #         .collect();
/// #     let views = tensors.iter().zip(&bytes).map(|((name, shape, _), b)| {
/// #         (*name, TensorView::new(Dtype::F32, shape.clone(), b).unwrap())
/// #     });
/// #     serialize(views, None).unwrap()
/// # }
/// use swiglu::checkpoint::{Checkpoint, SafetensorsBuffer};
/// use swiglu::{cpu, reference, Activation};
/// let (k, n) = (4, 2);
/// let file = f32_file(&[
///     ("mlp.gate_proj.weight", vec![n, k], (0..n * k).map(|i| i as f32 * 0.1).collect()),
///     ("mlp.up_proj.weight", vec![n, k], vec![0.5; n * k]),
///     ("mlp.up_proj.bias", vec![n], vec![1.0, -1.0]),
///     ("mlp.down_proj.weight", vec![k, n], vec![0.25; k * n]),
/// ]);
/// let buf = SafetensorsBuffer::from_bytes(&file);
/// let ckpt = buf.checkpoint()?;
/// let ffn = ckpt.ffn("mlp")?.typed::<f32>()?;
/// # if cfg!(target_endian = "little") {
/// assert!(ffn.is_zero_copy());
/// # }
/// assert_eq!(ffn.bias_slices(), (None, Some(&[1.0f32, -1.0][..])));
/// assert_eq!(ffn.down().map(<[f32]>::len), Some(k * n));
/// assert!(ffn.down_bias().is_none());
///
/// let w = ffn.weights()?; // [N, K] layout, biases attached
/// let x = [1.0f32, 2.0, 3.0, 4.0];
/// let h = cpu::forward_alloc(&x, &[1, k], &w, Activation::Silu)?;
/// let want = reference::forward_f64(&x, &[1, k], &w, Activation::Silu)?;
/// assert!(reference::rel_err(&[h[0] as f64, h[1] as f64], &want) < 1e-6);
/// # Ok::<(), swiglu::GluError>(())
/// ```
#[derive(Clone, Debug)]
pub struct FfnWeights<'a, T: Clone> {
    k: usize,
    n: usize,
    gate_up: TypedGateUp<'a, T>,
    biases: TypedBiases<'a, T>,
    down: Option<Cow<'a, [T]>>,
    down_bias: Option<Cow<'a, [T]>>,
}

impl<'a, T: Element> FfnWeights<'a, T> {
    /// Input features K.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let w = ckpt.ffn_layer(0)?.typed::<swiglu::bf16>()?;
    /// assert_eq!((w.k(), w.n()), (4, 3));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn k(&self) -> usize {
        self.k
    }
    /// Hidden features N.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let w = ckpt.ffn_layer(0)?.typed::<swiglu::bf16>()?;
    /// assert_eq!(w.n(), 3);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn n(&self) -> usize {
        self.n
    }
    /// Whether gate and up come from one merged `[2N, K]` tensor.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let w = ckpt.ffn_layer(0)?.typed::<swiglu::bf16>()?;
    /// assert!(!w.is_merged());
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn is_merged(&self) -> bool {
        matches!(self.gate_up, TypedGateUp::Merged(_))
    }

    /// The gated part as a [`GluWeights`] view, layout
    /// [`WeightLayout::NK`], biases attached when the file has them. For a
    /// merged checkpoint this is [`GluWeights::from_gate_up`] on the
    /// `[2N, K]` tensor (no split copy).
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, b) = (vec![0u8; 2 * 2 * n * k], vec![0u8; 2 * 2 * n]);
    /// # let file = serialize([
    /// #     ("model.layers.2.mlp.gate_up_proj.weight", TensorView::new(Dtype::BF16, vec![2 * n, k], &w).unwrap()),
    /// #     ("model.layers.2.mlp.gate_up_proj.bias", TensorView::new(Dtype::BF16, vec![2 * n], &b).unwrap()),
    /// # ], None).unwrap();
    /// use swiglu::{bf16, cpu, Activation, WeightLayout};
    /// let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let typed = ckpt.ffn_layer(2)?.typed::<bf16>()?;
    /// let w = typed.weights()?;
    /// assert_eq!((w.layout(), w.k(), w.n()), (WeightLayout::NK, 4, 3));
    /// assert!(w.bias_gate().is_some() && w.bias_up().is_some());
    /// let out = cpu::forward_alloc(&[bf16::ONE; 4], &[1, 4], &w, Activation::Silu)?;
    /// assert_eq!(out.len(), 3);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// None in practice (shapes were checked when loading); the shape checks
    /// of [`GluWeights::new`] are repeated.
    pub fn weights(&self) -> Result<GluWeights<'_, T>> {
        let w = match &self.gate_up {
            TypedGateUp::Separate(g, u) => {
                GluWeights::new(g, u, self.k, self.n, crate::WeightLayout::NK)?
            }
            TypedGateUp::Merged(gu) => GluWeights::from_gate_up(gu, self.k, self.n)?,
        };
        let (bg, bu) = self.bias_slices();
        w.with_biases(bg, bu)
    }

    /// The gate and up bias slices, if present.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, b) = (vec![0u8; 2 * 2 * n * k], vec![0u8; 2 * 2 * n]);
    /// # let file = serialize([
    /// #     ("model.layers.2.mlp.gate_up_proj.weight", TensorView::new(Dtype::BF16, vec![2 * n, k], &w).unwrap()),
    /// #     ("model.layers.2.mlp.gate_up_proj.bias", TensorView::new(Dtype::BF16, vec![2 * n], &b).unwrap()),
    /// # ], None).unwrap();
    /// let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let typed = ckpt.ffn_layer(2)?.typed::<swiglu::bf16>()?;
    /// let (bg, bu) = typed.bias_slices(); // the halves of the merged [2N] bias
    /// assert_eq!((bg.unwrap().len(), bu.unwrap().len()), (3, 3));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn bias_slices(&self) -> (Option<&[T]>, Option<&[T]>) {
        match &self.biases {
            TypedBiases::Separate(g, u) => (g.as_deref(), u.as_deref()),
            TypedBiases::Merged(b) => match b.as_deref() {
                Some(b) => {
                    let (g, u) = b.split_at(self.n);
                    (Some(g), Some(u))
                }
                None => (None, None),
            },
        }
    }

    /// `down_proj.weight` as `[K, N]` row-major (that is, `nn.Linear(N, K)`'s
    /// weight; `y = h · downᵀ`), if the file has it.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let w = ckpt.ffn_layer(0)?.typed::<swiglu::bf16>()?;
    /// assert_eq!(w.down().map(|d| d.len()), Some(4 * 3));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn down(&self) -> Option<&[T]> {
        self.down.as_deref()
    }

    /// `down_proj.bias` (`[K]`), if the file has it.
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let w = ckpt.ffn_layer(0)?.typed::<swiglu::bf16>()?;
    /// assert_eq!(w.down_bias().map(|b| b.len()), Some(4));
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn down_bias(&self) -> Option<&[T]> {
        self.down_bias.as_deref()
    }

    /// Whether every slice is borrowed from the file (no tensor needed an
    /// alignment copy).
    ///
    /// ```
    /// # use safetensors::{serialize, tensor::TensorView, Dtype};
    /// # let (k, n) = (4, 3);
    /// # let (w, d, db) = (vec![0u8; 2 * n * k], vec![0u8; 2 * k * n], vec![0u8; 2 * k]);
    /// # let p = "model.layers.0.mlp.";
    /// # let file = serialize([
    /// #     (format!("{p}gate_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}up_proj.weight"), TensorView::new(Dtype::BF16, vec![n, k], &w).unwrap()),
    /// #     (format!("{p}down_proj.weight"), TensorView::new(Dtype::BF16, vec![k, n], &d).unwrap()),
    /// #     (format!("{p}down_proj.bias"), TensorView::new(Dtype::BF16, vec![k], &db).unwrap()),
    /// # ], None).unwrap();
    /// # let ckpt = swiglu::checkpoint::Checkpoint::parse(&file)?;
    /// let w = ckpt.ffn_layer(0)?.typed::<swiglu::bf16>()?;
    /// // `serialize` aligns tensors, but a Vec<u8> itself may start anywhere:
    /// let aligned = file.as_ptr() as usize % 2 == 0;
    /// assert_eq!(w.is_zero_copy(), aligned);
    /// # Ok::<(), swiglu::GluError>(())
    /// ```
    pub fn is_zero_copy(&self) -> bool {
        let b = |c: &Cow<'_, [T]>| matches!(c, Cow::Borrowed(_));
        let ob = |c: &Option<Cow<'_, [T]>>| c.as_ref().is_none_or(b);
        let gu = match &self.gate_up {
            TypedGateUp::Separate(g, u) => b(g) && b(u),
            TypedGateUp::Merged(gu) => b(gu),
        };
        let bi = match &self.biases {
            TypedBiases::Separate(g, u) => ob(g) && ob(u),
            TypedBiases::Merged(x) => ob(x),
        };
        gu && bi && ob(&self.down) && ob(&self.down_bias)
    }
}

/// Refuses a header whose tensors' data offsets reach past the end of the
/// file. safetensors 0.8.0 adds the header's data end to the header length
/// unchecked, after checking that the shapes and offsets agree, so a
/// crafted header of a few hundred bytes (tensors whose sizes add up to
/// nearly 2^64 bytes) panics there wherever overflow checks are on, this
/// crate's test profile included. With every offset inside the file that
/// sum cannot overflow. Anything else malformed (no header, bad JSON,
/// offsets that disagree with the shapes) is left to
/// `SafeTensors::deserialize`, which reports it.
fn check_data_offsets(bytes: &[u8]) -> Result<()> {
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return Ok(());
    };
    let Some(header) = usize::try_from(u64::from_le_bytes(*len))
        .ok()
        .and_then(|n| rest.get(..n))
    else {
        return Ok(());
    };
    let data_len = (rest.len() - header.len()) as u64;
    let Ok(serde_json::Value::Object(tensors)) = serde_json::from_slice(header) else {
        return Ok(());
    };
    for (name, info) in tensors.iter().filter(|(name, _)| *name != "__metadata__") {
        let offsets = info.get("data_offsets").and_then(|o| o.as_array());
        for end in offsets.into_iter().flatten().filter_map(|v| v.as_u64()) {
            if end > data_len {
                return Err(GluError::Checkpoint(format!(
                    "not a valid safetensors file: tensor `{name}` has data offset {end}, past the {data_len}-byte data section"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.resize(f.len() + data, 0);
        f
    }

    /// Eight u8 tensors of 2^61 − 1 bytes each, contiguous: safetensors'
    /// own checks accept the header and its data end (2^64 − 8) then
    /// overflows its length sum. Refused with a typed error instead.
    #[test]
    fn offsets_past_the_file_are_refused_before_safetensors_sums_them() {
        let size: u64 = (1 << 61) - 1;
        let entries: Vec<String> = (0..8u64)
            .map(|i| {
                format!(
                    r#""t{i}":{{"dtype":"U8","shape":[{size}],"data_offsets":[{},{}]}}"#,
                    i * size,
                    (i + 1) * size
                )
            })
            .collect();
        let f = file(&format!("{{{}}}", entries.join(",")), 16);
        match Checkpoint::parse(&f) {
            Err(GluError::Checkpoint(why)) => assert!(why.contains("past the 16-byte"), "{why}"),
            other => panic!(
                "expected a checkpoint error, got {:?}",
                other.map(|c| c.names().len())
            ),
        }
    }

    /// A well-formed file still parses, and an offset one byte past the
    /// data is refused while an exact fit is not.
    #[test]
    fn offsets_inside_the_file_pass() {
        let h = |end: u64| {
            format!(
                r#"{{"__metadata__":{{"a":"b"}},"w":{{"dtype":"U8","shape":[{end}],"data_offsets":[0,{end}]}}}}"#
            )
        };
        let ok = Checkpoint::parse(&file(&h(4), 4)).map(|c| c.names().len());
        assert_eq!(ok.ok(), Some(1));
        assert!(matches!(
            Checkpoint::parse(&file(&h(5), 4)),
            Err(GluError::Checkpoint(_))
        ));
        // Malformed headers still get safetensors' own error.
        assert!(matches!(
            Checkpoint::parse(b"\x02\0\0\0\0\0\0\0{"),
            Err(GluError::Checkpoint(_))
        ));
        assert!(matches!(
            Checkpoint::parse(b"abc"),
            Err(GluError::Checkpoint(_))
        ));
    }
}
