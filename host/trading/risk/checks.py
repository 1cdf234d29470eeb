"""Compiled hot path of the risk layer: numba kernels over int64 state arrays.

Everything the checks read or write lives in plain ``int64`` arrays (no Python objects, no
allocation per order), so the same kernels serve the per-command API (one row) and the batch
API (a whole ``COMMAND_DTYPE`` array in one call).

State arrays (column constants below)
-------------------------------------
``G``  (G_NF,)                 global settings and state
``A``  (n_accounts, A_NF)      per account: limits, state, rate/duplicate ring heads, P&L
``N``  (n_instruments, N_NF)   per instrument: state, collar, card BBO, stale flag, mark
``P``  (n_accounts, n_instruments, P_NF)  position, cost, realized/unrealized P&L, open qty
``SK`` (n_strategies,)         strategy kill switches
``RING`` (n_accounts, W)       timestamps of the last W forwarded orders (rate throttle)
``DUP``  (n_accounts, D, 5)    last D forwarded submits (ts, instrument, side, price, qty)
``H``  (hcap, H_NF)            open-order table: linear probing on the order id, backward-shift
                               deletion; one row per order the risk layer forwarded and the
                               engine has not finished
``AMAP``/``NMAP``              account id / instrument id -> row (-1 unknown)

Command rows are ``COMMAND_DTYPE`` viewed as ``(m, 8)`` int64; event rows ``EVENT_DTYPE`` as
``(n, 15)`` int64 (see :mod:`host.trading.matching.types` for the byte layout).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# ---------------------------------------------------------------- layout constants

G_STATE, G_KILL, G_DENY_STALE, G_REQ_REF, G_GAP_ALL, G_RECOVER, G_HMASK, G_LIVE, G_CAP = range(9)
G_NF = 12

(A_ID, A_STATE, A_KILL, A_MAX_QTY, A_MAX_NOTIONAL, A_RATE_N, A_RATE_WIN, A_RING_HEAD,
 A_RING_CNT, A_DUP_WIN, A_DUP_HEAD, A_LOSS_LIMIT, A_BREAKER, A_REALIZED, A_UNREAL, A_TRIPPED,
 A_STRAT) = range(17)
A_NF = 18

(N_ID, N_STATE, N_KILL, N_RESTRICTED, N_TICK, N_BID, N_ASK, N_STALE, N_MARK, N_COLLAR_MODE,
 N_COLLAR_VAL, N_RECOVER_CNT) = range(12)
N_NF = 12

P_QTY, P_COST, P_REAL, P_OPEN_BUY, P_OPEN_SELL, P_LIMIT, P_UNREAL = range(7)
P_NF = 8

H_ID, H_ACCT, H_INST, H_SIDE, H_PX, H_LEAVES, H_CUM, H_STRAT, H_PEND = range(9)
H_NF = 10

COLLAR_NONE, COLLAR_BPS, COLLAR_TICKS = 0, 1, 2
DUP_DEPTH = 8

# deny reasons (host.trading.risk.types.DenyReason)
R_NONE = 0
R_UNKNOWN_ACCOUNT = 1
R_UNKNOWN_INSTRUMENT = 2
R_DUPLICATE_ORDER_ID = 3
R_KILL_SWITCH = 4
R_TRADING_HALTED = 5
R_TRADING_REDUCING = 6
R_RESTRICTED = 7
R_INVALID_QTY = 8
R_MAX_QTY = 9
R_STALE = 10
R_NO_REF = 11
R_MAX_NOTIONAL = 12
R_COLLAR = 13
R_POSITION = 14
R_LOSS = 15
R_DUPLICATE = 16
R_RATE = 17
R_UNKNOWN_ORDER = 18
R_INVALID_STRATEGY = 19
R_CAPACITY = 20

ST_ACTIVE, ST_REDUCING, ST_HALTED = 0, 1, 2

# matching-engine codes (host.trading.matching.types)
K_SUBMIT, K_CANCEL, K_REPLACE = 1, 2, 3
EV_ACCEPTED, EV_REJECTED, EV_FILLED, EV_CANCELED, EV_REPLACED, EV_EXPIRED = 1, 2, 3, 4, 5, 6
BUY, SELL = 1, 2
OT_MARKET, OT_STOP = 2, 3

# card record flags (hw.bbo_record)
F_GAP, F_BID_VALID, F_ASK_VALID, F_CLEARED = 1, 2, 4, 8

_MIX = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15 as int64


# ---------------------------------------------------------------- open-order table


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _home(key, mask):
    h = key * _MIX
    return (h ^ (h >> 31)) & mask


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def h_find(H, G, key):
    """Row of order ``key`` in ``H`` or -1."""
    mask = G[G_HMASK]
    j = _home(key, mask)
    while True:
        k = H[j, H_ID]
        if k == key:
            return j
        if k == 0:
            return -1
        j = (j + 1) & mask


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def h_insert(H, G, key):
    """Row for a new order ``key`` (caller checked it is absent and there is room)."""
    mask = G[G_HMASK]
    j = _home(key, mask)
    while H[j, H_ID] != 0:
        j = (j + 1) & mask
    H[j, H_ID] = key
    G[G_LIVE] += 1
    return j


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def h_delete(H, G, j):
    """Remove row ``j`` (backward-shift deletion keeps every probe chain intact)."""
    mask = G[G_HMASK]
    i = j
    k = (j + 1) & mask
    while H[k, H_ID] != 0:
        home = _home(H[k, H_ID], mask)
        # move k into the hole i when the hole lies on its probe path (home .. k)
        if ((k - home) & mask) >= ((k - i) & mask):
            for f in range(H_NF):
                H[i, f] = H[k, f]
            i = k
        k = (k + 1) & mask
    for f in range(H_NF):
        H[i, f] = 0
    G[G_LIVE] -= 1


# ---------------------------------------------------------------- helpers


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _state(G, A, N, a, i):
    s = G[G_STATE]
    if A[a, A_STATE] > s:
        s = A[a, A_STATE]
    if N[i, N_STATE] > s:
        s = N[i, N_STATE]
    return s


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _reduces(P, a, i, side, qty):
    """True if ``qty`` on ``side`` (plus open orders on that side) only reduces the position."""
    pos = P[a, i, P_QTY]
    if side == BUY:
        return pos < 0 and P[a, i, P_OPEN_BUY] + qty <= -pos
    return pos > 0 and P[a, i, P_OPEN_SELL] + qty <= pos


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _collar_ref(N, i):
    """Collar reference: floor mid of the card BBO, else the one valid side, else 0."""
    b = N[i, N_BID]
    s = N[i, N_ASK]
    if b > 0 and s > 0:
        return (b + s) >> 1
    if b > 0:
        return b
    return s


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _price_checks(G, A, N, a, i, side, otype, px, qty, check_collar):
    """Reference-price dependent checks: stale, notional, collar. Returns a reason or 0."""
    if N[i, N_STALE] != 0 and G[G_DENY_STALE] != 0:
        return R_STALE
    ref = _collar_ref(N, i)
    if otype == OT_MARKET or otype == OT_STOP or px <= 0:
        # no limit price: notional at the far side of the card BBO
        far = N[i, N_ASK] if side == BUY else N[i, N_BID]
        if far <= 0:
            far = ref
        if far <= 0:
            return R_NO_REF
        if far * qty > A[a, A_MAX_NOTIONAL]:
            return R_MAX_NOTIONAL
        return R_NONE
    if px * qty > A[a, A_MAX_NOTIONAL]:
        return R_MAX_NOTIONAL
    mode = N[i, N_COLLAR_MODE]
    if check_collar and mode != COLLAR_NONE:
        if ref <= 0:
            if G[G_REQ_REF] != 0:
                return R_NO_REF
            return R_NONE
        if mode == COLLAR_BPS:
            band = ref * N[i, N_COLLAR_VAL] // 10_000
        else:
            band = N[i, N_COLLAR_VAL] * N[i, N_TICK]
        if px > ref + band or px < ref - band:
            return R_COLLAR
    return R_NONE


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _rate_ok(A, RING, a, ts):
    n = A[a, A_RATE_N]
    if n <= 0:
        return True
    if A[a, A_RING_CNT] < n:
        return True
    oldest = RING[a, A[a, A_RING_HEAD]]  # head = oldest of the last n
    return oldest <= ts - A[a, A_RATE_WIN]


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _rate_push(A, RING, a, ts):
    n = A[a, A_RATE_N]
    if n <= 0:
        return
    h = A[a, A_RING_HEAD]
    RING[a, h] = ts
    A[a, A_RING_HEAD] = h + 1 if h + 1 < n else 0
    if A[a, A_RING_CNT] < n:
        A[a, A_RING_CNT] += 1


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _is_duplicate(A, DUP, a, ts, i, side, px, qty):
    win = A[a, A_DUP_WIN]
    if win <= 0:
        return False
    for d in range(DUP_DEPTH):
        if (DUP[a, d, 0] > ts - win and DUP[a, d, 4] == qty and DUP[a, d, 3] == px
                and DUP[a, d, 1] == i and DUP[a, d, 2] == side and DUP[a, d, 4] > 0):
            return True
    return False


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _dup_push(A, DUP, a, ts, i, side, px, qty):
    h = A[a, A_DUP_HEAD]
    DUP[a, h, 0] = ts
    DUP[a, h, 1] = i
    DUP[a, h, 2] = side
    DUP[a, h, 3] = px
    DUP[a, h, 4] = qty
    A[a, A_DUP_HEAD] = (h + 1) % DUP_DEPTH


# ---------------------------------------------------------------- pre-trade checks


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _check(C, k, strat, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP):
    """Check command row ``k`` of ``C``; on pass reserve its exposure. Returns a deny reason.

    Every kernel here is compiled with ``_nrt=False`` (no reference counting: array arguments
    and inlined calls cost no atomic increments) and allocates nothing.
    """
    kind = C[k, 7] & 0xFF
    ts = C[k, 0]
    if kind == K_SUBMIT:
        acct = C[k, 6] & 0xFFFFFFFF
        inst = (C[k, 6] >> 32) & 0xFFFFFFFF
        if acct >= AMAP.shape[0] or AMAP[acct] < 0:
            return R_UNKNOWN_ACCOUNT
        a = AMAP[acct]
        if inst >= NMAP.shape[0] or NMAP[inst] < 0:
            return R_UNKNOWN_INSTRUMENT
        i = NMAP[inst]
        s = A[a, A_STRAT] if strat < 0 else strat
        if s >= SK.shape[0]:
            return R_INVALID_STRATEGY
        oid = C[k, 1]
        if oid == 0 or h_find(H, G, oid) >= 0:
            return R_DUPLICATE_ORDER_ID
        if G[G_KILL] != 0 or A[a, A_KILL] != 0 or SK[s] != 0 or N[i, N_KILL] != 0:
            return R_KILL_SWITCH
        side = (C[k, 7] >> 8) & 0xFF
        otype = (C[k, 7] >> 16) & 0xFF
        px = C[k, 2]
        qty = C[k, 3]
        st = _state(G, A, N, a, i)
        if st == ST_HALTED:
            return R_TRADING_HALTED
        reducing = _reduces(P, a, i, side, qty)
        if st == ST_REDUCING and not reducing:
            return R_TRADING_REDUCING
        if N[i, N_RESTRICTED] != 0:
            return R_RESTRICTED
        if qty <= 0:
            return R_INVALID_QTY
        if qty > A[a, A_MAX_QTY]:
            return R_MAX_QTY
        r = _price_checks(G, A, N, a, i, side, otype, px, qty, True)
        if r != R_NONE:
            return r
        lim = P[a, i, P_LIMIT]
        if side == BUY:
            if P[a, i, P_QTY] + P[a, i, P_OPEN_BUY] + qty > lim:
                return R_POSITION
        elif P[a, i, P_OPEN_SELL] + qty - P[a, i, P_QTY] > lim:
            return R_POSITION
        if not reducing and A[a, A_REALIZED] + A[a, A_UNREAL] < -A[a, A_LOSS_LIMIT]:
            return R_LOSS
        if _is_duplicate(A, DUP, a, ts, i, side, px, qty):
            return R_DUPLICATE
        if not _rate_ok(A, RING, a, ts):
            return R_RATE
        if G[G_LIVE] >= G[G_CAP]:
            return R_CAPACITY
        # pass: record and reserve
        _rate_push(A, RING, a, ts)
        _dup_push(A, DUP, a, ts, i, side, px, qty)
        j = h_insert(H, G, oid)
        H[j, H_ACCT] = a
        H[j, H_INST] = i
        H[j, H_SIDE] = side
        H[j, H_PX] = px
        H[j, H_LEAVES] = qty
        H[j, H_CUM] = 0
        H[j, H_STRAT] = s
        H[j, H_PEND] = 0
        if side == BUY:
            P[a, i, P_OPEN_BUY] += qty
        else:
            P[a, i, P_OPEN_SELL] += qty
        return R_NONE
    if kind == K_REPLACE:
        j = h_find(H, G, C[k, 1])
        if j < 0:
            return R_UNKNOWN_ORDER
        a = H[j, H_ACCT]
        i = H[j, H_INST]
        s = H[j, H_STRAT]
        if G[G_KILL] != 0 or A[a, A_KILL] != 0 or SK[s] != 0 or N[i, N_KILL] != 0:
            return R_KILL_SWITCH
        st = _state(G, A, N, a, i)
        if st == ST_HALTED:
            return R_TRADING_HALTED
        side = H[j, H_SIDE]
        qty = C[k, 3]
        newpx = C[k, 2] if C[k, 2] != 0 else H[j, H_PX]
        delta = (qty - H[j, H_CUM]) - H[j, H_LEAVES]
        reducing = delta <= 0 or _reduces(P, a, i, side, delta)
        if st == ST_REDUCING and not reducing:
            return R_TRADING_REDUCING
        if qty <= 0:
            return R_INVALID_QTY
        if qty > A[a, A_MAX_QTY]:
            return R_MAX_QTY
        otype = 1 if newpx > 0 else OT_MARKET
        r = _price_checks(G, A, N, a, i, side, otype, newpx, qty,
                          C[k, 2] != 0 and C[k, 2] != H[j, H_PX])
        if r != R_NONE:
            return r
        if delta > 0:
            lim = P[a, i, P_LIMIT]
            if side == BUY:
                if P[a, i, P_QTY] + P[a, i, P_OPEN_BUY] + delta > lim:
                    return R_POSITION
            elif P[a, i, P_OPEN_SELL] + delta - P[a, i, P_QTY] > lim:
                return R_POSITION
            if not reducing and A[a, A_REALIZED] + A[a, A_UNREAL] < -A[a, A_LOSS_LIMIT]:
                return R_LOSS
        if not _rate_ok(A, RING, a, ts):
            return R_RATE
        _rate_push(A, RING, a, ts)
        if delta > 0:
            H[j, H_LEAVES] += delta
            H[j, H_PEND] = delta
            if side == BUY:
                P[a, i, P_OPEN_BUY] += delta
            else:
                P[a, i, P_OPEN_SELL] += delta
        else:
            H[j, H_PEND] = 0
        return R_NONE
    return R_NONE  # cancels, mass cancels, end of session always pass


@njit(cache=True, nogil=True, _nrt=False)
def check_command(C, k, strat, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP):
    """Check row ``k`` of the command array ``C`` ((m, 8) int64); on pass, reserve its
    exposure. Returns a deny reason (0 = pass). ``strat`` is the order's strategy id (-1: the
    account's default strategy)."""
    return _check(C, k, strat, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP)


@njit(cache=True, nogil=True, _nrt=False)
def check_batch(C, S, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, reasons, out):
    """Check every row of ``C`` in order; copy the passing rows to ``out``.

    Parameters
    ----------
    C : (m, 8) int64
        Commands.
    S : (m,) int64
        Strategy per command (-1 = the account's default); may have length 0 (all default).
    reasons : (m,) int64
        Output: deny reason per command (0 = passed).
    out : (m, 8) int64
        Output: the passing commands, in order.

    Returns
    -------
    int
        Number of passing commands.
    """
    n = 0
    ns = S.shape[0]
    for k in range(C.shape[0]):
        s = S[k] if ns > 0 else -1
        r = _check(C, k, s, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP)
        reasons[k] = r
        if r == 0:
            for f in range(8):
                out[n, f] = C[k, f]
            n += 1
    return n


# ---------------------------------------------------------------- post-trade


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _unreal(P, a, i, mark):
    q = P[a, i, P_QTY]
    if q == 0 or mark <= 0:
        return 0
    return q * mark - P[a, i, P_COST]


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _breaker(A, a):
    if (A[a, A_TRIPPED] == 0 and A[a, A_BREAKER] > 0
            and A[a, A_REALIZED] + A[a, A_UNREAL] < -A[a, A_BREAKER]):
        A[a, A_TRIPPED] = 1
        A[a, A_STATE] = ST_HALTED


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def apply_fill(A, N, P, a, i, side, qty, px):
    """Position, cost basis, realized/unrealized P&L of one fill (see ``docs/risk.md``).

    The cost basis ``P_COST`` is the signed sum of qty x price of the open position. Closing
    ``c`` of ``|pos|`` removes ``trunc(cost * c / |pos|)`` of it (the remainder stays, so the
    realized P&L is exact once the position is flat); realized += ``sign(pos) * c * px -
    removed``.
    """
    q = qty if side == BUY else -qty
    pos = P[a, i, P_QTY]
    cost = P[a, i, P_COST]
    if pos == 0 or (pos > 0) == (q > 0):
        pos += q
        cost += q * px
    else:
        apos = pos if pos > 0 else -pos
        aq = qty
        close = aq if aq < apos else apos
        acost = cost if cost >= 0 else -cost
        removed = acost * close // apos
        if cost < 0:
            removed = -removed
        sgn = 1 if pos > 0 else -1
        real = sgn * close * px - removed
        P[a, i, P_REAL] += real
        A[a, A_REALIZED] += real
        cost -= removed
        pos += q
        if aq > apos:  # flipped: the rest opens a new position at px
            cost = pos * px
    P[a, i, P_QTY] = pos
    P[a, i, P_COST] = cost
    mark = N[i, N_MARK]
    if mark <= 0:
        mark = px
        N[i, N_MARK] = px
    u = _unreal(P, a, i, mark)
    A[a, A_UNREAL] += u - P[a, i, P_UNREAL]
    P[a, i, P_UNREAL] = u
    _breaker(A, a)


@njit(cache=True, nogil=True, _nrt=False)
def apply_events(E, G, A, N, P, H, AMAP, NMAP):
    """Update open orders, positions and P&L from engine events ``E`` ((n, 15) int64).

    Returns the number of fills applied to known accounts.
    """
    fills = 0
    for k in range(E.shape[0]):
        w13 = E[k, 13]
        kind = (w13 >> 32) & 0xFF
        if kind == EV_ACCEPTED:
            continue
        oid = E[k, 3]
        j = h_find(H, G, oid)
        if kind == EV_FILLED:
            acct = E[k, 12] & 0xFFFFFFFF
            inst = w13 & 0xFFFFFFFF
            side = (w13 >> 48) & 0xFF
            lq = E[k, 8]
            if acct < AMAP.shape[0] and AMAP[acct] >= 0 and inst < NMAP.shape[0] \
                    and NMAP[inst] >= 0:
                a = AMAP[acct]
                i = NMAP[inst]
                apply_fill(A, N, P, a, i, side, lq, E[k, 7])
                fills += 1
            if j >= 0:
                a = H[j, H_ACCT]
                i = H[j, H_INST]
                if H[j, H_SIDE] == BUY:
                    P[a, i, P_OPEN_BUY] -= lq
                else:
                    P[a, i, P_OPEN_SELL] -= lq
                H[j, H_LEAVES] = E[k, 9]
                H[j, H_CUM] = E[k, 10]
                if E[k, 9] <= 0:
                    h_delete(H, G, j)
            continue
        if j < 0:
            continue
        a = H[j, H_ACCT]
        i = H[j, H_INST]
        buy = H[j, H_SIDE] == BUY
        if kind == EV_REJECTED:
            cmd_kind = (E[k, 14] >> 16) & 0xFF
            if cmd_kind == K_SUBMIT:
                rel = H[j, H_LEAVES]
                h_delete(H, G, j)
            elif cmd_kind == K_REPLACE:
                rel = H[j, H_PEND]
                H[j, H_LEAVES] -= rel
                H[j, H_PEND] = 0
            else:
                continue
        elif kind == EV_CANCELED or kind == EV_EXPIRED:
            rel = H[j, H_LEAVES] - E[k, 9]
            if E[k, 9] <= 0:
                h_delete(H, G, j)
            else:
                H[j, H_LEAVES] = E[k, 9]
        elif kind == EV_REPLACED:
            rel = H[j, H_LEAVES] - E[k, 9]
            H[j, H_LEAVES] = E[k, 9]
            H[j, H_CUM] = E[k, 10]
            H[j, H_PX] = E[k, 6]
            H[j, H_PEND] = 0
        else:
            continue
        if buy:
            P[a, i, P_OPEN_BUY] -= rel
        else:
            P[a, i, P_OPEN_SELL] -= rel
    return fills


@njit(cache=True, nogil=True, _nrt=False)
def apply_marks(loc, flags, bid, ask, G, A, N, P, NMAP):
    """Card BBO records -> reference prices, stale flags, marks and unrealized P&L.

    Parameters
    ----------
    loc, flags, bid, ask : (n,) int64
        Columns of :data:`hw.bbo_record.DTYPE` records, in card order.

    Notes
    -----
    A record flagged ``gap`` makes its instrument stale (every instrument when ``G_GAP_ALL``);
    a ``cleared`` record makes its instrument stale and empties its BBO. A stale instrument is
    valid again after ``G_RECOVER`` consecutive gap-free two-sided uncrossed records. Marks
    (floor mid, or the one valid side) are not updated while stale.
    """
    ninst = N.shape[0]
    nacc = A.shape[0]
    need = G[G_RECOVER]
    for k in range(loc.shape[0]):
        lc = loc[k]
        if lc >= NMAP.shape[0] or NMAP[lc] < 0:
            continue
        i = NMAP[lc]
        f = flags[k]
        if f & F_GAP:
            if G[G_GAP_ALL] != 0:
                for ii in range(ninst):
                    N[ii, N_STALE] = 1
                    N[ii, N_RECOVER_CNT] = 0
            else:
                N[i, N_STALE] = 1
                N[i, N_RECOVER_CNT] = 0
        if f & F_CLEARED:
            N[i, N_STALE] = 1
            N[i, N_RECOVER_CNT] = 0
            N[i, N_BID] = 0
            N[i, N_ASK] = 0
            continue
        b = bid[k] if f & F_BID_VALID else 0
        s = ask[k] if f & F_ASK_VALID else 0
        N[i, N_BID] = b
        N[i, N_ASK] = s
        if N[i, N_STALE] != 0:
            if (f & F_GAP) == 0 and b > 0 and s > 0 and b < s:
                N[i, N_RECOVER_CNT] += 1
                if N[i, N_RECOVER_CNT] >= need:
                    N[i, N_STALE] = 0
                    N[i, N_RECOVER_CNT] = 0
            else:
                N[i, N_RECOVER_CNT] = 0
            if N[i, N_STALE] != 0:
                continue
        m = _collar_ref(N, i)
        if m <= 0 or m == N[i, N_MARK]:
            continue
        N[i, N_MARK] = m
        for a in range(nacc):
            if P[a, i, P_QTY] != 0:
                u = _unreal(P, a, i, m)
                A[a, A_UNREAL] += u - P[a, i, P_UNREAL]
                P[a, i, P_UNREAL] = u
                _breaker(A, a)


@njit(cache=True, nogil=True, _nrt=False)
def open_orders_where(H, col, value, out):
    """Order ids of the open-order table whose column ``col`` equals ``value`` (-1: all)."""
    n = 0
    for j in range(H.shape[0]):
        if H[j, H_ID] != 0 and (col < 0 or H[j, col] == value):
            out[n] = H[j, H_ID]
            n += 1
    return n
