"""pytest entries for the book benches (hw.book.Book on Verilator via cocotb)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.harness import run_component, simulator

HERE = Path(__file__).resolve().parent
MAIN = dict(slots=64, capacity=32768, ways=8, levels=32, depth_n=5, fifo_depth=16)
SMALL = dict(slots=8, capacity=64, ways=2, levels=4, depth_n=3, fifo_depth=8)


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


def test_book_targeted():
    _run(MAIN, ["test_targeted", "test_gap_and_clear"])


def test_book_limits():
    _run(SMALL, "test_limits")


def test_book_random_100k():
    # Icarus is ~50x slower than Verilator: the matrix run there uses a shorter stream.
    n = 100_000 if simulator() == "verilator" else 10_000
    _run(MAIN, "test_random_stream", n=n, symbols=16, seed=1, idle=0.1, bp=0.1)


@pytest.mark.long
def test_book_random_1m():
    _run(MAIN, "test_random_stream", n=1_000_000, symbols=48, seed=2, idle=0.05, bp=0.05)


def test_book_many_clears():
    # issue 13 item 8: >= 1,000 clears of one slot (and of every slot, and resets), exact
    _run(MAIN, "test_many_clears", bp=0.2, seed=4)
