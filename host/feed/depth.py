"""Top-N depth trace of the reference book (the model the card's depth records are checked against).

:func:`depth_trace` drives a :class:`host.feed.book.L3Book` like :func:`host.feed.book.bbo_trace`
and emits one row (:func:`depth_dtype`) each time a message changes any of the best ``n``
levels ``(price, size, count)`` of either side of a reported locate. A row carries the best
level of each side in the :data:`host.feed.book.BBO_DTYPE` columns, levels ``2..n`` in
``bid_levels`` / ``ask_levels`` (``(n - 1, 3)`` arrays of ``(px, sz, ct)``, best first, zeros
past the side's last level, as :func:`hw.bbo_record.dtype` lays them out) and ``depth_only``:
1 when the best bid and the best ask are those of the locate's previous state, i.e. a depth-1
trace (``bbo_trace``) has no row for that message. The rows with ``depth_only == 0`` are, row
for row, ``bbo_trace``'s (tested), as a ``depth_n`` build's records without
:data:`hw.bbo_record.FLAG_DEPTH_ONLY` are those of a ``depth_n = 1`` build.

A message touches one side of one locate (``U`` keeps the side and locate of the order it
replaces), so only that side's top ``n`` is compared before and after; sizes are the book's
exact share totals (the card's u32 fields saturate, the model's do not).

CSV: :data:`depth_columns` gives the column order of ``python -m host bbo --depth N`` (the
``bbo`` columns, then ``bid2_px, bid2_sz, bid2_ct, ... bidN_ct``, ``ask2_px ... askN_ct``,
``depth_only``); :func:`write_depth_csv` writes rows of any dtype that has these fields.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import chain

import numpy as np

from host.feed.book import BBO_COLUMNS, BBO_DTYPE, L3Book, _indexed, iter_indexed

__all__ = ["DepthBook", "MAX_DEPTH", "depth_dtype", "depth_columns", "depth_trace", "depth_table",
           "depth_csv_bytes", "write_depth_csv"]

MAX_DEPTH = 16
"""Largest ``n`` (``hw.bbo_record.MAX_DEPTH_N``: the record format is defined up to 16)."""

_BOOK_TYPES = frozenset("AFECXDU")


def _check_n(n) -> int:
    if not isinstance(n, int | np.integer) or isinstance(n, bool):
        raise TypeError(f"n must be an int, not {n!r}")
    if not 1 <= n <= MAX_DEPTH:
        raise ValueError(f"n must be in 1..{MAX_DEPTH}, not {n}")
    return int(n)


def depth_dtype(n: int) -> np.dtype:
    """Row dtype of a depth-``n`` trace: :data:`BBO_DTYPE`'s fields, the levels, ``depth_only``.

    ``bid_levels`` / ``ask_levels`` are ``(n - 1, 3)`` u8 arrays (``n`` = 1: ``(0, 3)``) of
    ``(px, sz, ct)`` for levels 2..n (u8: exact share totals, as ``BBO_DTYPE``'s sizes).
    """
    d = _check_n(n) - 1
    return np.dtype(
        [(name, BBO_DTYPE.fields[name][0]) for name in BBO_COLUMNS]
        + [("bid_levels", "<u8", (d, 3)), ("ask_levels", "<u8", (d, 3)), ("depth_only", "u1")],
        align=True,
    )


def depth_columns(n: int) -> tuple[str, ...]:
    """CSV columns of a depth-``n`` trace (``n`` = 1: the ``bbo`` columns + ``depth_only``)."""
    n = _check_n(n)
    lv = [f"{side}{k}_{f}" for side in ("bid", "ask") for k in range(2, n + 1)
          for f in ("px", "sz", "ct")]
    return (*BBO_COLUMNS, *lv, "depth_only")


def _top(side, n: int) -> list:
    """Best ``n`` levels of a :class:`host.feed.book._Side` as ``[px, sz, ct]`` lists (copies).

    Slices from the best end instead of reversing the whole price list (``_Side.depth``
    reverses every level of the side: thousands in a realistic book).
    """
    if side is None:
        return []
    prices = side.prices
    lv = side.levels
    if side.is_bid:
        best = prices[-1 : -n - 1 : -1]
    else:
        best = prices[:n]
    return [(p, lv[p][0], lv[p][1]) for p in best]


def _level(side, p: int, n: int):
    """``(rank, size, count)`` of the level at price ``p`` if it would be in the top ``n``
    (``rank`` = better prices on its side, whether or not ``p`` has a level: ``size`` and
    ``count`` are -1 when it has none), else None (also for ``p`` < 0: no price)."""
    if p < 0:
        return None
    if side is None:
        return (0, -1, -1)
    pr = side.prices
    rank = len(pr) - bisect_right(pr, p) if side.is_bid else bisect_left(pr, p)
    if rank >= n:
        return None
    lv = side.levels.get(p)
    return (rank, -1, -1) if lv is None else (rank, lv[0], lv[1])


def _at_top(b, a) -> bool:
    return (b is not None and b[0] == 0) or (a is not None and a[0] == 0)


def depth_trace(messages_or_buf, locates: Iterable[int] | None = None, n: int = 5, *,
                book: L3Book | None = None) -> np.ndarray:
    """Top-``n`` depth trace of a whole input with the pure-Python book.

    Parameters
    ----------
    messages_or_buf : bytes-like or iterable
        A buffer in NASDAQ file framing, or an iterable of decoded messages, or of
        ``(msg_index, message)`` pairs (as :func:`host.feed.book.bbo_trace`).
    locates : iterable of int, optional
        Only emit rows for these locates (every order is still tracked).
    n : int
        Levels per side, 1..:data:`MAX_DEPTH` (1: the rows of ``bbo_trace``, ``depth_only``
        always 0).
    book : L3Book, optional
        Book to drive; a fresh one if None.

    Returns
    -------
    numpy.ndarray
        :func:`depth_dtype` ``(n)`` rows, in message order.
    """
    n = _check_n(n)
    if book is None:
        book = L3Book(locates)
    elif locates is not None:
        book.locates = frozenset(int(x) for x in locates)
    if isinstance(messages_or_buf, bytes | bytearray | memoryview | np.ndarray):
        it = iter_indexed(messages_or_buf)
    else:
        it = _indexed(messages_or_buf)
    sides = book._sides
    orders = book.orders
    want = book.locates
    apply_ = book._apply
    rows: list[tuple] = []
    for idx, msg in it:
        t = msg.message_type
        if t not in _BOOK_TYPES:
            apply_(msg)
            book.last_locate = -1
            continue
        # the (locate, side) the message can touch: the add's, or the stored order's, and the
        # prices it changes (the order's own, the replacement's)
        if t == "A" or t == "F":
            key = (msg.stock_locate, msg.buy_sell_indicator)
            p_old, p_new = -1, msg.price
        else:
            o = orders.get(msg.original_order_reference_number if t == "U"
                           else msg.order_reference_number)
            key = None if o is None else (o[0], o[1])
            p_old, p_new = (-1, -1) if o is None else (o[2], msg.price if t == "U" else -1)
        if key is None or (want is not None and key[0] not in want):
            book.last_locate = apply_(msg)
            continue
        side = sides.get(key)
        # only the levels at the message's prices change: the top n changed iff one of them
        # changed (size, count or existence) and is in the top n before or after
        if p_new == p_old:
            p_new = -1
        b_old = _level(side, p_old, n)
        b_new = _level(side, p_new, n)
        if b_old is None and b_new is None:  # both at or below level n + 1: no effect
            book.last_locate = apply_(msg)
            continue
        touched = apply_(msg)
        book.last_locate = touched
        if touched < 0:
            continue
        side = sides.get(key)
        a_old = _level(side, p_old, n)
        a_new = _level(side, p_new, n)
        if a_old == b_old and a_new == b_new:
            continue
        # the best level moved iff a changed level is (or was) at rank 0
        best_moved = (a_old != b_old and _at_top(b_old, a_old)) or \
            (a_new != b_new and _at_top(b_new, a_new))
        loc = key[0]
        mine = _top(side, n)
        other = _top(sides.get((loc, "S" if key[1] == "B" else "B")), n)
        bid, ask = (mine, other) if key[1] == "B" else (other, mine)
        rows.append((idx, msg.timestamp, loc, bid, ask, not best_moved))
    return _rows_to_array(rows, n)


def _rows_to_array(rows: list[tuple], n: int) -> np.ndarray:
    """Pack ``(idx, ts, loc, bid_levels, ask_levels, depth_only)`` tuples into the dtype.

    The level lists are padded with zero levels to ``n`` and converted in one numpy call per
    column (building ``np.void`` rows one by one costs more than the book itself).
    """
    out = np.zeros(len(rows), depth_dtype(n))
    if not rows:
        return out
    pad = (0, 0, 0) * n
    m = len(rows)
    out["msg_index"] = [r[0] for r in rows]
    out["ts_event"] = [r[1] for r in rows]
    out["locate"] = [r[2] for r in rows]
    out["depth_only"] = [r[5] for r in rows]
    for k, pre in ((3, "bid"), (4, "ask")):
        flat = chain.from_iterable((*chain.from_iterable(r[k]), *pad)[:3 * n] for r in rows)
        lv = np.fromiter(flat, np.uint64, count=3 * n * m).reshape(m, n, 3)
        out[f"{pre}_px"] = lv[:, 0, 0]
        out[f"{pre}_sz"] = lv[:, 0, 1]
        out[f"{pre}_ct"] = lv[:, 0, 2]
        out[f"{pre}_levels"] = lv[:, 1:, :]
    return out


def depth_table(trace: np.ndarray) -> np.ndarray:
    """``(rows, columns)`` int64 table of a trace in :func:`depth_columns` order.

    ``trace`` is a :func:`depth_dtype` array, or any array with the same field names (the
    card's rows); ``n`` comes from the shape of ``bid_levels``.
    """
    d = trace.dtype["bid_levels"].shape[0] if trace.dtype.names and \
        "bid_levels" in trace.dtype.names else 0
    cols = [trace[c].astype(np.int64)[:, None] for c in BBO_COLUMNS]
    for pre in ("bid", "ask"):
        if d:
            cols.append(trace[f"{pre}_levels"].astype(np.int64).reshape(len(trace), 3 * d))
    cols.append(trace["depth_only"].astype(np.int64)[:, None])
    return np.hstack(cols) if len(trace) else np.zeros((0, len(BBO_COLUMNS) + 6 * d + 1),
                                                       np.int64)


def depth_csv_bytes(trace: np.ndarray) -> bytes:
    """CSV lines (no header) of a trace, :func:`depth_columns` order, integers."""
    if len(trace) == 0:
        return b""
    from host.feed.fastbook import bbo_csv_bytes

    # the BBO columns, then the levels and depth_only as bbo_csv_bytes' extra columns (its
    # C formatter: a Python join per row costs as much as the book)
    table = depth_table(trace)
    nb = len(BBO_COLUMNS)
    extra = {k: table[:, nb + k] for k in range(table.shape[1] - nb)}
    return bbo_csv_bytes(trace, extra=extra)


def write_depth_csv(fh, trace: np.ndarray, header: bool = True) -> None:
    """Write a depth trace to a binary file object as CSV (header: :func:`depth_columns`)."""
    n = 1 + (trace.dtype["bid_levels"].shape[0] if "bid_levels" in trace.dtype.names else 0)
    if header:
        fh.write((",".join(depth_columns(n)) + "\n").encode())
    fh.write(depth_csv_bytes(trace))


class DepthBook:
    """A depth trace fed chunk by chunk (``python -m host bbo --depth N``, the publisher).

    Parameters
    ----------
    locates : iterable of int, optional
        Reported locates (None: every locate).
    n : int
        Levels per side.

    Notes
    -----
    :meth:`feed_bytes` takes whole-message chunks of NASDAQ framing; ``base_index`` is the
    ``msg_index`` of the chunk's first message, so the rows equal :func:`depth_trace` of the
    concatenated input (tested).
    """

    def __init__(self, locates: Iterable[int] | None = None, n: int = 5) -> None:
        self.n = _check_n(n)
        self.book = L3Book(locates)

    @property
    def anomalies(self) -> dict[str, int]:
        """The book's anomaly counters (:data:`host.feed.book.ANOMALY_KINDS`)."""
        return self.book.anomalies

    def set_locates(self, locates: Iterable[int] | None) -> None:
        """Report these locates from now on."""
        self.book.locates = None if locates is None else frozenset(int(x) for x in locates)

    def feed_bytes(self, buf, base_index: int = 0, copy: bool = True) -> np.ndarray:
        """Rows of the messages of ``buf`` (``copy`` is accepted for ``FastBook``'s signature:
        the rows are always a new array)."""
        pairs = ((base_index + i, m) for i, m in iter_indexed(buf))
        return depth_trace(pairs, n=self.n, book=self.book)
