"""Re-seed of a symbol's slot from the host's reference book (issue 13 item 6), on the
simulated card (the Verilated hw/top.py).

The card's injection path (``INJECT_*`` registers -> ``hw.book.Book.inj``) is checked record
by record against :class:`host.feed.book.L3Book`: the commit record, every record after a
re-seed (flags included), the injection competing with the feed under output backpressure,
and the automatic recovery of :func:`host.card.replay.replay_through_card` after sequence gaps
and off-grid prices.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("cocotb_tools")  # the Verilator toolchain of the simulated card

from host.card import CardError  # noqa: E402
from host.card.model import (  # noqa: E402
    card_trace,
    decode,
    first_difference,
    format_difference,
    reference_trace,
    trace_flags,
)
from host.card.replay import (  # noqa: E402
    live_orders,
    replay_through_card,
    resolve_locates,
    setup_card,
)
from host.card.report import recovered_view, verify  # noqa: E402
from host.feed.book import L3Book, iter_indexed  # noqa: E402
from host.feed.capture import packetize_itch  # noqa: E402
from host.feed.generator import generate  # noqa: E402
from hw import bbo_record  # noqa: E402

N_MSG = 12_000
N_SYM = 6
U32_MAX = (1 << 32) - 1


@pytest.fixture(scope="module")
def itch():
    return generate(N_MSG, N_SYM, 7)


@pytest.fixture
def fresh(card):
    card.t.set_stalls(1.0, 1.0)
    card.reset(hard=True)
    return card


def same(card_tr, ref):
    i = first_difference(card_tr, ref)
    assert i is None, format_difference(card_tr, ref, i)


def book_at(itch, locates, n):
    """The reference book after messages ``0 .. n - 1``."""
    b = L3Book(locates)
    for idx, m in iter_indexed(itch):
        if idx >= n:
            break
        b.apply(m)
    return b


def run_frames(card, feed, lo, hi):
    card.send(feed.slice_frames(lo, hi))
    card.run()
    return card.read_raw(1 << 20)[0]


def bbo_tuple(rec):
    return tuple(int(rec[k]) for k in ("bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz",
                                        "ask_ct"))


def test_reseed_restores_a_wrong_book(fresh, itch):
    # the slot is emptied behind the feed's back (its book is then wrong), re-seeded from the
    # reference at a later message: the commit record and every record after it equal the
    # reference that never lost the orders
    feed = packetize_itch(itch)
    locs = resolve_locates(feed, None, fresh.slots)
    setup_card(fresh, feed, locs)
    done = np.concatenate([[0], np.cumsum(np.bincount(feed.frame, minlength=feed.n_frames))])
    h1, h2 = feed.n_frames // 3, 2 * feed.n_frames // 3
    victim = locs[1]
    raw = [run_frames(fresh, feed, 0, h1)]
    fresh.clear_stale(locate=victim)
    raw.append(run_frames(fresh, feed, h1, h2))
    n = int(done[h2])
    book = book_at(feed.itch, locs, n)
    orders = live_orders(book, victim)
    assert len(orders) > 20
    before = fresh.counters(["injected", "records", "bbo_updates"])
    k = fresh.reseed(victim, orders, seq=int(feed.seq[n - 1]))
    assert k == len(orders)
    after = fresh.counters(["injected", "records", "bbo_updates"])
    assert after["injected"] - before["injected"] == len(orders) + 1
    assert after["records"] == before["records"]  # injections are not feed records
    assert after["bbo_updates"] - before["bbo_updates"] == 1  # only the commit emitted
    commit = decode(fresh.read_raw()[0])
    assert len(commit) == 1
    c = commit[0]
    assert int(c["flags"]) & (bbo_record.FLAG_CLEARED | bbo_record.FLAG_RECOVERED) == (
        bbo_record.FLAG_CLEARED | bbo_record.FLAG_RECOVERED)
    assert not int(c["flags"]) & (bbo_record.FLAG_BOOK_INVALID | bbo_record.FLAG_STALE)
    assert (int(c["locate"]), int(c["seq"]), int(c["msg_type"])) == (
        victim, int(feed.seq[n - 1]), 0)
    assert bbo_tuple(c) == tuple(min(v, U32_MAX) for v in book.bbo(victim))
    raw.append(run_frames(fresh, feed, h2, feed.n_frames))
    recs = decode(np.concatenate(raw))
    tr, fl = card_trace(recs, feed.seq), trace_flags(recs)
    ref = reference_trace(feed.itch, locs)
    idx, loc = tr["msg_index"], tr["locate"]
    # the victim's rows between the clear and the re-seed come from a wrong book: not compared
    gap_c = (loc == victim) & (idx >= done[h1]) & (idx < n)
    gap_r = (ref["locate"] == victim) & (ref["msg_index"] >= done[h1]) & (ref["msg_index"] < n)
    assert first_difference(tr[gap_c], ref[gap_r]) is not None, \
        "the clear did not make the victim's book wrong: the test proves nothing"
    same(tr[~gap_c], ref[~gap_r])
    assert fl["valid"].all() and not fl["stale"].any()
    want_rec = (loc == victim) & (idx >= n)
    assert want_rec.sum() > 50
    assert np.array_equal(fl["recovered"].astype(bool), want_rec)


def test_injection_competes_with_the_feed_under_backpressure(fresh, itch):
    # frames stay queued while the host injects (the shim feeds them during the register
    # writes) and the record stream is stalled 70 % of the cycles: the book's input stalls,
    # injections wait (STATUS.inject_busy), the feed's U halves stay together, nothing is lost
    feed = packetize_itch(itch)
    locs = resolve_locates(feed, None, fresh.slots)
    extra = 4321  # a locate absent from the feed, seeded only by the host
    setup_card(fresh, feed, locs)
    fresh.subscribe([extra])
    fresh.t.set_stalls(bbo_ready=0.3, mac_valid=1.0, seed=3)
    fresh.send(feed.slice_frames(0, feed.n_frames))
    rng = np.random.default_rng(5)
    orders = []
    for i in range(300):
        side = "B" if i % 2 else "S"
        px = int(1_000_000 + (-1 if side == "B" else 1) * 100 * int(rng.integers(1, 40)))
        orders.append((10**12 + i, side, int(rng.integers(1, 5000)), px))
    assert fresh.reseed(extra, orders, seq=77) == 300
    assert fresh.field("STATUS", "inject_busy") == 0
    assert fresh.t.beats_pending > 0, "the feed ended before the injection: no contention"
    fresh.run()
    recs = decode(fresh.read_raw(1 << 20)[0])
    fresh.t.set_stalls(1.0, 1.0)
    seeded = recs[(recs["flags"] & bbo_record.FLAG_CLEARED) != 0]
    assert len(seeded) == 1 and int(seeded[0]["locate"]) == extra and int(seeded[0]["seq"]) == 77
    ref_book = L3Book([extra])
    for ref, side, sh, px in orders:
        ref_book._apply(_Add(extra, ref, side, sh, px))
    assert bbo_tuple(seeded[0]) == tuple(ref_book.bbo(extra))
    assert not (recs["locate"] == extra)[(recs["flags"] & bbo_record.FLAG_CLEARED) == 0].any()
    same(card_trace(recs, feed.seq), reference_trace(feed.itch, locs))
    c = fresh.counters(["injected", "duplicate_add", "table_full", "bbo_stall_cycles"])
    assert c["injected"] == 301 and c["duplicate_add"] == 0 and c["table_full"] == 0
    assert c["bbo_stall_cycles"] > 1000
    assert not fresh.status()["seen_inject_overrun"]


class _Add:
    """An ``A`` message for :meth:`host.feed.book.L3Book._apply`."""

    message_type = "A"

    def __init__(self, loc, ref, side, shares, price):
        self.stock_locate, self.order_reference_number = loc, ref
        self.buy_sell_indicator, self.shares, self.price = side, shares, price


def test_reseed_of_unsubscribed_locate_refused(fresh):
    with pytest.raises(KeyError):
        fresh.reseed(999, [])
    fresh.subscribe([999])
    with pytest.raises(CardError):
        fresh.reseed(999, [(1, "X", 1, 100)])


def test_gaps_recovered_by_the_host(fresh, itch):
    feed = packetize_itch(itch, drop_packets=[40, 41, 90])
    locs = resolve_locates(feed, None, fresh.slots)
    rp = replay_through_card(fresh, feed, locs, batch_frames=16)
    assert rp.restarts == []
    # two gaps in two batches: every subscribed symbol re-seeded after each
    assert len(rp.recoveries) == 2 * len(locs)
    assert {r.cause for r in rp.recoveries} == {"stale"}
    assert rp.status["seen_gap"] == 0 and rp.counters["gaps"] == 2
    ref = reference_trace(feed.itch, locs)  # no restart: the re-seed restores the book
    ck, rk, problems = recovered_view(rp, ref)
    assert problems == []
    assert (~ck).sum() > 0  # stale rows before the re-seeds, left out
    same(rp.trace[ck], ref[rk])
    fl = rp.flags
    assert fl["valid"][ck].all() and not fl["stale"][ck].any()
    first = min(r.msg_index for r in rp.recoveries)
    assert np.array_equal(fl["recovered"].astype(bool), rp.trace["msg_index"] >= first)
    assert verify(rp) == 0
    # verify fails on a wrong row after a re-seed, a lost recovered mark, a wrong commit
    after = int(np.flatnonzero(rp.trace["msg_index"] > first + 100)[0])
    for spoil in ("row", "mark", "commit"):
        bad = copy.copy(rp)
        bad.trace, bad.flags = rp.trace.copy(), {k: v.copy() for k, v in rp.flags.items()}
        bad.recs = rp.recs.copy()
        if spoil == "row":
            bad.trace["bid_sz"][after] += 1
        elif spoil == "mark":
            bad.flags["recovered"][after] = 0
        else:
            k = int(np.flatnonzero(bad.recs["flags"] & bbo_record.FLAG_CLEARED)[3])
            bad.recs["ask_px"][k] += 100
        assert verify(bad) == 1, spoil


def test_off_grid_recovered_with_a_finer_tick(fresh, itch):
    # a one-dollar tick for a symbol quoted in cents: its first add makes the slot bad
    # (off grid); the host re-seeds it with the tick its live prices need and it is exact
    feed = packetize_itch(itch)
    locs = resolve_locates(feed, None, fresh.slots)
    victim = locs[2]
    rp = replay_through_card(fresh, feed, locs, batch_frames=32, ticks={victim: 2})
    rec = [r for r in rp.recoveries if r.locate == victim]
    assert rec and {r.cause for r in rp.recoveries} == {"invalid"}
    assert {r.locate for r in rp.recoveries} == {victim}
    assert rec[-1].tick < 2 and fresh.tick_of(victim) == rec[-1].tick
    assert rp.counters["off_grid"] > 0
    bad = rp.recs[(rp.recs["flags"] & bbo_record.FLAG_BOOK_BAD) != 0]
    assert len(bad) > 0 and set(bad["locate"].tolist()) == {victim}
    ref = reference_trace(feed.itch, locs)
    ck, rk, problems = recovered_view(rp, ref)
    assert problems == []
    same(rp.trace[ck], ref[rk])
    assert rp.flags["valid"][ck].all()
    assert verify(rp) == 0


def test_no_recover_keeps_the_old_behaviour(fresh, itch):
    feed = packetize_itch(itch, drop_packets=[40])
    locs = resolve_locates(feed, None, fresh.slots)
    rp = replay_through_card(fresh, feed, locs, batch_frames=16, recover=False)
    assert rp.recoveries == [] and len(rp.restarts) == 1
    assert not rp.flags["recovered"].any()
    same(rp.trace, reference_trace(feed.itch, locs, restarts=rp.restarts))
