"""Seeded generator of valid ITCH 5.0 streams (NASDAQ binary file framing).

The same ``(n_messages, n_symbols, seed)`` always gives the same bytes. The stream is a trading
day in miniature:

* ``S`` start of messages, ``R`` stock directory of every symbol, ``S`` start of system hours,
  ``H`` trading state ``T`` for every symbol, ``S`` start of market hours;
* the body (see :data:`MIX` for the message mix): adds ``A``/``F`` near the touch, deletes
  ``D``, executions ``E``/``C`` of the order with time priority at the best level, partial
  cancels ``X``, replaces ``U`` (new reference, new price and shares, same side), trades ``P``,
  crosses ``Q``, broken trades ``B``, one trading halt (``H`` ``H`` then ``Q`` then ``T``) and
  a sprinkle of the other types (``Y``, ``L``, ``V``, ``W``, ``K``, ``J``, ``h``, ``I``, ``N``,
  ``O``) so that a decoder sees every message type;
* ``S`` end of market hours, end of system hours, end of messages.

Guarantees (checked by ``tests/host/feed/test_generator.py``): every ``E``/``C``/``X``/``D``/``U``
refers to a live order and never takes more shares than it has; order references are unique
over the day and spread over 64 bits (a bijective 64-bit mix of a counter, never 0);
timestamps strictly increase; prices are at most :data:`host.feed.spec.PRICE4_MAX` and one symbol
quotes up to exactly that price; locates are unique, spread over 1..65535 and include 65535;
share counts include odd lots and values close to 2**32 (level totals pass 32 bits); the book
of every symbol is never crossed or locked (a bid is always below the best ask and vice versa,
including after replaces, which may move an order through its own touch up to one tick from the
other side).

Books drain and refill: the body runs in phases with a target number of live orders per symbol
(a few, a few tens, or ~100); the add/delete balance leans towards the target, and 35% of
deletes and every execution take the order at the best level, so best levels empty and the next
level comes up.

The state machine runs in numba (one pass, O(1) per message); the bytes are written with numpy
structured dtypes derived from :mod:`host.feed.spec`.

All of the above is the ``classic`` profile (the default; its bytes for a seed never change).
``profile="realistic"`` (:class:`Realistic`) runs another kernel over the same preamble,
postamble and encoder: deep books (hundreds to over a thousand price levels per side on the
liquid symbols), heavy-tailed offsets from the touch, stub quotes, sweeps, cancel bursts and
nearly sequential references (docs/reference-book.md, "Realistic-depth generator").
:func:`depth_report` measures the depth of any stream with the reference book.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from host.feed.spec import MESSAGES, PRICE4_MAX

__all__ = [
    "generate",
    "generate_columns",
    "encode_columns",
    "write_pcap_from_itch",
    "MIX",
    "PROFILES",
    "Realistic",
    "depth_report",
]

G = 256
"""Price grid of each symbol, in ticks."""

MIX = {
    "A": 0.385,
    "F": 0.065,
    "D": 0.40,
    "E": 0.04,
    "C": 0.005,
    "X": 0.04,
    "U": 0.05,
    "P": 0.01,
    "Q": 0.0005,
    "B": 0.0003,
    "other": 0.0042,
}
"""Target share of each body message kind (before the live-order feedback of +-0.05 that moves
share between adds and deletes)."""

_OTHER = "YLVWKJhINO"
_MPIDS = (b"NSDQ", b"GSCO", b"MSCO", b"UBSS", b"JPMS", b"CDRG", b"VIRT", b"SUSQ")

# column indices of the body simulation
_COLS = ("typ", "loc", "ts", "ref", "nref", "side", "shares", "price", "match", "code", "aux",
         "p2", "p3")  # fmt: skip


@njit(cache=True)
def _mix64(x):
    """splitmix64 finaliser: a bijection of uint64 (so distinct counters give distinct refs)."""
    z = x * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E5B)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _geom(p):
    """0, 1, 2... with P(k) = p (1-p)^k."""
    k = 0
    while np.random.random() > p:
        k += 1
    return k


@njit(cache=True)
def _shares():
    u = np.random.random()
    if u < 0.003:
        return np.int64(np.random.randint(1_000_000_000, 4_294_967_296))
    if u < 0.12:
        return np.int64(np.random.randint(1, 100))
    if u < 0.14:
        return np.int64(np.random.randint(100, 1_000_000))
    return np.int64(100 * (1 + int(np.random.exponential(3.0))))


@njit(cache=True)
def _rescan(s, sd, start, head):
    """Best non-empty tick of side ``sd`` at or behind ``start`` (-1 bid / G ask when none)."""
    t = start
    if sd == 0:
        while t >= 0 and head[s, 0, t] < 0:
            t -= 1
        return t
    while t < G and head[s, 1, t] < 0:
        t += 1
    return t


@njit(cache=True)
def _other(i, n_sym, lo, tick, mid0, typ, sym, price, p2, p3, code, aux, shares):
    """Row ``i``: one of the non-book types Y L V W K J h I N O, for a random symbol."""
    c = np.random.randint(0, 10)
    s = np.random.randint(0, n_sym)
    sym[i] = s
    mid = lo[s] + tick[s] * mid0[s]
    if c == 0:  # Y
        typ[i] = 89
        code[i] = 48 + np.random.randint(0, 3)
    elif c == 1:  # L
        typ[i] = 76
        aux[i] = np.random.randint(0, 8)
        code[i] = 89 if np.random.random() < 0.5 else 78
    elif c == 2:  # V (market wide, locate 0; Price(8))
        typ[i] = 86
        sym[i] = -1
        price[i] = 3_000_00000000 + np.random.randint(0, 100) * 1_00000000
        p2[i] = price[i] - 200_00000000
        p3[i] = price[i] - 500_00000000
    elif c == 3:  # W
        typ[i] = 87
        sym[i] = -1
        code[i] = 49 + np.random.randint(0, 3)
    elif c == 4:  # K
        typ[i] = 75
        aux[i] = 34200 + np.random.randint(0, 3600)
        code[i] = 65
        price[i] = mid
    elif c == 5:  # J
        typ[i] = 74
        price[i] = mid
        p2[i] = mid + 10 * tick[s]
        p3[i] = max(mid - 10 * tick[s], 1)
        aux[i] = np.random.randint(0, 5)
    elif c == 6:  # h
        typ[i] = 104
        code[i] = 72 if np.random.random() < 0.5 else 84
    elif c == 7:  # I
        typ[i] = 73
        shares[i] = np.random.randint(0, 1_000_000)
        aux[i] = np.random.randint(0, 100_000)
        code[i] = (66, 83, 78, 79)[np.random.randint(0, 4)]
        price[i] = mid
        p2[i] = mid + tick[s]
        p3[i] = mid
    elif c == 8:  # N
        typ[i] = 78
        code[i] = (66, 83, 65, 32)[np.random.randint(0, 4)]
    else:  # O
        typ[i] = 79
        price[i] = mid
        p2[i] = mid + 20 * tick[s]
        p3[i] = max(mid - 20 * tick[s], 1)
        aux[i] = np.random.randint(0, 1000)


@njit(cache=True)
def _simulate(n, n_sym, seed, lo, tick, mid0, ts0, ts_span, ref_salt, p_cum, halt_sym,
              max_live):  # fmt: skip
    np.random.seed(seed)
    typ = np.zeros(n, np.uint8)
    sym = np.zeros(n, np.int64)
    ts = np.zeros(n, np.uint64)
    ref = np.zeros(n, np.uint64)
    nref = np.zeros(n, np.uint64)
    side = np.zeros(n, np.uint8)
    shares = np.zeros(n, np.uint64)
    price = np.zeros(n, np.uint64)
    match = np.zeros(n, np.uint64)
    code = np.zeros(n, np.uint8)
    aux = np.zeros(n, np.uint64)
    p2 = np.zeros(n, np.uint64)
    p3 = np.zeros(n, np.uint64)

    # orders: slot arrays with a free list; FIFO per (symbol, side, tick) as a linked list
    o_ref = np.zeros(max_live, np.uint64)
    o_sym = np.zeros(max_live, np.int64)
    o_sd = np.zeros(max_live, np.int64)
    o_t = np.zeros(max_live, np.int64)
    o_sh = np.zeros(max_live, np.int64)
    o_prev = np.full(max_live, -1, np.int64)
    o_next = np.full(max_live, -1, np.int64)
    o_pos = np.zeros(max_live, np.int64)
    live = np.zeros(max_live, np.int64)
    free = np.arange(max_live - 1, -1, -1).astype(np.int64)
    n_free = max_live
    n_live = 0
    head = np.full((n_sym, 2, G), -1, np.int64)
    tail = np.full((n_sym, 2, G), -1, np.int64)
    best = np.zeros((n_sym, 2), np.int64)
    best[:, 0] = -1
    best[:, 1] = G
    counter = np.uint64(0)
    next_match = np.uint64(1)
    t_now = np.uint64(ts0)
    gap = ts_span / max(n, 1)

    phase_left = 0
    target = 1
    halt_at = (n * 2) // 5
    for i in range(n):
        t_now += np.uint64(1 + int(np.random.exponential(gap)))
        ts[i] = t_now
        if phase_left == 0:
            phase_left = np.random.randint(n // 40 + 50, n // 10 + 100)
            u = np.random.random()
            if u < 0.25:
                target = 3 * n_sym
            elif u < 0.7:
                target = 30 * n_sym
            else:
                target = 100 * n_sym
        phase_left -= 1

        # scheduled trading halt of one symbol: H then Q (quotation only) then T
        if i == halt_at or i == halt_at + 1000 or i == halt_at + 2000:
            typ[i] = 72  # H
            sym[i] = halt_sym
            code[i] = 72 if i == halt_at else (81 if i == halt_at + 1000 else 84)
            continue

        u = np.random.random()
        shift = 0.05 if n_live < target else -0.05
        if n_live >= max_live - 1:
            shift = -0.3
        # p_cum: cumulative A, F, D, E, C, X, U, P, Q, B, other
        if n_live == 0 or u < p_cum[1] + shift:
            kind = 0 if u < p_cum[0] + shift * (p_cum[0] / p_cum[1]) else 1
        else:
            kind = 2
            while kind < 10 and u >= p_cum[kind]:
                kind += 1
        if kind == 10:  # other message types
            _other(i, n_sym, lo, tick, mid0, typ, sym, price, p2, p3, code, aux, shares)
            continue
        if kind == 7 or kind == 8 or kind == 9:  # P, Q, B
            s = np.random.randint(0, n_sym)
            sym[i] = s
            if kind == 9 and next_match > np.uint64(1):
                typ[i] = 66
                match[i] = np.uint64(np.random.randint(1, np.int64(next_match)))
                continue
            mt = best[s, 0] if best[s, 0] >= 0 else mid0[s]
            typ[i] = 80 if kind != 8 else 81
            match[i] = next_match
            next_match += np.uint64(1)
            price[i] = lo[s] + tick[s] * mt
            if kind == 8:
                shares[i] = np.random.randint(0, 5_000_000)
                code[i] = (79, 67, 72, 73)[np.random.randint(0, 4)]
            else:
                shares[i] = _shares()
                side[i] = 66 if np.random.random() < 0.5 else 83
            continue

        if kind <= 1:  # add
            s = min(int(n_sym * np.random.random() ** 1.5), n_sym - 1)
            sd = np.random.randint(0, 2)
            if sd == 0 and best[s, 1] == 0:
                sd = 1
            if sd == 1 and best[s, 0] == G - 1:
                sd = 0
            bb = best[s, 0]
            ba = best[s, 1]
            if sd == 0:
                own = bb if bb >= 0 else (ba - 1 if ba < G else mid0[s])
                if np.random.random() < 0.15 and own + 1 < ba:
                    t = own + 1 + np.random.randint(0, min(ba - own - 1, 3))
                else:
                    t = own - _geom(0.35)
                t = max(0, min(t, ba - 1))
            else:
                own = ba if ba < G else (bb + 1 if bb >= 0 else mid0[s])
                if np.random.random() < 0.15 and own - 1 > bb:
                    t = own - 1 - np.random.randint(0, min(own - bb - 1, 3))
                else:
                    t = own + _geom(0.35)
                t = min(G - 1, max(t, bb + 1))
            slot = free[n_free - 1]
            n_free -= 1
            counter += np.uint64(1)
            r = _mix64(counter ^ ref_salt)
            while r == np.uint64(0):  # only if a salted counter maps to 0; skip it
                counter += np.uint64(1)
                r = _mix64(counter ^ ref_salt)
            o_ref[slot] = r
            o_sym[slot] = s
            o_sd[slot] = sd
            o_t[slot] = t
            o_sh[slot] = _shares()
            o_prev[slot] = tail[s, sd, t]
            o_next[slot] = -1
            if tail[s, sd, t] >= 0:
                o_next[tail[s, sd, t]] = slot
            else:
                head[s, sd, t] = slot
            tail[s, sd, t] = slot
            o_pos[slot] = n_live
            live[n_live] = slot
            n_live += 1
            if sd == 0 and t > best[s, 0]:
                best[s, 0] = t
            if sd == 1 and t < best[s, 1]:
                best[s, 1] = t
            typ[i] = 65 if kind == 0 else 70
            sym[i] = s
            ref[i] = r
            side[i] = 66 if sd == 0 else 83
            shares[i] = o_sh[slot]
            price[i] = lo[s] + tick[s] * t
            aux[i] = np.random.randint(0, 8)
            continue

        # kinds acting on a live order: D=2, E=3, C=4, X=5, U=6
        slot = live[np.random.randint(0, n_live)]
        if kind == 3 or kind == 4 or (kind == 2 and np.random.random() < 0.35):
            s0 = o_sym[slot]
            sd0 = o_sd[slot]
            slot = head[s0, sd0, best[s0, sd0]]  # time priority at the best level
        if kind == 5 and o_sh[slot] < 2:
            kind = 2
        s = o_sym[slot]
        sd = o_sd[slot]
        t = o_t[slot]
        sym[i] = s
        ref[i] = o_ref[slot]
        rem = o_sh[slot]
        gone = True
        if kind == 3 or kind == 4:
            q = rem if (rem == 1 or np.random.random() < 0.6) else np.random.randint(1, rem)
            typ[i] = 69 if kind == 3 else 67
            shares[i] = q
            match[i] = next_match
            next_match += np.uint64(1)
            if kind == 4:
                code[i] = 89 if np.random.random() < 0.8 else 78
                price[i] = lo[s] + tick[s] * t
            gone = q == rem
            o_sh[slot] = rem - q
        elif kind == 5:
            q = np.random.randint(1, rem)
            typ[i] = 88
            shares[i] = q
            gone = False
            o_sh[slot] = rem - q
        elif kind == 2:
            typ[i] = 68
        if gone or kind == 6:
            # unlink from its level
            if o_prev[slot] >= 0:
                o_next[o_prev[slot]] = o_next[slot]
            else:
                head[s, sd, t] = o_next[slot]
            if o_next[slot] >= 0:
                o_prev[o_next[slot]] = o_prev[slot]
            else:
                tail[s, sd, t] = o_prev[slot]
            last = live[n_live - 1]
            live[o_pos[slot]] = last
            o_pos[last] = o_pos[slot]
            n_live -= 1
            if head[s, sd, t] < 0 and best[s, sd] == t:
                best[s, sd] = _rescan(s, sd, t, head)
            if kind != 6:
                free[n_free] = slot
                n_free += 1
                continue
            # replace: same slot, new reference, price and shares; loses priority (tail)
            typ[i] = 85
            bb = best[s, 0]
            ba = best[s, 1]
            if np.random.random() < 0.2:  # through the touch, up to one tick off the other side
                nt = ba - 1 if sd == 0 else bb + 1
            else:
                nt = t + np.random.randint(-3, 4)
            if (sd == 0 and ba == 0) or (sd == 1 and bb == G - 1):
                typ[i] = 68  # no room left on this side: the replace becomes a delete
                free[n_free] = slot
                n_free += 1
                continue
            if sd == 0:
                nt = max(0, min(nt, ba - 1, G - 1))
            else:
                nt = min(G - 1, max(nt, bb + 1, 0))
            counter += np.uint64(1)
            r = _mix64(counter ^ ref_salt)
            o_ref[slot] = r
            o_t[slot] = nt
            o_sh[slot] = _shares() if np.random.random() < 0.5 else max(1, rem // 2)
            o_prev[slot] = tail[s, sd, nt]
            o_next[slot] = -1
            if tail[s, sd, nt] >= 0:
                o_next[tail[s, sd, nt]] = slot
            else:
                head[s, sd, nt] = slot
            tail[s, sd, nt] = slot
            o_pos[slot] = n_live
            live[n_live] = slot
            n_live += 1
            if sd == 0 and nt > best[s, 0]:
                best[s, 0] = nt
            if sd == 1 and nt < best[s, 1]:
                best[s, 1] = nt
            nref[i] = r
            shares[i] = o_sh[slot]
            price[i] = lo[s] + tick[s] * nt
    return typ, sym, ts, ref, nref, side, shares, price, match, code, aux, p2, p3


# --- realistic-depth profile -----------------------------------------------------------------


@dataclass(frozen=True)
class Realistic:
    """Knobs of the realistic-depth profile (``generate(..., profile=Realistic(...))``).

    The defaults are what ``profile="realistic"`` uses; the depth they reach is measured in
    docs/reference-book.md ("Realistic-depth generator").

    Attributes
    ----------
    depth : int
        Target of live orders per side of the most liquid symbol; symbol ``k`` (in generation
        order, not locate order) targets ``depth / (k + 1) ** liquidity``, at least 40.
    liquidity : float
        Zipf exponent of both depth and message activity across symbols.
    near : float
        Share of new orders placed near their own touch (geometric offset, ``near_p``).
    near_p : float
        Parameter of that geometric offset (mean ``1 / near_p - 1`` ticks).
    tail_alpha : float
        Pareto exponent of the other new orders' offsets from the touch (smaller: heavier).
    tail_scale : float
        Pareto scale, in ticks.
    max_offset : int
        Largest offset of a (non-stub) new order from its touch, in ticks.
    stubs : int
        Market-maker stub quotes kept per (symbol, side), at the edge of the price grid:
        thousands of ticks away (a bid at $0.01 on low-priced symbols).
    grid : int
        Ticks in each symbol's price grid (the touch starts in the middle).
    sweep : float
        Probability that a book event is a sweep: one marketable order executing the
        orders of several levels (``E``/``C`` with one timestamp), its rest sometimes posted.
    cancel_burst : float
        Probability that a book event is a burst of ``D``: one participant pulls several
        orders, half the time from the touch down (draining levels).
    near_cancel : float
        Share of ``D`` that take the nearer to the touch of two random orders of the side
        (the touch churns; far orders live long, which is what spreads the book).
    """

    depth: int = 7000
    liquidity: float = 0.9
    near: float = 0.3
    near_p: float = 0.15
    tail_alpha: float = 0.35
    tail_scale: float = 6.0
    max_offset: int = 5000
    stubs: int = 2
    grid: int = 16384
    sweep: float = 0.001
    cancel_burst: float = 0.006
    near_cancel: float = 0.85

    def __post_init__(self):
        if self.depth < 1 or self.grid < 2 * self.max_offset + 64 or self.max_offset < 1:
            raise ValueError("need depth >= 1, max_offset >= 1 and grid >= 2 * max_offset + 64")
        for name in ("near", "sweep", "cancel_burst", "near_cancel"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if not 0.0 < self.near_p <= 1.0 or self.tail_alpha <= 0 or self.tail_scale <= 0:
            raise ValueError("need 0 < near_p <= 1, tail_alpha > 0 and tail_scale > 0")


PROFILES = {"classic": None, "realistic": Realistic()}
"""Named profiles: ``classic`` (the default: small books, 256-tick grids, every edge case of the
format) and ``realistic`` (deep books; :class:`Realistic` defaults)."""


@njit(cache=True)
def _offset(near, near_p, alpha, scale, cap):
    """Ticks between a new order and its own touch: geometric near the touch, else Pareto."""
    if np.random.random() < near:
        return min(_geom(near_p), cap)
    for _ in range(8):
        k = scale * ((1.0 - np.random.random()) ** (-1.0 / alpha) - 1.0)
        if k <= cap:
            return int(k)
    return np.random.randint(0, cap + 1)


@njit(cache=True)
def _real_shares():
    u = np.random.random()
    if u < 0.15:
        return np.int64(np.random.randint(1, 100))  # odd lot
    if u < 0.18:
        return np.int64(np.random.randint(101, 5000))  # mixed lot
    if u < 0.185:
        return np.int64(np.random.randint(10_000, 200_000))  # block
    return np.int64(100 * (1 + int(np.random.exponential(2.0))))


@njit(cache=True)
def _link(slot, s, sd, t, head, tail, o_prev, o_next):
    """Append ``slot`` to the FIFO of tick ``t`` (time priority: new orders queue last)."""
    o_prev[slot] = tail[s, sd, t]
    o_next[slot] = -1
    if tail[s, sd, t] >= 0:
        o_next[tail[s, sd, t]] = slot
    else:
        head[s, sd, t] = slot
    tail[s, sd, t] = slot


@njit(cache=True)
def _unlink(slot, s, sd, t, head, tail, o_prev, o_next):
    if o_prev[slot] >= 0:
        o_next[o_prev[slot]] = o_next[slot]
    else:
        head[s, sd, t] = o_next[slot]
    if o_next[slot] >= 0:
        o_prev[o_next[slot]] = o_prev[slot]
    else:
        tail[s, sd, t] = o_prev[slot]


@njit(cache=True)
def _scan(head, s, sd, start, g):
    """Best non-empty tick of side ``sd`` at or behind ``start`` (-1 bid / ``g`` ask if none)."""
    t = start
    if sd == 0:
        while t >= 0 and head[s, 0, t] < 0:
            t -= 1
        return t
    while t < g and head[s, 1, t] < 0:
        t += 1
    return t


@njit(cache=True)
def _simulate_real(n, n_sym, seed, lo, tick, mid0, g, ts0, ts_span, ref0, w_cum, target, cap,
                   halt_sym, fp, ip):  # fmt: skip
    """Body of the realistic profile: ``n`` rows, same columns as :func:`_simulate`.

    ``fp`` = near, near_p, tail_alpha, tail_scale, sweep, cancel_burst; ``ip`` = max_offset,
    stubs. One loop step is one event: a single message, or a sweep / cancel burst of several.
    """
    np.random.seed(seed)
    near, near_p, alpha, scale, p_sweep, p_burst = fp[0], fp[1], fp[2], fp[3], fp[4], fp[5]
    p_near_d = fp[6]
    max_off, n_stub = ip[0], ip[1]
    typ = np.zeros(n, np.uint8)
    sym = np.zeros(n, np.int64)
    ts = np.zeros(n, np.uint64)
    ref = np.zeros(n, np.uint64)
    nref = np.zeros(n, np.uint64)
    side = np.zeros(n, np.uint8)
    shares = np.zeros(n, np.uint64)
    price = np.zeros(n, np.uint64)
    match = np.zeros(n, np.uint64)
    code = np.zeros(n, np.uint8)
    aux = np.zeros(n, np.uint64)
    p2 = np.zeros(n, np.uint64)
    p3 = np.zeros(n, np.uint64)

    # live orders of (symbol, side) in a slice of lv (for O(1) random picks); FIFO per tick
    lv_off = np.zeros((n_sym, 2), np.int64)
    n_slots = 0
    for s in range(n_sym):
        for sd in range(2):
            lv_off[s, sd] = n_slots
            n_slots += cap[s]
    lv = np.zeros(n_slots, np.int64)
    nlive = np.zeros((n_sym, 2), np.int64)
    o_ref = np.zeros(n_slots, np.uint64)
    o_t = np.zeros(n_slots, np.int64)
    o_sh = np.zeros(n_slots, np.int64)
    o_stub = np.zeros(n_slots, np.bool_)
    o_prev = np.full(n_slots, -1, np.int32)
    o_next = np.full(n_slots, -1, np.int32)
    o_pos = np.zeros(n_slots, np.int64)
    free = np.arange(n_slots - 1, -1, -1).astype(np.int64)
    n_free = n_slots
    nstub = np.zeros((n_sym, 2), np.int64)
    head = np.full((n_sym, 2, g), -1, np.int32)
    tail = np.full((n_sym, 2, g), -1, np.int32)
    best = np.zeros((n_sym, 2), np.int64)
    best[:, 0] = -1
    best[:, 1] = g
    mid = mid0.copy()  # last mid tick, for the prices of P/Q and the non-book types
    counter = np.uint64(ref0)
    next_match = np.uint64(1)
    t_now = np.uint64(ts0)
    gap = ts_span / max(n, 1)
    halt_at = (n * 2) // 5
    halt_step = 0
    halted = False

    i = 0
    while i < n:
        t_now += np.uint64(1 + int(np.random.exponential(gap)))
        # scheduled trading halt of one symbol: H then Q (quotation only) then T
        if halt_step < 3 and i >= halt_at + 1000 * halt_step:
            typ[i] = 72
            sym[i] = halt_sym
            ts[i] = t_now
            code[i] = (72, 81, 84)[halt_step]
            halted = halt_step < 2
            halt_step += 1
            i += 1
            continue
        u = np.random.random()
        if u < 0.0045:  # the non-book types, so that a decoder sees every type
            _other(i, n_sym, lo, tick, mid, typ, sym, price, p2, p3, code, aux, shares)
            ts[i] = t_now
            i += 1
            continue
        if u < 0.0145:  # P (non-displayed trade), Q (cross), B (broken trade)
            s = min(np.searchsorted(w_cum, np.random.random()), n_sym - 1)
            sym[i] = s
            ts[i] = t_now
            v = np.random.random()
            if v < 0.03 and next_match > np.uint64(1):
                typ[i] = 66
                match[i] = np.uint64(np.random.randint(1, np.int64(next_match)))
            else:
                typ[i] = 81 if v < 0.05 else 80
                match[i] = next_match
                next_match += np.uint64(1)
                price[i] = lo[s] + tick[s] * mid[s]
                if typ[i] == 81:
                    shares[i] = np.random.randint(0, 5_000_000)
                    code[i] = (79, 67, 72, 73)[np.random.randint(0, 4)]
                else:
                    shares[i] = _real_shares()
                    side[i] = 66 if np.random.random() < 0.5 else 83
            i += 1
            continue

        s = min(np.searchsorted(w_cum, np.random.random()), n_sym - 1)
        sd = np.random.randint(0, 2)
        nl = nlive[s, sd]
        bb = best[s, 0]
        ba = best[s, 1]
        if bb >= 0 and ba < g:
            mid[s] = (bb + ba) // 2
        trade_ok = not (halted and s == halt_sym)
        # adds lean towards the symbol's target depth: fast build-up, then balance
        fill = nl / target[s]
        p_add = 0.62 if fill < 0.5 else (0.53 if fill < 1.0 else 0.44)
        if nl + 8 >= cap[s]:
            p_add = 0.0
        v = np.random.random()
        if nl == 0 or v < p_add:
            kind = 0
        else:
            w = np.random.random()
            if w < p_burst:
                kind = 7
            elif w < p_burst + p_sweep:
                kind = 6 if trade_ok else 2
            elif w < 0.79:
                kind = 2  # D
            elif w < 0.91:
                kind = 5  # U
            elif w < 0.95:
                kind = 4  # X
            else:
                kind = 3 if trade_ok else 2  # E / C at the best

        if kind == 0:  # add: A, or F with an MPID; some are stub quotes
            ts[i] = t_now
            # stubs come once the side has a book: a stub touch would drag the other side there
            stub = nstub[s, sd] < n_stub and nl >= 20 and np.random.random() < 0.05
            if stub:
                t = np.random.randint(0, 4) if sd == 0 else g - 1 - np.random.randint(0, 4)
                if (sd == 0 and t >= ba) or (sd == 1 and t <= bb):
                    stub = False
            if not stub:
                if sd == 0:
                    own = bb if bb >= 0 else (ba - 1 if ba < g else mid[s])
                    if np.random.random() < 0.1 and own + 1 < ba:
                        t = own + 1 + np.random.randint(0, min(ba - own - 1, 3))
                    else:
                        k = _offset(near, near_p, alpha, scale, max_off)
                        t = own - k if k <= own else own - k % (own + 1)
                    t = max(0, min(t, ba - 1))
                else:
                    own = ba if ba < g else (bb + 1 if bb >= 0 else mid[s])
                    if np.random.random() < 0.1 and own - 1 > bb:
                        t = own - 1 - np.random.randint(0, min(own - bb - 1, 3))
                    else:
                        k = _offset(near, near_p, alpha, scale, max_off)
                        room = g - 1 - own
                        t = own + k if k <= room else own + k % (room + 1)
                    t = min(g - 1, max(t, bb + 1))
            slot = free[n_free - 1]
            n_free -= 1
            # nearly sequential references, as NASDAQ's: gaps are other books' orders
            counter += np.uint64(1 + (np.random.randint(1, 20) if np.random.random() < 0.1 else 0))
            o_ref[slot] = counter
            o_t[slot] = t
            o_sh[slot] = 100 if stub else _real_shares()
            o_stub[slot] = stub
            nstub[s, sd] += 1 if stub else 0
            _link(slot, s, sd, t, head, tail, o_prev, o_next)
            o_pos[slot] = nl
            lv[lv_off[s, sd] + nl] = slot
            nlive[s, sd] = nl + 1
            if sd == 0 and t > bb:
                best[s, 0] = t
            if sd == 1 and t < ba:
                best[s, 1] = t
            typ[i] = 70 if (stub or np.random.random() < 0.06) else 65
            sym[i] = s
            ref[i] = counter
            side[i] = 66 if sd == 0 else 83
            shares[i] = o_sh[slot]
            price[i] = lo[s] + tick[s] * t
            aux[i] = np.random.randint(0, 8)
            i += 1
            continue

        if kind == 6 or kind == 7:  # sweep / cancel burst: several messages, one event
            top = kind == 6 or np.random.random() < 0.5
            if kind == 6:
                # pull the touch back towards the grid's middle when it has wandered off
                # (within a few hundred ticks for low-priced symbols: their bids end at $0.01)
                drift = (mid[s] - mid0[s]) / max(50.0, min(g / 8.0, mid0[s] / 2.0))
                sd = 1 if np.random.random() < 0.5 - 0.4 * max(-1.0, min(1.0, drift)) else 0
                big = np.random.random() < 0.03
                n_lv = 8 + np.random.randint(0, 25) if big else 2 + _geom(0.35)
                room = min(n - i, 200)
            else:
                n_lv = 1 << 30
                room = min(n - i, 4 + _geom(0.1), 120)
            if nlive[s, sd] == 0:
                continue
            t0 = best[s, sd]
            last_full = -1
            levels = 0
            sh_cum = 0
            while room > 0 and nlive[s, sd] > 0:
                if top:
                    t = best[s, sd]
                    if t - t0 > 60 or t0 - t > 60:  # a limit price: never into the stubs
                        break
                    slot = head[s, sd, t]
                else:
                    slot = lv[lv_off[s, sd] + np.random.randint(0, nlive[s, sd])]
                    t = o_t[slot]
                ts[i] = t_now
                sym[i] = s
                ref[i] = o_ref[slot]
                rem = o_sh[slot]
                q = rem
                if kind == 6:
                    last_level = levels == n_lv - 1 and o_next[slot] < 0
                    if (levels == n_lv - 1 and np.random.random() < 0.3) or last_level:
                        q = rem if rem == 1 else np.random.randint(1, rem + 1)
                    typ[i] = 69 if np.random.random() < 0.92 else 67
                    shares[i] = q
                    match[i] = next_match
                    next_match += np.uint64(1)
                    if typ[i] == 67:
                        code[i] = 89
                        price[i] = lo[s] + tick[s] * t
                    sh_cum += q
                else:
                    typ[i] = 68
                    t_now += np.uint64(1 + np.random.randint(0, 40))
                i += 1
                room -= 1
                if q < rem:
                    o_sh[slot] = rem - q
                    break  # the aggressor is filled
                _unlink(slot, s, sd, t, head, tail, o_prev, o_next)
                last = lv[lv_off[s, sd] + nlive[s, sd] - 1]
                lv[lv_off[s, sd] + o_pos[slot]] = last
                o_pos[last] = o_pos[slot]
                nlive[s, sd] -= 1
                nstub[s, sd] -= 1 if o_stub[slot] else 0
                free[n_free] = slot
                n_free += 1
                if head[s, sd, t] < 0:
                    if best[s, sd] == t:
                        best[s, sd] = _scan(head, s, sd, t, g)
                    if top:
                        levels += 1
                        last_full = t
                        if levels >= n_lv:
                            break
            # the rest of a sweeping order rests at its limit, the last price it emptied
            o = 1 - sd
            room_o = nlive[s, o] + 8 < cap[s]
            if kind == 6 and last_full >= 0 and i < n and room_o and np.random.random() < 0.5:
                if (o == 0 and last_full < best[s, 1]) or (o == 1 and last_full > best[s, 0]):
                    slot = free[n_free - 1]
                    n_free -= 1
                    counter += np.uint64(1)
                    o_ref[slot] = counter
                    o_t[slot] = last_full
                    o_sh[slot] = max(1, sh_cum // 3)
                    o_stub[slot] = False
                    _link(slot, s, o, last_full, head, tail, o_prev, o_next)
                    o_pos[slot] = nlive[s, o]
                    lv[lv_off[s, o] + nlive[s, o]] = slot
                    nlive[s, o] += 1
                    if (o == 0 and last_full > best[s, 0]) or (o == 1 and last_full < best[s, 1]):
                        best[s, o] = last_full
                    typ[i] = 65
                    ts[i] = t_now
                    sym[i] = s
                    ref[i] = counter
                    side[i] = 66 if o == 0 else 83
                    shares[i] = o_sh[slot]
                    price[i] = lo[s] + tick[s] * last_full
                    i += 1
            continue

        # single-order events: D=2, E/C=3, X=4, U=5
        if kind == 3:
            slot = head[s, sd, best[s, sd]]  # time priority at the best level
        else:
            slot = lv[lv_off[s, sd] + np.random.randint(0, nl)]
            if kind == 2 and np.random.random() < p_near_d:
                # most cancels are near the touch: keep the nearer of two picks
                other = lv[lv_off[s, sd] + np.random.randint(0, nl)]
                if abs(o_t[other] - best[s, sd]) < abs(o_t[slot] - best[s, sd]):
                    slot = other
        if kind == 4 and o_sh[slot] < 2:
            kind = 2
        t = o_t[slot]
        rem = o_sh[slot]
        ts[i] = t_now
        sym[i] = s
        ref[i] = o_ref[slot]
        gone = True
        if kind == 3:
            q = rem if (rem == 1 or np.random.random() < 0.6) else np.random.randint(1, rem)
            typ[i] = 69 if np.random.random() < 0.9 else 67
            shares[i] = q
            match[i] = next_match
            next_match += np.uint64(1)
            if typ[i] == 67:
                code[i] = 89 if np.random.random() < 0.8 else 78
                price[i] = lo[s] + tick[s] * t
            gone = q == rem
            o_sh[slot] = rem - q
        elif kind == 4:
            q = np.random.randint(1, rem)
            typ[i] = 88
            shares[i] = q
            gone = False
            o_sh[slot] = rem - q
        else:
            typ[i] = 68
        i += 1
        if not gone:
            continue
        _unlink(slot, s, sd, t, head, tail, o_prev, o_next)
        if head[s, sd, t] < 0 and best[s, sd] == t:
            best[s, sd] = _scan(head, s, sd, t, g)
        if kind != 5:
            last = lv[lv_off[s, sd] + nl - 1]
            lv[lv_off[s, sd] + o_pos[slot]] = last
            o_pos[last] = o_pos[slot]
            nlive[s, sd] = nl - 1
            nstub[s, sd] -= 1 if o_stub[slot] else 0
            free[n_free] = slot
            n_free += 1
            continue
        # replace: same slot (it stays live), new reference, price and shares; queues last
        bb = best[s, 0]
        ba = best[s, 1]
        if o_stub[slot]:  # a market maker refreshes its stub quote
            nt = np.random.randint(0, 4) if sd == 0 else g - 1 - np.random.randint(0, 4)
        else:
            r = np.random.random()
            own = bb if sd == 0 else ba
            if own < 0 or own >= g:  # it was the side's only order
                own = t
            if r < 0.25:  # to the touch or one tick through it
                nt = own + (1 if sd == 0 else -1) * np.random.randint(0, 2)
            elif r < 0.85:
                nt = t + np.random.randint(-3, 4)
            else:  # a fresh heavy-tailed offset, folded back into the grid like an add's
                k = _offset(near, near_p, alpha, scale, max_off)
                if sd == 0:
                    nt = own - k if k <= own else own - k % (own + 1)
                else:
                    nt = own + k if k <= g - 1 - own else own + k % (g - own)
        if sd == 0:
            nt = max(0, min(nt, ba - 1, g - 1))
        else:
            nt = min(g - 1, max(nt, bb + 1, 0))
        if (sd == 0 and ba == 0) or (sd == 1 and bb == g - 1):
            nt = t  # no room at all on this side (cannot happen with the stubs inside)
        counter += np.uint64(1 + (np.random.randint(1, 20) if np.random.random() < 0.1 else 0))
        o_ref[slot] = counter
        o_t[slot] = nt
        o_sh[slot] = _real_shares() if np.random.random() < 0.5 else max(1, rem // 2)
        _link(slot, s, sd, nt, head, tail, o_prev, o_next)
        if sd == 0 and nt > best[s, 0]:
            best[s, 0] = nt
        if sd == 1 and nt < best[s, 1]:
            best[s, 1] = nt
        typ[i - 1] = 85
        nref[i - 1] = counter
        shares[i - 1] = o_sh[slot]
        price[i - 1] = lo[s] + tick[s] * nt
    return typ, sym, ts, ref, nref, side, shares, price, match, code, aux, p2, p3


def _realistic_body(n_body, n_symbols, seed, rng, ts_open, span, cfg: Realistic):
    """Body columns of the realistic profile: symbol parameters from ``rng``, then the kernel."""
    g = int(cfg.grid)
    # $0.01 ticks; prices log-uniform $2..$400, the most liquid symbol $80..$400 and, from 4
    # symbols on, one priced like AMZN (sweeps and far quotes at big absolute prices)
    mid_px = np.exp(rng.uniform(np.log(2e4), np.log(4e6), n_symbols)).astype(np.int64)
    mid_px[0] = int(np.exp(rng.uniform(np.log(8e5), np.log(4e6))))
    if n_symbols >= 4:
        mid_px[3] = int(rng.uniform(2e7, 3.5e7))
    tick = np.full(n_symbols, 100, np.int64)
    lo = np.maximum(mid_px - (g // 2) * tick, tick)
    lo = lo - lo % tick
    lo = np.maximum(lo, tick)
    if np.any(lo + (g - 1) * tick > PRICE4_MAX):
        raise ValueError("price grid above PRICE4_MAX: use a smaller grid")
    mid0 = (mid_px - lo) // tick
    w = 1.0 / np.arange(1, n_symbols + 1) ** cfg.liquidity
    w_cum = np.cumsum(w / w.sum())
    target = np.maximum((cfg.depth * w / w[0]).astype(np.int64), 40)
    # hard cap of live orders per (symbol, side): the kernel stops adding at the cap
    cap = np.minimum(2 * target + 256, n_body + 16).astype(np.int64)
    fp = np.array([cfg.near, cfg.near_p, cfg.tail_alpha, cfg.tail_scale, cfg.sweep,
                   cfg.cancel_burst, cfg.near_cancel], np.float64)  # fmt: skip
    ip = np.array([cfg.max_offset, cfg.stubs], np.int64)
    ref0 = int(rng.integers(1, 10_000))
    halt_sym = int(rng.integers(n_symbols // 2, n_symbols))  # a less liquid one
    return _simulate_real(
        n_body, n_symbols, int(seed) % (2**32), lo, tick, mid0, g, ts_open, float(span), ref0,
        w_cum, target, cap, halt_sym, fp, ip,
    )  # fmt: skip


def _symbols(n_symbols: int, rng: np.random.Generator) -> list[bytes]:
    out: set[bytes] = set()
    letters = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)
    while len(out) < n_symbols:
        ln = int(rng.integers(1, 6))
        out.add(bytes(letters[rng.integers(0, 26, ln)]))
    return sorted(out)


def _locates(n_symbols: int, rng: np.random.Generator) -> np.ndarray:
    if n_symbols > 65535:
        raise ValueError("at most 65535 symbols (stock locate is 16 bits, 0 is market wide)")
    if n_symbols == 1:
        return np.array([65535], np.int64)
    rest = rng.choice(np.arange(1, 65535), n_symbols - 1, replace=False)
    return np.sort(np.concatenate([rest, [65535]])).astype(np.int64)


def _classic_body(n_body, n_symbols, seed, rng, ts_open, span):
    """Body columns of the classic profile (the draws from ``rng`` are in their historic order:
    the bytes of a seed must not change)."""
    tick = rng.choice(np.array([100, 100, 100, 100, 1, 10000]), n_symbols).astype(np.int64)
    mid_px = np.exp(rng.uniform(np.log(2e4), np.log(5e6), n_symbols)).astype(np.int64)
    tick[0] = 100
    mid0 = np.full(n_symbols, G // 2, np.int64)
    lo = np.maximum(mid_px - (G // 2) * tick, tick)
    lo = lo - lo % tick + tick
    if n_symbols > 1:  # one symbol that quotes at the very top of the price range
        k = n_symbols - 1
        tick[k] = 10000
        lo[k] = PRICE4_MAX - (G - 1) * tick[k]
        mid0[k] = G - 6
    if n_symbols > 2:  # one sub-penny symbol
        tick[1] = 1
        lo[1] = 1
    p = np.array([MIX[k] for k in ("A", "F", "D", "E", "C", "X", "U", "P", "Q", "B", "other")])
    p_cum = np.cumsum(p / p.sum())
    max_live = int(min(n_body, 150 * n_symbols + 1000)) + 2
    body = _simulate(
        n_body, n_symbols, int(seed) % (2**32), lo, tick, mid0, ts_open, float(span),
        np.uint64(int(rng.integers(0, 2**63))), p_cum, int(rng.integers(0, n_symbols)), max_live,
    )  # fmt: skip
    return body


def _profile(profile) -> Realistic | None:
    if isinstance(profile, Realistic):
        return profile
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from: {', '.join(PROFILES)}")
    return PROFILES[profile]


def generate_columns(
    n_messages: int, n_symbols: int, seed: int, *, profile: str | Realistic = "classic"
) -> dict:
    """The stream as columns (before encoding); see :func:`generate`.

    Returns
    -------
    dict
        ``{column: ndarray}`` for the columns of every message (``typ`` is the type byte,
        ``loc`` the stock locate, ...), plus ``"symtab"``: ``S8`` array of space-padded symbols
        indexed by locate, and ``"symbols"``: locate -> symbol.
    """
    cfg = _profile(profile)
    n_symbols = int(n_symbols)
    if n_symbols < 1:
        raise ValueError("need at least one symbol")
    pre = 2 * n_symbols + 3
    post = 3
    if n_messages < pre + post + 1:
        raise ValueError(
            f"{n_messages} messages is too few for {n_symbols} symbols "
            f"(need more than {pre + post})"
        )
    rng = np.random.default_rng(seed)
    syms = _symbols(n_symbols, rng)
    locs = _locates(n_symbols, rng)
    n_body = n_messages - pre - post
    ts_open = 9 * 3600 * 10**9 + 30 * 60 * 10**9
    span = 6 * 3600 * 10**9 + 30 * 60 * 10**9
    if cfg is None:
        body = _classic_body(n_body, n_symbols, seed, rng, ts_open, span)
    else:
        body = _realistic_body(n_body, n_symbols, seed, rng, ts_open, span, cfg)
    b = dict(zip(("typ", "sym", "ts", "ref", "nref", "side", "shares", "price", "match", "code",
                  "aux", "p2", "p3"), body, strict=True))  # fmt: skip
    b_loc = np.where(b["sym"] >= 0, locs[np.maximum(b["sym"], 0)], 0)

    # preamble: S O, R..., S S, H T..., S Q ; postamble: S M, S E, S C
    t3 = 3 * 3600 * 10**9
    pre_typ = np.array([ord("S")] + [ord("R")] * n_symbols + [ord("S")] + [ord("H")] * n_symbols
                       + [ord("S")], np.uint8)  # fmt: skip
    pre_loc = np.concatenate([[0], locs, [0], locs, [0]])
    pre_ts = t3 + np.arange(pre, dtype=np.uint64) * 1000
    pre_ts[n_symbols + 1 :] += 3600 * 10**9  # system hours at 04:00
    pre_ts[-1] = ts_open - 1000  # market hours just before the first order
    pre_code = np.zeros(pre, np.uint8)
    pre_code[0], pre_code[n_symbols + 1], pre_code[-1] = ord("O"), ord("S"), ord("Q")
    pre_code[n_symbols + 2 : -1] = ord("T")
    last = int(b["ts"][-1]) if n_body else ts_open
    post_ts = np.zeros(post, np.uint64)
    prev = last
    for k, at in enumerate((ts_open + span, 20 * 3600 * 10**9, 20 * 3600 * 10**9 + 300 * 10**9)):
        prev = max(prev + 1, at)
        post_ts[k] = prev
    cols = {}
    zpre, zpost = np.zeros(pre, np.uint64), np.zeros(post, np.uint64)
    for c in _COLS:
        if c == "typ":
            v = [pre_typ, b["typ"], np.full(post, ord("S"), np.uint8)]
        elif c == "loc":
            v = [pre_loc, b_loc, np.zeros(post, np.int64)]
        elif c == "ts":
            v = [pre_ts, b["ts"], post_ts]
        elif c == "code":
            v = [pre_code, b["code"], np.array([ord("M"), ord("E"), ord("C")], np.uint8)]
        else:
            v = [zpre, b[c], zpost]
        cols[c] = np.concatenate(v)
    cols["loc"] = cols["loc"].astype(np.uint16)
    cols["trk"] = (np.arange(n_messages) % 7).astype(np.uint16)
    symtab = np.full(65536, b" " * 8, "S8")
    for loc, s in zip(locs, syms, strict=True):
        symtab[loc] = s.ljust(8)
    cols["symtab"] = symtab
    cols["symbols"] = {int(loc): s.decode() for loc, s in zip(locs, syms, strict=True)}
    return cols


# --- encoding --------------------------------------------------------------------------------

# spec field -> body column (for every type that has the field), alpha width-1 fields take a byte
_SOURCE = {
    "stock_locate": "loc",
    "tracking_number": "trk",
    "timestamp": "ts",
    "order_reference_number": "ref",
    "original_order_reference_number": "ref",
    "new_order_reference_number": "nref",
    "buy_sell_indicator": "side",
    "shares": "shares",
    "executed_shares": "shares",
    "cancelled_shares": "shares",
    "paired_shares": "shares",
    "imbalance_shares": "aux",
    "price": "price",
    "execution_price": "price",
    "cross_price": "price",
    "far_price": "price",
    "near_price": "p2",
    "current_reference_price": "p3",
    "ipo_price": "price",
    "ipo_quotation_release_time": "aux",
    "auction_collar_reference_price": "price",
    "upper_auction_collar_price": "p2",
    "lower_auction_collar_price": "p3",
    "auction_collar_extension": "aux",
    "level_1": "price",
    "level_2": "p2",
    "level_3": "p3",
    "near_execution_price": "price",
    "maximum_allowable_price": "p2",
    "upper_price_range_collar": "p2",
    "minimum_allowable_price": "p3",
    "lower_price_range_collar": "p3",
    "near_execution_time": "aux",
    "match_number": "match",
    "event_code": "code",
    "trading_state": "code",
    "printable": "code",
    "cross_type": "code",
    "reg_sho_action": "code",
    "interest_flag": "code",
    "breached_level": "code",
    "operational_halt_action": "code",
    "imbalance_direction": "code",
    "primary_market_maker": "code",
}
_OVERRIDE = {("I", "cross_type"): b"O"}
_CONST = {
    "market_category": b"Q",
    "financial_status_indicator": b"N",
    "round_lot_size": 100,
    "round_lots_only": b"N",
    "issue_classification": b"C",
    "issue_sub_type": b"Z ",
    "authenticity": b"P",
    "short_sale_threshold_indicator": b"N",
    "ipo_flag": b"N",
    "luld_reference_price_tier": b"1",
    "etp_flag": b"N",
    "etp_leverage_factor": 0,
    "inverse_indicator": b"N",
    "reserved": b" ",
    "market_maker_mode": b"N",
    "market_participant_state": b"A",
    "ipo_quotation_release_qualifier": b"A",
    "market_code": b"Q",
    "price_variation_indicator": b"L",
    "open_eligibility_status": b"N",
}


def _wire_dtype(mtype: str) -> np.dtype:
    names, formats, offsets = ["_len"], [">u2"], [0]
    for f in MESSAGES[mtype].fields:
        off = 2 + f.offset
        if f.kind == "ts6":
            names += [f"{f.name}_hi", f"{f.name}_lo"]
            formats += [">u2", ">u4"]
            offsets += [off, off + 2]
        elif f.kind == "alpha":
            names.append(f.name)
            formats.append("u1" if f.width == 1 else f"S{f.width}")
            offsets.append(off)
        else:
            names.append(f.name)
            formats.append(f">u{f.width}")
            offsets.append(off)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets,
         "itemsize": 2 + MESSAGES[mtype].length}
    )  # fmt: skip


_WIRE = {t: _wire_dtype(t) for t in MESSAGES}
_LEN = np.zeros(256, np.int64)
for _t, _m in MESSAGES.items():
    _LEN[ord(_t)] = _m.length


@njit(cache=True)
def _scatter(out, starts, rows):
    w = rows.shape[1]
    for i in range(starts.shape[0]):
        s = starts[i]
        for k in range(w):
            out[s + k] = rows[i, k]


def encode_columns(cols: dict) -> bytes:
    """Encode :func:`generate_columns` output to NASDAQ file framing (2-byte BE length each)."""
    typ = cols["typ"]
    n = len(typ)
    lens = _LEN[typ]
    if np.any(lens == 0):
        raise ValueError("unknown message type in columns")
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(lens + 2, out=starts[1:])
    out = np.empty(int(starts[-1]), np.uint8)
    for t, spec in MESSAGES.items():
        idx = np.nonzero(typ == ord(t))[0]
        if len(idx) == 0:
            continue
        arr = np.zeros(len(idx), _WIRE[t])
        arr["_len"] = spec.length
        arr["message_type"] = ord(t)
        for f in spec.fields[1:]:
            key = (t, f.name)
            if key in _OVERRIDE:
                arr[f.name] = _OVERRIDE[key][0] if f.width == 1 else _OVERRIDE[key]
            elif f.name == "stock":
                arr["stock"] = cols["symtab"][cols["loc"][idx]]
            elif f.name in ("attribution", "mpid"):
                arr[f.name] = np.array(_MPIDS, "S4")[cols["aux"][idx] % len(_MPIDS)]
            elif f.name == "reason":
                arr["reason"] = np.where(cols["code"][idx] == ord("H"), b"T1  ", b"    ")
            elif f.name in _SOURCE:
                v = cols[_SOURCE[f.name]][idx]
                if f.kind == "ts6":
                    v = v.astype(np.uint64)
                    arr[f"{f.name}_hi"] = v >> np.uint64(32)
                    arr[f"{f.name}_lo"] = v & np.uint64(0xFFFFFFFF)
                elif f.kind == "alpha":
                    arr[f.name] = np.where(v == 0, 32, v)
                else:
                    arr[f.name] = v
            elif f.name in _CONST:
                c = _CONST[f.name]
                arr[f.name] = c[0] if (isinstance(c, bytes) and f.width == 1) else c
            elif f.kind == "alpha":
                arr[f.name] = 32 if f.width == 1 else b" " * f.width
        rows = arr.view(np.uint8).reshape(len(idx), 2 + spec.length)
        _scatter(out, starts[idx], rows)
    return out.tobytes()


def generate(
    n_messages: int, n_symbols: int, seed: int, *, profile: str | Realistic = "classic"
) -> bytes:
    """A valid ITCH 5.0 stream of exactly ``n_messages`` messages in NASDAQ file framing.

    Parameters
    ----------
    n_messages : int
        Total messages, preamble (``S``, ``R``, ``H``) and closing ``S`` included; must exceed
        ``2 * n_symbols + 6``.
    n_symbols : int
        Number of symbols in the stock directory (1..65535).
    seed : int
        Everything is a function of the seed (and of the profile).
    profile : {"classic", "realistic"} or Realistic, optional
        ``"classic"`` (default; the bytes of a seed never change): small books of at most a few
        tens of levels on 256-tick grids, every edge case of the format. ``"realistic"``: deep
        books (hundreds to over a thousand levels per side on the liquid symbols),
        heavy-tailed offsets from the touch, stub quotes, sweeps and cancel bursts, nearly
        sequential references; see :class:`Realistic` (pass one to tune it).

    Returns
    -------
    bytes
        The stream, each message preceded by its 2-byte big-endian length.
    """
    return encode_columns(generate_columns(n_messages, n_symbols, seed, profile=profile))


def split_messages(buf) -> list[bytes]:
    """The message bodies of a buffer in NASDAQ file framing (stops at a zero/truncated one)."""
    mv = memoryview(buf)
    out = []
    pos, n = 0, len(mv)
    while pos + 2 <= n:
        ln = (mv[pos] << 8) | mv[pos + 1]
        if ln == 0 or pos + 2 + ln > n:
            break
        out.append(bytes(mv[pos + 2 : pos + 2 + ln]))
        pos += 2 + ln
    return out


def write_pcap_from_itch(buf, path, seed: int = 0, *, session: str | None = None) -> dict:
    """Write a stream as a pcap of MoldUDP64 packets in UDP/IPv4/Ethernet frames.

    Messages are packed with ``host.feed.moldudp.packetize`` (random packing from ``seed``), framed
    with ``host.feed.net.udp_frame`` using ``host.feed.net.DEFAULTS`` and written with
    ``host.feed.net.write_pcap`` (frame timestamps follow the ITCH timestamps of the first message
    of each packet).

    Returns
    -------
    dict
        ``{"packets": n, "messages": m}``.
    """
    from host.feed import moldudp, net

    if session is None:
        session = net.DEFAULTS["session"]
    msgs = split_messages(buf)
    rng = np.random.default_rng(seed)
    packets = moldudp.packetize(msgs, session=session, first_seq=1, rng=rng)
    frames = [net.udp_frame(p, **_frame_kwargs(net)) for p in packets]
    ts = _packet_times(msgs, packets)
    net.write_pcap(path, frames, ts_ns=ts)
    return {"packets": len(frames), "messages": len(msgs)}


def _frame_kwargs(net) -> dict:
    d = dict(net.DEFAULTS)
    keys = ("src_mac", "dst_mac", "src_ip", "dst_ip", "src_port", "dst_port")
    return {k: d[k] for k in keys if k in d}


def _packet_times(msgs: list[bytes], packets: list[bytes]) -> list[int]:
    """ITCH timestamp of the first message of each packet (or +1 ns for message-less ones)."""
    out = []
    i = 0
    last = 0
    for p in packets:
        cnt = int.from_bytes(p[18:20], "big")
        if cnt in (0, 0xFFFF) or i >= len(msgs):
            last += 1
        else:
            last = max(last + 1, int.from_bytes(msgs[i][5:11], "big"))
            i += cnt
        out.append(last)
    return out


# --- depth measurement -----------------------------------------------------------------------


def depth_report(buf) -> dict:
    """Depth a stream reaches, measured with the reference book (:class:`host.feed.book.L3Book`).

    After every book message (``A F E C X D U``) the touched symbol's count of distinct price
    levels per side is sampled, and the distance from the touch to the deepest level.

    Parameters
    ----------
    buf : bytes-like
        A stream in NASDAQ file framing.

    Returns
    -------
    dict
        ``{"symbols": {symbol: row}, "anomalies": {kind: n}, "messages": n}``; each row has
        ``tick`` (Price(4) units: the gcd of the symbol's book prices), ``max_bid``/``max_ask``
        (most distinct levels a side held), ``p50``/``p99`` (percentiles over both sides'
        samples), ``max_offset`` (most ticks between a side's touch and its deepest level),
        ``sweeps3`` (runs of ``E``/``C`` of one side and one timestamp that emptied >= 3 levels)
        and ``cancel_bursts`` (runs of >= 8 ``D`` of one symbol).
    """
    from math import gcd

    from host.feed.book import L3Book
    from host.feed.itch import iter_messages

    book = L3Book()
    samples: dict[int, list[int]] = {}
    mx: dict[int, list[int]] = {}
    gcds: dict[int, int] = {}
    sweeps: dict[int, int] = {}
    bursts: dict[int, int] = {}
    run_key, run_levels = None, 0
    d_loc, d_run = -1, 0
    n = 0
    for msg in iter_messages(buf):
        n += 1
        t = msg.message_type
        if t not in "AFECXDU":
            book.apply(msg)
            continue
        if t in "AFU":
            loc = msg.stock_locate
            gcds[loc] = gcd(gcds.get(loc, 0), msg.price)
        before = None
        if t in "EC":
            o = book.orders.get(msg.order_reference_number)
            if o is not None:
                before = (o[0], o[1], len(book._side(o[0], o[1]).prices))
        book.apply(msg)
        loc = book.last_locate
        if loc < 0:
            continue
        # sweeps: consecutive executions on one side with one timestamp (one aggressor)
        if before is not None:
            key = (before[0], before[1], msg.timestamp)
            if key != run_key:
                run_key, run_levels = key, 0
            was = run_levels
            run_levels += before[2] - len(book._side(before[0], before[1]).prices)
            if was < 3 <= run_levels:
                sweeps[loc] = sweeps.get(loc, 0) + 1
        else:
            run_key = None
        if t == "D" and loc == d_loc:
            d_run += 1
            if d_run == 8:
                bursts[loc] = bursts.get(loc, 0) + 1
        else:
            d_loc, d_run = (loc, 1) if t == "D" else (-1, 0)
        b = book._side(loc, "B")
        a = book._side(loc, "S")
        s = samples.setdefault(loc, [])
        s.append(len(b.prices))
        s.append(len(a.prices))
        m = mx.setdefault(loc, [0, 0, 0])
        m[0] = max(m[0], len(b.prices))
        m[1] = max(m[1], len(a.prices))
        if b.prices:
            m[2] = max(m[2], b.prices[-1] - b.prices[0])
        if a.prices:
            m[2] = max(m[2], a.prices[-1] - a.prices[0])
    rows = {}
    for loc in sorted(samples, key=lambda x: -mx[x][0] - mx[x][1]):
        tick = gcds.get(loc, 1) or 1
        s = np.array(samples[loc])
        rows[book.symbols.get(loc, str(loc))] = {
            "locate": loc,
            "tick": tick,
            "max_bid": mx[loc][0],
            "max_ask": mx[loc][1],
            "p50": int(np.percentile(s, 50)),
            "p99": int(np.percentile(s, 99)),
            "max_offset": mx[loc][2] // tick,
            "sweeps3": sweeps.get(loc, 0),
            "cancel_bursts": bursts.get(loc, 0),
        }
    return {"symbols": rows, "anomalies": dict(book.anomalies), "messages": n}


def _main(argv=None) -> int:
    """``python -m host.feed.generator N SYMBOLS SEED [--profile P]``: depth table (markdown)."""
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="python -m host.feed.generator", description=_main.__doc__)
    ap.add_argument("messages", type=int)
    ap.add_argument("symbols", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--profile", default="realistic", choices=sorted(PROFILES))
    a = ap.parse_args(argv)
    generate(5_000, 4, 1, profile=a.profile)  # numba compile / cache load, not timed
    t = time.perf_counter()
    buf = generate(a.messages, a.symbols, a.seed, profile=a.profile)
    dt = time.perf_counter() - t
    t = time.perf_counter()
    r = depth_report(buf)
    dr = time.perf_counter() - t
    print(f"{a.messages:,} messages, {a.symbols} symbols, seed {a.seed}, profile {a.profile}: "
          f"generated in {dt:.2f} s ({len(buf) / 1e6:.1f} MB); measured in {dr:.1f} s; "
          f"anomalies {sum(r['anomalies'].values())}")  # fmt: skip
    print()
    print("| symbol | max bid levels | max ask levels | p50 | p99 | max offset (ticks) "
          "| sweeps >= 3 levels | cancel bursts >= 8 |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, x in r["symbols"].items():
        print(f"| {name} | {x['max_bid']} | {x['max_ask']} | {x['p50']} | {x['p99']} "
              f"| {x['max_offset']} | {x['sweeps3']} | {x['cancel_bursts']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
