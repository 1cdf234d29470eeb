"""Fan-out: reference-model BBO records through JetStream, reassembled and compared."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from host.cluster.marketdata import (
    MD_DTYPE,
    MdConsumer,
    ensure_md_stream,
    publish_records,
    subject_token,
    to_md,
)


def test_layout():
    assert MD_DTYPE.itemsize == 52
    assert [MD_DTYPE.fields[f][1] for f in ("seq", "sym_seq", "ts_event", "locate", "flags",
                                            "msg_type", "bid_px", "ask_ct")] == \
        [0, 8, 16, 24, 26, 27, 28, 48]
    assert subject_token("brk.a ") == "BRK_A"
    assert subject_token("*>") == "__"


def test_sym_seq_counts_per_locate():
    from hw import bbo_record

    r = np.zeros(5, bbo_record.DTYPE)
    r["locate"] = [3, 1, 3, 3, 1]
    assert to_md(r)["sym_seq"].tolist() == [1, 1, 2, 3, 2]
    assert to_md(r, {3: 10})["sym_seq"].tolist() == [11, 1, 12, 13, 2]  # next publication


@pytest.fixture(scope="module")
def day(itch_day):
    from host.card.replay import resolve_locates
    from host.feed.capture import load_feed, symbol_directory
    from host.trading.session import model_records

    feed = load_feed(itch_day, drop_packets=[40, 41, 300])  # MoldUDP64 gaps in the feed
    locs = resolve_locates(feed)
    names = {v: k for k, v in symbol_directory(feed.itch).items()}
    return feed, locs, names, model_records(feed, locs)


def _run(url, recs, names, drop, venue):
    import nats

    async def go():
        nc = await nats.connect(url)
        js = nc.jetstream()
        stream = await ensure_md_stream(js, venue)
        pub = await publish_records(js, venue, recs, names, window=512)
        cons = MdConsumer(js, stream, drop=drop)
        rep = await cons.consume(f"md.{venue}.>", pub["records"])
        await nc.close()
        return pub, cons, rep

    return asyncio.run(go())


def test_fan_out_equals_direct_output_with_gap_repair(nats_server, day):
    feed, locs, names, recs = day
    direct = to_md(recs)
    subj = {loc: f"md.nasdaq.{subject_token(names[loc])}" for loc in locs}
    # lose records in the consumer: in the middle of a subject and at the very end of another
    last_loc = int(recs["locate"][-1])
    n_last = int(np.count_nonzero(recs["locate"] == last_loc))
    drop = {(subj[locs[0]], 2), (subj[locs[0]], 3), (subj[locs[1]], 10),
            (subj[last_loc], n_last)}
    pub, cons, rep = _run(nats_server.url, recs, names, drop, "nasdaq")
    assert pub["records"] == len(recs) > 1000
    assert pub["last_stream_seq"] - pub["first_stream_seq"] + 1 == len(recs)
    assert rep.received == len(recs) - len(drop)
    assert rep.gaps == 3 and rep.repaired == len(drop)
    assert rep.seq_backwards == 0 and rep.duplicates == 0
    for loc in locs:
        got = cons.frame(subj[loc])
        want = direct[direct["locate"] == loc]
        assert got.tobytes() == want.tobytes(), loc
    # the feed's gaps are in the records (flag) and in the MoldUDP64 sequence numbers
    allrec = np.concatenate([cons.frame(subj[loc]) for loc in locs])
    assert np.count_nonzero(allrec["flags"] & 1) >= 1
    assert set(allrec["seq"].tolist()) <= set(feed.seq.tolist())


def test_reference_bbo_prices_are_integers_end_to_end(nats_server, day):
    """The payload prices are the reference book's (``python -m host bbo``) integers."""
    from host.card.model import reference_trace

    feed, locs, names, recs = day
    pub, cons, _ = _run(nats_server.url, recs, names, set(), "ref")
    tr = reference_trace(feed.itch, locs)
    for loc in locs:
        got = cons.frame(f"md.ref.{subject_token(names[loc])}")
        t = tr[tr["locate"] == loc]
        assert got["bid_px"].tolist() == t["bid_px"].tolist()
        assert got["ask_sz"].tolist() == np.minimum(t["ask_sz"], 2**32 - 1).tolist()
        assert got["ts_event"].tolist() == t["ts_event"].tolist()
