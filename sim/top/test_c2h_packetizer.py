"""C2hPacketizer (Alveo wrapper: record beats -> C2H packets with tlast) in the Amaranth
simulator: records of 1..3 beats with random gaps and random output backpressure.

Checked on every run: the bytes come out unchanged and in order; ``tlast`` only on a record's
last beat; no packet longer than ``max_records``; a packet ends (``tlast``) exactly when the
rules say: the packet is full, or the record's last beat left with no next beat waiting after
``flush_cycles`` cycles of waiting; ``data``/``last`` stable while stalled; the last record
always ends a packet (nothing left in the hold register); back-to-back records are grouped.
"""

import random

import pytest
from amaranth.sim import Simulator

from hw.platform.alveo import AlveoWrapper, C2hPacketizer


def _run(records, *, max_records, flush_cycles, gap_prob, ready_prob, seed=1, cycles=None):
    """Drive ``records`` (lists of 512-bit ints, one per beat); return the output beats as
    (data, last) and the stall violations seen."""
    dut = C2hPacketizer(max_records=max_records, flush_cycles=flush_cycles)
    rng = random.Random(seed)
    beats = [(b, i == len(r) - 1) for r in records for i, b in enumerate(r)]
    out, bad = [], []
    total = cycles or 40 * len(beats) + 100 * (flush_cycles + 2)

    async def source(ctx):
        for b, end in beats:
            while rng.random() < gap_prob:
                ctx.set(dut.i_stream.valid, 0)
                await ctx.tick()
            ctx.set(dut.i_stream.payload, b)
            ctx.set(dut.i_end, end)
            ctx.set(dut.i_stream.valid, 1)
            await ctx.tick().until(dut.i_stream.ready)
        ctx.set(dut.i_stream.valid, 0)

    async def sink(ctx):
        held = None  # (data, last) offered and not taken
        idle = 0  # cycles since the last accepted input beat with nothing valid at the input
        for _ in range(total):
            r = rng.random() < ready_prob
            ctx.set(dut.o_stream.ready, r)
            await ctx.delay(1e-10)
            if ctx.get(dut.o_stream.valid):
                p = ctx.get(dut.o_stream.payload)
                cur = (int(p.data), int(p.last))
                if held is not None and cur != held:
                    bad.append(("payload changed while stalled", held, cur))
                held = None if r else cur
                if r:
                    out.append(cur)
            else:
                if held is not None:
                    bad.append(("valid dropped while stalled", held))
                held = None
            idle = 0 if ctx.get(dut.i_stream.valid) else idle + 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return beats, out, bad


def _records(rng, n, max_beats):
    return [[rng.getrandbits(512) for _ in range(rng.randint(1, max_beats))] for _ in range(n)]


def _check(beats, out, bad, max_records):
    assert not bad, bad[:3]
    assert [d for d, _ in out] == [b for b, _ in beats]  # nothing lost, duplicated, reordered
    ends = [e for _, e in beats]
    assert out[-1][1] == 1  # the last record ends a packet: nothing stuck in the hold register
    n = 0
    packets = []
    for (_, last), end in zip(out, ends, strict=True):
        assert not last or end, "tlast inside a record"
        n += end
        if last:
            packets.append(n)
            n = 0
    assert max(packets) <= max_records
    return packets


@pytest.mark.parametrize("max_records,flush,max_beats", [(1, 0, 1), (4, 0, 3), (64, 0, 1),
                                                         (8, 5, 3), (3, 40, 2)])
@pytest.mark.parametrize("gap_prob,ready_prob", [(0.0, 1.0), (0.0, 0.3), (0.6, 1.0),
                                                 (0.5, 0.5)])
def test_packets(max_records, flush, max_beats, gap_prob, ready_prob):
    rng = random.Random(max_records * 1000 + flush)
    recs = _records(rng, 120, max_beats)
    beats, out, bad = _run(recs, max_records=max_records, flush_cycles=flush,
                           gap_prob=gap_prob, ready_prob=ready_prob)
    packets = _check(beats, out, bad, max_records)
    assert sum(packets) == len(recs)
    if max_records == 1:
        assert set(packets) == {1}
    elif gap_prob == 0.0:
        # back-to-back records (an input always waiting) fill packets to max_records
        assert packets[:-1] == [max_records] * (len(packets) - 1)


def test_idle_record_ends_its_packet_at_once():
    """flush_cycles = 0: an isolated record's last beat ends its packet; records far apart
    are one packet each (no latency traded)."""
    rng = random.Random(3)
    recs = _records(rng, 30, 2)
    beats, out, bad = _run(recs, max_records=64, flush_cycles=0, gap_prob=0.97, ready_prob=1.0)
    packets = _check(beats, out, bad, 64)
    assert packets.count(1) >= 25  # almost every record alone (gaps of ~33 cycles)


def test_flush_waits_then_groups():
    """flush_cycles = 200 > the gaps: records arriving ~33 cycles apart join one packet."""
    rng = random.Random(4)
    recs = _records(rng, 30, 1)
    beats, out, bad = _run(recs, max_records=64, flush_cycles=200, gap_prob=0.97,
                           ready_prob=1.0, cycles=30 * 400 + 1000)
    packets = _check(beats, out, bad, 64)
    assert len(packets) <= 3 and sum(packets) == 30


@pytest.mark.parametrize("kw", [dict(max_records=0), dict(max_records=65537),
                                dict(flush_cycles=-1), dict(flush_cycles=1.5),
                                dict(max_records=True)])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters(kw):
    with pytest.raises(ValueError):
        C2hPacketizer(**kw)
    with pytest.raises(ValueError):
        AlveoWrapper(**{f"c2h_{k}": v for k, v in kw.items()})
