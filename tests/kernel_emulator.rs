//! The CUDA kernels' own source on the host emulator (`kernels/emu`, see its
//! README): each C++ test there is compiled with the host C++ compiler and run
//! in its quick mode, so `cargo test` checks the kernels' logic (indices,
//! tails, pipelines, barriers, cross-block protocols, epilogues) against
//! double references on a machine without a GPU. `scripts/check-kernels.sh`
//! (CI) runs the full cases and the mutants.
//!
//! Needs a C++17 compiler (`$CXX`, else `g++`, else `c++`) on a Unix host
//! (the emulator switches fibers with `ucontext`); without one the test says
//! so and passes, unless `SWIGLU_REQUIRE_EMU=1`.

#[cfg(unix)]
mod emu {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const TESTS: &[&str] = &[
        "mma_test",
        "skinny_test",
        "hopper_test",
        "train_test",
        "simt_elt_test",
    ];

    fn compiler() -> Option<String> {
        let candidates = std::env::var("CXX")
            .ok()
            .into_iter()
            .chain(["g++".to_string(), "c++".to_string()]);
        candidates.into_iter().find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
    }

    /// Compiles and runs one emulator test; returns its last line or why it failed.
    fn run(cxx: &str, root: &Path, out: &Path, name: &str) -> Result<String, String> {
        let exe = out.join(name);
        let src = root.join("kernels/emu").join(format!("{name}.cpp"));
        let inc = |p: &str| format!("-I{}", root.join(p).display());
        let cc = Command::new(cxx)
            .args(["-std=c++17", "-O1", "-U_FORTIFY_SOURCE", "-w"])
            .args([
                inc("kernels/emu/include"),
                inc("kernels/emu"),
                inc("kernels"),
            ])
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .output()
            .map_err(|e| format!("{name}: cannot run {cxx}: {e}"))?;
        if !cc.status.success() {
            return Err(format!(
                "{name}: does not compile:\n{}",
                String::from_utf8_lossy(&cc.stderr)
            ));
        }
        let r = Command::new(&exe)
            .arg("quick")
            .output()
            .map_err(|e| format!("{name}: cannot run: {e}"))?;
        let stdout = String::from_utf8_lossy(&r.stdout);
        let stderr = String::from_utf8_lossy(&r.stderr);
        if !r.status.success() {
            let failures: Vec<&str> = stdout
                .lines()
                .chain(stderr.lines())
                .filter(|l| {
                    l.starts_with("FAIL") || l.starts_with("emu: FAIL") || l.starts_with("    ")
                })
                .take(12)
                .collect();
            return Err(format!(
                "{name}: {} ({})\n{}",
                r.status,
                stdout.lines().last().unwrap_or(""),
                failures.join("\n")
            ));
        }
        Ok(stdout.lines().last().unwrap_or("").to_string())
    }

    #[test]
    fn kernels_pass_on_the_host_emulator() {
        let require = std::env::var("SWIGLU_REQUIRE_EMU").as_deref() == Ok("1");
        let Some(cxx) = compiler() else {
            assert!(
                !require,
                "SWIGLU_REQUIRE_EMU=1 but no C++ compiler ($CXX, g++, c++)"
            );
            eprintln!("skipped: no C++ compiler ($CXX, g++, c++) for the kernel emulator");
            return;
        };
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kernel-emulator");
        std::fs::create_dir_all(&out).expect("create the emulator's build directory");
        // Two at a time: the larger tests take a while to compile.
        let results: Vec<Result<String, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = TESTS
                .chunks(TESTS.len().div_ceil(2))
                .map(|chunk| {
                    let (cxx, root, out) = (&cxx, &root, &out);
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|name| run(cxx, root, out, name))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("emulator test thread"))
                .collect()
        });
        let mut failed = Vec::new();
        for r in results {
            match r {
                Ok(line) => eprintln!("{line}"),
                Err(e) => failed.push(e),
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    }
}
