//! Shape and repetition overrides shared by the GPU benches.
//!
//! The benches' default shapes are the issues' (bf16, K = 4096, N = 11008 and
//! 14336, M up to 16384). These environment variables replace them, so that
//! the same binaries also run at shapes a host emulator can execute
//! (`scripts/emu-bench.sh` runs them on the stand-in driver of
//! `kernels/emu/standin` to prove every table, column and JSON field comes
//! out before a GPU session spends its minutes on them):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SWIGLU_BENCH_K` | K | 4096 |
//! | `SWIGLU_BENCH_N` | forward N list (the first also for f32, event tracking, training) | bench's own |
//! | `SWIGLU_BENCH_M` | forward M list | bench's own |
//! | `SWIGLU_BENCH_F32_M` | f32 table M list | bench's own |
//! | `SWIGLU_BENCH_TRAIN_M` | training step M list | bench's own |
//! | `SWIGLU_BENCH_ROUNDS` | at most this many timing rounds, warm-up launches and queued pairs | bench's own |
//!
//! Lists are comma-separated positive integers; a malformed value stops
//! the bench with a message naming the variable (it is a harness input,
//! not user data).

/// `name`'s list of positive integers, or `default` when unset.
pub fn list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Err(_) => default.to_vec(),
        Ok(v) => {
            let parsed: Option<Vec<usize>> = v
                .split(',')
                .map(|s| s.trim().parse::<usize>().ok().filter(|&x| x > 0))
                .collect();
            match parsed {
                Some(l) if !l.is_empty() => l,
                _ => panic!("{name}={v:?}: expected comma-separated positive integers"),
            }
        }
    }
}

/// `name`'s single positive integer, or `default`.
pub fn one(name: &str, default: usize) -> usize {
    match list(name, &[default])[..] {
        [x] => x,
        _ => panic!("{name}: expected one positive integer"),
    }
}

/// `default` repetitions, capped by `SWIGLU_BENCH_ROUNDS` when set.
pub fn reps(default: usize) -> usize {
    default.min(one("SWIGLU_BENCH_ROUNDS", usize::MAX))
}

/// True when any shape variable is set: the results are then not the
/// issues' shapes, and the tables say so.
pub fn overridden() -> bool {
    [
        "SWIGLU_BENCH_K",
        "SWIGLU_BENCH_N",
        "SWIGLU_BENCH_M",
        "SWIGLU_BENCH_F32_M",
        "SWIGLU_BENCH_TRAIN_M",
        "SWIGLU_BENCH_ROUNDS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// The line a results table starts with when [`overridden`] holds.
pub fn banner(md: &mut String) {
    if overridden() {
        md.insert_str(
            0,
            "Shapes and repetitions set by SWIGLU_BENCH_* (not the issues' shapes).\n\n",
        );
    }
}
