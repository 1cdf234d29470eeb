"""MacRxFifo (10G/25G MAC -> core clock crossing, hw/platform/mac.py) in the Amaranth simulator,
with the MAC clock at 390.625 MHz (25G) or 156.25 MHz (10G) and the core at 322 MHz: frames of
random lengths with random gaps and output backpressure come out byte-exact and in order with
``error`` on the last beat; frames arriving while the FIFO lacks room are dropped whole and
each counted once; every beat of a frame carries one stamp, taken within a few core cycles of
the frame's first beat leaving the MAC, and stamps never go back in time."""

import random

import pytest
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from hw.platform.mac import MacRxFifo
from sim.top.mac_sink import MacSink

CORE_PERIOD = 1 / 322.265625e6


def _run(frames, *, mac_period, ready_prob, depth, max_frame_bytes, gap_prob, cycles):
    dut = MacRxFifo(depth=depth, max_frame_bytes=max_frame_bytes)
    top = Module()
    top.domains.mac = ClockDomain("mac")
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    rng = random.Random(1)
    sink = MacSink(dut)
    sent_at = {}  # frame -> core cycle count when its first beat was written
    core = [0]

    async def clock(ctx):
        while True:
            ctx.set(dut.now, 3 * core[0])  # a ns clock stand-in: 3 per core cycle
            await ctx.tick("sync")
            core[0] += 1

    async def source(ctx):
        for data, err in frames:
            beats = [data[i:i + 8] for i in range(0, len(data), 8)]
            for i, b in enumerate(beats):
                while rng.random() < gap_prob:
                    ctx.set(dut.rx_tvalid, 0)
                    await ctx.tick("mac")
                if i == 0:
                    sent_at[data] = core[0]
                ctx.set(dut.rx_tdata, int.from_bytes(b.ljust(8, b"\0"), "little"))
                ctx.set(dut.rx_tkeep, (1 << len(b)) - 1)
                ctx.set(dut.rx_tlast, i == len(beats) - 1)
                ctx.set(dut.rx_tuser, err and i == len(beats) - 1)
                ctx.set(dut.rx_tvalid, 1)
                await ctx.tick("mac")
        ctx.set(dut.rx_tvalid, 0)

    async def drain(ctx):
        for _ in range(cycles):
            r = rng.random() < ready_prob
            ctx.set(dut.o_ready, r)
            await ctx.delay(1e-11)
            sink.sample(ctx, r)
            await ctx.tick("sync")

    sim = Simulator(top)
    sim.add_clock(CORE_PERIOD, domain="sync")
    sim.add_clock(mac_period, domain="mac")
    sim.add_process(clock)
    sim.add_testbench(source)
    sim.add_testbench(drain)
    sim.run()
    assert sink.partial == b"", "a frame was cut"
    stamps = []
    for (data, _), ns in zip(sink.frames, sink.stamps, strict=True):
        assert len(ns) == 1, "every beat of a frame carries the same stamp"
        (s,) = ns
        assert s % 3 == 0
        lag = s // 3 - sent_at[data]
        assert 0 <= lag <= 4, f"stamp {lag} core cycles after the first beat left the MAC"
        stamps.append(s)
    assert stamps == sorted(stamps)
    return sink.frames, sink.overflows


@pytest.mark.parametrize("mac_mhz", [390.625, 156.25])
def test_mac_fifo_exact(mac_mhz):
    rng = random.Random(int(mac_mhz))
    frames = [(bytes(rng.randrange(256) for _ in range(rng.randrange(64, 300))),
               rng.random() < 0.2) for _ in range(30)]
    got, ovf = _run(frames, mac_period=1e-6 / mac_mhz, ready_prob=0.6, depth=256,
                    max_frame_bytes=512, gap_prob=0.5, cycles=12000)
    assert ovf == 0
    assert got == frames


def test_mac_fifo_drops_whole_frames_when_full():
    rng = random.Random(9)
    frames = [(bytes(rng.randrange(256) for _ in range(400)), False) for _ in range(12)]
    got, ovf = _run(frames, mac_period=1e-6 / 390.625, ready_prob=0.05, depth=128,
                    max_frame_bytes=512, gap_prob=0.0, cycles=20000)
    assert ovf > 0 and len(got) + ovf == len(frames)
    assert got == [f for f in frames if f in got]  # whole and in order


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_mac_fifo_parameters():
    with pytest.raises(ValueError):
        MacRxFifo(depth=100)  # not a power of two
    with pytest.raises(ValueError):
        MacRxFifo(depth=1024, max_frame_bytes=9600)  # less than two maximum frames
    with pytest.raises(TypeError):
        MacRxFifo(depth=4096.0)
    with pytest.raises(ValueError):
        MacRxFifo(w_domain="sync")
