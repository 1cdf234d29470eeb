"""host.feed.generator: seeded, valid, varied ITCH 5.0 streams."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from host.feed.book import L3Book, bbo_trace
from host.feed.bulk import parse_records
from host.feed.generator import MIX, generate, split_messages, write_pcap_from_itch
from host.feed.itch import decode, encode_message
from host.feed.spec import MESSAGE_TYPES, PRICE4_MAX


@pytest.fixture(scope="module")
def stream():
    buf = generate(300_000, 20, 42)
    rec, stats = parse_records(buf)
    return buf, rec, stats


def test_deterministic_and_exact_count():
    a = generate(5_000, 4, 3)
    assert a == generate(5_000, 4, 3)
    assert a != generate(5_000, 4, 4)
    rec, stats = parse_records(a)
    assert stats["messages"] == stats["framed"] == 5_000 and stats["consumed"] == len(a)


def test_too_few_messages_or_symbols():
    with pytest.raises(ValueError):
        generate(10, 8, 1)
    with pytest.raises(ValueError):
        generate(100, 0, 1)


def test_every_message_round_trips_through_the_codec(stream):
    buf = stream[0]
    for raw in split_messages(buf)[:50_000]:
        assert encode_message(decode(raw)) == raw


def test_all_types_and_mix(stream):
    _, rec, _ = stream
    c = Counter(chr(t) for t in rec["msg_type"])
    assert set(c) == set(MESSAGE_TYPES)
    n = len(rec)
    assert 0.40 < (c["A"] + c["F"]) / n < 0.50
    assert 0.35 < c["D"] / n < 0.47
    for k in "ECXU":
        assert c[k] / n > MIX[k] / 2
    assert c["F"] > 0 and c["P"] > 0 and c["Q"] > 0 and c["B"] > 0


def test_day_structure(stream):
    _, rec, _ = stream
    t = rec["msg_type"]
    s = rec["code"][t == ord("S")]
    assert bytes(s.astype(np.uint8)) == b"OSQMEC"
    assert t[0] == ord("S") and t[-1] == ord("S")
    h = rec[t == ord("H")]
    assert b"H" in bytes(h["code"].astype(np.uint8))  # one halt
    assert np.all(np.diff(rec["timestamp"].astype(np.int64)) > 0)
    assert rec["timestamp"].max() < 86_400 * 10**9


def test_refs_unique_random_and_prices_locates(stream):
    _, rec, _ = stream
    t = rec["msg_type"]
    adds = rec["order_ref"][(t == ord("A")) | (t == ord("F"))]
    new = rec["new_order_ref"][t == ord("U")]
    refs = np.concatenate([adds, new])
    assert len(np.unique(refs)) == len(refs) and np.all(refs != 0)
    assert refs.max() > 2**63 and refs.min() < 2**60  # spread over 64 bits
    book = (t == ord("A")) | (t == ord("F")) | (t == ord("U"))
    assert rec["price"][book].max() == PRICE4_MAX
    assert rec["price"][book].min() > 0
    locs = rec["stock_locate"][t == ord("R")]
    assert len(np.unique(locs)) == 20 and locs.max() == 65535 and 0 not in locs
    assert rec["shares"][book].max() > 2**31
    assert np.any(rec["shares"][book] < 100)  # odd lots


def test_stream_replays_cleanly(stream):
    buf, rec, _ = stream
    b = L3Book()
    tr = bbo_trace(buf, book=b)
    assert sum(b.anomalies.values()) == 0  # every E/C/X/D/U hits a live order, never oversize
    both = (tr["bid_ct"] > 0) & (tr["ask_ct"] > 0)
    assert not np.any(tr["bid_px"][both] >= tr["ask_px"][both])  # never crossed nor locked
    assert np.any(tr["bid_ct"] == 0) and np.any(tr["ask_ct"] == 0)  # books drain
    assert max(tr["bid_sz"].max(), tr["ask_sz"].max()) > 2**32  # level totals pass 32 bits
    assert len(b.symbols) == 20 and set(b.trading_state.values()) == {"T"}
    # best levels empty and the next level comes up: the best price moves both ways
    for loc in list(b.symbols)[:5]:
        px = tr["bid_px"][(tr["locate"] == loc) & (tr["bid_ct"] > 0)].astype(np.int64)
        d = np.diff(px)
        assert np.any(d > 0) and np.any(d < 0)


def test_replace_moves_through_the_touch(stream):
    buf, _, _ = stream
    b = L3Book()
    improved = 0
    for m in (decode(r) for r in split_messages(buf)[:100_000]):
        if m.message_type == "U":
            o = b.orders[m.original_order_reference_number]
            best = b.bbo(o[0])
            if o[1] == "B" and m.price > best.bid_px or o[1] == "S" and m.price < best.ask_px:
                improved += 1
        b.apply(m)
    assert improved > 100


def test_one_million_is_fast():
    generate(2_000, 4, 1)  # compile / load cache
    t = time.perf_counter()
    buf = generate(1_000_000, 64, 9)
    assert time.perf_counter() - t < 10
    assert len(buf) > 25_000_000


def test_pcap_path_round_trips(tmp_path):
    net = pytest.importorskip("host.feed.net")
    buf = generate(20_000, 6, 5)
    p = tmp_path / "g.pcap"
    info = write_pcap_from_itch(buf, p, seed=3)
    assert info["messages"] == 20_000 and info["packets"] > 20_000 / 60
    data, stats = net.itch_from_pcap(p)
    assert data == buf
    assert stats["mold"]["gaps"] == 0
