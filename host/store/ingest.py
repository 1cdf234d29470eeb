"""Rows for the store: a market-data capture and a session's journals as Arrow batches.

:func:`capture_batches` reads an ITCH file or MoldUDP64 pcap (:func:`host.feed.capture.load_feed`)
and yields the ``captures``, ``md_symbols``, ``md_messages`` (decoded messages) and ``md_bbo``
(the reference book's BBO trace, every symbol) rows; :func:`session_batches` reads a session
folder (``venue.journal`` and, when present, ``risk.journal``, as written by
``python -m host session`` or ``python -m host serve``) and yields ``sessions``,
``journal_events``, ``orders`` (accepted by the venue, and denied by risk) and ``fills``.
Large tables come in batches of ``batch_rows`` (a store writes each batch as it comes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from host.store.schema import TABLES, content_id

__all__ = ["capture_batches", "session_batches", "event_batches", "session_id",
           "arrow_schema", "BATCH_ROWS", "RUN_ID_FILE"]

BATCH_ROWS = 100_000

RUN_ID_FILE = "run_id"
"""Written into a run's output folder by ``--store`` (:mod:`host.store.live`): a later
``db load session`` of that folder uses the same session id, so it adds nothing."""

_ARROW = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "TEXT": pa.string()}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a store table (from :data:`host.store.schema.TABLES`)."""
    return pa.schema([(c, _ARROW[t]) for c, t in TABLES[table]])


def _table(name: str, cols: dict) -> pa.Table:
    sch = arrow_schema(name)
    arrays = []
    for f in sch:
        v = cols[f.name]
        if isinstance(v, np.ndarray) and v.dtype == np.uint64:
            v = v.view(np.int64)  # same bits (ITCH order references use all 64)
        arrays.append(pa.array(v, type=f.type))
    return pa.Table.from_arrays(arrays, schema=sch)


def _chars(a: np.ndarray) -> np.ndarray:
    """uint8 ASCII codes -> one-character strings ('' for 0)."""
    lut = np.array([chr(i) if 32 < i < 127 else "" for i in range(256)], dtype=object)
    return lut[a.astype(np.uint8)]


def capture_batches(path, *, batch_rows: int = BATCH_ROWS,
                    stats: dict | None = None) -> Iterator[tuple[str, pa.Table]]:
    """``(table, rows)`` of a capture; the first is its ``captures`` row.

    ``stats``, when given, receives the parser's counts (:func:`host.feed.bulk.parse_records`:
    ``messages``, ``unknown_type``, ``bad_length``, ``zero_length``, ``truncated``,
    ``consumed`` bytes, ``bytes``; ``cut_bytes`` of a partial message at the end of a file) so
    the caller can say what was not loaded.
    """
    from host.card.model import reference_trace
    from host.feed.bulk import parse_records
    from host.feed.capture import load_feed, symbol_directory

    cid = content_id(path)
    file_stats: dict = {}
    feed = load_feed(path, stats=file_stats)
    recs, st = parse_records(feed.itch)
    if stats is not None:
        stats.update(st, bytes=len(feed.itch))
        for k in ("truncated", "zero_length"):  # the file reader's, before parse_records
            stats[k] = stats.get(k, 0) + file_stats.get(k, 0)
        stats["cut_bytes"] = file_stats.get("truncated_bytes", 0)
    directory = symbol_directory(feed.itch)
    trace = reference_trace(feed.itch, None)
    yield "captures", _table("captures", {"capture_id": [cid], "path": [str(path)],
                                          "messages": [len(recs)], "bbo_rows": [len(trace)]})
    locs = sorted(directory.items(), key=lambda kv: kv[1])
    yield "md_symbols", _table("md_symbols", {"capture_id": [cid] * len(locs),
                                              "locate": [v for _, v in locs],
                                              "symbol": [k for k, _ in locs]})
    for lo in range(0, len(recs), batch_rows):
        r = recs[lo:lo + batch_rows]
        n = len(r)
        yield "md_messages", _table("md_messages", {
            "capture_id": np.full(n, cid, dtype=object), "msg_index": r["msg_index"],
            "msg_type": _chars(r["msg_type"]), "locate": r["stock_locate"],
            "ts": r["timestamp"].astype(np.int64), "order_ref": r["order_ref"],
            "new_order_ref": r["new_order_ref"], "side": _chars(r["side"]),
            "shares": r["shares"].astype(np.int64), "price": r["price"].astype(np.int64),
            "match_number": r["match_number"]})
    for lo in range(0, len(trace), batch_rows):
        t = trace[lo:lo + batch_rows]
        n = len(t)
        yield "md_bbo", _table("md_bbo", {
            "capture_id": np.full(n, cid, dtype=object), "msg_index": t["msg_index"],
            "ts": t["ts_event"].astype(np.int64), "locate": t["locate"],
            **{c: t[c].astype(np.int64) for c in ("bid_px", "bid_sz", "bid_ct", "ask_px",
                                                  "ask_sz", "ask_ct")}})


def _kind_names() -> dict[int, str]:
    from host.trading.matching import EventKind
    from host.trading.risk.types import RiskEventKind

    return {**{int(k): k.name for k in EventKind}, **{int(k): k.name for k in RiskEventKind}}


def session_id(venue_journal) -> str:
    """A session's id: the venue journal's id (its creation time, ns) in 16 hex digits.

    The same while the journal grows, so rows written during a session and a later load of
    its folder have the same keys.
    """
    from host.trading.journal.journal import read_journal

    return f"{read_journal(venue_journal).journal_id:016x}"


def _assigned(risk) -> dict[int, int]:
    """order id -> strategy from the risk journal's STRATEGY_ASSIGNED events."""
    from host.trading.risk.types import RiskEventKind

    if risk is None:
        return {}
    a = risk[risk["kind"] == RiskEventKind.STRATEGY_ASSIGNED]
    return dict(zip(a["order_id"].tolist(), a["contra_account"].tolist(), strict=True))


def event_batches(sid: str, journal: str, events: np.ndarray, assigned: dict[int, int],
                  *, batch_rows: int = BATCH_ROWS) -> Iterator[tuple[str, pa.Table]]:
    """``journal_events``, ``orders`` and ``fills`` rows of one journal's events.

    ``journal`` is ``"venue"`` or ``"risk"``; ``assigned`` maps order ids to strategies
    other than their account's (the session binds strategy = account).
    """
    from host.trading.matching import EventFlag, EventKind
    from host.trading.risk.types import DenyReason, RiskEventKind

    names = _kind_names()
    side = np.array(["", "B", "S"] + [""] * 253, dtype=object)

    def strategy(ev):
        s = ev["account"].astype(np.int64)
        if assigned:
            ids = ev["order_id"].tolist()
            s = np.array([assigned.get(o, int(x)) for o, x in zip(ids, s, strict=True)],
                         np.int64)
        return s

    for lo in range(0, len(events), batch_rows):
        ev = events[lo:lo + batch_rows]
        n = len(ev)
        yield "journal_events", _table("journal_events", {
            "session_id": np.full(n, sid, dtype=object),
            "journal": np.full(n, journal, dtype=object),
            "seq": ev["seq"].astype(np.int64), "ts": ev["ts"],
            "kind": ev["kind"], "kind_name": [names.get(int(k), str(k)) for k in ev["kind"]],
            "order_id": ev["order_id"], "account": ev["account"],
            "instrument": ev["instrument"], "side": ev["side"], "price": ev["price"],
            "last_px": ev["last_px"], "last_qty": ev["last_qty"],
            "leaves_qty": ev["leaves_qty"], "cum_qty": ev["cum_qty"],
            "init_qty": ev["init_qty"], "reason": ev["reason"], "flags": ev["flags"]})
        if journal == "venue":
            o = ev[ev["kind"] == EventKind.ACCEPTED]
            status = np.full(len(o), "accepted", dtype=object)
        else:
            o = ev[ev["kind"] == RiskEventKind.DENIED]
            status = np.array([f"denied:{DenyReason(int(r)).name}" for r in o["reason"]],
                              dtype=object)
        if len(o):
            yield "orders", _table("orders", {
                "session_id": np.full(len(o), sid, dtype=object),
                "journal": np.full(len(o), journal, dtype=object),
                "seq": o["seq"].astype(np.int64), "ts": o["ts"], "order_id": o["order_id"],
                "account": o["account"], "strategy": strategy(o),
                "instrument": o["instrument"], "side": side[o["side"]],
                "order_type": o["order_type"], "tif": o["tif"], "price": o["price"],
                "qty": o["init_qty"], "status": status})
        if journal == "venue":
            f = ev[ev["kind"] == EventKind.FILLED]
            if len(f):
                maker = (f["flags"] & EventFlag.MAKER) != 0
                yield "fills", _table("fills", {
                    "session_id": np.full(len(f), sid, dtype=object),
                    "seq": f["seq"].astype(np.int64), "ts": f["ts"],
                    "order_id": f["order_id"], "trade_id": f["trade_id"],
                    "account": f["account"], "strategy": strategy(f),
                    "instrument": f["instrument"], "side": side[f["side"]],
                    "px": f["last_px"], "qty": f["last_qty"],
                    "liquidity": np.where(maker, "maker", "taker").astype(object)})


def session_row(sid: str, folder, capture: str | None, events: int) -> pa.Table:
    """The ``sessions`` row."""
    return _table("sessions", {"session_id": [sid], "path": [str(folder)],
                               "capture_id": [capture], "events": [events]})


def session_batches(folder, *, capture: str | None = None,
                    batch_rows: int = BATCH_ROWS) -> Iterator[tuple[str, pa.Table]]:
    """``(table, rows)`` of a session folder; ``capture`` is the id of the market data it ran
    on (for TCA), when known."""
    from host.trading.journal import read_journal

    folder = Path(folder)
    vj = folder / "venue.journal"
    if not vj.is_file():
        raise FileNotFoundError(f"{folder}: no venue.journal (not a session folder)")
    vc = read_journal(vj)
    rid = folder / RUN_ID_FILE
    sid = rid.read_text().strip() if rid.is_file() else f"{vc.journal_id:016x}"
    venue = vc.events
    rj = folder / "risk.journal"
    risk = read_journal(rj).events if rj.is_file() else None
    yield "sessions", session_row(sid, folder, capture,
                                  len(venue) + (len(risk) if risk is not None else 0))
    assigned = _assigned(risk)
    for journal, ev in (("venue", venue), ("risk", risk)):
        if ev is not None:
            yield from event_batches(sid, journal, ev, assigned, batch_rows=batch_rows)
