#!/usr/bin/env python3
"""numpy (OpenBLAS) baseline for the CPU benchmark in benches/cpu.rs.

Computes the *unfused* gated FFN at the benchmark's shape,

    out = silu(x @ Wg.T) * (x @ Wu.T)      x: [M, K], Wg, Wu: [N, K] (NK layout)

as two float32 matmuls followed by a separate SiLU-and-multiply pass, times
it (median over repeats) and prints GFLOP/s counted as 4*M*N*K, the same
convention as `cargo bench --bench cpu`, so the two can be compared side by
side. Threading is whatever OpenBLAS picks by default; this script does not
touch OPENBLAS_* / OMP_* variables (set them yourself when running it if you
want to pin the thread count).

Usage: python3 scripts/numpy_baseline.py [--m 512] [--k 1024] [--n 2816] [--repeats 15]
"""

import argparse
import statistics
import time

import numpy as np


def silu(z):
    # float32 throughout, like the Rust paths.
    return z / (np.float32(1.0) + np.exp(-z))


def unfused(x, wg, wu):
    g = x @ wg.T  # [M, N] intermediate
    u = x @ wu.T  # [M, N] intermediate
    return silu(g) * u


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--m", type=int, default=512)
    p.add_argument("--k", type=int, default=1024)
    p.add_argument("--n", type=int, default=2816)
    p.add_argument("--repeats", type=int, default=15)
    a = p.parse_args()

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (a.m, a.k)).astype(np.float32)
    scale = np.float32(1.0 / np.sqrt(a.k))
    wg = (rng.uniform(-1, 1, (a.n, a.k)) * scale).astype(np.float32)
    wu = (rng.uniform(-1, 1, (a.n, a.k)) * scale).astype(np.float32)

    out = unfused(x, wg, wu)  # warm-up (thread pool start, page faults)
    assert out.dtype == np.float32 and out.shape == (a.m, a.n)

    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        unfused(x, wg, wu)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    flops = 4.0 * a.m * a.n * a.k

    # The same split for the matmuls alone, to show what the elementwise pass costs.
    mm = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        x @ wg.T
        x @ wu.T
        mm.append(time.perf_counter() - t)
    mm_med = statistics.median(mm)

    cfg = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    blas = cfg.get("Build Dependencies", {}).get("blas", {}) if isinstance(cfg, dict) else {}
    print(f"numpy {np.__version__}, BLAS: {blas.get('name', '?')} {blas.get('version', '')}".rstrip())
    print(f"shape M={a.m} K={a.k} N={a.n} float32 SiLU, unfused (two matmuls + silu*mul)")
    print(
        f"median of {a.repeats}: {med * 1e3:.2f} ms = {flops / med / 1e9:.1f} GFLOP/s "
        f"(matmuls alone {mm_med * 1e3:.2f} ms = {flops / mm_med / 1e9:.1f} GFLOP/s)"
    )
    print(f"intermediates: {2 * a.m * a.n * 4 / 2**20:.2f} MiB (2*M*N*4 bytes)")


if __name__ == "__main__":
    main()
