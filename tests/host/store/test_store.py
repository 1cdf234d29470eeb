"""The store on both backends: loads, idempotent re-loads, the standard queries against
references computed from the journals and the reference book, schema versions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from host.store import (
    ParquetStore,
    SchemaMismatch,
    content_id,
    load_capture,
    load_session,
    run_query,
)


@pytest.fixture(params=["parquet", "postgresql"])
def store(request, tmp_path):
    if request.param == "parquet":
        st = ParquetStore(tmp_path / "store")
        yield st
        st.close()
    else:
        yield request.getfixturevalue("pg_store")


@pytest.fixture
def loaded(store, market_and_session):
    src, sess = market_and_session
    w1 = load_capture(store, src)
    w2 = load_session(store, sess, capture=content_id(src))
    return store, src, sess, w1, w2


def _count(store, table):
    return store.query(f"SELECT COUNT(*) FROM {table}")[1][0][0]


def _journals(sess):
    from host.trading.journal import read_journal

    return read_journal(f"{sess}/venue.journal").events, read_journal(f"{sess}/risk.journal").events


def test_load_writes_every_message_bbo_order_and_fill(loaded):
    from host.card.model import reference_trace
    from host.feed.capture import load_feed
    from host.trading.matching import EventKind
    from host.trading.risk.types import RiskEventKind

    store, src, sess, w1, w2 = loaded
    feed = load_feed(src)
    trace = reference_trace(feed.itch, None)
    venue, risk = _journals(sess)
    assert w1["md_messages"] == _count(store, "md_messages") == feed.n_messages
    assert w1["md_bbo"] == _count(store, "md_bbo") == len(trace)
    n_acc = int(np.count_nonzero(venue["kind"] == EventKind.ACCEPTED))
    n_den = int(np.count_nonzero(risk["kind"] == RiskEventKind.DENIED))
    assert w2["orders"] == _count(store, "orders") == n_acc + n_den > 0
    assert w2["fills"] == _count(store, "fills") == int(
        np.count_nonzero(venue["kind"] == EventKind.FILLED)) > 0
    assert w2["journal_events"] == len(venue) + len(risk)
    cols, rows = store.query("SELECT status, COUNT(*) FROM orders GROUP BY status")
    got = dict(rows)
    assert got["accepted"] == n_acc and sum(got.values()) == n_acc + n_den


def test_reload_writes_no_duplicates(loaded):
    store, src, sess, w1, w2 = loaded
    before = {t: _count(store, t) for t in ("md_messages", "md_bbo", "orders", "fills",
                                             "journal_events", "captures", "sessions")}
    again1 = load_capture(store, src)
    again2 = load_session(store, sess, capture=content_id(src))
    assert set(again1.values()) == {0} and set(again2.values()) == {0}
    assert {t: _count(store, t) for t in before} == before


def test_reload_in_other_batches_writes_nothing(store, market_and_session):
    src, sess = market_and_session
    first = load_session(store, sess, capture=content_id(src))
    assert first["journal_events"] > 500
    again = load_session(store, sess, capture=content_id(src), batch_rows=97)
    assert set(again.values()) == {0}


def test_fills_by_strategy_matches_the_journal(loaded):
    from host.trading.matching import EventKind

    store, _, sess, *_ = loaded
    venue, _ = _journals(sess)
    f = venue[venue["kind"] == EventKind.FILLED]
    cols, rows = run_query(store, "fills-by-strategy", session=None)
    got = {(r[0], r[1]): r[2:] for r in rows}
    assert cols == ["strategy", "instrument", "fills", "qty", "net_qty", "notional"]
    want = {}
    for acct, inst, side, px, q in zip(f["account"].tolist(), f["instrument"].tolist(),
                                       f["side"].tolist(), f["last_px"].tolist(),
                                       f["last_qty"].tolist(), strict=True):
        n, qty, net, notional = want.get((acct, inst), (0, 0, 0, 0))
        want[(acct, inst)] = (n + 1, qty + q, net + (q if side == 1 else -q),
                              notional + px * q)
    assert {k: tuple(int(x) for x in v) for k, v in got.items()} == want


def test_tca_matches_a_reference_mid(loaded):
    from host.card.model import reference_trace
    from host.feed.capture import load_feed
    from host.trading.matching import EventKind

    store, src, sess, *_ = loaded
    venue, _ = _journals(sess)
    tr = reference_trace(load_feed(src).itch, None)
    tr = tr[(tr["bid_px"] > 0) & (tr["ask_px"] > 0)]
    f = venue[venue["kind"] == EventKind.FILLED]
    want: dict[int, int] = {}
    for acct, inst, side, px, q, ts in zip(f["account"].tolist(), f["instrument"].tolist(),
                                           f["side"].tolist(), f["last_px"].tolist(),
                                           f["last_qty"].tolist(), f["ts"].tolist(),
                                           strict=True):
        t = tr[(tr["locate"] == inst) & (tr["ts_event"].astype(np.int64) <= ts)]
        assert len(t), "every session fill follows a two-sided BBO"
        b, a = int(t["bid_px"][-1]), int(t["ask_px"][-1])
        want[acct] = want.get(acct, 0) + (1 if side == 1 else -1) * (2 * px - b - a) * q
    cols, rows = run_query(store, "tca", session=None)
    got = {r[0]: r for r in rows}
    assert {k: int(r[cols.index("cost_x2")]) for k, r in got.items()} == want
    for r in rows:
        assert r[cols.index("with_mid")] == r[cols.index("fills")]
        assert r[cols.index("cost")] == int(r[cols.index("cost_x2")]) // 2


def test_bbo_at_a_time_matches_the_reference_book(loaded):
    from host.card.model import reference_trace
    from host.feed.capture import load_feed, symbol_directory

    store, src, *_ = loaded
    feed = load_feed(src)
    tr = reference_trace(feed.itch, None)
    ts = int(tr["ts_event"][len(tr) // 2])
    cols, rows = run_query(store, "bbo-at", capture=content_id(src), ts=ts)
    names = {v: k for k, v in symbol_directory(feed.itch).items()}
    want = []
    for loc in sorted(set(tr["locate"].tolist())):
        t = tr[(tr["locate"] == loc) & (tr["ts_event"].astype(np.int64) <= ts)]
        if len(t):
            r = t[-1]
            want.append((loc, names.get(loc), int(r["ts_event"]), int(r["bid_px"]),
                         int(r["bid_sz"]), int(r["ask_px"]), int(r["ask_sz"])))
    assert [tuple(int(x) if isinstance(x, int | np.integer) else x for x in r) for r in rows] \
        == want


def test_both_backends_answer_the_same(tmp_path, pg_store, market_and_session):
    src, sess = market_and_session
    pq_store = ParquetStore(tmp_path / "pq")
    for st in (pq_store, pg_store):
        load_capture(st, src)
        load_session(st, sess, capture=content_id(src))
    for name, params in (("fills-by-strategy", {"session": None}), ("tca", {"session": None}),
                         ("bbo-at", {"capture": content_id(src), "ts": 50_000 * 10**9})):
        a = run_query(pq_store, name, **params)
        b = run_query(pg_store, name, **params)
        norm = [tuple(int(x) if isinstance(x, int) or hasattr(x, "as_integer_ratio")
                      and not isinstance(x, float) else x for x in r) for r in b[1]]
        assert a[0] == b[0] and a[1] == norm, name
    pq_store.close()


def test_other_schema_version_is_refused(tmp_path, pg_store):
    root = tmp_path / "old"
    ParquetStore(root).close()
    (root / "schema.json").write_text(json.dumps({"version": 999}))
    with pytest.raises(SchemaMismatch, match="999"):
        ParquetStore(root)
    from host.store import PostgresStore

    with pg_store.conn.cursor() as cur:
        cur.execute("UPDATE schema_version SET version = 999")
    pg_store.conn.commit()
    url = pg_store.conn.info.dsn
    with pytest.raises(SchemaMismatch, match="999"):
        PostgresStore(url)


def test_a_batch_of_two_sources_is_refused(tmp_path):
    import pyarrow as pa

    from host.store.ingest import arrow_schema

    t = pa.table({"capture_id": ["a", "b"], "path": ["x", "y"], "messages": [1, 2],
                  "bbo_rows": [0, 0]}, schema=arrow_schema("captures"))
    with pytest.raises(ValueError, match="one source"):
        ParquetStore(tmp_path / "s").write("captures", t)
