"""Analytics against independent plain-Python implementations and hand-worked examples."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from host.trading.analytics import analyze
from host.trading.analytics import metrics as M
from host.trading.analytics.tca import MidPath, implementation_shortfall, markouts, spreads
from host.trading.backtest import FILL_DTYPE, ORDER_DTYPE, BacktestConfig, BacktestResult


def _series(seed=3, n=500):
    rnd = random.Random(seed)
    return [rnd.gauss(0.0002, 0.01) for _ in range(n)]


def test_sharpe_sortino_match_plain_python():
    r = _series()
    ppy = 98280.0
    sh = statistics.mean(r) / statistics.stdev(r) * math.sqrt(ppy)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    so = statistics.mean(r) / down * math.sqrt(ppy)
    assert M.sharpe(np.array(r), ppy) == pytest.approx(sh, rel=1e-12)
    assert M.sortino(np.array(r), ppy) == pytest.approx(so, rel=1e-12)


def test_max_drawdown_brute_force_and_duration():
    rnd = random.Random(5)
    e = [0.0]
    for _ in range(300):
        e.append(e[-1] + rnd.gauss(0, 1))
    brute = max(e[i] - e[j] for i in range(len(e)) for j in range(i, len(e)))
    depth, pk, tr, _ = M.max_drawdown(np.array(e))
    assert depth == pytest.approx(brute)
    assert e[pk] - e[tr] == pytest.approx(brute)
    # hand example: peak at t=1 (10), under water until t=4 (recovers to 10), 3 units long;
    # then a new peak 12 at t=5, under water to the end t=7: 2 units
    d, pk, tr, dur = M.max_drawdown(np.array([0, 10, 7, 4, 10, 12, 11, 11.5]),
                                    np.arange(8) * 1)
    assert (d, pk, tr, dur) == (6.0, 1, 3, 3)


def _quantile_linear(xs, p):
    s = sorted(xs)
    pos = (len(s) - 1) * p
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_var_es_historical_and_parametric(level):
    x = _series(7, 2000)
    q = _quantile_linear(x, 1 - level)
    tail = [v for v in x if v <= q]
    v, e = M.var_es_historical(np.array(x), level)
    assert v == pytest.approx(-q) and e == pytest.approx(-sum(tail) / len(tail))
    # parametric: VaR from NormalDist quantile, ES by integrating the quantile over the tail
    nd = statistics.NormalDist(statistics.mean(x), statistics.stdev(x))
    pv, pe = M.var_es_parametric(np.array(x), level)
    assert pv == pytest.approx(-nd.inv_cdf(1 - level), rel=1e-9)
    n = 200_000
    a = 1 - level
    es = -sum(nd.inv_cdf(a * (k + 0.5) / n) for k in range(n)) / n
    assert pe == pytest.approx(es, rel=1e-3)


def test_average_cost_pnl_hand_example():
    # buy 100 @10, buy 100 @12 (avg 11), sell 150 @13 (+300), sell 100 @9 (close 50: -100,
    # then short 50 @9), buy 50 @8 (+50)
    side = np.array([1, 1, 2, 2, 1])
    px = np.array([10, 12, 13, 9, 8])
    q = np.array([100, 100, 150, 100, 50])
    r, pos, cost = M.average_cost_pnl(side, px, q)
    assert list(r) == [0, 0, 300, -100, 50]
    assert list(pos) == [100, 200, 50, -50, 0]
    assert cost == 0
    # realized totals equal the cash flow of a round trip to flat
    cash = sum((-1 if s == 1 else 1) * p * n for s, p, n in zip(side, px, q, strict=True))
    assert r.sum() == cash
    assert M.win_rate(r) == pytest.approx(2 / 3)
    assert M.profit_factor(r) == pytest.approx(350 / 100)


def test_tca_hand_examples():
    path = MidPath(np.array([0, 10, 20]), np.array([99, 100, 104]), np.array([101, 102, 106]))
    assert list(path.at(np.array([-1, 0, 15, 25]))[1:]) == [100, 101, 105]
    assert math.isnan(path.at(np.array([-1]))[0])
    # buy 10 @100 at t=0, sell 30 @104 at t=12
    side, px, q, ts = np.array([1, 2]), np.array([100, 104]), np.array([10, 30]), np.array([0, 12])
    mk = markouts(side, px, q, ts, path, [0, 10])
    assert mk[0] == pytest.approx((10 * 0 + 30 * (104 - 101)) / 40)
    assert mk[1] == pytest.approx((10 * (101 - 100) + 30 * (104 - 105)) / 40)
    eff, rea = spreads(side, px, q, np.array([100.0, 101.0]), np.array([101.0, 105.0]))
    assert eff == pytest.approx((10 * 0 + 30 * -6) / 40)
    assert rea == pytest.approx((10 * -2 + 30 * 2) / 40)
    cost, bps = implementation_shortfall(np.array([1, 2]), np.array([99.0, 105.0]),
                                         np.array([10, 30]), np.array([100.0, 104.0]))
    assert cost == pytest.approx(10 * 1 + 30 * 1)
    assert bps == pytest.approx(40 / (99 * 10 + 105 * 30) * 1e4)


def _result(fills, quotes, orders=()):
    f = np.array(fills, FILL_DTYPE)
    o = np.array(list(orders), ORDER_DTYPE) if orders else np.zeros(0, ORDER_DTYPE)
    q = np.array(quotes, np.int64).reshape(-1, 4)
    return BacktestResult(
        fills=f, orders=o, quotes=q, instruments=(7,), symbols={7: "X"},
        counters={"quoted_qty": 400}, config=BacktestConfig(capital=10_000_000),
        strategy="test", strategy_log=[], n_input=10, n_book=10, seconds=1.0, first_ts=0,
        last_ts=10_000_000_000, denied={})


def test_analyze_equity_matches_hand_computation():
    s = 1_000_000_000
    quotes = [(0, 7, 10_000, 10_200), (3 * s, 7, 10_400, 10_600), (6 * s, 7, 9_800, 10_000)]
    # buy 100 @10_100 (maker, rebate 20/share) at 1 s; sell 100 @10_500 taker (fee 30) at 4 s;
    # buy 100 @9_900 at 7 s (open at the end, mark 9_900)
    fills = [(1 * s, 1, 7, 1, 1, 10_100, 100, -2000, 0, 20_200),
             (4 * s, 2, 7, 2, 0, 10_500, 100, 3000, 0, 21_000),
             (7 * s, 3, 7, 1, 1, 9_900, 100, -2000, 0, 19_800)]
    m, ser = analyze(_result(fills, quotes), period_ns=s)
    cash = -10_100 * 100 + 2000 + 10_500 * 100 - 3000 - 9_900 * 100 + 2000
    assert m["pnl_total"] == pytest.approx((cash + 100 * 9_900) / 1e4)
    # realized: the round trip (10_500 - 10_100) x 100, net of fees (-2000 + 3000 - 2000)
    assert m["pnl_realized"] == pytest.approx((400 * 100 - (-2000 + 3000 - 2000)) / 1e4)
    assert m["pnl_unrealized"] == pytest.approx(0.0)
    assert m["fees"] == pytest.approx(-0.1)
    assert m["n_fills"] == 3 and m["filled_qty"] == 300
    assert m["fill_ratio"] == pytest.approx(300 / 400)
    assert m["maker_share"] == pytest.approx(2 / 3)
    # equity at each second, by hand: position x mid + cash
    mids = {0: 10_100, 1: 10_100, 2: 10_100, 3: 10_500, 4: 10_500, 5: 10_500, 6: 9_900,
            7: 9_900, 8: 9_900, 9: 9_900, 10: 9_900}
    want = []
    for t in range(11):
        pos, c = 0, 0
        for ft, _, _, sd, _, px, q, fee, _, _ in fills:
            if ft <= t * s:
                sg = 1 if sd == 1 else -1
                pos += sg * q
                c += -sg * px * q - fee
        want.append((c + pos * mids[t]) / 1e4)
    assert list(ser["equity"][:11]) == pytest.approx(want)
    rets = np.diff(np.array(want) * 1e4) / 10_000_000
    assert m["sharpe"] == pytest.approx(M.sharpe(rets, M.periods_per_year(s)))
    assert m["turnover"] == pytest.approx((10_100 + 10_500 + 9_900) * 100 / 10_000_000)
