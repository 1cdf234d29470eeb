"""pytest entries for the book benches (hw.book.Book on Verilator via cocotb)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.harness import run_component, simulator

HERE = Path(__file__).resolve().parent
# U250-shaped ladder (4096 ticks per side, 16-entry caches, top 5) and a small one (64 ticks,
# 4-entry caches, top 3) whose sides the benches fill to capacity
# 4096 ticks per side, 16-entry caches, top 5, 8 ladder lanes (hw.lanes: slot s on lane s % 8)
# with 16-deep lane FIFOs (4 deep: 0.885 messages/cycle on bench_book's 50k stream, 16: 0.936)
MAIN = dict(slots=16, capacity=32768, ways=8, levels=4096, k=16, depth_n=5, fifo_depth=64,
            lanes=8, lane_fifo=16)
SMALL = dict(slots=8, capacity=32768, ways=8, levels=64, k=4, depth_n=3, fifo_depth=16,
             lanes=4)
# the contract of issue 13 item 4 as far as it is met (docs/book.md, "Lanes"): the MAIN set at
# full input rate (realistic stream, 16 symbols) and one message every 64 cycles
RATE_FLOOR = 0.90  # the contract; measured 0.9225 (20k messages, seed 7, 16-deep lane FIFOs)
# measured max 12 for every type (A, D, E, F, X, C, U) with the ladder's replace pairs (a U's
# ADD one cycle after its RED, 2026-12-07, branch urep; U was 14); 12 / 14 with the tick divide
# beside the order table and a one-stage ladder front end (2026-12-06, branch booklat2; 16 / 18
# before, 19 / 21 before branch booklat): docs/book.md, "Where the cycles go"
LAT_BOUND = 12


def _run(params, testcase, **env):
    from hw.book import Book

    run_component(
        Book(**params),
        toplevel="book",
        test_module="book_bench",
        test_dir=HERE,
        params=params,
        testcase=testcase,
        extra_env={f"BOOK_{k.upper()}": str(v) for k, v in env.items()},
    )


# Converting a 4096-tick ladder to Verilog takes minutes (Amaranth writes the memories'
# all-zero init), so each parameter set is converted once: one simulator run per set, the
# cases one after the other (one Verilator build, one process).


def test_book_main():
    """U250-shaped ladder: hand-written cases, gap/clear, >= 1,000 clears of one slot, then a
    realistic-depth stream (hundreds of levels per side, far stubs, sweeps) with every record
    compared, flags included."""
    n = 20_000 if simulator() == "verilator" else 4_000
    rate = ["test_rate"] if simulator() == "verilator" else []
    _run(MAIN, ["test_targeted", "test_gap_and_clear", "test_many_clears", "test_random_stream",
                *rate],
         n=n, symbols=16, seed=3, idle=0.1, bp=0.1, profile="realistic",
         rate_floor=RATE_FLOOR, lat_bound=LAT_BOUND)


def test_book_small():
    """Small ladder (64 ticks, top 3): limits (table full, off grid, a side filled to exactly
    the window and drained, a sweep of every level, far levels visible and not), then a
    realistic stream whose books go far beyond the window all the time (slides, evictions,
    refills, records not valid and valid again), every record compared."""
    n = 8_000 if simulator() == "verilator" else 2_000
    _run(SMALL, ["test_limits", "test_random_stream"], n=n, symbols=6, seed=5, idle=0.1,
         bp=0.2, profile="realistic")


@pytest.mark.long
def test_book_random_100k():
    _run(MAIN, "test_random_stream", n=100_000, symbols=16, seed=1, idle=0.1, bp=0.1)


@pytest.mark.long
def test_book_realistic_100k():
    _run(MAIN, "test_random_stream", n=100_000, symbols=16, seed=1, idle=0.05, bp=0.05,
         profile="realistic")
