"""cocotb bench of the A/B ingress (``hw.ingress.Ingress(lines=2)``, ``hw.arbiter``).

One generated MoldUDP64 stream is sent on both lines, each line with its own seeded damage
(packets dropped, duplicated, swapped with the next one) and its own timing; a line can die.
Expected records and counters come from :func:`host.card.ab_model.ab_ingress` fed both lines'
frames with the cycle each frame's header was accepted; the bench only compares. Every record
is also checked against the independent decoder (itchfeed on the raw message bytes).

Spaced schedules (each packet decided before the next one arrives) compare every counter,
the per-line ones included; the full-rate schedule with backpressure compares every record and
every ingress counter, and the per-line counters that do not depend on which copy came first.
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from host.card.ab_model import ab_ingress, header_beat
from host.card.ingress_model import IngressModel, ip_to_int, session_to_int
from host.feed import net
from hw.arbiter import ARBITER_COUNTERS
from hw.ingress import INGRESS_COUNTER_NAMES
from hw.layouts import ItchRecord, mac_beat_layout, pack, record_layout_fields
from sim.ingress.independent import independent_record
from sim.ingress.stimulus import SESSION, packets, realistic_messages
from sim.streams import (
    StreamMonitor,
    StreamSink,
    cycle_now,
    frame_to_beats,
    pauses,
    reset_dut,
    start_clock,
)

W = 64
NB = W // 8
N = int(os.environ.get("N_MESSAGES", "1500"))
WIDTHS = record_layout_fields()
LAYOUT = mac_beat_layout(W)


def damage(frames, rng: random.Random, *, drop=0.0, dup=0.0, swap=0.0, dead_after=None):
    """One line's copy of ``frames``: each dropped, repeated or swapped with the next at the
    given rates; nothing after index ``dead_after`` (a dead line)."""
    out = []
    i = 0
    n = len(frames) if dead_after is None else min(dead_after, len(frames))
    while i < n:
        r = rng.random()
        if r < drop:
            i += 1
        elif r < drop + dup:
            out += [frames[i], frames[i]]
            i += 1
        elif r < drop + dup + swap and i + 1 < n:
            out += [frames[i + 1], frames[i]]
            i += 2
        else:
            out.append(frames[i])
            i += 1
    return out


class Line:
    """Drive one MAC input from a schedule ``[(not_before_cycle, frame), ...]``; records the
    cycle each frame's header beat was accepted (the arbiter model's arrival time)."""

    def __init__(self, dut, prefix, idle=None):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.clk = dut.clk
        self.idle = idle
        self.valid.value = 0
        self.events = []  # (time, frame, error)
        self.stall = 0

    async def run(self, schedule, probe: IngressModel, t0: int):
        for not_before, frame in schedule:
            while cycle_now() - t0 < not_before:
                await RisingEdge(self.clk)
            hb = header_beat(probe, frame)
            for k, beat in enumerate(frame_to_beats(frame, W)):
                while self.idle is not None and next(self.idle):
                    self.valid.value = 0
                    await RisingEdge(self.clk)
                self.valid.value = 1
                self.payload.value = pack(LAYOUT, beat)
                while True:
                    await ReadOnly()
                    ok = int(self.ready.value)
                    await RisingEdge(self.clk)
                    if ok:
                        break
                    self.stall += 1
                if k == hb:
                    self.events.append((cycle_now() - 1 - t0, frame, False))
            self.valid.value = 0
        self.valid.value = 0


class Bench:
    def __init__(self, dut, *, timeout=400, bp=None, idle_a=None, idle_b=None):
        self.dut = dut
        self.timeout = timeout
        self.probe = IngressModel(data_width=W, session=SESSION)
        self.a = Line(dut, "i_stream", idle_a)
        self.b = Line(dut, "i_stream_b", idle_b)
        self.sink = StreamSink(dut, "o_stream", dut.clk, layout=ItchRecord, backpressure=bp)
        self.mons = [
            StreamMonitor(dut, "i_stream", dut.clk, layout=LAYOUT),
            StreamMonitor(dut, "i_stream_b", dut.clk, layout=LAYOUT),
            StreamMonitor(dut, "o_stream", dut.clk, layout=ItchRecord),
        ]
        dut.config__enable.value = 1
        dut.rx_ns.value = 0  # the frames' stamp (checked in sim/ethernet and sim/top)
        dut.config__udp_port.value = net.DEFAULTS["dst_port"]
        dut.config__ip_dst.value = ip_to_int(net.DEFAULTS["dst_ip"])
        dut.config__session.value = session_to_int(SESSION)
        dut.config__session_valid.value = 1
        dut.config__ab_timeout.value = timeout

    async def run(self, sched_a, sched_b, *, exact_lines=True):
        await start_clock(self.dut.clk)
        await reset_dut(self.dut, self.dut.clk)
        t0 = cycle_now()
        ta = cocotb.start_soon(self.a.run(sched_a, self.probe, t0))
        tb = cocotb.start_soon(self.b.run(sched_b, self.probe, t0))
        await ta
        await tb
        for _ in range(self.timeout + 200):
            await RisingEdge(self.dut.clk)
        ing, arb = ab_ingress([self.a.events, self.b.events], session=SESSION,
                              timeout=self.timeout, data_width=W)
        recs = ing.records
        got = []
        while not self.sink.empty():
            got.append(self.sink.recv_nowait())
        assert len(got) == len(recs), f"{len(got)} records, model {len(recs)}"
        for k, (g, r) in enumerate(zip(got, recs, strict=True)):
            assert g == r.fields, f"record {k}:\n got {g}\n exp {r.fields}"
            ind = independent_record(r.message, r.fields["seq"], r.fields["gap"], WIDTHS)
            assert g == ind, f"record {k} vs itchfeed:\n got {g}\n exp {ind}"
        await ReadOnly()
        bad = {}
        for name in INGRESS_COUNTER_NAMES:
            v = int(getattr(self.dut, f"counters__{name}").value)
            if v != ing.counters[name] & 0xFFFFFFFF:
                bad[name] = (v, ing.counters[name])
        line = {n: int(getattr(self.dut, f"line_counters__{n}").value) for n in ARBITER_COUNTERS}
        names = ARBITER_COUNTERS if exact_lines else ("line_a_packets", "line_b_packets")
        for name in names:
            if line[name] != arb.counters[name]:
                bad[name] = (line[name], arb.counters[name])
        dups = line["line_a_duplicates"] + line["line_b_duplicates"]
        mdups = arb.counters["line_a_duplicates"] + arb.counters["line_b_duplicates"]
        if dups != mdups:
            bad["duplicates a+b"] = (dups, mdups)
        assert not bad, f"counters (gateware, model) differ: {bad}"
        st = ing.status()
        for k in ("expected_seq", "last_gap_first", "last_gap_count"):
            v = int(getattr(self.dut, f"status__{k}").value)
            assert v == st[k], f"status {k}: {v} != {st[k]}"
        for mon in self.mons:
            mon.check()
        nz = {k: v for k, v in ing.counters.items() if v and not k.startswith("msg_")}
        self.dut._log.info("%d records; ingress %s; lines %s (model %s)", len(got), nz, line,
                           arb.counters)
        return ing, arb, line


def stream(seed, n=N, max_payload=300):
    msgs = realistic_messages(n, seed=seed)
    return [net.udp_frame(p) for p in packets(msgs, seed=seed, max_payload=max_payload)]


def spaced(frames, space, start=0):
    return [(start + k * space, f) for k, f in enumerate(frames)]


SPACE = 120  # cycles between packets: each is decided before the next arrives


@cocotb.test()
async def drops_dups_reorders(dut):
    """Independent drops, duplicates and swaps on both lines, B 2.5 packets behind A: every
    gap one line has is filled from the other, a gap only where both miss."""
    frames = stream(21)
    rng = random.Random(21)
    a = damage(frames, rng, drop=0.08, dup=0.04, swap=0.04)
    b = damage(frames, rng, drop=0.08, dup=0.04, swap=0.04)
    bench = Bench(dut, timeout=2000)
    ing, arb, line = await bench.run(spaced(a, SPACE), spaced(b, SPACE, start=SPACE * 5 // 2))
    assert line["line_a_filled"] and line["line_b_filled"], line
    assert line["line_a_duplicates"] and line["line_b_duplicates"], line
    # a gap is flagged exactly where both lines lack a packet's messages
    assert ing.counters["gaps"] == arb.counters["line_timeouts"] + sum(
        1 for x, how, *_ in arb.log if how == "gap"), (ing.counters["gaps"], arb.log)


@cocotb.test()
async def clean_lines(dut):
    """Both lines whole: no gap, every second copy dropped, nothing filled."""
    frames = stream(22, n=600)
    bench = Bench(dut, timeout=2000)
    ing, arb, line = await bench.run(spaced(frames, SPACE), spaced(frames, SPACE, start=40))
    assert ing.counters["gaps"] == 0
    assert line["line_b_duplicates"] == len(frames) and line["line_a_duplicates"] == 0, line
    assert line["line_a_filled"] == line["line_b_filled"] == 0


async def _dead(dut, dead):
    frames = stream(23 + dead)
    rng = random.Random(23 + dead)
    lines = [damage(frames, rng, drop=0.05), damage(frames, rng, drop=0.05)]
    lines[dead] = damage(frames, rng, drop=0.05, dead_after=len(frames) // 3)
    bench = Bench(dut, timeout=300)
    ing, arb, line = await bench.run(spaced(lines[0], SPACE), spaced(lines[1], SPACE, start=31))
    assert line["line_timeouts"] > 0 and ing.counters["gaps"] > 0, (line, ing.counters["gaps"])


@cocotb.test()
async def dead_line_a(dut):
    """Line A dies a third of the way in; B's own drops become gaps after the timeout."""
    await _dead(dut, 0)


@cocotb.test()
async def dead_line_b(dut):
    """Line B dies a third of the way in."""
    await _dead(dut, 1)


@cocotb.test()
async def full_rate_backpressure(dut):
    """Both lines back to back with random pauses, the sink with backpressure: every record
    and ingress counter exact (which copy wins a tie is timing, so only the per-line packet
    counts and the duplicate total are compared)."""
    frames = stream(24, n=1200, max_payload=200)
    rng = random.Random(24)
    a = damage(frames, rng, drop=0.05, dup=0.03, swap=0.03)
    b = damage(frames, rng, drop=0.05, dup=0.03, swap=0.03)
    bench = Bench(dut, timeout=4000, bp=pauses(0.3, 5), idle_a=pauses(0.1, 6),
                  idle_b=pauses(0.15, 7))
    await bench.run([(0, f) for f in a], [(0, f) for f in b], exact_lines=False)


@cocotb.test()
async def full_rate_no_stall(dut):
    """Clean lines back to back, no backpressure: the arbiter never stalls a line."""
    frames = stream(25, n=1200, max_payload=1000)
    bench = Bench(dut, timeout=4000)
    await bench.run([(0, f) for f in frames], [(0, f) for f in frames], exact_lines=False)
    assert bench.a.stall == 0 and bench.b.stall == 0, (bench.a.stall, bench.b.stall)
