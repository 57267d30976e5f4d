//! Opt-in stage timing of the training passes: where a step's time goes,
//! measured inside the program that runs it (its data, its clocks, its
//! memory pool) instead of estimated from separate microbenchmarks.
//!
//! While on, [`CudaGlu::forward_train`] and [`CudaGlu::backward_into`]
//! record a CUDA event and a host timestamp at each stage boundary (before
//! an allocation of saved state or scratch, before each launch or group of
//! launches, and when the call returns). [`CudaGlu::take_stage_times`] turns
//! consecutive marks into stages. Off by default: then a mark is one relaxed
//! atomic load.

use super::CudaGlu;
use crate::error::{GluError, Result};
use cudarc::driver::sys::{CUevent_flags, CUstreamCaptureStatus};
use cudarc::driver::{CudaEvent, DriverError};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// One stage of a timed training pass, from one mark to the next.
///
/// Returned by [`CudaGlu::take_stage_times`]; see there for an example.
#[derive(Clone, Debug, PartialEq)]
pub struct StageTime {
    /// What ran between this mark and the next, e.g.
    /// `"bwd: dX (Hopper kernel)"`. `"(between calls)"` is the time
    /// from a pass's return to the next mark: the caller's own work and
    /// any wait for the host.
    pub stage: &'static str,
    /// Device time between the two marks' events (ms). A stage that only
    /// allocates shows here as the time the stream sat idle while the host
    /// mapped memory, if it had nothing else queued.
    pub device_ms: f32,
    /// Host time between the two marks (us): launch and allocation cost.
    pub host_us: f64,
}

/// One recorded boundary.
pub(crate) struct Mark {
    stage: &'static str,
    event: CudaEvent,
    at: Instant,
}

/// The marks recorded since timing was switched on or last taken, and the
/// first error recording one met (returned by `take_stage_times`).
#[derive(Default)]
pub(crate) struct Timeline {
    marks: Vec<Mark>,
    failed: Option<DriverError>,
}

/// The stage name of the time between a pass's return and the next mark.
pub(crate) const BETWEEN_CALLS: &str = "(between calls)";

/// Marks [`BETWEEN_CALLS`] when dropped: held for the whole of a pass
/// (declared first, so dropped last, after the pass's own scratch), it
/// marks the pass's end on every return, errors included.
pub(crate) struct PassEnd<'a>(&'a CudaGlu);

impl Drop for PassEnd<'_> {
    fn drop(&mut self) {
        self.0.mark(BETWEEN_CALLS);
    }
}

impl CudaGlu {
    /// Switches stage timing of [`CudaGlu::forward_train`] and
    /// [`CudaGlu::backward_into`] on or off; either way, drops the marks
    /// recorded so far. Off by default. While on, each stage boundary costs a
    /// `cuEventCreate` and a `cuEventRecord` (a few microseconds of host
    /// time), and nothing is marked while the stream is being captured into
    /// a CUDA graph.
    pub fn set_stage_timing(&self, on: bool) {
        let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        *t = Timeline::default();
        self.stage_timing.store(on, Ordering::Relaxed);
    }

    /// The stages recorded since stage timing was switched on (or since the
    /// last call), oldest first; waits for the last marked work to finish.
    /// Every mark is consumed, so the time after the last one (usually the
    /// last pass's return) is not a stage: call this after a pass returns.
    ///
    /// Errors: [`GluError::Driver`] if recording a mark failed (the marks
    /// are dropped) or the device failed while finishing the marked work.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cpu::SaveMode;
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights, DeviceGrads};
    /// use swiglu::{bf16, Activation};
    /// let g = CudaGlu::new(0)?;
    /// let s = g.stream();
    /// let (m, k, n) = (256, 512, 1024);
    /// let x = s.clone_htod(&vec![bf16::from_f32(0.5); m * k])?;
    /// let gu = s.clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?;
    /// let d_out = s.clone_htod(&vec![bf16::from_f32(1.0); m * n])?;
    /// let w = DeviceGluWeights::from_gate_up(gu.as_view(), k, n)?;
    /// let mut out = s.alloc_zeros::<bf16>(m * n)?;
    /// let mut grads = DeviceGrads::<f32>::zeros(&g, m, &w)?;
    /// g.set_stage_timing(true);
    /// let saved = g.forward_train(&x, &[m, k], &w, Activation::Silu, SaveMode::PreActivations, &mut out)?;
    /// g.backward_into(&x, &[m, k], &w, Activation::Silu, &saved, &d_out, &mut grads, false)?;
    /// for st in g.take_stage_times()? {
    ///     println!("{:<48} {:8.3} ms {:8.1} us host", st.stage, st.device_ms, st.host_us);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn take_stage_times(&self) -> Result<Vec<StageTime>> {
        let t = std::mem::take(&mut *self.timeline.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(e) = t.failed {
            return Err(GluError::Driver(e));
        }
        if let Some(last) = t.marks.last() {
            last.event.synchronize()?;
        }
        t.marks
            .windows(2)
            .map(|w| {
                Ok(StageTime {
                    stage: w[0].stage,
                    device_ms: w[0].event.elapsed_ms(&w[1].event)?,
                    host_us: w[1].at.duration_since(w[0].at).as_secs_f64() * 1e6,
                })
            })
            .collect()
    }

    /// The end-of-pass mark of a training pass ([`PassEnd`]).
    pub(crate) fn pass_end(&self) -> PassEnd<'_> {
        PassEnd(self)
    }

    /// Marks the start of `stage` on the stream, when stage timing is on and
    /// the stream is not capturing. Never fails: a failure is kept for
    /// [`CudaGlu::take_stage_times`] to return.
    pub(crate) fn mark(&self, stage: &'static str) {
        if !self.stage_timing.load(Ordering::Relaxed) {
            return;
        }
        let at = Instant::now();
        let s = &self.stream;
        let recorded = s.capture_status().and_then(|c| {
            if c == CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE {
                s.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                    .map(Some)
            } else {
                Ok(None)
            }
        });
        let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        match recorded {
            Ok(Some(event)) => t.marks.push(Mark { stage, event, at }),
            Ok(None) => {}
            Err(e) => {
                t.failed.get_or_insert(e);
            }
        }
    }
}
