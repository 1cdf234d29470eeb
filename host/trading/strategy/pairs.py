"""Pairs statistical arbitrage on the z-score of a rolling hedged spread.

Every ``sample_ns`` (event time) the strategy samples the log mids ``a`` and ``b`` of its two
instruments. Over the last ``window`` samples it fits the hedge ratio by least squares,
``beta = cov(a, b) / var(b)``, and computes the spread ``s = a - beta * b`` and its z-score
against the window's mean and standard deviation. Then:

* flat and ``z > entry_z``: sell the spread (sell A, buy B); ``z < -entry_z``: buy it;
* in a position: close when ``|z| < exit_z`` (mean reversion), or when ``|z| > stop_z``
  (stop: the relation broke), or after ``max_holding_ns``;
* sizes: ``order_qty`` shares of A and ``round(beta * order_qty * mid_a / mid_b)`` of B
  (value-hedged), capped at ``max_position`` per leg.

Orders are IOC limits at the opposite best (they take liquidity); integer prices and sizes.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from host.trading.matching import Side, TimeInForce
from host.trading.strategy.api import QuoteTick, Strategy, StrategyContext

__all__ = ["PairsConfig", "PairsTrader", "hedge_zscore"]


@dataclass(frozen=True)
class PairsConfig:
    """Parameters of :class:`PairsTrader` (``[strategy]`` table).

    Parameters
    ----------
    window : int
        Samples in the rolling regression; default 120.
    sample_ns : int
        Sampling interval; default 1 s.
    entry_z, exit_z, stop_z : float
        Entry, exit and stop thresholds on ``|z|``; defaults 2.0, 0.5, 4.0.
    order_qty : int
        Shares of the first leg; default 100.
    max_position : int
        Largest absolute position per leg; default 1000.
    max_holding_ns : int
        Close a position held this long; default 30 minutes.
    """

    window: int = 120
    sample_ns: int = 1_000_000_000
    entry_z: float = 2.0
    exit_z: float = 0.5
    stop_z: float = 4.0
    order_qty: int = 100
    max_position: int = 1000
    max_holding_ns: int = 1_800_000_000_000

    def __post_init__(self):
        if self.window < 3 or self.sample_ns <= 0 or self.order_qty <= 0:
            raise ValueError("window must be >= 3, sample_ns and order_qty > 0")
        if not 0 <= self.exit_z < self.entry_z < self.stop_z:
            raise ValueError("need 0 <= exit_z < entry_z < stop_z")


def hedge_zscore(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(beta, z)`` of the last point: OLS hedge ratio of ``a`` on ``b`` and the z-score of
    the spread ``a - beta * b`` over the window (0, 0 when degenerate)."""
    vb = float(np.var(b))
    if vb <= 0:
        return 0.0, 0.0
    beta = float(np.mean((a - a.mean()) * (b - b.mean())) / vb)
    s = a - beta * b
    sd = float(s.std())
    return beta, (float(s[-1] - s.mean()) / sd if sd > 0 else 0.0)


class PairsTrader(Strategy):
    """Trade the spread of two instruments (the runner's first two)."""

    name = "pairs"
    n_instruments = 2
    config_class = PairsConfig

    def __init__(self, config: PairsConfig | None = None):
        super().__init__(config)
        n = self.config.window
        self._a: deque = deque(maxlen=n)
        self._b: deque = deque(maxlen=n)
        self._q: dict[int, QuoteTick] = {}
        self._next = 0
        self._state = 0  # +1 long spread, -1 short spread, 0 flat
        self._since = 0
        self.z = 0.0
        self.beta = 0.0

    def on_quote(self, ctx: StrategyContext, q: QuoteTick):
        if not q.bid_px or not q.ask_px:
            return None
        self._q[q.instrument] = q
        if len(self._q) < 2 or ctx.now < self._next:
            return None
        self._next = ctx.now + self.config.sample_ns
        ia, ib = self.instruments
        qa, qb = self._q[ia], self._q[ib]
        self._a.append(math.log(qa.mid))
        self._b.append(math.log(qb.mid))
        if len(self._a) < self.config.window:
            return None
        self.beta, self.z = hedge_zscore(np.fromiter(self._a, float), np.fromiter(self._b, float))
        self.log.append((ctx.now, self.z, self.beta, self._state))
        return self._decide(ctx, qa, qb)

    def _decide(self, ctx, qa, qb):
        c = self.config
        ia, ib = self.instruments
        if ctx.open_orders():
            return None  # wait for the last orders' outcome
        z = self.z
        if self._state == 0:
            if abs(z) <= c.entry_z or abs(z) >= c.stop_z or self.beta <= 0:
                return None
            want = -1 if z > 0 else 1
            qty_b = min(round(self.beta * c.order_qty * qa.mid / qb.mid), c.max_position)
            qty_a = min(c.order_qty, c.max_position)
            if qty_b <= 0:
                return None
            self._state, self._since = want, ctx.now
            return [self._take(ctx, qa, Side.BUY if want > 0 else Side.SELL, qty_a),
                    self._take(ctx, qb, Side.SELL if want > 0 else Side.BUY, qty_b)]
        if abs(z) < c.exit_z or abs(z) > c.stop_z or ctx.now - self._since > c.max_holding_ns:
            self._state = 0
            out = []
            for q in (qa, qb):
                p = ctx.position(q.instrument)
                if p:
                    out.append(self._take(ctx, q, Side.SELL if p > 0 else Side.BUY, abs(p)))
            return out
        return None

    @staticmethod
    def _take(ctx, q: QuoteTick, side, qty):
        px = q.ask_px if side == Side.BUY else q.bid_px
        return ctx.limit(q.instrument, side, qty, px, tif=TimeInForce.IOC)
