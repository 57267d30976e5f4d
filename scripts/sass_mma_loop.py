#!/usr/bin/env python3
"""Main-loop shape of a fused_glu_mma kernel in a cuobjdump --dump-sass file.

Usage: sass_mma_loop.py SASS FUNCTION MAX_INSTRUCTIONS LDGSTS [MAX_GAP]

Finds the loops of FUNCTION (backward branches) that hold HMMA and takes the
one with the most. Prints its instruction mix and exits non-zero unless it is
the loop the kernel is written to have (kernels/NOTES-mma.md, session 11):
  * it holds exactly LDGSTS cp.async copies (the refill of one k-tile: 6 per
    thread with 256 threads, 3 with 512), all between its first and its
    last HMMA;
  * it is one basic block: no control flow (BRA, BRX, JMP, JMX, CALL, RET,
    EXIT) but the closing branch;
  * no run of more than MAX_GAP (default 12) instructions without an HMMA,
    counted around the loop (8 warps, session 11: 6; session 10: ~120, the
    address arithmetic of the refill). The 16-warp kernel (session 16) has
    no fragment double buffer: each k16 step's ldmatrix come right before
    its mma, so the run after the barrier holds them (41-49 instructions);
    its caller passes a larger MAX_GAP;
  * it has at most MAX_INSTRUCTIONS instructions per iteration (session 10's
    loop had 214, of which 128 neither HMMA, LDSM nor LDGSTS; the limits in
    check-kernels.sh leave ~10% over the session-11 counts for compiler
    scheduling changes).
"""
import re
import sys

MAX_GAP = 12


def main():
    path, func, limit, want_ldgsts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    max_gap = int(sys.argv[5]) if len(sys.argv) > 5 else MAX_GAP
    text = open(path).read()
    bodies = [b for b in re.split(r"Function : ", text)[1:] if b.split()[0] == func]
    if not bodies:
        print(f"{func}: not in {path}")
        return 1
    ins = []
    for line in bodies[0].splitlines():
        m = re.search(r"/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            ins.append((int(m.group(1), 16), m.group(2).strip()))
    best = None
    for addr, text_ in ins:
        m = re.search(r"\bBRA (0x[0-9a-f]+)", text_)
        if not m or int(m.group(1), 16) >= addr:
            continue
        body = [t for a, t in ins if int(m.group(1), 16) <= a <= addr]
        hmma = sum("HMMA" in t for t in body)
        if hmma and (best is None or hmma > best[0]):
            best = (hmma, body)
    if best is None:
        print(f"{func}: no loop with HMMA")
        return 1
    hmma, body = best
    has = lambda op, t: re.search(rf"\b{op}\b", t) is not None
    count = lambda op: sum(has(op, t) for t in body)
    ldgsts, ldsm = count("LDGSTS"), count("LDSM")
    flow = sum(any(has(op, t) for op in ("BRA", "BRX", "JMP", "JMX", "CALL", "RET", "EXIT"))
               for t in body)
    h_pos = [i for i, t in enumerate(body) if "HMMA" in t]
    g_pos = [i for i, t in enumerate(body) if has("LDGSTS", t)]
    # Runs between consecutive HMMA, the last one wrapping around the loop.
    gap = max([b - a - 1 for a, b in zip(h_pos, h_pos[1:])]
              + [len(body) - 1 - h_pos[-1] + h_pos[0]])
    print(f"   main loop: {len(body)} instructions, HMMA={hmma} LDSM={ldsm} "
          f"LDGSTS={ldgsts} control-flow={flow} longest run without HMMA={gap}")
    bad = []
    if ldgsts != want_ldgsts:
        bad.append(f"{ldgsts} LDGSTS in the HMMA loop, expected the refill's {want_ldgsts}")
    if g_pos and not (h_pos[0] < g_pos[0] and g_pos[-1] < h_pos[-1]):
        bad.append("LDGSTS outside the span of the loop's HMMA")
    if gap > max_gap:
        bad.append(f"a run of {gap} instructions without HMMA (> {max_gap})")
    if flow != 1:
        bad.append(f"{flow - 1} control-flow instruction(s) inside the loop (not one basic block)")
    if len(body) > limit:
        bad.append(f"{len(body)} instructions per iteration > {limit}")
    for b in bad:
        print(f"{func}: {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
