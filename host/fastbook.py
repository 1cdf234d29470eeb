"""Fast numba L3 book over ``host.bulk`` record arrays; same output as :mod:`host.book`.

The book semantics, anomaly rules and BBO-trace definition are those of :mod:`host.book`
(one row each time a message changes the BBO of the order's locate). This module only changes
the data structures:

Orders
    An open-addressing hash table (linear probing, backward-shift deletion, so no tombstones)
    in numpy arrays: ``okey[cap]`` (uint64 reference) and ``odat[cap, 3]`` (``1 + 2*locate +
    side``, 0 = empty slot; price; shares). The table is kept at most half full and is
    rehashed to twice its size when it would pass that.
Price levels
    One sorted run per (locate, side) book inside a shared pool (``lkey``, ``lsz``, ``lct``),
    ordered so that the best level is always the *last* element: the key is the price for bids
    and ``2**32 - 1 - price`` for asks, ascending. Orders arrive near the touch, so finding,
    inserting or removing a level scans and shifts only the few levels above it, and the BBO is
    read in O(1). A book that outgrows its run moves to the end of the pool with twice the room;
    the pool is compacted and grown from Python when it is full.

The kernel stops and returns to Python whenever a table must grow *before* it changes anything
for the current message, so a chunked run over a whole file never half-applies a message.
:class:`FastBook` keeps the state between chunks (``feed``), :func:`bbo_trace_records` runs one
array.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numba import njit

from host.book import ANOMALY_KINDS, BBO_DTYPE, Bbo

__all__ = ["FastBook", "bbo_trace_records", "RECORD_FIELDS"]

RECORD_FIELDS = (
    "msg_type",
    "stock_locate",
    "timestamp",
    "order_ref",
    "new_order_ref",
    "side",
    "shares",
    "price",
    "msg_index",
)
"""Record fields the book reads (a ``host.bulk.RECORD_DTYPE`` array has them all)."""

N_LOCATES = 1 << 16
N_BOOKS = 2 * N_LOCATES
INIT_LEVELS = 8
ASK_FLIP = 0xFFFFFFFF
_MUL = np.uint64(0x9E3779B97F4A7C15)

# anomaly indices, in host.book.ANOMALY_KINDS order
_UNKNOWN_REF, _DUP_ADD, _OVER_EXEC, _OVER_CANCEL = 0, 1, 2, 3
_REPL_UNKNOWN, _REPL_DUP, _LOC_MISMATCH, _BAD_SIDE = 4, 5, 6, 7
assert ANOMALY_KINDS[_BAD_SIDE] == "bad_side" and ANOMALY_KINDS[_REPL_DUP] == "replace_duplicate"

# kernel status
_DONE, _GROW_ORDERS, _GROW_POOL = 0, 1, 2


@njit(cache=True)
def _home(r, shift):
    return np.int64((r * _MUL) >> shift)


@njit(cache=True)
def _find(okey, odat, r, shift, mask):
    """Slot of reference ``r``, or ``-(free slot) - 1`` when it is not in the table."""
    j = _home(r, shift)
    while odat[j, 0] != 0:
        if okey[j] == r:
            return j
        j = (j + 1) & mask
    return -j - 1


@njit(cache=True)
def _erase(okey, odat, i, shift, mask):
    """Backward-shift deletion of slot ``i`` (linear probing stays tombstone-free)."""
    j = i
    while True:
        j = (j + 1) & mask
        if odat[j, 0] == 0:
            break
        k = _home(okey[j], shift)
        # keep j where it is when its home lies cyclically in (i, j]
        if i <= j:
            if i < k <= j:
                continue
        elif k <= j or k > i:
            continue
        okey[i] = okey[j]
        odat[i, 0] = odat[j, 0]
        odat[i, 1] = odat[j, 1]
        odat[i, 2] = odat[j, 2]
        i = j
    odat[i, 0] = 0


@njit(cache=True)
def _rehash(okey, odat, new_okey, new_odat, new_shift):
    mask = new_okey.shape[0] - 1
    for i in range(okey.shape[0]):
        if odat[i, 0] != 0:
            j = _home(okey[i], new_shift)
            while new_odat[j, 0] != 0:
                j = (j + 1) & mask
            new_okey[j] = okey[i]
            new_odat[j, 0] = odat[i, 0]
            new_odat[j, 1] = odat[i, 1]
            new_odat[j, 2] = odat[i, 2]


@njit(cache=True)
def _room(b, boff, blen, bcap, lkey, lsz, lct, state):
    """Make sure book ``b`` can take one more level; False when the pool itself is full."""
    if blen[b] < bcap[b]:
        return True
    ncap = max(INIT_LEVELS, 2 * bcap[b])
    used = state[1]
    if used + ncap > lkey.shape[0]:
        return False
    off = boff[b]
    for p in range(blen[b]):
        lkey[used + p] = lkey[off + p]
        lsz[used + p] = lsz[off + p]
        lct[used + p] = lct[off + p]
    boff[b] = used
    bcap[b] = ncap
    state[1] = used + ncap
    return True


@njit(cache=True)
def _level_add(b, k, sh, boff, blen, lkey, lsz, lct):
    off = boff[b]
    n = blen[b]
    p = n - 1
    while p >= 0 and lkey[off + p] > k:
        p -= 1
    if p >= 0 and lkey[off + p] == k:
        lsz[off + p] += sh
        lct[off + p] += 1
        return
    p += 1
    q = n
    while q > p:
        lkey[off + q] = lkey[off + q - 1]
        lsz[off + q] = lsz[off + q - 1]
        lct[off + q] = lct[off + q - 1]
        q -= 1
    lkey[off + p] = k
    lsz[off + p] = sh
    lct[off + p] = 1
    blen[b] = n + 1


@njit(cache=True)
def _level_reduce(b, k, sh, remove, boff, blen, lkey, lsz, lct):
    off = boff[b]
    n = blen[b]
    p = n - 1
    while lkey[off + p] != k:
        p -= 1
    lsz[off + p] -= sh
    if remove:
        lct[off + p] -= 1
        if lct[off + p] == 0:
            for q in range(p, n - 1):
                lkey[off + q] = lkey[off + q + 1]
                lsz[off + q] = lsz[off + q + 1]
                lct[off + q] = lct[off + q + 1]
            blen[b] = n - 1


@njit(cache=True)
def _kernel(mt, loc, ts, ref, nref, side, shares, price, midx, start,
            okey, odat, shift, state, boff, blen, bcap, lkey, lsz, lct, locmask, anom,
            o_idx, o_ts, o_loc, o_bid, o_ask):  # fmt: skip
    """Apply records ``start..`` ; returns ``(status, index to resume at)``.

    ``state`` = [live orders, pool used, rows written].
    """
    n = mt.shape[0]
    mask = okey.shape[0] - 1
    limit = okey.shape[0] // 2
    nout = state[2]
    for i in range(start, n):
        t = mt[i]
        dup = False
        if t == 65 or t == 70:  # A, F
            s = side[i]
            if s == 66:
                sd = 0
            elif s == 83:
                sd = 1
            else:
                anom[_BAD_SIDE] += 1
                continue
            r = ref[i]
            j = _find(okey, odat, r, shift, mask)
            if j >= 0:
                anom[_DUP_ADD] += 1
                continue
            if state[0] + 1 > limit:
                state[2] = nout
                return _GROW_ORDERS, i
            L = np.int64(loc[i])
            b = 2 * L + sd
            if not _room(b, boff, blen, bcap, lkey, lsz, lct, state):
                state[2] = nout
                return _GROW_POOL, i
            px = np.int64(price[i])
            sh = np.int64(shares[i])
        elif t == 69 or t == 67 or t == 88 or t == 68 or t == 85:  # E, C, X, D, U
            r = ref[i]
            j = _find(okey, odat, r, shift, mask)
            if j < 0:
                if t == 85:
                    anom[_REPL_UNKNOWN] += 1
                else:
                    anom[_UNKNOWN_REF] += 1
                continue
            meta = odat[j, 0] - 1
            L = meta >> 1
            sd = meta & 1
            b = 2 * L + sd
            px = odat[j, 1]
            sh = odat[j, 2]
            dup = False
            if t == 85:
                dup = _find(okey, odat, nref[i], shift, mask) >= 0
                if not dup:
                    if state[0] + 1 > limit:
                        state[2] = nout
                        return _GROW_ORDERS, i
                    if not _room(b, boff, blen, bcap, lkey, lsz, lct, state):
                        state[2] = nout
                        return _GROW_POOL, i
            if L != np.int64(loc[i]):
                anom[_LOC_MISMATCH] += 1
        else:
            continue

        # snapshot the top of the touched book
        off = boff[b]
        nb = blen[b]
        if nb > 0:
            k0 = lkey[off + nb - 1]
            s0 = lsz[off + nb - 1]
            c0 = lct[off + nb - 1]
        else:
            k0 = -1
            s0 = 0
            c0 = 0

        if t == 65 or t == 70:
            k = px if sd == 0 else ASK_FLIP - px
            _level_add(b, k, sh, boff, blen, lkey, lsz, lct)
            j = -j - 1
            okey[j] = r
            odat[j, 0] = 1 + 2 * L + sd
            odat[j, 1] = px
            odat[j, 2] = sh
            state[0] += 1
        else:
            k = px if sd == 0 else ASK_FLIP - px
            if t == 68 or t == 85:
                _level_reduce(b, k, sh, True, boff, blen, lkey, lsz, lct)
                _erase(okey, odat, j, shift, mask)
                state[0] -= 1
                if t == 85:
                    if dup:
                        anom[_REPL_DUP] += 1
                    else:
                        jn = _find(okey, odat, nref[i], shift, mask)
                        npx = np.int64(price[i])
                        nsh = np.int64(shares[i])
                        nk = npx if sd == 0 else ASK_FLIP - npx
                        _level_add(b, nk, nsh, boff, blen, lkey, lsz, lct)
                        jn = -jn - 1
                        okey[jn] = nref[i]
                        odat[jn, 0] = 1 + 2 * L + sd
                        odat[jn, 1] = npx
                        odat[jn, 2] = nsh
                        state[0] += 1
            else:
                q = np.int64(shares[i])
                if q >= sh:
                    if q > sh:
                        if t == 88:
                            anom[_OVER_CANCEL] += 1
                        else:
                            anom[_OVER_EXEC] += 1
                    _level_reduce(b, k, sh, True, boff, blen, lkey, lsz, lct)
                    _erase(okey, odat, j, shift, mask)
                    state[0] -= 1
                else:
                    _level_reduce(b, k, q, False, boff, blen, lkey, lsz, lct)
                    odat[j, 2] = sh - q

        off = boff[b]
        nb = blen[b]
        if nb > 0:
            changed = (
                lkey[off + nb - 1] != k0 or lsz[off + nb - 1] != s0 or lct[off + nb - 1] != c0
            )
        else:
            changed = k0 != -1
        if changed and locmask[L]:
            o_idx[nout] = midx[i]
            o_ts[nout] = ts[i]
            o_loc[nout] = L
            bb = 2 * L
            ob = boff[bb]
            nb = blen[bb]
            if nb > 0:
                o_bid[nout, 0] = lkey[ob + nb - 1]
                o_bid[nout, 1] = lsz[ob + nb - 1]
                o_bid[nout, 2] = lct[ob + nb - 1]
            else:
                o_bid[nout, 0] = 0
                o_bid[nout, 1] = 0
                o_bid[nout, 2] = 0
            ob = boff[bb + 1]
            nb = blen[bb + 1]
            if nb > 0:
                o_ask[nout, 0] = ASK_FLIP - lkey[ob + nb - 1]
                o_ask[nout, 1] = lsz[ob + nb - 1]
                o_ask[nout, 2] = lct[ob + nb - 1]
            else:
                o_ask[nout, 0] = 0
                o_ask[nout, 1] = 0
                o_ask[nout, 2] = 0
            nout += 1
    state[2] = nout
    return _DONE, n


@njit(cache=True)
def _compact(boff, blen, bcap, lkey, lsz, lct, nkey, nsz, nct):
    used = 0
    for b in range(boff.shape[0]):
        if bcap[b] == 0:
            continue
        n = blen[b]
        cap = INIT_LEVELS
        while cap < 2 * n:
            cap *= 2
        off = boff[b]
        for p in range(n):
            nkey[used + p] = lkey[off + p]
            nsz[used + p] = lsz[off + p]
            nct[used + p] = lct[off + p]
        boff[b] = used
        bcap[b] = cap
        used += cap
    return used


class FastBook:
    """Chunked fast L3 book of every locate (state kept between :meth:`feed` calls).

    Parameters
    ----------
    locates : iterable of int, optional
        Only these locates produce BBO rows; every order is tracked regardless.
    order_capacity : int
        Initial hash-table size (rounded up to a power of two; it grows on demand).
    pool_levels : int
        Initial price-level pool size (grows on demand).
    """

    def __init__(
        self,
        locates: Iterable[int] | None = None,
        *,
        order_capacity: int = 1 << 16,
        pool_levels: int = 1 << 16,
    ):
        self.locmask = np.zeros(N_LOCATES, np.bool_)
        if locates is None:
            self.locmask[:] = True
        else:
            self.locmask[np.asarray(list(locates), dtype=np.int64)] = True
        cap = 1 << max(4, int(order_capacity - 1).bit_length())
        self._alloc_orders(cap)
        self.boff = np.zeros(N_BOOKS, np.int64)
        self.blen = np.zeros(N_BOOKS, np.int64)
        self.bcap = np.zeros(N_BOOKS, np.int64)
        self.lkey = np.zeros(pool_levels, np.int64)
        self.lsz = np.zeros(pool_levels, np.int64)
        self.lct = np.zeros(pool_levels, np.int64)
        self.state = np.zeros(3, np.int64)
        self.anom = np.zeros(len(ANOMALY_KINDS), np.int64)

    def _alloc_orders(self, cap: int) -> None:
        self.okey = np.zeros(cap, np.uint64)
        self.odat = np.zeros((cap, 3), np.int64)
        self.shift = np.uint64(64 - (cap.bit_length() - 1))

    def set_locates(self, locates: Iterable[int] | None) -> None:
        """Change which locates produce rows from now on (e.g. once ``R`` resolved symbols)."""
        if locates is None:
            self.locmask[:] = True
        else:
            self.locmask[:] = False
            self.locmask[np.asarray(list(locates), dtype=np.int64)] = True

    def _grow_orders(self) -> None:
        okey, odat = self.okey, self.odat
        self._alloc_orders(2 * okey.shape[0])
        _rehash(okey, odat, self.okey, self.odat, self.shift)

    def _grow_pool(self) -> None:
        size = 2 * self.lkey.shape[0]
        while True:
            nkey = np.zeros(size, np.int64)
            nsz = np.zeros(size, np.int64)
            nct = np.zeros(size, np.int64)
            boff = self.boff.copy()
            bcap = self.bcap.copy()
            used = _compact(boff, self.blen, bcap, self.lkey, self.lsz, self.lct, nkey, nsz, nct)
            if used * 2 <= size:
                break
            size *= 2
        self.lkey, self.lsz, self.lct, self.boff, self.bcap = nkey, nsz, nct, boff, bcap
        self.state[1] = used

    def feed(self, records: np.ndarray) -> np.ndarray:
        """Apply a record array (``host.bulk.RECORD_DTYPE`` fields); return its BBO rows."""
        n = len(records)
        o_idx = np.empty(n, np.int64)
        o_ts = np.empty(n, np.uint64)
        o_loc = np.empty(n, np.int64)
        o_bid = np.empty((n, 3), np.int64)
        o_ask = np.empty((n, 3), np.int64)
        cols = [records[f] for f in RECORD_FIELDS]
        self.state[2] = 0
        start = 0
        while True:
            status, start = _kernel(
                *cols, start, self.okey, self.odat, self.shift, self.state, self.boff,
                self.blen, self.bcap, self.lkey, self.lsz, self.lct, self.locmask, self.anom,
                o_idx, o_ts, o_loc, o_bid, o_ask,
            )  # fmt: skip
            if status == _DONE:
                break
            if status == _GROW_ORDERS:
                self._grow_orders()
            else:
                self._grow_pool()
        m = int(self.state[2])
        out = np.empty(m, BBO_DTYPE)
        out["msg_index"] = o_idx[:m]
        out["ts_event"] = o_ts[:m]
        out["locate"] = o_loc[:m]
        out["bid_px"] = o_bid[:m, 0]
        out["bid_sz"] = o_bid[:m, 1]
        out["bid_ct"] = o_bid[:m, 2]
        out["ask_px"] = o_ask[:m, 0]
        out["ask_sz"] = o_ask[:m, 1]
        out["ask_ct"] = o_ask[:m, 2]
        return out

    @property
    def anomalies(self) -> dict[str, int]:
        """Anomaly counters (same keys and rules as :attr:`host.book.L3Book.anomalies`)."""
        return {k: int(v) for k, v in zip(ANOMALY_KINDS, self.anom, strict=True)}

    @property
    def n_orders(self) -> int:
        """Number of live orders."""
        return int(self.state[0])

    def _levels(self, locate: int, side: str) -> list[tuple[int, int, int]]:
        sd = {"B": 0, "S": 1}.get(side)
        if sd is None:
            raise ValueError(f"side must be 'B' or 'S', not {side!r}")
        b = 2 * int(locate) + sd
        off, n = int(self.boff[b]), int(self.blen[b])
        keys = self.lkey[off : off + n][::-1]
        px = keys if sd == 0 else ASK_FLIP - keys
        return [
            (int(p), int(s), int(c))
            for p, s, c in zip(px, self.lsz[off : off + n][::-1], self.lct[off : off + n][::-1],
                               strict=True)
        ]  # fmt: skip

    def depth(self, locate: int, side: str, n: int) -> list[tuple[int, int, int]]:
        """Best ``n`` levels ``(price, size, count)`` of ``side``, best first."""
        return self._levels(locate, side)[:n]

    def bbo(self, locate: int) -> Bbo:
        """Best bid and offer of ``locate`` (empty side ``0, 0, 0``)."""
        b = self.depth(locate, "B", 1)
        a = self.depth(locate, "S", 1)
        return Bbo(*(b[0] if b else (0, 0, 0)), *(a[0] if a else (0, 0, 0)))

    def orders(self) -> dict[int, tuple[int, str, int, int]]:
        """Every live order: reference -> ``(locate, side, price, shares)`` (slow; for tests)."""
        used = np.nonzero(self.odat[:, 0])[0]
        out = {}
        for j in used:
            meta = int(self.odat[j, 0]) - 1
            out[int(self.okey[j])] = (
                meta >> 1,
                "BS"[meta & 1],
                int(self.odat[j, 1]),
                int(self.odat[j, 2]),
            )
        return out


def bbo_trace_records(
    records: np.ndarray, locates: Iterable[int] | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """BBO trace and anomaly counts of one record array (see :mod:`host.book` for semantics).

    Parameters
    ----------
    records : numpy.ndarray
        ``host.bulk.RECORD_DTYPE`` records (at least the fields of :data:`RECORD_FIELDS`).
    locates : iterable of int, optional
        Only emit rows for these locates.

    Returns
    -------
    trace : numpy.ndarray
        :data:`host.book.BBO_DTYPE` rows.
    anomalies : dict
        Counter per :data:`host.book.ANOMALY_KINDS`.
    """
    fb = FastBook(locates)
    trace = fb.feed(records)
    return trace, fb.anomalies
