"""The real driver against the simulated card (the Verilated hw/top.py) on generator streams.

Every trace is compared with the reference book (host.card.model.reference_trace). The model is
built once (cached under build/card/); the first run compiles the top level.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hw.top", reason="hw/top.py has not landed")

from host.card.model import (  # noqa: E402
    card_trace,
    decode,
    first_difference,
    format_difference,
    reference_trace,
)
from host.card.replay import replay_through_card, resolve_locates  # noqa: E402
from host.card.report import latency_by_type  # noqa: E402
from host.card.ticks import tick_codes  # noqa: E402
from host.feed.book import BBO_DTYPE  # noqa: E402
from host.feed.capture import load_feed, packetize_itch, symbol_directory  # noqa: E402
from host.feed.generator import generate, write_pcap_from_itch  # noqa: E402
from hw import bbo_record  # noqa: E402

N_MSG = 12_000
LAT_MAX = 36  # cycles, last byte's MAC beat -> record stamp (measured max 34)
N_SYM = 6


@pytest.fixture(scope="module")
def itch():
    return generate(N_MSG, N_SYM, 5)


def same(card_tr, ref):
    i = first_difference(card_tr, ref)
    assert i is None, format_difference(card_tr, ref, i)


def test_stream_matches_reference_and_counters(fresh, itch):
    feed = packetize_itch(itch)
    locs = resolve_locates(feed, None, fresh.slots)
    rp = replay_through_card(fresh, feed, locs, batch_frames=64)
    assert len(rp.trace) > 100
    same(rp.trace, reference_trace(feed.itch, locs))
    c = rp.counters
    assert c["frames"] == feed.n_frames
    assert c["packets"] == feed.n_frames
    assert c["messages"] == feed.n_messages
    types = np.frombuffer(bytes(feed.mtype), np.uint8)
    assert c["msg_a"] == int((types == ord("A")).sum())
    assert c["msg_d"] == int((types == ord("D")).sum())
    assert c["bbo_records"] == len(rp.recs)
    assert c["gaps"] == 0 and rp.status["seen_gap"] == 0
    assert rp.status["expected_seq"] == int(feed.seq[-1]) + 1
    assert np.array_equal(rp.recs["record_seq"], np.arange(len(rp.recs)))
    assert not (rp.recs["flags"] & (bbo_record.FLAG_GAP | bbo_record.FLAG_BOOK_INVALID)).any()
    lat = latency_by_type(rp)
    assert set(lat) <= set("AFECXDU") and {"A", "D", "E"} <= set(lat)
    # The one-lane card at full input rate (64-bit wire: at most one message per 4 cycles):
    # min 22 (U 25), median 24-28, max 29-34 cycles per type on this stream (2026-12-06, after
    # MoldUDP64's three stages: +3 on every message; 19 / 21-25 / 26-31 before).
    # Issue 14's contract (<= 20 cycles MAC -> DMA record for every message) is not met; the
    # bound catches a regression of the pipeline or of the card_cycles stamp.
    assert all(v.min() >= 17 and v.max() <= LAT_MAX for v in lat.values()), {
        t: (int(v.min()), int(v.max())) for t, v in lat.items()}
    # bbo.ready is always high: every record is taken the cycle after its stamp
    out = latency_by_type(rp, out=True)
    assert all(np.array_equal(out[t], lat[t] + 1) for t in lat)


def test_cycle_counter_is_the_records_time_base(fresh):
    t = fresh.t
    before = t.cycle - t.epoch
    now = fresh.cycles()
    after = t.cycle - t.epoch
    assert before <= now <= after


def test_pcap_stream(fresh, itch, tmp_path):
    path = tmp_path / "s.pcap"
    write_pcap_from_itch(itch, path, seed=9)
    feed = load_feed(path)
    locs = resolve_locates(feed, None, fresh.slots)
    rp = replay_through_card(fresh, feed, locs)
    same(rp.trace, reference_trace(feed.itch, locs))
    assert rp.counters["messages"] == N_MSG


def test_gap_stale_seen_and_cleared_by_host(fresh, itch):
    feed = packetize_itch(itch, drop_packets=[40, 41, 90])
    locs = resolve_locates(feed, None, fresh.slots)
    rp = replay_through_card(fresh, feed, locs, batch_frames=16, recover=False)
    # the host saw the gaps and cleared the books twice (two separate gaps, other batches)
    assert len(rp.restarts) == 2
    assert rp.counters["gaps"] == 2
    assert rp.status["seen_gap"] == 0  # cleared by the host
    assert rp.counters["duplicates"] == 0
    jumps = np.flatnonzero(np.diff(feed.seq) != 1) + 1  # first message after each gap
    assert len(jumps) == 2
    assert rp.counters["missing"] == int((feed.seq[jumps] - feed.seq[jumps - 1] - 1).sum())
    last = jumps[-1]
    assert rp.status["last_gap_first"] == int(feed.seq[last - 1]) + 1
    assert rp.status["last_gap_count"] == int(feed.seq[last] - feed.seq[last - 1] - 1)
    # stale flag: every record from the first message after a gap until the host's clear
    flagged = (rp.recs["flags"] & bbo_record.FLAG_STALE) != 0
    idx = rp.trace["msg_index"]
    window = np.zeros(len(idx), bool)
    for g, r in zip(jumps, rp.restarts, strict=True):
        assert g < r
        window |= (idx >= g) & (idx < r)
    assert flagged.any() and np.array_equal(flagged, window)
    same(rp.trace, reference_trace(feed.itch, locs, restarts=rp.restarts))


def test_gap_flag_stays_until_host_clears(fresh, itch):
    feed = packetize_itch(itch, drop_packets=[30])
    locs = resolve_locates(feed, None, fresh.slots)
    rp = replay_through_card(fresh, feed, locs, clear_on_gap=False, recover=False)
    assert rp.status["seen_gap"] == 1
    fresh.clear_sticky("seen_gap")
    assert fresh.status()["seen_gap"] == 0


def test_subscriptions_changed_while_running(fresh, itch):
    feed = packetize_itch(itch)
    directory = symbol_directory(feed.itch)
    locs = sorted(directory.values())
    first, later = locs[:3], locs[3:5]
    fresh.configure(udp_port=feed.dst_port, ip_dst=feed.dst_ip, session=feed.session)
    ticks = tick_codes(feed.itch, locs)
    fresh.subscribe(first, ticks=ticks)
    half = feed.n_frames // 2
    fresh.send(feed.slice_frames(0, half))
    fresh.run()
    raw1 = [fresh.read_raw()[0]]
    cut = int((feed.frame < half).sum())
    fresh.unsubscribe([first[0]])
    fresh.subscribe(later, ticks=ticks)
    fresh.send(feed.slice_frames(half, feed.n_frames))
    fresh.run()
    raw = np.concatenate(raw1 + [fresh.read_raw(1 << 20)[0]])
    got = card_trace(decode(raw), feed.seq)
    # expected: first[1:] all along; first[0] until the cut; later from the cut on empty books
    full = reference_trace(feed.itch, first)
    keep = (full["locate"] != first[0]) | (full["msg_index"] < cut)
    late = reference_trace(feed.itch, later, restarts=[cut])
    late = late[late["msg_index"] >= cut]
    exp = np.concatenate([full[keep], late])
    exp = exp[np.argsort(exp["msg_index"], kind="stable")].astype(BBO_DTYPE)
    assert len(late) > 0
    same(got, exp)


def test_many_gap_clears_stay_exact(fresh, itch):
    # issue 13 item 8: replay_through_card clears every book after each batch that saw a gap;
    # hundreds of clears wrap every slot's order-table epoch (8 bits: 256 clears) more than
    # once, and orders that straddle the clears must stay gone (the card scrubs the table).
    feed = packetize_itch(itch, max_payload=120, drop_packets=range(3, 10_000, 4))
    locs = resolve_locates(feed, None, fresh.slots)
    rp = replay_through_card(fresh, feed, locs, batch_frames=3, latency=False, recover=False)
    assert len(rp.restarts) >= 600, len(rp.restarts)
    assert rp.counters["table_full"] == 0
    assert len(rp.trace) > 1000
    same(rp.trace, reference_trace(feed.itch, locs, restarts=rp.restarts))
    assert not (rp.recs["flags"] & bbo_record.FLAG_BOOK_INVALID).any()
