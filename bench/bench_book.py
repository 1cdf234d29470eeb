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
    ap.add_argument("--profile", default="realistic", choices=("classic", "realistic"))
    ap.add_argument("--capacity", type=int, default=1 << 20,
                    help="order-table entries (default the U250 build's 2^20; sim/book's MAIN "
                         "has 32768, which a 16-symbol realistic stream overflows)")
    ap.add_argument("--small", action="store_true",
                    help="the small ladder set (sim/book SMALL: 64 ticks, top 3; quick build)")
    args = ap.parse_args(argv)

    from hw.book import Book
    from sim.book.test_book import MAIN, SMALL
    from sim.harness import run_component

    params = {**(SMALL if args.small else MAIN), "capacity": args.capacity}
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "book.json"
        run_component(
            Book(**params),
            toplevel="book",
            test_module="book_bench",
            test_dir=ROOT / "sim" / "book",
            params=params,
            testcase="test_measure",
            extra_env={
                "BOOK_N": str(args.messages),
                "BOOK_SYMBOLS": str(args.symbols),
                "BOOK_SEED": str(args.seed),
                "BOOK_PROFILE": args.profile,
                "BOOK_RESULTS": str(out),
            },
        )
        if not out.exists():
            print("bench_book: the measurement failed (a record differed from the reference or "
                  "the simulation stopped; see the simulator log above)", file=sys.stderr)
            return 1
        res = json.loads(out.read_text())

    print(f"hw.book.Book {params}")
    print(f"{res['messages']} generator messages ({args.profile}, {args.symbols} symbols, seed "
          f"{args.seed}), {res['bbo_updates']} BBO updates, all equal to host.feed.book "
          "(+ the ladder model's validity)")
    print()
    print("latency: input record transfer -> BBO record valid (cycles), per ITCH type")
    print(f"{'type':>4} {'messages':>9} {'updates':>8} {'min':>5} {'median':>6} {'max':>5} "
          f"{'mean':>7}")
    for t in sorted(res["latency"], key=lambda t: -res["counts"].get(t, 0)):
        lo, med, hi, mean, n = res["latency"][t]
        print(f"{t:>4} {res['counts'].get(t, 0):>9} {n:>8} {lo:>5} {med:>6} {hi:>5} "
              f"{mean:>7.2f}")
    rate = res["messages"] / res["cycles"]
    print()
    print(f"sustained: {res['messages']} messages in {res['cycles']} cycles = "
          f"{rate:.4f} messages/cycle ({res['cycles'] / res['messages']:.2f} cycles/message)")
    print(f"stall cycles (input valid, not ready): {res['counters']['stall_cycles']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
