"""Gateware book (hw.book.Book) on Verilator: latency per message type and sustained rate.

Runs the cocotb measurement (sim/book/book_bench.py::test_measure) on a generator stream at
full input rate with an always-ready output, checks every BBO record against host.feed.book, and
prints the latency (input transfer -> BBO record valid, in clock cycles) per ITCH type and the
sustained messages per cycle.

Usage: ``.venv/bin/python bench/bench_book.py [--messages N] [--symbols S]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--symbols", type=int, default=16)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)

    from hw.book import Book
    from sim.book.test_book import MAIN
    from sim.harness import run_component

    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "book.json"
        run_component(
            Book(**MAIN),
            toplevel="book",
            test_module="book_bench",
            test_dir=ROOT / "sim" / "book",
            params=MAIN,
            testcase="test_measure",
            extra_env={
                "BOOK_N": str(args.messages),
                "BOOK_SYMBOLS": str(args.symbols),
                "BOOK_SEED": str(args.seed),
                "BOOK_RESULTS": str(out),
            },
        )
        res = json.loads(out.read_text())

    print(f"hw.book.Book {MAIN}")
    print(f"{res['messages']} generator messages ({args.symbols} symbols, seed {args.seed}), "
          f"{res['bbo_updates']} BBO updates, all equal to host.feed.book")
    print()
    print("latency: input record transfer -> BBO record valid (cycles), per ITCH type")
    print(f"{'type':>4} {'messages':>9} {'updates':>8} {'min':>4} {'max':>4} {'mean':>6}")
    for t in sorted(res["latency"], key=lambda t: -res["counts"].get(t, 0)):
        lo, hi, mean, n = res["latency"][t]
        print(f"{t:>4} {res['counts'].get(t, 0):>9} {n:>8} {lo:>4} {hi:>4} {mean:>6.2f}")
    rate = res["messages"] / res["cycles"]
    u = res["counts"].get("U", 0)
    print()
    print(f"sustained: {res['messages']} messages in {res['cycles']} cycles = "
          f"{rate:.4f} messages/cycle (every U takes 2 cycles: {u} U; every other type 1)")
    print(f"stall cycles (input valid, not ready): {res['counters']['stall_cycles']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
