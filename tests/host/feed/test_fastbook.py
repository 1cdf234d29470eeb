"""host.feed.fastbook: the numba book gives exactly the pure-Python book's trace and anomalies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from host.feed.book import BBO_DTYPE, L3Book, bbo_trace
from host.feed.bulk import parse_records
from host.feed.fastbook import FastBook, bbo_trace_records
from host.feed.generator import generate
from tests.host.feed.test_book import D, U, add, frame, op_sequences


def slow(buf, locates=None):
    b = L3Book(locates)
    return bbo_trace(buf, book=b), b


def assert_same_state(fb: FastBook, b: L3Book) -> None:
    assert fb.anomalies == b.anomalies
    assert fb.orders() == {r: tuple(o) for r, o in b.orders.items()}
    locs = {o[0] for o in b.orders.values()}
    for loc in locs:
        assert fb.bbo(loc) == b.bbo(loc)
        for side in "BS":
            assert fb.depth(loc, side, 1000) == b.depth(loc, side, 1000)


def test_small_sequence_matches():
    buf = frame([add(1, ts=5), add(2, "S", 200_000_0000, 7, ts=6), U(1, 3, 10, 99_0000), D(9),
                 D(2)])  # fmt: skip
    rec, _ = parse_records(buf)
    tr, an = bbo_trace_records(rec)
    ref, b = slow(buf)
    assert tr.dtype == BBO_DTYPE
    assert (tr == ref).all() and an == b.anomalies
    assert an["unknown_ref"] == 1


@settings(max_examples=150, deadline=None)
@given(op_sequences())
def test_random_sequences_fast_equals_slow(ops):
    buf = frame(ops)
    rec, _ = parse_records(buf)
    fb = FastBook(order_capacity=16, pool_levels=16)  # force every growth path
    tr = fb.feed(rec)
    ref, b = slow(buf)
    assert len(tr) == len(ref) and (tr == ref).all()
    assert_same_state(fb, b)


@settings(max_examples=40, deadline=None)
@given(op_sequences())
def test_chunked_feed_equals_one_shot(ops):
    buf = frame(ops)
    rec, _ = parse_records(buf)
    whole, an = bbo_trace_records(rec)
    fb = FastBook()
    parts = [fb.feed(rec[i : i + 7], copy=False).copy() for i in range(0, len(rec), 7)]
    got = np.concatenate(parts) if parts else np.empty(0, BBO_DTYPE)
    assert (got == whole).all() and fb.anomalies == an


def test_generator_stream_with_locate_filter_and_growth():
    buf = generate(60_000, 12, 11)
    rec, _ = parse_records(buf)
    ref, b = slow(buf)
    keep = sorted(b.symbols)[::3]
    fb = FastBook(keep, order_capacity=16, pool_levels=32)
    tr = fb.feed(rec)
    assert (tr == ref[np.isin(ref["locate"], keep)]).all()
    assert_same_state(fb, b)


def test_bad_input_shapes():
    rec, _ = parse_records(frame([add(1)]))
    with pytest.raises(ValueError):
        FastBook().feed({"msg_type": rec["msg_type"], **{k: rec[k][:0] for k in rec.dtype.names
                                                        if k != "msg_type"}})  # fmt: skip


def _long_check(n, n_symbols, seed):
    buf = generate(n, n_symbols, seed)
    rec, stats = parse_records(buf)
    assert stats["messages"] == n
    tr, an = bbo_trace_records(rec)
    ref, b = slow(buf)
    assert len(tr) == len(ref) > n // 10
    assert (tr == ref).all()
    assert an == b.anomalies and sum(an.values()) == 0


def test_one_million_messages_fast_equals_slow():
    _long_check(1_000_000, 32, 7)


@pytest.mark.long
@pytest.mark.parametrize("seed", [1, 2])
def test_long_streams_fast_equals_slow(seed):
    _long_check(5_000_000, 500, seed)
