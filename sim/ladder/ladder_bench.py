"""cocotb bench of hw.ladder.Ladder: every output record compared with sim/ladder/ladder_model.

Configuration: ``PARAM_*`` (the build, see test_ladder.py) and ``LADDER_*`` (the run: ``N``
ops of the random stream, ``SEED``, ``IDLE`` and ``BP`` probabilities, ``CLEARS``).
"""

from __future__ import annotations

import os
import statistics

import cocotb
from cocotb.triggers import RisingEdge
from ladder_model import (
    LadderModel,
    stream_clears,
    stream_far_stubs,
    stream_fill_drain,
    stream_random,
    stream_replace,
    stream_slide,
    stream_sweep,
)

from hw.ladder import COUNTER_WIDTH, LADDER_COUNTERS, Ladder, LadderOp, div_tick
from hw.lanes import LadderLanes
from sim.streams import StreamSink, StreamSource, pauses, reset_dut, start_clock

P = {k[6:].lower(): (v == "True") if v in ("True", "False") else int(v)
     for k, v in os.environ.items() if k.startswith("PARAM_")}


def env(name, default, cast=int):
    return cast(os.environ.get(f"LADDER_{name}", default))


def decode_out(value: int, layout, n: int) -> dict:
    """A record port value -> dict shaped like :meth:`LadderModel.apply`'s (levels padded to
    ``n`` with zeros are cut at the first all-zero level)."""
    v = int(value)
    out = {}
    for name, f in layout:
        if name in ("bids", "asks"):
            el = f.shape.elem_shape
            lv = []
            for i in range(f.shape.length):
                base = f.offset + i * el.size
                t = tuple((v >> (base + el[x].offset)) & ((1 << el[x].width) - 1)
                          for x in ("px", "sz", "ct"))
                lv.append(t)
            out[name] = lv
        else:
            out[name] = (v >> f.offset) & ((1 << f.width) - 1)
    return out


class TB:
    """Clock, reset, tick port, source/sink with idle/backpressure, model, comparison."""

    def __init__(self, dut):
        self.dut = dut
        # the same bench drives hw.lanes.LadderLanes (same ports, same records) when the
        # build has ``lanes`` (sim/ladder/test_lanes.py)
        self.comp = LadderLanes(**P) if "lanes" in P else Ladder(**P)
        self.n = self.comp.n
        self.model = LadderModel(slots=self.comp.slots, depth=self.comp.depth, k=self.comp.k,
                                 n=self.comp.n, size_width=self.comp.size_width,
                                 count_width=self.comp.count_width)
        self.codes = [0] * self.comp.slots  # tick code per slot (``divided``: idx per op)
        self.lat: list[int] = []
        # spaced runs (one op in flight): latency per op class, see ``run(spaced=True)``
        self.lat_cls: dict[str, list[int]] = {}
        self.cycles = 0
        self.ops = 0

    async def reset(self):
        await start_clock(self.dut.clk, 10)
        d = self.dut
        for nm in ("tick_slot", "tick_code", "tick_write", "i_stream__valid",
                   "o_stream__ready"):
            getattr(d, nm).value = 0
        await reset_dut(d, d.clk)

    async def set_ticks(self, codes):
        d = self.dut
        for slot, code in enumerate(codes):
            d.tick_slot.value = slot
            d.tick_code.value = code
            d.tick_write.value = 1
            await RisingEdge(d.clk)
            self.model.set_tick(slot, code)
            self.codes[slot] = code
        d.tick_write.value = 0
        await RisingEdge(d.clk)

    def counters(self) -> dict:
        v = int(self.dut.counters.value)
        mask = (1 << COUNTER_WIDTH) - 1
        return {nm: (v >> (i * COUNTER_WIDTH)) & mask for i, (nm, _) in enumerate(LADDER_COUNTERS)}

    async def run(self, ops, *, idle=0.0, bp=0.0, seed=0, name="stream", spaced=False):
        """Send ``ops``; compare every record with the model; the sink must be empty after.

        ``spaced``: send the next op only after the previous record (unloaded latency), and
        record each op's latency under its class: ``clr``, ``far`` (far counts), ``err``
        (off grid / missing / overflow), ``rep`` (represented level, no refill or slide),
        ``refill`` / ``evict`` / ``slide`` (the op's refill, eviction or window-move counter
        moved: a slide down scans the bitmap for levels to evict)."""
        d = self.dut
        layout = self.comp.out_layout
        src = StreamSource(d, "i_stream", d.clk, layout=self.comp.op_layout,
                           idle=pauses(idle, seed) if idle else None)
        sink = StreamSink(d, "o_stream", d.clk,
                          backpressure=pauses(bp, seed + 1) if bp else None)
        t_in: list[int] = []
        src.on_transfer = lambda _p, cyc: t_in.append(cyc)
        expect = []
        cls = []
        st = self.model.stats
        for op in ops:
            before = (st["far_ops"], st["off_grid"] + st["missing"] + st["size_overflow"])
            e = self.model.apply(op)
            after = (st["far_ops"], st["off_grid"] + st["missing"] + st["size_overflow"])
            cls.append("clr" if op["kind"] == LadderOp.CLR else "err" if after[1] != before[1]
                       else "far" if after[0] != before[0] else "rep")
            pad = [(0, 0, 0)] * self.n
            e["bids"] = (e["bids"] + pad)[: self.n]
            e["asks"] = (e["asks"] + pad)[: self.n]
            expect.append(e)
        if getattr(self.comp, "divided", False):
            # the caller's divide (hw/order_table.py in the book): idx and offg with the op
            ops = [dict(op, idx=q, offg=int(not ok))
                   for op in ops for q, ok in [div_tick(op["px"], self.codes[op["slot"]])]]
        if spaced:
            src.send_nowait(ops[0])
            prev = self.counters()
        else:
            src.extend(ops)
        got = 0
        idle_cycles = 0
        limit = 400 + 200 * len(ops) + 80 * self.comp.depth
        waited = 0
        first = None
        while got < len(ops):
            await RisingEdge(d.clk)
            waited += 1
            assert waited < limit, f"{name}: {got} of {len(ops)} records after {waited} cycles"
            while not sink.empty():
                t_out = sink.times[0]
                rec = decode_out(sink.recv_nowait(), layout, self.n)
                e = expect[got]
                if rec != e:
                    diff = {k: (rec.get(k), e[k]) for k in e if rec.get(k) != e[k]}
                    raise AssertionError(
                        f"{name}: record {got} (op {ops[got]}) differs (got, want): {diff}")
                if first is None:
                    first = t_in[0]
                if not bp and got < len(t_in):
                    self.lat.append(t_out - t_in[got])
                    if spaced:
                        c = self.counters()
                        k = ("evict" if c["evicted"] != prev["evicted"]
                             else "refill" if c["refill_levels"] != prev["refill_levels"]
                             else "slide" if c["slides"] != prev["slides"]
                             else cls[got])
                        prev = c
                        self.lat_cls.setdefault(k, []).append(t_out - t_in[got])
                last = t_out
                got += 1
                if spaced and got < len(ops):
                    src.send_nowait(ops[got])
        for _ in range(30):
            await RisingEdge(d.clk)
            idle_cycles += 1
        assert sink.empty() and sink.received == len(ops), (
            f"{name}: {sink.received - len(ops)} extra records")
        src._task.cancel()
        sink._task.cancel()
        d.i_stream__valid.value = 0
        d.o_stream__ready.value = 0
        await RisingEdge(d.clk)
        cyc = last - first + 1
        self.cycles += cyc
        self.ops += len(ops)
        d._log.info("%s: %d ops, %d records equal, %d cycles (%.2f cycles/op)%s", name, len(ops),
                    got, cyc, cyc / max(1, len(ops)), self.lat_summary())
        return cyc

    def lat_classes(self) -> str:
        return "; ".join(f"{k} n={len(v)} min {min(v)} median {statistics.median(v)} max {max(v)}"
                         for k, v in sorted(self.lat_cls.items()))

    def check_latency(self):
        """``LADDER_LAT_<CLASS>=max`` bounds (the measured maxima of docs/ladder.md)."""
        for k, v in self.lat_cls.items():
            bound = os.environ.get(f"LADDER_LAT_{k.upper()}")
            if bound is not None:
                assert max(v) <= int(bound), f"latency of {k} ops: max {max(v)} > {bound}"

    def lat_summary(self) -> str:
        if not self.lat:
            return ""
        return (f"; latency min {min(self.lat)} median {statistics.median(self.lat)} "
                f"max {max(self.lat)} cycles")

    def check_counters(self, **want_min):
        c = self.counters()
        st = self.model.stats
        for nm in ("far_visible", "off_grid", "size_overflow", "missing", "evicted",
                   "far_ops", "promotions"):
            assert c[nm] == st[nm], f"counter {nm}: gateware {c[nm]}, model {st[nm]}"
        assert c["ops"] == self.ops, (c["ops"], self.ops)
        for nm, lo in want_min.items():
            assert c[nm] >= lo, f"counter {nm} = {c[nm]}, expected >= {lo}"
        self.dut._log.info("counters %s", c)
        return c


def _cfg():
    return env("IDLE", "0.0", float), env("BP", "0.0", float), env("SEED", 1)


async def _start_two_ticks(dut):
    """Reset, ticks 1 and 100 on alternate slots; returns ``(tb, slots, codes, _cfg())``."""
    tb = TB(dut)
    await tb.reset()
    S = tb.comp.slots
    codes = [(s + 1) % 2 for s in range(S)]
    await tb.set_ticks(codes)
    return tb, S, codes, _cfg()


@cocotb.test()
async def test_fill_drain(dut):
    """Fill both sides of a slot to ``depth`` levels and drain them from the top, one level at
    a time; then the same with several orders per level (tick 100, then tick 1)."""
    idle, bp, seed = _cfg()
    tb = TB(dut)
    await tb.reset()
    await tb.set_ticks([1] + [0] * (tb.comp.slots - 1))
    D = tb.comp.depth
    sides = (True, False) if env("SIDES", "both", str) == "both" else (True,)
    await tb.run(stream_fill_drain(D, seed=seed, sides=sides), idle=idle, bp=bp, seed=seed,
                 name=f"fill_drain {len(sides)} side(s)")
    if tb.comp.slots > 1 and len(sides) == 2:
        await tb.run(stream_fill_drain(min(D, 512), seed=seed + 1, code=0, per_level=3, slot=1),
                     idle=idle, bp=bp, seed=seed + 1, name="fill_drain x3")
    # every level behind the first k of a side reaches the top through a refill
    tb.check_counters(refill_levels=len(sides) * (D - tb.comp.k))


@cocotb.test()
async def test_sweep_slide_far(dut):
    """Bursts that drain many levels; window slides both ways over represented levels; far
    stub quotes behind a thin book (visibility rule); off-grid, overflow, missing level."""
    idle, bp, seed = _cfg()
    tb = TB(dut)
    await tb.reset()
    await tb.set_ticks([1] * tb.comp.slots)
    D = tb.comp.depth
    await tb.run(stream_sweep(D, seed=seed), idle=idle, bp=bp, seed=seed, name="sweep")
    await tb.run(stream_slide(D, seed=seed), idle=idle, bp=bp, seed=seed, name="slide")
    await tb.run(stream_far_stubs(D, n=tb.n, seed=seed), idle=idle, bp=bp, seed=seed,
                 name="far_stubs")
    c = tb.check_counters(evicted=1, far_visible=1, slides=3, promotions=1)
    assert c["far_ops"] > 0
    # errors: off grid (tick 100), a missing level, an oversize level: bad until the clear
    big = (1 << 32) - 1
    ops = [
        dict(kind=LadderOp.ADD, slot=0, bid=1, px=100_000, q=100, remove=0, tag=1),
        dict(kind=LadderOp.ADD, slot=0, bid=0, px=100_050, q=100, remove=0, tag=2),  # off grid
        dict(kind=LadderOp.ADD, slot=0, bid=0, px=100_100, q=100, remove=0, tag=3),
        dict(kind=LadderOp.CLR, slot=0, bid=0, px=0, q=0, remove=0, tag=4),
        dict(kind=LadderOp.RED, slot=0, bid=0, px=100_100, q=100, remove=1, tag=5),  # missing
        dict(kind=LadderOp.CLR, slot=0, bid=0, px=0, q=0, remove=0, tag=6),
    ]
    ovf = tb.comp.size_width <= 36  # 2**(w-32) + 1 adds of 2**32 - 1 shares overflow
    if ovf:
        ops += [dict(kind=LadderOp.ADD, slot=0, bid=0, px=200_000, q=big, remove=0, tag=7 + i)
                for i in range((1 << (tb.comp.size_width - 32)) + 1)]
    ops += [dict(kind=LadderOp.CLR, slot=0, bid=0, px=0, q=0, remove=0, tag=99)]
    await tb.run(ops, idle=idle, bp=bp, seed=seed, name="errors")
    tb.check_counters(off_grid=1, missing=1, size_overflow=int(ovf))


@cocotb.test()
async def test_clears(dut):
    """>= 1000 clears of one slot, orders in between, every record compared."""
    idle, bp, seed = _cfg()
    tb = TB(dut)
    await tb.reset()
    await tb.set_ticks([1] * tb.comp.slots)
    n = env("CLEARS", 1000)
    ops = stream_clears(clears=n, seed=seed, depth=tb.comp.depth)
    assert sum(op["kind"] == LadderOp.CLR for op in ops) >= n
    await tb.run(ops, idle=idle, bp=bp, seed=seed, name=f"{n} clears")
    tb.check_counters()


@cocotb.test()
async def test_replace(dut):
    """Replace pairs (RED then ADD on the same side, every case of the pair path) with idle
    input (a RED after a pause is taken by the slow take, the ADD behind it pairs) and, as
    ``$LADDER_BP`` says, backpressure; every record compared; the pair path must have run."""
    tb, S, codes, (idle, bp, seed) = await _start_two_ticks(dut)
    ops = stream_replace(tb.comp.depth, env("N", 4000), slots=S, seed=seed, n=tb.n,
                         codes=codes)
    await tb.run(ops, idle=idle, bp=bp, seed=seed, name="replace")
    c = tb.check_counters()
    assert c["pairs"] >= env("MIN_PAIRS", 1), f"pair path taken {c['pairs']} times"


@cocotb.test()
async def test_random(dut):
    """Realistic mix (heavy-tailed offsets, stubs, sweeps, clears) on every slot, ticks 1 and
    100, cross-checked against host.feed.book.L3Book while it is generated."""
    tb, S, codes, (idle, bp, seed) = await _start_two_ticks(dut)
    n = env("N", 5000)
    ops = stream_random(tb.comp.depth, n, slots=S, seed=seed, n=tb.n, codes=codes)
    cyc = await tb.run(ops, idle=idle, bp=bp, seed=seed, name="random")
    tb.check_counters()
    rate = len(ops) / cyc
    dut._log.info("random: %.3f ops/cycle", rate)
    floor = env("MIN_RATE", "0", float)
    assert rate >= floor, f"random: {rate:.3f} ops/cycle < {floor}"
    spaced = env("SPACED", 0)
    if spaced:
        # unloaded latency per op class: one op in flight at a time
        ops = stream_random(tb.comp.depth, spaced, slots=S, seed=seed + 7, n=tb.n,
                            codes=codes)
        await tb.run(ops, seed=seed, name="random spaced", spaced=True)
        dut._log.info("latency per class: %s", tb.lat_classes())
        tb.check_latency()
