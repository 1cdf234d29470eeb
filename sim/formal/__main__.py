"""``python -m sim.formal [--mutants] [NAME ...]``: run the bounded proofs (``make formal``).

Every proof must pass; with ``--mutants`` every seeded bug of :data:`sim.formal.proofs.MUTANTS`
must make its proof fail. Exit status 1 when either does not hold.
"""

from __future__ import annotations

import argparse
import sys

from sim.formal.harness import run_sby
from sim.formal.proofs import MUTANTS, PROOFS, build


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.formal", description=__doc__)
    ap.add_argument("names", nargs="*", help="proofs to run (default: all)")
    ap.add_argument("--mutants", action="store_true", help="also check every seeded bug fails")
    ap.add_argument("--depth", type=int, help="override every proof's BMC depth")
    args = ap.parse_args(argv)
    names = args.names or list(PROOFS)
    bad = [n for n in names if n not in PROOFS]
    if bad:
        print(f"unknown proof(s) {bad}; known: {sorted(PROOFS)}", file=sys.stderr)
        return 1
    ok = True
    for name in names:
        top, depth = build(name)
        depth = args.depth or depth
        r = run_sby(name, top, depth=depth)
        print(f"{name:34s} depth {depth:2d}  {r.status:5s} {r.seconds:6.1f} s", flush=True)
        if r.status != "PASS":
            ok = False
            print(r.log_tail)
    if args.mutants:
        for mu in MUTANTS:
            if mu.proof not in names:
                continue
            top, depth = build(mu.proof, mu)
            depth = args.depth or depth
            r = run_sby(f"mutant_{mu.name}", top, depth=depth)
            good = r.status == "FAIL"
            verdict = "caught" if good else "MISSED"
            why = f" ({'; '.join(r.failed)})" if r.failed else ""
            print(
                f"  mutant {mu.name:32s} {r.status:5s} {r.seconds:5.1f} s  {verdict}{why}",
                flush=True,
            )
            if not good:
                ok = False
                print(r.log_tail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
