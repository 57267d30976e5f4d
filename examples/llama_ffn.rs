//! A LLaMA-style gated FFN (`w2(silu(w1 x) ⊙ w3 x)` without the down
//! projection) on the GPU when one is usable, else on the CPU; checks the
//! two against each other when both run.
//!
//! `cargo run --release --example llama_ffn`

use swiglu::{Activation, GluWeights, WeightLayout, bf16, cpu};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (m, k, n) = (64, 512, 1408);
    let x: Vec<bf16> = (0..m * k)
        .map(|i| bf16::from_f32(((i * 37 % 101) as f32 / 50.0) - 1.0))
        .collect();
    // gate_proj and up_proj in checkpoint layout [N, K], as one merged [2N, K] tensor.
    let gate_up: Vec<bf16> = (0..2 * n * k)
        .map(|i| bf16::from_f32((((i * 13 % 97) as f32 / 48.0) - 1.0) / (k as f32).sqrt()))
        .collect();
    let w = GluWeights::from_gate_up(&gate_up, k, n)?;
    assert_eq!(w.layout(), WeightLayout::NK);

    let on_cpu = cpu::forward_alloc(&x, &[m, k], &w, Activation::Silu)?;
    println!("cpu: out[0..4] = {:?}", &on_cpu[..4]);

    #[cfg(feature = "cuda")]
    match swiglu::cuda::CudaGlu::new(0) {
        Ok(glu) => {
            let (on_gpu, path) =
                glu.forward_host(&x, &[m, k], &w, Activation::Silu, swiglu::cuda::Path::Auto)?;
            let max_diff = on_cpu
                .iter()
                .zip(&on_gpu)
                .map(|(a, b)| (a.to_f32() - b.to_f32()).abs())
                .fold(0.0f32, f32::max);
            println!(
                "gpu ({}): out[0..4] = {:?}, max |cpu - gpu| = {max_diff:.2e}",
                path.name(),
                &on_gpu[..4]
            );
        }
        Err(e) => println!("gpu: not used ({e})"),
    }
    Ok(())
}
