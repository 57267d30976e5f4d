//! Device scratch that a [`CudaGlu`] keeps between calls for its split-K
//! style kernels (the decode kernel's split-K, the Hopper forward's tail
//! split): f32 partial sums and u32 counters that every launch leaves at
//! zero. Kept so that a call queues one kernel launch and nothing else (no
//! allocation, no memset), which also makes it capturable in a CUDA graph
//! once the scratch exists.

use super::CudaGlu;
use crate::error::{GluError, Result};
use crate::types::{DType, WeightLayout};
use cudarc::driver::{CudaSlice, DevicePtrMut};

/// Partial sums and counters (zeroed at allocation, zero between launches).
pub(crate) struct SplitScratch {
    pub(crate) ws: CudaSlice<f32>,
    pub(crate) counters: CudaSlice<u32>,
    /// Outgrown buffers, kept alive for graphs captured while they were current.
    retired: Vec<(CudaSlice<f32>, CudaSlice<u32>)>,
}

/// What a launch needs from a scratch and what to allocate if it must grow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScratchNeed {
    /// f32 elements the launch uses.
    pub ws: usize,
    /// u32 counters the launch uses.
    pub counters: usize,
    /// Sizes to allocate when growing (at least `ws` / `counters`).
    pub ws_cap: usize,
    pub counters_cap: usize,
}

impl CudaGlu {
    /// The scratch in `slot`, grown (never shrunk) to `need`'s capacities
    /// when it holds less than the launch uses. Outgrown buffers are kept
    /// until the `CudaGlu` is dropped, so a CUDA graph captured with them
    /// stays valid; a failed allocation leaves the current scratch as it
    /// was. Growing during stream capture is refused with
    /// [`GluError::Unsupported`] naming `what` (`dtype`, `layout`: the
    /// call's, for the error).
    fn split_scratch<'s>(
        &self,
        slot: &'s mut Option<SplitScratch>,
        need: ScratchNeed,
        what: &str,
        dtype: DType,
        layout: WeightLayout,
    ) -> Result<&'s mut SplitScratch> {
        let fits = |sc: &SplitScratch| sc.ws.len() >= need.ws && sc.counters.len() >= need.counters;
        if !slot.as_ref().is_some_and(fits) {
            let s = &self.stream;
            if s.capture_status()?
                != cudarc::driver::sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE
            {
                return Err(GluError::Unsupported {
                    what: format!(
                        "{what} ({} f32) would be allocated during stream capture; run a forward of this shape once before capturing",
                        need.ws
                    ),
                    dtype,
                    layout,
                });
            }
            // SAFETY: uninitialised f32 device memory; the kernels that use
            // it write every workspace element before they read it.
            let ws = unsafe { s.alloc::<f32>(need.ws_cap.max(need.ws).max(1)) }?;
            let counters = s.alloc_zeros::<u32>(need.counters_cap.max(need.counters).max(1))?;
            // Only now retire the old buffers: an allocation error above
            // leaves them current (and alive for graphs that use them).
            let retired = slot.take().map(|old| {
                let mut r = old.retired;
                r.push((old.ws, old.counters));
                r
            });
            *slot = Some(SplitScratch {
                ws,
                counters,
                retired: retired.unwrap_or_default(),
            });
        }
        slot.as_mut().ok_or_else(|| {
            GluError::CudaUnavailable(format!("{what}: scratch missing after allocation"))
        })
    }
}

impl CudaGlu {
    /// Runs `launch` with the device addresses of the scratch in `slot`
    /// (partial sums, counters), ensured by [`CudaGlu::split_scratch`]. The
    /// lock and the buffers' stream guards are held until `launch` returns,
    /// i.e. until its kernel is queued on this `CudaGlu`'s stream, after the
    /// launches queued before it by any thread.
    pub(crate) fn with_split_scratch(
        &self,
        slot: &std::sync::Mutex<Option<SplitScratch>>,
        need: ScratchNeed,
        what: &str,
        (dtype, layout): (DType, WeightLayout),
        launch: impl FnOnce(*mut f32, *mut u32) -> Result<()>,
    ) -> Result<()> {
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        let scratch = self.split_scratch(&mut guard, need, what, dtype, layout)?;
        let s = &self.stream;
        let (ws, _gws) = scratch.ws.device_ptr_mut(s);
        let (counters, _gc) = scratch.counters.device_ptr_mut(s);
        launch(ws as *mut f32, counters as *mut u32)
    }
}

impl std::fmt::Debug for SplitScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitScratch")
            .field("ws", &self.ws.len())
            .field("counters", &self.counters.len())
            .field("retired", &self.retired.len())
            .finish()
    }
}
