"""Where a BBO record's cycles go: per-stage latency of hw.book.Book with nothing queued.

Runs a short hand-written stream of one symbol (``A A A E X C U D F``, one message every
``--spacing`` cycles, so nothing is ever queued) through the book in the Amaranth simulator,
writes a VCD, and prints for each message the cycle (counted from its input transfer) at which
each stage first shows it: order-table output, op queue, dispatch, lane input FIFO, ladder
accept / front end / record, lane output FIFO, the lanes' output register, the post stage's
``proc`` (the post stage takes the record), ``emit`` (stage Q's record: ``o_stream.valid``
with the output FIFO empty, as here). A stage that an op passes without a cycle
(a fall-through FIFO) shows ``-``. No Verilator build: ~10 s.

Usage: ``.venv/bin/python bench/book_stages.py [--lanes 8] [--spacing 64] [--vcd PATH]``
(the ladder is the small 64-tick one: its cycle counts are those of the 4096-tick ladder,
which ``sim/book``'s ``test_rate`` measures on the ``MAIN`` set).
"""

from __future__ import annotations

import argparse
import bisect
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOC, SLOT = 5, 3


def _messages():
    from host.feed.itch import make

    a = dict(stock_locate=LOC, stock="X")
    return [
        make("A", **a, timestamp=1, order_reference_number=1, buy_sell_indicator="B",
             shares=100, price=1000),
        make("A", **a, timestamp=2, order_reference_number=2, buy_sell_indicator="S",
             shares=100, price=1010),
        make("A", **a, timestamp=3, order_reference_number=3, buy_sell_indicator="B",
             shares=50, price=1001),
        make("E", stock_locate=LOC, timestamp=4, order_reference_number=3, executed_shares=10),
        make("X", stock_locate=LOC, timestamp=5, order_reference_number=3, cancelled_shares=10),
        make("C", stock_locate=LOC, timestamp=6, order_reference_number=3, executed_shares=10,
             execution_price=1001),
        make("U", stock_locate=LOC, timestamp=7, original_order_reference_number=3,
             new_order_reference_number=4, shares=30, price=1002),
        make("D", stock_locate=LOC, timestamp=8, order_reference_number=4),
        make("F", **a, timestamp=9, order_reference_number=5, buy_sell_indicator="S",
             shares=100, price=1009, attribution="ABCD"),
    ]


def simulate(lanes: int, spacing: int, vcd: Path) -> list[str]:
    """Run the stream; returns the message types."""
    from amaranth.sim import Simulator

    from host.feed.record_map import expected_record
    from hw.book import Book
    from hw.layouts import ItchRecord, pack
    from sim.amsim import put

    dut = Book(slots=16, capacity=256, ways=2, levels=64, k=4, depth_n=3, fifo_depth=64,
               lanes=lanes, lane_fifo=16 if lanes > 1 else 4)
    msgs = _messages()
    recs = [pack(ItchRecord, expected_record(m, seq=i + 1)) for i, m in enumerate(msgs)]

    async def bench(ctx):
        await ctx.tick().repeat(3)
        ctx.set(dut.sub_locate, LOC)
        ctx.set(dut.sub_slot, SLOT)
        ctx.set(dut.sub_valid, 1)
        ctx.set(dut.sub_write, 1)
        await ctx.tick()
        ctx.set(dut.sub_write, 0)
        ctx.set(dut.o_stream.ready, 1)
        await ctx.tick().repeat(60)  # the clear of every slot after reset
        for r in recs:
            await put(ctx, dut.i_stream, r)
            await ctx.tick().repeat(spacing - 1)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    with sim.write_vcd(str(vcd)):
        sim.run()
    return [m.message_type for m in msgs]


def load_vcd(path: Path, want: set[str]) -> dict[str, list[tuple[int, int]]]:
    """Value changes of the signals named (dotted scope path) in ``want``."""
    ids: dict[str, list[str]] = {}
    scope: list[str] = []
    data: dict[str, list[tuple[int, int]]] = {}
    t = 0
    with open(path) as f:
        for line in f:
            if line.startswith("$scope"):
                scope.append(line.split()[2])
            elif line.startswith("$upscope"):
                scope.pop()
            elif line.startswith("$var"):
                p = line.split()
                name = ".".join([*scope, p[4]])
                if name in want:
                    ids.setdefault(p[3], []).append(name)
                    data[name] = []
            elif line.startswith("#"):
                t = int(line[1:])
            elif line.strip() and not line.startswith("$"):
                if line[0] == "b":
                    v, i = line[1:].split()
                else:
                    v, i = line[0], line[1:].strip()
                for n in ids.get(i, ()):
                    data[n].append((t, int(v, 2) if re.fullmatch("[01]+", v) else 0))
    return data


def stages(lanes: int) -> list[tuple[str, list[str]]]:
    ln = SLOT % lanes
    lad = f"ladder.lane{ln}." if lanes > 1 else "ladder.lane0."
    rows = [
        ("C0: input transfer", ["i_stream__valid", "i_stream__ready"]),
        ("order table output (C3)", ["ot.o__valid"]),
        ("op queue write", ["opq.w_en"]),
        ("op queue read (dispatch)", ["opq.r_en"]),
    ]
    if lanes > 1:
        rows.append(("lane input FIFO write", [f"ladder.in{ln}.w_en"]))
    rows += [
        ("ladder accepts the op", [lad + "i_stream__valid", lad + "i_stream__ready"]),
        ("ladder front end F1 (key)", [lad + "f1_v"]),
        ("ladder record pending", [lad + "pend_v"]),
        ("ladder record valid", [lad + "o_stream__valid"]),
    ]
    if lanes > 1:
        rows += [
            ("lane output FIFO write", [f"ladder.out{ln}.w_en"]),
            ("lane output FIFO read", [f"ladder.out{ln}.r_en"]),
            ("lanes output register valid (P)", ["ladder.ov"]),
        ]
    rows += [
        ("P: post stage takes the record (proc)", ["proc"]),
        # ``emit``: Q's record is valid, = ``o_stream.valid`` while the output FIFO is empty
        ("Q: o_stream.valid (emit)", ["emit"]),
    ]
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--spacing", type=int, default=64)
    ap.add_argument("--vcd", type=Path, default=None, help="keep the VCD here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as td:
        vcd = args.vcd or Path(td) / "book.vcd"
        types = simulate(args.lanes, args.spacing, vcd)
        rows = stages(args.lanes)
        top = "bench.top."
        want = {top + "clk"} | {top + s for _, ss in rows for s in ss}
        d = load_vcd(vcd, want)
    missing = sorted(w for w in want if w not in d)
    if missing:
        print(f"book_stages: signals not in the VCD: {missing}", file=sys.stderr)
        return 1
    edges = [t for t, v in d[top + "clk"] if v == 1]
    times = {n: [t for t, _ in ch] for n, ch in d.items()}

    def at(name: str, c: int) -> int:  # value during cycle c (just before edge c + 1)
        ch = d[top + name]
        i = bisect.bisect_right(times[top + name], edges[c + 1] - 1) - 1
        return ch[i][1] if i >= 0 else 0

    ncyc = len(edges) - 1
    first = rows[0][1]
    tin = [c for c in range(ncyc) if all(at(s, c) for s in first)]
    table = []
    for k, t0 in enumerate(tin):
        end = tin[k + 1] if k + 1 < len(tin) else ncyc
        table.append([[c - t0 for c in range(t0, end) if all(at(s, c) for s in ss)]
                      for _, ss in rows])
    print(f"hw.book.Book, lanes {args.lanes}, one message every {args.spacing} cycles: "
          "cycle of each stage after the message's input transfer (U: its second half's)")
    print("| stage | " + " | ".join(types[: len(table)]) + " |")
    print("|---|" + "---:|" * len(table))
    for j, (name, _) in enumerate(rows):
        cells = [",".join(str(c) for c in col[j]) or "-" for col in table]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
