"""numba kernels of :mod:`host.feed.fastbook` (the fallback when no C compiler is present).

:mod:`host.feed.fastbook` describes the data structures; ``host/feed/fastbook.c`` is the same
code step for step in C, and ``tests/host/feed/test_fastbook_c.py`` compares the two. This
module is imported only when the numba backend is used (importing numba and loading these
kernels' cache costs about a second of start-up, which the C backend avoids).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# the constants of host.feed.fastbook (not imported from it: it imports this module lazily;
# tests/host/feed/test_fastbook_c.py checks they are equal)
INIT_LEVELS = 8
ASK_FLIP = 0xFFFFFFFF
_MUL = np.uint64(0x9E3779B97F4A7C15)
_UNKNOWN_REF, _DUP_ADD, _OVER_EXEC, _OVER_CANCEL = 0, 1, 2, 3
_REPL_UNKNOWN, _REPL_DUP, _LOC_MISMATCH, _BAD_SIDE = 4, 5, 6, 7
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
