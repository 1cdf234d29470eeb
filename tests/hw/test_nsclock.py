"""hw.nsclock.NsClock in the Amaranth simulator against the closed form of its docstring:
loads near the 32-bit boundary of the pipelined halves and at the 64-bit wrap, fractional
rates, steps forwards and backwards across the halves' boundary."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from hw.nsclock import NsClock

M64 = (1 << 64) - 1


def _expect(sv, n, incr_ns, incr_frac):
    return (sv + n * incr_ns + (max(n - 2, 0) * incr_frac >> 32)) & M64


def _run(sv, incr_ns, incr_frac, cycles, step_at=None, adjust=0):
    """``now`` for ``cycles`` cycles from the load's pulse (index 0 = the pulse's cycle)."""
    dut = NsClock()
    seen = []

    async def bench(ctx):
        ctx.set(dut.incr_ns, incr_ns)
        ctx.set(dut.incr_frac, incr_frac)
        for _ in range(5):  # some counting before the load: none of it may leak through
            await ctx.tick()
        ctx.set(dut.set_value, sv)
        ctx.set(dut.load, 1)
        for c in range(cycles):
            ctx.set(dut.step, int(step_at == c))
            ctx.set(dut.adjust, adjust if step_at == c else 0)
            seen.append(ctx.get(dut.now))
            await ctx.tick()
            ctx.set(dut.load, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("sv,incr_ns,incr_frac", [
    (0, 4, 0),
    (1_764_892_800_000_000_000, 3, 0x1A2B3C4D),  # 322.27 MHz-like rate, a real epoch
    ((1 << 32) - 9, 3, 0x80000000),  # the low half wraps within a few cycles
    (M64 - 20, 4, 0xFFFFFFFF),  # the 64-bit wrap
    ((7 << 32) + 5, 255, 0xFFFF0000),
])
def test_load_and_count(sv, incr_ns, incr_frac):
    now = _run(sv, incr_ns, incr_frac, 40)
    for n in range(38):
        assert now[2 + n] == _expect(sv, n, incr_ns, incr_frac), n


@pytest.mark.parametrize("sv,adjust", [
    ((5 << 32) + 100, -1000),  # borrow from the high half
    ((5 << 32) - 50, 1000),  # carry into the high half
    (10_000, -(1 << 31)),  # the most negative step (the clock goes below 0: wraps)
    ((9 << 32) + 7, (1 << 31) - 1),
])
def test_step_once(sv, adjust):
    base = _run(sv, 4, 0x40000000, 30)
    stepped = _run(sv, 4, 0x40000000, 30, step_at=10, adjust=adjust)
    for c in range(30):
        want = base[c] if c < 13 else (base[c] + adjust) & M64
        assert stepped[c] == want, c
