"""The store's schema (one definition for both backends) and its standard queries.

Every table has a natural key made of the *content id* of its source (a capture's or a
session's SHA-256, :func:`content_id`) and a position inside that source, so loading the same
file twice writes nothing new: PostgreSQL inserts with ``ON CONFLICT DO NOTHING`` on the
primary key; the Parquet store writes one file per source and part, named by that id.

Integers end to end: prices are ITCH Price(4) (1/10000 dollar), timestamps ns since midnight
(the feed's clock, which the session's orders use too), money 1e-4 USD. ITCH order reference
numbers are 64-bit unsigned and are stored as the signed 64-bit integer with the same bits.
"""

from __future__ import annotations

import hashlib
import os
import re

__all__ = ["SCHEMA_VERSION", "TABLES", "KEYS", "QUERIES", "content_id", "ddl", "bind"]

SCHEMA_VERSION = 1
"""Bumped on any change of :data:`TABLES`; a store of another version is refused."""

B, INT, T = "BIGINT", "INTEGER", "TEXT"

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "captures": (("capture_id", T), ("path", T), ("messages", B), ("bbo_rows", B)),
    "md_symbols": (("capture_id", T), ("locate", INT), ("symbol", T)),
    "md_messages": (("capture_id", T), ("msg_index", B), ("msg_type", T), ("locate", INT),
                    ("ts", B), ("order_ref", B), ("new_order_ref", B), ("side", T),
                    ("shares", B), ("price", B), ("match_number", B)),
    "md_bbo": (("capture_id", T), ("msg_index", B), ("ts", B), ("locate", INT), ("bid_px", B),
               ("bid_sz", B), ("bid_ct", B), ("ask_px", B), ("ask_sz", B), ("ask_ct", B)),
    "sessions": (("session_id", T), ("path", T), ("capture_id", T), ("events", B)),
    "journal_events": (("session_id", T), ("journal", T), ("seq", B), ("ts", B), ("kind", INT),
                       ("kind_name", T), ("order_id", B), ("account", INT), ("instrument", INT),
                       ("side", INT), ("price", B), ("last_px", B), ("last_qty", B),
                       ("leaves_qty", B), ("cum_qty", B), ("init_qty", B), ("reason", INT),
                       ("flags", INT)),
    "orders": (("session_id", T), ("journal", T), ("seq", B), ("ts", B), ("order_id", B),
               ("account", INT), ("strategy", INT), ("instrument", INT), ("side", T),
               ("order_type", INT), ("tif", INT), ("price", B), ("qty", B), ("status", T)),
    "fills": (("session_id", T), ("seq", B), ("ts", B), ("order_id", B), ("trade_id", B),
              ("account", INT), ("strategy", INT), ("instrument", INT), ("side", T), ("px", B),
              ("qty", B), ("liquidity", T)),
}
"""Table -> ((column, SQL type), ...)."""

KEYS: dict[str, tuple[str, ...]] = {
    "captures": ("capture_id",),
    "md_symbols": ("capture_id", "locate"),
    "md_messages": ("capture_id", "msg_index"),
    "md_bbo": ("capture_id", "msg_index", "locate"),
    "sessions": ("session_id",),
    "journal_events": ("session_id", "journal", "seq"),
    "orders": ("session_id", "journal", "seq"),
    "fills": ("session_id", "seq"),
}
"""Primary key of every table (what makes a re-load write nothing)."""

INDEXES = (("md_bbo", ("capture_id", "locate", "ts")), ("fills", ("strategy",)))


def ddl() -> list[str]:
    """``CREATE TABLE`` / ``CREATE INDEX`` statements (PostgreSQL)."""
    out = ["CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)"]
    for t, cols in TABLES.items():
        body = ", ".join(f"{c} {ty}" for c, ty in cols)
        out.append(f"CREATE TABLE IF NOT EXISTS {t} ({body}, PRIMARY KEY ({', '.join(KEYS[t])}))")
    for t, cols in INDEXES:
        out.append(f"CREATE INDEX IF NOT EXISTS {t}_{'_'.join(cols)} ON {t} ({', '.join(cols)})")
    return out


def content_id(path: str | os.PathLike) -> str:
    """First 16 hex digits of the SHA-256 of a file's bytes (the id of what was loaded)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


QUERIES: dict[str, str] = {
    # fills per strategy and instrument; net_qty signed (bought > 0); notional in 1e-4 USD
    "fills-by-strategy": """
        SELECT strategy, instrument, COUNT(*) AS fills, SUM(qty) AS qty,
               SUM(CASE WHEN side = 'B' THEN qty ELSE -qty END) AS net_qty,
               SUM(px * qty) AS notional
        FROM fills
        WHERE (CAST(:session AS TEXT) IS NULL OR session_id = CAST(:session AS TEXT))
        GROUP BY strategy, instrument
        ORDER BY strategy, instrument""",
    # TCA-lite: each fill against the mid of the capture's BBO at or before its time.
    # cost_x2 = sum(sign * (2 px - bid - ask) * qty): twice the cost against the mid (kept an
    # integer on both engines; halved by the caller); > 0 means paid over the mid.
    "tca": """
        SELECT f.strategy, COUNT(*) AS fills, SUM(f.qty) AS qty,
               SUM(f.px * f.qty) AS notional,
               COUNT(b.bid_px) AS with_mid,
               SUM(CASE WHEN f.side = 'B' THEN 1 ELSE -1 END
                   * (2 * f.px - b.bid_px - b.ask_px) * f.qty) AS cost_x2
        FROM fills f
        JOIN sessions s ON s.session_id = f.session_id
        LEFT JOIN LATERAL (
            SELECT m.bid_px, m.ask_px FROM md_bbo m
            WHERE m.capture_id = s.capture_id AND m.locate = f.instrument AND m.ts <= f.ts
              AND m.bid_px > 0 AND m.ask_px > 0
            ORDER BY m.ts DESC, m.msg_index DESC LIMIT 1) b ON TRUE
        WHERE (CAST(:session AS TEXT) IS NULL OR f.session_id = CAST(:session AS TEXT))
        GROUP BY f.strategy
        ORDER BY f.strategy""",
    # the last BBO of every locate at or before :ts (ns since midnight) in one capture
    "bbo-at": """
        SELECT x.locate, y.symbol, x.ts, x.bid_px, x.bid_sz, x.ask_px, x.ask_sz
        FROM (SELECT m.locate, m.ts, m.bid_px, m.bid_sz, m.ask_px, m.ask_sz,
                     ROW_NUMBER() OVER (PARTITION BY m.locate
                                        ORDER BY m.ts DESC, m.msg_index DESC) AS rn
              FROM md_bbo m
              WHERE m.capture_id = CAST(:capture AS TEXT) AND m.ts <= CAST(:ts AS BIGINT)) x
        LEFT JOIN md_symbols y ON y.capture_id = CAST(:capture AS TEXT) AND y.locate = x.locate
        WHERE x.rn = 1
        ORDER BY x.locate""",
}
"""Standard queries (portable SQL: DuckDB and PostgreSQL), ``:name`` parameters."""

_PARAM = re.compile(r":([a-z_]+)\b")


def bind(sql: str, style: str) -> str:
    """``:name`` parameters -> ``$name`` (DuckDB) or ``%(name)s`` (psycopg)."""
    if style == "duckdb":
        return _PARAM.sub(r"$\1", sql)
    return _PARAM.sub(r"%(\1)s", sql)
