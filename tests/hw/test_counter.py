"""hw.counter.counter: the split counter equals a plain counter delayed by its lag, at every
cycle (coherent reads), for single-step and wide increments, across low-part and full wraps."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from hw.counter import counter, counter_lag


class _Dut(Elaboratable):
    def __init__(self, width, by_width, low, *, clear=False):
        self.width, self.low = width, low
        self.en = Signal()
        self.by = Signal(by_width)
        self.clear = Signal() if clear else None
        self.value = Signal(width)

    def elaborate(self, platform):
        m = Module()
        v = counter(m, self.width, en=self.en, by=self.by, name="c", low=self.low,
                    clear=self.clear)
        m.d.comb += self.value.eq(v)
        return m


def _run(width, by_width, low, steps, seed, init_burst=0):
    rng = random.Random(seed)
    dut = _Dut(width, by_width, low)
    lag = counter_lag(width, low)
    seen = []

    async def bench(ctx):
        total = 0
        history = [0] * (lag + 1)  # plain count at the last lag+1 cycles
        for t in range(steps):
            en = rng.random() < 0.7
            if t < init_burst:  # drive the low part to its wrap quickly
                by = (1 << by_width) - 1
            else:
                by = rng.choice([0, 1, (1 << by_width) - 1, rng.getrandbits(by_width)])
            ctx.set(dut.en, en)
            ctx.set(dut.by, by)
            got = ctx.get(dut.value)
            assert got == history[0], (t, got, history)
            seen.append(got)
            await ctx.tick()
            if en:
                total = (total + by) % (1 << width)
            history = history[1:] + [total]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("width, by_width, low", [
    (9, 1, 4),      # split, +1: low part wraps every 16 increments
    (12, 12, 4),    # split, wide increments (high bits of `by` go to the high part)
    (10, 16, 4),    # increment wider than the counter (truncated)
    (8, 3, 4),      # split with a narrow increment
    (4, 1, 4),      # not split: plain register, no lag
    (6, 6, 8),
])
def test_matches_plain_counter(width, by_width, low):
    seen = _run(width, by_width, low, steps=2000, seed=width * 100 + by_width)
    # the run must have crossed low-part wraps and a full wrap, or the test proves little
    assert max(seen) >= (1 << low) or width <= low
    assert any(b < a for a, b in zip(seen, seen[1:], strict=False))  # wrapped at least once


def test_lag():
    assert counter_lag(48) == 1 and counter_lag(16) == 0 and counter_lag(24) == 0


@pytest.mark.parametrize("width, low", [(9, 4), (48, 24), (4, 4)])
def test_clear(width, low):
    """A clear zeroes the count at once (no lag, even with a carry owed to the high part),
    wins over an increment in its cycle, and counting resumes from 0 with the usual lag."""
    rng = random.Random(width)
    dut = _Dut(width, 1, low, clear=True)
    lag = counter_lag(width, low)
    clears = []

    async def bench(ctx):
        total = 0
        history = [0] * (lag + 1)
        for t in range(3000):
            en = rng.random() < 0.9
            # clear often, and right after the low part wrapped (a carry owed to hi)
            clr = rng.random() < 0.02 or (ctx.get(dut.value) % (1 << low) == (1 << low) - 1
                                            and rng.random() < 0.3)
            ctx.set(dut.en, en)
            ctx.set(dut.by, 1)
            ctx.set(dut.clear, clr)
            got = ctx.get(dut.value)
            assert got == history[0], (t, got, history)
            await ctx.tick()
            if clr:
                total = 0
                history = [0] * (lag + 1)
                clears.append(t)
            else:
                if en:
                    total = (total + 1) % (1 << width)
                history = history[1:] + [total]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(clears) > 20
