//! Measured dispatch for [`Path::Auto`] (opt-in: [`CudaGlu::set_autotune`]).
//!
//! The built-in choice ([`CudaGlu::auto_path`]) is a rule fitted to what was
//! measured on one H200. On other GPUs (A100, RTX 30/40, H100 PCIe, H20, ...),
//! where nothing has been measured, and near the rule's thresholds, the
//! autotuner times the candidate paths on the caller's own data the first
//! time it meets a problem class, keeps the fastest, and reuses it for every
//! later call of that class: the "benchmark mode" of cuDNN and Triton.

use super::forward::{Problem, auto_path_for, cublas_baseline, grid_takes_rows, tf32_eligible};
use super::hopper::{tail_split_plan, wgmma_eligible};
use super::skinny::{SKINNY_MAX_M, skinny_eligible};
use super::{CudaElement, CudaGlu, DeviceGluWeights, Path};
use crate::error::Result;
use crate::types::{Activation, DType, WeightLayout};
use cudarc::driver::sys::{CUevent_flags, CUstreamCaptureMode, CUstreamCaptureStatus};
use cudarc::driver::{DevicePtr, DevicePtrMut};

/// Whether a new [`CudaGlu`] starts with the autotuner on: `SWIGLU_AUTOTUNE=1`
/// in the environment (for handles the caller never sees, such as the
/// candle op's).
pub(crate) fn default_from_env() -> bool {
    env_says_on(std::env::var("SWIGLU_AUTOTUNE").ok().as_deref())
}

fn env_says_on(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim() == "1")
}

/// Most untimed pilot launches in front of a timing round (see `tune`).
const MAX_PILOTS: usize = 64;

/// A candidate must be at least this much faster than the built-in choice to
/// replace it (timing noise between runs is a few percent).
const TUNE_MARGIN: f64 = 0.02;
/// Timed rounds (one run of every candidate each) after one untimed
/// warm-up run per candidate; a candidate's median counts.
const TUNE_ROUNDS: usize = 7;
/// After the first timed round, a candidate this many times slower than
/// the fastest one is timed no more (its one time stands as its median): an
/// exact f32 kernel against cuBLAS at a large M would otherwise take most of
/// a tuning pass.
const TUNE_DROP_FACTOR: f64 = 3.0;

/// The rows a tuning decision covers, as an inclusive range holding `m`:
/// powers of two up to 64 (decode batches: 1, 2, 3..=4, 5..=8, ...,
/// 33..=64), the 128-row tile count from 65 to 2048 (65..=128, 129..=256,
/// 257..=384, ...: what sets the waves of the 128-row kernels), powers of
/// two above (2049..=4096, ...): 27 classes up to M = 32768.
///
/// ```text
/// m_class(1) = (1, 1)    m_class(3) = (3, 4)       m_class(40) = (33, 64)
/// m_class(65) = (65, 128) m_class(300) = (257, 384) m_class(3000) = (2049, 4096)
/// ```
pub(crate) fn m_class(m: usize) -> (usize, usize) {
    const TILE: usize = 128;
    if m <= 64 {
        let hi = m.max(1).next_power_of_two();
        (hi / 2 + 1, hi)
    } else if m <= 2048 {
        let hi = m.div_ceil(TILE) * TILE;
        ((hi - TILE + 1).max(65), hi)
    } else {
        let hi = m.checked_next_power_of_two().unwrap_or(usize::MAX);
        (hi / 2 + 1, hi)
    }
}

/// What a tuning decision is keyed on: everything [`auto_path_for`] decides
/// on, with M replaced by its class ([`m_class`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TuneKey {
    rows: (usize, usize),
    k: usize,
    n: usize,
    dtype: DType,
    layout: WeightLayout,
    aligned: bool,
    concatenated: bool,
    allow_tf32: bool,
}

impl TuneKey {
    pub(crate) fn new(p: &Problem) -> Self {
        TuneKey {
            rows: m_class(p.m),
            k: p.k,
            n: p.n,
            dtype: p.dtype,
            layout: p.layout,
            aligned: p.aligned,
            concatenated: p.concatenated,
            allow_tf32: p.allow_tf32,
        }
    }
}

/// The paths the autotuner times for a problem, the built-in choice first.
///
/// Only paths that can take the problem and were measured faster than the
/// others somewhere: the Hopper kernel's tail-split schedule above the
/// decode rows where its plan splits the last wave (on the H200, session
/// 16: 1.16x over the plain schedule at M = 256, N = 11008, 1.05–1.07x at
/// M = 512, N = 14336, slower elsewhere below M = 512; where the plan does
/// not split it is the plain schedule, so it is not timed there); not the
/// staged and cluster schedules (within ±3% of the plain one at M ≥ 512,
/// slower below), nor the `mma.sync` kernel on compute capability 9.x
/// (0.51–0.56x of cuBLAS B1 there). f32 keeps its numerics: without tf32
/// only exact f32 paths (the SIMT kernel, cuBLAS SGEMM), with tf32 only
/// tf32 ones.
pub(crate) fn tune_candidates(cc: (i32, i32), sm_count: u32, p: Problem) -> Vec<Path> {
    let mut c = vec![auto_path_for(cc, sm_count, p)];
    // A candidate must reach the problem's rows (the rule's choice does).
    let mut add = |path: Path| {
        if !c.contains(&path) && grid_takes_rows(path, p.m) {
            c.push(path);
        }
    };
    let baseline = cublas_baseline(p.concatenated);
    let tc_ok = p.k % 8 == 0 && p.n % 8 == 0 && p.aligned;
    if p.dtype == DType::F32 {
        if !p.allow_tf32 {
            add(Path::FusedSimt);
        } else if cc.0 < 9 && tf32_eligible(cc, p.k, p.n, p.aligned) {
            add(Path::FusedMmaTf32);
        }
    } else if !tc_ok {
        add(Path::FusedSimt);
    } else {
        if skinny_eligible(p.m, p.k, p.n, p.dtype, p.aligned) {
            add(Path::FusedSkinny);
        }
        if wgmma_eligible(cc, p.k, p.n, p.dtype, p.layout, p.aligned) {
            add(Path::FusedWgmma);
            if p.m > SKINNY_MAX_M && tail_split_plan(p.m, p.n, p.k, sm_count).parts > 1 {
                add(Path::FusedWgmmaTailSplit);
            }
        }
        if cc.0 != 9 {
            add(Path::FusedMma);
        }
    }
    add(baseline);
    c
}

/// The decision from measured times (any one unit; `None` when a candidate
/// failed): the fastest, unless the built-in choice `heuristic` ran within
/// [`TUNE_MARGIN`] of it. `None` when nothing ran.
pub(crate) fn pick_fastest(heuristic: Path, times: &[(Path, Option<f64>)]) -> Option<Path> {
    let (best, t_best) = times
        .iter()
        .filter_map(|&(p, t)| t.filter(|t| t.is_finite()).map(|t| (p, t)))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let t_heur = times
        .iter()
        .find(|(p, _)| *p == heuristic)
        .and_then(|(_, t)| *t)
        .filter(|t| t.is_finite());
    match t_heur {
        Some(h) if t_best >= h * (1.0 - TUNE_MARGIN) => Some(heuristic),
        _ => Some(best),
    }
}

/// One decision of the autotuner ([`CudaGlu::tuned_paths`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TunedPath {
    /// The rows the decision covers: every M in `rows.0 ..= rows.1` (powers
    /// of two up to 64, 128-row steps up to 2048, powers of two above).
    pub rows: (usize, usize),
    /// The M it was measured at (the first call of the class).
    pub measured_m: usize,
    /// Input features.
    pub k: usize,
    /// Hidden features.
    pub n: usize,
    /// Element type.
    pub dtype: DType,
    /// Weight layout.
    pub layout: WeightLayout,
    /// Whether the weights were one `[2N, K]` tensor.
    pub concatenated: bool,
    /// Whether x, the weights and out were 16-byte aligned.
    pub aligned: bool,
    /// Whether tf32 was allowed ([`CudaGlu::set_allow_tf32`]); always false
    /// for bf16/f16, which the switch does not affect.
    pub allow_tf32: bool,
    /// What [`CudaGlu::auto_path`] would have run.
    pub heuristic: Path,
    /// What [`Path::Auto`] runs for this class from now on.
    pub chosen: Path,
    /// Each candidate, the built-in choice first, with the median of its 7
    /// timed runs in microseconds (CUDA events on the `CudaGlu`'s stream,
    /// interleaved with the other candidates; a candidate over 3x slower
    /// than the fastest in the first round is timed that once), `None` when
    /// it could not run (its error is in `failures`). Empty when the class
    /// had one candidate only, which is then kept without timing.
    pub timings: Vec<(Path, Option<f64>)>,
    /// The candidates that failed to run, each with its first error (a bug
    /// to report: every candidate is meant to be able to take the class; a
    /// passing failure, such as running out of memory for a baseline's
    /// intermediate, also keeps it out of this decision until
    /// [`CudaGlu::clear_tuned_paths`]).
    pub failures: Vec<(Path, String)>,
}

impl TunedPath {
    /// The problem this decision was measured on.
    fn problem(&self) -> Problem {
        Problem {
            m: self.measured_m,
            k: self.k,
            n: self.n,
            dtype: self.dtype,
            layout: self.layout,
            aligned: self.aligned,
            concatenated: self.concatenated,
            allow_tf32: self.allow_tf32,
        }
    }
}

/// First field of an exported table's first line.
const TABLE_MAGIC: &str = "# swiglu autotune v1";
/// Data columns of an exported table.
const TABLE_COLUMNS: [&str; 13] = [
    "rows_lo",
    "rows_hi",
    "measured_m",
    "k",
    "n",
    "dtype",
    "layout",
    "concatenated",
    "aligned",
    "tf32",
    "built_in",
    "kept",
    "timings_us",
];

/// A device name as a header field holds it (control characters, tabs
/// included, as spaces).
fn clean_name(device: &str) -> String {
    device
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `entries` as an exported table for a GPU (model `device`, compute
/// capability `cc`, `sms` SMs), sorted so that equal decisions give equal
/// text.
pub(crate) fn format_table(
    device: &str,
    cc: (i32, i32),
    sms: u32,
    entries: &[TunedPath],
) -> String {
    let clean = clean_name(device);
    let mut out = format!(
        "{TABLE_MAGIC}\tdevice={clean}\tcc={}.{}\tsms={sms}\n# {}\n",
        cc.0,
        cc.1,
        TABLE_COLUMNS.join("\t")
    );
    let mut sorted: Vec<&TunedPath> = entries.iter().collect();
    sorted.sort_by_key(|t| {
        (
            t.dtype.name(),
            t.n,
            t.k,
            t.layout.short_name(),
            t.concatenated,
            t.aligned,
            t.allow_tf32,
            t.rows,
        )
    });
    for t in sorted {
        let timings: Vec<String> = t
            .timings
            .iter()
            .map(|(p, us)| match us {
                Some(us) => format!("{}={us:.3}", p.name()),
                None => format!("{}=-", p.name()),
            })
            .collect();
        let fields = [
            t.rows.0.to_string(),
            t.rows.1.to_string(),
            t.measured_m.to_string(),
            t.k.to_string(),
            t.n.to_string(),
            t.dtype.name().to_string(),
            t.layout.short_name().to_string(),
            t.concatenated.to_string(),
            t.aligned.to_string(),
            t.allow_tf32.to_string(),
            t.heuristic.name().to_string(),
            t.chosen.name().to_string(),
            timings.join(","),
        ];
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

/// The decisions of an exported table, checked against this GPU (model
/// `device`, compute capability `cc`, `sms` SMs): every kept path must be a
/// candidate of its class here, and each class appears once.
pub(crate) fn parse_table(
    table: &str,
    device: &str,
    cc: (i32, i32),
    sms: u32,
) -> Result<Vec<TunedPath>> {
    let bad = |line: usize, why: String| crate::GluError::TuningTable { line, why };
    let mut lines = table.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, head) = lines.next().ok_or_else(|| bad(1, "empty table".into()))?;
    if head.split('\t').next() != Some(TABLE_MAGIC) {
        return Err(bad(
            1,
            format!("not a swiglu autotuner table (expected {TABLE_MAGIC:?} first)"),
        ));
    }
    let field = |name: &str| head.split('\t').find_map(|f| f.strip_prefix(name));
    let made_dev = field("device=").unwrap_or("?");
    let made_cc = field("cc=").unwrap_or("?");
    let made_sms = field("sms=").unwrap_or("?");
    let here_cc = format!("{}.{}", cc.0, cc.1);
    let here_dev = clean_name(device);
    if made_dev != here_dev || made_cc != here_cc || made_sms != sms.to_string() {
        return Err(bad(
            1,
            format!(
                "made on {made_dev:?} (compute capability {made_cc}, {made_sms} SMs); this GPU is {here_dev:?} ({here_cc}, {sms} SMs): its timings do not hold here"
            ),
        ));
    }
    let mut seen = std::collections::HashMap::new();
    let path = |s: &str| Path::CONCRETE.into_iter().find(|p| p.name() == s);
    let mut out = Vec::new();
    for (no, line) in lines {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != TABLE_COLUMNS.len() {
            return Err(bad(
                no,
                format!("{} fields, expected {}", f.len(), TABLE_COLUMNS.len()),
            ));
        }
        let num = |i: usize| {
            f[i].parse::<usize>().map_err(|_| {
                bad(
                    no,
                    format!("{}: {:?} is not a number", TABLE_COLUMNS[i], f[i]),
                )
            })
        };
        let flag = |i: usize| {
            f[i].parse::<bool>().map_err(|_| {
                bad(
                    no,
                    format!("{}: {:?} is not true/false", TABLE_COLUMNS[i], f[i]),
                )
            })
        };
        let named = |i: usize| {
            path(f[i])
                .ok_or_else(|| bad(no, format!("{}: unknown path {:?}", TABLE_COLUMNS[i], f[i])))
        };
        let dtype = [DType::F32, DType::F16, DType::BF16]
            .into_iter()
            .find(|d| d.name() == f[5])
            .ok_or_else(|| bad(no, format!("dtype: unknown {:?}", f[5])))?;
        let layout = [WeightLayout::KN, WeightLayout::NK]
            .into_iter()
            .find(|l| l.short_name() == f[6])
            .ok_or_else(|| bad(no, format!("layout: unknown {:?}", f[6])))?;
        let mut timings = Vec::new();
        for t in f[12].split(',').filter(|t| !t.is_empty()) {
            let (p, us) = t
                .split_once('=')
                .ok_or_else(|| bad(no, format!("timings: {t:?} is not path=us")))?;
            let p = path(p).ok_or_else(|| bad(no, format!("timings: unknown path {p:?}")))?;
            let us = match us {
                "-" => None,
                v => Some(
                    v.parse::<f64>()
                        .map_err(|_| bad(no, format!("timings: {v:?} is not a number")))?,
                ),
            };
            timings.push((p, us));
        }
        let t = TunedPath {
            rows: (num(0)?, num(1)?),
            measured_m: num(2)?,
            k: num(3)?,
            n: num(4)?,
            dtype,
            layout,
            concatenated: flag(7)?,
            aligned: flag(8)?,
            allow_tf32: flag(9)?,
            heuristic: named(10)?,
            chosen: named(11)?,
            timings,
            failures: Vec::new(),
        };
        if t.measured_m == 0 || t.k == 0 || t.n == 0 || m_class(t.measured_m) != t.rows {
            return Err(bad(
                no,
                format!(
                    "rows {:?} are not the class of measured_m {} (or a dimension is 0)",
                    t.rows, t.measured_m
                ),
            ));
        }
        // Tables written before session 9 carry the tf32 switch on bf16/f16
        // lines too, where it changes nothing: cleared; where two lines then
        // name one class, the first stands.
        let mut t = t;
        let normalised = t.allow_tf32 && t.dtype != DType::F32;
        t.allow_tf32 &= !normalised;
        let key = TuneKey::new(&t.problem());
        if let Some(&earlier_normalised) = seen.get(&key) {
            if normalised || earlier_normalised {
                continue;
            }
        }
        if seen.insert(key, normalised).is_some() {
            return Err(bad(
                no,
                format!("a second line for the class of rows {:?}", t.rows),
            ));
        }
        let candidates = tune_candidates(cc, sms, t.problem());
        if !candidates.contains(&t.chosen) {
            return Err(bad(
                no,
                format!(
                    "kept path {} is not a candidate for this class here ({})",
                    t.chosen.name(),
                    candidates
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        out.push(t);
    }
    Ok(out)
}

impl CudaGlu {
    /// Turns the autotuner on or off (off by default; `SWIGLU_AUTOTUNE=1` in
    /// the environment turns it on for every `CudaGlu` made afterwards,
    /// including the ones the candle op makes for itself).
    ///
    /// When on, a [`Path::Auto`] call of a problem class not seen before
    /// times every candidate path on the call's own buffers (one warm-up and
    /// 7 timed runs each, interleaved in shuffled rounds queued behind
    /// untimed launches that keep the GPU busy while the host queues, CUDA
    /// events, the host waits for them; a candidate over 3x slower than the
    /// fastest in the first round is not timed again), keeps the fastest,
    /// and then runs it
    /// as the call's result; every later call of that class runs the kept
    /// path directly. A class is (M rounded to its class, K, N, dtype,
    /// layout, concatenated weights or not, 16-byte alignment, for f32 tf32
    /// allowed or not; not the activation or the biases, which cost little next to
    /// the GEMMs): M is rounded up to a power of two up to 64, to a multiple
    /// of 128 up to 2048, to a power of two above, so a serving loop with
    /// varying batch sizes tunes a few dozen times at most. Which path ran is reported as always, and
    /// [`CudaGlu::tuned_paths`] lists the decisions with their timings.
    ///
    /// Candidates: the built-in choice ([`CudaGlu::auto_path`]) and the
    /// other paths Auto may take that can run the problem: for bf16/f16 on
    /// the tensor-core preconditions the decode kernel (M ≤ 64), the Hopper
    /// kernel (compute capability 9.0) and the `mma.sync` kernel (not on
    /// 9.x, where it measured ~0.4x of cuBLAS); the SIMT kernel for f32 and
    /// for data the tensor-core paths cannot take; always the cuBLAS
    /// baseline B1, or B2 for concatenated weights. Numerics are kept: f32
    /// stays exact unless [`CudaGlu::set_allow_tf32`] allows tf32. A
    /// candidate must be at least 2% faster than the built-in choice to
    /// replace it.
    ///
    /// Costs and limits: the tuning call takes a few times longer than a
    /// plain one and blocks the host until its timings are in; it writes
    /// `out` several times before its final result; launches that other
    /// threads (or other handles) queue on the same stream meanwhile are
    /// timed with it and can skew the decision, which is then kept. While
    /// the stream is being captured into a CUDA graph nothing is timed: a
    /// class tuned before capture uses its decision, any other takes the
    /// built-in choice. Candidates that fail to launch are skipped (their
    /// errors are kept in [`TunedPath::failures`]); if none runs, nothing is kept and the call runs the built-in choice (and
    /// returns its error, `out` possibly written by the attempts). A capture
    /// that another thread begins on this stream during a tuning pass
    /// records the tuning's launches too: tune before capturing.
    /// Different paths round differently (the cuBLAS baselines store the
    /// pre-activations in the element type), so when two candidates time
    /// alike, two processes may keep different ones and their outputs then
    /// differ in the last bits; leave the autotuner off, or force a path,
    /// where runs must be bit-for-bit reproducible.
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::{CudaGlu, DeviceGluWeights, Path};
    /// use swiglu::{bf16, Activation};
    /// let g = CudaGlu::new(0)?;
    /// g.set_autotune(true);
    /// let s = g.stream();
    /// let (m, k, n) = (512, 4096, 11008);
    /// let x = s.clone_htod(&vec![bf16::from_f32(0.1); m * k])?;
    /// let gate_up = s.clone_htod(&vec![bf16::from_f32(0.01); 2 * n * k])?;
    /// let w = DeviceGluWeights::from_gate_up(gate_up.as_view(), k, n)?;
    /// let mut out = s.alloc_zeros::<bf16>(m * n)?;
    /// let ran = g.forward(&x, &[m, k], &w, Activation::Silu, &mut out, Path::Auto)?; // tunes
    /// let again = g.forward(&x, &[m, k], &w, Activation::Silu, &mut out, Path::Auto)?; // reuses
    /// assert_eq!(ran, again);
    /// for t in g.tuned_paths() {
    ///     println!("M {:?}: {} (built-in {}) {:?}", t.rows, t.chosen.name(), t.heuristic.name(), t.timings);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_autotune(&self, on: bool) {
        self.autotune
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the autotuner is on ([`CudaGlu::set_autotune`]).
    pub fn autotune(&self) -> bool {
        self.autotune.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The autotuner's decisions so far, in no particular order.
    pub fn tuned_paths(&self) -> Vec<TunedPath> {
        let tuned = self.tuned.lock().unwrap_or_else(|p| p.into_inner());
        tuned.values().cloned().collect()
    }

    /// The autotuner's decisions as text, to save and load into another
    /// process with [`CudaGlu::import_tuned_paths`]: so that replicas of a
    /// service start without measuring, and all run the same paths (hence
    /// the same numerics). One tab-separated line per class with its timings
    /// (the candidates' errors are left out), under a header naming this
    /// GPU (model, compute capability, SM count).
    ///
    /// ```no_run
    /// # fn main() -> swiglu::Result<()> {
    /// use swiglu::cuda::CudaGlu;
    /// let g = CudaGlu::new(0)?;
    /// g.set_autotune(true);
    /// // ... Path::Auto calls measure their classes ...
    /// std::fs::write("/tmp/swiglu-tuned.tsv", g.export_tuned_paths()).unwrap();
    ///
    /// // Another process, same kind of GPU:
    /// let h = CudaGlu::new(0)?;
    /// h.set_autotune(true);
    /// let n = h.import_tuned_paths(&std::fs::read_to_string("/tmp/swiglu-tuned.tsv").unwrap())?;
    /// println!("{n} decisions imported");
    /// # Ok(())
    /// # }
    /// ```
    pub fn export_tuned_paths(&self) -> String {
        let name = self.device_name().unwrap_or_default();
        format_table(&name, self.cc, self.sm_count, &self.tuned_paths())
    }

    /// Loads decisions saved by [`CudaGlu::export_tuned_paths`]; returns how
    /// many. They replace this handle's decisions for the same classes and
    /// are used while the autotuner is on (classes not in the table are
    /// still measured on first use).
    ///
    /// Errors ([`GluError::TuningTable`], nothing imported): a malformed
    /// line, a class listed twice, a table made on another GPU model or one
    /// of another compute capability or SM count (the decisions are
    /// measurements of that GPU), or a kept path that is not a candidate
    /// for its class here (for example one this build no longer offers).
    ///
    /// [`GluError::TuningTable`]: crate::GluError::TuningTable
    pub fn import_tuned_paths(&self, table: &str) -> Result<usize> {
        let name = self.device_name()?;
        let entries = parse_table(table, &name, self.cc, self.sm_count)?;
        let n = entries.len();
        // After any tuning pass under way, so that it cannot overwrite them.
        let _tuning = self.tune_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut tuned = self.tuned.lock().unwrap_or_else(|p| p.into_inner());
        for e in entries {
            tuned.insert(TuneKey::new(&e.problem()), e);
        }
        Ok(n)
    }

    /// Forgets the autotuner's decisions (each class is measured again on
    /// its next [`Path::Auto`] call while the autotuner is on).
    pub fn clear_tuned_paths(&self) {
        self.tuned.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The path a [`Path::Auto`] call of `p` runs without timing anything:
    /// the built-in choice when the autotuner is off, M is 0, the class has
    /// a single candidate or the stream is being captured; else the class's
    /// kept decision, or `None` when it has to be measured first
    /// ([`CudaGlu::tune`]).
    pub(crate) fn autotune_decision(&self, p: &Problem) -> Result<Option<Path>> {
        let heuristic = auto_path_for(self.cc, self.sm_count, *p);
        if !self.autotune() || p.m == 0 {
            return Ok(Some(heuristic));
        }
        let key = TuneKey::new(p);
        if let Some(kept) = self.kept(&key) {
            // A class above 2048 rows spans a power of two: the kept path
            // may be a fused kernel whose grid does not reach this M (the
            // SIMT and mma.sync kernels stop at 65535 row tiles), where the
            // rule's choice (cuBLAS there) runs instead.
            return Ok(Some(if grid_takes_rows(kept, p.m) {
                kept
            } else {
                heuristic
            }));
        }
        if self.stream.capture_status()? != CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE {
            return Ok(Some(heuristic));
        }
        if tune_candidates(self.cc, self.sm_count, *p).len() == 1 {
            self.keep(p, heuristic, heuristic, Vec::new(), Vec::new());
            return Ok(Some(heuristic));
        }
        Ok(None)
    }

    fn kept(&self, key: &TuneKey) -> Option<Path> {
        let tuned = self.tuned.lock().unwrap_or_else(|p| p.into_inner());
        tuned.get(key).map(|t| t.chosen)
    }

    fn keep(
        &self,
        p: &Problem,
        heuristic: Path,
        chosen: Path,
        timings: Vec<(Path, Option<f64>)>,
        failures: Vec<(Path, String)>,
    ) {
        let key = TuneKey::new(p);
        let decision = TunedPath {
            rows: key.rows,
            measured_m: p.m,
            k: p.k,
            n: p.n,
            dtype: p.dtype,
            layout: p.layout,
            concatenated: p.concatenated,
            aligned: p.aligned,
            allow_tf32: p.allow_tf32,
            heuristic,
            chosen,
            timings,
            failures,
        };
        self.tuned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, decision);
    }

    /// Measures the candidates of `problem` (validated by the caller from
    /// these very buffers) and keeps the decision; returns the path to run.
    ///
    /// Each candidate runs once untimed (kernel load, scratch), then
    /// [`TUNE_ROUNDS`] rounds time every candidate once, in a fresh shuffled
    /// order per round so that none always follows the same one or comes
    /// first. A round is queued in one go (an event pair around each
    /// launch) behind untimed pilot launches, and the host waits once per
    /// round. A candidate more than [`TUNE_DROP_FACTOR`] times slower than
    /// the fastest in the first counted round leaves the later rounds. A
    /// candidate's time is its median; its errors go to
    /// [`TunedPath::failures`], driver errors of the event reads to the
    /// caller.
    pub(crate) fn tune<T: CudaElement, X: DevicePtr<T>, O: DevicePtrMut<T>>(
        &self,
        x: &X,
        x_shape: &[usize],
        w: &DeviceGluWeights<'_, T>,
        act: Activation,
        out: &mut O,
        problem: Problem,
    ) -> Result<Path> {
        let heuristic = auto_path_for(self.cc, self.sm_count, problem);
        let key = TuneKey::new(&problem);
        // One tuning pass at a time per handle; threads waiting here then
        // find the decision. (Launches other threads make meanwhile on the
        // same stream are not held back: they land in the timings.)
        let _tuning = self.tune_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = self.kept(&key) {
            return Ok(kept);
        }
        // Another thread may have begun capturing the stream while this one
        // waited for the lock: then nothing is timed (as for a class first
        // met under capture).
        if self.stream.capture_status()? != CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE {
            return Ok(heuristic);
        }
        let _relaxed = RelaxedCapture::new()?;
        let candidates = tune_candidates(self.cc, self.sm_count, problem);
        let mut run = |p: Path| self.forward(x, x_shape, w, act, out, p);
        // The first error of each candidate that failed; it is left out.
        let mut failures: Vec<(Path, String)> = Vec::new();
        let mut ok = vec![true; candidates.len()];
        let mut fail = |i: usize, e: crate::GluError, ok: &mut Vec<bool>| {
            if ok[i] {
                failures.push((candidates[i], e.to_string()));
            }
            ok[i] = false;
        };
        for (i, &c) in candidates.iter().enumerate() {
            if let Err(e) = run(c) {
                fail(i, e, &mut ok);
            }
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(TUNE_ROUNDS); candidates.len()];
        let timing = Some(CUevent_flags::CU_EVENT_DEFAULT);
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        // Still timed: not failed, not dropped as far too slow.
        let mut timed = vec![true; candidates.len()];
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ problem.m as u64;
        let (mut rounds, mut attempts, mut pilots) = (0, 0, 1usize);
        while rounds < TUNE_ROUNDS && attempts < 3 * TUNE_ROUNDS {
            attempts += 1;
            order.retain(|&i| ok[i] && timed[i]);
            if order.is_empty() {
                break;
            }
            for i in (1..order.len()).rev() {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                order.swap(i, (state >> 33) as usize % (i + 1));
            }
            // Untimed pilot launches keep the GPU busy while the host queues
            // the timed ones, so that a start event does not fire before its
            // launch is queued. The round counts only if the host finished
            // queueing before the GPU finished the pilots; else it is redone
            // with more pilots (up to MAX_PILOTS, where the host is the
            // bottleneck anyway and its time is part of the cost).
            let host = std::time::Instant::now();
            let pilot = candidates[order[order.len() - 1]];
            let p0 = self.stream.record_event(timing)?;
            for _ in 0..pilots {
                let _ = run(pilot);
            }
            let p1 = self.stream.record_event(timing)?;
            let mut events = Vec::with_capacity(order.len());
            for &i in &order {
                let start = self.stream.record_event(timing)?;
                let ran = run(candidates[i]);
                let end = self.stream.record_event(timing)?;
                events.push((i, ran, start, end));
            }
            let host_ms = host.elapsed().as_secs_f64() * 1e3;
            let pilot_ms = p0.elapsed_ms(&p1)? as f64;
            let clean = host_ms <= pilot_ms || pilots >= MAX_PILOTS;
            for (i, ran, start, end) in events {
                // A failing event read is a driver error: the caller gets it.
                let ms = start.elapsed_ms(&end)? as f64;
                match ran {
                    Err(e) => fail(i, e, &mut ok),
                    Ok(_) if clean => samples[i].push(ms * 1e3),
                    Ok(_) => {}
                }
            }
            if clean {
                rounds += 1;
                if rounds == 1 {
                    let first = |i: usize| samples[i].first().copied().filter(|_| ok[i]);
                    let best = (0..candidates.len())
                        .filter_map(first)
                        .fold(f64::INFINITY, f64::min);
                    for (i, t) in timed.iter_mut().enumerate() {
                        *t = first(i).is_some_and(|us| us <= TUNE_DROP_FACTOR * best);
                    }
                    // One left: nothing more to compare.
                    if timed.iter().filter(|&&t| t).count() <= 1 {
                        break;
                    }
                }
            } else {
                let need = (pilots as f64 * host_ms / pilot_ms.max(1e-6)).ceil() as usize + 1;
                pilots = need.max(2 * pilots).min(MAX_PILOTS);
            }
        }
        let timings: Vec<(Path, Option<f64>)> = candidates
            .iter()
            .zip(samples.iter_mut())
            .zip(&ok)
            .map(|((&c, t), &ok)| (c, ok.then(|| median(t)).flatten()))
            .collect();
        let Some(chosen) = pick_fastest(heuristic, &timings) else {
            return Ok(heuristic);
        };
        self.keep(&problem, heuristic, chosen, timings, failures);
        Ok(chosen)
    }
}

/// The calling thread in relaxed stream-capture mode until dropped
/// (`cuThreadExchangeStreamCaptureMode`): while another thread captures a
/// stream in global mode, a tuning pass's event waits would otherwise count
/// as unsafe calls and invalidate that capture. Also used around the
/// cluster kernel's one-time occupancy query (`hopper.rs`), which a first
/// cluster launch may run while its own stream is being captured.
pub(super) struct RelaxedCapture(CUstreamCaptureMode);

impl RelaxedCapture {
    pub(super) fn new() -> Result<Self> {
        let mut mode = CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED;
        // SAFETY: FFI with a valid pointer to a mode; it swaps the calling
        // thread's capture mode with `mode` and touches nothing else.
        unsafe { cudarc::driver::sys::cuThreadExchangeStreamCaptureMode(&mut mode) }.result()?;
        Ok(Self(mode))
    }
}

impl Drop for RelaxedCapture {
    fn drop(&mut self) {
        let mut mode = self.0;
        // SAFETY: as in `new`; restores the thread's previous mode (an error
        // here cannot be reported and leaves the relaxed mode, which only
        // allows more).
        let _ = unsafe { cudarc::driver::sys::cuThreadExchangeStreamCaptureMode(&mut mode) };
    }
}

/// The median of `v` (sorted in place), `None` when empty.
fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(m: usize, k: usize, n: usize, dtype: DType) -> Problem {
        Problem {
            m,
            k,
            n,
            dtype,
            layout: WeightLayout::NK,
            aligned: true,
            concatenated: false,
            allow_tf32: false,
        }
    }

    fn decision(m: usize, chosen: Path, heuristic: Path) -> TunedPath {
        let p = problem(m, 4096, 11008, DType::BF16);
        TunedPath {
            rows: m_class(m),
            measured_m: m,
            k: p.k,
            n: p.n,
            dtype: p.dtype,
            layout: p.layout,
            concatenated: false,
            aligned: true,
            allow_tf32: false,
            heuristic,
            chosen,
            timings: vec![
                (heuristic, Some(60.125)),
                (chosen, Some(55.5)),
                (Path::CublasSplit, None),
            ],
            failures: vec![(Path::CublasSplit, "dropped on export".into())],
        }
    }

    #[test]
    fn tables_round_trip_and_refuse_what_they_cannot_apply() {
        let h200 = ((9, 0), 132u32);
        let a = decision(16, Path::CublasSplit, Path::FusedSkinny);
        let b = decision(300, Path::FusedWgmma, Path::CublasSplit);
        let text = format_table("NVIDIA H200\t(x)", h200.0, h200.1, &[b.clone(), a.clone()]);
        assert!(
            text.starts_with("# swiglu autotune v1\tdevice=NVIDIA H200 (x)\tcc=9.0\tsms=132\n"),
            "{text}"
        );
        // Sorted: the same decisions give the same text in any order.
        assert_eq!(
            text,
            format_table("NVIDIA H200\t(x)", h200.0, h200.1, &[a.clone(), b.clone()])
        );
        let back = parse_table(&text, "NVIDIA H200\t(x)", h200.0, h200.1).unwrap();
        let strip = |mut t: TunedPath| {
            t.failures.clear();
            t
        };
        assert_eq!(back, vec![strip(a.clone()), strip(b.clone())]);

        // Another GPU: refused on line 1.
        let e = parse_table(&text, "NVIDIA H200\t(x)", (8, 0), 108).unwrap_err();
        assert!(
            matches!(e, crate::GluError::TuningTable { line: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("9.0, 132 SMs"), "{e}");
        // Same cc and SM count, another model (an H100 SXM table on an H200).
        let e = parse_table(&text, "NVIDIA H100 80GB HBM3", h200.0, h200.1).unwrap_err();
        assert!(
            matches!(e, crate::GluError::TuningTable { line: 1, .. }),
            "{e}"
        );
        // A class listed twice.
        let l: Vec<&str> = text.lines().collect();
        let twice = format!("{}\n{}\n{}\n", l[0], l[2], l[2]);
        let e = parse_table(&twice, "NVIDIA H200\t(x)", h200.0, h200.1).unwrap_err();
        assert!(
            matches!(e, crate::GluError::TuningTable { line: 3, .. }),
            "{e}"
        );
        let e = parse_table(&text, "NVIDIA H200\t(x)", (9, 0), 114).unwrap_err();
        assert!(
            matches!(e, crate::GluError::TuningTable { line: 1, .. }),
            "{e}"
        );
        // A kept path that cannot take the class here (mma.sync is no
        // candidate on 9.x): refused, naming the line.
        let c = decision(4096, Path::FusedMma, Path::FusedWgmma);
        let text_c = format_table("x", h200.0, h200.1, &[c]);
        let e = parse_table(&text_c, "x", h200.0, h200.1).unwrap_err();
        assert!(
            matches!(e, crate::GluError::TuningTable { line: 3, .. }),
            "{e}"
        );
        // ... but fine on an A100, where it is the rule's own choice.
        let c = decision(4096, Path::FusedMma, Path::FusedMma);
        let text_c = format_table("x", (8, 0), 108, &[c]);
        assert_eq!(parse_table(&text_c, "x", (8, 0), 108).unwrap().len(), 1);

        // Damaged lines: each refused with its line number.
        let lines: Vec<&str> = text.lines().collect();
        let data = lines[2];
        for (damaged, what) in [
            (data.replacen("16", "x", 1), "not a number"),
            (data.replace("bf16", "bf17"), "dtype"),
            (data.replace("\tnk\t", "\tnn\t"), "layout"),
            (data.replace("\tfalse\t", "\tmaybe\t"), "true/false"),
            (data.replace("cublas-b1\t", "cublas-b9\t"), "unknown path"),
            (data.replace("=60.125", "=sixty"), "timings"),
            (data.rsplit_once('\t').unwrap().0.to_string(), "fields"),
            (data.replacen("9\t16\t16", "8\t16\t16", 1), "class"),
        ] {
            let t = format!("{}\n{}\n{damaged}\n{}\n", lines[0], lines[1], lines[3]);
            let e = parse_table(&t, "NVIDIA H200\t(x)", h200.0, h200.1).unwrap_err();
            assert!(
                matches!(e, crate::GluError::TuningTable { line: 3, .. }),
                "{what}: {e}"
            );
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
        // Older tables: the tf32 switch on a bf16 line is cleared, and a line
        // that then repeats a class is skipped.
        let tf32_line = {
            let mut f: Vec<&str> = data.split('\t').collect();
            f[9] = "true";
            f.join("\t")
        };
        for (first, second) in [(&tf32_line[..], data), (data, &tf32_line[..])] {
            let old = format!("{}\n{}\n{first}\n{second}\n", lines[0], lines[1]);
            let got = parse_table(&old, "NVIDIA H200\t(x)", h200.0, h200.1).unwrap();
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(!got[0].allow_tf32);
        }
        for not_a_table in [
            "",
            "rows_lo\trows_hi",
            "# swiglu autotune v2\tcc=9.0\tsms=132",
        ] {
            assert!(
                parse_table(not_a_table, "NVIDIA H200\t(x)", h200.0, h200.1).is_err(),
                "{not_a_table:?}"
            );
        }
        // Blank and comment lines, and CRLF endings, are fine.
        let crlf = format!("{}\r\n\r\n# note\r\n{}\r\n", lines[0], lines[2]);
        assert_eq!(
            parse_table(&crlf, "NVIDIA H200\t(x)", h200.0, h200.1)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn env_turns_it_on_only_with_1() {
        assert!(env_says_on(Some("1")));
        assert!(env_says_on(Some(" 1\n")));
        for v in [None, Some(""), Some("0"), Some("true"), Some("yes")] {
            assert!(!env_says_on(v), "{v:?}");
        }
    }

    #[test]
    fn m_classes_cover_every_m_once() {
        assert_eq!(m_class(0), (1, 1));
        assert_eq!(m_class(1), (1, 1));
        assert_eq!(m_class(2), (2, 2));
        assert_eq!(m_class(3), (3, 4));
        assert_eq!(m_class(40), (33, 64));
        assert_eq!(m_class(64), (33, 64));
        assert_eq!(m_class(65), (65, 128));
        assert_eq!(m_class(300), (257, 384));
        assert_eq!(m_class(2048), (1921, 2048));
        assert_eq!(m_class(2049), (2049, 4096));
        assert_eq!(m_class(usize::MAX), (usize::MAX / 2 + 1, usize::MAX));
        // Classes tile 1..: each starts right after the previous one ends,
        // and every m lies in its own class.
        let mut next = 1;
        let mut classes = 0;
        for m in 1..=20_000usize {
            let (lo, hi) = m_class(m);
            assert!(lo <= m && m <= hi, "m {m} outside {lo}..={hi}");
            if lo == m {
                assert_eq!(lo, next, "gap or overlap before m {m}");
                next = hi + 1;
                classes += 1;
            }
        }
        assert_eq!(classes, 7 + 16 + 4); // 1..=64, 65..=2048, 2049..=32768 (to 20000)
    }

    #[test]
    fn candidates_start_with_the_builtin_choice_and_keep_numerics() {
        let h200 = ((9, 0), 132);
        let a100 = ((8, 0), 108);
        let b200 = ((10, 0), 148);
        for (cc, sms) in [h200, a100, b200] {
            for m in [1, 7, 33, 64, 65, 256, 4096] {
                for dtype in [DType::BF16, DType::F16, DType::F32] {
                    for (aligned, k) in [(true, 4096), (false, 4096), (true, 4092)] {
                        for concatenated in [false, true] {
                            for allow_tf32 in [false, true] {
                                let mut p = problem(m, k, 11008, dtype);
                                p.aligned = aligned;
                                p.concatenated = concatenated;
                                p.allow_tf32 = allow_tf32;
                                let c = tune_candidates(cc, sms, p);
                                assert_eq!(c[0], auto_path_for(cc, sms, p), "{cc:?} {p:?}");
                                let mut dedup = c.clone();
                                dedup.dedup();
                                assert_eq!(dedup.len(), c.len());
                                assert!(
                                    c.len() >= 2
                                        || c[0] == Path::CublasSplit
                                        || c[0] == Path::CublasConcat,
                                    "{c:?}"
                                );
                                for path in &c {
                                    assert!(
                                        !matches!(
                                            path,
                                            Path::FusedWgmmaStaged
                                                | Path::FusedWgmmaCluster
                                                | Path::CublasEager
                                                | Path::Auto
                                        ),
                                        "{path:?}"
                                    );
                                    if *path == Path::CublasConcat {
                                        assert!(concatenated);
                                    }
                                    if *path == Path::FusedWgmma {
                                        assert_eq!(cc, (9, 0));
                                    }
                                    if *path == Path::FusedWgmmaTailSplit {
                                        // After the plain schedule, above
                                        // the decode rows, where it splits.
                                        assert!(c.contains(&Path::FusedWgmma), "{c:?}");
                                        assert!(m > 64, "{p:?}");
                                        let plan =
                                            super::super::hopper::tail_split_plan(m, p.n, p.k, sms);
                                        assert!(plan.parts > 1, "{plan:?}");
                                    }
                                    if *path == Path::FusedMma {
                                        assert_ne!(cc.0, 9);
                                    }
                                    if *path == Path::FusedSkinny {
                                        assert!(m <= 64 && dtype != DType::F32);
                                    }
                                    if dtype == DType::F32 {
                                        // tf32 only when allowed, exact f32 otherwise.
                                        let tf32 = *path == Path::FusedMmaTf32;
                                        assert!(!tf32 || allow_tf32, "{path:?}");
                                        assert!(
                                            *path != Path::FusedSimt
                                                || !allow_tf32
                                                || c[0] == Path::FusedSimt
                                        );
                                    } else {
                                        assert_ne!(*path, Path::FusedMmaTf32);
                                    }
                                    if matches!(
                                        path,
                                        Path::FusedSkinny | Path::FusedWgmma | Path::FusedMma
                                    ) {
                                        assert!(aligned && k % 8 == 0, "{path:?} {p:?}");
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // The sets at the benchmarked points.
        let c = tune_candidates(h200.0, h200.1, problem(16, 4096, 11008, DType::BF16));
        assert_eq!(c, [Path::FusedSkinny, Path::FusedWgmma, Path::CublasSplit]);
        let c = tune_candidates(h200.0, h200.1, problem(256, 4096, 11008, DType::BF16));
        assert_eq!(
            c,
            [
                Path::CublasSplit,
                Path::FusedWgmma,
                Path::FusedWgmmaTailSplit
            ]
        );
        let c = tune_candidates(h200.0, h200.1, problem(2048, 4096, 11008, DType::BF16));
        assert_eq!(
            c,
            [
                Path::FusedWgmma,
                Path::FusedWgmmaTailSplit,
                Path::CublasSplit
            ]
        );
        // 132 x 1 tiles fill the 132 SMs exactly: nothing to split.
        let c = tune_candidates(h200.0, h200.1, problem(132 * 128, 4096, 128, DType::BF16));
        assert_eq!(c, [Path::FusedWgmma, Path::CublasSplit]);
        let c = tune_candidates(a100.0, a100.1, problem(4096, 4096, 11008, DType::BF16));
        assert_eq!(c, [Path::FusedMma, Path::CublasSplit]);
        let c = tune_candidates(a100.0, a100.1, problem(7, 4096, 11008, DType::F32));
        assert_eq!(c, [Path::CublasSplit, Path::FusedSimt]);
    }

    #[test]
    fn the_builtin_choice_stays_unless_clearly_beaten() {
        use Path::*;
        let t = |v: &[(Path, Option<f64>)]| pick_fastest(FusedWgmma, v);
        assert_eq!(
            t(&[(FusedWgmma, Some(1.0)), (CublasSplit, Some(0.99))]),
            Some(FusedWgmma)
        );
        assert_eq!(
            t(&[(FusedWgmma, Some(1.0)), (CublasSplit, Some(0.97))]),
            Some(CublasSplit)
        );
        assert_eq!(
            t(&[(FusedWgmma, Some(1.0)), (CublasSplit, Some(1.5))]),
            Some(FusedWgmma)
        );
        // A failed or non-finite built-in choice gives way to any that ran.
        assert_eq!(
            t(&[(FusedWgmma, None), (CublasSplit, Some(1.5))]),
            Some(CublasSplit)
        );
        assert_eq!(
            t(&[(FusedWgmma, Some(f64::NAN)), (CublasSplit, Some(1.5))]),
            Some(CublasSplit)
        );
        assert_eq!(
            t(&[
                (FusedWgmma, Some(2.0)),
                (CublasSplit, Some(f64::NAN)),
                (FusedSkinny, Some(1.0))
            ]),
            Some(FusedSkinny)
        );
        assert_eq!(t(&[(FusedWgmma, None), (CublasSplit, None)]), None);
        assert_eq!(t(&[]), None);
    }
}
