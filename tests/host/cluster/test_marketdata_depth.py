"""Top-N fan-out (issue 18 item 1): depth records on md.<venue>.<symbol>, real nats-server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from host.cli import main
from host.cluster.marketdata import (
    MD_DTYPE,
    MdConsumer,
    as_md,
    ensure_md_stream,
    md_depth,
    md_dtype,
    model_depth_records,
    publish_records,
    subject_token,
    to_md,
)
from host.feed.depth import depth_trace
from hw import bbo_record

SAT = (1 << 32) - 1
"""The payload's u32 sizes saturate (the card's do); the reference's are exact."""


def test_payload_layout():
    for n in (1, 2, 5, 16):
        dt = md_dtype(n)
        assert dt.itemsize == 52 + 24 * (n - 1) and md_depth(dt.itemsize) == n
        assert [dt.fields[f][1] for f in MD_DTYPE.names] == \
            [MD_DTYPE.fields[f][1] for f in MD_DTYPE.names]  # the BBO prefix is unchanged
    assert md_dtype(5).fields["bid_levels"][1] == 52
    assert md_dtype(5).fields["ask_levels"][1] == 52 + 4 * 12
    for bad in (51, 53, 52 + 12, 52 + 24 * 16):
        with pytest.raises(ValueError):
            md_depth(bad)
    for bad in (0, 17, True):
        with pytest.raises(ValueError):
            md_dtype(bad)


@pytest.fixture(scope="module")
def day(itch_day):
    from host.card.replay import resolve_locates
    from host.feed.capture import load_feed, symbol_directory

    feed = load_feed(itch_day, drop_packets=[40, 41, 300])  # MoldUDP64 gaps in the feed
    locs = resolve_locates(feed)
    names = {v: k for k, v in symbol_directory(feed.itch).items()}
    return feed, locs, names


def test_model_depth_records_extend_model_records(day):
    from host.trading.session import model_records

    feed, locs, _ = day
    base = model_records(feed, locs)
    rec = model_depth_records(feed, locs, 5)
    assert rec.dtype == bbo_record.dtype(5) and (rec["depth_n"] == 5).all()
    only = (rec["flags"] & bbo_record.FLAG_DEPTH_ONLY) != 0
    assert only.any() and len(rec) - only.sum() == len(base)
    main_rows = bbo_record.base(rec[~only])
    for f in bbo_record.DTYPE.names:
        if f not in ("record_seq", "depth_n"):
            assert np.array_equal(main_rows[f], base[f]), f
    assert np.count_nonzero(base["flags"] & bbo_record.FLAG_GAP) >= 1
    assert rec["record_seq"].tolist() == list(range(len(rec)))
    tr = depth_trace(feed.itch, locs, n=5)
    sat = (1 << 32) - 1  # u32 fields, as the card's: this day has larger level sizes
    assert (tr["bid_levels"][..., 1] > sat).any()
    assert np.array_equal(rec["bid_levels"], np.minimum(tr["bid_levels"], sat))
    assert np.array_equal(rec["ask_levels"], np.minimum(tr["ask_levels"], sat))
    assert np.array_equal(only, tr["depth_only"].astype(bool))


def _publish(url, venue, batches, drop=frozenset()):
    import nats

    async def go():
        nc = await nats.connect(url)
        js = nc.jetstream()
        stream = await ensure_md_stream(js, venue)
        pubs = [await publish_records(js, venue, r, names, window=512) for r, names in batches]
        total = (await js.stream_info(stream)).state.messages
        cons = MdConsumer(js, stream, drop=drop)
        rep = await cons.consume(f"md.{venue}.>", total)
        first = await js.get_msg(stream, seq=pubs[-1]["first_stream_seq"])
        await nc.close()
        return pubs, cons, rep, first

    return asyncio.run(go())


def test_top_n_fan_out_equals_reference_with_gap_repair(nats_server, day):
    feed, locs, names = day
    n = 5
    rec = model_depth_records(feed, locs, n)
    subj = {loc: f"md.deep.{subject_token(names[loc])}" for loc in locs}
    last_loc = int(rec["locate"][-1])
    n_last = int(np.count_nonzero(rec["locate"] == last_loc))
    drop = {(subj[locs[0]], 2), (subj[locs[0]], 3), (subj[locs[1]], 10),
            (subj[last_loc], n_last)}
    (pub,), cons, rep, first = _publish(nats_server.url, "deep", [(rec, names)], drop)
    assert pub["records"] == len(rec) > 1000
    assert rep.gaps == 3 and rep.repaired == len(drop)
    assert rep.seq_backwards == 0 and rep.duplicates == 0
    assert first.headers == {"Md-Depth": str(n)} and len(first.data) == md_dtype(n).itemsize
    direct = to_md(rec)
    tr = depth_trace(feed.itch, locs, n=n)
    for loc in locs:
        got = cons.frame(subj[loc])
        assert got.dtype == md_dtype(n)
        assert got.tobytes() == direct[direct["locate"] == loc].tobytes(), loc
        # against the reference trace itself: every level, the depth-only flag, the order
        t = tr[tr["locate"] == loc]
        assert got["sym_seq"].tolist() == list(range(1, len(t) + 1))
        for side in ("bid", "ask"):
            assert got[f"{side}_px"].tolist() == t[f"{side}_px"].tolist()
            assert got[f"{side}_ct"].tolist() == t[f"{side}_ct"].tolist()
            assert got[f"{side}_sz"].tolist() == np.minimum(t[f"{side}_sz"], SAT).tolist()
            assert np.array_equal(got[f"{side}_levels"], np.minimum(t[f"{side}_levels"], SAT))
        assert ((got["flags"] & bbo_record.FLAG_DEPTH_ONLY) != 0).tolist() == \
            t["depth_only"].astype(bool).tolist()
        assert got["seq"].tolist() == feed.seq[t["msg_index"].astype(np.int64)].tolist()


def test_bbo_then_top_n_on_one_subject(nats_server, day):
    """A BBO publication then a top-N one: sym_seq runs on, the frame widens the first."""
    from host.trading.session import model_records

    feed, locs, names = day
    one = [locs[0]]
    bbo = model_records(feed, one)
    deep = model_depth_records(feed, one, 3)
    pubs, cons, rep, first = _publish(nats_server.url, "mix", [(bbo, names), (deep, names)])
    assert rep.gaps == 0 and rep.received == len(bbo) + len(deep)
    got = cons.frame(f"md.mix.{subject_token(names[locs[0]])}")
    assert got.dtype == md_dtype(3)
    assert got["sym_seq"].tolist() == list(range(1, len(bbo) + len(deep) + 1))
    assert as_md(got[: len(bbo)], MD_DTYPE).tobytes() == to_md(bbo).tobytes()
    assert not got["bid_levels"][: len(bbo)].any()
    tail = to_md(deep, {locs[0]: len(bbo)})
    assert got[len(bbo):].tobytes() == tail.tobytes()


def test_cli_publish_depth(nats_server, itch_day, capsys):
    code = main(["cluster", "publish", str(itch_day), "--nats", nats_server.url,
                 "--venue", "cli5", "--depth", "5", "--verify"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and "subjects differing 0" in out, (out, err)
    # the same venue again at depth 1: the stream's frames are deeper, still verified
    code = main(["cluster", "publish", str(itch_day), "--nats", nats_server.url,
                 "--venue", "cli5", "--verify"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and "subjects differing 0" in out, (out, err)


@pytest.mark.parametrize("argv, msg", [
    (["--depth", "0"], "--depth must be an integer in 1..16, not 0"),
    (["--depth", "x"], "--depth must be an integer in 1..16, not 'x'"),
    (["--depth", "3", "--card", "bbo_only"], "card 'bbo_only' gives the BBO only"),
])  # fmt: skip
def test_cli_publish_depth_errors(nats_server, itch_day, capsys, monkeypatch, argv, msg):
    from host.trading import session

    monkeypatch.setitem(session.CARD_SOURCES, "bbo_only", lambda feed, locs: None)
    code = main(["cluster", "publish", str(itch_day), "--nats", nats_server.url, *argv])
    _, err = capsys.readouterr()
    assert code == 1 and err.startswith("error:") and msg in err and err.count("\n") == 1
