"""Top-N on the DMA path: the simulated card built with depth_n = 5 (the U250 card's parameters
otherwise), through the real driver.

Its records without ``depth_only`` must be the BBO trace of the reference (what a depth_n = 1
card gives, host.card.model.reference_trace); every record's levels 1..5 must be the reference
book's (host.feed.book.L3Book.depth) after the record's message, and the card must send a
record exactly when the reference's top 5 of the touched symbol (or its BBO) changes. The model
is built once (cached under build/card/, a few minutes the first time).
"""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("hw.top", reason="hw/top.py has not landed")

from host.card.model import (  # noqa: E402
    depth_columns,
    first_difference,
    format_difference,
    reference_trace,  # noqa: E402
)
from host.card.replay import open_sim_card, replay_through_card, resolve_locates  # noqa: E402
from host.card.transport import Transport  # noqa: E402
from host.feed.book import L3Book, iter_indexed  # noqa: E402
from host.feed.capture import packetize_itch  # noqa: E402
from host.feed.generator import generate  # noqa: E402
from hw import bbo_record as BR  # noqa: E402

N = 5
U32_MAX = (1 << 32) - 1


@pytest.fixture(scope="module")
def itch():
    return generate(8_000, 6, 7)


@pytest.fixture(scope="module")
def card5():
    c = open_sim_card(params={"depth_n": N})
    yield c
    c.close()


def expected_depth_records(itch, locs):
    """``[(msg_index, locate, depth_only, bid levels, ask levels)]`` from the reference: a row
    when the BBO changes (apply() is True) or, else, the touched locate's top N changes."""
    book = L3Book(locs)
    sub = set(locs)
    out = []
    for i, msg in iter_indexed(itch):
        t = msg.message_type
        loc0 = book._locate_of(msg) if t in "AFECXDU" else -1
        before = (book.depth(loc0, "B", N), book.depth(loc0, "S", N)) if loc0 >= 0 else None
        changed = book.apply(msg)
        loc = book.last_locate
        deep = (not changed and loc0 in sub and loc == loc0
                and (book.depth(loc, "B", N), book.depth(loc, "S", N)) != before)
        if changed or deep:
            out.append((i, loc, deep, book.depth(loc, "B", N), book.depth(loc, "S", N)))
    return out


def levels(rows):
    lv = [(px, min(sz, U32_MAX), ct) for px, sz, ct in rows]
    return lv + [(0, 0, 0)] * (N - len(lv))


def test_depth5_card_matches_reference(card5, itch):
    assert card5.depth_n == N and card5.info.params.record_bytes == BR.record_bytes(N) == 192
    feed = packetize_itch(itch)
    locs = resolve_locates(feed, None, card5.slots)
    rp = replay_through_card(card5, feed, locs, batch_frames=64, recover=False)
    recs = rp.recs
    assert recs.dtype == BR.dtype(N) and rp.depth_n == N
    assert (recs["depth_n"] == N).all()
    assert not (recs["flags"] & (BR.FLAG_GAP | BR.FLAG_BOOK_INVALID | BR.FLAG_CLEARED)).any()
    # the rows without depth_only: the BBO trace a depth_n = 1 card gives
    ref = reference_trace(feed.itch, locs)
    i = first_difference(rp.trace, ref)
    assert i is None, format_difference(rp.trace, ref, i)
    # every record, depth_only ones too, against the reference's top 5
    want = expected_depth_records(feed.itch, locs)
    depth_only = (recs["flags"] & BR.FLAG_DEPTH_ONLY) != 0
    assert len(recs) == len(want), (len(recs), len(want))
    assert depth_only.sum() > len(recs) // 10  # the stream does change levels 2..5 alone
    msg_index = np.searchsorted(feed.seq, recs["seq"])
    bid = BR.depth_levels(recs, "B")
    ask = BR.depth_levels(recs, "S")
    slot_of = card5.subscriptions
    for k, (mi, loc, deep, b, a) in enumerate(want):
        got = (int(msg_index[k]), int(recs["locate"][k]), bool(depth_only[k]))
        assert got == (mi, loc, deep), f"record {k}: got {got}, reference {(mi, loc, deep)}"
        assert int(recs["slot"][k]) == slot_of[loc], k
        assert [tuple(map(int, x)) for x in bid[k]] == levels(b), f"record {k} bids"
        assert [tuple(map(int, x)) for x in ask[k]] == levels(a), f"record {k} asks"
    assert rp.counters["bbo_records"] == len(recs)
    # the same against the other reference implementation (host.feed.depth.depth_trace), and
    # that comparison catches one wrong level size in a depth_only record
    import dataclasses

    from host.card.report import verify_depth

    assert verify_depth(rp) == 0
    bad = recs.copy()
    k = int(np.flatnonzero(depth_only)[len(np.flatnonzero(depth_only)) // 2])
    bad["bid_levels"][k, 0, 1] += 1
    assert verify_depth(dataclasses.replace(rp, recs=bad)) == 1


def test_run_bbo_card_depth_csv(card5, itch, tmp_path, monkeypatch):
    """``run_bbo_card(..., depth=5)``: one CSV row per record, the documented columns."""
    import host.cli.card as cli

    path = tmp_path / "feed.itch"
    path.write_bytes(itch)
    # reuse the module's open card (the CLI closes what it opens: hand it a non-closing view)
    monkeypatch.setattr(cli, "_open_card_for_cli", lambda allow_build, depth=1: _NoClose(card5))
    card5.reset(hard=True)
    fh, log = io.BytesIO(), io.StringIO()
    assert cli.run_bbo_card(path, fh, depth=N, log=log, verify_trace=True, recover=False) == 0
    lines = fh.getvalue().decode().splitlines()
    assert tuple(lines[0].split(",")) == depth_columns(N)
    assert depth_columns(N)[-1] == "depth_only" and "bid5_ct" in depth_columns(N)
    rows = np.array([list(map(int, x.split(","))) for x in lines[1:]])
    cols = {c: i for i, c in enumerate(depth_columns(N))}
    assert len(rows) > 0 and rows[:, cols["depth_only"]].any()
    # the rows without depth_only are the BBO trace (verify compared them)
    assert "verify: OK" in log.getvalue(), log.getvalue()
    assert "verify depth: OK" in log.getvalue(), log.getvalue()
    assert (rows[:, cols["depth_only"]] == 0).sum() == int(log.getvalue().split("bbo rows: ")[1]
                                                            .split(";")[0])
    from host.errors import UserError

    with pytest.raises(UserError, match="depth"):
        cli.run_bbo_card(path, io.BytesIO(), depth=17, log=log)


class _NoClose:
    def __init__(self, card):
        self._c = card

    def __getattr__(self, name):
        return getattr(self._c, name)

    def close(self):
        pass


class _RegFile(Transport):
    """A transport that answers the identification registers of ``params`` (0 elsewhere)."""

    name = "fake"
    has_cycles = False

    def __init__(self, params, record_bytes=None):
        from hw.regs import build_table

        self.vals = {r.offset: r.const for r in build_table(params) if r.const is not None}
        if record_bytes is not None:
            self.record_bytes = record_bytes
            self.knows_record_bytes = True

    def read_reg(self, addr):
        return self.vals.get(addr, 0)

    def write_reg(self, addr, value):
        pass

    def send_frames(self, frames):
        return 0

    def recv_records(self, max_records=1 << 16):
        return np.zeros((0, self.record_bytes), np.uint8), None

    def close(self):
        pass


def test_identify_record_bytes():
    """The driver takes record_bytes = bbo_record.record_bytes(ID_DEPTH_N), tells a transport
    that cannot know it, refuses any other size and a transport that delivers another."""
    import dataclasses

    from host.card import Card, CardMismatch
    from hw.regs import U250_PARAMS

    p5 = dataclasses.replace(U250_PARAMS, depth_n=5, record_bytes=192)
    t = _RegFile(p5)
    card = Card(t)
    assert card.depth_n == 5 and t.record_bytes == 192 and card.dtype == BR.dtype(5)
    assert Card(_RegFile(U250_PARAMS)).dtype == BR.DTYPE
    with pytest.raises(CardMismatch, match="record_bytes=64"):
        Card(_RegFile(dataclasses.replace(U250_PARAMS, depth_n=5)))
    with pytest.raises(CardMismatch, match="transport delivers 64"):
        Card(_RegFile(p5, record_bytes=64))
