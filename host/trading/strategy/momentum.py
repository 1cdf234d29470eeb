"""Multi-timeframe momentum with a maximum holding time.

The mid is sampled every ``sample_ns``; for each timeframe ``(fast, slow)`` (in samples) an
exponential moving average pair gives a vote, ``+1`` when ``ema_fast > ema_slow * (1 +
threshold)``, ``-1`` when below ``ema_slow * (1 - threshold)``, else 0. When every timeframe
votes the same non-zero way the target position is ``+-order_qty`` (capped by
``max_position``); when the votes disagree the target is flat; a position held longer than
``max_holding_ns`` is closed and no new one is opened until the votes change. Orders are IOC
limits at the opposite best (integer prices and sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

from host.trading.matching import Side, TimeInForce
from host.trading.strategy.api import QuoteTick, Strategy, StrategyContext

__all__ = ["MomentumConfig", "Momentum"]


@dataclass(frozen=True)
class MomentumConfig:
    """Parameters of :class:`Momentum` (``[strategy]`` table).

    Parameters
    ----------
    timeframes : tuple of (int, int)
        ``(fast, slow)`` EMA spans in samples per timeframe; default ((5, 20), (20, 80)).
    sample_ns : int
        Sampling interval; default 1 s.
    threshold : float
        Relative gap between the EMAs needed to vote; default 0.0002 (2 bps).
    order_qty : int
        Target absolute position in shares; default 100.
    max_position : int
        Cap of the absolute position; default 1000.
    max_holding_ns : int
        Close a position held this long; default 10 minutes.
    """

    timeframes: tuple[tuple[int, ...], ...] = ((5, 20), (20, 80))
    sample_ns: int = 1_000_000_000
    threshold: float = 0.0002
    order_qty: int = 100
    max_position: int = 1000
    max_holding_ns: int = 600_000_000_000

    def __post_init__(self):
        if not self.timeframes:
            raise ValueError("timeframes must not be empty")
        for tf in self.timeframes:
            if len(tf) != 2 or not 1 <= tf[0] < tf[1]:
                raise ValueError(f"timeframe {tf}: need (fast, slow) with 1 <= fast < slow")
        if self.sample_ns <= 0 or self.order_qty <= 0 or self.threshold < 0:
            raise ValueError("sample_ns and order_qty must be > 0, threshold >= 0")


class Momentum(Strategy):
    """Follow the trend when every timeframe agrees."""

    name = "momentum"
    n_instruments = 1
    config_class = MomentumConfig

    def __init__(self, config: MomentumConfig | None = None):
        super().__init__(config)
        self._ema = [[0.0, 0.0] for _ in self.config.timeframes]
        self._alpha = [(2 / (f + 1), 2 / (s + 1)) for f, s in self.config.timeframes]
        self._n = 0
        self._next = 0
        self._since = 0
        self._blocked = 0  # vote that the holding-time exit closed (wait for a change)

    def votes(self) -> list[int]:
        th = self.config.threshold
        out = []
        for f, s in self._ema:
            out.append(1 if f > s * (1 + th) else (-1 if f < s * (1 - th) else 0))
        return out

    def on_quote(self, ctx: StrategyContext, q: QuoteTick):
        if q.instrument != self.instruments[0] or not q.bid_px or not q.ask_px:
            return None
        if ctx.now < self._next:
            return None
        self._next = ctx.now + self.config.sample_ns
        m = q.mid
        for e, (af, as_) in zip(self._ema, self._alpha, strict=True):
            if self._n == 0:
                e[0] = e[1] = m
            else:
                e[0] += af * (m - e[0])
                e[1] += as_ * (m - e[1])
        self._n += 1
        if self._n < max(s for _, s in self.config.timeframes):
            return None
        v = self.votes()
        vote = v[0] if all(x == v[0] for x in v) else 0
        pos = ctx.position(q.instrument)
        self.log.append((ctx.now, m, vote, pos))
        if ctx.open_orders(q.instrument):
            return None
        c = self.config
        if pos and ctx.now - self._since > c.max_holding_ns:
            self._blocked = 1 if pos > 0 else -1
            target = 0
        else:
            if vote != self._blocked:
                self._blocked = 0
            target = 0 if vote == self._blocked else vote * min(c.order_qty, c.max_position)
        d = target - pos
        if d == 0:
            return None
        if pos == 0:
            self._since = ctx.now
        side = Side.BUY if d > 0 else Side.SELL
        px = q.ask_px if d > 0 else q.bid_px
        return [ctx.limit(q.instrument, side, abs(d), px, tif=TimeInForce.IOC)]
