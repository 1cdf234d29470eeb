"""Simulated venue of the backtester: the replayed L3 book plus the strategy's own orders.

The replayed ITCH messages drive an order-by-order book of the traded locates. The strategy's
orders are *virtual*: they never enter that book (the historical market did not see them), but
each one knows exactly which visible orders were ahead of it in the FIFO queue of its price.

Queue position (exact FIFO by order reference)
----------------------------------------------
Every visible order carries the sequence number of the message that added it (``2 * index``;
a ``U`` replace is a new order and gets a new one, so it loses priority; an ``X`` partial
cancel keeps it, as at NASDAQ). An own order that comes to rest gets ``2 * index + 1`` where
``index`` is the last market message applied before it arrived, so a visible order is *ahead*
of it exactly when its sequence number is smaller. At arrival ``ahead`` is the displayed volume
at the order's price (everything there arrived earlier). Then, per message of the order's
locate and side:

* ``E``/``C`` of an order ahead (same price, smaller sequence), ``X``/``D`` of it, or the
  removal part of a ``U`` of it: ``ahead`` drops by those shares (never below 0).
* ``E``/``C`` of an order with *lower* priority than the own order -- same price and a larger
  sequence, or a worse price (a lower bid / higher ask) -- means the aggressor went past the
  own order's place in the queue: under price-time priority it would have traded with the own
  order first. Those executed shares are the budget that fills own orders, best priority first
  (own orders at better prices, then earlier ones); what the own orders take is not given back
  to the market (no market impact, see docs/backtest.md).
* An ``A``/``F`` on the *other* side at a price that crosses a resting own order (a sell added
  at or below an own bid) would have executed against it: its shares are a budget likewise.
* ``P`` (trade with non-displayed interest) does not fill own orders: hidden interest at the
  same price ranks behind the displayed queue, and the message says nothing about displayed
  volume (counted as ``hidden_trades``).

Marketable own orders walk the visible opposite side at arrival, level by level up to their
limit, at each level's price (``taker``); a remainder rests (``GTC``/``DAY``) with nothing ahead
or is canceled (``IOC``/market). A ``post_only`` order that would take is rejected.

Every own-order outcome is an ``EVENT_DTYPE`` row (the matching engine's layout), so the risk
layer's post-trade kernel and :func:`host.trading.matching.decode_events` read it unchanged.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from host.trading.matching import (
    EVENT_DTYPE,
    CommandKind,
    EventFlag,
    EventKind,
    OrderType,
    Reason,
    Side,
    TimeInForce,
)

__all__ = ["Fees", "OwnOrder", "SimExchange", "FILL_DTYPE"]

BUY, SELL = int(Side.BUY), int(Side.SELL)
_SIDE = {66: BUY, 83: SELL}  # ITCH 'B' / 'S'

FILL_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("order_id", "<u8"),
        ("instrument", "<u4"),
        ("side", "u1"),
        ("maker", "u1"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("fee", "<i8"),
        ("leaves", "<i8"),
        ("mid", "<i8"),
    ]
)
"""One own fill as the venue made it: ``fee`` in money units (1e-4 USD, negative = rebate),
``mid`` = ``bid + ask`` of the visible book just before the message or command that caused
the fill (twice the mid, so half ticks stay integers; 0 when a side is empty)."""


@dataclass(frozen=True)
class Fees:
    """Per-share fees in money units (1e-4 USD per share); negative is a rebate.

    Parameters
    ----------
    maker : int
        Fee of a passive fill; default -20 (a $0.0020 rebate).
    taker : int
        Fee of an aggressive fill; default 30 ($0.0030).
    """

    maker: int = -20
    taker: int = 30


class OwnOrder:
    """One of the strategy's orders at the simulated venue."""

    __slots__ = ("oid", "acct", "loc", "side", "price", "qty", "leaves", "cum", "seq", "ahead",
                 "tif", "otype", "resting", "flags")

    def __init__(self, oid, acct, loc, side, price, qty, tif, otype, flags):
        self.oid, self.acct, self.loc, self.side = oid, acct, loc, side
        self.price, self.qty, self.leaves, self.cum = price, qty, qty, 0
        self.seq, self.ahead, self.resting = 0, 0, False
        self.tif, self.otype, self.flags = tif, otype, flags

    def __repr__(self) -> str:
        return (f"OwnOrder(oid={self.oid}, side={self.side}, px={self.price}, "
                f"leaves={self.leaves}, ahead={self.ahead})")


class SimExchange:
    """Replayed L3 book of some locates plus the strategy's virtual orders.

    Parameters
    ----------
    locates : iterable of int
        Locates whose book is kept (messages of others must not be applied).
    fees : Fees
    """

    def __init__(self, locates, fees: Fees | None = None):
        self.locates = frozenset(int(x) for x in locates)
        self.fees = fees or Fees()
        self.orders: dict[int, list] = {}  # ref -> [loc, side, price, shares, seq]
        self.levels: dict[tuple[int, int], dict[int, list]] = {}
        self.prices: dict[tuple[int, int], list[int]] = {}  # ascending
        for loc in self.locates:
            for s in (BUY, SELL):
                self.levels[(loc, s)] = {}
                self.prices[(loc, s)] = []
        self.own: dict[int, OwnOrder] = {}
        self.resting: dict[tuple[int, int], list[OwnOrder]] = {k: [] for k in self.levels}
        self.n_resting = 0
        self.seq = 0  # 2 * index of the last market message applied
        self.ts = 0
        self.fill_mid = 0
        self.last_exec = (0, 0)
        self.events: list[tuple] = []  # EVENT_DTYPE tuples not yet collected
        self.fills: list[tuple] = []  # FILL_DTYPE tuples
        self.event_seq = 0
        self.trade_id = 0
        self.counts = dict.fromkeys(
            ("unknown_ref", "duplicate_add", "hidden_trades", "passive_fills", "taker_fills",
             "cross_fills", "ahead_inconsistent", "quoted_qty"), 0)

    # ------------------------------------------------------------------ book queries

    def best(self, loc: int) -> tuple[int, int, int, int]:
        """``(bid_px, bid_sz, ask_px, ask_sz)`` of the visible book; an empty side is 0, 0."""
        bp = self.prices[(loc, BUY)]
        ap = self.prices[(loc, SELL)]
        if bp:
            b = bp[-1]
            bs = self.levels[(loc, BUY)][b][0]
        else:
            b = bs = 0
        if ap:
            a = ap[0]
            as_ = self.levels[(loc, SELL)][a][0]
        else:
            a = as_ = 0
        return b, bs, a, as_

    def depth(self, loc: int, side: int, n: int) -> list[tuple[int, int]]:
        """Best ``n`` visible levels ``(price, shares)`` of ``side``, best first."""
        ps = self.prices[(loc, side)]
        lv = self.levels[(loc, side)]
        sel = ps[:-n - 1:-1] if side == BUY else ps[:n]
        return [(p, lv[p][0]) for p in sel]

    def mid2(self, loc: int) -> int:
        """``bid + ask`` (twice the mid), 0 when a side is empty."""
        bp = self.prices[(loc, BUY)]
        ap = self.prices[(loc, SELL)]
        return bp[-1] + ap[0] if bp and ap else 0

    # ------------------------------------------------------------------ market messages

    def _add_level(self, loc, side, price, shares):
        key = (loc, side)
        lv = self.levels[key].get(price)
        if lv is None:
            self.levels[key][price] = [shares, 1]
            bisect.insort(self.prices[key], price)
        else:
            lv[0] += shares
            lv[1] += 1

    def _reduce_level(self, loc, side, price, shares, remove):
        key = (loc, side)
        lv = self.levels[key][price]
        lv[0] -= shares
        if remove:
            lv[1] -= 1
            if lv[1] == 0:
                del self.levels[key][price]
                ps = self.prices[key]
                del ps[bisect.bisect_left(ps, price)]

    def apply(self, index: int, mt: int, loc: int, ts: int, ref: int, nref: int, side: int,
              shares: int, price: int) -> int:
        """Apply one market message (bulk record fields; ``mt``/``side`` as byte values).

        Returns
        -------
        int
            Executed shares for ``E``/``C``/``P`` (a trade to report), else 0.
        """
        self.seq = 2 * index
        self.ts = ts
        if self.n_resting:  # mid before the message: the reference of a fill it causes
            self.fill_mid = self.mid2(loc)
        if mt == 65 or mt == 70:  # A, F
            s = _SIDE.get(side)
            if s is None:
                return 0
            if ref in self.orders:
                self.counts["duplicate_add"] += 1
                return 0
            if self.n_resting:
                shares = self._cross(loc, s, price, shares)
            self.orders[ref] = [loc, s, price, shares, self.seq]
            self._add_level(loc, s, price, shares)
            return 0
        if mt == 80:  # P: non-displayed interest
            self.counts["hidden_trades"] += 1
            return shares
        o = self.orders.get(ref)
        if o is None:
            if mt in (69, 67, 88, 68, 85):
                self.counts["unknown_ref"] += 1
            return 0
        oloc, s, px, left, oseq = o
        if mt == 68:  # D
            n = left
        elif mt == 85:  # U
            n = left
        else:  # E, C, X
            n = min(shares, left)
        remove = n >= left
        if remove:
            del self.orders[ref]
        else:
            o[3] = left - n
        self._reduce_level(oloc, s, px, n, remove)
        execd = mt == 69 or mt == 67
        if execd:  # side of the resting order, printed price (C: the execution price)
            self.last_exec = (s, price if mt == 67 else px)
        if self.n_resting and self.resting[(oloc, s)]:
            self._queue(oloc, s, px, oseq, n, execd)
        if mt == 85:
            if nref in self.orders:
                self.counts["duplicate_add"] += 1
            else:
                sh = shares
                if self.n_resting:
                    sh = self._cross(oloc, s, price, sh)
                self.orders[nref] = [oloc, s, price, sh, self.seq]
                self._add_level(oloc, s, price, sh)
        return n if execd else 0

    # ------------------------------------------------------------------ own-order queue logic

    @staticmethod
    def _priority(o: OwnOrder):
        return (-o.price if o.side == BUY else o.price, o.seq)

    def _queue(self, loc, side, px, oseq, n, execd):
        """Shares ``n`` left a visible order (``execd``: by execution) at ``px``."""
        own = self.resting[(loc, side)]
        budget = 0
        for o in own:
            if o.price == px and oseq < o.seq:
                o.ahead = o.ahead - n if o.ahead > n else 0
            elif execd and (o.price == px or (o.price > px if side == BUY else o.price < px)):
                budget = n
        if budget:
            for o in sorted(own, key=self._priority):
                if o.price == px and oseq < o.seq:
                    continue
                if not (o.price == px or (o.price > px if side == BUY else o.price < px)):
                    continue
                if o.ahead:
                    self.counts["ahead_inconsistent"] += 1
                    o.ahead = 0
                q = min(budget, o.leaves)
                self._fill(o, o.price, q, True)
                self.counts["passive_fills"] += 1
                budget -= q
                if not budget:
                    break
            self._sweep(loc, side)

    def _cross(self, loc, side, price, shares) -> int:
        """A visible add on ``side`` at ``price``: fill own orders of the other side it crosses.
        Returns the shares left to add (the add is replayed in full: no impact)."""
        other = SELL if side == BUY else BUY
        own = self.resting[(loc, other)]
        if not own:
            return shares
        if other == BUY:  # cheap test first: most adds cross nothing
            if not any(price <= o.price for o in own):
                return shares
        elif not any(price >= o.price for o in own):
            return shares
        budget = shares
        for o in sorted(own, key=self._priority):
            crosses = price <= o.price if other == BUY else price >= o.price
            if not crosses or not budget:
                continue
            q = min(budget, o.leaves)
            self._fill(o, o.price, q, True)
            self.counts["cross_fills"] += 1
            budget -= q
        self._sweep(loc, other)
        return shares

    def _sweep(self, loc, side):
        key = (loc, side)
        before = len(self.resting[key])
        self.resting[key] = [o for o in self.resting[key] if o.leaves > 0]
        self.n_resting -= before - len(self.resting[key])

    # ------------------------------------------------------------------ events

    def _event(self, kind, o: OwnOrder, ts, *, last_px=0, last_qty=0, reason=0, cmd_kind=0,
               flags=0, trade_id=0, price=None):
        self.event_seq += 1
        self.events.append((
            self.event_seq, 0, ts, o.oid, 0, trade_id, o.price if price is None else price,
            last_px, last_qty, o.leaves, o.cum, o.qty, o.acct, 0, o.loc, kind, reason, o.side,
            o.otype, o.tif, flags, cmd_kind, 0, 0))

    def _fill(self, o: OwnOrder, px, q, maker):
        o.leaves -= q
        o.cum += q
        fee = q * (self.fees.maker if maker else self.fees.taker)
        self.trade_id += 1
        self.fills.append((self.ts, o.oid, o.loc, o.side, int(maker), px, q, fee, o.leaves,
                           self.fill_mid))
        self._event(EventKind.FILLED, o, self.ts, last_px=px, last_qty=q,
                    flags=EventFlag.MAKER if maker else 0, trade_id=self.trade_id)
        if o.leaves == 0:
            self.own.pop(o.oid, None)

    def _reject(self, oid, acct, loc, side, qty, price, reason, cmd_kind, ts):
        o = OwnOrder(oid, acct, loc, side, price, qty, 0, 0, 0)
        o.leaves = 0
        self._event(EventKind.REJECTED, o, ts, reason=reason, cmd_kind=cmd_kind)

    def collect(self) -> np.ndarray:
        """The ``EVENT_DTYPE`` events made since the last call."""
        if not self.events:
            return np.zeros(0, EVENT_DTYPE)
        out = np.array(self.events, dtype=EVENT_DTYPE)
        self.events.clear()
        return out

    # ------------------------------------------------------------------ own commands

    def command(self, row, ts: int) -> None:
        """Apply one ``COMMAND_DTYPE`` row arriving at the venue at ``ts``."""
        self.ts = ts
        kind = int(row["kind"])
        if kind == CommandKind.SUBMIT:
            self.submit(int(row["order_id"]), int(row["account"]), int(row["instrument"]),
                        int(row["side"]), int(row["qty"]), int(row["price"]),
                        int(row["order_type"]), int(row["tif"]), int(row["flags"]), ts)
        elif kind == CommandKind.CANCEL:
            self.cancel(int(row["order_id"]), ts)
        elif kind == CommandKind.REPLACE:
            self.replace(int(row["order_id"]), int(row["qty"]), int(row["price"]), ts)
        elif kind == CommandKind.MASS_CANCEL:
            for oid in [o.oid for o in self.own.values() if o.acct == int(row["account"])]:
                self.cancel(oid, ts, reason=Reason.MASS_CANCEL)
        else:
            self._reject(int(row["order_id"]), int(row["account"]), int(row["instrument"]),
                         int(row["side"]), int(row["qty"]), int(row["price"]),
                         Reason.INVALID_COMMAND, kind, ts)

    def submit(self, oid, acct, loc, side, qty, price, otype, tif, flags, ts) -> None:
        """A new own order arrives (see the module docstring for what it does)."""
        self.ts = ts
        bad = None
        if loc not in self.locates:
            bad = Reason.UNKNOWN_INSTRUMENT
        elif oid in self.own:
            bad = Reason.DUPLICATE_ORDER_ID
        elif qty <= 0:
            bad = Reason.INVALID_QUANTITY
        elif side not in (BUY, SELL):
            bad = Reason.INVALID_SIDE
        elif otype == OrderType.LIMIT and price <= 0:
            bad = Reason.INVALID_PRICE
        elif otype not in (OrderType.LIMIT, OrderType.MARKET):
            bad = Reason.INVALID_ORDER_TYPE
        if bad is not None:
            self._reject(oid, acct, loc, side, qty, price, bad, CommandKind.SUBMIT, ts)
            return
        o = OwnOrder(oid, acct, loc, side, price, qty, tif, otype, flags)
        self.fill_mid = self.mid2(loc)
        other = SELL if side == BUY else BUY
        ps = self.prices[(loc, other)]
        marketable = bool(ps) and (otype == OrderType.MARKET or (
            price >= ps[0] if side == BUY else price <= ps[-1]))
        if marketable and flags & 1:  # post-only
            self._reject(oid, acct, loc, side, qty, price, Reason.POST_ONLY_WOULD_TAKE,
                         CommandKind.SUBMIT, ts)
            return
        self.own[oid] = o
        self.counts["quoted_qty"] += qty
        self._event(EventKind.ACCEPTED, o, ts)
        if marketable:
            self._take(o)
        if o.leaves == 0:
            return
        if otype == OrderType.MARKET or tif in (TimeInForce.IOC, TimeInForce.FOK):
            self._cancel(o, ts, Reason.IOC_REMAINDER if otype == OrderType.LIMIT
                         else Reason.MARKET_REMAINDER)
            return
        self._rest(o)

    def _take(self, o: OwnOrder) -> None:
        other = SELL if o.side == BUY else BUY
        key = (o.loc, other)
        ps = self.prices[key]
        lv = self.levels[key]
        walk = ps if o.side == BUY else ps[::-1]
        for p in list(walk):
            if o.otype == OrderType.LIMIT and (p > o.price if o.side == BUY else p < o.price):
                break
            q = min(lv[p][0], o.leaves)
            if q > 0:
                self._fill(o, p, q, False)
                self.counts["taker_fills"] += 1
            if o.leaves == 0:
                break

    def _rest(self, o: OwnOrder) -> None:
        o.seq = self.seq + 1
        lv = self.levels[(o.loc, o.side)].get(o.price)
        o.ahead = lv[0] if lv else 0
        o.resting = True
        self.resting[(o.loc, o.side)].append(o)
        self.n_resting += 1

    def _unrest(self, o: OwnOrder) -> None:
        if o.resting:
            self.resting[(o.loc, o.side)].remove(o)
            self.n_resting -= 1
            o.resting = False

    def _cancel(self, o: OwnOrder, ts, reason=Reason.CANCELED_BY_USER) -> None:
        q = o.leaves
        self._unrest(o)
        o.leaves = 0
        self.own.pop(o.oid, None)
        self._event(EventKind.CANCELED, o, ts, last_qty=q, reason=reason)

    def cancel(self, oid: int, ts: int, reason=Reason.CANCELED_BY_USER) -> None:
        """Cancel an own order (rejected ``UNKNOWN_ORDER`` when it is not live: filled or
        canceled while the cancel was on its way)."""
        o = self.own.get(oid)
        if o is None:
            self._reject(oid, 0, 0, 0, 0, 0, Reason.UNKNOWN_ORDER, CommandKind.CANCEL, ts)
            return
        self._cancel(o, ts, reason)

    def replace(self, oid: int, qty: int, price: int, ts: int) -> None:
        """Modify an own order: a size decrease at the same price keeps the queue position; a
        price change or a size increase is a new arrival (it may take)."""
        o = self.own.get(oid)
        if o is None:
            self._reject(oid, 0, 0, 0, qty, price, Reason.UNKNOWN_ORDER, CommandKind.REPLACE, ts)
            return
        if qty <= o.cum:
            self._reject(oid, o.acct, o.loc, o.side, qty, price, Reason.QTY_NOT_ABOVE_FILLED,
                         CommandKind.REPLACE, ts)
            return
        new_px = price or o.price
        keep = new_px == o.price and qty <= o.qty
        if not keep:  # a new offer of the whole remaining quantity
            self.counts["quoted_qty"] += qty - o.cum
        o.leaves = qty - o.cum
        o.qty = qty
        if keep:
            self._event(EventKind.REPLACED, o, ts, flags=EventFlag.PRIORITY_KEPT)
            return
        self._unrest(o)
        o.price = new_px
        self.fill_mid = self.mid2(o.loc)
        self._event(EventKind.REPLACED, o, ts)
        other = SELL if o.side == BUY else BUY
        ps = self.prices[(o.loc, other)]
        if ps and (new_px >= ps[0] if o.side == BUY else new_px <= ps[-1]):
            self._take(o)
        if o.leaves:
            self._rest(o)
