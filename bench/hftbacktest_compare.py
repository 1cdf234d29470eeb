"""Same data, same simple strategy: this project's backtester against hftbacktest 2.4.4.

The book messages of the most active symbol of an ITCH file are converted to hftbacktest
events twice: market-by-price (``DEPTH_EVENT`` per level change, ``TRADE_EVENT`` per
execution, for its L2 queue models) and market-by-order (``ADD_ORDER_EVENT``,
``CANCEL_ORDER_EVENT``, ``MODIFY_ORDER_EVENT``, ``FILL_EVENT``, for its L3 FIFO model). Both
backtesters then run one strategy, "join the touch": every 100 ms, a live order that is no
longer at the best price is canceled; a side without a live order gets 100 shares at the best
price (bid while the position is below +500, ask while above -500). Latencies: 20 µs market
data, 30 µs order entry, 30 µs response; no fees.

hftbacktest needs numpy < 2.3 (the project pins 2.3.5), so it runs in its own environment
(``make hftbacktest-venv``) in a subprocess; this script runs with the project's venv.

Usage: ``python bench/hftbacktest_compare.py INPUT --hbt-python build/hftbacktest-venv/bin/python``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host.trading.backtest import BacktestConfig, Backtester, Fees, load_market  # noqa: E402
from host.trading.matching import Side  # noqa: E402
from host.trading.strategy import Strategy  # noqa: E402

MD, ENTRY, RESP = 20_000, 30_000, 30_000
STEP = 100_000_000
QTY, MAXPOS = 100, 500

# hftbacktest event flags (hftbacktest.types)
EXCH, LOCAL, BUYF, SELLF = 1 << 31, 1 << 30, 1 << 29, 1 << 28
DEPTH, TRADE, ADD, CANCEL, MODIFY, FILL = 1, 2, 10, 11, 12, 13
EVENT_DTYPE = np.dtype([("ev", "u8"), ("exch_ts", "i8"), ("local_ts", "i8"), ("px", "f8"),
                        ("qty", "f8"), ("order_id", "u8"), ("ival", "i8"), ("fval", "f8")],
                       align=True)


class JoinTouch(Strategy):
    """The comparison strategy on this project's backtester."""

    name = "join-touch"

    def __init__(self):
        super().__init__(None)
        self.q = None

    def on_start(self, ctx):
        ctx.set_timer(STEP)

    def on_quote(self, ctx, q):
        self.q = q

    def on_timer(self, ctx):
        q = self.q
        if q is None or not q.bid_px or not q.ask_px:
            return None
        out = []
        pos = ctx.position(q.instrument)
        for side, px, ok in ((Side.BUY, q.bid_px, pos < MAXPOS),
                             (Side.SELL, q.ask_px, pos > -MAXPOS)):
            live = [o for o in ctx.open_orders(q.instrument, side) if not o.cancel_sent]
            for o in live:
                if o.price != px:
                    out.append(ctx.cancel(o.order_id))
            if ok and not any(o.price == px for o in live) and not [
                    o for o in ctx.open_orders(q.instrument, side) if o.cancel_sent]:
                out.append(ctx.limit(q.instrument, side, QTY, px))
        return out


def convert(cols) -> tuple[np.ndarray, np.ndarray]:
    """(L2 events, L3 events) of one locate's book messages."""
    l2, l3 = [], []
    orders: dict[int, list] = {}
    levels: dict[tuple[int, int], int] = {}

    def lvl(side, px, d):
        k = (side, px)
        levels[k] = levels.get(k, 0) + d
        q = levels[k]
        if q == 0:
            del levels[k]
        return q

    for mt, ts, ref, nref, sd, sh, px in zip(
            cols["msg_type"].tolist(), cols["timestamp"].tolist(), cols["order_ref"].tolist(),
            cols["new_order_ref"].tolist(), cols["side"].tolist(), cols["shares"].tolist(),
            cols["price"].tolist(), strict=True):
        lt = ts + MD
        if mt in (65, 70):
            side = BUYF if sd == 66 else SELLF
            orders[ref] = [side, px, sh]
            l2.append((EXCH | LOCAL | DEPTH | side, ts, lt, px, lvl(side, px, sh), 0, 0, 0))
            l3.append((EXCH | LOCAL | ADD | side, ts, lt, px, sh, ref, 0, 0))
            continue
        o = orders.get(ref)
        if o is None:
            continue
        side, opx, left = o
        if mt in (69, 67):  # E/C: a trade (initiator is the other side), then the depth
            n = min(sh, left)
            init = SELLF if side == BUYF else BUYF
            l2.append((EXCH | LOCAL | TRADE | init, ts, lt, px if mt == 67 else opx, n, 0, 0, 0))
            l3.append((EXCH | LOCAL | FILL | side, ts, lt, opx, n, ref, 0, 0))
        elif mt == 88:
            n = min(sh, left)
        else:  # D, U
            n = left
        o[2] = left - n
        l2.append((EXCH | LOCAL | DEPTH | side, ts, lt, opx, lvl(side, opx, -n), 0, 0, 0))
        if o[2] <= 0:
            del orders[ref]
            if mt not in (69, 67):
                l3.append((EXCH | LOCAL | CANCEL | side, ts, lt, opx, 0, ref, 0, 0))
        elif mt == 88:
            l3.append((EXCH | LOCAL | MODIFY | side, ts, lt, opx, o[2], ref, 0, 0))
        if mt == 85:
            orders[nref] = [side, px, sh]
            l2.append((EXCH | LOCAL | DEPTH | side, ts, lt, px, lvl(side, px, sh), 0, 0, 0))
            l3.append((EXCH | LOCAL | ADD | side, ts, lt, px, sh, nref, 0, 0))
    return np.array(l2, EVENT_DTYPE), np.array(l3, EVENT_DTYPE)


HBT_SCRIPT = r"""
import json, sys, time
import numpy as np
from numba import njit
from hftbacktest import (BacktestAsset, HashMapMarketDepthBacktest, BUY, SELL, GTC, LIMIT)

STEP, QTY, MAXPOS, ENTRY, RESP = %(STEP)d, %(QTY)d, %(MAXPOS)d, %(ENTRY)d, %(RESP)d

@njit
def join_touch(hbt, out):
    oid = 1
    n_sub = 0
    steps = 0
    quoted = 0
    rc = 0
    while True:
        rc = hbt.elapse(STEP)
        if rc != 0:
            break
        steps += 1
        hbt.clear_last_trades(0)
        hbt.clear_inactive_orders(0)
        d = hbt.depth(0)
        bb = d.best_bid
        ba = d.best_ask
        if not (bb > 0 and ba > 0 and ba < 1e12):
            continue
        quoted += 1
        pos = hbt.position(0)
        has_b = False
        has_a = False
        orders = hbt.orders(0)
        vals = orders.values()
        while vals.has_next():
            o = vals.get()
            if not o.cancellable:
                if o.side == BUY:
                    has_b = True
                else:
                    has_a = True
                continue
            if o.side == BUY:
                if o.price != bb:
                    hbt.cancel(0, o.order_id, False)
                has_b = True
            else:
                if o.price != ba:
                    hbt.cancel(0, o.order_id, False)
                has_a = True
        if not has_b and pos < MAXPOS:
            hbt.submit_buy_order(0, oid, bb, QTY, GTC, LIMIT, False)
            oid += 1
            n_sub += 1
        if not has_a and pos > -MAXPOS:
            hbt.submit_sell_order(0, oid, ba, QTY, GTC, LIMIT, False)
            oid += 1
            n_sub += 1
    sv = hbt.state_values(0)
    out[0] = sv.position
    out[1] = sv.balance
    out[2] = sv.num_trades
    out[3] = sv.trading_volume
    out[4] = n_sub
    d = hbt.depth(0)
    out[5] = (d.best_bid + d.best_ask) / 2
    out[6] = steps
    out[7] = quoted
    out[8] = hbt.current_timestamp
    out[9] = rc

res = {}
for name in sys.argv[2:]:
    data = np.load(sys.argv[1])[name.split("-")[0]]
    a = (BacktestAsset().data([data]).linear_asset(1.0)
         .constant_order_latency(ENTRY, RESP).tick_size(1.0).lot_size(1.0)
         .trading_value_fee_model(0.0, 0.0).last_trades_capacity(100000))
    model = name.split("-", 1)[1]
    if model == "fifo":
        a = a.l3_fifo_queue_model().no_partial_fill_exchange()
    elif model.startswith("riskadverse"):
        a = a.risk_adverse_queue_model()
    else:
        a = a.power_prob_queue_model(3.0)
    if model != "fifo":
        a = a.no_partial_fill_exchange() if model.endswith("nopartial") else \
            a.partial_fill_exchange()
    t = time.perf_counter()
    try:
        hbt = HashMapMarketDepthBacktest([a])
        out = np.zeros(10)
        join_touch(hbt, out)
        hbt.close()
    except BaseException as e:
        res[name] = {"error": repr(e)[:300]}
        continue
    dt = time.perf_counter() - t
    res[name] = {"position": out[0], "cash": out[1], "fills": int(out[2]),
                 "volume": out[3], "submits": int(out[4]), "mid": out[5], "seconds": dt,
                 "events": int(len(data)), "steps": int(out[6]), "quoted": int(out[7]),
                 "end_ts": int(out[8]), "rc": int(out[9])}
print(json.dumps(res))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("--hbt-python", required=True)
    ap.add_argument("--models", default="l2-riskadverse-nopartial,l2-powerprob-nopartial,"
                    "l2-powerprob,l3-fifo")
    ap.add_argument("--json", help="also write the rows (name, seconds, events) to this file")
    a = ap.parse_args()
    market = load_market(a.input, n_auto=1)
    loc = market.locates[0]
    t = time.perf_counter()
    bt = Backtester(market, JoinTouch(), BacktestConfig(
        md_latency_ns=MD, entry_latency_ns=ENTRY, response_latency_ns=RESP,
        fees=Fees(0, 0)))
    r = bt.run()
    ours_s = time.perf_counter() - t
    f = r.fills
    sgn = np.where(f["side"] == 1, 1, -1)
    pos = int((sgn * f["qty"]).sum())
    cash = float((-sgn * f["price"] * f["qty"]).sum())
    q = r.quotes[r.quotes[:, 1] == loc]
    mid = (q[-1, 2] + q[-1, 3]) / 2
    sub = int(np.count_nonzero(r.orders["kind"] == 1))
    rows = [("this project (exact FIFO, L3)", len(f), int(f["qty"].sum()), sub, pos,
             (cash + pos * mid) / 1e4, ours_s, r.n_book)]
    l2, l3 = convert(market.cols)
    with tempfile.TemporaryDirectory() as d:
        npz = Path(d) / "events.npz"
        np.savez(npz, l2=l2, l3=l3)
        script = HBT_SCRIPT % dict(STEP=STEP, QTY=QTY, MAXPOS=MAXPOS, ENTRY=ENTRY, RESP=RESP)
        p = subprocess.run([a.hbt_python, "-c", script, str(npz), *a.models.split(",")],
                           capture_output=True, text=True, timeout=1800)
    if p.returncode:
        print(f"hftbacktest run failed: {p.stderr[-1500:]}")
        sys.exit(1)
    hres = json.loads(p.stdout.strip().splitlines()[-1])
    for name, v in hres.items():
        if "error" in v:
            rows.append((f"hftbacktest 2.4.4 {name}: {v['error']}",) + (None,) * 7)
            continue
        pnl = (v["cash"] + v["position"] * v["mid"]) / 1e4
        # hftbacktest counts a trade per fill event: volume in shares is comparable
        end = "" if v["rc"] == 1 else f" STOPPED rc={v['rc']} at {v['end_ts'] / 3.6e12:.2f} h"
        rows.append((f"hftbacktest 2.4.4 {name}{end}", v["fills"], int(v["volume"]),
                     v["submits"], int(v["position"]), pnl, v["seconds"], v["events"]))
    print(f"join-the-touch on {market.symbols.get(loc, loc)} (locate {loc}), "
          f"{r.n_book:,} book messages; latencies md {MD} ns, entry {ENTRY} ns, resp {RESP} ns")
    print(f"{'backtester':<62} {'fills':>6} {'shares':>8} {'submits':>8} {'pos':>6} "
          f"{'P&L $':>10} {'s':>7} {'events':>9}")
    for row in rows:
        if row[1] is None:
            print(row[0])
            continue
        print(f"{row[0]:<62} {row[1]:>6} {row[2]:>8} {row[3]:>8} {row[4]:>6} {row[5]:>10.2f} "
              f"{row[6]:>7.2f} {row[7]:>9,}")
    if a.json:
        Path(a.json).write_text(json.dumps([
            {"name": r[0], "seconds": r[6], "events": r[7]} for r in rows if r[1] is not None]))


if __name__ == "__main__":
    main()
