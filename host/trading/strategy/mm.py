"""Avellaneda–Stoikov market maker with an order-flow-imbalance adjustment.

Model (Avellaneda & Stoikov 2008, the stationary form with a fixed horizon ``tau``), in ticks:

* mid ``s``; volatility ``sigma`` (ticks per sqrt(second)) from an exponentially weighted mean
  of squared mid changes sampled every ``vol_sample_ns`` (half-life ``vol_halflife_s``),
  floored at ``min_sigma_ticks``;
* inventory ``q`` in lots (position / ``order_qty``);
* reservation price ``r = s - q * gamma * sigma**2 * tau + ofi_ticks * I`` where ``I`` in
  [-1, 1] is the imbalance of the displayed size of the top ``depth`` levels,
  ``(bid - ask) / (bid + ask)`` (more bids than offers: the price tends to rise);
* total spread ``delta = gamma * sigma**2 * tau + (2 / gamma) * ln(1 + gamma / k)``, at least
  ``2 * min_half_spread_ticks``; quotes ``r -/+ delta / 2`` rounded away from ``r`` to the tick,
  never through the opposite best (post-only).

Refresh rules: a side is requoted (``ModifyOrder``, or ``SubmitOrder`` when it has no live
order) when its target moved by ``refresh_ticks`` or more, at most once per ``min_requote_ns``
per side; no bid at ``position >= max_position``, no offer at ``position <= -max_position``
(the live order is canceled). Prices and sizes are integers at the venue boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from host.trading.matching import Side
from host.trading.strategy.api import QuoteTick, Strategy, StrategyContext

__all__ = ["MarketMakerConfig", "AvellanedaStoikov"]


@dataclass(frozen=True)
class MarketMakerConfig:
    """Parameters of :class:`AvellanedaStoikov` (``[strategy]`` table).

    Parameters
    ----------
    gamma : float
        Risk aversion (per lot); default 0.1.
    k : float
        Decay of the fill intensity with the distance to the mid (per tick); default 1.5.
    tau_s : float
        Horizon of the inventory penalty, seconds; default 1.0.
    order_qty : int
        Shares per quote (one lot); default 100.
    max_position : int
        Largest absolute position in shares; default 1000.
    tick : int
        Price increment, Price(4) units; default 100 (one cent).
    vol_sample_ns : int
        Mid sampling interval of the volatility estimate; default 1 s.
    vol_halflife_s : float
        Half-life of the EWMA variance, seconds; default 60.
    min_sigma_ticks : float
        Floor of sigma (ticks per sqrt(second)); default 0.05.
    ofi_ticks : float
        Reservation shift at full imbalance, ticks; default 0.5.
    depth : int
        Levels per side in the imbalance; default 3.
    min_half_spread_ticks : float
        Smallest half spread, ticks; default 0.5.
    refresh_ticks : int
        Requote when a target moved by this many ticks; default 1.
    min_requote_ns : int
        Shortest time between two requotes of one side; default 1 ms.
    """

    gamma: float = 0.1
    k: float = 1.5
    tau_s: float = 1.0
    order_qty: int = 100
    max_position: int = 1000
    tick: int = 100
    vol_sample_ns: int = 1_000_000_000
    vol_halflife_s: float = 60.0
    min_sigma_ticks: float = 0.05
    ofi_ticks: float = 0.5
    depth: int = 3
    min_half_spread_ticks: float = 0.5
    refresh_ticks: int = 1
    min_requote_ns: int = 1_000_000

    def __post_init__(self):
        if self.gamma <= 0 or self.k <= 0 or self.tau_s <= 0:
            raise ValueError("gamma, k and tau_s must be > 0")
        if self.order_qty <= 0 or self.max_position <= 0 or self.tick <= 0:
            raise ValueError("order_qty, max_position and tick must be > 0")
        if self.vol_sample_ns <= 0 or self.vol_halflife_s <= 0:
            raise ValueError("vol_sample_ns and vol_halflife_s must be > 0")
        if self.refresh_ticks < 1 or self.min_requote_ns < 0 or self.depth < 1:
            raise ValueError("refresh_ticks and depth must be >= 1, min_requote_ns >= 0")


class AvellanedaStoikov(Strategy):
    """Quote one instrument around an inventory-skewed reservation price."""

    name = "mm"
    n_instruments = 1
    config_class = MarketMakerConfig

    def __init__(self, config: MarketMakerConfig | None = None):
        super().__init__(config)
        c = self.config
        self._var = c.min_sigma_ticks ** 2  # ticks^2 per second
        self._alpha = 1.0 - 0.5 ** (c.vol_sample_ns / 1e9 / c.vol_halflife_s)
        self._last_sample_ts = 0
        self._last_sample_mid = 0.0
        self._oid = {Side.BUY: 0, Side.SELL: 0}
        self._px = {Side.BUY: 0, Side.SELL: 0}
        self._t = {Side.BUY: -(1 << 62), Side.SELL: -(1 << 62)}

    @property
    def sigma(self) -> float:
        """Current volatility estimate, ticks per sqrt(second)."""
        return math.sqrt(max(self._var, self.config.min_sigma_ticks ** 2))

    def _vol(self, ts: int, mid: float) -> None:
        c = self.config
        if not self._last_sample_ts:
            self._last_sample_ts, self._last_sample_mid = ts, mid
            return
        dt = ts - self._last_sample_ts
        if dt < c.vol_sample_ns:
            return
        d = (mid - self._last_sample_mid) / c.tick
        # the quote may be stale by several intervals: scale to a per-second variance
        per_s = d * d / (dt / 1e9)
        a = 1.0 - (1.0 - self._alpha) ** (dt / c.vol_sample_ns)
        self._var += a * (per_s - self._var)
        self._last_sample_ts, self._last_sample_mid = ts, mid

    def targets(self, q: QuoteTick, position: int) -> tuple[int, int, float]:
        """``(bid, ask, reservation)``: integer quote prices (0 = no quote on that side)."""
        c = self.config
        tick = c.tick
        mid = (q.bid_px + q.ask_px) / 2 / tick
        var = max(self._var, c.min_sigma_ticks ** 2)
        inv = position / c.order_qty
        bsz = sum(s for _, s in q.bids[: c.depth]) or q.bid_sz
        asz = sum(s for _, s in q.asks[: c.depth]) or q.ask_sz
        imb = (bsz - asz) / (bsz + asz) if bsz + asz else 0.0
        r = mid - inv * c.gamma * var * c.tau_s + c.ofi_ticks * imb
        delta = c.gamma * var * c.tau_s + (2.0 / c.gamma) * math.log1p(c.gamma / c.k)
        half = max(delta / 2, c.min_half_spread_ticks)
        bid = math.floor(r - half) * tick
        ask = math.ceil(r + half) * tick
        bid = min(bid, q.ask_px - tick)  # post only: never through the offer
        ask = max(ask, q.bid_px + tick)
        if position >= c.max_position or bid <= 0:
            bid = 0
        if position <= -c.max_position:
            ask = 0
        return int(bid), int(ask), r * tick

    def on_quote(self, ctx: StrategyContext, q: QuoteTick):
        if q.instrument != self.instruments[0] or not q.bid_px or not q.ask_px:
            return None
        self._vol(q.ts_recv, q.mid)
        pos = ctx.position(q.instrument)
        bid, ask, r = self.targets(q, pos)
        self.log.append((ctx.now, q.mid, r, bid, ask, pos))
        out = []
        c = self.config
        # sizes shrink near the limit so that a full fill cannot pass it
        for side, want, size in ((Side.BUY, bid, min(c.order_qty, c.max_position - pos)),
                                 (Side.SELL, ask, min(c.order_qty, c.max_position + pos))):
            out.extend(self._side(ctx, q.instrument, side, want if size > 0 else 0, size))
        return out

    def _side(self, ctx, inst, side, want, size):
        c = self.config
        oid = self._oid[side]
        live = ctx.orders.get(oid) if oid else None
        if live is not None and live.cancel_sent:
            return ()
        if want == 0:
            if live is not None:
                return (ctx.cancel(oid),)
            return ()
        if live is not None and abs(want - self._px[side]) < c.refresh_ticks * c.tick:
            return ()
        if ctx.now - self._t[side] < c.min_requote_ns:
            return ()
        self._t[side] = ctx.now
        self._px[side] = want
        if live is not None:
            if not live.acknowledged:
                return ()
            return (ctx.modify(oid, live.qty - live.leaves + size, want),)
        cmd = ctx.limit(inst, side, size, want, post_only=True)
        self._oid[side] = cmd.order_id
        return (cmd,)
