"""Market data of a backtest: the book messages of the traded symbols, as plain columns.

:func:`load_market` reads a NASDAQ ITCH 5.0 file (plain or gzip) or a MoldUDP64 pcap in
chunks (:func:`host.feed.capture.input_chunks`, :func:`host.feed.bulk.parse_records`), keeps the
stock directory (``R``) and the order-book messages (``A F E C X D U P``) of the chosen locates,
and counts every message of the input (the throughput figures are per input message).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from host.errors import UserError

__all__ = ["MarketData", "load_market", "BOOK_TYPES"]

BOOK_TYPES = b"AFECXDUP"
_COLS = ("msg_index", "msg_type", "stock_locate", "timestamp", "order_ref", "new_order_ref",
         "side", "shares", "price")


@dataclass
class MarketData:
    """Book messages of ``locates`` in input order (numpy columns of the bulk record).

    Attributes
    ----------
    cols : dict
        ``msg_index, msg_type, stock_locate, timestamp, order_ref, new_order_ref, side,
        shares, price`` arrays.
    locates : tuple of int
    symbols : dict
        locate -> symbol of every ``R`` message of the input.
    n_input : int
        Messages in the whole input (every type, every symbol).
    stats : dict
        Reader counters (``unknown_type``, ``bad_length``, ``truncated``...).
    """

    cols: dict
    locates: tuple[int, ...]
    symbols: dict = field(default_factory=dict)
    n_input: int = 0
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cols["msg_type"])


def _stock(v: int) -> str:
    return int(v).to_bytes(8, "little").decode("ascii", "replace").strip()


def load_market(path, locates=None, symbols=None, *, n_auto: int = 1,
                max_messages: int = 0) -> MarketData:
    """Load the book messages of the traded symbols.

    Parameters
    ----------
    path : path-like
        ITCH file (``.gz`` ok) or MoldUDP64 pcap.
    locates : iterable of int, optional
        Stock locates to keep.
    symbols : iterable of str, optional
        Stock symbols to keep (resolved through the ``R`` messages).
    n_auto : int
        Without locates or symbols: keep the ``n_auto`` locates with the most book messages.
    max_messages : int
        Stop after this many input messages (0 = all).

    Raises
    ------
    UserError
        Unreadable or foreign input, an unknown symbol, or no book message for the choice.
    """
    from host.feed.bulk import parse_records
    from host.feed.capture import detect_format, input_chunks

    fmt = detect_format(str(path))
    info: dict = {}
    parts = []
    names: dict[int, str] = {}
    stats = dict.fromkeys(("messages", "unknown_type", "bad_length"), 0)
    want = None if locates is None else {int(x) for x in locates}
    counts = np.zeros(1 << 16, np.int64)
    n_input = 0
    base = 0
    book_mask = np.zeros(256, bool)
    book_mask[list(BOOK_TYPES)] = True
    for chunk in input_chunks(str(path), fmt, info, 16 << 20):
        recs, st = parse_records(chunk, base_index=base)
        base += st["framed"]
        for k in stats:
            stats[k] += st[k]
        if max_messages and n_input + len(recs) > max_messages:
            recs = recs[: max_messages - n_input]
        n_input += len(recs)
        r = recs[recs["msg_type"] == ord("R")]
        for loc, stock in zip(r["stock_locate"].tolist(), r["stock"].tolist(), strict=True):
            names[loc] = _stock(stock)
        b = recs[book_mask[recs["msg_type"]]]
        np.add.at(counts, b["stock_locate"], 1)
        if want is not None:
            b = b[np.isin(b["stock_locate"], list(want))]
        parts.append({c: b[c].copy() for c in _COLS})
        if max_messages and n_input >= max_messages:
            break
    stats.update(info.get("file", {}))
    chosen: list[int] = sorted(want) if want is not None else []
    if symbols:
        by_name = {v: k for k, v in names.items()}
        for s in symbols:
            if s not in by_name:
                raise UserError(f"unknown symbol {s!r} (not in the input's stock directory)")
            chosen.append(by_name[s])
    if not chosen:
        order = np.argsort(-counts, kind="stable")
        chosen = [int(x) for x in order[:n_auto] if counts[x] > 0]
    chosen = list(dict.fromkeys(chosen))
    if not chosen or counts[chosen].min() == 0:
        raise UserError(f"{path}: no book messages for locate(s) {chosen}")
    keep = np.array(chosen)
    cols = {}
    for c in _COLS:
        arrs = [p[c] for p in parts]
        cols[c] = np.concatenate(arrs) if arrs else np.zeros(0)
    sel = np.isin(cols["stock_locate"], keep)
    cols = {c: v[sel] for c, v in cols.items()}
    return MarketData(cols, tuple(chosen), names, n_input, stats)
