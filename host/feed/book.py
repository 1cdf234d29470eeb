"""Readable pure-Python L3 order book for ITCH 5.0 (the reference the fast path is checked against).

One :class:`L3Book` holds every live order of the day, keyed by its order reference number
(references are unique across the whole day, not per symbol), and, per stock locate and side,
the aggregated price levels (total shares and order count). After every message the best bid
and offer (BBO) and the top-N depth of any locate can be read.

Book semantics (TotalView-ITCH 5.0, section 1.3 and 1.4)
---------------------------------------------------------
``A``/``F``
    Add the order (locate, side, price, shares) under its reference.
``E``/``C``
    Reduce the order by the executed shares; remove it when none remain. The execution price
    of ``C`` does not move the order: the order stays (or leaves) at its own price level.
``X``
    Reduce the order by the cancelled shares; remove it when none remain.
``D``
    Remove the order.
``U``
    Remove the original order; add a new order under the new reference, on the original's locate
    and side, with the message's price and shares. The new order has lost its time priority
    (this book only aggregates, so priority is not observable here).
``P``/``Q``/``B``
    Trades against non-displayed interest, crosses and broken trades: the book is unchanged.
``R``/``H``/``S``
    Kept in :attr:`L3Book.symbols`, :attr:`L3Book.trading_state`,
    :attr:`L3Book.system_events`.

For ``E``/``C``/``X``/``D``/``U`` the locate is taken from the stored order; a message whose
own locate differs is still applied to the stored order and counted as ``locate_mismatch``.

Anomaly rules (:data:`ANOMALY_KINDS`)
-------------------------------------
The state always stays consistent (every level equals the sum of its live orders):

``unknown_ref``
    ``E``/``C``/``X``/``D`` for a reference that is not live: the message is ignored.
``duplicate_add``
    ``A``/``F`` with a reference that is already live: the add is ignored (first writer wins).
``oversize_exec``
    ``E``/``C`` executing more shares than remain: the order is removed (as a full execution).
``oversize_cancel``
    ``X`` cancelling more shares than remain: the order is removed.
``replace_unknown``
    ``U`` whose original reference is not live: ignored (no side is known, nothing is added).
``replace_duplicate``
    ``U`` whose new reference is already live (this includes new == original): the original is
    removed and the add part is dropped, the live order under the new reference is untouched.
``locate_mismatch``
    ``E``/``C``/``X``/``D``/``U`` whose locate differs from the stored order's: applied to the
    stored order's locate.
``bad_side``
    ``A``/``F`` whose buy/sell indicator is neither ``B`` nor ``S``: ignored.

Zero-share adds are legal here: the order is stored and counts at its level (size 0, count 1);
any later ``E``/``X`` of it leaves 0 shares and removes it.

BBO trace
---------
:func:`bbo_trace` emits one row (:data:`BBO_DTYPE`) each time a message changes the BBO of the
order's locate: bid or ask price, total size at the best price or number of orders there. An
empty side is ``0, 0, 0``. ``msg_index`` is the zero-based index of the message among all
length-prefixed messages of the input (unknown types and bad lengths are skipped but counted
in the index, exactly like ``host.feed.bulk.parse_records``); for an iterable of decoded messages it
is the position in that iterable. ``ts_event`` is the message timestamp (ns since midnight).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from host.feed.itch import iter_messages

__all__ = [
    "ANOMALY_KINDS",
    "BBO_COLUMNS",
    "BBO_DTYPE",
    "Bbo",
    "L3Book",
    "bbo_trace",
    "iter_indexed",
    "write_bbo_csv",
]

ANOMALY_KINDS: tuple[str, ...] = (
    "unknown_ref",
    "duplicate_add",
    "oversize_exec",
    "oversize_cancel",
    "replace_unknown",
    "replace_duplicate",
    "locate_mismatch",
    "bad_side",
)
"""Every anomaly counter, in the order the fast path reports them."""

BBO_DTYPE = np.dtype(
    [
        ("msg_index", "<i8"),
        ("ts_event", "<u8"),
        ("locate", "<u2"),
        ("bid_px", "<u4"),
        ("bid_sz", "<u8"),
        ("bid_ct", "<u4"),
        ("ask_px", "<u4"),
        ("ask_sz", "<u8"),
        ("ask_ct", "<u4"),
    ],
    align=True,
)
"""One BBO trace row; prices are integer Price(4), sizes are share totals (64-bit)."""

BBO_COLUMNS: tuple[str, ...] = BBO_DTYPE.names

MAX_ANOMALY_LOG = 1000
"""How many anomalies :class:`L3Book` keeps in :attr:`L3Book.anomaly_log` (counters are exact)."""


class Bbo(NamedTuple):
    """Best bid and offer of one locate; an empty side is ``0, 0, 0``."""

    bid_px: int
    bid_sz: int
    bid_ct: int
    ask_px: int
    ask_sz: int
    ask_ct: int


EMPTY_BBO = Bbo(0, 0, 0, 0, 0, 0)


class _Side:
    """Price levels of one (locate, side): sorted prices plus price -> [size, count]."""

    __slots__ = ("prices", "levels", "is_bid")

    def __init__(self, is_bid: bool):
        self.prices: list[int] = []  # ascending
        self.levels: dict[int, list[int]] = {}
        self.is_bid = is_bid

    def add(self, price: int, shares: int) -> None:
        lv = self.levels.get(price)
        if lv is None:
            self.levels[price] = [shares, 1]
            bisect.insort(self.prices, price)
        else:
            lv[0] += shares
            lv[1] += 1

    def reduce(self, price: int, shares: int, remove: bool) -> None:
        lv = self.levels[price]
        lv[0] -= shares
        if remove:
            lv[1] -= 1
            if lv[1] == 0:
                del self.levels[price]
                del self.prices[bisect.bisect_left(self.prices, price)]

    def top(self) -> tuple[int, int, int]:
        if not self.prices:
            return (0, 0, 0)
        px = self.prices[-1] if self.is_bid else self.prices[0]
        sz, ct = self.levels[px]
        return (px, sz, ct)

    def depth(self, n: int) -> list[tuple[int, int, int]]:
        # slice from the best end: reversing the whole list costs every level of the side
        prices = self.prices[: -n - 1 : -1] if self.is_bid else self.prices[:n]
        return [(p, *self.levels[p]) for p in prices]


class L3Book:
    """Order-by-order book of every stock locate, driven by decoded ITCH messages.

    Parameters
    ----------
    locates : iterable of int, optional
        Only these locates are *reported* (:meth:`apply` returns False for others). Every order
        is still tracked so that anomaly counts do not depend on the filter.

    Attributes
    ----------
    orders : dict
        order reference -> ``[locate, side, price, shares]`` (side is ``'B'`` or ``'S'``).
    anomalies : dict
        Counter per kind of :data:`ANOMALY_KINDS`.
    anomaly_log : list
        ``(kind, message)`` of the first :data:`MAX_ANOMALY_LOG` anomalies.
    symbols : dict
        locate -> stock symbol, from ``R`` messages.
    trading_state : dict
        locate -> trading state character (``H``, ``P``, ``Q``, ``T``) from ``H`` messages.
    system_events : list
        ``(timestamp, event_code)`` of every ``S`` message.
    last_locate : int
        Locate whose book the last :meth:`apply` touched (-1 when none).
    """

    def __init__(self, locates: Iterable[int] | None = None):
        self.locates = None if locates is None else frozenset(int(x) for x in locates)
        self.orders: dict[int, list] = {}
        self._sides: dict[tuple[int, str], _Side] = {}
        self.anomalies: dict[str, int] = dict.fromkeys(ANOMALY_KINDS, 0)
        self.anomaly_log: list[tuple[str, Any]] = []
        self.symbols: dict[int, str] = {}
        self.trading_state: dict[int, str] = {}
        self.system_events: list[tuple[int, str]] = []
        self.last_locate = -1

    # -- queries ---------------------------------------------------------------------------------

    def _side(self, locate: int, side: str) -> _Side:
        s = self._sides.get((locate, side))
        if s is None:
            s = self._sides[(locate, side)] = _Side(side == "B")
        return s

    def bbo(self, locate: int) -> Bbo:
        """Best bid and offer of ``locate``."""
        b = self._sides.get((locate, "B"))
        a = self._sides.get((locate, "S"))
        bt = b.top() if b else (0, 0, 0)
        at = a.top() if a else (0, 0, 0)
        return Bbo(*bt, *at)

    def depth(self, locate: int, side: str, n: int) -> list[tuple[int, int, int]]:
        """Best ``n`` levels ``(price, size, count)`` of ``side`` (``'B'``/``'S'``), best first."""
        if side not in ("B", "S"):
            raise ValueError(f"side must be 'B' or 'S', not {side!r}")
        s = self._sides.get((locate, side))
        return s.depth(n) if s else []

    def levels(self, locate: int, side: str) -> dict[int, tuple[int, int]]:
        """Every level of ``side`` as ``{price: (size, count)}``."""
        s = self._sides.get((locate, side))
        return {p: tuple(v) for p, v in s.levels.items()} if s else {}

    def book_locates(self) -> list[int]:
        """Locates that have at least one live order."""
        return sorted({loc for (loc, _), s in self._sides.items() if s.prices})

    # -- updates ---------------------------------------------------------------------------------

    def _anomaly(self, kind: str, msg) -> None:
        self.anomalies[kind] += 1
        if len(self.anomaly_log) < MAX_ANOMALY_LOG:
            self.anomaly_log.append((kind, msg))

    def _live(self, ref: int, msg) -> list | None:
        o = self.orders.get(ref)
        if o is not None and o[0] != msg.stock_locate:
            self._anomaly("locate_mismatch", msg)
        return o

    def _remove(self, ref: int, o: list) -> None:
        del self.orders[ref]
        self._side(o[0], o[1]).reduce(o[2], o[3], True)

    def _reduce(self, ref: int, o: list, shares: int, oversize: str, msg) -> None:
        if shares > o[3]:
            self._anomaly(oversize, msg)
            self._remove(ref, o)
        elif shares == o[3]:
            self._remove(ref, o)
        else:
            self._side(o[0], o[1]).reduce(o[2], shares, False)
            o[3] -= shares

    def _apply(self, msg) -> int:
        """Apply ``msg``; return the locate whose book it touched, or -1."""
        t = msg.message_type
        if t == "A" or t == "F":
            side = msg.buy_sell_indicator
            if side != "B" and side != "S":
                self._anomaly("bad_side", msg)
                return -1
            ref = msg.order_reference_number
            if ref in self.orders:
                self._anomaly("duplicate_add", msg)
                return -1
            loc = msg.stock_locate
            self.orders[ref] = [loc, side, msg.price, msg.shares]
            self._side(loc, side).add(msg.price, msg.shares)
            return loc
        if t in "ECXD":
            ref = msg.order_reference_number
            o = self._live(ref, msg)
            if o is None:
                self._anomaly("unknown_ref", msg)
                return -1
            if t == "D":
                self._remove(ref, o)
            elif t == "X":
                self._reduce(ref, o, msg.cancelled_shares, "oversize_cancel", msg)
            else:
                self._reduce(ref, o, msg.executed_shares, "oversize_exec", msg)
            return o[0]
        if t == "U":
            ref = msg.original_order_reference_number
            o = self._live(ref, msg)
            if o is None:
                self._anomaly("replace_unknown", msg)
                return -1
            new = msg.new_order_reference_number
            dup = new in self.orders
            self._remove(ref, o)
            if dup:
                self._anomaly("replace_duplicate", msg)
            else:
                self.orders[new] = [o[0], o[1], msg.price, msg.shares]
                self._side(o[0], o[1]).add(msg.price, msg.shares)
            return o[0]
        if t == "R":
            self.symbols[msg.stock_locate] = msg.stock
        elif t == "H":
            self.trading_state[msg.stock_locate] = msg.trading_state
        elif t == "S":
            self.system_events.append((msg.timestamp, msg.event_code))
        return -1

    def apply(self, msg) -> bool:
        """Apply one decoded message (:mod:`host.feed.itch` tuple).

        Returns
        -------
        bool
            True when the message changed the BBO of the locate it touched (the stored order's
            locate for ``E``/``C``/``X``/``D``/``U``) and that locate is reported.
        """
        t = msg.message_type
        if t not in "AFECXDU":
            self._apply(msg)
            self.last_locate = -1
            return False
        loc = self._locate_of(msg)
        before = self.bbo(loc) if loc >= 0 else None
        touched = self._apply(msg)
        self.last_locate = touched
        if touched < 0 or (self.locates is not None and touched not in self.locates):
            return False
        if touched != loc:  # defensive; cannot happen with the rules above
            return True
        return self.bbo(touched) != before

    def _locate_of(self, msg) -> int:
        t = msg.message_type
        if t == "A" or t == "F":
            return msg.stock_locate
        ref = msg.original_order_reference_number if t == "U" else msg.order_reference_number
        o = self.orders.get(ref)
        return -1 if o is None else o[0]


def iter_indexed(buf, stats: dict | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(msg_index, message)`` for a buffer in NASDAQ file framing.

    Every length-prefixed message takes one index, including unknown types
    (``stats['unknown_type']``) and too-short lengths (``stats['bad_length']``), which are not
    yielded. A zero length or a message cut off by the end of the buffer ends the walk
    (``stats['zero_length']``/``stats['truncated']``), as in :func:`host.feed.itch.iter_messages`.
    """
    return iter_messages(buf, stats=stats, indexed=True)


def bbo_trace(
    messages_or_buf, locates: Iterable[int] | None = None, *, book: L3Book | None = None
) -> np.ndarray:
    """BBO trace of a whole input with the pure-Python book.

    Parameters
    ----------
    messages_or_buf : bytes-like or iterable
        A buffer in NASDAQ file framing, or an iterable of decoded messages, or of
        ``(msg_index, message)`` pairs.
    locates : iterable of int, optional
        Only emit rows for these locates (all orders are still tracked).
    book : L3Book, optional
        Book to drive (and to read anomalies, symbols... from afterwards); a fresh one if None.

    Returns
    -------
    numpy.ndarray
        :data:`BBO_DTYPE` rows, in message order.
    """
    if book is None:
        book = L3Book(locates)
    elif locates is not None:
        book.locates = frozenset(int(x) for x in locates)
    if isinstance(messages_or_buf, bytes | bytearray | memoryview | np.ndarray):
        it: Iterable = iter_indexed(messages_or_buf)
    else:
        it = _indexed(messages_or_buf)
    rows = []
    for idx, msg in it:
        if book.apply(msg):
            loc = book.last_locate
            rows.append((idx, msg.timestamp, loc, *book.bbo(loc)))
    return np.array(rows, dtype=BBO_DTYPE)


def _indexed(messages) -> Iterator[tuple[int, Any]]:
    for i, m in enumerate(messages):
        if isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], int | np.integer):
            yield int(m[0]), m[1]
        else:
            yield i, m


def write_bbo_csv(fh, trace: np.ndarray, header: bool = True) -> None:
    """Write BBO rows to a text file object as CSV (integers, :data:`BBO_COLUMNS` order)."""
    if header:
        fh.write(",".join(BBO_COLUMNS) + "\n")
    if len(trace) == 0:
        return
    table = np.column_stack([trace[c].astype(np.int64) for c in BBO_COLUMNS])
    np.savetxt(fh, table, fmt="%d", delimiter=",")
