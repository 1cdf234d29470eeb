"""Compiled event loop of the backtester for the Avellaneda–Stoikov market maker.

The same machine as :class:`host.trading.backtest.engine.Backtester` driving
:class:`host.trading.backtest.exchange.SimExchange` and
:class:`host.trading.strategy.mm.AvellanedaStoikov`, written as numba kernels over integer
arrays: the replayed L3 book (an open-addressing order table, sorted price levels), the own
orders and their exact FIFO queue position, the scheduler (a binary heap of ``(time, seq)``
items with the same kinds and tie order as the Python heap), the strategy context, the
strategy's quote logic and the risk layer -- the risk engine's own compiled kernels
(:func:`host.trading.risk.checks.check_batch`, ``apply_events``, ``apply_marks``) on the risk
engine's own state arrays, called in the order the Python loop calls them. Every step mirrors
a line of the Python path, so both paths give the same fills, orders, quotes and metrics
(``tests/host/trading/test_backtest_fast.py`` compares them field by field).

Everything here is integer (Price(4) prices, ns timestamps, shares) except the strategy's
model (volatility, reservation price), which does the Python strategy's float arithmetic in
the same order (no ``fastmath``).

State lives in arrays so that :func:`run_chunk` can stop at a message boundary (progress
calls, or a buffer that needs room) and resume: ``SI`` holds the int64 scalars (``I_*``
indices below), ``F`` the two float scalars of the strategy. See ``docs/backtest.md``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from host.trading.risk import checks as K

# ---------------------------------------------------------------- scalar state (SI)
(I_SEQ, I_TS, I_FMID, I_EVSEQ, I_TRADE, I_UNKNOWN, I_DUP, I_HIDDEN, I_PASSIVE, I_TAKER,
 I_CROSS, I_AHEAD_BAD, I_QUOTED, I_NRES, I_OWNRANK, I_RESTRANK, I_NOW, I_HN, I_HSEQ, I_ESN,
 I_ESPEND, I_NF, I_NO, I_NQ, I_NL, I_FWD, I_RFILLS, I_POS, I_NEXTID, I_LASTTS, I_OID_B,
 I_OID_S, I_PX_B, I_PX_S, I_T_B, I_T_S, I_SEEN_B, I_SEEN_A, I_DIRTY, I_DIRTY_B, I_DIRTY_A,
 I_LAST_B, I_LAST_BS, I_LAST_A, I_LAST_AS, I_LAST_OK, I_NOUT, I_ERR, I_NEXT, I_DONE,
 I_CASH, I_CFILLS, I_NDEN, I_LH_B, I_LH_S, I_LT_B, I_LT_S, I_SEEN_OK, I_OWNCUR, I_OLIVE) = range(60)
I_NF_ = 64
F_VAR, F_LASTMID = 0, 1

# ---------------------------------------------------------------- parameters (Q int, R float)
(Q_LOC, Q_MD, Q_ENTRY, Q_RESP, Q_DEPTH, Q_FEE_M, Q_FEE_T, Q_ACCT, Q_SDEPTH, Q_OQTY, Q_MAXPOS,
 Q_TICK, Q_VOLNS, Q_REFRESH, Q_MINREQ, Q_W7_BUY, Q_W7_SELL, Q_NMSG, Q_STEP, Q_MAXRES) = range(20)
(R_GAMMA, R_K, R_TAU, R_MINSIG2, R_ALPHA, R_OFI, R_MINHALF) = range(7)

# ---------------------------------------------------------------- own orders (OO rows)
(O_USED, O_OID, O_ACCT, O_LOC, O_SIDE, O_PX, O_QTY, O_LEAVES, O_CUM, O_SEQ, O_AHEAD, O_TIF,
 O_OT, O_FLAGS, O_RESTING, O_OWNRANK, O_RESTRANK) = range(17)
O_NF = 17
# strategy context orders (CO rows, one per side: BUY row 0, SELL row 1)
C_EXISTS, C_OID, C_INST, C_SIDE, C_PX, C_QTY, C_LEAVES, C_ACK, C_CANCEL = range(9)
C_NF = 9

# heap rows: time, seq, kind, payload (8 words)
HP_NF = 11

# error codes (SI[I_ERR]); 0 = fine
ERR_ROOM = 1  # a buffer overflowed inside one message (the caller falls back)
ERR_OWN = 2  # more live own orders than the table holds
ERR_HELD = 3  # the risk layer held a stop (not modeled here)
ERR_TIMER = 4  # a timer item (the market maker sets none)
ERR_TRIPPED = 5  # a circuit breaker tripped (handled by Python code in the risk engine)

# status of run_chunk
ST_DONE, ST_CHUNK, ST_ROOM, ST_ERROR = 0, 1, 2, 3

BUY, SELL = 1, 2
SUBMIT, CANCEL, REPLACE, MASS = 1, 2, 3, 4
EV_ACC, EV_REJ, EV_FILL, EV_CXL, EV_REPL = 1, 2, 3, 4, 5
OT_LIMIT, OT_MARKET = 1, 2
TIF_IOC, TIF_FOK = 3, 4
# matching Reason codes used by the venue
RS_UNKNOWN_INSTRUMENT, RS_UNKNOWN_ORDER, RS_DUPLICATE_ORDER_ID, RS_INVALID_QUANTITY = 1, 2, 3, 4
RS_INVALID_PRICE, RS_INVALID_SIDE, RS_INVALID_ORDER_TYPE = 5, 8, 9
SYNC_ID = (1 << 63) - 1
_MIX = np.int64(-7046029254386353131)


def _consts():
    """Check the codes above against the Python enums (the tests call it)."""
    from host.trading.matching import EventFlag, Reason
    from host.trading.matching import TimeInForce as T
    from hw import bbo_record as B

    assert (B.FLAG_BID_VALID, B.FLAG_ASK_VALID) == (F_BIDV, F_ASKV)
    assert (int(EventFlag.MAKER), int(EventFlag.PRIORITY_KEPT)) == (EF_MAKER, EF_KEPT)
    assert (int(T.IOC), int(T.FOK)) == (TIF_IOC, TIF_FOK)
    want = {"UNKNOWN_INSTRUMENT": RS_UNKNOWN_INSTRUMENT, "UNKNOWN_ORDER": RS_UNKNOWN_ORDER,
            "DUPLICATE_ORDER_ID": RS_DUPLICATE_ORDER_ID, "INVALID_QUANTITY": RS_INVALID_QUANTITY,
            "INVALID_PRICE": RS_INVALID_PRICE, "INVALID_SIDE": RS_INVALID_SIDE,
            "INVALID_ORDER_TYPE": RS_INVALID_ORDER_TYPE, "IOC_REMAINDER": RS_IOC_REM,
            "MARKET_REMAINDER": RS_MKT_REM, "CANCELED_BY_USER": RS_USER,
            "MASS_CANCEL": RS_MASS, "POST_ONLY_WOULD_TAKE": RS_POST_ONLY,
            "INVALID_COMMAND": RS_INVALID_CMD, "QTY_NOT_ABOVE_FILLED": RS_QTY_FILLED}
    for k, v in want.items():
        assert int(getattr(Reason, k)) == v, k


RS_IOC_REM, RS_MKT_REM, RS_USER, RS_MASS = 34, 36, 32, 33
RS_POST_ONLY, RS_INVALID_CMD, RS_QTY_FILLED = 14, 18, 17
F_BIDV, F_ASKV = 2, 4  # hw.bbo_record flags
EF_MAKER, EF_KEPT = 4, 8  # EventFlag


_JIT = dict(cache=True, nogil=True, boundscheck=False, _nrt=False)


# ---------------------------------------------------------------- order table (L3 book)


@njit(inline="always", **_JIT)
def _home(key, mask):
    h = key * _MIX
    return (h ^ (h >> 31)) & mask


@njit(**_JIT)
def ob_find(OK, OU, key):
    """Slot of visible order ``key`` or -1."""
    mask = OK.shape[0] - 1
    j = _home(key, mask)
    while OU[j]:
        if OK[j] == key:
            return j
        j = (j + 1) & mask
    return -1


@njit(**_JIT)
def ob_insert(OK, OU, OV, SI, key, side, price, shares, seq):
    SI[I_OLIVE] += 1
    mask = OK.shape[0] - 1
    j = _home(key, mask)
    while OU[j]:
        j = (j + 1) & mask
    OU[j] = 1
    OK[j] = key
    OV[j, 0] = side
    OV[j, 1] = price
    OV[j, 2] = shares
    OV[j, 3] = seq


@njit(**_JIT)
def ob_delete(OK, OU, OV, SI, j):
    """Remove slot ``j`` (backward-shift deletion, no tombstones)."""
    SI[I_OLIVE] -= 1
    mask = OK.shape[0] - 1
    OU[j] = 0
    k = j
    while True:
        k = (k + 1) & mask
        if not OU[k]:
            return
        h = _home(OK[k], mask)
        if j <= k:
            stay = j < h <= k
        else:
            stay = h > j or h <= k
        if stay:
            continue
        OK[j] = OK[k]
        OU[j] = 1
        for f in range(4):
            OV[j, f] = OV[k, f]
        OU[k] = 0
        j = k


@njit(**_JIT)
def ob_rehash(OK, OU, OV, NK, NU, NV):
    """Move every visible order of one table into a larger, empty one."""
    mask = NK.shape[0] - 1
    for j in range(OK.shape[0]):
        if OU[j]:
            k = _home(OK[j], mask)
            while NU[k]:
                k = (k + 1) & mask
            NU[k] = 1
            NK[k] = OK[j]
            for f in range(4):
                NV[k, f] = OV[j, f]


# ---------------------------------------------------------------- price levels
# Per side s (0 = bid, 1 = ask) the keys LK[s, h:t] ascend with the best level last (key =
# price for bids, -price for asks); LS = displayed shares, LC = visible orders. h and t
# (SI[I_LH_B + s], SI[I_LT_B + s]) float in a buffer with room on both ends, so that a level
# comes or goes by moving the shorter part: the levels near the best and the deep ones are
# both cheap (a deep book has thousands of levels).


@njit(**_JIT)
def lv_search(LK, s, lo, hi, key):
    while lo < hi:
        m = (lo + hi) >> 1
        if LK[s, m] < key:
            lo = m + 1
        else:
            hi = m
    return lo


@njit(**_JIT)
def lv_recenter(LK, LS, LC, SI, s):
    h = SI[I_LH_B + s]
    t = SI[I_LT_B + s]
    n = t - h
    nh = (LK.shape[1] - n) // 2
    if nh < h:
        for x in range(n):
            LK[s, nh + x] = LK[s, h + x]
            LS[s, nh + x] = LS[s, h + x]
            LC[s, nh + x] = LC[s, h + x]
    elif nh > h:
        for x in range(n - 1, -1, -1):
            LK[s, nh + x] = LK[s, h + x]
            LS[s, nh + x] = LS[s, h + x]
            LC[s, nh + x] = LC[s, h + x]
    SI[I_LH_B + s] = nh
    SI[I_LT_B + s] = nh + n


@njit(**_JIT)
def lv_add(LK, LS, LC, SI, side, price, shares):
    s = side - 1
    key = price if side == BUY else -price
    h = SI[I_LH_B + s]
    t = SI[I_LT_B + s]
    j = lv_search(LK, s, h, t, key)
    if j < t and LK[s, j] == key:
        LS[s, j] += shares
        LC[s, j] += 1
        return
    if j - h < t - j:
        if h == 0:
            lv_recenter(LK, LS, LC, SI, s)
            lv_add(LK, LS, LC, SI, side, price, shares)
            return
        for x in range(h, j):
            LK[s, x - 1] = LK[s, x]
            LS[s, x - 1] = LS[s, x]
            LC[s, x - 1] = LC[s, x]
        SI[I_LH_B + s] = h - 1
        j -= 1
    else:
        if t == LK.shape[1]:
            lv_recenter(LK, LS, LC, SI, s)
            lv_add(LK, LS, LC, SI, side, price, shares)
            return
        for x in range(t, j, -1):
            LK[s, x] = LK[s, x - 1]
            LS[s, x] = LS[s, x - 1]
            LC[s, x] = LC[s, x - 1]
        SI[I_LT_B + s] = t + 1
    LK[s, j] = key
    LS[s, j] = shares
    LC[s, j] = 1


@njit(**_JIT)
def lv_reduce(LK, LS, LC, SI, side, price, shares, remove):
    s = side - 1
    key = price if side == BUY else -price
    h = SI[I_LH_B + s]
    t = SI[I_LT_B + s]
    j = lv_search(LK, s, h, t, key)
    LS[s, j] -= shares
    if remove:
        LC[s, j] -= 1
        if LC[s, j] == 0:
            if j - h < t - 1 - j:
                for x in range(j, h, -1):
                    LK[s, x] = LK[s, x - 1]
                    LS[s, x] = LS[s, x - 1]
                    LC[s, x] = LC[s, x - 1]
                SI[I_LH_B + s] = h + 1
            else:
                for x in range(j, t - 1):
                    LK[s, x] = LK[s, x + 1]
                    LS[s, x] = LS[s, x + 1]
                    LC[s, x] = LC[s, x + 1]
                SI[I_LT_B + s] = t - 1


@njit(**_JIT)
def lv_shares(LK, LS, SI, side, price):
    """Displayed shares at ``price`` on ``side`` (0 when no level)."""
    s = side - 1
    key = price if side == BUY else -price
    t = SI[I_LT_B + s]
    j = lv_search(LK, s, SI[I_LH_B + s], t, key)
    if j < t and LK[s, j] == key:
        return LS[s, j]
    return 0


@njit(inline="always", **_JIT)
def lv_n(SI, s):
    return SI[I_LT_B + s] - SI[I_LH_B + s]


@njit(inline="always", **_JIT)
def best_px(LK, SI, side):
    """Best price of ``side`` (0 when empty)."""
    s = side - 1
    t = SI[I_LT_B + s]
    if t == SI[I_LH_B + s]:
        return 0
    return LK[s, t - 1] if side == BUY else -LK[s, t - 1]


@njit(inline="always", **_JIT)
def mid2(LK, SI):
    tb = SI[I_LT_B]
    ta = SI[I_LT_S]
    if tb != SI[I_LH_B] and ta != SI[I_LH_S]:
        return LK[0, tb - 1] - LK[1, ta - 1]
    return 0


# ---------------------------------------------------------------- venue events and fills


@njit(**_JIT)
def emit_event(ES, SI, ts, kind, oid, price, last_px, last_qty, leaves, cum, qty, acct, loc,
               side, otype, tif, flags, reason, cmd_kind, trade_id):
    n = SI[I_ESN]
    if n >= ES.shape[0]:
        SI[I_ERR] = ERR_ROOM
        return
    SI[I_EVSEQ] += 1
    ES[n, 0] = SI[I_EVSEQ]
    ES[n, 1] = 0
    ES[n, 2] = ts
    ES[n, 3] = oid
    ES[n, 4] = 0
    ES[n, 5] = trade_id
    ES[n, 6] = price
    ES[n, 7] = last_px
    ES[n, 8] = last_qty
    ES[n, 9] = leaves
    ES[n, 10] = cum
    ES[n, 11] = qty
    ES[n, 12] = acct & 0xFFFFFFFF
    ES[n, 13] = ((loc & 0xFFFFFFFF) | ((kind & 0xFF) << 32) | ((reason & 0xFF) << 40)
                 | ((side & 0xFF) << 48) | ((otype & 0xFF) << 56))
    ES[n, 14] = (tif & 0xFF) | ((flags & 0xFF) << 8) | ((cmd_kind & 0xFF) << 16)
    SI[I_ESN] = n + 1


@njit(**_JIT)
def own_event(ES, SI, OO, o, ts, kind, last_px, last_qty, reason, cmd_kind, flags, trade_id):
    emit_event(ES, SI, ts, kind, OO[o, O_OID], OO[o, O_PX], last_px, last_qty, OO[o, O_LEAVES],
               OO[o, O_CUM], OO[o, O_QTY], OO[o, O_ACCT], OO[o, O_LOC], OO[o, O_SIDE],
               OO[o, O_OT], OO[o, O_TIF], flags, reason, cmd_kind, trade_id)


@njit(**_JIT)
def own_fill(ES, FO, SI, Q, OO, o, px, q, maker):
    OO[o, O_LEAVES] -= q
    OO[o, O_CUM] += q
    fee = q * (Q[Q_FEE_M] if maker else Q[Q_FEE_T])
    SI[I_TRADE] += 1
    n = SI[I_NF]
    if n >= FO.shape[0]:
        SI[I_ERR] = ERR_ROOM
    else:
        FO[n, 0] = SI[I_TS]
        FO[n, 1] = OO[o, O_OID]
        FO[n, 2] = OO[o, O_LOC]
        FO[n, 3] = OO[o, O_SIDE]
        FO[n, 4] = 1 if maker else 0
        FO[n, 5] = px
        FO[n, 6] = q
        FO[n, 7] = fee
        FO[n, 8] = OO[o, O_LEAVES]
        FO[n, 9] = SI[I_FMID]
        SI[I_NF] = n + 1
    own_event(ES, SI, OO, o, SI[I_TS], EV_FILL, px, q, 0, 0, EF_MAKER if maker else 0,
              SI[I_TRADE])
    if OO[o, O_LEAVES] == 0:
        OO[o, O_USED] = 0


@njit(**_JIT)
def reject(ES, SI, oid, acct, loc, side, qty, price, reason, cmd_kind, ts):
    emit_event(ES, SI, ts, EV_REJ, oid, price, 0, 0, 0, 0, qty, acct, loc, side, 0, 0, 0,
               reason, cmd_kind, 0)


# ---------------------------------------------------------------- own-order queue logic


@njit(inline="always", **_JIT)
def _prio_less(OO, a, b, side):
    """Own order ``a`` before ``b`` in priority (price, then sequence)."""
    ka = -OO[a, O_PX] if side == BUY else OO[a, O_PX]
    kb = -OO[b, O_PX] if side == BUY else OO[b, O_PX]
    if ka != kb:
        return ka < kb
    return OO[a, O_SEQ] < OO[b, O_SEQ]


@njit(**_JIT)
def sorted_resting(OO, RL, RN, side, out):
    """Resting own orders of ``side`` by priority, ties in list order (a stable sort)."""
    s = side - 1
    n = RN[s]
    for x in range(n):
        v = RL[s, x]
        y = x
        while y > 0 and _prio_less(OO, v, out[y - 1], side):
            out[y] = out[y - 1]
            y -= 1
        out[y] = v
    return n


@njit(**_JIT)
def sweep(OO, RL, RN, SI, side):
    s = side - 1
    n = RN[s]
    m = 0
    for x in range(n):
        o = RL[s, x]
        if OO[o, O_LEAVES] > 0:
            RL[s, m] = o
            m += 1
        else:
            OO[o, O_RESTING] = 0
    RN[s] = m
    SI[I_NRES] -= n - m


@njit(**_JIT)
def queue(ES, FO, SI, Q, OO, RL, RN, TMP, side, px, oseq, n, execd):
    """Shares ``n`` left a visible order at ``px`` of ``side`` (``execd``: by execution)."""
    s = side - 1
    budget = 0
    for x in range(RN[s]):
        o = RL[s, x]
        op = OO[o, O_PX]
        if op == px and oseq < OO[o, O_SEQ]:
            a = OO[o, O_AHEAD]
            OO[o, O_AHEAD] = a - n if a > n else 0
        elif execd and (op == px or (op > px if side == BUY else op < px)):
            budget = n
    if budget:
        m = sorted_resting(OO, RL, RN, side, TMP)
        for x in range(m):
            o = TMP[x]
            op = OO[o, O_PX]
            if op == px and oseq < OO[o, O_SEQ]:
                continue
            if not (op == px or (op > px if side == BUY else op < px)):
                continue
            if OO[o, O_AHEAD]:
                SI[I_AHEAD_BAD] += 1
                OO[o, O_AHEAD] = 0
            q = min(budget, OO[o, O_LEAVES])
            own_fill(ES, FO, SI, Q, OO, o, op, q, True)
            SI[I_PASSIVE] += 1
            budget -= q
            if not budget:
                break
        sweep(OO, RL, RN, SI, side)


@njit(**_JIT)
def cross(ES, FO, SI, Q, OO, RL, RN, TMP, side, price, shares):
    """A visible add on ``side`` at ``price``: fill the own orders of the other side it
    crosses; returns the shares to add (unchanged: no impact)."""
    other = SELL if side == BUY else BUY
    so = other - 1
    if RN[so] == 0:
        return shares
    hit = False
    for x in range(RN[so]):
        op = OO[RL[so, x], O_PX]
        if (price <= op) if other == BUY else (price >= op):
            hit = True
            break
    if not hit:
        return shares
    budget = shares
    m = sorted_resting(OO, RL, RN, other, TMP)
    for x in range(m):
        o = TMP[x]
        op = OO[o, O_PX]
        crosses = (price <= op) if other == BUY else (price >= op)
        if not crosses or not budget:
            continue
        q = min(budget, OO[o, O_LEAVES])
        own_fill(ES, FO, SI, Q, OO, o, op, q, True)
        SI[I_CROSS] += 1
        budget -= q
    sweep(OO, RL, RN, SI, other)
    return shares


# ---------------------------------------------------------------- market messages


@njit(**_JIT)
def apply_msg(OK, OU, OV, LK, LS, LC, ES, FO, SI, Q, OO, RL, RN, TMP, index, mt, ts, ref, nref,
              side_b, shares, price, EXEC):
    """One market message of the traded locate (``SimExchange.apply``); returns the executed
    shares of an ``E``/``C``/``P`` (0 otherwise). ``EXEC[0:2]`` = side, price of the last
    execution (``SimExchange.last_exec``)."""
    seq = 2 * index
    SI[I_SEQ] = seq
    SI[I_TS] = ts
    if SI[I_NRES]:
        SI[I_FMID] = mid2(LK, SI)
    if mt == 65 or mt == 70:
        if side_b == 66:
            s = BUY
        elif side_b == 83:
            s = SELL
        else:
            return 0
        if ob_find(OK, OU, ref) >= 0:
            SI[I_DUP] += 1
            return 0
        if SI[I_NRES]:
            shares = cross(ES, FO, SI, Q, OO, RL, RN, TMP, s, price, shares)
        ob_insert(OK, OU, OV, SI, ref, s, price, shares, seq)
        lv_add(LK, LS, LC, SI, s, price, shares)
        return 0
    if mt == 80:
        SI[I_HIDDEN] += 1
        return shares
    j = ob_find(OK, OU, ref)
    if j < 0:
        if mt == 69 or mt == 67 or mt == 88 or mt == 68 or mt == 85:
            SI[I_UNKNOWN] += 1
        return 0
    s = OV[j, 0]
    px = OV[j, 1]
    left = OV[j, 2]
    oseq = OV[j, 3]
    if mt == 68 or mt == 85:
        n = left
    else:
        n = min(shares, left)
    remove = n >= left
    if remove:
        ob_delete(OK, OU, OV, SI, j)
    else:
        OV[j, 2] = left - n
    lv_reduce(LK, LS, LC, SI, s, px, n, remove)
    execd = mt == 69 or mt == 67
    if execd:
        EXEC[0] = s
        EXEC[1] = price if mt == 67 else px
    if SI[I_NRES] and RN[s - 1]:
        queue(ES, FO, SI, Q, OO, RL, RN, TMP, s, px, oseq, n, execd)
    if mt == 85:
        if ob_find(OK, OU, nref) >= 0:
            SI[I_DUP] += 1
        else:
            sh = shares
            if SI[I_NRES]:
                sh = cross(ES, FO, SI, Q, OO, RL, RN, TMP, s, price, sh)
            ob_insert(OK, OU, OV, SI, nref, s, price, sh, seq)
            lv_add(LK, LS, LC, SI, s, price, sh)
    return n if execd else 0


# ---------------------------------------------------------------- own commands at the venue


@njit(**_JIT)
def own_find(OO, oid):
    for o in range(OO.shape[0]):
        if OO[o, O_USED] and OO[o, O_OID] == oid:
            return o
    return -1


@njit(**_JIT)
def own_alloc(OO, SI):
    """A free own-order slot, round robin (a dead order's row stays readable a while)."""
    cap = OO.shape[0]
    for x in range(cap):
        o = (SI[I_OWNCUR] + x) % cap
        if not OO[o, O_USED] and not OO[o, O_RESTING]:
            SI[I_OWNCUR] = (o + 1) % cap
            return o
    SI[I_ERR] = ERR_OWN
    return -1


@njit(**_JIT)
def take(LK, LS, ES, FO, SI, Q, OO, o):
    side = OO[o, O_SIDE]
    if side == BUY:  # walk the offers, best (lowest) first
        s = 1
    else:
        s = 0
    for x in range(SI[I_LT_B + s] - 1, SI[I_LH_B + s] - 1, -1):
        p = LK[s, x] if s == 0 else -LK[s, x]
        if OO[o, O_OT] == OT_LIMIT and (p > OO[o, O_PX] if side == BUY else p < OO[o, O_PX]):
            break
        q = min(LS[s, x], OO[o, O_LEAVES])
        if q > 0:
            own_fill(ES, FO, SI, Q, OO, o, p, q, False)
            SI[I_TAKER] += 1
        if OO[o, O_LEAVES] == 0:
            break


@njit(**_JIT)
def rest(LK, LS, SI, OO, RL, RN, o):
    OO[o, O_SEQ] = SI[I_SEQ] + 1
    OO[o, O_AHEAD] = lv_shares(LK, LS, SI, OO[o, O_SIDE], OO[o, O_PX])
    OO[o, O_RESTING] = 1
    s = OO[o, O_SIDE] - 1
    RL[s, RN[s]] = o
    RN[s] += 1
    SI[I_RESTRANK] += 1
    OO[o, O_RESTRANK] = SI[I_RESTRANK]
    SI[I_NRES] += 1


@njit(**_JIT)
def unrest(SI, OO, RL, RN, o):
    if OO[o, O_RESTING]:
        s = OO[o, O_SIDE] - 1
        m = 0
        for x in range(RN[s]):
            if RL[s, x] != o:
                RL[s, m] = RL[s, x]
                m += 1
        RN[s] = m
        SI[I_NRES] -= 1
        OO[o, O_RESTING] = 0


@njit(**_JIT)
def own_cancel(ES, SI, OO, RL, RN, o, ts, reason):
    q = OO[o, O_LEAVES]
    unrest(SI, OO, RL, RN, o)
    OO[o, O_LEAVES] = 0
    OO[o, O_USED] = 0
    own_event(ES, SI, OO, o, ts, EV_CXL, 0, q, reason, 0, 0, 0)


@njit(**_JIT)
def submit(LK, LS, ES, FO, SI, Q, OO, RL, RN, oid, acct, loc, side, qty, price, otype, tif,
           flags, ts):
    SI[I_TS] = ts
    bad = 0
    if loc != Q[Q_LOC]:
        bad = RS_UNKNOWN_INSTRUMENT
    elif own_find(OO, oid) >= 0:
        bad = RS_DUPLICATE_ORDER_ID
    elif qty <= 0:
        bad = RS_INVALID_QUANTITY
    elif side != BUY and side != SELL:
        bad = RS_INVALID_SIDE
    elif otype == OT_LIMIT and price <= 0:
        bad = RS_INVALID_PRICE
    elif otype != OT_LIMIT and otype != OT_MARKET:
        bad = RS_INVALID_ORDER_TYPE
    if bad:
        reject(ES, SI, oid, acct, loc, side, qty, price, bad, SUBMIT, ts)
        return
    SI[I_FMID] = mid2(LK, SI)
    other = SELL if side == BUY else BUY
    bp = best_px(LK, SI, other)
    nonempty = lv_n(SI, other - 1) > 0
    marketable = nonempty and (otype == OT_MARKET or (
        price >= bp if side == BUY else price <= bp))
    if marketable and flags & 1:
        reject(ES, SI, oid, acct, loc, side, qty, price, RS_POST_ONLY, SUBMIT, ts)
        return
    o = own_alloc(OO, SI)
    if o < 0:
        return
    OO[o, O_USED] = 1
    OO[o, O_OID] = oid
    OO[o, O_ACCT] = acct
    OO[o, O_LOC] = loc
    OO[o, O_SIDE] = side
    OO[o, O_PX] = price
    OO[o, O_QTY] = qty
    OO[o, O_LEAVES] = qty
    OO[o, O_CUM] = 0
    OO[o, O_SEQ] = 0
    OO[o, O_AHEAD] = 0
    OO[o, O_TIF] = tif
    OO[o, O_OT] = otype
    OO[o, O_FLAGS] = flags
    OO[o, O_RESTING] = 0
    SI[I_OWNRANK] += 1
    OO[o, O_OWNRANK] = SI[I_OWNRANK]
    SI[I_QUOTED] += qty
    own_event(ES, SI, OO, o, ts, EV_ACC, 0, 0, 0, 0, 0, 0)
    if marketable:
        take(LK, LS, ES, FO, SI, Q, OO, o)
    if OO[o, O_LEAVES] == 0:
        return
    if otype == OT_MARKET or tif == TIF_IOC or tif == TIF_FOK:
        own_cancel(ES, SI, OO, RL, RN, o, ts, RS_IOC_REM if otype == OT_LIMIT else RS_MKT_REM)
        return
    rest(LK, LS, SI, OO, RL, RN, o)


@njit(**_JIT)
def replace(LK, LS, ES, FO, SI, Q, OO, RL, RN, oid, qty, price, ts):
    o = own_find(OO, oid)
    if o < 0:
        reject(ES, SI, oid, 0, 0, 0, qty, price, RS_UNKNOWN_ORDER, REPLACE, ts)
        return
    if qty <= OO[o, O_CUM]:
        reject(ES, SI, oid, OO[o, O_ACCT], OO[o, O_LOC], OO[o, O_SIDE], qty, price,
               RS_QTY_FILLED, REPLACE, ts)
        return
    new_px = price if price else OO[o, O_PX]
    keep = new_px == OO[o, O_PX] and qty <= OO[o, O_QTY]
    if not keep:
        SI[I_QUOTED] += qty - OO[o, O_CUM]
    OO[o, O_LEAVES] = qty - OO[o, O_CUM]
    OO[o, O_QTY] = qty
    if keep:
        own_event(ES, SI, OO, o, ts, EV_REPL, 0, 0, 0, 0, EF_KEPT, 0)
        return
    unrest(SI, OO, RL, RN, o)
    OO[o, O_PX] = new_px
    SI[I_FMID] = mid2(LK, SI)
    own_event(ES, SI, OO, o, ts, EV_REPL, 0, 0, 0, 0, 0, 0)
    side = OO[o, O_SIDE]
    other = SELL if side == BUY else BUY
    if lv_n(SI, other - 1) > 0:
        bp = best_px(LK, SI, other)
        if new_px >= bp if side == BUY else new_px <= bp:
            take(LK, LS, ES, FO, SI, Q, OO, o)
    if OO[o, O_LEAVES]:
        rest(LK, LS, SI, OO, RL, RN, o)


@njit(**_JIT)
def command(LK, LS, ES, FO, SI, Q, OO, RL, RN, TMP, row, ts):
    """One ``COMMAND_DTYPE`` row (8 words ``row[3:11]`` of a heap item) at the venue."""
    SI[I_TS] = ts
    w6 = row[9]
    w7 = row[10]
    kind = w7 & 0xFF
    oid = row[4]
    acct = w6 & 0xFFFFFFFF
    loc = (w6 >> 32) & 0xFFFFFFFF
    side = (w7 >> 8) & 0xFF
    if kind == SUBMIT:
        submit(LK, LS, ES, FO, SI, Q, OO, RL, RN, oid, acct, loc, side, row[6], row[5],
               (w7 >> 16) & 0xFF, (w7 >> 24) & 0xFF, (w7 >> 32) & 0xFF, ts)
    elif kind == CANCEL:
        o = own_find(OO, oid)
        if o < 0:
            reject(ES, SI, oid, 0, 0, 0, 0, 0, RS_UNKNOWN_ORDER, CANCEL, ts)
        else:
            own_cancel(ES, SI, OO, RL, RN, o, ts, RS_USER)
    elif kind == REPLACE:
        replace(LK, LS, ES, FO, SI, Q, OO, RL, RN, oid, row[6], row[5], ts)
    elif kind == MASS:
        m = 0
        for o in range(OO.shape[0]):  # live orders of the account, in arrival order
            if OO[o, O_USED] and OO[o, O_ACCT] == acct:
                v = o
                y = m
                while y > 0 and OO[v, O_OWNRANK] < OO[TMP[y - 1], O_OWNRANK]:
                    TMP[y] = TMP[y - 1]
                    y -= 1
                TMP[y] = v
                m += 1
        for x in range(m):
            own_cancel(ES, SI, OO, RL, RN, TMP[x], ts, RS_MASS)
    else:
        reject(ES, SI, oid, acct, loc, side, row[6], row[5], RS_INVALID_CMD, kind, ts)


# ---------------------------------------------------------------- scheduler (binary heap)


@njit(inline="always", **_JIT)
def _hless(HP, a, b):
    if HP[a, 0] != HP[b, 0]:
        return HP[a, 0] < HP[b, 0]
    return HP[a, 1] < HP[b, 1]


@njit(**_JIT)
def hpush(HP, SI, t, kind, p0, p1, p2, p3, p4, p5, p6, p7):
    n = SI[I_HN]
    if n >= HP.shape[0]:
        SI[I_ERR] = ERR_ROOM
        return
    SI[I_HSEQ] += 1
    HP[n, 0] = t
    HP[n, 1] = SI[I_HSEQ]
    HP[n, 2] = kind
    HP[n, 3] = p0
    HP[n, 4] = p1
    HP[n, 5] = p2
    HP[n, 6] = p3
    HP[n, 7] = p4
    HP[n, 8] = p5
    HP[n, 9] = p6
    HP[n, 10] = p7
    j = n
    while j > 0:
        p = (j - 1) >> 1
        if _hless(HP, j, p):
            for f in range(HP_NF):
                x = HP[j, f]
                HP[j, f] = HP[p, f]
                HP[p, f] = x
            j = p
        else:
            break
    SI[I_HN] = n + 1


@njit(**_JIT)
def hpop(HP, SI, out):
    n = SI[I_HN] - 1
    for f in range(HP_NF):
        out[f] = HP[0, f]
        HP[0, f] = HP[n, f]
    SI[I_HN] = n
    j = 0
    while True:
        a = 2 * j + 1
        if a >= n:
            break
        b = a + 1
        c = b if b < n and _hless(HP, b, a) else a
        if _hless(HP, c, j):
            for f in range(HP_NF):
                x = HP[j, f]
                HP[j, f] = HP[c, f]
                HP[c, f] = x
            j = c
        else:
            break


@njit(**_JIT)
def venue_events(HP, SI, Q, t):
    """Collected venue events (if any) reach the strategy side after the response latency."""
    if SI[I_ESN] > SI[I_ESPEND]:
        hpush(HP, SI, t + Q[Q_RESP], 1, SI[I_ESPEND], SI[I_ESN] - SI[I_ESPEND], 0, 0, 0, 0, 0, 0)
        SI[I_ESPEND] = SI[I_ESN]


# ---------------------------------------------------------------- strategy context


@njit(**_JIT)
def ctx_find(CO, oid):
    for r in range(2):
        if CO[r, C_EXISTS] and CO[r, C_OID] == oid:
            return r
    return -1


@njit(**_JIT)
def ctx_apply_event(CO, SI, Q, ES, k):
    """``StrategyContext.apply`` of venue event row ``k``."""
    w13 = ES[k, 13]
    kind = (w13 >> 32) & 0xFF
    oid = ES[k, 3]
    r = ctx_find(CO, oid)
    if kind == EV_FILL:
        side = (w13 >> 48) & 0xFF
        sgn = 1 if side == BUY else -1
        if (w13 & 0xFFFFFFFF) == Q[Q_LOC]:
            SI[I_POS] += sgn * ES[k, 8]
        SI[I_CASH] -= sgn * ES[k, 7] * ES[k, 8]
        SI[I_CFILLS] += 1
        if r >= 0:
            CO[r, C_LEAVES] = ES[k, 9]
            if ES[k, 9] <= 0:
                CO[r, C_EXISTS] = 0
    elif kind == EV_CXL:
        if r >= 0:
            CO[r, C_EXISTS] = 0
    elif kind == EV_REJ:
        ck = (ES[k, 14] >> 16) & 0xFF
        if r >= 0 and ck == SUBMIT:
            CO[r, C_EXISTS] = 0
        elif r >= 0 and ck == CANCEL and ((w13 >> 40) & 0xFF) == RS_UNKNOWN_ORDER:
            CO[r, C_EXISTS] = 0
    elif kind == EV_REPL:
        if r >= 0:
            CO[r, C_PX] = ES[k, 6]
            CO[r, C_LEAVES] = ES[k, 9]
            CO[r, C_QTY] = ES[k, 11]
    elif r >= 0:
        CO[r, C_ACK] = 1



# ---------------------------------------------------------------- risk layer calls


@njit(**_JIT)
def risk_process(C, m, HP, ES, SI, Q, RK, RSN, OUTB, HOLD, S0, OB, DL):
    """``OrderGateway.process`` of ``C[:m]`` with the backtest's venue link: the risk
    engine's kernels on its own arrays; forwarded commands go in flight; the link's outbox
    (due venue events) goes through the post-trade kernel. Returns how many outbox batches
    were handed back (``DL[:n]``, to deliver to the strategy)."""
    G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS = RK
    n, nh = K.check_batch(C[:m], S0, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS, RSN,
                          OUTB, HOLD)
    if nh:
        SI[I_ERR] = ERR_HELD
        return 0
    nd = 0
    if n:
        now = SI[I_NOW]
        for k in range(n):
            if OUTB[k, 1] == SYNC_ID and (OUTB[k, 7] & 0xFF) == CANCEL:
                continue
            SI[I_FWD] += 1
            hpush(HP, SI, now + Q[Q_ENTRY], 0, OUTB[k, 0], OUTB[k, 1], OUTB[k, 2], OUTB[k, 3],
                  OUTB[k, 4], OUTB[k, 5], OUTB[k, 6], OUTB[k, 7])
        for b in range(SI[I_NOUT]):
            s0 = OB[b, 0]
            SI[I_RFILLS] += K.apply_events(ES[s0:s0 + OB[b, 1]], G, A, N, P, H, AMAP, NMAP)
            DL[nd, 0] = s0
            DL[nd, 1] = OB[b, 1]
            nd += 1
        SI[I_NOUT] = 0
    return nd


@njit(**_JIT)
def deliver(CO, SI, Q, ES, DL, nd):
    for b in range(nd):
        for k in range(DL[b, 0], DL[b, 0] + DL[b, 1]):
            ctx_apply_event(CO, SI, Q, ES, k)


@njit(**_JIT)
def emit(C, m, HP, ES, ORD, SI, Q, RK, RSN, OUTB, HOLD, S0, OB, DL, CO, DEN, MK):
    """``Backtester._emit`` of the strategy's commands ``C[:m]`` at ``SI[I_NOW]``."""
    if m == 0:
        return
    now = SI[I_NOW]
    for k in range(m):
        C[k, 0] = now
    if SI[I_DIRTY]:  # the reference price the strategy saw last
        G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS = RK
        b = SI[I_DIRTY_B]
        a = SI[I_DIRTY_A]
        MK[0, 0] = Q[Q_LOC]
        MK[1, 0] = (F_BIDV if b else 0) | (F_ASKV if a else 0)
        MK[2, 0] = b
        MK[3, 0] = a
        K.apply_marks(MK[0], MK[1], MK[2], MK[3], G, A, N, P, NMAP)
        SI[I_DIRTY] = 0
    nd = risk_process(C, m, HP, ES, SI, Q, RK, RSN, OUTB, HOLD, S0, OB, DL)
    for k in range(m):
        why = RSN[k]
        kind = C[k, 7] & 0xFF
        oid = C[k, 1]
        if kind == SUBMIT:
            inst = (C[k, 6] >> 32) & 0xFFFFFFFF
            side = (C[k, 7] >> 8) & 0xFF
        else:
            r = ctx_find(CO, oid)
            if r >= 0:
                inst = CO[r, C_INST]
                side = CO[r, C_SIDE]
            else:
                inst = 0
                side = 0
        if kind == SUBMIT or kind == REPLACE or why:
            mid = 0
            if SI[I_SEEN_OK] and inst == Q[Q_LOC] and SI[I_SEEN_B] and SI[I_SEEN_A]:
                mid = SI[I_SEEN_B] + SI[I_SEEN_A]
            n = SI[I_NO]
            if n >= ORD.shape[0]:
                SI[I_ERR] = ERR_ROOM
            else:
                ORD[n, 0] = now
                ORD[n, 1] = oid
                ORD[n, 2] = inst
                ORD[n, 3] = kind
                ORD[n, 4] = side
                ORD[n, 5] = C[k, 2]
                ORD[n, 6] = C[k, 3]
                ORD[n, 7] = mid
                ORD[n, 8] = why
                SI[I_NO] = n + 1
        if why:
            if DEN[why, 0] == 0:
                SI[I_NDEN] += 1
                DEN[why, 1] = SI[I_NDEN]
            DEN[why, 0] += 1
            r = ctx_find(CO, oid)
            if r >= 0:
                if kind == SUBMIT:
                    CO[r, C_EXISTS] = 0
                else:
                    CO[r, C_CANCEL] = 0
    deliver(CO, SI, Q, ES, DL, nd)


# ---------------------------------------------------------------- the market maker


@njit(**_JIT)
def mm_side(C, m, SI, Q, CO, side, want, size):
    """``AvellanedaStoikov._side``: append at most one command to ``C``; returns ``m``."""
    s = side - 1
    oid = SI[I_OID_B + s]
    r = ctx_find(CO, oid) if oid else -1
    if r >= 0 and CO[r, C_CANCEL]:
        return m
    now = SI[I_NOW]
    if want == 0:
        if r >= 0:
            CO[r, C_CANCEL] = 1
            for f in range(8):
                C[m, f] = 0
            C[m, 0] = now
            C[m, 1] = oid
            C[m, 7] = CANCEL
            return m + 1
        return m
    if r >= 0 and abs(want - SI[I_PX_B + s]) < Q[Q_REFRESH] * Q[Q_TICK]:
        return m
    if now - SI[I_T_B + s] < Q[Q_MINREQ]:
        return m
    SI[I_T_B + s] = now
    SI[I_PX_B + s] = want
    for f in range(8):
        C[m, f] = 0
    C[m, 0] = now
    if r >= 0:
        if not CO[r, C_ACK]:
            return m
        qty = CO[r, C_QTY] - CO[r, C_LEAVES] + size
        CO[r, C_PX] = want
        CO[r, C_LEAVES] = qty - (CO[r, C_QTY] - CO[r, C_LEAVES])
        CO[r, C_QTY] = qty
        C[m, 1] = oid
        C[m, 2] = want
        C[m, 3] = qty
        C[m, 7] = REPLACE
        return m + 1
    oid = SI[I_NEXTID]
    SI[I_NEXTID] = oid + 1
    inst = Q[Q_LOC]
    C[m, 1] = oid
    C[m, 2] = want
    C[m, 3] = size
    C[m, 6] = (Q[Q_ACCT] & 0xFFFFFFFF) | (inst << 32)
    C[m, 7] = Q[Q_W7_BUY] if side == BUY else Q[Q_W7_SELL]
    CO[s, C_EXISTS] = 1
    CO[s, C_OID] = oid
    CO[s, C_INST] = inst
    CO[s, C_SIDE] = side
    CO[s, C_PX] = want
    CO[s, C_QTY] = size
    CO[s, C_LEAVES] = size
    CO[s, C_ACK] = 0
    CO[s, C_CANCEL] = 0
    SI[I_OID_B + s] = oid
    return m + 1


@njit(**_JIT)
def mm_on_quote(C, SI, F, Q, R, CO, LGI, LGF, ts_recv, bid, bsz, ask, asz, bsum, asum):
    """``AvellanedaStoikov.on_quote`` (same float operations in the same order); returns the
    number of commands written to ``C``."""
    if bid == 0 or ask == 0:
        return 0
    tick = Q[Q_TICK]
    mid = (bid + ask) / 2
    # _vol
    if not SI[I_LASTTS]:
        SI[I_LASTTS] = ts_recv
        F[F_LASTMID] = mid
    else:
        dt = ts_recv - SI[I_LASTTS]
        if dt >= Q[Q_VOLNS]:
            d = (mid - F[F_LASTMID]) / tick
            per_s = d * d / (dt / 1e9)
            a = 1.0 - (1.0 - R[R_ALPHA]) ** (dt / Q[Q_VOLNS])
            F[F_VAR] += a * (per_s - F[F_VAR])
            SI[I_LASTTS] = ts_recv
            F[F_LASTMID] = mid
    pos = SI[I_POS]
    # targets
    midt = (bid + ask) / 2 / tick
    var = F[F_VAR]
    if R[R_MINSIG2] > var:
        var = R[R_MINSIG2]
    inv = pos / Q[Q_OQTY]
    bs = bsum if bsum else bsz
    as_ = asum if asum else asz
    imb = (bs - as_) / (bs + as_) if bs + as_ else 0.0
    gamma = R[R_GAMMA]
    r = midt - inv * gamma * var * R[R_TAU] + R[R_OFI] * imb
    delta = gamma * var * R[R_TAU] + (2.0 / gamma) * math.log1p(gamma / R[R_K])
    half = delta / 2
    if R[R_MINHALF] > half:
        half = R[R_MINHALF]
    tb = np.int64(math.floor(r - half)) * tick
    ta = np.int64(math.ceil(r + half)) * tick
    if ask - tick < tb:
        tb = ask - tick
    if bid + tick > ta:
        ta = bid + tick
    maxpos = Q[Q_MAXPOS]
    if pos >= maxpos or tb <= 0:
        tb = 0
    if pos <= -maxpos:
        ta = 0
    n = SI[I_NL]
    if n >= LGI.shape[0]:
        SI[I_ERR] = ERR_ROOM
    else:
        LGI[n, 0] = SI[I_NOW]
        LGI[n, 1] = tb
        LGI[n, 2] = ta
        LGI[n, 3] = pos
        LGF[n, 0] = mid
        LGF[n, 1] = r * tick
        SI[I_NL] = n + 1
    oq = Q[Q_OQTY]
    size = min(oq, maxpos - pos)
    m = mm_side(C, 0, SI, Q, CO, BUY, tb if size > 0 else 0, size)
    size = min(oq, maxpos + pos)
    m = mm_side(C, m, SI, Q, CO, SELL, ta if size > 0 else 0, size)
    return m


@njit(**_JIT)
def on_quote(C, HP, ES, ORD, QO, LGI, LGF, SI, F, Q, R, RK, RSN, OUTB, HOLD, S0, OB, DL, CO,
             DEN, MK, ts_recv, bid, bsz, ask, asz, bsum, asum):
    """``Backtester._on_quote``: what the strategy saw, then its commands."""
    SI[I_SEEN_B] = bid
    SI[I_SEEN_A] = ask
    SI[I_SEEN_OK] = 1
    SI[I_DIRTY] = 1
    SI[I_DIRTY_B] = bid
    SI[I_DIRTY_A] = ask
    n = SI[I_NQ]
    if n >= QO.shape[0]:
        SI[I_ERR] = ERR_ROOM
    else:
        QO[n, 0] = ts_recv
        QO[n, 1] = Q[Q_LOC]
        QO[n, 2] = bid
        QO[n, 3] = ask
        SI[I_NQ] = n + 1
    m = mm_on_quote(C, SI, F, Q, R, CO, LGI, LGF, ts_recv, bid, bsz, ask, asz, bsum, asum)
    emit(C, m, HP, ES, ORD, SI, Q, RK, RSN, OUTB, HOLD, S0, OB, DL, CO, DEN, MK)


# ---------------------------------------------------------------- the event loop


@njit(**_JIT)
def due(t, BK, VN, BUF, SI, F, Q, R, RK, CO, DEN, SC):
    """``Backtester._due``: every scheduled item at or before ``t``, in (time, seq) order."""
    OK, OU, OV, LK, LS, LC = BK
    OO, RL, RN, TMP, EXEC = VN
    HP, ES, FO, ORD, QO, LGI, LGF = BUF
    C, RSN, OUTB, HOLD, S0, OB, DL, MK, SYNC, POP = SC
    while SI[I_HN] and HP[0, 0] <= t and not SI[I_ERR]:
        hpop(HP, SI, POP)
        when = POP[0]
        SI[I_NOW] = when
        kind = POP[2]
        if kind == 0:  # a command reaches the venue
            command(LK, LS, ES, FO, SI, Q, OO, RL, RN, TMP, POP, when)
            venue_events(HP, SI, Q, when)
        elif kind == 1:  # venue events reach risk and the strategy
            if SI[I_NOUT] >= OB.shape[0]:
                SI[I_ERR] = ERR_ROOM
                return
            OB[SI[I_NOUT], 0] = POP[3]
            OB[SI[I_NOUT], 1] = POP[4]
            SI[I_NOUT] += 1
            nd = risk_process(SYNC, 1, HP, ES, SI, Q, RK, RSN, OUTB, HOLD, S0, OB, DL)
            deliver(CO, SI, Q, ES, DL, nd)
        elif kind == 2:
            on_quote(C, HP, ES, ORD, QO, LGI, LGF, SI, F, Q, R, RK, RSN, OUTB, HOLD, S0, OB,
                     DL, CO, DEN, MK, when, POP[4], POP[5], POP[6], POP[7], POP[8], POP[9])
        elif kind == 4:
            SI[I_ERR] = ERR_TIMER
        # kind 3 (a trade print): the market maker has no on_trade


@njit(inline="always", **_JIT)
def _low(n, cap, margin):
    return cap - n < margin


@njit(**_JIT)
def run_chunk(IDX, MT, LOC, TS, REF, NREF, SIDE, SH, PX, end, BK, VN, BUF, SI, F, Q, R, RK,
              CO, DEN, SC, margin):
    """Replay messages ``SI[I_NEXT]`` .. ``end - 1`` (``Backtester.run``'s loop).

    Returns
    -------
    int
        :data:`ST_CHUNK` (reached ``end``), :data:`ST_ROOM` (stopped before a message because
        an output buffer has less than ``margin`` free rows: grow it and call again) or
        :data:`ST_ERROR` (``SI[I_ERR]`` says why).
    """
    OK, OU, OV, LK, LS, LC = BK
    OO, RL, RN, TMP, EXEC = VN
    HP, ES, FO, ORD, QO, LGI, LGF = BUF
    C, RSN, OUTB, HOLD, S0, OB, DL, MK, SYNC, POP = SC
    md = Q[Q_MD]
    loc0 = Q[Q_LOC]
    dm = min(Q[Q_DEPTH], Q[Q_SDEPTH])
    i = SI[I_NEXT]
    while i < end:
        if (_low(SI[I_HN], HP.shape[0], margin) or _low(SI[I_ESN], ES.shape[0], margin)
                or _low(SI[I_NF], FO.shape[0], margin) or _low(SI[I_NO], ORD.shape[0], margin)
                or _low(SI[I_NQ], QO.shape[0], margin) or _low(SI[I_NL], LGI.shape[0], margin)
                or 2 * (SI[I_OLIVE] + 2) > OK.shape[0]):
            SI[I_NEXT] = i
            return ST_ROOM
        t = np.int64(TS[i])  # the columns keep their bulk-record dtypes (unsigned too)
        if SI[I_HN] and HP[0, 0] <= t:
            due(t, BK, VN, BUF, SI, F, Q, R, RK, CO, DEN, SC)
        if np.int64(LOC[i]) == loc0:
            ex_sh = apply_msg(OK, OU, OV, LK, LS, LC, ES, FO, SI, Q, OO, RL, RN, TMP,
                              np.int64(IDX[i]), np.int64(MT[i]), t, np.int64(REF[i]),
                              np.int64(NREF[i]), np.int64(SIDE[i]), np.int64(SH[i]),
                              np.int64(PX[i]), EXEC)
            venue_events(HP, SI, Q, t)
            tb = SI[I_LT_B]
            ta = SI[I_LT_S]
            nb = tb - SI[I_LH_B]
            na = ta - SI[I_LH_S]
            b = LK[0, tb - 1] if nb else 0
            bs = LS[0, tb - 1] if nb else 0
            a = -LK[1, ta - 1] if na else 0
            as_ = LS[1, ta - 1] if na else 0
            if (not SI[I_LAST_OK] or b != SI[I_LAST_B] or bs != SI[I_LAST_BS]
                    or a != SI[I_LAST_A] or as_ != SI[I_LAST_AS]):
                SI[I_LAST_OK] = 1
                SI[I_LAST_B] = b
                SI[I_LAST_BS] = bs
                SI[I_LAST_A] = a
                SI[I_LAST_AS] = as_
                bsum = 0
                for x in range(min(dm, nb)):
                    bsum += LS[0, tb - 1 - x]
                asum = 0
                for x in range(min(dm, na)):
                    asum += LS[1, ta - 1 - x]
                if md == 0 and SI[I_HN] == 0:
                    SI[I_NOW] = t
                    on_quote(C, HP, ES, ORD, QO, LGI, LGF, SI, F, Q, R, RK, RSN, OUTB, HOLD, S0,
                             OB, DL, CO, DEN, MK, t, b, bs, a, as_, bsum, asum)
                else:
                    hpush(HP, SI, t + md, 2, t, b, bs, a, as_, bsum, asum, 0)
            if ex_sh:
                hpush(HP, SI, t + md, 3, 0, 0, 0, 0, 0, 0, 0, 0)
        i += 1
        if SI[I_ERR]:
            SI[I_NEXT] = i
            return ST_ERROR
    SI[I_NEXT] = i
    return ST_CHUNK


@njit(**_JIT)
def finish(end_ts, BK, VN, BUF, SI, F, Q, R, RK, CO, DEN, SC):
    """End of data: due items, the strategy's ``on_stop`` (cancel every open order, oldest
    first), then the drain of in-flight commands and their answers."""
    HP, ES, FO, ORD, QO, LGI, LGF = BUF
    C, RSN, OUTB, HOLD, S0, OB, DL, MK, SYNC, POP = SC
    md = Q[Q_MD]
    due(end_ts + md, BK, VN, BUF, SI, F, Q, R, RK, CO, DEN, SC)
    if SI[I_NOW] < end_ts + md:
        SI[I_NOW] = end_ts + md
    m = 0
    first = 0 if CO[0, C_OID] < CO[1, C_OID] else 1
    for x in range(2):
        r = first if x == 0 else 1 - first
        if CO[r, C_EXISTS] and not CO[r, C_CANCEL]:
            CO[r, C_CANCEL] = 1
            for f in range(8):
                C[m, f] = 0
            C[m, 0] = SI[I_NOW]
            C[m, 1] = CO[r, C_OID]
            C[m, 7] = CANCEL
            m += 1
    emit(C, m, HP, ES, ORD, SI, Q, RK, RSN, OUTB, HOLD, S0, OB, DL, CO, DEN, MK)
    while SI[I_HN] and not SI[I_ERR]:
        due(HP[0, 0], BK, VN, BUF, SI, F, Q, R, RK, CO, DEN, SC)
    SI[I_DONE] = 1
    return ST_ERROR if SI[I_ERR] else ST_DONE
