//! Loading gated-FFN weights from `.safetensors` files written here with the
//! `safetensors` crate: separate and merged forms, f32/f16/bf16, biases,
//! alignment fallback, and every error case.

use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize};
use swiglu::checkpoint::{Checkpoint, SafetensorsBuffer, layer_prefix};
use swiglu::{Activation, DType, Element, GluError, GluWeights, WeightLayout, bf16, cpu, f16};

/// Deterministic values in [-scale, scale).
fn vals<T: Element>(len: usize, scale: f32, seed: u64) -> Vec<T> {
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

fn le_bytes<T: Element + bytemuck::Pod>(v: &[T]) -> Vec<u8> {
    // The test targets are little-endian; safetensors data is little-endian.
    bytemuck::cast_slice(v).to_vec()
}

fn st_dtype(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
    }
}

/// A tensor to write: name, dtype, shape, bytes.
struct Entry(String, Dtype, Vec<usize>, Vec<u8>);

fn entry<T: Element + bytemuck::Pod>(name: &str, shape: &[usize], v: &[T]) -> Entry {
    Entry(name.into(), st_dtype(T::DTYPE), shape.to_vec(), le_bytes(v))
}

fn write(entries: &[Entry]) -> Vec<u8> {
    let views = entries
        .iter()
        .map(|Entry(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    serialize(views, None).unwrap()
}

/// The in-memory FFN a file is made from.
struct Ffn<T> {
    k: usize,
    n: usize,
    gate: Vec<T>, // [N, K]
    up: Vec<T>,   // [N, K]
    bg: Vec<T>,
    bu: Vec<T>,
    down: Vec<T>, // [K, N]
}

fn ffn<T: Element>(k: usize, n: usize, seed: u64) -> Ffn<T> {
    let s = 1.0 / (k as f32).sqrt();
    Ffn {
        k,
        n,
        gate: vals(n * k, s, seed),
        up: vals(n * k, s, seed + 1),
        bg: vals(n, 0.5, seed + 2),
        bu: vals(n, 0.5, seed + 3),
        down: vals(k * n, s, seed + 4),
    }
}

impl<T: Element + bytemuck::Pod> Ffn<T> {
    fn entries(&self, prefix: &str, merged: bool, bias: bool) -> Vec<Entry> {
        let (k, n) = (self.k, self.n);
        let mut e = Vec::new();
        if merged {
            let mut gu = self.gate.clone();
            gu.extend_from_slice(&self.up);
            e.push(entry(
                &format!("{prefix}gate_up_proj.weight"),
                &[2 * n, k],
                &gu,
            ));
            if bias {
                let mut b = self.bg.clone();
                b.extend_from_slice(&self.bu);
                e.push(entry(&format!("{prefix}gate_up_proj.bias"), &[2 * n], &b));
            }
        } else {
            e.push(entry(
                &format!("{prefix}gate_proj.weight"),
                &[n, k],
                &self.gate,
            ));
            e.push(entry(&format!("{prefix}up_proj.weight"), &[n, k], &self.up));
            if bias {
                e.push(entry(&format!("{prefix}gate_proj.bias"), &[n], &self.bg));
                e.push(entry(&format!("{prefix}up_proj.bias"), &[n], &self.bu));
            }
        }
        e.push(entry(
            &format!("{prefix}down_proj.weight"),
            &[k, n],
            &self.down,
        ));
        e
    }

    fn weights(&self, bias: bool) -> GluWeights<'_, T> {
        let w = GluWeights::new(&self.gate, &self.up, self.k, self.n, WeightLayout::NK).unwrap();
        if bias {
            w.with_biases(Some(&self.bg), Some(&self.bu)).unwrap()
        } else {
            w
        }
    }
}

/// A second layer and an unrelated tensor, so lookups must pick by name.
fn decoys<T: Element + bytemuck::Pod>(k: usize, n: usize) -> Vec<Entry> {
    let other: Ffn<T> = ffn(k, n, 99);
    let mut e = other.entries(&layer_prefix(7), false, false);
    e.push(entry(
        "model.embed_tokens.weight",
        &[5, k],
        &vals::<T>(5 * k, 1.0, 5),
    ));
    e
}

fn roundtrip<T: Element + bytemuck::Pod>() {
    let (k, n, m) = (24, 40, 6);
    for merged in [false, true] {
        for bias in [false, true] {
            let f: Ffn<T> = ffn(k, n, 10);
            let mut entries = f.entries(&layer_prefix(3), merged, bias);
            entries.extend(decoys::<T>(k, n));
            let file = write(&entries);
            let buf = SafetensorsBuffer::from_bytes(&file);
            let ck = buf.checkpoint().unwrap();
            let t = ck.ffn_layer(3).unwrap();
            let what = format!("{:?} merged={merged} bias={bias}", T::DTYPE);
            assert_eq!((t.k(), t.n(), t.dtype()), (k, n, T::DTYPE), "{what}");
            assert_eq!(t.is_merged(), merged, "{what}");
            assert_eq!(t.has_biases(), (bias, bias), "{what}");
            assert_eq!(t.prefix(), "model.layers.3.mlp.");
            let typed = t.typed::<T>().unwrap();
            assert!(typed.is_zero_copy(), "{what}: aligned buffer must not copy");
            assert_eq!(typed.down().unwrap(), &f.down[..], "{what}");
            assert!(typed.down_bias().is_none());
            let w = typed.weights().unwrap();
            assert_eq!(w.layout(), WeightLayout::NK);
            // Zero copy: the gate slice points into the file buffer.
            let range = buf.as_bytes().as_ptr_range();
            assert!(range.contains(&(w.gate().as_ptr() as *const u8)), "{what}");

            let x: Vec<T> = vals(m * k, 1.0, 77);
            for act in [Activation::Silu, Activation::GeluTanh] {
                let got = cpu::forward_alloc(&x, &[2, 3, k], &w, act).unwrap();
                let want = cpu::forward_alloc(&x, &[2, 3, k], &f.weights(bias), act).unwrap();
                assert_eq!(got, want, "{what} {act:?}");
            }
        }
    }
}

#[test]
fn roundtrip_f32() {
    roundtrip::<f32>();
}

#[test]
fn roundtrip_f16() {
    roundtrip::<f16>();
}

#[test]
fn roundtrip_bf16() {
    roundtrip::<bf16>();
}

#[test]
fn reads_a_file_from_disk_and_accepts_custom_prefixes() {
    let (k, n) = (8, 12);
    let f: Ffn<bf16> = ffn(k, n, 1);
    let file = write(&f.entries("transformer.h.0.ffn.", false, true));
    let path = std::env::temp_dir().join(format!("swiglu-ckpt-{}.safetensors", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    let buf = SafetensorsBuffer::read(&path);
    std::fs::remove_file(&path).unwrap();
    let buf = buf.unwrap();
    assert_eq!(buf.as_bytes(), &file[..]);
    let ck = buf.checkpoint().unwrap();
    // With or without the trailing dot.
    for p in ["transformer.h.0.ffn", "transformer.h.0.ffn."] {
        let t = ck.ffn(p).unwrap();
        assert_eq!((t.k(), t.n()), (k, n));
        assert_eq!(t.down().unwrap().shape(), &[k, n]);
    }
    assert!(ck.names().contains(&"transformer.h.0.ffn.up_proj.bias"));

    // Bare names with an empty prefix.
    let file = write(&f.entries("", true, false));
    let ck = Checkpoint::parse(&file).unwrap();
    assert!(ck.ffn("").unwrap().is_merged());

    let missing = std::env::temp_dir().join("swiglu-no-such-file.safetensors");
    let e = SafetensorsBuffer::read(&missing).unwrap_err();
    assert!(
        matches!(&e, GluError::Checkpoint(s) if s.contains("swiglu-no-such-file")),
        "{e}"
    );
}

#[test]
fn memory_mapped_files_are_used_in_place() {
    // Every dtype, separate and merged with biases, among decoys: the mapped
    // buffer gives the same FFN as the read one, with the weights pointing
    // into the map itself.
    fn case<T: Element + bytemuck::Pod>(merged: bool) {
        let (k, n) = (24, 40);
        let f: Ffn<T> = ffn(k, n, 20);
        let mut entries = decoys::<T>(k, n);
        entries.extend(f.entries(&layer_prefix(5), merged, true));
        let file = write(&entries);
        let path = std::env::temp_dir().join(format!(
            "swiglu-map-{}-{:?}-{merged}.safetensors",
            std::process::id(),
            T::DTYPE
        ));
        std::fs::write(&path, &file).unwrap();
        // SAFETY: this test's own temporary file, written above and removed
        // only after the map is dropped; nothing else touches it.
        let buf = unsafe { SafetensorsBuffer::map(&path) }.unwrap();
        assert!(buf.is_mapped());
        assert_eq!(buf.as_bytes(), &file[..]);
        {
            let ck = buf.checkpoint().unwrap();
            let typed = ck.ffn_layer(5).unwrap().typed::<T>().unwrap();
            assert!(typed.is_zero_copy());
            let w = typed.weights().unwrap();
            let range = buf.as_bytes().as_ptr_range();
            assert!(range.contains(&(w.gate().as_ptr() as *const u8)));
            assert!(range.contains(&(w.up().as_ptr() as *const u8)));
            assert_eq!((w.gate(), w.up()), (&f.gate[..], &f.up[..]));
            assert_eq!(w.bias_gate().unwrap(), &f.bg[..]);
            let x: Vec<T> = vals(3 * k, 1.0, 8);
            let got = cpu::forward_alloc(&x, &[3, k], &w, Activation::Silu).unwrap();
            let want = cpu::forward_alloc(&x, &[3, k], &f.weights(true), Activation::Silu);
            assert_eq!(got, want.unwrap());
        }
        let clone = buf.clone(); // shares the map
        drop(buf);
        assert_eq!(clone.as_bytes(), &file[..]);
        drop(clone);
        std::fs::remove_file(&path).unwrap();
    }
    for merged in [false, true] {
        case::<f32>(merged);
        case::<f16>(merged);
        case::<bf16>(merged);
    }
    let missing = std::env::temp_dir().join("swiglu-no-such-file-to-map.safetensors");
    // SAFETY: the file does not exist; nothing is mapped.
    let e = unsafe { SafetensorsBuffer::map(&missing) }.unwrap_err();
    assert!(
        matches!(&e, GluError::Checkpoint(s) if s.contains("swiglu-no-such-file-to-map")),
        "{e}"
    );
}

#[test]
fn unaligned_data_falls_back_to_a_copy() {
    let (k, n) = (6, 10);
    let f: Ffn<f16> = ffn(k, n, 3);
    let file = write(&f.entries(&layer_prefix(0), false, true));
    // Place the file at an odd address: every 2-byte tensor is misaligned.
    let mut shifted = vec![0u8; file.len() + 1];
    shifted[1..].copy_from_slice(&file);
    let ck = Checkpoint::parse(&shifted[1..]).unwrap();
    let typed = ck.ffn_layer(0).unwrap().typed::<f16>().unwrap();
    assert!(!typed.is_zero_copy());
    let w = typed.weights().unwrap();
    assert_eq!(w.gate(), &f.gate[..]);
    assert_eq!(w.up(), &f.up[..]);
    assert_eq!(w.bias_gate().unwrap(), &f.bg[..]);
    let x: Vec<f16> = vals(4 * k, 1.0, 8);
    assert_eq!(
        cpu::forward_alloc(&x, &[4, k], &w, Activation::Silu).unwrap(),
        cpu::forward_alloc(&x, &[4, k], &f.weights(true), Activation::Silu).unwrap()
    );
}

fn err_of(entries: &[Entry], layer: usize) -> GluError {
    let file = write(entries);
    let ck = Checkpoint::parse(&file).unwrap();
    ck.ffn_layer(layer).unwrap_err()
}

#[test]
fn missing_tensors_are_named() {
    let (k, n) = (4, 6);
    let f: Ffn<f32> = ffn(k, n, 0);
    let p = layer_prefix(2);
    // Nothing for layer 5.
    let e = err_of(&f.entries(&p, false, false), 5);
    match &e {
        GluError::MissingTensor { name, note } => {
            assert_eq!(name, "model.layers.5.mlp.gate_proj.weight");
            assert!(note.contains("gate_up_proj"), "{e}");
        }
        _ => panic!("{e:?}"),
    }
    // Only up_proj present.
    let only_up: Vec<Entry> = f
        .entries(&p, false, false)
        .into_iter()
        .filter(|e| !e.0.contains("gate_proj"))
        .collect();
    let e = err_of(&only_up, 2);
    assert!(
        matches!(&e, GluError::MissingTensor { name, .. } if name == "model.layers.2.mlp.gate_proj.weight"),
        "{e:?}"
    );
    assert!(e.to_string().contains("up_proj.weight` is present"), "{e}");
    // Only gate_proj present.
    let only_gate: Vec<Entry> = f
        .entries(&p, false, false)
        .into_iter()
        .filter(|e| !e.0.contains("up_proj"))
        .collect();
    let e = err_of(&only_gate, 2);
    assert!(
        matches!(&e, GluError::MissingTensor { name, .. } if name == "model.layers.2.mlp.up_proj.weight"),
        "{e:?}"
    );
    // A single tensor by name.
    let file = write(&f.entries(&p, false, false));
    let ck = Checkpoint::parse(&file).unwrap();
    assert!(
        matches!(ck.tensor("nope"), Err(GluError::MissingTensor { name, .. }) if name == "nope")
    );
}

#[test]
fn dtype_errors_are_named() {
    let (k, n) = (4, 6);
    let p = layer_prefix(0);
    let g: Ffn<bf16> = ffn(k, n, 0);
    let u: Ffn<f16> = ffn(k, n, 1);
    // gate bf16, up f16.
    let entries = vec![
        entry(&format!("{p}gate_proj.weight"), &[n, k], &g.gate),
        entry(&format!("{p}up_proj.weight"), &[n, k], &u.up),
    ];
    match err_of(&entries, 0) {
        GluError::TensorDType {
            name,
            found,
            expected,
        } => {
            assert_eq!(name, "model.layers.0.mlp.up_proj.weight");
            assert_eq!(found, "F16");
            assert!(expected.starts_with("BF16"), "{expected}");
        }
        e => panic!("{e:?}"),
    }
    // A bias of another dtype.
    let mut entries = g.entries(&p, false, false);
    entries.push(entry(
        &format!("{p}up_proj.bias"),
        &[n],
        &vals::<f32>(n, 1.0, 3),
    ));
    assert!(matches!(
        err_of(&entries, 0),
        GluError::TensorDType { name, .. } if name.ends_with("up_proj.bias")
    ));
    // Asking for the wrong element type.
    let file = write(&g.entries(&p, true, false));
    let ck = Checkpoint::parse(&file).unwrap();
    let t = ck.ffn_layer(0).unwrap();
    match t.typed::<f32>() {
        Err(GluError::TensorDType { name, found, .. }) => {
            assert_eq!(name, "model.layers.0.mlp.gate_up_proj.weight");
            assert_eq!(found, "BF16");
        }
        other => panic!("{other:?}"),
    }
    // An unsupported dtype (int8 weights).
    let entries = vec![
        Entry(
            format!("{p}gate_proj.weight"),
            Dtype::I8,
            vec![n, k],
            vec![1; n * k],
        ),
        Entry(
            format!("{p}up_proj.weight"),
            Dtype::I8,
            vec![n, k],
            vec![1; n * k],
        ),
    ];
    match err_of(&entries, 0) {
        GluError::TensorDType { name, found, .. } => {
            assert!(name.ends_with("gate_proj.weight"));
            assert_eq!(found, "I8");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn shape_errors_are_named() {
    let (k, n) = (4, 6);
    let p = layer_prefix(1);
    let f: Ffn<f32> = ffn(k, n, 0);
    let name = |s: &str| format!("{p}{s}");
    let shape_err = |entries: Vec<Entry>, want: &str| match err_of(&entries, 1) {
        GluError::TensorShape { name, .. } => assert_eq!(name, format!("{p}{want}")),
        e => panic!("{want}: {e:?}"),
    };
    // up [N, K+1] vs gate [N, K].
    shape_err(
        vec![
            entry(&name("gate_proj.weight"), &[n, k], &f.gate),
            entry(
                &name("up_proj.weight"),
                &[n, k + 1],
                &vals::<f32>(n * (k + 1), 1.0, 1),
            ),
        ],
        "up_proj.weight",
    );
    // Transposed up: [K, N] vs [N, K].
    shape_err(
        vec![
            entry(&name("gate_proj.weight"), &[n, k], &f.gate),
            entry(&name("up_proj.weight"), &[k, n], &f.up),
        ],
        "up_proj.weight",
    );
    // 1-D gate.
    shape_err(
        vec![
            entry(&name("gate_proj.weight"), &[n * k], &f.gate),
            entry(&name("up_proj.weight"), &[n * k], &f.up),
        ],
        "gate_proj.weight",
    );
    // Merged with an odd first dim.
    shape_err(
        vec![entry(
            &name("gate_up_proj.weight"),
            &[2 * n - 1, k],
            &vals::<f32>((2 * n - 1) * k, 1.0, 1),
        )],
        "gate_up_proj.weight",
    );
    // A bias of the wrong length.
    let mut e = f.entries(&p, false, false);
    e.push(entry(
        &name("gate_proj.bias"),
        &[n + 1],
        &vals::<f32>(n + 1, 1.0, 1),
    ));
    shape_err(e, "gate_proj.bias");
    // A merged bias of length N instead of 2N.
    let mut e = f.entries(&p, true, false);
    e.push(entry(&name("gate_up_proj.bias"), &[n], &f.bg));
    shape_err(e, "gate_up_proj.bias");
    // down_proj stored [N, K] instead of [K, N].
    let mut e: Vec<Entry> = f
        .entries(&p, false, false)
        .into_iter()
        .filter(|e| !e.0.contains("down"))
        .collect();
    e.push(entry(&name("down_proj.weight"), &[n, k], &f.down));
    shape_err(e, "down_proj.weight");
}

#[test]
fn corrupt_files_are_errors() {
    assert!(matches!(
        Checkpoint::parse(b"not a safetensors file"),
        Err(GluError::Checkpoint(_))
    ));
    let f: Ffn<f32> = ffn(4, 4, 0);
    let file = write(&f.entries("", false, false));
    assert!(matches!(
        Checkpoint::parse(&file[..file.len() - 1]),
        Err(GluError::Checkpoint(_))
    ));
}

#[test]
fn cli_runs_on_checkpoint_weights() {
    let (k, n) = (24, 40);
    let f: Ffn<bf16> = ffn(k, n, 4);
    let mut entries = f.entries(&layer_prefix(2), true, true);
    entries.extend(decoys::<bf16>(k, n));
    let path = std::env::temp_dir().join(format!("swiglu-cli-{}.safetensors", std::process::id()));
    std::fs::write(&path, write(&entries)).unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_swiglu"))
            .args(["--device", "cpu", "--m", "8", "--iters", "1", "--weights"])
            .arg(&path)
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&["--layer", "2"]);
    let bad_layer = run(&["--layer", "4"]);
    let prefix = run(&["--prefix", "model.layers.{L}.mlp", "--layer", "7"]);
    let bad_dtype = run(&["--layer", "2", "--dtype", "f32"]);
    std::fs::remove_file(&path).unwrap();

    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(ok.status.success(), "{}", text(&ok));
    let out = text(&ok);
    assert!(out.contains("M=8 K=24 N=40 bf16"), "{out}");
    assert!(out.contains("merged gate_up_proj"), "{out}");
    assert!(out.contains("bias=true"), "{out}");
    assert!(out.contains("| fused (cpu) |"), "{out}");

    assert!(!bad_layer.status.success());
    assert!(
        text(&bad_layer).contains("model.layers.4.mlp.gate_proj.weight"),
        "{}",
        text(&bad_layer)
    );
    assert!(prefix.status.success(), "{}", text(&prefix));
    assert!(
        text(&prefix).contains("`model.layers.7.mlp.*`"),
        "{}",
        text(&prefix)
    );
    assert!(!bad_dtype.status.success());
    assert!(
        text(&bad_dtype).contains("--dtype f32"),
        "{}",
        text(&bad_dtype)
    );
}
