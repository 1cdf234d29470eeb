"""Performance and risk metrics over an equity curve and a list of fills (numpy).

Conventions: an equity curve is sampled on a regular grid of ``period_ns``; returns are
equity changes divided by the capital (so they add up, and a flat book has return 0);
annualisation uses ``periods_per_year`` = 252 trading days of 6.5 hours over the period.
Money is in dollars here (float): the venue's integer money units (1e-4 USD) are divided by
10 000 once, in :func:`host.trading.analytics.report_metrics`.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = [
    "TRADING_SECONDS_PER_YEAR", "periods_per_year", "sharpe", "sortino", "max_drawdown",
    "calmar", "var_es_historical", "var_es_parametric", "average_cost_pnl", "win_rate",
    "profit_factor",
]

TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600


def periods_per_year(period_ns: int) -> float:
    return TRADING_SECONDS_PER_YEAR / (period_ns / 1e9)


def sharpe(returns: np.ndarray, ppy: float) -> float:
    """Annualised Sharpe ratio (risk-free 0): mean / sample std (ddof 1) * sqrt(ppy)."""
    r = np.asarray(returns, float)
    if len(r) < 2:
        return 0.0
    sd = r.std(ddof=1)
    return float(r.mean() / sd * math.sqrt(ppy)) if sd > 0 else 0.0


def sortino(returns: np.ndarray, ppy: float) -> float:
    """Annualised Sortino ratio (target 0): mean / sqrt(mean(min(r, 0)**2)) * sqrt(ppy)."""
    r = np.asarray(returns, float)
    if len(r) < 2:
        return 0.0
    dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    return float(r.mean() / dd * math.sqrt(ppy)) if dd > 0 else 0.0


def max_drawdown(equity: np.ndarray, ts: np.ndarray | None = None) -> tuple[float, int, int, int]:
    """Largest peak-to-trough fall of ``equity`` (same units, >= 0).

    Returns
    -------
    (depth, peak index, trough index, duration)
        ``duration`` is the longest time (in ``ts`` units, else samples) spent below a
        previous peak, until recovery or the end of the curve.
    """
    e = np.asarray(equity, float)
    if len(e) == 0:
        return 0.0, 0, 0, 0
    t = np.arange(len(e)) if ts is None else np.asarray(ts, np.int64)
    peak = np.maximum.accumulate(e)
    dd = peak - e
    trough = int(np.argmax(dd))
    pk = int(np.argmax(e[: trough + 1])) if trough else 0
    longest = 0
    start = None
    for i in range(len(e)):
        if dd[i] > 0:
            if start is None:
                start = i - 1 if i else 0
        elif start is not None:
            longest = max(longest, int(t[i] - t[start]))
            start = None
    if start is not None:
        longest = max(longest, int(t[-1] - t[start]))
    return float(dd[trough]), pk, trough, longest


def calmar(total_return: float, n_periods: int, ppy: float, mdd_fraction: float) -> float:
    """Annualised return (simple, ``total_return * ppy / n``) over the max drawdown fraction."""
    if mdd_fraction <= 0 or n_periods <= 0:
        return 0.0
    return float(total_return * ppy / n_periods / mdd_fraction)


def var_es_historical(pnl: np.ndarray, level: float) -> tuple[float, float]:
    """Historical value at risk and expected shortfall of per-period P&L at ``level`` (e.g.
    0.95), as positive losses: VaR = -(the (1-level) quantile, linear interpolation); ES = the
    mean loss of the periods at or beyond it."""
    x = np.asarray(pnl, float)
    if len(x) == 0:
        return 0.0, 0.0
    q = float(np.quantile(x, 1 - level))
    tail = x[x <= q]
    return -q, -float(tail.mean()) if len(tail) else -q


def var_es_parametric(pnl: np.ndarray, level: float) -> tuple[float, float]:
    """Gaussian VaR and ES: ``-(mu + sigma * z)`` and ``-(mu - sigma * phi(z) / (1-level))``
    with ``z`` the (1-level) normal quantile."""
    x = np.asarray(pnl, float)
    if len(x) < 2:
        return 0.0, 0.0
    mu, sd = float(x.mean()), float(x.std(ddof=1))
    nd = NormalDist()
    z = nd.inv_cdf(1 - level)
    return -(mu + sd * z), -(mu - sd * nd.pdf(z) / (1 - level))


def average_cost_pnl(side: np.ndarray, price: np.ndarray, qty: np.ndarray) -> tuple:
    """Average-cost accounting of one instrument's fills (side 1 buy / 2 sell).

    Returns
    -------
    (realized per fill, position after each fill, cost of the open position)
        ``realized[i]`` is the P&L the fill closed (0 for an opening fill), in price x qty
        units; ``cost`` is the signed cost basis of the final position.
    """
    n = len(side)
    realized = np.zeros(n)
    pos_after = np.zeros(n, np.int64)
    pos = 0
    cost = 0.0  # signed: sum of qty * price of the open position
    for i in range(n):
        s = 1 if side[i] == 1 else -1
        q = int(qty[i])
        px = float(price[i])
        if pos == 0 or (pos > 0) == (s > 0):
            pos += s * q
            cost += s * q * px
        else:
            close = min(q, abs(pos))
            avg = cost / pos
            realized[i] = close * (px - avg) * (1 if pos > 0 else -1)
            cost -= avg * close * (1 if pos > 0 else -1)
            pos += s * close
            rest = q - close
            if pos == 0:
                cost = 0.0
            if rest:
                pos += s * rest
                cost += s * rest * px
        pos_after[i] = pos
    return realized, pos_after, cost


def win_rate(realized: np.ndarray) -> float:
    """Share of closing fills (realized != 0) that made money."""
    r = np.asarray(realized, float)
    closing = r[r != 0]
    return float(np.mean(closing > 0)) if len(closing) else 0.0


def profit_factor(realized: np.ndarray) -> float:
    """Gross profit / gross loss of the closing fills (inf with no loss, 0 with no trade)."""
    r = np.asarray(realized, float)
    gain = float(r[r > 0].sum())
    loss = float(-r[r < 0].sum())
    if loss == 0:
        return math.inf if gain > 0 else 0.0
    return gain / loss
