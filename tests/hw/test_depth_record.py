"""Depth records (issue 14 item 4): hw.bbo_record helpers, hw.top.Top's depth_n validation
and the record width it builds, hw.platform.alveo.RecordBeats (records -> 512-bit beats)."""

from __future__ import annotations

import numpy as np
import pytest

from hw import bbo_record as BR


def test_record_bytes():
    assert BR.record_bytes(1) == 64
    assert BR.record_bytes(2) == 128  # 64 + 24 = 88 -> 128
    assert BR.record_bytes(5) == 192  # 64 + 96 = 160 -> 192
    assert BR.record_bytes(16) == 64 + 2 * 12 * 15 + 24  # 424 -> 448
    for n in (0, 17, -1):
        with pytest.raises(ValueError):
            BR.record_bytes(n)
    for n in (1.0, True, "5"):
        with pytest.raises(TypeError):
            BR.record_bytes(n)


def test_dtype_and_levels():
    assert BR.dtype(1) == BR.DTYPE
    dt = BR.dtype(5)
    assert dt.itemsize == 192
    raw = bytearray(192 * 2)
    # record 1: bid_px at byte 24, bid level 2 px at byte 64, ask level 5 ct at 64+48+36+8
    raw[192 + 24:192 + 28] = (1000).to_bytes(4, "little")
    raw[192 + 64:192 + 68] = (999).to_bytes(4, "little")
    raw[192 + 64 + 48 + 36 + 8:192 + 64 + 48 + 36 + 12] = (7).to_bytes(4, "little")
    raw[192 + 22] = 5
    recs = np.frombuffer(bytes(raw), dt)
    assert recs["depth_n"][1] == 5 and recs["bid_px"][1] == 1000
    b = BR.depth_levels(recs, "B")
    a = BR.depth_levels(recs, "S")
    assert b.shape == (2, 5, 3) and b[1, 0, 0] == 1000 and b[1, 1, 0] == 999
    assert a[1, 4].tolist() == [0, 0, 7]
    base = BR.base(recs)
    assert base.dtype == BR.DTYPE and base["bid_px"][1] == 1000
    assert BR.depth_levels(base, "B").shape == (2, 1, 3)
    with pytest.raises(ValueError):
        BR.depth_levels(recs, "X")


def test_top_depth_validation():
    from hw.top import Top

    t = Top(depth_n=5)
    assert t.params.depth_n == 5 and t.params.record_bytes == 192
    assert t.table["ID_RECORD_BYTES"].const == 192
    assert t.table["ID_DEPTH_N"].const == 5
    assert Top().params.record_bytes == 64
    for bad in (0, 17):
        with pytest.raises(ValueError):
            Top(depth_n=bad)
    with pytest.raises(ValueError):
        Top(depth_n=5, k=4)  # more levels than the ladder's cache
    with pytest.raises(TypeError):
        Top(depth_n=2.0)


def test_top_bbo_width():
    from amaranth.hdl import Shape
    from amaranth.lib import stream

    from hw.top import Top

    for n in (1, 5):
        sig = Top(depth_n=n).signature.members["bbo"].signature
        assert isinstance(sig, stream.Signature)
        assert Shape.cast(sig.members["payload"].shape).width == 8 * BR.record_bytes(n)


@pytest.mark.parametrize("beats", [1, 3])
def test_record_beats(beats):
    """Records of ``beats`` * 512 bits leave as beats low bytes first, in order, under random
    backpressure and gaps; then, with no stall, one beat per clock."""
    import random

    from amaranth.sim import Simulator

    from hw.platform.alveo import RecordBeats

    dut = RecordBeats(512 * beats)
    rng = random.Random(beats)
    recs = [rng.getrandbits(512 * beats) for _ in range(40)]
    want = [(r >> (512 * i)) & ((1 << 512) - 1) for r in recs for i in range(beats)]
    got: list[int] = []
    lasts: list[int] = []
    busy = []  # (cycle, beat transferred) once nothing stalls any more

    async def bench(ctx):
        pending = list(recs)
        free = len(recs) // 2  # the first half with stalls and gaps, then none
        for _cyc in range(4000):
            calm = len(pending) <= free
            stall = not calm and rng.random() < 0.3
            ctx.set(dut.o_stream.ready, 0 if stall else 1)
            if pending and (calm or rng.random() < 0.7):
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload, pending[0])
            else:
                ctx.set(dut.i_stream.valid, 0)
            ov, ordy = ctx.get(dut.o_stream.valid), ctx.get(dut.o_stream.ready)
            if ov and ordy:
                got.append(ctx.get(dut.o_stream.payload))
                lasts.append(ctx.get(dut.o_last))
            if calm and len(pending) < free:
                busy.append(bool(ov and ordy))
            if ctx.get(dut.i_stream.valid) and ctx.get(dut.i_stream.ready):
                pending.pop(0)
            await ctx.tick()
            if not pending and len(got) == len(want):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want
    assert lasts == [int(i == beats - 1) for _ in recs for i in range(beats)]
    assert busy and all(busy[:-1]), "a bubble between beats with nothing stalling"
