"""Transaction cost analysis of own fills against the mid the strategy saw.

All per-share figures are in Price(4) units and signed so that a positive number is a cost
(shortfall, effective and realised spread paid) or a gain (markouts: positive = the price moved
in the fill's favour). ``mid_at(ts)`` is the last mid known at ``ts`` (step function).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MidPath", "implementation_shortfall", "spreads", "markouts"]


class MidPath:
    """Mid price of one instrument as a step function of time (from quote rows)."""

    def __init__(self, ts: np.ndarray, bid: np.ndarray, ask: np.ndarray):
        ok = (bid > 0) & (ask > 0)
        self.ts = np.asarray(ts, np.int64)[ok]
        self.mid = (np.asarray(bid, float)[ok] + np.asarray(ask, float)[ok]) / 2

    def at(self, t) -> np.ndarray:
        """Mid at each time of ``t`` (NaN before the first two-sided quote)."""
        t = np.asarray(t, np.int64)
        i = np.searchsorted(self.ts, t, side="right") - 1
        out = np.full(t.shape, np.nan)
        ok = i >= 0
        out[ok] = self.mid[i[ok]]
        return out


def _sign(side) -> np.ndarray:
    return np.where(np.asarray(side) == 1, 1.0, -1.0)


def implementation_shortfall(orders_side, arrival_mid, filled_qty, avg_px) -> tuple[float, float]:
    """Shortfall of the filled part of orders against their arrival mid.

    Returns ``(total cost in Price(4) x shares, cost in bps of the traded notional)``; orders
    without a fill or without an arrival mid do not count.
    """
    s = _sign(orders_side)
    ok = (np.asarray(filled_qty) > 0) & np.isfinite(arrival_mid) & (np.asarray(arrival_mid) > 0)
    if not ok.any():
        return 0.0, 0.0
    q = np.asarray(filled_qty, float)[ok]
    cost = s[ok] * (np.asarray(avg_px, float)[ok] - np.asarray(arrival_mid, float)[ok]) * q
    notional = float((np.asarray(arrival_mid, float)[ok] * q).sum())
    return float(cost.sum()), float(cost.sum() / notional * 1e4) if notional else 0.0


def spreads(side, price, qty, mid_fill, mid_later) -> tuple[float, float]:
    """Quantity-weighted effective spread ``2 s (p - m_fill)`` and realised spread
    ``2 s (p - m_later)`` per share (Price(4) units; negative = earned)."""
    s = _sign(side)
    q = np.asarray(qty, float)
    ok = np.isfinite(mid_fill) & np.isfinite(mid_later) & (np.asarray(mid_fill) > 0)
    if not ok.any():
        return 0.0, 0.0
    eff = 2 * s * (np.asarray(price, float) - mid_fill)
    rea = 2 * s * (np.asarray(price, float) - mid_later)
    w = q[ok]
    return float((eff[ok] * w).sum() / w.sum()), float((rea[ok] * w).sum() / w.sum())


def markouts(side, price, qty, ts, path: MidPath, horizons_ns) -> list[float]:
    """Quantity-weighted markout per share at each horizon: ``s * (mid(t + h) - p)``."""
    s = _sign(side)
    q = np.asarray(qty, float)
    p = np.asarray(price, float)
    out = []
    for h in horizons_ns:
        m = path.at(np.asarray(ts, np.int64) + int(h))
        ok = np.isfinite(m)
        out.append(float((s[ok] * (m[ok] - p[ok]) * q[ok]).sum() / q[ok].sum()) if ok.any()
                   else 0.0)
    return out
