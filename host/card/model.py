"""The reference for what the card must emit, and the comparison used by ``--verify``.

The reference is the project's reference book (:func:`host.feed.fastbook.bbo_trace_records`, proven
equal to the readable :mod:`host.feed.book`) run over the messages the card was given, restricted to
the subscribed locates. The card's records (:mod:`hw.bbo_record`) are turned into the same
:data:`host.feed.book.BBO_DTYPE` rows (the ``bbo`` CSV) so that both sides compare row by row.

Two card-specific rules:

* Sizes: the card's ``bid_sz``/``ask_sz`` are 32 bits and saturate at ``2**32 - 1``; the
  reference sizes are clipped the same way before comparing.
* Clears (:meth:`host.card.Card.clear_stale`): the card empties the slot's book and may emit a
  record flagged ``cleared``. Those records are not message-driven and are left out of the
  trace; the reference restarts from an empty book at the same message (``restarts``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from host.feed.book import BBO_COLUMNS, BBO_DTYPE
from hw import bbo_record

__all__ = [
    "CARD_FLAG_COLUMNS",
    "decode",
    "bbo_records",
    "depth_columns",
    "depth_table",
    "card_trace",
    "trace_flags",
    "reference_trace",
    "first_difference",
    "format_difference",
]

U32_MAX = (1 << 32) - 1


def decode(raw: np.ndarray, depth_n: int = 1) -> np.ndarray:
    """``(n, record_bytes(depth_n))`` raw records -> :func:`hw.bbo_record.dtype` array (no
    copy)."""
    dt = bbo_record.dtype(depth_n)
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, dt.itemsize)
    return raw.reshape(-1).view(dt)


def bbo_records(recs: np.ndarray) -> np.ndarray:
    """The records that make the BBO trace: not ``cleared`` (a re-seed's commit) and not
    ``depth_only`` (a change at levels 2..N alone: a ``depth_n = 1`` card sends no record)."""
    drop = bbo_record.FLAG_CLEARED | bbo_record.FLAG_DEPTH_ONLY
    return recs[(recs["flags"] & drop) == 0]


def card_trace(recs: np.ndarray, seq_of_index: np.ndarray) -> np.ndarray:
    """Card records -> :data:`host.feed.book.BBO_DTYPE` rows (``cleared`` and ``depth_only``
    records dropped: :func:`bbo_records`).

    Parameters
    ----------
    recs : numpy.ndarray
        Decoded records (:data:`hw.bbo_record.DTYPE`).
    seq_of_index : numpy.ndarray
        Sorted MoldUDP64 sequence number of every message given to the card; a record's
        ``msg_index`` is the position of its ``seq`` in it (``-1`` for a sequence number that
        was never sent, which then shows up as a difference).
    """
    recs = bbo_records(recs)
    out = np.zeros(len(recs), BBO_DTYPE)
    seq = recs["seq"].astype(np.int64)
    idx = np.searchsorted(seq_of_index, seq)
    idx_c = np.minimum(idx, max(len(seq_of_index) - 1, 0))
    ok = (idx < len(seq_of_index)) & (seq_of_index[idx_c] == seq) if len(seq_of_index) else idx < 0
    out["msg_index"] = np.where(ok, idx, -1)
    for c in BBO_COLUMNS[1:]:
        out[c] = recs[c]
    return out


CARD_FLAG_COLUMNS = ("valid", "stale", "recovered")
"""Columns the card's BBO CSV has after :data:`host.feed.book.BBO_COLUMNS`."""


def trace_flags(recs: np.ndarray) -> dict[str, np.ndarray]:
    """``valid``, ``stale`` and ``recovered`` of every row of :func:`card_trace` (same rows,
    same order).

    ``valid`` is 0 when the card's book could not represent the symbol's book exactly
    (``book_invalid``: a level, order or size it cannot hold); ``stale`` is 1 after a sequence
    gap until the slot is cleared; ``recovered`` is 1 once the host re-seeded the slot
    (:meth:`host.card.Card.reseed`), until its next clear. A row with ``valid == 0`` is never
    an exact BBO.
    """
    recs = bbo_records(recs)
    f = recs["flags"]
    return {
        "valid": ((f & bbo_record.FLAG_BOOK_INVALID) == 0).astype(np.uint8),
        "stale": ((f & bbo_record.FLAG_STALE) != 0).astype(np.uint8),
        "recovered": ((f & bbo_record.FLAG_RECOVERED) != 0).astype(np.uint8),
    }


def reference_trace(
    itch,
    locates: Iterable[int] | None = None,
    *,
    restarts: Iterable[int] = (),
) -> np.ndarray:
    """The BBO trace the card must produce for ``itch`` (NASDAQ framing).

    Parameters
    ----------
    itch : bytes
        The messages the card processed, in order.
    locates : iterable of int, optional
        Subscribed locates (all when ``None``).
    restarts : iterable of int
        Message indices before which every book was cleared (``clear_stale()`` of all slots).
    """
    from host.feed.bulk import parse_records
    from host.feed.fastbook import bbo_trace_records

    recs, _stats = parse_records(itch)
    locs = None if locates is None else sorted(set(int(x) for x in locates))
    cuts = sorted(set(int(r) for r in restarts))
    parts = []
    bounds = [0, *cuts, None]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        sel = recs["msg_index"] >= lo
        if hi is not None:
            sel &= recs["msg_index"] < hi
        tr, _ = bbo_trace_records(recs[sel], locates=locs)
        parts.append(tr)
    out = np.concatenate(parts) if parts else np.zeros(0, BBO_DTYPE)
    out["bid_sz"] = np.minimum(out["bid_sz"], U32_MAX)
    out["ask_sz"] = np.minimum(out["ask_sz"], U32_MAX)
    return out


def first_difference(card: np.ndarray, ref: np.ndarray) -> int | None:
    """Index of the first row where two BBO traces differ (or where one ends), else None."""
    n = min(len(card), len(ref))
    if n:
        neq = np.zeros(n, bool)
        for c in BBO_COLUMNS:
            neq |= card[c][:n].astype(np.int64) != ref[c][:n].astype(np.int64)
        hit = np.flatnonzero(neq)
        if hit.size:
            return int(hit[0])
    if len(card) != len(ref):
        return n
    return None


def format_difference(card: np.ndarray, ref: np.ndarray, i: int, context: int = 2) -> str:
    """A readable account of the difference at row ``i`` (with a few rows before it)."""

    def row(t, k):
        if k >= len(t):
            return "(no row)"
        return " ".join(f"{c}={int(t[c][k])}" for c in BBO_COLUMNS)

    lines = [f"first difference at BBO row {i} (card {len(card)} rows, reference {len(ref)}):"]
    for k in range(max(0, i - context), i + 1):
        mark = ">" if k == i else " "
        lines.append(f"{mark} card {row(card, k)}")
        lines.append(f"{mark} ref  {row(ref, k)}")
    return "\n".join(lines)


def depth_columns(depth_n: int) -> tuple[str, ...]:
    """CSV columns of ``bbo --depth N --card sim``: :data:`host.feed.book.BBO_COLUMNS`, the
    card's flags (:data:`CARD_FLAG_COLUMNS`), ``bid2_px, bid2_sz, bid2_ct ... bidN_ct``,
    ``ask2_px ... askN_ct``, ``depth_only`` (the level columns in the order of
    ``host.feed.depth.depth_columns``)."""
    n = int(depth_n)
    lv = [f"{side}{k}_{f}" for side in ("bid", "ask") for k in range(2, n + 1)
          for f in ("px", "sz", "ct")]
    return (*BBO_COLUMNS, *CARD_FLAG_COLUMNS, *lv, "depth_only")


def depth_table(recs: np.ndarray, seq_of_index: np.ndarray) -> np.ndarray:
    """Card depth records -> ``(rows, len(depth_columns(N)))`` int64 table, one row per
    record but the ``cleared`` ones (a re-seed's commit), ``depth_only`` rows included.

    ``msg_index`` as in :func:`card_trace`; sizes as the card sends them (32 bits,
    saturating).
    """
    n = int(recs["depth_n"][0]) if len(recs) else 1
    keep = recs[(recs["flags"] & bbo_record.FLAG_CLEARED) == 0]
    d = bbo_record.dtype(n)
    if keep.dtype != d:
        raise ValueError(f"records of dtype {keep.dtype}, depth_n byte {n}")
    flagged = keep.copy()
    flagged["flags"] &= ~np.uint8(bbo_record.FLAG_DEPTH_ONLY)  # card_trace keeps every row
    tr = card_trace(flagged, seq_of_index)
    fl = trace_flags(flagged)
    cols = [tr[c].astype(np.int64)[:, None] for c in BBO_COLUMNS]
    cols += [fl[c].astype(np.int64)[:, None] for c in CARD_FLAG_COLUMNS]
    for side in ("B", "S"):
        lv = bbo_record.depth_levels(keep, side)[:, 1:, :].astype(np.int64)
        cols.append(lv.reshape(len(keep), -1))
    cols.append(((keep["flags"] & bbo_record.FLAG_DEPTH_ONLY) != 0).astype(np.int64)[:, None])
    width = len(depth_columns(n))
    return np.hstack(cols) if len(keep) else np.zeros((0, width), np.int64)
