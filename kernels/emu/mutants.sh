#!/usr/bin/env bash
# Shows that the emulator's kernel tests can fail: each mutant below is one
# small, plausible bug planted in a copy of kernels/ (a missing barrier, a
# short cp.async wait, an off-by-one tail predicate, a wrong fragment map in
# the emulator itself...). Each must make its test exit non-zero (a failed
# check, an emulator fault, or a crash on a guard page). Run from the repo
# root; uses $CXX (g++). Exit 0 = every mutant was caught.
#   bash kernels/emu/mutants.sh
set -u
CXX=${CXX:-g++}
root=$(pwd)
work=$(mktemp -d /tmp/emu-mutants.XXXXXX)
trap 'rm -rf "$work"' EXIT
flags=(-std=c++17 -O2 -U_FORTIFY_SOURCE)
caught=0
missed=0

# mutant NAME FILE PERL-SUBSTITUTION TEST [ARGS]: FILE relative to kernels/.
mutant() {
  local name=$1 file=$2 subst=$3 test=$4
  shift 4
  rm -rf "$work/k" && cp -r "$root/kernels" "$work/k"
  if ! perl -0pi -e "$subst or die 'no match'" "$work/k/$file" 2>/dev/null; then
    echo "mutants: $name: the substitution no longer matches $file (update the mutant)"
    missed=$((missed + 1))
    return
  fi
  if ! "$CXX" "${flags[@]}" -I "$work/k/emu/include" -I "$work/k/emu" -I "$work/k" \
      "$work/k/emu/$test.cpp" -o "$work/t" 2> "$work/cc.log"; then
    echo "mutants: $name: does not compile (update the mutant)"
    head -5 "$work/cc.log"
    missed=$((missed + 1))
    return
  fi
  local rc=0
  bash -c 'timeout 60 "$@"; exit $?' _ "$work/t" "$@" > "$work/run.log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "mutants: $name: NOT caught by $test"
    missed=$((missed + 1))
  else
    local why
    why=$(grep -m1 -E '^FAIL|emu: FAIL' "$work/run.log" | cut -c1-120)
    if [ -z "$why" ]; then
      if [ "$rc" -eq 124 ]; then why="timed out after 60 s (a hang)"; else why="exit status $rc (a fault: guard page or stack)"; fi
    fi
    echo "mutants: $name: caught: $why"
    caught=$((caught + 1))
  fi
}

# ---- fused_glu_mma (mma_test quick) ----
# The production loop's (16 warps) wait one k-tile short.
mutant mma-wait-short fused_glu_mma.cu \
  's/(mma_frags<T, MI>\(acc_g, acc_u, f1\);\n      )cp_async_wait<kStages - 2>\(\);/$1cp_async_wait<kStages - 1>();/s' \
  mma_test quick
# The mbarrier loops (P7 / P8 probes, session 18): a refill that does not
# wait for every warp to have read the stage's previous k-tile.
mutant mma-mbar-no-empty-wait fused_glu_mma.cu \
  's/if \(kr >= S\) mbar80_wait\(empty\(ws\), wphase \^ 1u\);//s' \
  mma_test quick
# ... a 16-warp loop whose warps release a stage as soon as it has landed,
# before reading it. (Released between its two ldmatrix steps instead, the
# bug is not caught: it needs a warp to stall inside that window while the
# others refill the stage, which the emulator's schedules, CTA-level skew
# only, do not produce.)
mutant mma-mbar-early-release fused_glu_mma.cu \
  's/(      const uint32_t st = ring.acquire\(\);\n)/$1      ring.release(lane);\n/s && s/(load_frags<T, LAYOUT, MI>\(f1, st, 1, warp_m, warp_n, lane\);\n)      ring.release\(lane\);\n/$1/s' \
  mma_test quick
# ... a consumer that waits for the wrong phase of its stage's full barrier.
mutant mma-mbar-full-parity fused_glu_mma.cu \
  's/mbar80_wait\(full\(rs\), rphase\);/mbar80_wait(full(rs), rphase ^ 1u);/s' \
  mma_test quick
# The production kernel's loop (16 warps since session 16) without its
# barrier per k-tile.
mutant mma-no-loop-barrier fused_glu_mma.cu \
  's/(mma_frags<T, MI>\(acc_g, acc_u, f1\);\n      cp_async_wait<kStages - 2>\(\);\n)      __syncthreads\(\);\n/$1/s' \
  mma_test quick
mutant mma-row-tail fused_glu_mma.cu 's/if \(row >= M\) continue;/if (row > M) continue;/' \
  mma_test quick
mutant mma-k-tail glu_swizzle.cuh 's/return row_ok && kin < k_left;/return row_ok && kin <= k_left;/' \
  mma_test quick
mutant mma-bias-col fused_glu_mma.cu \
  's/const float bu1 = has1 \? load_bias<T>\(bup, col \+ 1\)/const float bu1 = has1 ? load_bias<T>(bup, col)/' \
  mma_test quick
# ---- fused_glu_skinny: split-K and stream-K (skinny_test quick) ----
mutant skinny-wait-short fused_glu_skinny.cu \
  's/cp_async_wait<STAGES - 2>\(\);\n    __syncthreads\(\);\n    \{/cp_async_wait<STAGES - 1>();\n    __syncthreads();\n    {/' \
  skinny_test quick
mutant skinny-split-overlap fused_glu_skinny.cu \
  's/min\(K, k_begin \+ sp.k_per_split\)/min(K, k_begin + sp.k_per_split + 64)/' skinny_test quick
mutant skinny-counter-kept fused_glu_skinny.cu 's/if \(threadIdx.x == 0\) \*counter = 0u;//' \
  skinny_test quick
mutant skinny-no-release-fence fused_glu_skinny.cu \
  's/  __threadfence\(\);\n  __syncthreads\(\);\n  __shared__ unsigned int s_last;/  __syncthreads();\n  __shared__ unsigned int s_last;/' \
  skinny_test quick
mutant sk-ticket-count fused_glu_skinny.cu \
  's/take_ticket\(sk.counters \+ tile, \(unsigned int\)\(last - first \+ 1\)\)/take_ticket(sk.counters + tile, (unsigned int)(last - first))/' \
  skinny_test quick
mutant sk-contributor-slot glu_skinny.cuh 's/return s == 0 \? slot0 : 2 \* \(first \+ s\);/return s == 0 ? slot0 : 2 * (first + s) + 1;/' \
  skinny_test quick
mutant sk-segment-end glu_skinny.cuh 's/: k_tiles;\n  return s;/: k_tiles - 1;\n  return s;/' \
  skinny_test quick
# ---- fused_glu_skinny_rs (register streaming; skinny_test quick) ----
# x's two words of an mma step swapped: the k permutation no longer matches
# the weights'.
mutant rs-k-permutation fused_glu_skinny.cu \
  's/mma_16816<T>\(acc_g\[mb\], ag, word\(b\[d\]\[mb\], 2 \* s\), word\(b\[d\]\[mb\], 2 \* s \+ 1\)\)/mma_16816<T>(acc_g[mb], ag, word(b[d][mb], 2 * s + 1), word(b[d][mb], 2 * s))/' \
  skinny_test quick
# The k tail tested at the chunk's start, not this thread's 8 k.
mutant rs-k-tail fused_glu_skinny.cu 's/const bool kin = k \+ kt < k_end;/const bool kin = k < k_end;/' \
  skinny_test quick
# The accumulator's x row taken from the column half (e >> 1) in the direct store.
mutant rs-store-row fused_glu_skinny.cu \
  's/(const int64_t row = 8 \* mb \+ 2 \* t \+ )\(e & 1\);\n        if \(row < M\)/$1(e >> 1);\n        if (row < M)/' \
  skinny_test quick
# The second column half's rows never masked: row N.. of the weights read.
mutant rs-col-tail fused_glu_skinny.cu 's/ok1 = col1 < N;/ok1 = true;/' skinny_test quick
# ---- fused_glu_wgmma*: plain, staged, tail-split, cluster (hopper_test quick, full) ----
mutant wg-release-in-flight glu_wgmma_body.cuh 's/wgmma_wait<1>\(\);/wgmma_wait<2>();/' \
  hopper_test quick
mutant wg-full-parity glu_wgmma_body.cuh \
  's/\(full_bar\(s\), \(uint32_t\)\(it \/ kWgStages\) & 1u\)/(full_bar(s), (uint32_t)(it \/ kWgStages + 1) & 1u)/' \
  hopper_test quick
mutant wg-issue-before-data glu_wgmma_body.cuh \
  's/(\n\s*)mbar_wait_sched<CLUSTER>\(full_bar\(s\), \(uint32_t\)\(it \/ kWgStages\) & 1u\);(.*?wgmma_commit\(\);)/$2$1mbar_wait_sched<CLUSTER>(full_bar(s), (uint32_t)(it \/ kWgStages) & 1u);/s' \
  hopper_test quick
mutant wg-expect-tx glu_wgmma_body.cuh \
  's/mbar_arrive_expect_tx\(full_bar\(s\), kWgStageBytes\);/mbar_arrive_expect_tx(full_bar(s), kWgStageBytes - kWgBHalfBytes);/' \
  hopper_test quick
mutant wg-staged-no-read-wait glu_wgmma_body.cuh \
  's/(if \(EPI == GLU_EPI_OUT_TMA\) \{\n)        if \(store_thread\) tma_store_wait_read\(\);\n/$1/' \
  hopper_test quick
mutant wg-staged-no-proxy-fence glu_wgmma_body.cuh \
  's/fence_proxy_async_smem\(\);\n(\s*named_bar_sync\(1u \+ \(uint32_t\)cw, 128u\);\n\s*if \(store_thread && row_base < M\) \{\n\s*tma_store_2d\(tm_out)/$1/' \
  hopper_test quick
mutant wg-barriers-in-staging glu_wgmma_body.cuh \
  's/const uint32_t bars = staging \+ \(kStaged \? 2u \* kWgOutStageBytes : 0u\);/const uint32_t bars = staging + (kStaged ? kWgOutStageBytes + 64u : 0u);/' \
  hopper_test quick
mutant wg-ring-not-aligned glu_wgmma_body.cuh \
  's/const uint32_t ring = \(raw \+ 1023u\) & ~1023u;/const uint32_t ring = raw;/' hopper_test quick
mutant wg-no-wgmma-fence glu_wgmma_body.cuh 's/        wgmma_fence\(\);\n//' hopper_test quick
mutant wg-cluster-exit-unsynced glu_wgmma_body.cuh \
  's/(every such access has happened\)\.\n)  if \(CLUSTER\) cluster_sync_all\(\);/$1/' hopper_test quick
mutant wg-cluster-no-remote-release glu_wgmma_body.cuh \
  's/if \(CLUSTER\) mbar_arrive_remote\(empty_bar\(s\), rank \^ 1u\);//' hopper_test quick
mutant wg-split-no-release-fence glu_wgmma_body.cuh \
  's/__threadfence\(\);\n(\s*)atomicAdd\(flag, 1u\);/atomicAdd(flag, 1u);/' hopper_test
mutant wg-split-early-finisher glu_wgmma_body.cuh \
  's/< \(unsigned int\)\(un.parts - 1\)\) __nanosleep/< (unsigned int)(un.parts - 2)) __nanosleep/' \
  hopper_test
# ---- fused_glu_wgmma_train: pre/prestaged, dgu/dgustaged, dx, dw (train_test quick) ----
mutant tr-dx-one-segment glu_wgmma_body.cuh \
  's/const int k_total = kDual \? 2 \* k_tiles : k_tiles;/const int k_total = kDual ? k_tiles : k_tiles;/' \
  train_test quick
mutant tr-dw-no-accumulate glu_wgmma_body.cuh \
  's/(float a0 = v0, a1 = v1;\n\s*)if \(gout->accumulate\) \{/$1if (false) {/' train_test quick
mutant tr-pre-up-offset glu_wgmma_body.cuh \
  's/\*reinterpret_cast<uint32_t\*>\(a \+ N\) = f32_to_bits16<T>\(u0\)/*reinterpret_cast<uint32_t*>(a + N - 2) = f32_to_bits16<T>(u0)/' \
  train_test quick
mutant tr-dgustaged-grad glu_wgmma_body.cuh \
  's/const float dg0 = d0 \* u0 \* glu_act_grad\(g0, ACT, beta\);/const float dg0 = d0 * u0 * glu_act(g0, ACT, beta);/' \
  train_test quick
mutant tr-dgustaged-no-read-wait glu_wgmma_body.cuh \
  's/(if \(q == 1\) \{\n)\s*if \(store_thread\) tma_store_wait_read\(\);\n/$1/' train_test quick
# ---- fused_glu_simt.cu, act_and_mul.cu (simt_elt_test) ----
mutant simt-no-consume-barrier fused_glu_simt.cu 's/__syncthreads\(\);  \/\/ previous k-block fully consumed//' \
  simt_elt_test
mutant elt-act-bwd act_and_mul.cu 's/o0 = b \* glu_act_grad\(a, act, beta\);/o0 = b * glu_act(a, act, beta);/' \
  simt_elt_test
mutant elt-narrow-index act_and_mul.cu \
  's/O0\[r \* p.ld_out0 \+ c\] = from_f32<T>\(A\[r \* p.ld_a \+ c\]\);/O0[r * p.ld_out0 + c] = from_f32<T>(A[r * p.ld_a + c + (c > 0)]);/' \
  simt_elt_test
mutant emu-wgmma-mn-offsets emu/cuda_emu_hopper.h \
  's/: start \+ \(mn \/ 64u\) \* lbo \+ \(k \/ 8u\) \* sbo/: start + (mn \/ 64u) * sbo + (k \/ 8u) * lbo/' \
  hopper_test quick
# The emulator's own fragment maps: a wrong one must show.
mutant emu-ldmatrix-trans emu/cuda_emu.h \
  's/lo = m\[i\]\[2 \* \(l % 4\)\]\[l \/ 4\];/lo = m[i][l \/ 4][2 * (l % 4)];/' mma_test quick
mutant emu-mma-b-frag emu/cuda_emu.h 's/B\[2 \* t \+ 8\]\[g\] = lo\(a\[5\]\);/B[2 * t + 8][g] = hi(a[5]);/' \
  mma_test quick

echo "mutants: $caught caught, $missed missed"
[ "$missed" -eq 0 ]
