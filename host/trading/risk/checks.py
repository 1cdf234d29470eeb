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
``PR`` (1 + n_accounts,)       principal of the sender: role, then 1 per account row it may act
                               for (read-only; see :func:`principal`)
``PS`` (n_accounts, n_strategies) uint8  strategies the sender may use, per account row

Command rows are ``COMMAND_DTYPE`` viewed as ``(m, 8)`` int64; event rows ``EVENT_DTYPE`` as
``(n, 15)`` int64 (see :mod:`host.trading.matching.types` for the byte layout).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# ---------------------------------------------------------------- layout constants

(G_STATE, G_KILL, G_DENY_STALE, G_REQ_REF, G_GAP_ALL, G_RECOVER, G_HMASK, G_LIVE, G_CAP,
 G_NHELD) = range(10)
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

H_ID, H_ACCT, H_INST, H_SIDE, H_PX, H_LEAVES, H_CUM, H_STRAT, H_PEND, H_HELD = range(10)
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
R_NOT_AUTHORIZED = 21
R_STRATEGY_NOT_PERMITTED = 22
R_STOP_NOT_REPLACEABLE = 23

# _check results below 0: passed, but nothing to forward (the stop stays in the risk layer)
HOLD_NEW, HOLD_CANCEL = -1, -2

# principal roles (PR[0]); PR[1 + a] = 1 if the sender may act for account row a, and
# PS[a, s] = 1 if it may use strategy s for account row a (see principal())
ROLE_ACCOUNT, ROLE_OPERATOR, ROLE_INTERNAL = 0, 1, 2

ST_ACTIVE, ST_REDUCING, ST_HALTED = 0, 1, 2

# matching-engine codes (host.trading.matching.types)
K_SUBMIT, K_CANCEL, K_REPLACE, K_MASS, K_END = 1, 2, 3, 4, 5
MC_BY_ACCOUNT = 1
OT_LIMIT = 1
TIF_IOC, TIF_FOK = 3, 4
EV_ACCEPTED, EV_REJECTED, EV_FILLED, EV_CANCELED, EV_REPLACED, EV_EXPIRED = 1, 2, 3, 4, 5, 6
BUY, SELL = 1, 2
OT_MARKET, OT_STOP, OT_STOP_LIMIT = 2, 3, 4

# card record flags (hw.bbo_record)
F_GAP, F_BID_VALID, F_ASK_VALID, F_CLEARED = 1, 2, 4, 8

_MIX = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15 as int64
_KEEP_W7 = np.int64(~(0xFFFF << 16))  # word 7 of a command without order_type and tif


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
def _band(N, i, ref):
    """Half-width of the collar of instrument row ``i`` around ``ref``."""
    if N[i, N_COLLAR_MODE] == COLLAR_BPS:
        return ref * N[i, N_COLLAR_VAL] // 10_000
    return N[i, N_COLLAR_VAL] * N[i, N_TICK]


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _collar(G, N, i, px):
    """Collar check of one price (limit, stop, or a replace's new price); reason or 0."""
    if N[i, N_COLLAR_MODE] == COLLAR_NONE:
        return R_NONE
    ref = _collar_ref(N, i)
    if ref <= 0:
        if G[G_REQ_REF] != 0:
            return R_NO_REF
        return R_NONE
    band = _band(N, i, ref)
    if px > ref + band or px < ref - band:
        return R_COLLAR
    return R_NONE


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _far_notional(A, N, a, i, side, qty):
    """Notional of an unpriced order at the far side of the card BBO (collar mode ``none``)."""
    far = N[i, N_ASK] if side == BUY else N[i, N_BID]
    if far <= 0:
        far = _collar_ref(N, i)
    if far <= 0:
        return R_NO_REF
    if far * qty > A[a, A_MAX_NOTIONAL]:
        return R_MAX_NOTIONAL
    return R_NONE


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _market_limit(N, i, side):
    """Collar price of a market order: the edge of the band on its side, on the tick
    (inside the band), or 0 without a reference. The order is forwarded as a marketable
    limit at this price, so it can never fill outside the collar."""
    ref = _collar_ref(N, i)
    if ref <= 0:
        return 0
    band = _band(N, i, ref)
    t = N[i, N_TICK]
    if side == BUY:
        return (ref + band) // t * t
    px = -((band - ref) // t) * t  # ceil((ref - band) / t) * t
    return px if px >= t else t


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
def _position_ok(P, a, i, side, q):
    lim = P[a, i, P_LIMIT]
    if side == BUY:
        return P[a, i, P_QTY] + P[a, i, P_OPEN_BUY] + q <= lim
    return P[a, i, P_OPEN_SELL] + q - P[a, i, P_QTY] <= lim


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _reserve(P, a, i, side, q):
    if side == BUY:
        P[a, i, P_OPEN_BUY] += q
    else:
        P[a, i, P_OPEN_SELL] += q


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _owner_ok(H, j, PR, PS):
    """Authorisation of a command on open order row ``j``: the sender may act for the order's
    account and for the strategy recorded with the order. Reason or 0."""
    a = H[j, H_ACCT]
    if PR[1 + a] == 0:
        return R_NOT_AUTHORIZED
    if PS[a, H[j, H_STRAT]] == 0:
        return R_STRATEGY_NOT_PERMITTED
    return R_NONE


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _submit(C, k, strat, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS, OUT, n):
    ts = C[k, 0]
    acct = C[k, 6] & 0xFFFFFFFF
    inst = (C[k, 6] >> 32) & 0xFFFFFFFF
    if acct >= AMAP.shape[0] or AMAP[acct] < 0:
        return R_UNKNOWN_ACCOUNT
    a = AMAP[acct]
    if PR[1 + a] == 0:
        return R_NOT_AUTHORIZED
    if inst >= NMAP.shape[0] or NMAP[inst] < 0:
        return R_UNKNOWN_INSTRUMENT
    i = NMAP[inst]
    s = A[a, A_STRAT] if strat < 0 else strat
    if s >= SK.shape[0]:
        return R_INVALID_STRATEGY
    if PS[a, s] == 0:
        return R_STRATEGY_NOT_PERMITTED
    oid = C[k, 1]
    if oid == 0 or h_find(H, G, oid) >= 0:
        return R_DUPLICATE_ORDER_ID
    if G[G_KILL] != 0 or A[a, A_KILL] != 0 or SK[s] != 0 or N[i, N_KILL] != 0:
        return R_KILL_SWITCH
    w7 = C[k, 7]
    side = (w7 >> 8) & 0xFF
    otype = (w7 >> 16) & 0xFF
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
    if N[i, N_STALE] != 0 and G[G_DENY_STALE] != 0:
        return R_STALE
    held = otype == OT_STOP or otype == OT_STOP_LIMIT
    fpx = px  # the price forwarded to the venue
    if otype == OT_MARKET:
        if N[i, N_COLLAR_MODE] == COLLAR_NONE:
            r = _far_notional(A, N, a, i, side, qty)
            if r != R_NONE:
                return r
        else:
            fpx = _market_limit(N, i, side)
            if fpx <= 0:
                return R_NO_REF
            if fpx * qty > A[a, A_MAX_NOTIONAL]:
                return R_MAX_NOTIONAL
    elif held:
        # collared at entry on the stop price (and the limit of a stop limit); held by the
        # risk layer and checked again, as a new order, when it triggers
        stop = C[k, 5]
        if stop <= 0 or (otype == OT_STOP_LIMIT and px <= 0):
            return R_COLLAR
        npx = px if otype == OT_STOP_LIMIT and px > stop else stop
        if npx * qty > A[a, A_MAX_NOTIONAL]:
            return R_MAX_NOTIONAL
        r = _collar(G, N, i, stop)
        if r == R_NONE and otype == OT_STOP_LIMIT:
            r = _collar(G, N, i, px)
        if r != R_NONE:
            return r
    else:
        if px * qty > A[a, A_MAX_NOTIONAL]:
            return R_MAX_NOTIONAL
        r = _collar(G, N, i, px)
        if r != R_NONE:
            return r
    if not _position_ok(P, a, i, side, qty):
        return R_POSITION
    if not reducing and A[a, A_REALIZED] + A[a, A_UNREAL] < -A[a, A_LOSS_LIMIT]:
        return R_LOSS
    fresh = PR[0] != ROLE_INTERNAL  # a released stop is not a new message of its sender
    if fresh and _is_duplicate(A, DUP, a, ts, i, side, px, qty):
        return R_DUPLICATE
    if fresh and not _rate_ok(A, RING, a, ts):
        return R_RATE
    if G[G_LIVE] >= G[G_CAP]:
        return R_CAPACITY
    # pass: record and reserve
    if fresh:
        _rate_push(A, RING, a, ts)
        _dup_push(A, DUP, a, ts, i, side, px, qty)
    j = h_insert(H, G, oid)
    H[j, H_ACCT] = a
    H[j, H_INST] = i
    H[j, H_SIDE] = side
    H[j, H_PX] = fpx
    H[j, H_LEAVES] = qty
    H[j, H_CUM] = 0
    H[j, H_STRAT] = s
    H[j, H_PEND] = 0
    H[j, H_HELD] = 1 if held else 0
    _reserve(P, a, i, side, qty)
    if held:
        G[G_NHELD] += 1
        return HOLD_NEW
    for f in range(8):
        OUT[n, f] = C[k, f]
    if otype == OT_MARKET and fpx != px:
        # forward as a marketable limit at the collar price; never rests (IOC, FOK kept)
        tif = (w7 >> 24) & 0xFF
        ntif = TIF_FOK if tif == TIF_FOK else TIF_IOC
        OUT[n, 2] = fpx
        OUT[n, 7] = (w7 & _KEEP_W7) | (OT_LIMIT << 16) | (ntif << 24)
    return R_NONE


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _replace(C, k, G, A, N, P, SK, RING, H, PR, PS):
    ts = C[k, 0]
    j = h_find(H, G, C[k, 1])
    if j < 0:
        return R_UNKNOWN_ORDER
    r = _owner_ok(H, j, PR, PS)
    if r != R_NONE:
        return r
    if H[j, H_HELD] != 0:
        return R_STOP_NOT_REPLACEABLE
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
    if N[i, N_STALE] != 0 and G[G_DENY_STALE] != 0:
        return R_STALE
    if newpx <= 0:  # an unpriced order left at the venue (not entered by this layer)
        r = _far_notional(A, N, a, i, side, qty)
    elif newpx * qty > A[a, A_MAX_NOTIONAL]:
        r = R_MAX_NOTIONAL
    elif C[k, 2] != 0 and C[k, 2] != H[j, H_PX]:
        r = _collar(G, N, i, newpx)
    else:
        r = R_NONE
    if r != R_NONE:
        return r
    if delta > 0:
        if not _position_ok(P, a, i, side, delta):
            return R_POSITION
        if not reducing and A[a, A_REALIZED] + A[a, A_UNREAL] < -A[a, A_LOSS_LIMIT]:
            return R_LOSS
    if not _rate_ok(A, RING, a, ts):
        return R_RATE
    _rate_push(A, RING, a, ts)
    if delta > 0:
        H[j, H_LEAVES] += delta
        H[j, H_PEND] = delta
        _reserve(P, a, i, side, delta)
    else:
        H[j, H_PEND] = 0
    return R_NONE


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def drop_order(H, G, P, j):
    """Remove open order row ``j`` and release its reserved quantity (a held stop that is
    canceled or released)."""
    if H[j, H_HELD] != 0:
        G[G_NHELD] -= 1
    a = H[j, H_ACCT]
    i = H[j, H_INST]
    if H[j, H_SIDE] == BUY:
        P[a, i, P_OPEN_BUY] -= H[j, H_LEAVES]
    else:
        P[a, i, P_OPEN_SELL] -= H[j, H_LEAVES]
    h_delete(H, G, j)


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _check(C, k, strat, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS, OUT, n):
    """Check and authorise command row ``k`` of ``C``; on pass reserve its exposure and write
    the row to forward (a market order converted to its collar limit) to ``OUT[n]``.

    Returns a deny reason (> 0), 0 (forward ``OUT[n]``), or :data:`HOLD_NEW` / :data:`HOLD_CANCEL`
    (< 0: a stop entered or canceled in the risk layer; nothing to forward).

    ``PR``/``PS`` are the sender's principal (see :func:`principal`). Every kernel here is
    compiled with ``_nrt=False`` (no reference counting: array arguments and inlined calls cost
    no atomic increments) and allocates nothing.
    """
    kind = C[k, 7] & 0xFF
    if kind == K_SUBMIT:
        return _submit(C, k, strat, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS, OUT, n)
    if kind == K_REPLACE:
        r = _replace(C, k, G, A, N, P, SK, RING, H, PR, PS)
    elif kind == K_CANCEL:
        # cancels reduce risk and are never blocked by limits, only by ownership; the operator
        # may cancel anything, so its cancels skip the lookup unless a stop is held here
        j = -1 if PR[0] != ROLE_ACCOUNT and G[G_NHELD] == 0 else h_find(H, G, C[k, 1])
        if j < 0:
            # not open: the open-order table holds every live order of the venue (a fresh
            # venue, or RiskEngine.recover), so the venue rejects it and nothing is canceled
            r = R_NONE
        else:
            r = _owner_ok(H, j, PR, PS)
            if r == R_NONE and H[j, H_HELD] != 0:
                drop_order(H, G, P, j)
                return HOLD_CANCEL
    elif kind == K_MASS:
        r = R_NONE
        if PR[0] == ROLE_ACCOUNT:
            # an order source cancels only its own accounts' orders: it must name one
            acct = C[k, 6] & 0xFFFFFFFF
            if ((C[k, 7] >> 32) & MC_BY_ACCOUNT) == 0 or acct >= AMAP.shape[0] \
                    or AMAP[acct] < 0 or PR[1 + AMAP[acct]] == 0:
                r = R_NOT_AUTHORIZED
    elif kind == K_END:
        r = R_NOT_AUTHORIZED if PR[0] == ROLE_ACCOUNT else R_NONE
    else:
        r = R_NONE  # not a command: the venue rejects it (and journals the reject)
    if r == R_NONE:
        for f in range(8):
            OUT[n, f] = C[k, f]
    return r


@njit(cache=True, nogil=True, _nrt=False)
def check_command(C, k, strat, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS, OUT):
    """Check row ``k`` of the command array ``C`` ((m, 8) int64) sent by principal
    ``PR``/``PS``; on pass, reserve its exposure and write the row to forward to ``OUT[0]``.
    Returns a deny reason (0 = forward, < 0 = held stop entered/canceled, see :func:`_check`).
    ``strat`` is the order's strategy id (-1: the account's default strategy)."""
    return _check(C, k, strat, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS, OUT, 0)


@njit(cache=True, nogil=True, _nrt=False)
def check_batch(C, S, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS, reasons, out, hold):
    """Check every row of ``C`` in order; copy the rows to forward to ``out``.

    Parameters
    ----------
    C : (m, 8) int64
        Commands.
    S : (m,) int64
        Strategy per command (-1 = the account's default); may have length 0 (all default).
        The caller guarantees the length (the kernel does not bounds-check).
    PR, PS
        The sender's principal (:func:`principal`).
    reasons : (m,) int64
        Output: deny reason per command (0 = passed).
    out : (m, 8) int64
        Output: the commands to forward, in order (market orders as collar limits).
    hold : (m,) int64
        Output: ``k << 2 | code`` for commands that passed but stay in the risk layer
        (code 1: stop held, 2: held stop canceled).

    Returns
    -------
    (int, int)
        Number of commands to forward, number of ``hold`` entries.
    """
    n = 0
    nh = 0
    ns = S.shape[0]
    for k in range(C.shape[0]):
        s = S[k] if ns > 0 else -1
        r = _check(C, k, s, G, A, N, P, SK, RING, DUP, H, AMAP, NMAP, PR, PS, out, n)
        if r == 0:
            n += 1
            reasons[k] = 0
        elif r < 0:
            hold[nh] = (k << 2) | -r
            nh += 1
            reasons[k] = 0
        else:
            reasons[k] = r
    return n, nh


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


def principal(role: int, accounts: np.ndarray, owned: np.ndarray, *,
              frozen: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Principal arrays for the kernels.

    Parameters
    ----------
    role : int
        ``ROLE_ACCOUNT`` (an order source), ``ROLE_OPERATOR`` or ``ROLE_INTERNAL``.
    accounts : (n_accounts,) bool
        Account rows the sender may act for.
    owned : (n_accounts, n_strategies) bool
        Strategies owned by each account row (the configuration's binding).

    frozen : bool
        True: built on ``bytes``, so not even their holder can make them writable again (what
        a gateway holds; pass :func:`thawed` copies to the kernels, which run about 10 %
        slower on read-only arrays). False: plain arrays (the risk engine's own).

    Returns
    -------
    (PR, PS)
    """
    pr = np.concatenate([[role], accounts.astype(np.int64)]).astype(np.int64)
    ps = (owned & accounts[:, None]).astype(np.uint8)
    if not frozen:
        return pr, ps
    PR = np.frombuffer(pr.tobytes(), np.int64)
    PS = np.frombuffer(ps.tobytes(), np.uint8).reshape(ps.shape)
    return PR, PS


def thawed(principal: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Writable copies of frozen principal arrays, for one kernel call (one compiled
    specialization: every principal reaches the kernels as plain arrays)."""
    return principal[0].copy(), principal[1].copy()
