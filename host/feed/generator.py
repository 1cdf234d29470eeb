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

Guarantees (checked by ``tests/host/test_generator.py``): every ``E``/``C``/``X``/``D``/``U``
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
"""

from __future__ import annotations

import numpy as np
from numba import njit

from host.feed.spec import MESSAGES, PRICE4_MAX

__all__ = ["generate", "generate_columns", "encode_columns", "write_pcap_from_itch", "MIX"]

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


def generate_columns(n_messages: int, n_symbols: int, seed: int) -> dict:
    """The stream as columns (before encoding); see :func:`generate`.

    Returns
    -------
    dict
        ``{column: ndarray}`` for the columns of every message (``typ`` is the type byte,
        ``loc`` the stock locate, ...), plus ``"symtab"``: ``S8`` array of space-padded symbols
        indexed by locate, and ``"symbols"``: locate -> symbol.
    """
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
    n_body = n_messages - pre - post
    p = np.array([MIX[k] for k in ("A", "F", "D", "E", "C", "X", "U", "P", "Q", "B", "other")])
    p_cum = np.cumsum(p / p.sum())
    max_live = int(min(n_body, 150 * n_symbols + 1000)) + 2
    ts_open = 9 * 3600 * 10**9 + 30 * 60 * 10**9
    span = 6 * 3600 * 10**9 + 30 * 60 * 10**9
    body = _simulate(
        n_body, n_symbols, int(seed) % (2**32), lo, tick, mid0, ts_open, float(span),
        np.uint64(int(rng.integers(0, 2**63))), p_cum, int(rng.integers(0, n_symbols)), max_live,
    )  # fmt: skip
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


def generate(n_messages: int, n_symbols: int, seed: int) -> bytes:
    """A valid ITCH 5.0 stream of exactly ``n_messages`` messages in NASDAQ file framing.

    Parameters
    ----------
    n_messages : int
        Total messages, preamble (``S``, ``R``, ``H``) and closing ``S`` included; must exceed
        ``2 * n_symbols + 6``.
    n_symbols : int
        Number of symbols in the stock directory (1..65535).
    seed : int
        Everything is a function of the seed.

    Returns
    -------
    bytes
        The stream, each message preceded by its 2-byte big-endian length.
    """
    return encode_columns(generate_columns(n_messages, n_symbols, seed))


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
