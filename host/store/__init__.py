"""The store: market-data captures, orders, fills and journal events in a database.

Embedded default: Parquet files queried by DuckDB (:class:`ParquetStore`); server option:
PostgreSQL (:class:`PostgresStore`). One schema (:mod:`host.store.schema`, versioned), batches
from :mod:`host.store.ingest`, idempotent loads, three standard queries (fills by strategy,
TCA-lite against the capture's mid, BBO at a time). ``python -m host db`` is
:mod:`host.cli.db`; see ``docs/store.md``.
"""

from __future__ import annotations

from host.store.backends import (
    ParquetStore,
    PostgresStore,
    SchemaMismatch,
    StoreLocationError,
    open_store,
)
from host.store.schema import QUERIES, SCHEMA_VERSION, TABLES, content_id

__all__ = ["ParquetStore", "PostgresStore", "SchemaMismatch", "StoreLocationError",
           "open_store", "QUERIES",
           "SCHEMA_VERSION", "TABLES", "content_id", "load_capture", "load_session",
           "run_query"]


def _load(store, batches) -> dict[str, int]:
    written: dict[str, int] = {}
    store.begin()
    for table, rows in batches:
        written[table] = written.get(table, 0) + store.write(table, rows)
    return written


def load_capture(store, path, **kw) -> dict[str, int]:
    """Load a capture (ITCH file or pcap); ``{table: rows written}`` (all 0 on a re-load)."""
    from host.store.ingest import capture_batches

    return _load(store, capture_batches(path, **kw))


def load_session(store, folder, *, capture: str | None = None, **kw) -> dict[str, int]:
    """Load a session folder's journals; ``capture`` = id of its market data (for TCA)."""
    from host.store.ingest import session_batches

    return _load(store, session_batches(folder, capture=capture, **kw))


def run_query(store, name: str, **params) -> tuple[list[str], list[tuple]]:
    """One of :data:`QUERIES` by name; ``tca`` rows get ``cost`` (1e-4 USD, the halved
    ``cost_x2``) and ``cost_bps`` (of the notional) appended."""
    if name not in QUERIES:
        raise KeyError(f"unknown query {name!r}; choose from {', '.join(QUERIES)}")
    cols, rows = store.query(QUERIES[name], params)
    if name == "tca":
        i_cost, i_notional = cols.index("cost_x2"), cols.index("notional")
        out = []
        for r in rows:
            c2 = r[i_cost]
            cost = None if c2 is None else int(c2) // 2
            bps = None if cost is None or not r[i_notional] else \
                round(1e4 * cost / int(r[i_notional]), 3)
            out.append((*r, cost, bps))
        return [*cols, "cost", "cost_bps"], out
    return cols, rows
