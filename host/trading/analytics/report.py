"""Backtest outputs: metrics JSON, fills/orders Parquet and a self-contained HTML report.

The HTML file embeds its plots as base64 PNG (matplotlib, Agg backend), so it opens anywhere
without the other files: equity and drawdown, inventory, the strategy's quotes and fills over
the market's best bid/offer, and markout curves.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

__all__ = ["write_outputs", "HEADLINE"]

HEADLINE = ("pnl_total", "pnl_realized", "pnl_unrealized", "fees", "sharpe", "sortino",
            "max_drawdown", "max_drawdown_duration_s", "calmar", "win_rate", "profit_factor",
            "var95_hist", "es95_hist", "var95_param", "es95_param", "turnover", "fill_ratio",
            "n_orders", "n_fills", "maker_share", "shortfall_bps", "effective_spread",
            "realized_spread_1s", "markout_1s", "markout_10s", "markout_60s", "seconds",
            "msgs_per_s_input")
"""Metrics shown first (and printed by ``make demo``)."""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _hours(ts) -> np.ndarray:
    return np.asarray(ts, np.int64) / 3.6e12


def _plots(result, series) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    t = _hours(series["ts"])
    fig, ax = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    ax[0].plot(t, series["equity"], lw=1)
    ax[0].set_ylabel("equity P&L ($)")
    ax[1].fill_between(t, series["drawdown"], 0, color="tab:red", alpha=0.5, lw=0)
    ax[1].set_ylabel("drawdown ($)")
    ax[1].set_xlabel("time of day (h)")
    out.append(("Equity and drawdown", _png(fig)))

    fig, ax = plt.subplots(figsize=(10, 3))
    for inst, inv in series["inventory"].items():
        ax.step(t, inv, where="post", lw=1, label=f"{result.symbols.get(inst, inst)}")
    ax.set_ylabel("position (shares)")
    ax.set_xlabel("time of day (h)")
    ax.legend(loc="best", fontsize=8)
    out.append(("Inventory", _png(fig)))

    f, o = result.fills, result.orders
    for inst in result.instruments:
        q = result.quotes[result.quotes[:, 1] == inst]
        fig, ax = plt.subplots(figsize=(10, 4))
        ok = (q[:, 2] > 0) & (q[:, 3] > 0)
        ax.step(_hours(q[ok, 0]), q[ok, 2] / 1e4, where="post", lw=0.6, color="tab:blue",
                label="best bid")
        ax.step(_hours(q[ok, 0]), q[ok, 3] / 1e4, where="post", lw=0.6, color="tab:orange",
                label="best ask")
        sub = o[(o["instrument"] == inst) & (o["price"] > 0)]
        for side, c, lab in ((1, "tab:green", "own bid (submit/modify)"),
                             (2, "tab:red", "own ask (submit/modify)")):
            s = sub[sub["side"] == side]
            ax.scatter(_hours(s["ts"]), s["price"] / 1e4, s=4, c=c, alpha=0.4, label=lab)
        g = f[f["instrument"] == inst]
        for side, m, lab in ((1, "^", "buy fill"), (2, "v", "sell fill")):
            s = g[g["side"] == side]
            ax.scatter(_hours(s["ts"]), s["price"] / 1e4, s=22, marker=m, c="k", label=lab)
        ax.set_ylabel("price ($)")
        ax.set_xlabel("time of day (h)")
        ax.legend(loc="best", fontsize=7, ncol=3)
        out.append((f"Quotes and fills over the price: {result.symbols.get(inst, inst)}",
                    _png(fig)))

    if series["markout_curve"]:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for inst, cv in series["markout_curve"]:
            ax.plot(series["curve_horizons_s"], np.asarray(cv) / 100, marker="o",
                    label=f"{result.symbols.get(inst, inst)}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlim(left=0)
        ax.set_xlabel("horizon after the fill (s)")
        ax.set_ylabel("markout (cents / share)")
        ax.legend(fontsize=8)
        out.append(("Markout curves", _png(fig)))
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1e6 else f"{v:,.0f}"
    return html.escape(str(v))


def write_outputs(result, metrics: dict, series: dict, out_dir, *, plots: bool = True) -> dict:
    """Write ``metrics.json``, ``fills.parquet``, ``orders.parquet`` and ``report.html``.

    Returns the paths written, by name.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    p = out / "metrics.json"
    p.write_text(json.dumps(metrics, indent=2, sort_keys=False) + "\n")
    paths["metrics"] = p
    for name, arr in (("fills", result.fills), ("orders", result.orders)):
        tbl = pa.table({k: arr[k] for k in arr.dtype.names})
        p = out / f"{name}.parquet"
        pq.write_table(tbl, p)
        paths[name] = p
    figs = _plots(result, series) if plots else []
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(metrics.get(k))}</td></tr>"
                   for k in HEADLINE if k in metrics)
    rest = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>"
                   for k, v in metrics.items() if k not in HEADLINE)
    cfg = html.escape(repr(result.config))
    imgs = "".join(f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' "
                   f"src='data:image/png;base64,{b}'/>" for t, b in figs)
    doc = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Backtest: {html.escape(result.strategy)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:2px 8px}}
td:nth-child(2){{text-align:right;font-family:monospace}}img{{max-width:100%}}</style>
</head><body>
<h1>Backtest: strategy {html.escape(result.strategy)} on {_fmt(metrics.get("instruments"))}</h1>
<p>{result.n_input:,} input messages, {result.n_book:,} book messages of the traded symbols,
{result.seconds:.2f} s. Money in dollars; spreads and markouts in Price(4) units per share
(100 = one cent).</p>
<h2>Headline metrics</h2><table>{rows}</table>
{imgs}
<h2>All metrics</h2><table>{rest}</table>
<h2>Configuration</h2><pre>{cfg}</pre>
</body></html>
"""
    p = out / "report.html"
    p.write_text(doc)
    paths["report"] = p
    return paths
