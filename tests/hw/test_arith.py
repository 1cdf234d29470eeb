"""hw/arith.py: the kept-net arithmetic equals the plain expression (Amaranth simulation)."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.arith import carry_out, eq_carry, mux_tree, prefix_or


def _run(m, check):
    sim = Simulator(m)

    async def bench(ctx):
        await check(ctx)

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("n", [1, 3, 4, 5, 16, 24])
def test_prefix_or(n):
    m = Module()
    bits = Signal(n)
    out, anyb = prefix_or(m, bits, "p")
    rng = random.Random(n)
    vals = [0, (1 << n) - 1] + [1 << i for i in range(n)]
    vals += [rng.getrandbits(n) & rng.getrandbits(n) & rng.getrandbits(n) for _ in range(200)]

    async def check(ctx):
        for v in vals:
            ctx.set(bits, v)
            want = [int(any(v >> j & 1 for j in range(i + 1))) for i in range(n)]
            got = ctx.get(out)
            assert [got >> i & 1 for i in range(n)] == want, (n, v)
            assert ctx.get(anyb) == int(v != 0)

    _run(m, check)


@pytest.mark.parametrize("n", [2, 5, 16, 256])
def test_mux_tree(n):
    m = Module()
    vals = [Signal(8, name=f"v{i}") for i in range(n)]
    idx = Signal(max(1, (n - 1).bit_length()))
    out = mux_tree(m, vals, idx, "t")
    rng = random.Random(n)

    async def check(ctx):
        data = [rng.getrandbits(8) for _ in range(n)]
        for s, d in zip(vals, data, strict=True):
            ctx.set(s, d)
        for i in range(n):
            ctx.set(idx, i)
            assert ctx.get(out) == data[i]

    _run(m, check)


def test_carry_out_and_eq_carry():
    m = Module()
    a, b = Signal(64), Signal(64)
    cin = 1
    co = Signal()
    eq = Signal()
    m.d.comb += [co.eq(carry_out(m, a, b, cin, "c")), eq.eq(eq_carry(a, b))]
    rng = random.Random(3)
    cases = [(0, 0), ((1 << 64) - 1, 0), ((1 << 64) - 1, 1), (1 << 63, 1 << 63)]
    for _ in range(300):
        x = rng.getrandbits(64)
        cases += [(x, x), (x, (1 << 64) - 1 - x), (x, x ^ (1 << rng.randrange(64))),
                  (x, rng.getrandbits(64))]

    async def check(ctx):
        for x, y in cases:
            ctx.set(a, x)
            ctx.set(b, y)
            assert ctx.get(co) == (x + y + cin) >> 64, (x, y)
            assert ctx.get(eq) == int(x == y), (x, y)

    _run(m, check)
