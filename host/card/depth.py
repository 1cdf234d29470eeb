"""What the card's deep book shows, flags included: a model of its price-ladder rules.

The card's book (:mod:`hw.book`, :mod:`hw.ladder`) holds every level within ``levels`` ticks
of each side's touch; further levels are *far*: the best of them exactly (the far cache),
the others counted, not held; a record is *not valid* while a counted far level would show in
its top ``depth_n`` (``far_visible``) or after a price
off the slot's tick grid, a size overflow or a missing level (sticky until the slot is
cleared). This module applies the same rules (docs/ladder.md, "Window and far levels") to
the level operations of the reference book (:class:`host.feed.book.L3Book`), so the host can
say which rows the card must flag not valid and which rows it emits because the validity
changed (:func:`expected_card_trace`). ``replay --verify`` uses it to check the card's
not-valid rows (:func:`host.card.report.verify`).

It is a dict model (no bitmap, cache or refill: those change the cycles, not the result) in
pure Python: about 10-20 s per million messages.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import numpy as np

from hw.ladder import TICKS

__all__ = ["SideWindow", "expected_card_trace", "level_ops", "touched_orders"]

_MASK32 = (1 << 32) - 1


class SideWindow:
    """One (slot, side) under the ladder's window rules (keys: smaller = better price)."""

    __slots__ = ("lo", "rep", "keys", "fc", "far_orders", "far_lo")

    def __init__(self):
        self.lo = 0
        self.rep: dict[int, list[int]] = {}  # key -> [size, count]
        self.keys: list[int] = []  # sorted keys of ``rep``
        self.fc: list[int] | None = None  # the far cache: [key, size, count] of the best far level
        self.far_orders = 0
        self.far_lo = 0

    def _drop(self, k):
        del self.rep[k]
        del self.keys[bisect.bisect_left(self.keys, k)]

    def _count_far(self, k, ct):
        self.far_lo = k if self.far_orders == 0 else min(self.far_lo, k)
        self.far_orders += ct

    def _new_far_level(self, k, sz, ct):
        # better than every far level: the far cache's; its level before joins the counts
        if self.fc is not None:
            self._count_far(self.fc[0], self.fc[2])
        self.fc = [k, sz, ct]

    def add(self, k: int, q: int, depth: int, sz_lim: int) -> bool:
        """An order of ``q`` shares at key ``k``; False on a size overflow."""
        fc = self.fc
        if (fc is not None and k >= fc[0]) or (self.far_orders and k >= self.far_lo):
            if fc is not None and k == fc[0]:
                if fc[1] + q >= sz_lim:
                    return False
                fc[1] += q
                fc[2] += 1
            else:
                self._count_far(k, 1)
            return True
        if not self.rep:
            self.lo = k
        elif k < self.lo:
            i = bisect.bisect_left(self.keys, k + depth)
            for kk in self.keys[i:]:
                sz, ct = self.rep.pop(kk)
                if self.fc is None or kk < self.fc[0]:
                    self._new_far_level(kk, sz, ct)
                else:
                    self._count_far(kk, ct)
            del self.keys[i:]
            self.lo = k
        elif k >= self.lo + depth:
            if k < self.keys[0] + depth:
                self.lo = k - depth + 1
            else:
                self._new_far_level(k, q, 1)
                return True
        lv = self.rep.get(k)
        if lv is None:
            if q >= sz_lim:
                return False
            self.rep[k] = [q, 1]
            bisect.insort(self.keys, k)
        elif lv[0] + q >= sz_lim:
            return False
        else:
            lv[0] += q
            lv[1] += 1
        return True

    def reduce(self, k: int, q: int, remove: int) -> bool:
        """``q`` shares leave key ``k`` (``remove``: the order leaves); False when missing.
        A side left without represented levels then moves its window onto the far cache's
        level (the card's promotion)."""
        ok = self._reduce(k, q, remove)
        if not self.rep and self.fc is not None and self.fc[1] < (1 << 32):
            self.lo = self.fc[0]
            self.rep[self.fc[0]] = [self.fc[1], self.fc[2]]
            self.keys = [self.fc[0]]
            self.fc = None
        return ok

    def _reduce(self, k: int, q: int, remove: int) -> bool:
        fc = self.fc
        if fc is not None and k == fc[0]:
            if fc[1] < q or (remove and fc[2] == 0):
                return False
            fc[1] -= q
            fc[2] -= remove
            if fc[2] == 0:
                self.fc = None
            return True
        if self.far_orders and k >= self.far_lo:
            self.far_orders -= remove
            return True
        lv = self.rep.get(k)
        if lv is None or lv[0] < q or (remove and lv[1] == 0):
            return False
        lv[0] -= q
        lv[1] -= remove
        if lv[1] == 0:
            self._drop(k)
        return True


def _key(px: int, bid: bool, tick: int) -> tuple[int, bool]:
    idx, rem = divmod(px, tick)
    return ((~idx) & _MASK32 if bid else idx), rem == 0



def touched_orders(book, m, locs) -> tuple[dict, set]:
    """Before applying ITCH message ``m`` to ``book`` (:class:`host.feed.book.L3Book`): the
    orders it names with their state (``{ref: [locate, side, price, shares] or None}``) and
    the locates of ``locs`` whose book it may change."""
    if m.message_type == "U":
        refs = [m.original_order_reference_number, m.new_order_reference_number]
    else:
        refs = [m.order_reference_number]
    pre = {r: list(book.orders[r]) if r in book.orders else None for r in refs}
    touched = {book.orders[r][0] for r in refs if r in book.orders}
    if m.message_type in "AF":
        touched.add(m.stock_locate)
    return pre, touched & set(locs)


def level_ops(book, pre: dict) -> list[tuple]:
    """After the message was applied: the level ops it made, read off its orders before
    (``pre``, from :func:`touched_orders`) and after, as the card's order table emits them:
    ``(locate, side, price, shares, remove, is_add)``; ``remove`` = the order left its level."""
    ops = []
    for r, a in pre.items():
        b = book.orders.get(r)
        if a is not None and (b is None or b[3] != a[3] or b[2] != a[2]):
            gone = b is None or b[2] != a[2]
            ops.append((a[0], a[1], a[2], a[3] - (0 if gone else b[3]), int(gone), False))
        if b is not None and (a is None or b[2] != a[2]):
            ops.append((b[0], b[1], b[2], b[3], 0, True))
    return ops

def expected_card_trace(
    itch,
    locates: Iterable[int],
    ticks: dict[int, int],
    *,
    levels: int,
    depth_n: int,
    size_width: int = 48,
    restarts: Iterable[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """The rows the card emits for ``itch`` and their ``valid`` flag.

    Parameters
    ----------
    itch : bytes
        The messages the card processed (NASDAQ framing).
    locates : iterable of int
        Subscribed locates.
    ticks : dict
        ``{locate: tick code}`` as subscribed (:func:`host.card.ticks.tick_codes`).
    levels, depth_n : int
        The card's ladder window (``ID_LEVELS``) and levels per record (``ID_DEPTH_N``).
    size_width : int
        Bits of a level's aggregate size in the card.
    restarts : iterable of int
        Message indices before which every book was cleared.

    Returns
    -------
    trace : numpy.ndarray
        :data:`host.feed.book.BBO_DTYPE` rows: one per message that changes a subscribed
        symbol's BBO *as the card holds it* or its validity.
    valid : numpy.ndarray
        ``uint8``, the card's ``valid`` flag of every row.
    """
    from host.feed.book import BBO_DTYPE, L3Book
    from host.feed.itch import iter_messages

    locs = set(int(x) for x in locates)
    cuts = set(int(r) for r in restarts)
    sz_lim = 1 << size_width
    book = L3Book(locs)
    sides: dict[tuple[int, bool], SideWindow] = {}
    bad: set[int] = set()
    rows: list[tuple] = []
    valid_col: list[int] = []

    def view(loc):
        out = []
        far = False
        tick = TICKS[ticks.get(loc, 1)]
        for bid in (True, False):
            s = sides.get((loc, bid))
            if s is None or (not s.keys and s.fc is None):
                out.append((0, 0, 0))
                far |= s is not None and s.far_orders > 0
                continue
            k, lv = (s.keys[0], s.rep[s.keys[0]]) if s.keys else (s.fc[0], s.fc[1:])
            idx = ((~k) & _MASK32) if bid else k
            out.append((idx * tick, *lv))
            far |= len(s.keys) + (s.fc is not None) < depth_n and s.far_orders > 0
        return out[0], out[1], int(not far and loc not in bad)

    for i, m in enumerate(iter_messages(itch)):
        if i in cuts:
            book = L3Book(locs)
            sides.clear()
            bad.clear()
        t = m.message_type
        if t not in "AFECXDU" or m.stock_locate not in locs:
            book.apply(m)
            continue
        pre, touched = touched_orders(book, m, locs)
        before = {x: view(x) for x in touched}
        book.apply(m)
        for loc, side, px, q, rem, is_add in level_ops(book, pre):
            bid = side == "B"
            k, on_grid = _key(px, bid, TICKS[ticks.get(loc, 1)])
            if not on_grid:
                bad.add(loc)
                continue
            s = sides.setdefault((loc, bid), SideWindow())
            ok = s.add(k, q, levels, sz_lim) if is_add else s.reduce(k, q, rem)
            if not ok:
                bad.add(loc)
        for x in sorted(touched):
            after = view(x)
            if after != before[x]:
                bb, aa, v = after
                rows.append((i, m.timestamp, x, *bb, *aa))
                valid_col.append(v)
    out = np.zeros(len(rows), BBO_DTYPE)
    if rows:
        cols = list(zip(*rows, strict=True))
        for c, vals in zip(BBO_DTYPE.names, cols, strict=True):
            out[c] = vals
    return out, np.asarray(valid_col, np.uint8)
