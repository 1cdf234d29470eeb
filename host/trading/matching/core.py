# ruff: noqa: E741  (I is the instruments table, as in the module docstring)
"""Compiled (numba) matching core over preallocated numpy arrays.

State (all owned by :class:`host.trading.matching.engine.MatchingEngine`):

``P[cap, O_NF]`` int64
    Order pool, one row per order (hot fields in the first cache line). Free rows form a
    LIFO free list through ``O_NEXT``; never-used rows are handed out from a high-water mark.
``H[hcap, 0]`` int64 / ``H[hcap, 1]`` int64
    Order id -> pool row + 1 (0 = empty), open addressing with linear probing and
    backward-shift deletion (no tombstones); ``hcap`` is a power of two >= 2 * cap.
``L[nlev, 4]`` int64
    Price levels of every instrument (a dense ladder from ``min_price`` to ``max_price`` per
    instrument): head row, tail row, displayed quantity, order count. Orders of a level form
    an intrusive doubly linked FIFO through ``O_PREV``/``O_NEXT``. A level holds orders of one
    side only (the book is never crossed).
``BM[2, nwords]`` uint64
    One bit per non-empty level per side, to find the next best level 64 levels at a time.
``I[ninst, I_NF]`` int64
    Per-instrument row: id, tick, min price, ladder length and offsets, best bid/ask level
    (-1 = empty side), last trade price, pending-stop list head/tail.
``S[S_NF]`` int64
    Scalars: event / command / trade sequence numbers, pool high-water mark, free list head...
``TQ[cap]`` int64
    Queue of triggered stop orders (transient, within one command).
``E[m, 15]`` int64
    Event rows (``EVENT_DTYPE`` bytes), written from row 0 by each :func:`process` call. The
    kernel never allocates: before a command it checks that the command's worst-case event
    count (:func:`event_bound`) fits, else it stops before that command and the caller grows
    ``E``. So no command is ever half-applied.

All kernels are compiled with ``_nrt=False`` (no reference counting): a call between them costs
a few ns instead of ~10 ns per array argument.

Every command is validated completely before anything changes; a rejected command only
advances the command and event sequence numbers.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# ---------------------------------------------------------------- constants (match types.py)
SIDE_BUY, SIDE_SELL = 1, 2
T_LIMIT, T_MARKET, T_STOP, T_STOP_LIMIT = 1, 2, 3, 4
TIF_GTC, TIF_DAY, TIF_IOC, TIF_FOK = 1, 2, 3, 4
STP_NONE, STP_CN, STP_CO, STP_CB, STP_DC = 0, 1, 2, 3, 4
CMD_SUBMIT, CMD_CANCEL, CMD_REPLACE, CMD_MASS, CMD_END = 1, 2, 3, 4, 5
EV_ACCEPTED, EV_REJECTED, EV_FILLED, EV_CANCELED = 1, 2, 3, 4
EV_REPLACED, EV_EXPIRED, EV_TRIGGERED = 5, 6, 7
CF_POST_ONLY = 1
MC_BY_ACCOUNT, MC_BY_INSTRUMENT = 1, 2
EF_POST_ONLY, EF_ICEBERG, EF_MAKER, EF_KEPT = 1, 2, 4, 8

R_UNKNOWN_INSTRUMENT, R_UNKNOWN_ORDER, R_DUPLICATE, R_INVALID_QTY = 1, 2, 3, 4
R_INVALID_PRICE, R_OFF_TICK, R_OUT_OF_BAND, R_INVALID_SIDE = 5, 6, 7, 8
R_INVALID_TYPE, R_INVALID_TIF, R_INVALID_STP, R_INVALID_DISPLAY = 9, 10, 11, 12
R_INVALID_STOP, R_POST_ONLY, R_INVALID_INSTR, R_CAPACITY = 13, 14, 15, 16
R_QTY_NOT_ABOVE_FILLED, R_INVALID_COMMAND, R_QTY_ABOVE_MAX = 17, 18, 19
R_USER, R_MASS, R_IOC, R_FOK, R_MARKET = 32, 33, 34, 35, 36
R_STP_CN, R_STP_CO, R_STP_CB, R_STP_DC, R_SESSION_END = 37, 38, 39, 40, 41

# Limits that keep every sum of quantities inside int64 and the worst-case event count of a
# command independent of iceberg sizes (docs/matching.md, "Limits"): an order's quantity is at
# most MAX_ORDER_QTY, the pool at most MAX_ORDERS rows (so a level total, a FOK walk or the
# pending-stop total stays below MAX_ORDERS * MAX_ORDER_QTY < 2**63), and an iceberg has at
# most MAX_ICEBERG_SLICES refreshes (display_qty >= qty / (MAX_ICEBERG_SLICES + 1)).
MAX_ORDER_QTY = 10**12
MAX_ORDERS = 1 << 22
MAX_ICEBERG_SLICES = 1000

# order pool columns
O_ID, O_DISP, O_HID, O_CUM, O_INIT, O_NEXT, O_PREV, O_ACCT = 0, 1, 2, 3, 4, 5, 6, 7
O_PX, O_LVL, O_INST, O_SIDE, O_TYPE, O_TIF, O_FLAGS, O_STATE = 8, 9, 10, 11, 12, 13, 14, 15
O_STP, O_PEAK, O_STOP, O_TS, O_PRIO = 16, 17, 18, 19, 20
# fields 0-15 (two cache lines) are all that matching, cancels and fill events touch on a
# resting order; STP mode, iceberg peak, stop price, priority time and priority sequence sit
# in the third line. O_PRIO is the arrival rank in the level FIFO (S_PRIO counter): command
# timestamps come from the sender and may go backwards, so they cannot order the FIFO.
O_NF = 24
ST_FREE, ST_RESTING, ST_STOP, ST_TAKER = 0, 1, 2, 3

# level columns
L_HEAD, L_TAIL, L_QTY, L_CNT = 0, 1, 2, 3

# instrument columns
I_ID, I_TICK, I_MINPX, I_NLEV, I_LOFF, I_WOFF, I_BID, I_ASK = 0, 1, 2, 3, 4, 5, 6, 7
I_LAST, I_SHEAD, I_STAIL = 8, 9, 10
I_NF = 16

# scalars
S_EVSEQ, S_CMDSEQ, S_TRADE, S_HWM, S_FREE, S_LIVE, S_HSHIFT, S_HMASK = 0, 1, 2, 3, 4, 5, 6, 7
S_CAP, S_TQH, S_TQT, S_SLICES, S_PRIO, S_STOPQ = 8, 9, 10, 11, 12, 13
# S_STOPQ: total open quantity of the pending stops (bounds what triggered stops can trade)
S_NF = 16

E_NF = 15
_PF_HASH, _PF_ROW, _PF_NEAR = 8, 4, 2  # prefetch distances (commands ahead) in process()
M32 = 0xFFFFFFFF
_MUL = np.uint64(0x9E3779B97F4A7C15)
_U1 = np.uint64(1)
_U0 = np.uint64(0)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


# ------------------------------------------------------------------------------- prefetch


@intrinsic
def _prefetch(typingctx, addr):
    """``llvm.prefetch`` (read, keep in all cache levels) of the byte at address ``addr``."""
    sig = types.void(types.intp)

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type] + [ir.IntType(32)] * 3)
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        i32 = ir.IntType(32)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


# ---------------------------------------------------------------------------- order-id hash


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _home(key, shift):
    return np.int64((np.uint64(key) * _MUL) >> np.uint64(shift))


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def hfind(H, S, key):
    """Hash slot of ``key``, or ``-(free slot) - 1`` when absent."""
    mask = S[S_HMASK]
    j = _home(key, S[S_HSHIFT])
    while H[j, 1] != 0:
        if H[j, 0] == key:
            return j
        j = (j + 1) & mask
    return -j - 1


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _hinsert(H, S, key, row):
    j = hfind(H, S, key)
    j = -j - 1
    H[j, 0] = key
    H[j, 1] = row + 1


@njit(cache=True, nogil=True, _nrt=False)
def _hdelete(H, S, j):
    mask = S[S_HMASK]
    shift = S[S_HSHIFT]
    i = j
    while True:
        H[i, 1] = 0
        k = i
        while True:
            k = (k + 1) & mask
            if H[k, 1] == 0:
                return
            h = _home(H[k, 0], shift)
            if i <= k:
                if i < h <= k:
                    continue
            elif h > i or h <= k:
                continue
            break
        H[i, 0] = H[k, 0]
        H[i, 1] = H[k, 1]
        i = k


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _hdelete_key(H, S, key):
    j = hfind(H, S, key)
    if j >= 0:
        _hdelete(H, S, j)


# ---------------------------------------------------------------------------------- bitmaps


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _msb(x):
    r = 0
    if x >= np.uint64(1 << 32):
        x >>= np.uint64(32)
        r += 32
    if x >= np.uint64(1 << 16):
        x >>= np.uint64(16)
        r += 16
    if x >= np.uint64(1 << 8):
        x >>= np.uint64(8)
        r += 8
    if x >= np.uint64(1 << 4):
        x >>= np.uint64(4)
        r += 4
    if x >= np.uint64(1 << 2):
        x >>= np.uint64(2)
        r += 2
    if x >= np.uint64(2):
        r += 1
    return r


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _lsb(x):
    return _msb(x & (~x + _U1))


@njit(cache=True, nogil=True, _nrt=False)
def prev_set(BM, side, woff, k):
    """Highest non-empty level index below ``k`` on ``side`` (-1 if none)."""
    if k <= 0:
        return -1
    j = k - 1
    w = j >> 6
    b = j & 63
    if b == 63:
        x = BM[side, woff + w]
    else:
        x = BM[side, woff + w] & ((_U1 << np.uint64(b + 1)) - _U1)
    while True:
        if x != _U0:
            return w * 64 + _msb(x)
        w -= 1
        if w < 0:
            return -1
        x = BM[side, woff + w]


@njit(cache=True, nogil=True, _nrt=False)
def next_set(BM, side, woff, k, nlev):
    """Lowest non-empty level index above ``k`` on ``side`` (-1 if none)."""
    j = k + 1
    if j >= nlev:
        return -1
    w = j >> 6
    b = j & 63
    x = BM[side, woff + w] & (_ALL << np.uint64(b))
    nw = (nlev + 63) >> 6
    while True:
        if x != _U0:
            return w * 64 + _lsb(x)
        w += 1
        if w >= nw:
            return -1
        x = BM[side, woff + w]


# ----------------------------------------------------------------------------------- levels


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _level_add(P, L, BM, I, S, o, ii, s, k):
    """Append row ``o`` at the tail of level ``k`` of side ``s`` (0 bid, 1 ask)."""
    g = I[ii, I_LOFF] + k
    P[o, O_LVL] = g
    P[o, O_NEXT] = -1
    if L[g, L_CNT] == 0:
        L[g, L_HEAD] = o
        L[g, L_TAIL] = o
        P[o, O_PREV] = -1
        w = I[ii, I_WOFF] + (k >> 6)
        BM[s, w] |= _U1 << np.uint64(k & 63)
        if s == 0:
            if I[ii, I_BID] < k:
                I[ii, I_BID] = k
        else:
            if I[ii, I_ASK] < 0 or k < I[ii, I_ASK]:
                I[ii, I_ASK] = k
    else:
        t = L[g, L_TAIL]
        P[t, O_NEXT] = o
        P[o, O_PREV] = t
        L[g, L_TAIL] = o
    L[g, L_QTY] += P[o, O_DISP]
    L[g, L_CNT] += 1
    S[S_SLICES] += _slices(P, o)
    S[S_PRIO] += 1
    P[o, O_PRIO] = S[S_PRIO]


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _unlink(P, L, g, o):
    p = P[o, O_PREV]
    nx = P[o, O_NEXT]
    if p >= 0:
        P[p, O_NEXT] = nx
    else:
        L[g, L_HEAD] = nx
    if nx >= 0:
        P[nx, O_PREV] = p
    else:
        L[g, L_TAIL] = p


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _level_remove(P, L, BM, I, S, o):
    """Take row ``o`` off its level (its displayed quantity leaves the level total)."""
    g = P[o, O_LVL]
    ii = P[o, O_INST]
    s = P[o, O_SIDE] - 1
    _unlink(P, L, g, o)
    L[g, L_QTY] -= P[o, O_DISP]
    L[g, L_CNT] -= 1
    S[S_SLICES] -= _slices(P, o)
    if L[g, L_CNT] == 0:
        k = g - I[ii, I_LOFF]
        woff = I[ii, I_WOFF]
        BM[s, woff + (k >> 6)] &= ~(_U1 << np.uint64(k & 63))
        if s == 0:
            if I[ii, I_BID] == k:
                I[ii, I_BID] = prev_set(BM, 0, woff, k)
        else:
            if I[ii, I_ASK] == k:
                I[ii, I_ASK] = next_set(BM, 1, woff, k, I[ii, I_NLEV])
    P[o, O_LVL] = -1


# ------------------------------------------------------------------------------ pool, events


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _alloc(P, S):
    o = S[S_FREE]
    if o >= 0:
        S[S_FREE] = P[o, O_NEXT]
    else:
        o = S[S_HWM]
        S[S_HWM] = o + 1
    S[S_LIVE] += 1
    return o


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _free(P, S, o):
    P[o, O_STATE] = ST_FREE
    P[o, O_NEXT] = S[S_FREE]
    S[S_FREE] = o
    S[S_LIVE] -= 1


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _slices(P, o):
    """Iceberg refreshes still possible for row ``o`` (ceil(hidden / peak))."""
    if P[o, O_HID] > 0 and P[o, O_PEAK] > 0:
        return (P[o, O_HID] + P[o, O_PEAK] - 1) // P[o, O_PEAK]
    return 0


@njit(cache=True, nogil=True, _nrt=False)
def event_bound(S, kind, qty):
    """Upper bound of the events one command of ``kind`` (quantity ``qty``) can emit now.

    Each match step ends the taker, removes a maker, or refreshes an iceberg slice, and emits
    at most 3 events; makers removed <= live orders, refreshes <= ``S_SLICES``. A refresh
    follows a fill of at least one unit, so refreshes are also <= what the command's takers
    can trade: ``qty`` plus the open quantity of the pending stops it may trigger. The smaller
    of the two keeps the buffer a command needs small when deep icebergs rest.
    """
    if kind == CMD_SUBMIT or kind == CMD_REPLACE:
        r = S[S_SLICES]
        if 0 <= qty < r:
            t = qty + S[S_STOPQ]  # both < MAX_ORDERS * MAX_ORDER_QTY: no overflow
            if t < r:
                r = t
        return 16 + 4 * (S[S_LIVE] + r)
    if kind == CMD_MASS or kind == CMD_END:
        return 4 + S[S_LIVE]
    return 4


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _emit(E, n, S, P, I, o, cseq, ts, kind, reason, cmd_kind, last_px, last_qty, c, trade_id,
          extra_flags):
    """Write an event about pool row ``o`` (contra row ``c`` or -1) at ``E[n]``."""
    S[S_EVSEQ] += 1
    E[n, 0] = S[S_EVSEQ]
    E[n, 1] = cseq
    E[n, 2] = ts
    E[n, 3] = P[o, O_ID]
    cacct = 0
    if c >= 0:
        E[n, 4] = P[c, O_ID]
        cacct = P[c, O_ACCT]
    else:
        E[n, 4] = 0
    E[n, 5] = trade_id
    E[n, 6] = P[o, O_PX]
    E[n, 7] = last_px
    E[n, 8] = last_qty
    E[n, 9] = P[o, O_DISP] + P[o, O_HID]
    E[n, 10] = P[o, O_CUM]
    E[n, 11] = P[o, O_INIT]
    E[n, 12] = (P[o, O_ACCT] & M32) | ((cacct & M32) << 32)
    E[n, 13] = ((I[P[o, O_INST], I_ID] & M32) | (kind << 32) | (reason << 40)
                | (P[o, O_SIDE] << 48) | (P[o, O_TYPE] << 56))
    stp = P[o, O_STP] if kind == EV_ACCEPTED else 0  # keeps fills off the third line
    E[n, 14] = (P[o, O_TIF] | ((P[o, O_FLAGS] | extra_flags) << 8) | (cmd_kind << 16)
                | (stp << 24))
    return n + 1


@njit(cache=True, nogil=True, _nrt=False)
def _emit_reject(E, n, S, C, i, cseq, reason):
    """Write an ``OrderRejected`` event echoing command row ``C[i]``."""
    w7 = C[i, 7]
    S[S_EVSEQ] += 1
    E[n, 0] = S[S_EVSEQ]
    E[n, 1] = cseq
    E[n, 2] = C[i, 0]
    E[n, 3] = C[i, 1]
    E[n, 4] = 0
    E[n, 5] = 0
    E[n, 6] = C[i, 2]
    E[n, 7] = 0
    E[n, 8] = C[i, 3]
    E[n, 9] = 0
    E[n, 10] = 0
    E[n, 11] = C[i, 3]
    E[n, 12] = C[i, 6] & M32
    E[n, 13] = (((C[i, 6] >> 32) & M32) | (EV_REJECTED << 32) | (reason << 40)
                | (((w7 >> 8) & 0xFF) << 48) | (((w7 >> 16) & 0xFF) << 56))
    E[n, 14] = ((w7 >> 24) & 0xFF) | (((w7 >> 32) & 0xFF) << 8) | ((w7 & 0xFF) << 16) | (
        ((w7 >> 40) & 0xFF) << 24)
    return n + 1


# --------------------------------------------------------------------------- cancel helpers


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _stop_unlink(P, I, o):
    ii = P[o, O_INST]
    p = P[o, O_PREV]
    nx = P[o, O_NEXT]
    if p >= 0:
        P[p, O_NEXT] = nx
    else:
        I[ii, I_SHEAD] = nx
    if nx >= 0:
        P[nx, O_PREV] = p
    else:
        I[ii, I_STAIL] = p


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _stop_append(P, I, o, ii):
    t = I[ii, I_STAIL]
    P[o, O_NEXT] = -1
    P[o, O_PREV] = t
    if t >= 0:
        P[t, O_NEXT] = o
    else:
        I[ii, I_SHEAD] = o
    I[ii, I_STAIL] = o


@njit(cache=True, nogil=True, _nrt=False)
def _kill_live(E, n, S, P, H, L, BM, I, o, cseq, ts, kind, reason, cmd_kind):
    """Cancel / expire a live (resting or pending-stop) order entirely and free its row."""
    if P[o, O_STATE] == ST_RESTING:
        _level_remove(P, L, BM, I, S, o)
    else:
        _stop_unlink(P, I, o)
        S[S_STOPQ] -= P[o, O_DISP]
    _hdelete_key(H, S, P[o, O_ID])
    q = P[o, O_DISP] + P[o, O_HID]
    P[o, O_DISP] = 0
    P[o, O_HID] = 0
    n = _emit(E, n, S, P, I, o, cseq, ts, kind, reason, cmd_kind, 0, q, -1, 0, 0)
    _free(P, S, o)
    return n


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _kill_taker(E, n, S, P, I, o, cseq, ts, reason, cmd_kind):
    """Cancel the rest of an active taker (not in the hash nor on a level) and free its row."""
    q = P[o, O_DISP] + P[o, O_HID]
    P[o, O_DISP] = 0
    P[o, O_HID] = 0
    n = _emit(E, n, S, P, I, o, cseq, ts, EV_CANCELED, reason, cmd_kind, 0, q, -1, 0, 0)
    _free(P, S, o)
    return n


# ---------------------------------------------------------------------------------- matching


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _crosses(I, ii, s, lim, is_mkt):
    """Whether an order of side index ``s`` at ``lim`` would trade with the best contra level."""
    if s == 0:
        k = I[ii, I_ASK]
        if k < 0:
            return False
        return is_mkt or I[ii, I_MINPX] + k * I[ii, I_TICK] <= lim
    k = I[ii, I_BID]
    if k < 0:
        return False
    return is_mkt or I[ii, I_MINPX] + k * I[ii, I_TICK] >= lim


@njit(cache=True, nogil=True, _nrt=False)
def _fok_ok(P, L, BM, I, o, is_mkt):
    """Conservative all-or-none check: True only if matching will fill the whole quantity.

    Walks the contra side in priority order. With an STP mode other than CANCEL_OLDEST, a
    same-account order at a level stops the count there (only the displayed quantity ahead
    of it is counted); with CANCEL_OLDEST same-account orders are skipped.
    """
    ii = P[o, O_INST]
    s = P[o, O_SIDE] - 1
    lim = P[o, O_PX]
    need = P[o, O_DISP] + P[o, O_HID]
    acct = P[o, O_ACCT]
    stp = P[o, O_STP]
    minpx = I[ii, I_MINPX]
    tick = I[ii, I_TICK]
    woff = I[ii, I_WOFF]
    nlev = I[ii, I_NLEV]
    avail = 0
    if s == 0:
        k = I[ii, I_ASK]
    else:
        k = I[ii, I_BID]
    while k >= 0:
        px = minpx + k * tick
        if not is_mkt:
            if (s == 0 and px > lim) or (s == 1 and px < lim):
                return False
        g = I[ii, I_LOFF] + k
        m = L[g, L_HEAD]
        disp_ahead = 0
        total = 0
        while m >= 0:
            if stp != STP_NONE and P[m, O_ACCT] == acct:
                if stp != STP_CO:
                    return avail + disp_ahead >= need
            else:
                disp_ahead += P[m, O_DISP]
                total += P[m, O_DISP] + P[m, O_HID]
            m = P[m, O_NEXT]
        avail += total
        if avail >= need:
            return True
        if s == 0:
            k = next_set(BM, 1, woff, k, nlev)
        else:
            k = prev_set(BM, 0, woff, k)
    return False


@njit(cache=True, nogil=True, _nrt=False)
def _match(E, n, S, P, H, L, BM, I, o, cseq, ts, cmd_kind, is_mkt):
    """Match taker row ``o`` (quantity in ``O_DISP``) against the contra side.

    Returns ``(n, hi, lo, killed)``: trade price range (-1 if no trade) and whether STP
    canceled (and freed) the taker.
    """
    ii = P[o, O_INST]
    s = P[o, O_SIDE] - 1
    lim = P[o, O_PX]
    acct = P[o, O_ACCT]
    stp = P[o, O_STP]
    minpx = I[ii, I_MINPX]
    tick = I[ii, I_TICK]
    loff = I[ii, I_LOFF]
    hi = -1
    lo = -1
    while P[o, O_DISP] > 0:
        if s == 0:
            k = I[ii, I_ASK]
        else:
            k = I[ii, I_BID]
        if k < 0:
            break
        px = minpx + k * tick
        if not is_mkt:
            if (s == 0 and px > lim) or (s == 1 and px < lim):
                break
        g = loff + k
        m = L[g, L_HEAD]
        if stp != STP_NONE and P[m, O_ACCT] == acct:
            if stp == STP_CN:
                n = _kill_taker(E, n, S, P, I, o, cseq, ts, R_STP_CN, cmd_kind)
                return n, hi, lo, True
            if stp == STP_CO:
                n = _kill_live(E, n, S, P, H, L, BM, I, m, cseq, ts, EV_CANCELED,
                               R_STP_CO, cmd_kind)
                continue
            if stp == STP_CB:
                n = _kill_live(E, n, S, P, H, L, BM, I, m, cseq, ts, EV_CANCELED,
                               R_STP_CB, cmd_kind)
                n = _kill_taker(E, n, S, P, I, o, cseq, ts, R_STP_CB, cmd_kind)
                return n, hi, lo, True
            # decrement and cancel
            mleft = P[m, O_DISP] + P[m, O_HID]
            d = min(P[o, O_DISP], mleft)
            if d == mleft:
                n = _kill_live(E, n, S, P, H, L, BM, I, m, cseq, ts, EV_CANCELED,
                               R_STP_DC, cmd_kind)
            else:
                sl0 = _slices(P, m)
                h = min(P[m, O_HID], d)
                P[m, O_HID] -= h
                r = d - h
                P[m, O_DISP] -= r
                L[g, L_QTY] -= r
                S[S_SLICES] += _slices(P, m) - sl0
                n = _emit(E, n, S, P, I, m, cseq, ts, EV_CANCELED, R_STP_DC, cmd_kind, 0, d,
                          -1, 0, 0)
            P[o, O_DISP] -= d
            if P[o, O_DISP] == 0:
                n = _emit(E, n, S, P, I, o, cseq, ts, EV_CANCELED, R_STP_DC, cmd_kind, 0, d,
                          -1, 0, 0)
                _free(P, S, o)
                return n, hi, lo, True
            n = _emit(E, n, S, P, I, o, cseq, ts, EV_CANCELED, R_STP_DC, cmd_kind, 0, d, -1,
                      0, 0)
            continue
        q = min(P[o, O_DISP], P[m, O_DISP])
        S[S_TRADE] += 1
        tid = S[S_TRADE]
        P[m, O_DISP] -= q
        P[m, O_CUM] += q
        L[g, L_QTY] -= q
        P[o, O_DISP] -= q
        P[o, O_CUM] += q
        if hi < 0 or px > hi:
            hi = px
        if lo < 0 or px < lo:
            lo = px
        I[ii, I_LAST] = px
        n = _emit(E, n, S, P, I, o, cseq, ts, EV_FILLED, 0, cmd_kind, px, q, m, tid, 0)
        n = _emit(E, n, S, P, I, m, cseq, ts, EV_FILLED, 0, cmd_kind, px, q, o, tid, EF_MAKER)
        if P[m, O_DISP] == 0:
            if P[m, O_HID] > 0:
                # iceberg refresh: new displayed slice from the reserve, back of the queue
                r = min(P[m, O_PEAK], P[m, O_HID])
                P[m, O_HID] -= r
                P[m, O_DISP] = r
                P[m, O_TS] = ts
                S[S_PRIO] += 1
                P[m, O_PRIO] = S[S_PRIO]
                S[S_SLICES] -= 1
                L[g, L_QTY] += r
                if L[g, L_TAIL] != m:
                    _unlink(P, L, g, m)
                    t = L[g, L_TAIL]
                    P[t, O_NEXT] = m
                    P[m, O_PREV] = t
                    P[m, O_NEXT] = -1
                    L[g, L_TAIL] = m
            else:
                _level_remove(P, L, BM, I, S, m)
                _hdelete_key(H, S, P[m, O_ID])
                _free(P, S, m)
    return n, hi, lo, False


@njit(cache=True, nogil=True, _nrt=False)
def _run_taker(E, n, S, P, H, L, BM, I, o, cseq, ts, cmd_kind):
    """Execute taker row ``o`` (not in the hash, not on a level): match, then rest or cancel.

    Returns ``(n, hi, lo)`` with the trade price range (-1 if no trade).
    """
    otype = P[o, O_TYPE]
    tif = P[o, O_TIF]
    is_mkt = otype == T_MARKET or otype == T_STOP
    P[o, O_STATE] = ST_TAKER
    if tif == TIF_FOK and not _fok_ok(P, L, BM, I, o, is_mkt):
        n = _kill_taker(E, n, S, P, I, o, cseq, ts, R_FOK, cmd_kind)
        return n, -1, -1
    n, hi, lo, killed = _match(E, n, S, P, H, L, BM, I, o, cseq, ts, cmd_kind, is_mkt)
    if killed:
        return n, hi, lo
    rem = P[o, O_DISP]
    if rem == 0:
        _free(P, S, o)
    elif is_mkt:
        n = _kill_taker(E, n, S, P, I, o, cseq, ts, R_MARKET, cmd_kind)
    elif tif == TIF_IOC or tif == TIF_FOK:
        n = _kill_taker(E, n, S, P, I, o, cseq, ts, R_IOC if tif == TIF_IOC else R_FOK,
                        cmd_kind)
    else:
        peak = P[o, O_PEAK]
        if peak > 0 and rem > peak:
            P[o, O_DISP] = peak
            P[o, O_HID] = rem - peak
        ii = P[o, O_INST]
        k = (P[o, O_PX] - I[ii, I_MINPX]) // I[ii, I_TICK]
        _level_add(P, L, BM, I, S, o, ii, P[o, O_SIDE] - 1, k)
        _hinsert(H, S, P[o, O_ID], o)
        P[o, O_STATE] = ST_RESTING
    return n, hi, lo


@njit(cache=True, nogil=True, _nrt=False)
def _collect_stops(P, I, S, TQ, ii, hi, lo):
    """Move the pending stops of instrument ``ii`` triggered by trades in [lo, hi] to ``TQ``."""
    o = I[ii, I_SHEAD]
    while o >= 0:
        nx = P[o, O_NEXT]
        stop = P[o, O_STOP]
        if (P[o, O_SIDE] == SIDE_BUY and hi >= stop) or (P[o, O_SIDE] == SIDE_SELL and lo <= stop):
            _stop_unlink(P, I, o)
            S[S_STOPQ] -= P[o, O_DISP]
            TQ[S[S_TQT]] = o
            S[S_TQT] += 1
        o = nx


@njit(cache=True, nogil=True, _nrt=False)
def _after_trades(E, n, S, P, H, L, BM, I, TQ, ii, hi, lo, cseq, ts, cmd_kind):
    """Trigger stops after a taker execution (``hi`` >= 0), cascading until none triggers."""
    S[S_TQH] = 0
    S[S_TQT] = 0
    _collect_stops(P, I, S, TQ, ii, hi, lo)
    while S[S_TQH] < S[S_TQT]:
        o = TQ[S[S_TQH]]
        S[S_TQH] += 1
        _hdelete_key(H, S, P[o, O_ID])
        n = _emit(E, n, S, P, I, o, cseq, ts, EV_TRIGGERED, 0, cmd_kind, P[o, O_STOP], 0, -1,
                  0, 0)
        P[o, O_TS] = ts
        n, h2, l2 = _run_taker(E, n, S, P, H, L, BM, I, o, cseq, ts, cmd_kind)
        if h2 >= 0:
            _collect_stops(P, I, S, TQ, ii, h2, l2)
    return n


# ---------------------------------------------------------------------------------- commands


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _check_px(I, ii, px):
    if px <= 0:
        return R_INVALID_PRICE
    if px % I[ii, I_TICK] != 0:
        return R_OFF_TICK
    if px < I[ii, I_MINPX] or px > I[ii, I_MINPX] + (I[ii, I_NLEV] - 1) * I[ii, I_TICK]:
        return R_OUT_OF_BAND
    return 0


@njit(cache=True, nogil=True, _nrt=False)
def _submit(C, i, E, n, S, P, H, L, BM, I, IMAP, TQ, cseq):
    ts = C[i, 0]
    oid = C[i, 1]
    px = C[i, 2]
    qty = C[i, 3]
    disp = C[i, 4]
    stop = C[i, 5]
    acct = C[i, 6] & M32
    inst = (C[i, 6] >> 32) & M32
    w7 = C[i, 7]
    side = (w7 >> 8) & 0xFF
    otype = (w7 >> 16) & 0xFF
    tif = (w7 >> 24) & 0xFF
    flags = (w7 >> 32) & 0xFF
    stp = (w7 >> 40) & 0xFF
    ii = -1
    if inst < IMAP.shape[0]:
        ii = IMAP[inst]
    reason = 0
    if ii < 0:
        reason = R_UNKNOWN_INSTRUMENT
    elif side != SIDE_BUY and side != SIDE_SELL:
        reason = R_INVALID_SIDE
    elif otype < T_LIMIT or otype > T_STOP_LIMIT:
        reason = R_INVALID_TYPE
    elif tif < TIF_GTC or tif > TIF_FOK:
        reason = R_INVALID_TIF
    elif stp > STP_DC:
        reason = R_INVALID_STP
    elif qty <= 0:
        reason = R_INVALID_QTY
    elif qty > MAX_ORDER_QTY:
        reason = R_QTY_ABOVE_MAX
    elif (flags & ~CF_POST_ONLY) != 0:
        reason = R_INVALID_INSTR
    else:
        if otype == T_LIMIT or otype == T_STOP_LIMIT:
            reason = _check_px(I, ii, px)
        elif px != 0:
            reason = R_INVALID_PRICE
        if reason == 0:
            if otype == T_STOP or otype == T_STOP_LIMIT:
                if stop <= 0:
                    reason = R_INVALID_STOP
                elif stop % I[ii, I_TICK] != 0:
                    reason = R_OFF_TICK
            elif stop != 0:
                reason = R_INVALID_STOP
        if reason == 0 and disp != 0:
            if disp < 0 or disp >= qty or qty - disp > disp * MAX_ICEBERG_SLICES:
                reason = R_INVALID_DISPLAY
            elif otype != T_LIMIT or tif == TIF_IOC or tif == TIF_FOK:
                reason = R_INVALID_INSTR
        if reason == 0 and (flags & CF_POST_ONLY) != 0:
            if otype != T_LIMIT or tif == TIF_IOC or tif == TIF_FOK:
                reason = R_INVALID_INSTR
            elif _crosses(I, ii, side - 1, px, False):
                reason = R_POST_ONLY
        if reason == 0 and hfind(H, S, oid) >= 0:
            reason = R_DUPLICATE
        if reason == 0 and S[S_FREE] < 0 and S[S_HWM] >= S[S_CAP]:
            reason = R_CAPACITY
    if reason != 0:
        return _emit_reject(E, n, S, C, i, cseq, reason)
    o = _alloc(P, S)
    P[o, O_ID] = oid
    P[o, O_ACCT] = acct
    P[o, O_INST] = ii
    P[o, O_SIDE] = side
    P[o, O_TYPE] = otype
    P[o, O_TIF] = tif
    P[o, O_STP] = stp
    P[o, O_PX] = px
    P[o, O_STOP] = stop
    P[o, O_CUM] = 0
    P[o, O_INIT] = qty
    P[o, O_TS] = ts
    P[o, O_LVL] = -1
    P[o, O_DISP] = qty
    P[o, O_HID] = 0
    P[o, O_PEAK] = disp
    fl = 0
    if (flags & CF_POST_ONLY) != 0:
        fl |= EF_POST_ONLY
    if disp > 0:
        fl |= EF_ICEBERG
    P[o, O_FLAGS] = fl
    n = _emit(E, n, S, P, I, o, cseq, ts, EV_ACCEPTED, 0, CMD_SUBMIT, 0, qty, -1, 0, 0)
    if otype == T_STOP or otype == T_STOP_LIMIT:
        P[o, O_STATE] = ST_STOP
        _stop_append(P, I, o, ii)
        S[S_STOPQ] += qty
        _hinsert(H, S, oid, o)
        return n
    n, hi, lo = _run_taker(E, n, S, P, H, L, BM, I, o, cseq, ts, CMD_SUBMIT)
    if hi < 0 or I[ii, I_SHEAD] < 0:
        return n
    return _after_trades(E, n, S, P, H, L, BM, I, TQ, ii, hi, lo, cseq, ts, CMD_SUBMIT)


@njit(cache=True, nogil=True, _nrt=False)
def _cancel(C, i, E, n, S, P, H, L, BM, I, cseq):
    j = hfind(H, S, C[i, 1])
    if j < 0:
        return _emit_reject(E, n, S, C, i, cseq, R_UNKNOWN_ORDER)
    o = H[j, 1] - 1
    return _kill_live(E, n, S, P, H, L, BM, I, o, cseq, C[i, 0], EV_CANCELED, R_USER,
                      CMD_CANCEL)


@njit(cache=True, nogil=True, _nrt=False)
def _replace(C, i, E, n, S, P, H, L, BM, I, TQ, cseq):
    ts = C[i, 0]
    j = hfind(H, S, C[i, 1])
    if j < 0:
        return _emit_reject(E, n, S, C, i, cseq, R_UNKNOWN_ORDER)
    o = H[j, 1] - 1
    ii = P[o, O_INST]
    new_qty = C[i, 3]
    new_px = C[i, 2]
    otype = P[o, O_TYPE]
    reason = 0
    if new_qty <= 0:
        reason = R_INVALID_QTY
    elif new_qty > MAX_ORDER_QTY:
        reason = R_QTY_ABOVE_MAX
    elif new_qty - P[o, O_CUM] <= 0:
        reason = R_QTY_NOT_ABOVE_FILLED
    elif new_px != 0:
        if otype == T_LIMIT or otype == T_STOP_LIMIT:
            reason = _check_px(I, ii, new_px)
        else:
            reason = R_INVALID_PRICE
    if new_px == 0:
        new_px = P[o, O_PX]
    new_leaves = new_qty - P[o, O_CUM]
    state = P[o, O_STATE]
    keep = False
    old_leaves = 0
    if reason == 0:
        # the same rule for resting orders and pending stops: a quantity decrease at the same
        # price keeps priority (FIFO place / stop arrival order), anything else loses it
        old_leaves = P[o, O_DISP] + P[o, O_HID]
        keep = new_px == P[o, O_PX] and new_leaves <= old_leaves
        peak = P[o, O_PEAK]
        if not keep and peak > 0 and new_leaves - peak > peak * MAX_ICEBERG_SLICES:
            reason = R_INVALID_DISPLAY
        elif state == ST_RESTING and not keep and (P[o, O_FLAGS] & EF_POST_ONLY) != 0:
            if _crosses(I, ii, P[o, O_SIDE] - 1, new_px, False):
                reason = R_POST_ONLY
    if reason != 0:
        return _emit_reject(E, n, S, C, i, cseq, reason)
    if state == ST_STOP:
        S[S_STOPQ] += new_leaves - P[o, O_DISP]
        P[o, O_PX] = new_px
        P[o, O_INIT] = new_qty
        P[o, O_DISP] = new_leaves
        kept = EF_KEPT
        if not keep:  # to the back of the stop list: it triggers after the stops before it
            _stop_unlink(P, I, o)
            _stop_append(P, I, o, ii)
            P[o, O_TS] = ts
            kept = 0
        n = _emit(E, n, S, P, I, o, cseq, ts, EV_REPLACED, 0, CMD_REPLACE, 0, new_qty, -1, 0,
                  kept)
        return n
    if keep:
        d = old_leaves - new_leaves
        sl0 = _slices(P, o)
        h = min(P[o, O_HID], d)
        P[o, O_HID] -= h
        r = d - h
        P[o, O_DISP] -= r
        L[P[o, O_LVL], L_QTY] -= r
        S[S_SLICES] += _slices(P, o) - sl0
        P[o, O_INIT] = new_qty
        n = _emit(E, n, S, P, I, o, cseq, ts, EV_REPLACED, 0, CMD_REPLACE, 0, new_qty, -1, 0,
                  EF_KEPT)
        return n
    _level_remove(P, L, BM, I, S, o)
    _hdelete(H, S, j)
    P[o, O_PX] = new_px
    P[o, O_INIT] = new_qty
    P[o, O_DISP] = new_leaves
    P[o, O_HID] = 0
    P[o, O_TS] = ts
    n = _emit(E, n, S, P, I, o, cseq, ts, EV_REPLACED, 0, CMD_REPLACE, 0, new_qty, -1, 0, 0)
    n, hi, lo = _run_taker(E, n, S, P, H, L, BM, I, o, cseq, ts, CMD_REPLACE)
    if hi < 0 or I[ii, I_SHEAD] < 0:
        return n
    return _after_trades(E, n, S, P, H, L, BM, I, TQ, ii, hi, lo, cseq, ts, CMD_REPLACE)


@njit(cache=True, nogil=True, _nrt=False)
def _mass(C, i, E, n, S, P, H, L, BM, I, IMAP, cseq, kind):
    """Mass cancel (``kind`` = EV_CANCELED) or end of session (EV_EXPIRED, DAY orders only)."""
    ts = C[i, 0]
    flags = (C[i, 7] >> 32) & 0xFF
    acct = C[i, 6] & M32
    inst = (C[i, 6] >> 32) & M32
    by_acct = (flags & MC_BY_ACCOUNT) != 0 and kind == EV_CANCELED
    by_inst = (flags & MC_BY_INSTRUMENT) != 0
    ii = -1
    if by_inst:
        if inst < IMAP.shape[0]:
            ii = IMAP[inst]
        if ii < 0:
            return _emit_reject(E, n, S, C, i, cseq, R_UNKNOWN_INSTRUMENT)
    if (flags & ~(MC_BY_ACCOUNT | MC_BY_INSTRUMENT)) != 0:
        return _emit_reject(E, n, S, C, i, cseq, R_INVALID_INSTR)
    reason = R_MASS
    cmd_kind = CMD_MASS
    if kind == EV_EXPIRED:
        reason = R_SESSION_END
        cmd_kind = CMD_END
    for o in range(S[S_HWM]):
        st = P[o, O_STATE]
        if st != ST_RESTING and st != ST_STOP:
            continue
        if by_acct and P[o, O_ACCT] != acct:
            continue
        if by_inst and P[o, O_INST] != ii:
            continue
        if kind == EV_EXPIRED and P[o, O_TIF] != TIF_DAY:
            continue
        n = _kill_live(E, n, S, P, H, L, BM, I, o, cseq, ts, kind, reason, cmd_kind)
    return n


@njit(cache=True, nogil=True, _nrt=False)
def process(C, start, E, S, P, H, L, BM, I, IMAP, TQ):
    """Apply command rows ``C[start:]`` (int64 ``[m, 8]``) in order, writing events from ``E[0]``.

    Before each command the worst-case number of events it can emit (:func:`event_bound`)
    must fit in ``E``; if not, the kernel stops *before* that command.

    Returns
    -------
    (next, n, need)
        Index of the first command not applied (``C.shape[0]`` when all were), event rows
        written, and the bound of command ``next`` (0 when all were applied). The caller takes
        the events, grows ``E`` to at least ``need`` rows if needed, and calls again.
    """
    n = 0
    cap = E.shape[0]
    m = C.shape[0]
    hbase = H.ctypes.data
    pbase = P.ctypes.data
    shift = S[S_HSHIFT]
    for i in range(start, m):
        # software pipeline over the batch: fetch the hash slot of command i + 8, and the
        # pool row of command i + 4 when its slot (fetched 4 commands ago) already holds it
        if i + _PF_HASH < m:
            _prefetch(hbase + 16 * _home(C[i + _PF_HASH, 1], shift))
        if i + _PF_ROW < m:
            j = _home(C[i + _PF_ROW, 1], shift)
            if H[j, 1] != 0 and H[j, 0] == C[i + _PF_ROW, 1]:
                r = pbase + (H[j, 1] - 1) * (O_NF * 8)
                _prefetch(r)
                _prefetch(r + 64)
        if i + _PF_NEAR < m:
            # its queue neighbours (cancel / replace unlink them), or the tail of the level a
            # new limit order joins
            k = C[i + _PF_NEAR, 7] & 0xFF
            if k == CMD_CANCEL or k == CMD_REPLACE:
                j = _home(C[i + _PF_NEAR, 1], shift)
                if H[j, 1] != 0 and H[j, 0] == C[i + _PF_NEAR, 1]:
                    r = H[j, 1] - 1
                    if P[r, O_PREV] >= 0:
                        _prefetch(pbase + P[r, O_PREV] * (O_NF * 8))
                    if P[r, O_NEXT] >= 0:
                        _prefetch(pbase + P[r, O_NEXT] * (O_NF * 8))
            elif k == CMD_SUBMIT:
                inst = (C[i + _PF_NEAR, 6] >> 32) & M32
                px = C[i + _PF_NEAR, 2]
                if inst < IMAP.shape[0] and IMAP[inst] >= 0 and px > 0:
                    ii = IMAP[inst]
                    lv = (px - I[ii, I_MINPX]) // I[ii, I_TICK]
                    if 0 <= lv < I[ii, I_NLEV]:
                        t = L[I[ii, I_LOFF] + lv, L_TAIL]
                        if t >= 0:
                            _prefetch(pbase + t * (O_NF * 8))
        kind = C[i, 7] & 0xFF
        need = event_bound(S, kind, C[i, 3])
        if n + need > cap:
            return i, n, need
        S[S_CMDSEQ] += 1
        cseq = S[S_CMDSEQ]
        if kind == CMD_SUBMIT:
            n = _submit(C, i, E, n, S, P, H, L, BM, I, IMAP, TQ, cseq)
        elif kind == CMD_CANCEL:
            n = _cancel(C, i, E, n, S, P, H, L, BM, I, cseq)
        elif kind == CMD_REPLACE:
            n = _replace(C, i, E, n, S, P, H, L, BM, I, TQ, cseq)
        elif kind == CMD_MASS:
            n = _mass(C, i, E, n, S, P, H, L, BM, I, IMAP, cseq, EV_CANCELED)
        elif kind == CMD_END:
            n = _mass(C, i, E, n, S, P, H, L, BM, I, IMAP, cseq, EV_EXPIRED)
        else:
            n = _emit_reject(E, n, S, C, i, cseq, R_INVALID_COMMAND)
    return C.shape[0], n, 0


# ----------------------------------------------------------------------------------- queries


@njit(cache=True, nogil=True, _nrt=False)
def depth(P, L, BM, I, ii, s, nmax, out):
    """Fill ``out[:, 0:3]`` with (price, displayed qty, count) of the best ``nmax`` levels."""
    woff = I[ii, I_WOFF]
    nlev = I[ii, I_NLEV]
    k = I[ii, I_BID] if s == 0 else I[ii, I_ASK]
    c = 0
    while k >= 0 and c < nmax:
        g = I[ii, I_LOFF] + k
        out[c, 0] = I[ii, I_MINPX] + k * I[ii, I_TICK]
        out[c, 1] = L[g, L_QTY]
        out[c, 2] = L[g, L_CNT]
        c += 1
        if s == 0:
            k = prev_set(BM, 0, woff, k)
        else:
            k = next_set(BM, 1, woff, k, nlev)
    return c


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _mix(h, v):
    h = (h ^ np.uint64(v)) * _MUL
    return h ^ (h >> np.uint64(29))


@njit(cache=True, nogil=True, _nrt=False)
def state_hash(P, L, BM, I, S):
    """64-bit hash of the logical engine state (independent of pool row placement).

    Covers, per instrument: every level from the best outward with every order in FIFO order
    (id, account, type, tif, flags, stp, prices, displayed / hidden / peak / traded / total
    quantity, entry timestamp), the pending stops in arrival order, the last trade price; and
    the event, command and trade sequence numbers.
    """
    h = np.uint64(0xCBF29CE484222325)
    for ii in range(I.shape[0]):
        h = _mix(h, I[ii, I_ID])
        h = _mix(h, I[ii, I_LAST])
        woff = I[ii, I_WOFF]
        nlev = I[ii, I_NLEV]
        for s in range(2):
            k = I[ii, I_BID] if s == 0 else I[ii, I_ASK]
            while k >= 0:
                g = I[ii, I_LOFF] + k
                h = _mix(h, k)
                h = _mix(h, L[g, L_QTY])
                h = _mix(h, L[g, L_CNT])
                o = L[g, L_HEAD]
                while o >= 0:
                    for f in (O_ID, O_ACCT, O_SIDE, O_TYPE, O_TIF, O_FLAGS, O_STP, O_PX,
                              O_DISP, O_HID, O_PEAK, O_CUM, O_INIT, O_TS):
                        h = _mix(h, P[o, f])
                    o = P[o, O_NEXT]
                if s == 0:
                    k = prev_set(BM, 0, woff, k)
                else:
                    k = next_set(BM, 1, woff, k, nlev)
            h = _mix(h, 0x5A5A)
        o = I[ii, I_SHEAD]
        while o >= 0:
            for f in (O_ID, O_ACCT, O_SIDE, O_TYPE, O_TIF, O_STP, O_PX, O_STOP, O_DISP,
                      O_CUM, O_INIT, O_TS):
                h = _mix(h, P[o, f])
            o = P[o, O_NEXT]
    h = _mix(h, S[S_EVSEQ])
    h = _mix(h, S[S_CMDSEQ])
    h = _mix(h, S[S_TRADE])
    h = _mix(h, S[S_LIVE])
    return h


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _qty_ok(P, o):
    """Quantities of row ``o`` within the limits (so no sum over orders can overflow)."""
    d = P[o, O_DISP]
    h = P[o, O_HID]
    pk = P[o, O_PEAK]
    if d < 0 or h < 0 or P[o, O_CUM] < 0 or pk < 0:
        return False
    if P[o, O_INIT] > MAX_ORDER_QTY or d > MAX_ORDER_QTY or h > MAX_ORDER_QTY:
        return False
    if d + h + P[o, O_CUM] > P[o, O_INIT]:
        return False
    return h == 0 or (pk > 0 and h <= pk * MAX_ICEBERG_SLICES)


@njit(cache=True, nogil=True, _nrt=False)
def check_book(P, L, BM, I, S):
    """Structural self-check; returns 0 when consistent, else an error code (tests use it).

    1 crossed book, 2 level quantity/count mismatch, 3 wrong side on a level, 4 bitmap / best
    pointer mismatch, 5 live order count mismatch, 6 bad linked list, 7 empty displayed qty,
    8 FIFO broken (arrival ranks ``O_PRIO`` decrease along a level; command timestamps are
    the sender's and may go backwards, so they are not checked), 9 iceberg slice count wrong,
    10 quantity out of range (an order's quantities negative or above ``MAX_ORDER_QTY``, an
    iceberg with more than ``MAX_ICEBERG_SLICES`` refreshes, a level total that overflowed),
    11 pending-stop quantity total (``S_STOPQ``) wrong.
    """
    nlive = 0
    slices = 0
    stopq = 0
    for ii in range(I.shape[0]):
        bb = I[ii, I_BID]
        ba = I[ii, I_ASK]
        if bb >= 0 and ba >= 0 and bb >= ba:
            return 1
        woff = I[ii, I_WOFF]
        hi_bid = -1
        lo_ask = -1
        for k in range(I[ii, I_NLEV]):
            g = I[ii, I_LOFF] + k
            o = L[g, L_HEAD]
            q = 0
            c = 0
            prev = -1
            side = 0
            while o >= 0:
                if P[o, O_PREV] != prev or P[o, O_STATE] != ST_RESTING or P[o, O_LVL] != g:
                    return 6
                if side == 0:
                    side = P[o, O_SIDE]
                elif side != P[o, O_SIDE]:
                    return 3
                if P[o, O_DISP] <= 0:
                    return 7
                if not _qty_ok(P, o):
                    return 10
                if prev >= 0 and P[prev, O_PRIO] > P[o, O_PRIO]:
                    return 8
                slices += _slices(P, o)
                q += P[o, O_DISP]
                c += 1
                prev = o
                o = P[o, O_NEXT]
            if L[g, L_TAIL] != prev:
                return 6
            if L[g, L_QTY] < 0 or L[g, L_CNT] < 0:
                return 10
            if q != L[g, L_QTY] or c != L[g, L_CNT]:
                return 2
            nlive += c
            bitb = (BM[0, woff + (k >> 6)] >> np.uint64(k & 63)) & _U1
            bita = (BM[1, woff + (k >> 6)] >> np.uint64(k & 63)) & _U1
            if (bitb == _U1) != (c > 0 and side == SIDE_BUY):
                return 4
            if (bita == _U1) != (c > 0 and side == SIDE_SELL):
                return 4
            if c > 0 and side == SIDE_BUY:
                hi_bid = k
            if c > 0 and side == SIDE_SELL and lo_ask < 0:
                lo_ask = k
        if hi_bid != bb or lo_ask != ba:
            return 4
        o = I[ii, I_SHEAD]
        while o >= 0:
            if P[o, O_DISP] <= 0 or not _qty_ok(P, o):
                return 10
            nlive += 1
            stopq += P[o, O_DISP]
            o = P[o, O_NEXT]
    if nlive != S[S_LIVE]:
        return 5
    if slices != S[S_SLICES]:
        return 9
    if stopq != S[S_STOPQ]:
        return 11
    return 0
