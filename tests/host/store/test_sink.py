"""Writing a running session to the store in batches, and re-loading it afterwards."""

from __future__ import annotations

import pytest

from host.store import ParquetStore, content_id, load_session
from host.store.ingest import SessionSink


@pytest.fixture(params=["parquet", "postgresql"])
def store(request, tmp_path):
    if request.param == "parquet":
        st = ParquetStore(tmp_path / "store")
        yield st
        st.close()
    else:
        yield request.getfixturevalue("pg_store")


def _count(store, table):
    return store.query(f"SELECT COUNT(*) FROM {table}")[1][0][0]


def test_live_batches_then_reload_adds_nothing(store, market_and_session, tmp_path):
    from host.console.live import LiveConfig, LiveSession

    src, _ = market_and_session
    folder = tmp_path / "live"
    sink = SessionSink(store, folder, capture=content_id(src))
    live = LiveSession(LiveConfig(input=src, out_dir=str(folder), speed=0, chunk=16),
                       sink=sink)
    flushes = []
    try:
        while live.step():
            if live.steps % 40 == 0:
                flushes.append(live.flush_store())
                assert _count(store, "fills") == live.stored.get("fills", 0)
    finally:
        live.stop()  # the last batch
    assert len(flushes) >= 3 and sum(1 for f in flushes if f.get("journal_events")) >= 3
    n = {t: _count(store, t) for t in ("journal_events", "orders", "fills", "sessions")}
    assert n["sessions"] == 1 and n["fills"] > 0
    assert n["fills"] == live.stored["fills"]
    # the folder loaded afterwards: same session id and keys, nothing new
    again = load_session(store, folder, capture=content_id(src), batch_rows=500)
    assert set(again.values()) == {0}
    # and it is everything the journals hold
    fresh = ParquetStore(tmp_path / "fresh")
    full = load_session(fresh, folder, capture=content_id(src))
    assert {t: full[t] for t in ("journal_events", "orders", "fills")} == \
        {t: n[t] for t in ("journal_events", "orders", "fills")}
    fresh.close()


def test_reload_in_other_batches_writes_nothing(store, market_and_session):
    src, sess = market_and_session
    first = load_session(store, sess, capture=content_id(src))
    assert first["journal_events"] > 500
    again = load_session(store, sess, capture=content_id(src), batch_rows=97)
    assert set(again.values()) == {0}
