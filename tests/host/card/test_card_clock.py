"""The card's hardware clock (hw/nsclock.py, CLOCK_* registers) through the real driver on the
simulated card: set, rate, trim, step, and the records' ``rx_ns`` (the clock at the first MAC
beat of each message's frame)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hw.top", reason="hw/top.py has not landed")

from host.card import CardError  # noqa: E402
from host.card.replay import replay_through_card, resolve_locates  # noqa: E402
from host.feed.capture import packetize_itch  # noqa: E402
from host.feed.generator import generate  # noqa: E402
from hw import bbo_record  # noqa: E402
from hw.nsclock import increment  # noqa: E402


def _rate(card, idle: int = 10_000):
    """(clock ns, cycles) advanced over ``idle`` idle cycles, each side read the same way."""
    t1, c1 = card.clock_ns(), card.cycles()
    card.run(max_cycles=idle, idle_cycles=idle + 1)  # idle, but the full count
    t2, c2 = card.clock_ns(), card.cycles()
    return t2 - t1, c2 - c1


def test_reset_rate_is_the_nominal_clock(fresh):
    inc_ns, inc_frac = increment(fresh.info.params.clk_hz)
    assert (fresh.read("CLOCK_INCR_NS"), fresh.read("CLOCK_INCR_FRAC")) == (inc_ns, inc_frac)
    dt, dc = _rate(fresh)
    assert dc > 10_000
    # 3.1030303... ns a cycle: within one ns of the exact value
    assert abs(dt - dc * 1e9 / fresh.info.params.clk_hz) <= 1


def test_set_step_and_trim(fresh):
    t0 = 1_764_892_800_000_000_000  # 2025-12-05 00:00 UTC, ns since the epoch (> 2**32)
    fresh.set_clock(t0)
    now = fresh.clock_ns()
    # a load shows two cycles after its pulse (hw/nsclock.py): a read right after the set may
    # see the set value itself; the next read must see the clock running
    assert t0 <= now < t0 + 1_000
    assert now < fresh.clock_ns() < now + 1_000
    # an exact 4 ns per cycle: the clock advances by 4 x the cycles, to the ns
    fresh.trim_clock(clk_hz=250e6)
    dt, dc = _rate(fresh)
    assert dt == 4 * dc
    # +1000 ppb: 4.000004 ns a cycle (8.32 fixed point, rounded)
    inc = fresh.trim_clock(1000, clk_hz=250e6)
    assert inc == (4, round(0.000004 * 2**32))
    dt, dc = _rate(fresh, 100_000)
    assert abs(dt - dc * 4.000004) <= 1
    # a step moves the clock once, backwards too
    fresh.trim_clock(clk_hz=250e6)
    a, ca = fresh.clock_ns(), fresh.cycles()
    fresh.step_clock(-5_000)
    # a step shows on CLOCK_NOW 3 cycles after its pulse (hw/nsclock.py's pipeline); the
    # simulated register bus can read sooner than that, a PCIe read never does
    fresh.run(max_cycles=8, idle_cycles=9)
    b, cb = fresh.clock_ns(), fresh.cycles()
    assert b - a == 4 * (cb - ca) - 5_000
    # bad values are refused before any register is written
    for bad in (-1, 1 << 64):
        with pytest.raises(ValueError):
            fresh.set_clock(bad)
    with pytest.raises(ValueError):
        fresh.step_clock(1 << 31)
    with pytest.raises(ValueError):
        fresh.trim_clock(clk_hz=1e3)


def test_records_carry_the_frame_stamp(fresh):
    """Every record's rx_ns is the clock when its message's frame arrived (its first beat
    valid on mac): the records of one frame share it, frames in order, and at exactly 4 ns a
    cycle it lies between the previous frame's last accepted beat and this frame's first
    accepted beat (arrival is at the earliest the cycle after the previous frame ended, at the
    latest the cycle the first beat is taken)."""
    feed = packetize_itch(generate(4000, 4, 9))
    locs = resolve_locates(feed, None, fresh.slots)
    fresh.trim_clock(clk_hz=250e6)
    fresh.set_clock(0)
    # clock = 4 x (shim cycle + c0): the read samples the clock in a cycle between these two
    before = fresh.t.cycle
    now = fresh.clock_ns()
    after = fresh.t.cycle
    c0_lo, c0_hi = now // 4 - after, now // 4 - before
    rp = replay_through_card(fresh, feed, locs, latency=True, recover=False)
    assert rp.run.beat_cycles is not None
    nb = np.maximum(1, (feed.lens.astype(np.int64) + 7) // 8)
    base = np.zeros(nb.size + 1, np.int64)
    np.cumsum(nb, out=base[1:])
    bc = rp.run.beat_cycles.astype(np.int64)
    first, last = bc[base[:-1]], bc[base[1:] - 1]  # accept cycles of each frame's ends
    keep = (rp.recs["flags"] & (bbo_record.FLAG_CLEARED | bbo_record.FLAG_DEPTH_ONLY)) == 0
    recs = rp.recs[keep]
    idx = rp.trace["msg_index"]
    assert len(recs) == len(idx) > 500
    rx = recs["rx_ns"].astype(np.int64)
    fr = feed.frame[idx]
    assert (np.diff(rx) >= 0).all() and len(np.unique(rx)) > 50  # ~88 frames
    same = np.diff(fr) == 0
    assert (np.diff(rx)[same] == 0).all()  # one stamp per frame
    assert (np.diff(rx)[~same] > 0).all()  # frames stamped apart
    # the stamp in shim cycles lies in [rx/4 - c0_hi, rx/4 - c0_lo] (c0 known to the cycles a
    # register read takes), +-1 for the edge conventions of the shim's cycle count
    assert (rx % 4 == 0).all()
    ok = fr > 0
    lo = last[np.maximum(fr - 1, 0)] + 1
    assert (rx[ok] // 4 - c0_lo >= lo[ok] - 1).all()
    assert (rx // 4 - c0_hi <= first[fr] + 1).all()
    assert c0_hi - c0_lo < 64


def test_trim_needs_an_identified_card_or_a_clock():
    from host.card import Card
    from host.card.sim import SimTransport

    c = Card(SimTransport(), check=False)
    try:
        with pytest.raises(CardError):
            c.trim_clock(10)
    finally:
        c.close()
