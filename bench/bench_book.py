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


CLK_MHZ = 322.265625  # the 100G MAC's core clock (hw.top clk_hz)
NS = 1000 / CLK_MHZ


def _table(title: str, res: dict) -> None:
    print()
    print(f"latency, {title}: input record transfer -> BBO record valid, cycles (ns at "
          f"{CLK_MHZ} MHz)")
    print(f"{'type':>4} {'messages':>9} {'updates':>8} {'min':>5} {'median':>6} {'p99':>5} "
          f"{'max':>5} {'max ns':>7}")
    for t in sorted(res["latency"], key=lambda t: -res["counts"].get(t, 0)):
        lo, med, hi, _mean, n, p99 = res["latency"][t]
        print(f"{t:>4} {res['counts'].get(t, 0):>9} {n:>8} {lo:>5} {med:>6} {p99:>5} "
              f"{hi:>5} {hi * NS:>7.1f}")


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
    ap.add_argument("--spaced", type=int, default=2000,
                    help="messages of the second run, one every --spacing cycles (0: none)")
    ap.add_argument("--spacing", type=int, default=64,
                    help="cycles between messages in the spaced run (nothing queued)")
    ap.add_argument("--lanes", type=int, default=None,
                    help="ladder lanes (hw.lanes.LadderLanes; default the set's own)")
    ap.add_argument("--fifo-depth", type=int, default=None,
                    help="op queue / message-data / output FIFO depth (default the set's own)")
    ap.add_argument("--lane-fifo", type=int, default=None,
                    help="depth of each ladder lane's input and output FIFO (default the "
                    "set's own)")
    args = ap.parse_args(argv)

    from hw.book import Book
    from sim.book.test_book import MAIN, SMALL
    from sim.harness import run_component

    params = {**(SMALL if args.small else MAIN), "capacity": args.capacity}
    if args.lanes is not None:
        params["lanes"] = args.lanes
    if args.fifo_depth is not None:
        params["fifo_depth"] = args.fifo_depth
    if args.lane_fifo is not None:
        params["lane_fifo"] = args.lane_fifo
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
                "BOOK_SPACED_N": str(args.spaced),
                "BOOK_SPACING": str(args.spacing),
            },
        )
        if not out.exists():
            print("bench_book: the measurement failed (a record differed from the reference or "
                  "the simulation stopped; see the simulator log above)", file=sys.stderr)
            return 1
        res = json.loads(out.read_text())

    full = res["full"]
    print(f"hw.book.Book {params}")
    print(f"{full['messages']} generator messages ({args.profile}, {args.symbols} symbols, seed "
          f"{args.seed}), {full['bbo_updates']} BBO updates, all equal to host.feed.book "
          "(+ the ladder model's validity)")
    _table("full input rate (latency includes the wait in the queues)", full)
    rate = full["messages"] / full["cycles"]
    print()
    print(f"sustained: {full['messages']} messages in {full['cycles']} cycles = "
          f"{rate:.4f} messages/cycle ({full['cycles'] / full['messages']:.2f} cycles/message, "
          f"{rate * CLK_MHZ:.1f} M messages/s at {CLK_MHZ} MHz)")
    print(f"stall cycles (input valid, not ready): {full['counters']['stall_cycles']}")
    if "spaced" in res:
        sp = res["spaced"]
        _table(f"one message every {sp['spacing']} cycles ({sp['messages']} messages, seed "
               f"{args.seed + 1}; nothing queued)", sp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
