"""host.feed.depth: the top-N reference trace (issue 14 item 4)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from host.feed.book import BBO_COLUMNS, L3Book, bbo_trace
from host.feed.depth import (
    depth_columns,
    depth_csv_bytes,
    depth_dtype,
    depth_table,
    depth_trace,
    write_depth_csv,
)
from host.feed.generator import generate
from host.feed.itch import iter_messages
from tests.host.feed.test_book import D, E, U, X, add, frame


def naive_trace(buf, n, locates=None):
    """Snapshot every reported locate's top n (L3Book.depth) after every message: the slow,
    obvious model depth_trace must match (rows, levels and depth_only)."""
    book = L3Book(locates)
    last: dict = {}
    rows = []
    for idx, msg in iter_messages(buf, indexed=True):
        book.apply(msg)
        loc = book.last_locate
        if loc < 0 or (locates is not None and loc not in locates):
            continue
        snap = (book.depth(loc, "B", n), book.depth(loc, "S", n))
        prev = last.get(loc, ([], []))
        if snap != prev:
            best_same = (snap[0][:1] == prev[0][:1]) and (snap[1][:1] == prev[1][:1])
            rows.append((idx, msg.timestamp, loc, snap, int(best_same)))
        last[loc] = snap
    return rows


def as_rows(trace, n):
    out = []
    for r in trace:
        sides = []
        for pre in ("bid", "ask"):
            lv = [(int(r[f"{pre}_px"]), int(r[f"{pre}_sz"]), int(r[f"{pre}_ct"]))]
            lv += [tuple(int(x) for x in row) for row in r[f"{pre}_levels"]]
            # the trace pads with zero levels; the book lists only the levels it has
            while lv and lv[-1] == (0, 0, 0):
                lv.pop()
            sides.append(lv)
        out.append((int(r["msg_index"]), int(r["ts_event"]), int(r["locate"]), tuple(sides),
                    int(r["depth_only"])))
    return out


def check_against_bbo(buf, n, locates=None):
    d = depth_trace(buf, locates, n=n)
    b = bbo_trace(buf, locates)
    main = d[d["depth_only"] == 0]
    assert len(main) == len(b)
    for c in BBO_COLUMNS:
        assert np.array_equal(main[c], b[c]), c
    return d


@pytest.mark.parametrize("profile,seed", [("classic", 3), ("classic", 7), ("realistic", 5)])
@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_not_depth_only_rows_are_bbo_trace(profile, seed, n):
    buf = generate(30_000, 8, seed, profile=profile)
    d = check_against_bbo(buf, n)
    if n == 1:
        assert not d["depth_only"].any()
    else:
        assert d["depth_only"].any()  # the streams do move levels 2..n alone


def test_locate_filter_matches_bbo_trace():
    buf = generate(30_000, 8, 4)
    locs = np.unique(bbo_trace(buf)["locate"]).tolist()[1:3]
    d = check_against_bbo(buf, 5, locates=locs)
    assert set(np.unique(d["locate"]).tolist()) == set(locs)


@pytest.mark.parametrize("profile,n", [("classic", 5), ("realistic", 5), ("realistic", 3)])
def test_matches_naive_snapshots(profile, n):
    buf = generate(15_000, 6, 9, profile=profile)
    assert as_rows(depth_trace(buf, n=n), n) == naive_trace(buf, n)
    locs = set(np.unique(bbo_trace(buf)["locate"]).tolist()[::2])
    assert as_rows(depth_trace(buf, locs, n=n), n) == naive_trace(buf, n, locs)


def test_hand_cases():
    px = [100_0000 - 100 * i for i in range(7)]  # bids, best first
    msgs = [add(10 + i, "B", p, 100 + i) for i, p in enumerate(px)]
    msgs += [
        add(30, "S", 101_0000, 50),      # 7: best ask appears: a BBO row
        E(12, 1),                         # 8: level 3 size: depth only
        E(16, 1),                         # 9: level 7: nothing (n = 5)
        X(13, 0),                         # 10: zero shares cancelled: nothing
        U(14, 40, 104, px[4]),            # 11: same price, same shares: nothing
        D(11),                            # 12: level 2 leaves: level 6 enters the top 5
        add(41, "B", px[6] + 50, 5),      # 13: a new level below the top 5: nothing
        D(10),                            # 14: best bid leaves: a BBO row
    ]
    buf = frame(msgs)
    d = depth_trace(buf, n=5)
    idx = d["msg_index"].tolist()
    assert idx == [0, 1, 2, 3, 4, 7, 8, 12, 14]
    assert d["depth_only"].tolist() == [0, 1, 1, 1, 1, 0, 1, 1, 0]
    r = d[d["msg_index"] == 8][0]
    assert r["bid_levels"][1].tolist() == [px[2], 101, 1]
    r = d[d["msg_index"] == 12][0]
    assert r["bid_levels"][:, 0].tolist() == [px[2], px[3], px[4], px[5]]
    r = d[-1]
    assert (int(r["bid_px"]), int(r["bid_sz"]), int(r["bid_ct"])) == (px[2], 101, 1)
    assert r["bid_levels"][:, 0].tolist() == [px[3], px[4], px[5], px[6] + 50]
    assert r["ask_levels"].tolist() == [[0, 0, 0]] * 4  # one ask level: zero padding
    check_against_bbo(buf, 5)


def test_messages_iterable_and_pairs():
    buf = generate(5_000, 4, 2)
    msgs = [m for _, m in iter_messages(buf, indexed=True)]
    pairs = list(iter_messages(buf, indexed=True))
    a = depth_trace(buf, n=4)
    assert np.array_equal(a, depth_trace(pairs, n=4))
    # a plain message list numbers messages by position (no unknown types here)
    assert np.array_equal(a, depth_trace(msgs, n=4))


def test_dtype_and_columns():
    dt = depth_dtype(5)
    assert dt.names[: len(BBO_COLUMNS)] == BBO_COLUMNS
    assert dt["bid_levels"].shape == (4, 3) and dt["ask_levels"].shape == (4, 3)
    assert depth_dtype(1)["bid_levels"].shape == (0, 3)
    cols = depth_columns(3)
    assert cols == (*BBO_COLUMNS, "bid2_px", "bid2_sz", "bid2_ct", "bid3_px", "bid3_sz",
                    "bid3_ct", "ask2_px", "ask2_sz", "ask2_ct", "ask3_px", "ask3_sz", "ask3_ct",
                    "depth_only")
    for bad in (0, 17, -1):
        with pytest.raises(ValueError):
            depth_trace(b"", n=bad)
    with pytest.raises(TypeError):
        depth_dtype(2.0)
    assert len(depth_trace(b"", n=3)) == 0


def test_csv():
    buf = generate(3_000, 4, 5)
    d = depth_trace(buf, n=3)
    fh = io.BytesIO()
    write_depth_csv(fh, d)
    lines = fh.getvalue().decode().splitlines()
    assert lines[0] == ",".join(depth_columns(3))
    assert len(lines) == len(d) + 1
    parsed = np.array([[int(x) for x in ln.split(",")] for ln in lines[1:]])
    assert np.array_equal(parsed, depth_table(d))
    cols = depth_columns(3)
    r = d[len(d) // 2]
    row = dict(zip(cols, parsed[len(d) // 2].tolist(), strict=True))
    assert row["bid3_sz"] == r["bid_levels"][1][1] and row["ask2_ct"] == r["ask_levels"][0][2]
    assert row["depth_only"] == r["depth_only"] and row["bid_px"] == r["bid_px"]
    assert depth_csv_bytes(d[:0]) == b""
