//! Trains a small next-token model built around this crate's SwiGLU layer,
//! in plain Rust, and plots its loss curve.
//!
//! ```text
//! cargo run --release --example train -- [--steps 300] [--batch 16] [--seq 64]
//!     [--vocab 32] [--dim 64] [--hidden 128] [--blocks 2] [--lr 0.01]
//!     [--wd 0.01] [--target LOSS] [--device auto|cpu|cuda] [--out DIR] [--seed 1]
//! ```
//!
//! The model (see `model.rs`; the task is in `data.rs`, the GPU/CPU switch in
//! `glu.rs`, AdamW and the loop in `trainer.rs`): embeddings of the current and previous token
//! → `blocks` residual blocks `h = h + swiglu(h)·Wdown` → output projection
//! → softmax cross-entropy, trained with AdamW on sequences from a fixed
//! random second-order Markov chain. Before training, the whole model's
//! backward pass is checked against central finite differences of an f64
//! reference on a tiny configuration.
//!
//! The gated FFN runs on the GPU when `swiglu::cuda::CudaGlu::new(0)` works
//! (the `cuda` feature, kernels built by nvcc, and a device), else on the
//! CPU. Only the gated FFN runs on the device: activations, weights and
//! gradients are copied between host and device every step, which is fine
//! for an example and slow for real training.
//!
//! Prints the initial loss, `ln V`, the chain's entropy (the best reachable
//! loss), the final loss and whether the target was reached (exit status 1
//! if not, 2 for bad flags), and writes `DIR/loss.csv` and `DIR/loss.png`
//! (default `DIR`: `target/train`). The plot: raw step losses in light blue,
//! their centred moving average in dark blue, `ln V` in grey, the target in red and
//! the floor in green; text is drawn with a built-in pixel font, so no
//! system fonts are needed.

mod data;
mod glu;
mod model;
mod trainer;

use glu::{DeviceChoice, Glu, Res};
use plotters::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use trainer::{Config, Progress, Report};

const USAGE: &str = "usage: train [--steps N] [--batch N] [--seq N] [--vocab N] [--dim N] \
[--hidden N] [--blocks N] [--lr F] [--wd F] [--target F] [--device auto|cpu|cuda] [--out DIR] [--seed N]";

/// What the command line asks for.
struct Args {
    cfg: Config,
    device: DeviceChoice,
    out: PathBuf,
}

/// Parses `std::env::args`; `Ok(None)` for `--help`.
fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut cfg = Config::default();
    let mut device = DeviceChoice::Auto;
    let mut out = PathBuf::from("target/train");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let val = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("{key} needs a value"))?,
        };
        let num = |what: &str| -> Result<usize, String> {
            match val.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{what} must be a positive integer, got `{val}`")),
            }
        };
        let float = |what: &str| -> Result<f32, String> {
            match val.parse::<f32>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(format!("{what} must be a non-negative number, got `{val}`")),
            }
        };
        match key {
            "--steps" => cfg.steps = num(key)?,
            "--batch" => cfg.batch = num(key)?,
            "--seq" => cfg.seq = num(key)?,
            "--vocab" if !(2..=1024).contains(&num(key)?) => {
                return Err(format!("--vocab must be in 2..=1024, got `{val}`"));
            }
            "--vocab" => cfg.vocab = num(key)?,
            "--dim" => cfg.dim = num(key)?,
            "--hidden" => cfg.hidden = num(key)?,
            "--blocks" => cfg.blocks = num(key)?,
            "--lr" => cfg.lr = float(key)?,
            "--wd" => cfg.weight_decay = float(key)?,
            "--target" => cfg.target = Some(float(key)?),
            "--seed" => {
                cfg.seed = val
                    .parse()
                    .map_err(|_| format!("--seed must be an integer, got `{val}`"))?
            }
            "--out" => out = PathBuf::from(val),
            "--device" => {
                device = match val.as_str() {
                    "auto" => DeviceChoice::Auto,
                    "cpu" => DeviceChoice::Cpu,
                    "cuda" => DeviceChoice::Cuda,
                    _ => return Err(format!("--device must be auto, cpu or cuda, got `{val}`")),
                }
            }
            _ => return Err(format!("unknown flag `{key}`")),
        }
    }
    // 2^29 floats: 2 GiB.
    if cfg.floats().is_none_or(|f| f > 1 << 29) {
        return Err("the model and batch are too large for this example (over 2 GiB)".into());
    }
    Ok(Some(Args { cfg, device, out }))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match train(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs, reports and writes the outputs; `Ok(reached)`.
fn train(args: &Args) -> Res<bool> {
    let (cfg, out) = (&args.cfg, args.out.as_path());
    let (glu, device) = Glu::select(args.device)?;
    println!("device: {device}");
    println!(
        "model: vocab {} dim {} hidden {} blocks {}; {} steps of {}×{} tokens, lr {}",
        cfg.vocab, cfg.dim, cfg.hidden, cfg.blocks, cfg.steps, cfg.batch, cfg.seq, cfg.lr
    );
    let mut last_draw: Option<Instant> = None;
    let mut bar = |p: &Progress| {
        if p.step == cfg.steps || last_draw.is_none_or(|t| t.elapsed().as_millis() >= 100) {
            last_draw = Some(Instant::now());
            let done = 30 * p.step / cfg.steps;
            eprint!(
                "\r[{}{}] step {:>5}/{} loss {:.4} {:>8.0} tok/s",
                "#".repeat(done),
                ".".repeat(30 - done),
                p.step,
                cfg.steps,
                p.loss,
                p.tokens_per_s
            );
            let _ = std::io::stderr().flush();
        }
    };
    let r = trainer::run(cfg, &glu, &mut bar)?;
    eprintln!();
    println!(
        "gradient check (finite differences, f64): worst relative error {:.1e}",
        r.grad_check_err
    );
    println!("ln V          {:.4}", r.ln_v);
    println!("floor         {:.4}  (the chain's entropy)", r.floor);
    println!("initial loss  {:.4}", r.initial_loss);
    println!("final loss    {:.4}", r.final_loss);
    println!(
        "target        {:.4}: {}",
        r.target,
        if r.reached() {
            "reached"
        } else {
            "NOT reached"
        }
    );
    println!("{:.1} s, {:.0} tokens/s", r.seconds, r.tokens_per_s);
    std::fs::create_dir_all(out)?;
    let csv = out.join("loss.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    writeln!(f, "step,loss")?;
    for (i, l) in r.losses.iter().enumerate() {
        writeln!(f, "{},{l}", i + 1)?;
    }
    f.flush()?;
    let png = out.join("loss.png");
    plot(&r, &png)?;
    println!("wrote {} and {}", csv.display(), png.display());
    Ok(r.reached())
}

// ---------------------------------------------------------------- plot

/// A 3×5 pixel font: rows top to bottom, bit 2 is the left column.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' | 'O' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' | 'S' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        'A' => [2, 5, 7, 5, 5],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'L' => [4, 4, 4, 4, 7],
        'N' => [5, 7, 7, 7, 5],
        'P' => [7, 5, 7, 4, 4],
        'R' => [6, 5, 6, 5, 5],
        'T' => [7, 2, 2, 2, 2],
        'V' => [5, 5, 5, 5, 2],
        _ => [0; 5],
    }
}

/// Draws `text` with its top-left corner at `(x, y)`, `px` pixels per font pixel.
fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    s: &str,
    (x, y): (i32, i32),
    px: i32,
    color: RGBColor,
) -> Res<()> {
    for (i, c) in s.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    let (x0, y0) = (x + (i as i32 * 4 + col) * px, y + row as i32 * px);
                    area.draw(&Rectangle::new(
                        [(x0, y0), (x0 + px, y0 + px)],
                        color.filled(),
                    ))
                    .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// Width in pixels of `s` drawn by [`text`].
fn text_width(s: &str, px: i32) -> i32 {
    (s.chars().count() as i32 * 4 - 1) * px
}

/// A round tick spacing giving about `n` ticks over `span`.
fn tick_step(span: f64, n: f64) -> f64 {
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// Writes the loss curve as a PNG.
fn plot(r: &Report, path: &Path) -> Res<()> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (w, h) = (900u32, 540u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let steps = r.losses.len().max(1) as f64;
    let top = r
        .losses
        .iter()
        .copied()
        .fold(r.ln_v.max(r.initial_loss), f32::max) as f64
        * 1.08;
    let mut chart = ChartBuilder::on(&root)
        .margin_left(70)
        .margin_bottom(50)
        .margin_top(40)
        .margin_right(30)
        .build_cartesian_2d(0f64..steps, 0f64..top)
        .map_err(|e| err(&e))?;
    let grid = RGBColor(225, 225, 225);
    let ink = RGBColor(60, 60, 60);
    let (ys, xs) = (tick_step(top, 8.0), tick_step(steps, 8.0));
    let yt: Vec<f64> = (0..)
        .map(|i| i as f64 * ys)
        .take_while(|y| *y <= top)
        .collect();
    let xt: Vec<f64> = (0..)
        .map(|i| i as f64 * xs)
        .take_while(|x| *x <= steps)
        .collect();
    for &y in &yt {
        chart
            .draw_series(LineSeries::new([(0.0, y), (steps, y)], grid))
            .map_err(|e| err(&e))?;
    }
    for &x in &xt {
        chart
            .draw_series(LineSeries::new([(x, 0.0), (x, top)], grid))
            .map_err(|e| err(&e))?;
    }
    let hline = |c: &mut ChartContext<_, _>, y: f32, color: RGBColor| {
        c.draw_series(LineSeries::new(
            [(0.0, y as f64), (steps, y as f64)],
            color.stroke_width(2),
        ))
        .map(|_| ())
    };
    hline(&mut chart, r.ln_v, RGBColor(150, 150, 150)).map_err(|e| err(&e))?;
    hline(&mut chart, r.target, RGBColor(220, 40, 40)).map_err(|e| err(&e))?;
    hline(&mut chart, r.floor, RGBColor(30, 160, 60)).map_err(|e| err(&e))?;
    let raw = r
        .losses
        .iter()
        .enumerate()
        .map(|(i, l)| ((i + 1) as f64, *l as f64));
    chart
        .draw_series(LineSeries::new(raw, RGBColor(150, 190, 240)))
        .map_err(|e| err(&e))?;
    // Centred moving average over about 1/30 of the run.
    let win = r.losses.len() / 60;
    let smooth = (0..r.losses.len()).map(|i| {
        let s = &r.losses[i.saturating_sub(win)..(i + win + 1).min(r.losses.len())];
        (
            (i + 1) as f64,
            s.iter().map(|v| *v as f64).sum::<f64>() / s.len() as f64,
        )
    });
    chart
        .draw_series(LineSeries::new(
            smooth,
            RGBColor(20, 60, 170).stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    // Frame, tick labels and captions, in pixel coordinates.
    let at = |x: f64, y: f64| chart.backend_coord(&(x, y));
    let ((x0, y0), (x1, y1)) = (at(0.0, 0.0), at(steps, top));
    root.draw(&Rectangle::new([(x0, y1), (x1, y0)], ink))
        .map_err(|e| err(&e))?;
    let fmt = |v: f64, step: f64| {
        if step < 1.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.0}")
        }
    };
    for &y in &yt {
        let (_, py) = at(0.0, y);
        let s = fmt(y, ys);
        text(&root, &s, (x0 - 8 - text_width(&s, 2), py - 5), 2, ink)?;
    }
    for &x in &xt {
        let (px, _) = at(x, 0.0);
        let s = fmt(x, xs);
        text(&root, &s, (px - text_width(&s, 2) / 2, y0 + 8), 2, ink)?;
    }
    text(
        &root,
        "STEP",
        ((x0 + x1 - text_width("STEP", 3)) / 2, y0 + 28),
        3,
        ink,
    )?;
    text(&root, "LOSS", (8, 10), 3, ink)?;
    // Labels above their lines, the floor's below (the curve approaches it from above).
    for (s, y, c, dy) in [
        ("LN V", r.ln_v, RGBColor(150, 150, 150), -16),
        ("TARGET", r.target, RGBColor(220, 40, 40), -16),
        ("FLOOR", r.floor, RGBColor(30, 160, 60), 7),
    ] {
        let (_, py) = at(steps, y as f64);
        text(&root, s, (x1 - text_width(s, 2) - 6, py + dy), 2, c)?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
