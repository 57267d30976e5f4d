//! `swiglu`: runs a LLaMA-style gated FFN on the best available device,
//! checks it against the f64 reference, and prints a timing table of the
//! fused path against the unfused baseline(s).

use clap::{Parser, ValueEnum};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use swiglu::checkpoint::{FfnWeights, SafetensorsBuffer, layer_prefix};
use swiglu::{Activation, DType, Element, GluWeights, WeightLayout, bf16, cpu, f16};

/// Counts heap bytes so the CPU rows can report measured peak memory.
struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        CURRENT.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum DeviceArg {
    /// CUDA if a usable GPU is present, else CPU.
    Auto,
    /// The multi-threaded CPU path.
    Cpu,
    /// The GPU (fails if none is usable).
    Cuda,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum DTypeArg {
    F32,
    F16,
    Bf16,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum LayoutArg {
    /// Wg, Wu as [K, N] row-major.
    Kn,
    /// Wg, Wu as [N, K] (nn.Linear / checkpoint layout).
    Nk,
    /// One concatenated [2N, K] gate_up tensor.
    Concat,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum ActArg {
    Silu,
    Swish,
    Sigmoid,
    Gelu,
    GeluTanh,
    Relu,
    Identity,
}

/// Fused gated FFN (SwiGLU and the GLU family): runs `out = act(x·Wg + bg) ⊙ (x·Wu + bu)`
/// on the best available device, checks it against an f64 reference on sampled rows,
/// and prints time, TFLOP/s, speedup, extra memory and error for the fused path and
/// the unfused baseline(s).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Rows of x (tokens). Default: 512 on the CPU, 4096 on a GPU.
    #[arg(short, long)]
    m: Option<usize>,
    /// Input features. Default: 1024 on the CPU, 4096 (LLaMA-7B) on a GPU.
    #[arg(short, long)]
    k: Option<usize>,
    /// Hidden features. Default: 2816 on the CPU, 11008 (LLaMA-7B) on a GPU.
    #[arg(short, long)]
    n: Option<usize>,
    /// Element type [default: f32, or the checkpoint's with --weights].
    #[arg(long, value_enum)]
    dtype: Option<DTypeArg>,
    /// Gate activation.
    #[arg(long, value_enum, default_value = "silu")]
    act: ActArg,
    /// β for `--act swish`.
    #[arg(long, default_value_t = 1.0)]
    beta: f32,
    /// Weight layout (synthetic weights; a checkpoint's is its own).
    #[arg(long, value_enum, default_value = "nk", conflicts_with = "weights")]
    layout: LayoutArg,
    /// Add gate and up biases (synthetic weights; a checkpoint's are used if present).
    #[arg(long, conflicts_with = "weights")]
    bias: bool,
    /// Where to run.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceArg,
    /// Timed iterations per path (the median is reported).
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// GPU: let `Path::Auto` time the candidate paths on this problem and
    /// keep the fastest (`CudaGlu::set_autotune`) instead of the built-in
    /// rule; prints what it measured.
    #[arg(long)]
    autotune: bool,
    /// Rows sampled for the f64 reference check.
    #[arg(long, default_value_t = 8)]
    check_rows: usize,
    /// Run on real weights: a .safetensors checkpoint holding the FFN
    /// (`gate_proj`/`up_proj` or merged `gate_up_proj`, with biases if
    /// present). K, N and the dtype come from the file; M from --m.
    #[arg(long, value_name = "FILE.safetensors")]
    weights: Option<std::path::PathBuf>,
    /// Transformer layer whose FFN --weights loads (names
    /// `model.layers.{L}.mlp.*`).
    #[arg(long, default_value_t = 0, requires = "weights")]
    layer: usize,
    /// Tensor name prefix for --weights instead of `model.layers.{L}.mlp.`;
    /// `{L}` in it is replaced by --layer.
    #[arg(long, requires = "weights")]
    prefix: Option<String>,
}

struct Row {
    path: String,
    secs: f64,
    extra_bytes: usize,
    err: f64,
}

fn act_of(a: &Args) -> Activation {
    match a.act {
        ActArg::Silu => Activation::Silu,
        ActArg::Swish => Activation::Swish { beta: a.beta },
        ActArg::Sigmoid => Activation::Sigmoid,
        ActArg::Gelu => Activation::GeluErf,
        ActArg::GeluTanh => Activation::GeluTanh,
        ActArg::Relu => Activation::Relu,
        ActArg::Identity => Activation::Identity,
    }
}

/// Deterministic inputs: uniform in [-scale, scale).
fn fill<T: Element>(len: usize, scale: f32, seed: u64) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::from_f32((((s >> 40) as f32) / (1u64 << 24) as f32 * 2.0 - 1.0) * scale)
        })
        .collect()
}

/// Max over sampled rows of ‖out_row − ref_row‖/‖ref_row‖ (inf on a NaN).
fn check<T: Element>(
    out: &[T],
    x: &[T],
    m: usize,
    w: &GluWeights<'_, T>,
    act: Activation,
    rows: usize,
) -> f64 {
    let (k, n) = (w.k(), w.n());
    let mut worst = 0.0f64;
    for i in 0..rows.min(m) {
        let r = if rows >= m { i } else { (i * 7919 + 13) % m };
        let want = swiglu::reference::forward_f64(&x[r * k..(r + 1) * k], &[1, k], w, act)
            .expect("reference");
        let got: Vec<f64> = out[r * n..(r + 1) * n].iter().map(|v| v.to_f64()).collect();
        worst = worst.max(swiglu::reference::rel_err(&got, &want));
    }
    worst
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn run<T: Element + CudaOpt>(
    a: &Args,
    use_cuda: bool,
    ckpt: Option<&FfnWeights<'_, T>>,
) -> Result<(), String> {
    let (m, k, n) = if let Some(c) = ckpt {
        (
            a.m.unwrap_or(if use_cuda { 4096 } else { 512 }),
            c.k(),
            c.n(),
        )
    } else if use_cuda {
        (
            a.m.unwrap_or(4096),
            a.k.unwrap_or(4096),
            a.n.unwrap_or(11008),
        )
    } else {
        (a.m.unwrap_or(512), a.k.unwrap_or(1024), a.n.unwrap_or(2816))
    };
    let act = act_of(a);
    let x: Vec<T> = fill(m * k, 1.0, 1);
    let scale = 1.0 / (k as f32).sqrt();
    // Synthetic weights only without a checkpoint.
    let synth = |len: usize, scale: f32, seed: u64| -> Vec<T> {
        if ckpt.is_some() {
            Vec::new()
        } else {
            fill(len, scale, seed)
        }
    };
    let gu: Vec<T> = synth(2 * n * k, scale, 2);
    let bg: Vec<T> = synth(n, 0.5, 3);
    let bu: Vec<T> = synth(n, 0.5, 4);
    let e = |e: swiglu::GluError| e.to_string();
    let (w, layout, concat, bias) = if let Some(c) = ckpt {
        let w = c.weights().map_err(e)?;
        let bias = w.bias_gate().is_some() || w.bias_up().is_some();
        let layout = if c.is_merged() {
            "checkpoint gate_up_proj [2N,K]"
        } else {
            "checkpoint gate_proj/up_proj [N,K]"
        };
        (w, layout, c.is_merged(), bias)
    } else {
        let w = match a.layout {
            LayoutArg::Concat => GluWeights::from_gate_up(&gu, k, n),
            LayoutArg::Kn => GluWeights::new(&gu[..n * k], &gu[n * k..], k, n, WeightLayout::KN),
            LayoutArg::Nk => GluWeights::new(&gu[..n * k], &gu[n * k..], k, n, WeightLayout::NK),
        }
        .map_err(e)?;
        let w = if a.bias {
            w.with_biases(Some(&bg), Some(&bu)).map_err(e)?
        } else {
            w
        };
        let layout = match a.layout {
            LayoutArg::Concat => "concat",
            LayoutArg::Kn => "kn",
            LayoutArg::Nk => "nk",
        };
        (w, layout, a.layout == LayoutArg::Concat, a.bias)
    };
    let flops = 4.0 * m as f64 * n as f64 * k as f64;
    let device = if use_cuda {
        T::cuda_device_name().unwrap_or_else(|| "CUDA".into())
    } else {
        if a.autotune {
            eprintln!("note: --autotune applies to the GPU only; the CPU has one path");
        }
        format!("CPU, {} threads", rayon::current_num_threads())
    };
    println!(
        "swiglu: M={m} K={k} N={n} {} act={} layout={layout} bias={bias} on {device}",
        T::DTYPE.name(),
        act.name(),
    );
    let rows = if use_cuda {
        T::cuda_rows(
            &x,
            m,
            k,
            &w,
            act,
            GpuOpts {
                iters: a.iters.max(1),
                concat,
                autotune: a.autotune,
            },
        )?
    } else {
        let mut rows = Vec::new();
        let mut out = vec![T::default(); m * n];
        type Fwd<T> =
            fn(&[T], &[usize], &GluWeights<'_, T>, Activation, &mut [T]) -> swiglu::Result<()>;
        let paths: [(&str, Fwd<T>); 2] = [
            ("fused (cpu)", cpu::forward::<T>),
            ("unfused baseline (cpu)", cpu::unfused_forward::<T>),
        ];
        for (name, f) in paths {
            f(&x, &[m, k], &w, act, &mut out).map_err(e)?; // warm-up
            let base = CURRENT.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let times: Vec<f64> = (0..a.iters.max(1))
                .map(|_| {
                    let t = Instant::now();
                    f(&x, &[m, k], &w, act, &mut out).expect("validated above");
                    t.elapsed().as_secs_f64()
                })
                .collect();
            let extra = PEAK.load(Ordering::Relaxed).saturating_sub(base);
            rows.push(Row {
                path: name.into(),
                secs: median(times),
                extra_bytes: extra,
                err: 0.0,
            });
            rows.last_mut().unwrap().err = check(&out, &x, m, &w, act, a.check_rows);
        }
        rows
    };
    let fused = rows[0].secs;
    println!("\n| path | time (ms) | TFLOP/s | fused speedup | extra memory (MB) | max rel err |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.2}x | {:.1} | {:.2e} |",
            r.path,
            r.secs * 1e3,
            flops / r.secs / 1e12,
            r.secs / fused,
            r.extra_bytes as f64 / 1e6,
            r.err
        );
    }
    println!(
        "\nextra memory: {} beyond inputs and output; error: f64 reference on {} sampled rows",
        if use_cuda {
            "device workspace"
        } else {
            "measured peak heap"
        },
        a.check_rows.min(m)
    );
    let worst = rows.iter().map(|r| r.err).fold(0.0, f64::max);
    let tol = match T::DTYPE {
        swiglu::DType::F32 => 1e-5,
        swiglu::DType::F16 => 2e-3,
        swiglu::DType::BF16 => 1e-2,
    };
    if worst.is_nan() || worst > tol {
        return Err(format!("max relative error {worst:.3e} exceeds {tol:.0e}"));
    }
    Ok(())
}

/// How the GPU rows run.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct GpuOpts {
    /// Timed iterations per path.
    iters: usize,
    /// Weights as one `[2N, K]` tensor (adds baseline B2).
    concat: bool,
    /// `--autotune`.
    autotune: bool,
}

/// The GPU half of the CLI, absent without the `cuda` feature.
trait CudaOpt: Sized {
    fn cuda_device_name() -> Option<String>;
    fn cuda_rows(
        x: &[Self],
        m: usize,
        k: usize,
        w: &GluWeights<'_, Self>,
        act: Activation,
        opts: GpuOpts,
    ) -> Result<Vec<Row>, String>;
}

#[cfg(feature = "cuda")]
mod gpu {
    use super::*;
    use swiglu::cuda::{CudaElement, CudaGlu, DeviceGluWeights, Path};

    impl<T: CudaElement> CudaOpt for T {
        fn cuda_device_name() -> Option<String> {
            CudaGlu::new(0).ok()?.device_name().ok()
        }
        fn cuda_rows(
            x: &[T],
            m: usize,
            k: usize,
            w: &GluWeights<'_, T>,
            act: Activation,
            opts: GpuOpts,
        ) -> Result<Vec<Row>, String> {
            let GpuOpts {
                iters,
                concat,
                autotune,
            } = opts;
            let e = |e: swiglu::GluError| e.to_string();
            let g = CudaGlu::new(0).map_err(e)?;
            g.set_autotune(autotune);
            let s = g.stream();
            let n = w.n();
            let dx = s.clone_htod(x).map_err(|e| format!("{e:?}"))?;
            let mut gu = w.gate().to_vec();
            gu.extend_from_slice(w.up());
            let dgu = s.clone_htod(&gu).map_err(|e| format!("{e:?}"))?;
            let (dg, du) = dgu.split_at(n * k);
            let dw = if concat {
                DeviceGluWeights::from_gate_up(dgu.as_view(), k, n)
            } else {
                DeviceGluWeights::new(dg, du, k, n, w.layout())
            }
            .map_err(e)?;
            let dbg = w
                .bias_gate()
                .map(|b| s.clone_htod(b))
                .transpose()
                .map_err(|e| format!("{e:?}"))?;
            let dbu = w
                .bias_up()
                .map(|b| s.clone_htod(b))
                .transpose()
                .map_err(|e| format!("{e:?}"))?;
            let dw = dw
                .with_biases(
                    dbg.as_ref().map(|b| b.as_view()),
                    dbu.as_ref().map(|b| b.as_view()),
                )
                .map_err(e)?;
            let mut out = s.alloc_zeros::<T>(m * n).map_err(|e| format!("{e:?}"))?;
            let mut paths = vec![Path::Auto, Path::CublasSplit];
            if concat {
                paths.push(Path::CublasConcat);
            }
            paths.push(Path::CublasEager);
            let ctx = g.context();
            let mut rows = Vec::new();
            for p in paths {
                let ran = g.forward(&dx, &[m, k], &dw, act, &mut out, p).map_err(e)?;
                let mut times = Vec::new();
                for _ in 0..iters {
                    let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
                    let (a, b) = (
                        ctx.new_event(flags).map_err(|e| format!("{e:?}"))?,
                        ctx.new_event(flags).map_err(|e| format!("{e:?}"))?,
                    );
                    a.record(s).map_err(|e| format!("{e:?}"))?;
                    g.forward(&dx, &[m, k], &dw, act, &mut out, ran)
                        .map_err(e)?;
                    b.record(s).map_err(|e| format!("{e:?}"))?;
                    b.synchronize().map_err(|e| format!("{e:?}"))?;
                    times.push(a.elapsed_ms(&b).map_err(|e| format!("{e:?}"))? as f64 / 1e3);
                }
                let host = s.clone_dtoh(&out).map_err(|e| format!("{e:?}"))?;
                // Auto's row comes first; where Auto (the rule or the
                // autotuner) chose a baseline, the label says so, so that
                // it is not read as a second row of that baseline.
                let label = if ran.is_fused() {
                    format!("fused ({})", ran.name())
                } else if p == Path::Auto {
                    format!("auto: baseline {}", ran.name())
                } else {
                    format!("baseline {}", ran.name())
                };
                rows.push(Row {
                    path: label,
                    secs: median(times),
                    extra_bytes: g.workspace_bytes(ran, m, k, n, T::DTYPE),
                    err: check(&host, x, m, w, act, 8),
                });
            }
            for t in g.tuned_paths() {
                let cands: Vec<String> = t
                    .timings
                    .iter()
                    .map(|(p, us)| match us {
                        Some(us) => format!("{} {us:.1} us", p.name()),
                        None => format!("{} failed", p.name()),
                    })
                    .collect();
                println!(
                    "autotune (M {}..={}): kept {} (built-in rule: {}); measured {}",
                    t.rows.0,
                    t.rows.1,
                    t.chosen.name(),
                    t.heuristic.name(),
                    cands.join(", ")
                );
            }
            Ok(rows)
        }
    }
}

#[cfg(not(feature = "cuda"))]
impl<T> CudaOpt for T {
    fn cuda_device_name() -> Option<String> {
        None
    }
    fn cuda_rows(
        _: &[T],
        _: usize,
        _: usize,
        _: &GluWeights<'_, T>,
        _: Activation,
        _: GpuOpts,
    ) -> Result<Vec<Row>, String> {
        Err("built without the `cuda` feature".into())
    }
}

/// `--weights`: loads the FFN of `--layer` (or `--prefix`) and runs the job
/// on it in the file's dtype.
fn run_checkpoint(a: &Args, path: &std::path::Path, use_cuda: bool) -> Result<(), String> {
    let e = |e: swiglu::GluError| e.to_string();
    if a.k.is_some() || a.n.is_some() {
        return Err("--k and --n come from the checkpoint; drop them with --weights".into());
    }
    // SAFETY: the CLI only reads the checkpoint; like every mapped loader it
    // relies on nobody rewriting or truncating the file during the run.
    let buf = unsafe { SafetensorsBuffer::map(path) }.map_err(e)?;
    let ck = buf.checkpoint().map_err(e)?;
    let prefix = match &a.prefix {
        Some(p) => p.replace("{L}", &a.layer.to_string()),
        None => layer_prefix(a.layer),
    };
    let ffn = ck.ffn(&prefix).map_err(e)?;
    let want = match a.dtype {
        None => ffn.dtype(),
        Some(DTypeArg::F32) => DType::F32,
        Some(DTypeArg::F16) => DType::F16,
        Some(DTypeArg::Bf16) => DType::BF16,
    };
    if want != ffn.dtype() {
        return Err(format!(
            "--dtype {} but the checkpoint's FFN is {} (no conversion; drop --dtype)",
            want.name(),
            ffn.dtype().name()
        ));
    }
    println!(
        "checkpoint {}: `{}*` K={} N={} {}{}{}",
        path.display(),
        ffn.prefix(),
        ffn.k(),
        ffn.n(),
        ffn.dtype().name(),
        if ffn.is_merged() {
            ", merged gate_up_proj"
        } else {
            ""
        },
        if ffn.down().is_some() {
            ", down_proj present (not run)"
        } else {
            ""
        },
    );
    match ffn.dtype() {
        DType::F32 => run::<f32>(a, use_cuda, Some(&ffn.typed().map_err(e)?)),
        DType::F16 => run::<f16>(a, use_cuda, Some(&ffn.typed().map_err(e)?)),
        DType::BF16 => run::<bf16>(a, use_cuda, Some(&ffn.typed().map_err(e)?)),
    }
}

fn cuda_usable() -> Result<(), String> {
    #[cfg(feature = "cuda")]
    {
        match swiglu::cuda::unavailable_reason() {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err("built without the `cuda` feature".into())
    }
}

fn main() {
    let a = Args::parse();
    let use_cuda = match a.device {
        DeviceArg::Cpu => false,
        DeviceArg::Cuda => match cuda_usable() {
            Ok(()) => true,
            Err(why) => {
                eprintln!("error: --device cuda: {why}");
                std::process::exit(2);
            }
        },
        DeviceArg::Auto => match cuda_usable() {
            Ok(()) => true,
            Err(why) => {
                eprintln!("note: running on the CPU ({why})");
                false
            }
        },
    };
    let r = match &a.weights {
        Some(path) => run_checkpoint(&a, path, use_cuda),
        None => match a.dtype.unwrap_or(DTypeArg::F32) {
            DTypeArg::F32 => run::<f32>(&a, use_cuda, None),
            DTypeArg::F16 => run::<f16>(&a, use_cuda, None),
            DTypeArg::Bf16 => run::<bf16>(&a, use_cuda, None),
        },
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
