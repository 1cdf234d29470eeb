"""Backtest analytics: P&L, risk and performance ratios, TCA (see ``docs/backtest.md``).

:func:`analyze` turns a :class:`host.trading.backtest.BacktestResult` into a flat dict of
headline metrics (JSON-ready, money in dollars) and the series the report plots. The formulas
live in :mod:`.metrics` and :mod:`.tca`; ``tests/host/trading/test_analytics.py`` checks them
against independent plain-Python implementations.
"""

from __future__ import annotations

import math

import numpy as np

from host.trading.analytics import metrics as M
from host.trading.analytics.tca import MidPath, implementation_shortfall, markouts, spreads

__all__ = ["analyze", "equity_curve", "MARKOUT_HORIZONS_NS", "CURVE_HORIZONS_NS"]

MONEY = 10_000  # money units (Price(4) x shares) per dollar
MARKOUT_HORIZONS_NS = (1_000_000_000, 10_000_000_000, 60_000_000_000)
CURVE_HORIZONS_NS = tuple(int(x * 1e9) for x in (0, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120))


def _paths(result) -> dict[int, MidPath]:
    q = result.quotes
    return {inst: MidPath(q[q[:, 1] == inst, 0], q[q[:, 1] == inst, 2], q[q[:, 1] == inst, 3])
            for inst in result.instruments}


def equity_curve(result, period_ns: int, paths=None) -> dict:
    """Equity (money units) on a grid of ``period_ns`` from the first to the last message:
    cash (fills and fees) + position x mid, per instrument and summed."""
    paths = paths or _paths(result)
    t0, t1 = result.first_ts, max(result.last_ts, result.first_ts + period_ns)
    grid = np.arange(t0, t1 + period_ns, period_ns, dtype=np.int64)
    eq = np.zeros(len(grid))
    inv = {}
    f = result.fills
    for inst in result.instruments:
        g = f[f["instrument"] == inst]
        s = np.where(g["side"] == 1, 1, -1)
        pos = np.cumsum(s * g["qty"])
        cash = np.cumsum(-s * g["price"] * g["qty"] - g["fee"]).astype(float)
        k = np.searchsorted(g["ts"], grid, side="right") - 1
        p_at = np.where(k >= 0, pos[np.maximum(k, 0)] if len(g) else 0, 0)
        c_at = np.where(k >= 0, cash[np.maximum(k, 0)] if len(g) else 0.0, 0.0)
        mid = paths[inst].at(grid)
        mid = np.where(np.isfinite(mid), mid, 0.0)
        eq += c_at + p_at * mid
        inv[inst] = p_at
    return {"ts": grid, "equity": eq, "inventory": inv}


def analyze(result, period_ns: int | None = None) -> tuple[dict, dict]:
    """Headline metrics and plot series of a backtest.

    Parameters
    ----------
    result : BacktestResult
    period_ns : int, optional
        Sampling period of the equity curve (returns, Sharpe, VaR); default 1 s, longer when
        the day would give more than 25 000 samples.

    Returns
    -------
    (dict, dict)
        Metrics (floats and ints; money in dollars, per-share figures in Price(4) units) and
        series (``ts``, ``equity``, ``drawdown``, ``inventory``, ``markout_curve``...).
    """
    span = max(result.last_ts - result.first_ts, 1)
    if period_ns is None:
        period_ns = max(1_000_000_000, -(-span // 25_000))
    paths = _paths(result)
    cap = result.config.capital
    cur = equity_curve(result, period_ns, paths)
    eq = cur["equity"]
    pnl = np.diff(eq)
    rets = pnl / cap
    ppy = M.periods_per_year(period_ns)
    mdd, pk, tr, dur = M.max_drawdown(eq, cur["ts"])
    f = result.fills
    fees = float(f["fee"].sum())
    realized_total = 0.0
    unreal_total = 0.0
    closing = []
    for inst in result.instruments:
        g = f[f["instrument"] == inst]
        r, pos_after, cost = M.average_cost_pnl(g["side"], g["price"], g["qty"])
        closing.append(r)
        realized_total += float(r.sum())
        last_mid = paths[inst].mid[-1] if len(paths[inst].mid) else 0.0
        if len(g):
            unreal_total += float(pos_after[-1] * last_mid - cost)
    closing_r = np.concatenate(closing) if closing else np.zeros(0)
    total_ret = float(eq[-1] / cap) if len(eq) else 0.0
    mets: dict = {
        "strategy": result.strategy,
        "instruments": [f"{result.symbols.get(i, '?')}({i})" for i in result.instruments],
        "messages_input": int(result.n_input),
        "messages_book": int(result.n_book),
        "seconds": round(result.seconds, 3),
        "msgs_per_s_input": round(result.n_input / result.seconds) if result.seconds else 0,
        "event_loop": getattr(result, "path", "python"),
        "pnl_total": float(eq[-1]) / MONEY if len(eq) else 0.0,
        "pnl_realized": (realized_total - fees) / MONEY,
        "pnl_unrealized": unreal_total / MONEY,
        "fees": fees / MONEY,
        "period_s": period_ns / 1e9,
        "sharpe": M.sharpe(rets, ppy),
        "sortino": M.sortino(rets, ppy),
        "max_drawdown": mdd / MONEY,
        "max_drawdown_pct": 100 * mdd / cap,
        "max_drawdown_duration_s": dur / 1e9,
        "calmar": M.calmar(total_ret, len(rets), ppy, mdd / cap),
        "win_rate": M.win_rate(closing_r),
        "profit_factor": M.profit_factor(closing_r),
        "closing_fills": int(np.count_nonzero(closing_r)),
    }
    for lvl in (0.95, 0.99):
        v, e = M.var_es_historical(pnl / MONEY, lvl)
        pv, pe = M.var_es_parametric(pnl / MONEY, lvl)
        k = int(lvl * 100)
        mets[f"var{k}_hist"], mets[f"es{k}_hist"] = v + 0.0, e + 0.0  # no -0.0
        mets[f"var{k}_param"], mets[f"es{k}_param"] = pv + 0.0, pe + 0.0
    notional = float((f["price"] * f["qty"]).sum())
    o = result.orders
    subs = o[(o["kind"] == 1)]
    fwd = subs[subs["denied"] == 0]
    filled_by_order: dict[int, list] = {}
    for oid, px, q in zip(f["order_id"].tolist(), f["price"].tolist(), f["qty"].tolist(),
                          strict=True):
        a = filled_by_order.setdefault(oid, [0, 0])
        a[0] += q
        a[1] += px * q
    fq = np.array([filled_by_order.get(int(x), [0, 0])[0] for x in fwd["order_id"]], float)
    fpx = np.array([filled_by_order[int(x)][1] / filled_by_order[int(x)][0]
                    if int(x) in filled_by_order else 0.0 for x in fwd["order_id"]], float)
    mets.update({
        "n_orders": int(len(subs)),
        "n_denied": int(np.count_nonzero(o["denied"])),
        "n_fills": int(len(f)),
        "filled_qty": int(f["qty"].sum()),
        "maker_share": float((f["qty"] * f["maker"]).sum() / f["qty"].sum()) if len(f) else 0.0,
        "traded_notional": notional / MONEY,
        "turnover": notional / cap,
        # filled / offered: every submit and every modify that re-enters the queue offers its
        # remaining quantity again (the venue counts it)
        "fill_ratio": float(f["qty"].sum() / result.counters["quoted_qty"])
        if result.counters.get("quoted_qty") else 0.0,
        "order_fill_ratio": float(np.mean(fq > 0)) if len(fwd) else 0.0,
    })
    is_cost, is_bps = implementation_shortfall(fwd["side"], fwd["mid"] / 2.0, fq, fpx)
    mets["shortfall"] = is_cost / MONEY
    mets["shortfall_bps"] = is_bps
    curve = []
    if len(f):
        mid_fill = np.where(f["mid"] > 0, f["mid"] / 2.0, np.nan)
        path_all = {i: paths[i] for i in result.instruments}
        later = {}
        for h in MARKOUT_HORIZONS_NS:
            m = np.full(len(f), np.nan)
            for inst, p in path_all.items():
                sel = f["instrument"] == inst
                m[sel] = p.at(f["ts"][sel] + h)
            later[h] = m
        eff, _ = spreads(f["side"], f["price"], f["qty"], mid_fill, later[MARKOUT_HORIZONS_NS[0]])
        mets["effective_spread"] = eff
        for h in MARKOUT_HORIZONS_NS:
            _, rs = spreads(f["side"], f["price"], f["qty"], mid_fill, later[h])
            mets[f"realized_spread_{h // 10**9}s"] = rs
        for inst, p in path_all.items():
            g = f[f["instrument"] == inst]
            if len(g):
                mk = markouts(g["side"], g["price"], g["qty"], g["ts"], p, MARKOUT_HORIZONS_NS)
                for h, v in zip(MARKOUT_HORIZONS_NS, mk, strict=True):
                    key = f"markout_{h // 10**9}s"
                    mets[key] = mets.get(key, 0.0) + v * g["qty"].sum() / f["qty"].sum()
                cv = markouts(g["side"], g["price"], g["qty"], g["ts"], p, CURVE_HORIZONS_NS)
                curve.append((inst, cv))
    else:
        mets["effective_spread"] = 0.0
        for h in MARKOUT_HORIZONS_NS:
            mets[f"realized_spread_{h // 10**9}s"] = 0.0
            mets[f"markout_{h // 10**9}s"] = 0.0
    pos_end = {str(i): int(cur["inventory"][i][-1]) if len(cur["inventory"][i]) else 0
               for i in result.instruments}
    mets["position_end"] = pos_end
    mets["counters"] = {k: int(v) for k, v in result.counters.items()}
    mets["denied"] = dict(result.denied)
    for k, v in list(mets.items()):
        if isinstance(v, float) and not math.isfinite(v):
            mets[k] = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    peak = np.maximum.accumulate(eq) if len(eq) else eq
    series = {"ts": cur["ts"], "equity": eq / MONEY, "drawdown": (eq - peak) / MONEY,
              "inventory": cur["inventory"], "markout_curve": curve,
              "curve_horizons_s": [h / 1e9 for h in CURVE_HORIZONS_NS], "paths": paths}
    return mets, series
