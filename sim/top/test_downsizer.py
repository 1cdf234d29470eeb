"""MacDownsizer (Alveo wrapper, 512 -> 64 bit MAC stream) in the Amaranth simulator: frames of
random lengths with random gaps and output backpressure come out byte-exact, with error on the
last beat; frames arriving while the FIFO lacks room are dropped whole and counted; every beat
of a frame carries the ``now`` of the cycle its first 512-bit beat arrived (the SOP stamp)."""

import random

from amaranth.sim import Simulator

from hw.platform.alveo import MacDownsizer
from sim.top.mac_sink import MacSink


def _run(frames, *, ready_prob, depth, max_frame_bytes, gap_prob):
    dut = MacDownsizer(depth=depth, max_frame_bytes=max_frame_bytes)
    rng = random.Random(1)
    sink = MacSink(dut)
    sent_ns = {}
    cycle = [0]

    async def clock(ctx):
        # the ns clock stand-in: a counter the DUT samples (one value per cycle)
        while True:
            ctx.set(dut.now, 1_000_000 + 3 * cycle[0])
            await ctx.tick()
            cycle[0] += 1

    async def source(ctx):
        for data, err in frames:
            beats = [data[i:i + 64] for i in range(0, len(data), 64)]
            for i, b in enumerate(beats):
                while rng.random() < gap_prob:
                    ctx.set(dut.rx_tvalid, 0)
                    await ctx.tick()
                if i == 0:
                    sent_ns[data] = 1_000_000 + 3 * cycle[0]
                ctx.set(dut.rx_tdata, int.from_bytes(b.ljust(64, b"\0"), "little"))
                ctx.set(dut.rx_tkeep, (1 << len(b)) - 1)
                ctx.set(dut.rx_tlast, i == len(beats) - 1)
                ctx.set(dut.rx_tuser, err and i == len(beats) - 1)
                ctx.set(dut.rx_tvalid, 1)
                await ctx.tick()
        ctx.set(dut.rx_tvalid, 0)

    async def drain(ctx):
        for _ in range(20000):
            r = rng.random() < ready_prob
            ctx.set(dut.o_ready, r)
            await ctx.delay(1e-10)
            sink.sample(ctx, r)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(clock)
    sim.add_testbench(source)
    sim.add_testbench(drain)
    sim.run()
    # one stamp per frame, on every beat: the cycle its first beat arrived
    assert sink.stamps == [{sent_ns[d]} for d, _ in sink.frames]
    return sink.frames, sink.overflows


def test_downsizer_exact():
    rng = random.Random(7)
    frames = [(bytes(rng.randrange(256) for _ in range(rng.randrange(60, 300))),
               rng.random() < 0.2) for _ in range(25)]
    # input 1 beat / 20 cycles < output 0.7 x 8 words: the FIFO never lacks room
    got, ovf = _run(frames, ready_prob=0.7, depth=32, max_frame_bytes=512, gap_prob=0.95)
    assert ovf == 0
    assert got == frames


def test_downsizer_drops_whole_frames_when_full():
    rng = random.Random(8)
    frames = [(bytes(rng.randrange(256) for _ in range(400)), False) for _ in range(12)]
    got, ovf = _run(frames, ready_prob=0.05, depth=16, max_frame_bytes=512, gap_prob=0.0)
    assert ovf > 0 and len(got) + ovf == len(frames)
    kept = [f for f in frames if f in got]
    assert got == kept  # the frames that got through are whole and in order


def test_downsizer_one_word_per_cycle():
    """A frame's 64-bit words leave on consecutive cycles, across 512-bit beats (no bubble)."""
    dut = MacDownsizer(depth=64, max_frame_bytes=2048)
    n = 1500
    out_cycles = []

    async def bench(ctx):
        ctx.set(dut.o_ready, 1)
        beats = -(-n // 64)
        cyc = 0
        for i in range(beats):
            ctx.set(dut.rx_tkeep, (1 << min(64, n - 64 * i)) - 1)
            ctx.set(dut.rx_tlast, i == beats - 1)
            ctx.set(dut.rx_tvalid, 1)
            if ctx.get(dut.o_valid):
                out_cycles.append(cyc)
            await ctx.tick()
            cyc += 1
        ctx.set(dut.rx_tvalid, 0)
        while not out_cycles or len(out_cycles) < -(-n // 8):
            if ctx.get(dut.o_valid):
                out_cycles.append(cyc)
            await ctx.tick()
            cyc += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(out_cycles) == -(-n // 8)
    assert out_cycles[-1] - out_cycles[0] == len(out_cycles) - 1
