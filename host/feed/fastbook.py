"""Fast numba L3 book over ``host.feed.bulk`` record arrays; same output as :mod:`host.feed.book`.

The book semantics, anomaly rules and BBO-trace definition are those of :mod:`host.feed.book`
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
    the pool is compacted and grown from Python when it is full. Levels are found by binary
    search. A level that empties below the top stays in its run as an empty placeholder
    (count 0) instead of shifting every better level down; a new level opens its slot by
    shifting toward the nearest placeholder (or the top, when nearer), and placeholders are
    dropped when a run is full or the pool is compacted. So far-from-touch traffic on deep
    books costs the distance to a placeholder, not the depth of the book; the top level is
    never a placeholder, so the BBO is still read in O(1).

The kernel stops and returns to Python whenever a table must grow *before* it changes anything
for the current message, so a chunked run over a whole file never half-applies a message.
:class:`FastBook` keeps the state between chunks (``feed``), :func:`bbo_trace_records` runs one
array.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numba import njit

from host.feed.book import ANOMALY_KINDS, BBO_COLUMNS, BBO_DTYPE, Bbo

__all__ = ["FastBook", "bbo_csv_bytes", "bbo_trace_records", "RECORD_FIELDS"]

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
"""Record fields the book reads (a ``host.feed.bulk.RECORD_DTYPE`` array has them all)."""

N_LOCATES = 1 << 16
N_BOOKS = 2 * N_LOCATES
INIT_LEVELS = 8
ASK_FLIP = 0xFFFFFFFF
_MUL = np.uint64(0x9E3779B97F4A7C15)

# anomaly indices, in host.feed.book.ANOMALY_KINDS order
_UNKNOWN_REF, _DUP_ADD, _OVER_EXEC, _OVER_CANCEL = 0, 1, 2, 3
_REPL_UNKNOWN, _REPL_DUP, _LOC_MISMATCH, _BAD_SIDE = 4, 5, 6, 7
assert ANOMALY_KINDS[_BAD_SIDE] == "bad_side" and ANOMALY_KINDS[_REPL_DUP] == "replace_duplicate"

# kernel status
_DONE, _GROW_ORDERS, _GROW_POOL, _GROW_OUT = 0, 1, 2, 3


@njit(cache=True)
def _home(r, shift):
    return np.int64((r * _MUL) >> shift)


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
def _kernel(mt, loc, ts, ref, nref, side, shares, price, midx, start,
            okey, odat, shift, state, boff, blen, bcap, lkey, lsz, lct, locmask, anom,
            o_idx, o_ts, o_loc, o_bpx, o_bsz, o_bct, o_apx, o_asz, o_act):  # fmt: skip
    """Apply records ``start..``; returns ``(status, index to resume at)``.

    ``state`` = [live orders, pool used, rows written]. Table and level operations are written
    out inline on purpose: calling a jitted helper with array arguments costs an atomic
    incref/decref pair per array per call, which was 60% of the run time.
    Per message: look up, check that the tables have room (else return *before* changing
    anything), count anomalies, then reduce/remove and/or add.
    """
    n = mt.shape[0]
    mask = okey.shape[0] - 1
    limit = okey.shape[0] // 2
    nout = state[2]
    out_cap = o_idx.shape[0]
    for i in range(start, n):
        if nout >= out_cap:
            state[2] = nout
            return _GROW_OUT, i
        t = mt[i]
        do_add = False
        do_red = False
        dup = False
        rm = False
        q = np.int64(0)
        a_ref = np.uint64(0)
        a_px = np.int64(0)
        a_sh = np.int64(0)
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
            j = _home(r, shift)
            while odat[j, 0] != 0 and okey[j] != r:
                j = (j + 1) & mask
            if odat[j, 0] != 0:
                anom[_DUP_ADD] += 1
                continue
            L = np.int64(loc[i])
            do_add = True
            a_ref = r
            a_px = np.int64(price[i])
            a_sh = np.int64(shares[i])
        elif t == 69 or t == 67 or t == 88 or t == 68 or t == 85:  # E, C, X, D, U
            r = ref[i]
            j = _home(r, shift)
            while odat[j, 0] != 0 and okey[j] != r:
                j = (j + 1) & mask
            if odat[j, 0] == 0:
                if t == 85:
                    anom[_REPL_UNKNOWN] += 1
                else:
                    anom[_UNKNOWN_REF] += 1
                continue
            meta = odat[j, 0] - 1
            L = meta >> 1
            sd = meta & 1
            do_red = True
            if t == 85:
                a_ref = nref[i]
                jn = _home(a_ref, shift)
                while odat[jn, 0] != 0 and okey[jn] != a_ref:
                    jn = (jn + 1) & mask
                dup = odat[jn, 0] != 0
                do_add = not dup
                a_px = np.int64(price[i])
                a_sh = np.int64(shares[i])
        else:
            continue
        b = 2 * L + sd

        # room: order table at most half full, one free level in book b
        if do_add:
            if state[0] + 1 > limit:
                state[2] = nout
                return _GROW_ORDERS, i
            if blen[b] == bcap[b] and bcap[b] > 0:
                # full run: drop its empty levels in place first (the top one is never empty)
                off = boff[b]
                w = 0
                for p in range(blen[b]):
                    if lct[off + p] != 0:
                        lkey[off + w] = lkey[off + p]
                        lsz[off + w] = lsz[off + p]
                        lct[off + w] = lct[off + p]
                        w += 1
                blen[b] = w
            if blen[b] == bcap[b]:
                ncap = max(INIT_LEVELS, 2 * bcap[b])
                used = state[1]
                if used + ncap > lkey.shape[0]:
                    state[2] = nout
                    return _GROW_POOL, i
                off = boff[b]
                for p in range(blen[b]):
                    lkey[used + p] = lkey[off + p]
                    lsz[used + p] = lsz[off + p]
                    lct[used + p] = lct[off + p]
                boff[b] = used
                bcap[b] = ncap
                state[1] = used + ncap

        # anomalies (only now: a message resumed after growth must not count twice)
        if do_red:
            if L != np.int64(loc[i]):
                anom[_LOC_MISMATCH] += 1
            sh = odat[j, 2]
            if t == 68 or t == 85:
                rm = True
                q = sh
                if dup:
                    anom[_REPL_DUP] += 1
            else:
                q = np.int64(shares[i])
                if q >= sh:
                    if q > sh:
                        if t == 88:
                            anom[_OVER_CANCEL] += 1
                        else:
                            anom[_OVER_EXEC] += 1
                    rm = True
                    q = sh

        # snapshot the top of book b
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

        if do_red:
            px = odat[j, 1]
            k = px if sd == 0 else ASK_FLIP - px
            lo = 0  # binary search: the level exists (its order is live)
            hi = nb - 1
            while lo < hi:
                mid = (lo + hi) >> 1
                if lkey[off + mid] < k:
                    lo = mid + 1
                else:
                    hi = mid
            p = lo
            lsz[off + p] -= q
            if rm:
                lct[off + p] -= 1
                if lct[off + p] == 0 and p == nb - 1:
                    # the top emptied: pop it and every empty level under it
                    nb -= 1
                    while nb > 0 and lct[off + nb - 1] == 0:
                        nb -= 1
                    blen[b] = nb
                # an empty level below the top stays as a placeholder (count 0): no shift
                # backward-shift deletion of slot j (no tombstones)
                e = j
                g = j
                while True:
                    g = (g + 1) & mask
                    if odat[g, 0] == 0:
                        break
                    h = _home(okey[g], shift)
                    # leave g alone when its home lies cyclically in (e, g]
                    if e <= g:
                        if e < h <= g:
                            continue
                    elif h <= g or h > e:
                        continue
                    okey[e] = okey[g]
                    odat[e, 0] = odat[g, 0]
                    odat[e, 1] = odat[g, 1]
                    odat[e, 2] = odat[g, 2]
                    e = g
                odat[e, 0] = 0
                state[0] -= 1
            else:
                odat[j, 2] -= q

        if do_add:
            k = a_px if sd == 0 else ASK_FLIP - a_px
            lo = 0  # lower bound: first position whose key is >= k
            hi = nb
            while lo < hi:
                mid = (lo + hi) >> 1
                if lkey[off + mid] < k:
                    lo = mid + 1
                else:
                    hi = mid
            p = lo
            if p < nb and lkey[off + p] == k:  # the level (or its empty placeholder)
                lsz[off + p] += a_sh
                lct[off + p] += 1
            else:
                # open a slot at p by shifting toward the nearest empty placeholder, or
                # toward the top when that is nearer: cost = distance, not book depth
                d = 0
                while True:
                    up = p + d
                    dn = p - 1 - d
                    if up == nb or lct[off + up] == 0:  # the top end, or a placeholder above
                        w = up
                        while w > p:
                            lkey[off + w] = lkey[off + w - 1]
                            lsz[off + w] = lsz[off + w - 1]
                            lct[off + w] = lct[off + w - 1]
                            w -= 1
                        if up == nb:
                            nb += 1
                            blen[b] = nb
                        break
                    if dn >= 0 and lct[off + dn] == 0:
                        for w in range(dn, p - 1):
                            lkey[off + w] = lkey[off + w + 1]
                            lsz[off + w] = lsz[off + w + 1]
                            lct[off + w] = lct[off + w + 1]
                        p -= 1
                        break
                    d += 1
                lkey[off + p] = k
                lsz[off + p] = a_sh
                lct[off + p] = 1
            g = _home(a_ref, shift)
            while odat[g, 0] != 0:
                g = (g + 1) & mask
            okey[g] = a_ref
            odat[g, 0] = 1 + 2 * L + sd
            odat[g, 1] = a_px
            odat[g, 2] = a_sh
            state[0] += 1

        if nb > 0:
            changed = lkey[off + nb - 1] != k0 or lsz[off + nb - 1] != s0
            changed = changed or lct[off + nb - 1] != c0
        else:
            changed = k0 != -1
        if changed and locmask[L]:
            o_idx[nout] = midx[i]
            o_ts[nout] = ts[i]
            o_loc[nout] = L
            bb = 2 * L
            ob = boff[bb]
            m = blen[bb]
            if m > 0:
                o_bpx[nout] = lkey[ob + m - 1]
                o_bsz[nout] = lsz[ob + m - 1]
                o_bct[nout] = lct[ob + m - 1]
            else:
                o_bpx[nout] = 0
                o_bsz[nout] = 0
                o_bct[nout] = 0
            ob = boff[bb + 1]
            m = blen[bb + 1]
            if m > 0:
                o_apx[nout] = ASK_FLIP - lkey[ob + m - 1]
                o_asz[nout] = lsz[ob + m - 1]
                o_act[nout] = lct[ob + m - 1]
            else:
                o_apx[nout] = 0
                o_asz[nout] = 0
                o_act[nout] = 0
            nout += 1
    state[2] = nout
    return _DONE, n


@njit(cache=True)
def _compact(boff, blen, bcap, lkey, lsz, lct, nkey, nsz, nct):
    used = 0
    for b in range(boff.shape[0]):
        if bcap[b] == 0:
            continue
        off = boff[b]
        n = 0
        for p in range(blen[b]):  # live levels only: empty placeholders are dropped here
            if lct[off + p] != 0:
                nkey[used + n] = lkey[off + p]
                nsz[used + n] = lsz[off + p]
                nct[used + n] = lct[off + p]
                n += 1
        cap = INIT_LEVELS
        while cap < 2 * n:
            cap *= 2
        blen[b] = n
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
        self._out: np.ndarray | None = None

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
            blen = self.blen.copy()
            bcap = self.bcap.copy()
            used = _compact(boff, blen, bcap, self.lkey, self.lsz, self.lct, nkey, nsz, nct)
            if used * 2 <= size:
                break
            size *= 2
        self.lkey, self.lsz, self.lct = nkey, nsz, nct
        self.boff, self.blen, self.bcap = boff, blen, bcap
        self.state[1] = used

    def feed(self, records: np.ndarray, *, copy: bool = True) -> np.ndarray:
        """Apply a record array (``host.feed.bulk.RECORD_DTYPE`` fields); return its BBO rows.

        Parameters
        ----------
        records : numpy.ndarray
            Records in stream order (a chunk continues the previous one).
        copy : bool
            With False the rows are a view of an internal buffer that the next call reuses
            (saves page faults in chunked runs; use the rows before feeding again).
        """
        cols = [np.asarray(records[f]) for f in RECORD_FIELDS]
        n = cols[0].shape[0]
        if any(c.shape != (n,) for c in cols):
            raise ValueError("record fields must be 1-d and of one length")
        out = self._out
        if out is None or len(out) < n // 2 + 1024:
            out = np.empty(n // 2 + 1024, BBO_DTYPE)
        self.state[2] = 0
        start = 0
        while True:
            status, start = _kernel(
                *cols, start, self.okey, self.odat, self.shift, self.state, self.boff,
                self.blen, self.bcap, self.lkey, self.lsz, self.lct, self.locmask, self.anom,
                *[out[c] for c in BBO_COLUMNS],
            )  # fmt: skip
            if status == _DONE:
                break
            if status == _GROW_ORDERS:
                self._grow_orders()
            elif status == _GROW_POOL:
                self._grow_pool()
            else:
                bigger = np.empty(2 * len(out), BBO_DTYPE)
                bigger[: len(out)] = out
                out = bigger
        m = int(self.state[2])
        if copy:
            self._out = None
            return out[:m] if m == len(out) else out[:m].copy()
        self._out = out
        return out[:m]

    @property
    def anomalies(self) -> dict[str, int]:
        """Anomaly counters (same keys and rules as :attr:`host.feed.book.L3Book.anomalies`)."""
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
            if c  # skip the empty placeholders
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
    """BBO trace and anomaly counts of one record array (see :mod:`host.feed.book` for semantics).

    Parameters
    ----------
    records : numpy.ndarray
        ``host.feed.bulk.RECORD_DTYPE`` records (at least the fields of :data:`RECORD_FIELDS`).
    locates : iterable of int, optional
        Only emit rows for these locates.

    Returns
    -------
    trace : numpy.ndarray
        :data:`host.feed.book.BBO_DTYPE` rows.
    anomalies : dict
        Counter per :data:`host.feed.book.ANOMALY_KINDS`.
    """
    fb = FastBook(locates)
    trace = fb.feed(records)
    return trace, fb.anomalies


@njit(cache=True)
def _csv(cols, out):
    """Decimal CSV of the non-negative int64 ``cols[n, k]`` into ``out``; returns bytes used."""
    pos = 0
    digits = np.empty(20, np.uint8)
    for i in range(cols.shape[0]):
        for c in range(cols.shape[1]):
            v = cols[i, c]
            nd = 0
            while True:
                digits[nd] = 48 + v % 10
                v //= 10
                nd += 1
                if v == 0:
                    break
            while nd > 0:
                nd -= 1
                out[pos] = digits[nd]
                pos += 1
            out[pos] = 44 if c + 1 < cols.shape[1] else 10
            pos += 1
    return pos


def bbo_csv_bytes(trace: np.ndarray, header: bool = False, extra: dict | None = None) -> bytes:
    """BBO rows as CSV bytes (the text of :func:`host.feed.book.write_bbo_csv`, ~50x faster).

    ``extra`` appends integer columns after :data:`~host.feed.book.BBO_COLUMNS` (name ->
    array of ``len(trace)``): the card floor adds its ``valid`` and ``stale`` flags this way.
    """
    extra = extra or {}
    names = [*BBO_COLUMNS, *extra]
    head = (",".join(names) + "\n").encode() if header else b""
    if len(trace) == 0:
        return head
    cols = np.empty((len(trace), len(names)), np.int64)
    for k, c in enumerate(BBO_COLUMNS):
        cols[:, k] = trace[c]
    for k, v in enumerate(extra.values(), start=len(BBO_COLUMNS)):
        cols[:, k] = v
    out = np.empty(len(trace) * len(names) * 21, np.uint8)
    m = _csv(cols, out)
    return head + out[:m].tobytes()
