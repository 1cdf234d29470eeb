"""Replace pairs in :class:`hw.ladder.Ladder` (Amaranth simulator, no Verilator build): a RED
taken after a pause and the ADD right behind it on the same (slot, side) (the two halves of
an ITCH ``U``): every record equal to the ladder model's, and the ADD's record one cycle after
the RED's when the pair path applies (docs/ladder.md, "Replace pairs")."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from amaranth.sim import Simulator

from hw.ladder import COUNTER_WIDTH, LADDER_COUNTERS, Ladder, LadderOp, div_tick
from sim.amsim import put

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sim" / "ladder"))
from ladder_model import LadderModel, OrderFlow, stream_replace  # noqa: E402

SMALL = dict(slots=2, depth=64, k=4, n=3, size_width=34, divided=True)


def _groups(ops):
    """Split the op list into bursts sent back to back: a RED followed by an ADD on the same
    (slot, side) is one burst of two, every other op a burst of one."""
    out, i = [], 0
    while i < len(ops):
        a = ops[i]
        if (i + 1 < len(ops) and a["kind"] == LadderOp.RED and ops[i + 1]["kind"] == LadderOp.ADD
                and ops[i + 1]["slot"] == a["slot"] and ops[i + 1]["bid"] == a["bid"]):
            out.append([a, ops[i + 1]])
            i += 2
        else:
            out.append([a])
            i += 1
    return out


def _run(params, ops, codes, gap=12, bp=0.0, seed=0):
    """Send ``ops`` in bursts (:func:`_groups`) ``gap`` cycles apart (``None``: 0-3 at
    random), with the sink not ready a ``bp`` fraction of the cycles; returns the counters and
    the gaps between the records of each RED + ADD burst."""
    rng = random.Random(seed)
    dut = Ladder(**params)
    model = LadderModel(slots=dut.slots, depth=dut.depth, k=dut.k, n=dut.n,
                        size_width=dut.size_width, count_width=dut.count_width)
    for s, c in enumerate(codes):
        model.set_tick(s, c)
    expect = []
    for op in ops:
        e = model.apply(op)
        pad = [(0, 0, 0)] * dut.n
        e["bids"] = (e["bids"] + pad)[: dut.n]
        e["asks"] = (e["asks"] + pad)[: dut.n]
        expect.append(e)
    got, times, pair_gaps = [], [], []
    lay = dut.out_layout

    def decode(v):
        out = {}
        for name, f in lay:
            if name in ("bids", "asks"):
                el = f.shape.elem_shape
                out[name] = [tuple((v >> (f.offset + i * el.size + el[x].offset))
                                   & ((1 << el[x].width) - 1) for x in ("px", "sz", "ct"))
                             for i in range(f.shape.length)]
            else:
                out[name] = (v >> f.offset) & ((1 << f.width) - 1)
        return out

    async def source(ctx):
        await ctx.tick().repeat(4)
        for s, c in enumerate(codes):
            ctx.set(dut.tick_slot, s)
            ctx.set(dut.tick_code, c)
            ctx.set(dut.tick_write, 1)
            await ctx.tick()
        ctx.set(dut.tick_write, 0)
        for grp in _groups(ops):
            for op in grp:
                if dut.divided:  # the caller's divide (the book's order table)
                    q, ok = div_tick(op["px"], codes[op["slot"]])
                    op = dict(op, idx=q, offg=int(not ok))
                await put(ctx, dut.i_stream, op)
            g = rng.randint(0, 3) if gap is None else gap
            if g:
                await ctx.tick().repeat(g)

    async def sink(ctx):
        ctx.set(dut.o_stream.ready, 1)
        cyc = 0
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(
                dut.o_stream.valid, dut.o_stream.ready, dut.o_stream.payload.as_value()):
            cyc += 1
            ctx.set(dut.o_stream.ready, int(rng.random() >= bp))
            if valid and ready:
                got.append(decode(payload))
                times.append(cyc)
            if len(got) == len(ops):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink, background=True)
    counters = {}

    async def watch(ctx):
        limit = 60 * len(ops) + 2000  # cycles: a hang fails here
        while len(got) < len(ops):
            await ctx.tick()
            limit -= 1
            assert limit > 0, f"{len(got)} of {len(ops)} records"
        await ctx.tick().repeat(4)
        v = ctx.get(dut.counters.as_value())
        mask = (1 << COUNTER_WIDTH) - 1
        counters.update({nm: (v >> (i * COUNTER_WIDTH)) & mask
                         for i, (nm, _) in enumerate(LADDER_COUNTERS)})

    sim.add_testbench(watch)
    sim.run()
    assert len(got) == len(ops), f"{len(got)} of {len(ops)} records"
    for i, (g, e) in enumerate(zip(got, expect, strict=True)):
        diff = {k: (g.get(k), e[k]) for k in e if g.get(k) != e[k]}
        assert not diff, f"record {i} (op {ops[i]}) differs (got, want): {diff}"
    i = 0
    for grp in _groups(ops):
        if len(grp) == 2:
            pair_gaps.append(times[i + 1] - times[i])
        i += len(grp)
    return counters, pair_gaps


def test_pairs_replace_stream():
    codes = [1, 0]
    ops = stream_replace(64, 700, slots=2, seed=11, n=3, codes=codes)
    c, gaps = _run(SMALL, ops, codes)
    assert c["pairs"] > 50, c
    # the pair path: the ADD's record one cycle after the RED's (3 on the path before)
    assert gaps.count(1) == c["pairs"], (gaps.count(1), c["pairs"])


def test_pairs_undivided():
    """The same with the 5-stage front end (``divided=False``): the pair path is the
    controller's."""
    codes = [1, 0]
    ops = stream_replace(64, 500, slots=2, seed=12, n=3, codes=codes)
    c, gaps = _run(dict(SMALL, divided=False, k=8), ops, codes)
    assert c["pairs"] > 50, c
    assert gaps.count(1) == c["pairs"], (gaps.count(1), c["pairs"])


def test_pairs_targeted():
    """Hand-picked cases, with the gap between the RED's and the ADD's records: 1 on the pair
    path, else what the path before gives (an 8-entry cache, top 3)."""
    f = OrderFlow(1, cross_check=True, n=3)
    base = 100_000
    refs = [f.add(0, True, base - i, 100 + i) for i in range(6)]  # bids base .. base - 5
    f.add(0, True, base - 2, 50)
    want = []
    f.replace(refs[0], base - 10, 300)  # best level removed, new level
    want.append(1)
    f.replace(refs[3], base - 1, 200)  # a cached level removed, ADD at a cached level
    want.append(1)
    f.replace(refs[1], base + 3, 70)  # the new level is the best: the window moves
    want.append(1)
    f.replace(refs[2], base - 2, 20)  # same tick, the level stays (2 orders)
    want.append(1)
    f.replace(refs[5], base - 5, 30)  # same tick, the level goes and comes back
    want.append(1)
    f.replace(refs[4], base - 200, 10)  # beyond the window: a far op, not a pair
    want.append(3)  # 2 before the far cache's FAR state
    a = f.add(0, False, base + 50, 10)
    f.replace(a, base + 51, 11)  # the side's last order: the ADD starts the window
    want.append(1)
    b = f.add(0, False, base + 52, 12)
    f.replace(b, base + 53, 13)  # same bitmap word, the level before it stays
    want.append(1)
    c = f.add(0, False, base + 40, 5)
    f.replace(c, base + 30, 6)  # a better ask, below the window start: the window moves
    want.append(1)
    d = f.add(0, False, base + 31, 5)
    f.replace(d, base - 20, 6)  # below the window with levels a window above: eviction scan
    want.append(38)  # 32 before the far cache: each evicted level's price (R_PX, R_PX2)
    e = f.add(0, True, base - 7, 40)
    f.cancel(e, 10)  # a RED that removes no order, then an ADD at its level: not a pair
    f.add(0, True, base - 7, 15)
    want.append(3)
    cnt, gaps = _run(dict(SMALL, slots=1, k=8), f.ops, [0])
    assert gaps == want, (gaps, want)
    assert cnt["pairs"] == gaps.count(1), cnt


def test_pairs_refill():
    """With a 4-entry cache and top 3, a RED that removes a cached level while the cache holds
    <= 3 may need a refill: it takes the slow path and the ADD behind it is taken after it."""
    f = OrderFlow(1, cross_check=True, n=3)
    base = 100_000
    refs = [f.add(0, True, base - i, 100 + i) for i in range(6)]
    f.replace(refs[0], base - 10, 300)  # c = 4 > n: a pair
    f.replace(refs[1], base - 11, 300)  # c = 3 <= n: refill-prone
    cnt, gaps = _run(dict(SMALL, slots=1), f.ops, [0])
    assert gaps == [1, 5], gaps
    assert cnt["pairs"] == 1, cnt


def test_pairs_overflow():
    """A paired ADD whose level size overflows ``size_width`` (34 bits): on another level and
    at the RED's own level (size - q1 + q2); the slot is bad until the clear."""
    big = (1 << 32) - 1
    f = OrderFlow(1, cross_check=False, n=3)
    base = 100_000
    f.add(0, True, base, 100)
    small = f.add(0, True, base - 1, 100)
    for _ in range(3):
        f.add(0, True, base - 2, big)
    f.replace(small, base - 2, big)  # 4 * big = 2**34 - 4: fits
    x = f.add(0, True, base - 3, 5)
    f.replace(x, base - 2, 10)  # now over: overflow on the pair path
    f.clear(0)
    f.add(0, False, base + 10, 7)
    for _ in range(4):
        f.add(0, False, base + 9, big)
    y = f.add(0, False, base + 9, 1)  # 4 * big + 1 = 2**34 - 3: fits
    f.replace(y, base + 9, big)  # same tick: size - 1 + big overflows
    cnt, gaps = _run(dict(SMALL, slots=1, k=8), f.ops, [0])
    assert cnt["size_overflow"] == 2, cnt
    assert cnt["pairs"] == 3, (cnt, gaps)


def test_pairs_backpressure():
    """Bursts 0-3 cycles apart and a sink that is not ready 60 % of the cycles: the pair path
    must wait for free record registers (a pair under a full ``pend`` would overwrite the
    RED's record)."""
    codes = [1, 0]
    ops = stream_replace(64, 700, slots=2, seed=13, n=3, codes=codes)
    c, _gaps = _run(dict(SMALL, k=8), ops, codes, gap=None, bp=0.6, seed=13)
    assert c["pairs"] > 20, c
