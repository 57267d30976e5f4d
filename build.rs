//! Compiles `kernels/*.cu` into fatbins (SASS for sm_80 and sm_90a, PTX for
//! compute_80) in `OUT_DIR` and generates `OUT_DIR/kernels.rs`, which embeds
//! them. Without nvcc the crate still builds, CPU-only, with a warning;
//! `SWIGLU_REQUIRE_KERNELS=1` turns that into a build error.
//!
//! `SWIGLU_KERNEL_CACHE=DIR` (opt-in) keeps each compiled fatbin in DIR under
//! a hash of what goes into it: nvcc's path and `--version`; the path, size
//! and modification time of every file in the toolkit's `bin`, `nvvm` and
//! `include` (cicc, ptxas and the headers can be versioned apart from nvcc);
//! the flags, with `SWIGLU_NVCC_FLAGS` and the environment nvcc reads
//! (`NVCC_PREPEND_FLAGS`, `NVCC_APPEND_FLAGS`, `NVCC_CCBIN`, `CPATH`,
//! `CPLUS_INCLUDE_PATH`); and the bytes of every `kernels/*.cu`/`*.cuh`. A
//! later build with another feature set or profile (clippy, rustdoc,
//! candle) then copies the fatbin instead of running nvcc again. Headers
//! reached through `-I`/`-include` in `SWIGLU_NVCC_FLAGS` outside those
//! directories, and the host compiler's own headers, are not in the key:
//! leave the cache unset when experimenting with those.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const ARCH_FLAGS: &[&str] = &[
    "-gencode=arch=compute_80,code=sm_80",
    "-gencode=arch=compute_90a,code=sm_90a",
    "-gencode=arch=compute_80,code=compute_80",
];

fn main() {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let kernels_rs = out_dir.join("kernels.rs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kernels");
    for var in [
        "NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "SWIGLU_REQUIRE_KERNELS",
        "SWIGLU_NVCC_FLAGS",
        "SWIGLU_KERNEL_CACHE",
    ]
    .iter()
    .chain(NVCC_ENV)
    {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let require = env::var("SWIGLU_REQUIRE_KERNELS").is_ok_and(|v| v == "1");

    let mut sources: Vec<PathBuf> = std::fs::read_dir("kernels")
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    sources.retain(|p| p.extension().is_some_and(|e| e == "cu" || e == "cuh"));
    sources.sort();
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }
    let cu: Vec<&PathBuf> = sources
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();

    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        write_stub(&kernels_rs, "the `cuda` feature is off");
        return;
    }
    let Some(nvcc) = find_nvcc() else {
        println!("cargo:rerun-if-env-changed=PATH");
        let why = "nvcc not found (set NVCC or CUDA_HOME, or put nvcc on PATH)";
        if require {
            panic!("SWIGLU_REQUIRE_KERNELS=1 but {why}");
        }
        println!("cargo:warning=swiglu: {why}; building without CUDA kernels (CPU path only)");
        write_stub(&kernels_rs, why);
        return;
    };

    let extra: Vec<String> = env::var("SWIGLU_NVCC_FLAGS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let cache = env::var_os("SWIGLU_KERNEL_CACHE")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .map(|dir| {
            let key = cache_key(&nvcc, &sources, &extra);
            (dir, key)
        });
    // Compile the kernel families in parallel: each is one nvcc process.
    let results: Vec<(String, Result<PathBuf, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = cu
            .iter()
            .map(|src| {
                let (nvcc, out_dir, extra, cache) = (&nvcc, &out_dir, &extra, &cache);
                let sources = &sources;
                s.spawn(move || {
                    let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
                    let r = match cache {
                        Some((dir, key)) => {
                            compile_cached(nvcc, src, out_dir, &stem, extra, sources, dir, key)
                        }
                        None => compile(nvcc, src, out_dir, &stem, extra),
                    };
                    (stem, r)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("nvcc thread"))
            .collect()
    });

    let failures: Vec<String> = results
        .iter()
        .filter_map(|(stem, r)| r.as_ref().err().map(|e| format!("{stem}: {e}")))
        .collect();
    if !failures.is_empty() {
        let msg = failures.join("\n");
        if require {
            panic!("SWIGLU_REQUIRE_KERNELS=1 and kernel compilation failed:\n{msg}");
        }
        for line in msg.lines().take(40) {
            println!("cargo:warning=swiglu: {line}");
        }
        println!(
            "cargo:warning=swiglu: kernel build failed; building without CUDA kernels (CPU path only)"
        );
        write_stub(&kernels_rs, "kernel compilation failed at build time");
        return;
    }

    let mut code = String::new();
    writeln!(
        code,
        "/// Whether `build.rs` compiled and embedded the CUDA kernels."
    )
    .unwrap();
    writeln!(code, "pub const KERNELS_BUILT: bool = true;").unwrap();
    writeln!(
        code,
        "/// Why the kernels are missing (empty when they were built)."
    )
    .unwrap();
    writeln!(code, "pub const KERNELS_MISSING_REASON: &str = \"\";").unwrap();
    writeln!(
        code,
        "/// `(module name, fatbin image)` for every kernel family."
    )
    .unwrap();
    writeln!(code, "pub static FATBINS: &[(&str, &[u8])] = &[").unwrap();
    for (stem, r) in &results {
        let path = r.as_ref().unwrap();
        writeln!(
            code,
            "    ({stem:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    writeln!(code, "];").unwrap();
    std::fs::write(&kernels_rs, code).expect("write kernels.rs");
}

/// The nvcc flags every kernel family is compiled with (besides
/// [`ARCH_FLAGS`] and `SWIGLU_NVCC_FLAGS`).
const NVCC_FLAGS: &[&str] = &[
    "-O3",
    "-std=c++17",
    "-lineinfo",
    "-Xptxas",
    "-v",
    // The fatbins shrink about 10x (SASS and PTX are repetitive);
    // the driver decompresses them when the module loads.
    "-Xfatbin=-compress-all",
    "-Ikernels",
];

/// The environment nvcc reads itself: flags around the command line, the
/// host compiler, extra include directories.
const NVCC_ENV: &[&str] = &[
    "NVCC_PREPEND_FLAGS",
    "NVCC_APPEND_FLAGS",
    "NVCC_CCBIN",
    "CPATH",
    "CPLUS_INCLUDE_PATH",
];

/// 64-bit FNV-1a over everything that determines a fatbin (see the module
/// docs): a cache key, not a security boundary.
fn cache_key(nvcc: &Path, sources: &[PathBuf], extra: &[String]) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        // Length first, so that concatenations cannot collide trivially.
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    feed(nvcc.as_os_str().as_encoded_bytes());
    let version = Command::new(nvcc).arg("--version").output();
    feed(version.as_ref().map_or(&[][..], |o| &o.stdout[..]));
    // The rest of the toolkit, which can be versioned apart from nvcc (the
    // PyPI packages: cicc in nvidia-nvvm, the headers in
    // nvidia-cuda-runtime): every file's path, size and modification time.
    let mut toolkit = Vec::new();
    if let Some(root) = nvcc.parent().and_then(Path::parent) {
        for sub in ["bin", "nvvm", "include"] {
            list_files(&root.join(sub), 8, &mut toolkit);
        }
    }
    toolkit.sort();
    for (path, len, mtime) in &toolkit {
        feed(path.as_os_str().as_encoded_bytes());
        feed(&len.to_le_bytes());
        feed(&mtime.to_le_bytes());
    }
    for f in NVCC_FLAGS.iter().chain(ARCH_FLAGS) {
        feed(f.as_bytes());
    }
    for f in extra {
        feed(f.as_bytes());
    }
    for var in NVCC_ENV {
        feed(var.as_bytes());
        feed(env::var_os(var).unwrap_or_default().as_encoded_bytes());
    }
    for src in sources {
        feed(src.as_os_str().as_encoded_bytes());
        feed(&std::fs::read(src).unwrap_or_default());
    }
    format!("{h:016x}")
}

/// Appends `(path, size, mtime in ns)` of every file under `dir` (following
/// symbolic links, at most `depth` levels down) to `out`.
fn list_files(dir: &Path, depth: u32, out: &mut Vec<(PathBuf, u64, u128)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth > 0 {
                list_files(&path, depth - 1, out);
            }
        } else {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push((path, meta.len(), mtime));
        }
    }
}

/// [`compile`] through the cache: a hit copies the fatbin and its ptxas
/// report into `out_dir`; a miss compiles and then stores both (synced, then
/// renamed from a temporary name, so a concurrent build never reads a
/// partial file). The key is computed again after the compile, and nothing
/// is stored when an input changed while nvcc ran.
#[allow(clippy::too_many_arguments)]
fn compile_cached(
    nvcc: &Path,
    src: &Path,
    out_dir: &Path,
    stem: &str,
    extra: &[String],
    sources: &[PathBuf],
    dir: &Path,
    key: &str,
) -> Result<PathBuf, String> {
    let cached_bin = dir.join(format!("{stem}-{key}.fatbin"));
    let cached_report = dir.join(format!("{stem}-{key}.ptxas.txt"));
    let out = out_dir.join(format!("{stem}.fatbin"));
    let report = out_dir.join(format!("{stem}.ptxas.txt"));
    let nonempty = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0);
    if nonempty(&cached_bin)
        && nonempty(&cached_report)
        && std::fs::copy(&cached_bin, &out).is_ok()
        && std::fs::copy(&cached_report, &report).is_ok()
    {
        return Ok(out);
    }
    let out = compile(nvcc, src, out_dir, stem, extra)?;
    // A cache that cannot be written costs time, not correctness.
    if cache_key(nvcc, sources, extra) != key || std::fs::create_dir_all(dir).is_err() {
        return Ok(out);
    }
    // Unique per process and moment (builds on several machines may share
    // the directory); the stem in the name keeps this process's threads apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tag = format!("tmp-{}-{nanos}", std::process::id());
    for (from, to) in [(&out, &cached_bin), (&report, &cached_report)] {
        let tmp = to.with_extension(&tag);
        let stored = std::fs::copy(from, &tmp).is_ok()
            && std::fs::File::open(&tmp).and_then(|f| f.sync_all()).is_ok()
            && std::fs::rename(&tmp, to).is_ok();
        if !stored {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(out)
}

fn compile(
    nvcc: &Path,
    src: &Path,
    out_dir: &Path,
    stem: &str,
    extra: &[String],
) -> Result<PathBuf, String> {
    let out = out_dir.join(format!("{stem}.fatbin"));
    let output = Command::new(nvcc)
        .arg("-fatbin")
        .args(NVCC_FLAGS)
        .args(ARCH_FLAGS)
        .args(extra)
        .arg(src)
        .arg("-o")
        .arg(&out)
        .output()
        .map_err(|e| format!("could not run {}: {e}", nvcc.display()))?;
    // Keep the ptxas report (registers, spills, stack) next to the fatbin.
    let mut report = String::from_utf8_lossy(&output.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&output.stderr));
    let _ = std::fs::write(out_dir.join(format!("{stem}.ptxas.txt")), &report);
    if !output.status.success() {
        let tail: Vec<&str> = report
            .lines()
            .filter(|l| !l.starts_with("ptxas info"))
            .collect();
        return Err(format!(
            "nvcc exited with {}:\n{}",
            output.status,
            tail.join("\n")
        ));
    }
    Ok(out)
}

fn write_stub(path: &Path, why: &str) {
    let code = format!(
        "/// Whether `build.rs` compiled and embedded the CUDA kernels.\n\
         pub const KERNELS_BUILT: bool = false;\n\
         /// Why the kernels are missing (empty when they were built).\n\
         pub const KERNELS_MISSING_REASON: &str = {why:?};\n\
         /// `(module name, fatbin image)` for every kernel family.\n\
         pub static FATBINS: &[(&str, &[u8])] = &[];\n"
    );
    std::fs::write(path, code).expect("write kernels.rs");
}

fn find_nvcc() -> Option<PathBuf> {
    if let Some(p) = env::var_os("NVCC").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = env::var_os(var) {
            let p = Path::new(&root).join("bin").join("nvcc");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|d| d.join("nvcc"))
            .find(|p| p.is_file())
    })
}
