"""host.feed.book: the readable L3 reference book (semantics, anomaly rules, BBO trace)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.feed.book import (
    ANOMALY_KINDS,
    BBO_COLUMNS,
    L3Book,
    bbo_trace,
    iter_indexed,
    write_bbo_csv,
)
from host.feed.itch import encode_message, make


def add(ref, side="B", px=100_0000, sh=100, loc=1, t="A", ts=0):
    return make(t, stock_locate=loc, timestamp=ts, order_reference_number=ref,
                buy_sell_indicator=side, shares=sh, price=px)  # fmt: skip


def E(ref, sh, loc=1):
    return make("E", stock_locate=loc, order_reference_number=ref, executed_shares=sh)


def C(ref, sh, loc=1, px=1):
    return make("C", stock_locate=loc, order_reference_number=ref, executed_shares=sh,
                printable="Y", execution_price=px)  # fmt: skip


def X(ref, sh, loc=1):
    return make("X", stock_locate=loc, order_reference_number=ref, cancelled_shares=sh)


def D(ref, loc=1):
    return make("D", stock_locate=loc, order_reference_number=ref)


def U(ref, new, sh, px, loc=1):
    return make("U", stock_locate=loc, original_order_reference_number=ref,
                new_order_reference_number=new, shares=sh, price=px)  # fmt: skip


def frame(msgs) -> bytes:
    out = bytearray()
    for m in msgs:
        b = m if isinstance(m, bytes) else encode_message(m)
        out += len(b).to_bytes(2, "big") + b
    return bytes(out)


def check_consistent(book: L3Book) -> None:
    """Every level is exactly the sum of its live orders; BBO is the best level."""
    want: dict = {}
    for loc, side, px, sh in book.orders.values():
        lv = want.setdefault((loc, side), {}).setdefault(px, [0, 0])
        lv[0] += sh
        lv[1] += 1
    locs = {loc for loc, _ in want} | set(book.book_locates())
    for loc in locs:
        for side in "BS":
            got = book.levels(loc, side)
            exp = {p: tuple(v) for p, v in want.get((loc, side), {}).items()}
            assert got == exp
            d = book.depth(loc, side, 3)
            prices = sorted(exp, reverse=(side == "B"))[:3]
            assert [x[0] for x in d] == prices
        bb = book.bbo(loc)
        if bb.bid_ct and bb.ask_ct:
            pass  # crossed books are allowed in the book itself
        assert (bb.bid_ct == 0) == (bb.bid_px == 0 and bb.bid_sz == 0) or bb.bid_ct > 0


def test_add_levels_bbo_and_depth():
    b = L3Book()
    assert b.apply(add(1, "B", 100, 10))
    assert b.apply(add(2, "B", 101, 5, t="F"))
    assert not b.apply(add(3, "B", 99, 7))  # behind the touch
    assert b.apply(add(4, "S", 105, 3))
    assert b.apply(add(5, "B", 101, 1))
    assert b.bbo(1) == (101, 6, 2, 105, 3, 1)
    assert b.depth(1, "B", 5) == [(101, 6, 2), (100, 10, 1), (99, 7, 1)]
    assert b.depth(1, "S", 5) == [(105, 3, 1)]
    assert b.bbo(2) == (0, 0, 0, 0, 0, 0)
    check_consistent(b)


def test_execute_cancel_delete_replace():
    b = L3Book()
    for m in (add(1, "B", 100, 10), add(2, "B", 100, 20), add(3, "S", 110, 5)):
        b.apply(m)
    assert b.apply(E(1, 4))
    assert b.bbo(1)[:3] == (100, 26, 2)
    assert b.apply(C(1, 6, px=99))  # C executes at its own price; the order stays at 100
    assert b.bbo(1)[:3] == (100, 20, 1) and 1 not in b.orders
    assert b.apply(X(2, 5))
    assert b.orders[2] == [1, "B", 100, 15]
    assert b.apply(U(2, 7, 30, 101))  # same side and locate, new price/shares/ref
    assert 2 not in b.orders and b.orders[7] == [1, "B", 101, 30]
    assert b.bbo(1) == (101, 30, 1, 110, 5, 1)
    assert b.apply(D(3))
    assert b.bbo(1) == (101, 30, 1, 0, 0, 0)
    assert not b.apply(E(7, 0))  # zero executed shares change nothing
    assert sum(b.anomalies.values()) == 0
    check_consistent(b)


def test_non_book_messages_and_state():
    b = L3Book()
    assert not b.apply(make("R", stock_locate=5, stock="ZVZZT"))
    assert not b.apply(make("H", stock_locate=5, stock="ZVZZT", trading_state="H"))
    assert not b.apply(make("S", timestamp=7, event_code="O"))
    b.apply(add(1, "B", 100, 10, loc=5))
    for m in (
        make("P", stock_locate=5, buy_sell_indicator="B", shares=5, price=100, match_number=1),
        make("Q", stock_locate=5, shares=5, cross_price=100, match_number=2, cross_type="O"),
        make("B", stock_locate=5, match_number=1),
    ):
        assert not b.apply(m)
    assert b.symbols == {5: "ZVZZT"} and b.trading_state == {5: "H"}
    assert b.system_events == [(7, "O")]
    assert b.bbo(5)[:3] == (100, 10, 1)


@pytest.mark.parametrize(
    "msgs, kind, orders",
    [
        ([E(9, 1)], "unknown_ref", {}),
        ([X(9, 1)], "unknown_ref", {}),
        ([D(9)], "unknown_ref", {}),
        ([C(9, 1)], "unknown_ref", {}),
        ([add(1), add(1, "S", 5, 5)], "duplicate_add", {1: [1, "B", 100_0000, 100]}),
        ([add(1), E(1, 101)], "oversize_exec", {}),
        ([add(1), C(1, 500)], "oversize_exec", {}),
        ([add(1), X(1, 101)], "oversize_cancel", {}),
        ([U(9, 10, 5, 5)], "replace_unknown", {}),
        ([add(1), add(2, px=7), U(1, 2, 5, 5)], "replace_duplicate", {2: [1, "B", 7, 100]}),
        ([add(1), U(1, 1, 5, 5)], "replace_duplicate", {}),
        ([add(1), X(1, 10, loc=3)], "locate_mismatch", {1: [1, "B", 100_0000, 90]}),
        ([add(1, side="Z")], "bad_side", {}),
    ],
)
def test_anomaly_rules(msgs, kind, orders):
    b = L3Book()
    for m in msgs:
        b.apply(m)
    assert b.anomalies[kind] == 1
    assert sum(b.anomalies.values()) == 1
    assert b.orders == orders
    assert b.anomaly_log[0][0] == kind
    check_consistent(b)


def test_locate_mismatch_uses_stored_locate():
    b = L3Book()
    b.apply(add(1, "B", 100, 10, loc=1))
    assert b.apply(D(1, loc=2))
    assert b.last_locate == 1
    assert b.bbo(1) == (0, 0, 0, 0, 0, 0)


def test_trace_from_buffer_counts_every_framed_message():
    msgs = [add(1, ts=1), add(2, "S", 200_0000, 5, ts=2), D(1)]
    raw = frame([msgs[0], b"Z" + bytes(10), msgs[1], encode_message(msgs[2])[:5], msgs[2]])
    stats: dict = {}
    idx = [i for i, _ in iter_indexed(raw, stats)]
    assert idx == [0, 2, 4]
    assert stats["unknown_type"] == 1 and stats["bad_length"] == 1
    tr = bbo_trace(raw)
    assert tr.dtype.names == BBO_COLUMNS
    assert tr["msg_index"].tolist() == [0, 2, 4]
    assert tr[1].tolist() == (2, 2, 1, 100_0000, 100, 1, 200_0000, 5, 1)
    assert tr[2].tolist()[3:] == (0, 0, 0, 200_0000, 5, 1)
    # same trace from the decoded messages with their indices
    assert (bbo_trace(list(iter_indexed(raw))) == tr).all()


def test_trace_locate_filter_and_csv(tmp_path):
    msgs = [add(1, loc=1), add(2, loc=2), add(3, loc=1, px=1), D(2, loc=2)]
    b = L3Book()
    tr = bbo_trace(msgs, locates=[2], book=b)
    assert tr["locate"].tolist() == [2, 2]
    assert b.orders.keys() == {1, 3}  # every order is tracked regardless of the filter
    p = tmp_path / "bbo.csv"
    with open(p, "w") as fh:
        write_bbo_csv(fh, tr)
    lines = p.read_text().splitlines()
    assert lines[0] == ",".join(BBO_COLUMNS)
    assert lines[1] == "1,0,2,1000000,100,1,0,0,0"


def test_big_sizes_do_not_wrap():
    b = L3Book()
    for r in range(3):
        b.apply(add(r + 1, "S", 200_000_0000, 4_294_967_295))
    assert b.bbo(1).ask_sz == 3 * 4_294_967_295
    tr = bbo_trace([add(r + 1, "S", 200_000_0000, 4_294_967_295) for r in range(3)])
    assert tr["ask_sz"][-1] == 3 * 4_294_967_295


# --- random operation sequences ---------------------------------------------------------------

REFS = st.integers(1, 12)


@st.composite
def op_sequences(draw):
    ops = []
    for _ in range(draw(st.integers(1, 80))):
        k = draw(st.sampled_from("AAAFECXDDUPS"))
        loc = draw(st.sampled_from([1, 2, 65535]))
        if k in "AF":
            ops.append(add(draw(REFS), draw(st.sampled_from("BBSS?")), draw(st.integers(1, 6)),
                           draw(st.integers(0, 300)), loc, k))  # fmt: skip
        elif k in "EC":
            ops.append((E if k == "E" else C)(draw(REFS), draw(st.integers(0, 300)), loc))
        elif k == "X":
            ops.append(X(draw(REFS), draw(st.integers(0, 300)), loc))
        elif k == "D":
            ops.append(D(draw(REFS), loc))
        elif k == "U":
            ops.append(U(draw(REFS), draw(REFS), draw(st.integers(0, 300)),
                         draw(st.integers(1, 6)), loc))  # fmt: skip
        elif k == "P":
            ops.append(make("P", stock_locate=loc, shares=5, price=3, buy_sell_indicator="B"))
        else:
            ops.append(make("S", event_code="O"))
    return ops


@settings(max_examples=200, deadline=None)
@given(op_sequences())
def test_random_sequences_keep_book_consistent(ops):
    b = L3Book()
    prev = {}
    for m in ops:
        changed = b.apply(m)
        loc = b.last_locate
        if loc >= 0:
            now = b.bbo(loc)
            assert changed == (now != prev.get(loc, (0,) * 6))
            prev[loc] = now
        else:
            assert not changed
        check_consistent(b)
    assert set(b.anomalies) == set(ANOMALY_KINDS)
    for loc, side, _px, sh in b.orders.values():
        assert side in "BS" and sh >= 0 and loc in (1, 2, 65535)


@settings(max_examples=50, deadline=None)
@given(op_sequences())
def test_trace_rows_are_the_bbo_changes(ops):
    tr = bbo_trace(ops)
    b = L3Book()
    last: dict = {}
    rows = []
    for i, m in enumerate(ops):
        b.apply(m)
        for loc in (1, 2, 65535):
            now = tuple(b.bbo(loc))
            if now != last.get(loc, (0,) * 6):
                rows.append((i, loc, *now))
            last[loc] = now
    got = [(r["msg_index"], r["locate"], *[r[c] for c in BBO_COLUMNS[3:]]) for r in tr]
    assert [tuple(int(x) for x in r) for r in got] == rows
    assert np.all(np.diff(tr["msg_index"]) > 0) if len(tr) > 1 else True
