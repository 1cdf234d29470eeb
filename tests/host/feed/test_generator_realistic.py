"""host.feed.generator: the realistic-depth profile (issue 13 item 5); classic bytes unchanged."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from host.feed.book import L3Book, bbo_trace
from host.feed.bulk import parse_records
from host.feed.generator import PROFILES, Realistic, depth_report, generate, split_messages
from host.feed.itch import decode, encode, encode_message, iter_messages
from host.feed.spec import MESSAGE_TYPES

# sha256 of classic streams, computed with the generator as it was before the realistic profile
# was added (commit 2b77aad): the classic bytes of a seed must never change (tests, demo sample)
CLASSIC_SHA256 = {
    (5_000, 4, 3): "3553880644ed6ffaf58b5ea5b2428ea3bc549f2861f12d7c81f3a15ed5d6e6c1",
    (20_000, 6, 5): "b0f7a5f98b373df39f68a455fc1a0ce6359f125cfba578edfcdb6d2dfc7578cf",
    (200_000, 16, 1): "c258f40599abd8baf657bc7d5bb4b68b661d0b84d00da92b652bd39994458453",
}

BOOK = "AFECXDU"


@pytest.mark.parametrize("args", sorted(CLASSIC_SHA256))
def test_classic_profile_bytes_unchanged(args):
    buf = generate(*args)
    assert hashlib.sha256(buf).hexdigest() == CLASSIC_SHA256[args]
    assert generate(*args, profile="classic") == buf


@pytest.fixture(scope="module")
def real():
    buf = generate(150_000, 6, 11, profile="realistic")
    rec, stats = parse_records(buf)
    return buf, rec, stats


def test_profiles_and_config():
    assert set(PROFILES) == {"classic", "realistic"}
    a = generate(20_000, 4, 2, profile="realistic")
    assert a == generate(20_000, 4, 2, profile=Realistic())  # the named profile is the defaults
    assert a == generate(20_000, 4, 2, profile="realistic")  # deterministic
    assert a != generate(20_000, 4, 3, profile="realistic")
    assert a != generate(20_000, 4, 2, profile=Realistic(depth=800))
    assert a != generate(20_000, 4, 2)
    with pytest.raises(ValueError, match="unknown profile"):
        generate(20_000, 4, 2, profile="deep")
    with pytest.raises(ValueError):
        Realistic(grid=1000, max_offset=5000)
    with pytest.raises(ValueError):
        Realistic(sweep=1.5)


def test_parses_cleanly_every_type_and_round_trips(real):
    buf, rec, stats = real
    assert stats["messages"] == stats["framed"] == 150_000 and stats["consumed"] == len(buf)
    assert stats["unknown_type"] == stats["bad_length"] == stats["truncated"] == 0
    assert {chr(t) for t in rec["msg_type"]} == set(MESSAGE_TYPES)
    for raw in split_messages(buf)[::7]:
        assert encode_message(decode(raw)) == raw


def test_day_structure_refs_and_times(real):
    _, rec, _ = real
    t = rec["msg_type"]
    assert bytes(rec["code"][t == ord("S")].astype(np.uint8)) == b"OSQMEC"
    assert len(np.unique(rec["stock_locate"][t == ord("R")])) == 6
    ts = rec["timestamp"].astype(np.int64)
    assert np.all(np.diff(ts) >= 0) and ts.max() < 86_400 * 10**9
    # NASDAQ-like references: day-unique and nearly sequential (adds and replaces' new refs)
    new = (t == ord("A")) | (t == ord("F")) | (t == ord("U"))
    refs = np.where(t == ord("U"), rec["new_order_ref"], rec["order_ref"])[new].astype(np.int64)
    d = np.diff(refs)
    assert refs.min() > 0 and d.min() >= 1 and d.max() <= 20 and np.median(d) == 1
    assert rec["price"][new].min() > 0 and rec["shares"][new].min() > 0
    assert rec["shares"][new].max() < 2**20  # level totals stay far below 32 bits


def test_every_book_message_hits_a_live_order_and_book_never_negative(real):
    buf, _, _ = real
    b = L3Book()
    crossed = 0
    for m in iter_messages(buf):
        t = m.message_type
        if t in "ECXD":
            o = b.orders[m.order_reference_number]  # KeyError if not live
            n = m.cancelled_shares if t == "X" else (0 if t == "D" else m.executed_shares)
            assert n <= o[3] and (t != "X" or n < o[3])
            assert o[0] == m.stock_locate
        elif t == "U":
            assert m.original_order_reference_number in b.orders
            assert m.new_order_reference_number not in b.orders
        b.apply(m)
        if t in BOOK and b.last_locate >= 0:
            q = b.bbo(b.last_locate)
            crossed += q.bid_ct > 0 and q.ask_ct > 0 and q.bid_px >= q.ask_px
    assert sum(b.anomalies.values()) == 0 and crossed == 0
    for key, side in b._sides.items():
        for px, (sz, ct) in side.levels.items():
            assert px > 0 and sz > 0 and ct > 0, (key, px)


def test_depth_far_quotes_sweeps_and_cancel_bursts(real):
    buf, _, _ = real
    r = depth_report(buf)
    assert sum(r["anomalies"].values()) == 0
    rows = list(r["symbols"].values())
    assert len(rows) == 6
    assert max(max(x["max_bid"], x["max_ask"]) for x in rows) >= 300
    assert max(x["p50"] for x in rows) >= 200  # deep most of the time, not for a moment
    sums = [x["max_bid"] + x["max_ask"] for x in rows]
    assert min(sums) < 0.5 * max(sums)  # a range of liquidity across symbols
    assert all(x["tick"] == 100 for x in rows)
    assert max(x["max_offset"] for x in rows) >= 1000  # stub quotes thousands of ticks out
    assert sum(x["sweeps3"] for x in rows) >= 1
    assert sum(x["cancel_bursts"] for x in rows) >= 1


def _frame(msgs):
    return b"".join(len(m).to_bytes(2, "big") + m for m in msgs)


def test_depth_report_counts_on_a_hand_made_stream():
    """The helper itself: 3 levels swept by one aggressor, then a burst of 8 deletes."""
    h = {"stock_locate": 7, "tracking_number": 0}
    rd = encode("R", stock="ZZ", timestamp=1, market_category="Q", financial_status_indicator="N",
                round_lot_size=100, round_lots_only="N", issue_classification="C",
                issue_sub_type="Z", authenticity="P", short_sale_threshold_indicator="N",
                ipo_flag="N", luld_reference_price_tier="1", etp_flag="N", etp_leverage_factor=0,
                inverse_indicator="N", **h)  # fmt: skip
    msgs = [rd]
    for ref in range(1, 5):  # asks at 10.00, 10.01, 10.02, 10.03
        msgs.append(encode("A", timestamp=10 + ref, order_reference_number=ref,
                           buy_sell_indicator="S", shares=100, stock="ZZ",
                           price=100_000 + 100 * (ref - 1), **h))  # fmt: skip
    for ref in range(10, 20):  # bids at 9.99 .. 9.90, and one at 30.00 ticks away
        px = 99_900 - 100 * (ref - 10) if ref < 19 else 69_900
        bid = {"buy_sell_indicator": "B", "shares": 100, "stock": "ZZ", "price": px}
        msgs.append(encode("A", timestamp=20 + ref, order_reference_number=ref, **bid, **h))
    for ref in range(1, 4):
        msgs.append(encode("E", timestamp=100, order_reference_number=ref, executed_shares=100,
                           match_number=ref, **h))  # fmt: skip
    for ref in range(10, 18):
        msgs.append(encode("D", timestamp=200 + ref, order_reference_number=ref, **h))
    r = depth_report(_frame(msgs))
    row = r["symbols"]["ZZ"]
    assert row["sweeps3"] == 1 and row["cancel_bursts"] == 1
    assert row["max_bid"] == 10 and row["max_ask"] == 4 and row["tick"] == 100
    assert row["max_offset"] == 300  # bids from 99.99 down to the far one at 69.99


def itch_book_bbo(buf) -> dict:
    """BBO rows of the third-party book (itch-book, C++): ``seq`` is 1-based message number."""
    core = pytest.importorskip("itch_book._core")
    s = core.Session(["bbo"], 0, [])
    s.feed(np.frombuffer(buf, np.uint8))
    rows = s.take_bbo()
    st = s.stats()
    assert st["rejected"] == st["missing_ref"] == st["dup_ref"] == st["crossed_books"] == 0
    return rows


@pytest.mark.parametrize(("n", "n_sym", "seed"), [(30_000, 4, 5), (60_000, 16, 6)])
def test_bbo_equals_itch_book(n, n_sym, seed):
    """Third-party cross-check of the reference model on realistic depth (100k: by hand)."""
    buf = generate(n, n_sym, seed, profile="realistic")
    ref = bbo_trace(buf)
    ib = itch_book_bbo(buf)
    assert len(ref) == len(ib["seq"]) > n // 10
    assert np.array_equal(ref["msg_index"] + 1, ib["seq"].astype(np.int64))
    assert np.array_equal(ref["ts_event"], ib["ts"].astype(np.uint64))
    assert np.array_equal(ref["locate"], ib["locate"].astype(np.uint16))
    for c in ("bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz", "ask_ct"):
        assert np.array_equal(ref[c].astype(np.int64), ib[c].astype(np.int64)), c


def test_one_million_realistic_is_fast():
    generate(5_000, 4, 1, profile="realistic")  # compile / load cache
    t = time.perf_counter()
    buf = generate(1_000_000, 16, 9, profile="realistic")
    assert time.perf_counter() - t < 10
    assert len(buf) > 25_000_000
