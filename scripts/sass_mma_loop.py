#!/usr/bin/env python3
"""Main-loop shape of a fused_glu_mma kernel in a cuobjdump --dump-sass file.

Usage: sass_mma_loop.py SASS FUNCTION MAX_INSTRUCTIONS

Finds the loops of FUNCTION (backward branches) that hold HMMA and takes the
one with the most. Prints its instruction mix and exits non-zero unless it is
the loop the kernel is written to have (kernels/NOTES-mma.md, session 11):
  * the refill's LDGSTS are inside it, among the HMMA;
  * it is one basic block (no branch but the closing one);
  * it has at most MAX_INSTRUCTIONS instructions per iteration.
"""
import re
import sys


def main():
    path, func, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
    count = lambda op: sum(re.search(rf"\b{op}\b", t) is not None for t in body)
    ldgsts, ldsm, branches = count("LDGSTS"), count("LDSM"), count("BRA")
    print(f"   main loop: {len(body)} instructions, HMMA={hmma} LDSM={ldsm} "
          f"LDGSTS={ldgsts} branches={branches}")
    bad = []
    if ldgsts == 0:
        bad.append("the refill's LDGSTS are outside the HMMA loop")
    if branches != 1:
        bad.append(f"{branches - 1} branch(es) inside the loop (not one basic block)")
    if len(body) > limit:
        bad.append(f"{len(body)} instructions per iteration > {limit}")
    for b in bad:
        print(f"{func}: {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
