"""The compiled market-maker backtest equals the Python event loop, bit for bit.

Both loops run on the same market data and configuration; every output is compared: fills,
orders (with their arrival mids and risk denials), the quotes the strategy saw, the strategy's
log (floats compared exactly), counters, denials and the analytics metrics. The streams are
generated days (classic and realistic profiles) and a classic day made hostile (unknown
references, duplicate adds, bad sides, clock going backwards, over-executions...).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from host.cli import main
from host.errors import UserError
from host.feed.generator import generate
from host.trading.analytics import analyze
from host.trading.backtest import BacktestConfig, Backtester, Fees, default_risk_config, load_market
from host.trading.backtest import fast as F
from host.trading.backtest.fast import FastBacktester, make_backtester
from host.trading.risk import USD, AccountConfig, RiskConfig
from host.trading.strategy import make_strategy


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    d = tmp_path_factory.mktemp("days")
    out = {}
    for name, n, profile in (("classic", 60_000, "classic"), ("realistic", 150_000, "realistic")):
        p = d / f"{name}.itch"
        p.write_bytes(generate(n, 3, 11, profile=profile))
        out[name] = load_market(p, n_auto=1)
    return out


def _hostile(m):
    """A copy of ``m`` with anomalies written into its columns (every 97th message)."""
    c = {k: v.copy() for k, v in m.cols.items()}
    n = len(c["msg_type"])
    rng = np.random.default_rng(5)
    idx = np.arange(50, n, 97)
    what = rng.integers(0, 7, len(idx))
    refs = c["order_ref"]
    for i, w in zip(idx.tolist(), what.tolist(), strict=True):
        if w == 0:  # unknown reference
            refs[i] = refs[i] + (1 << 40)
        elif w == 1:  # duplicate add: an add of an earlier order's reference
            c["msg_type"][i] = ord("A")
            refs[i] = refs[i - 10]
            c["side"][i] = ord("B")
        elif w == 2:  # bad side byte
            c["msg_type"][i] = ord("A")
            c["side"][i] = ord("Z")
        elif w == 3:  # the clock goes backwards by 5 ms
            c["timestamp"][i] = max(0, int(c["timestamp"][i]) - 5_000_000)
        elif w == 4:  # executes more than the order has
            c["msg_type"][i] = ord("E")
            c["shares"][i] = 1_000_000
        elif w == 5:  # zero-share add at a crossing price
            c["msg_type"][i] = ord("A")
            c["shares"][i] = 0
            refs[i] = refs[i] + (1 << 41)
        else:  # replace onto an existing reference
            c["msg_type"][i] = ord("U")
            c["new_order_ref"][i] = refs[i - 3]
    return dataclasses.replace(m, cols=c)


def _both(m, cfg=None, table=None, risk=None):
    a = Backtester(m, make_strategy("mm", table), cfg, risk).run()
    fb = FastBacktester(m, make_strategy("mm", table), cfg, risk)
    b = fb.run()
    return a, b


def _same(a, b):
    assert a.path == "python" and b.path == "fast"
    for f in ("fills", "orders"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and len(x) == len(y), f
        assert x.tobytes() == y.tobytes(), f
    assert a.quotes.dtype == b.quotes.dtype and a.quotes.tobytes() == b.quotes.tobytes()
    assert a.strategy_log == b.strategy_log
    for f in ("counters", "denied", "n_input", "n_book", "first_ts", "last_ts", "instruments",
              "symbols", "strategy"):
        assert getattr(a, f) == getattr(b, f), f
    ma, mb = analyze(a)[0], analyze(b)[0]
    assert (ma.pop("event_loop"), mb.pop("event_loop")) == ("python", "fast")
    for m in (ma, mb):  # wall time and what is derived from it
        del m["seconds"], m["msgs_per_s_input"]
    assert json.dumps(ma, sort_keys=True, default=str) == json.dumps(mb, sort_keys=True,
                                                                     default=str)


CONFIGS = {
    "default": (None, None, None),
    "zero_latency": (BacktestConfig(md_latency_ns=0, entry_latency_ns=0,
                                    response_latency_ns=0), None, None),
    "slow_entry_fees_depth1": (BacktestConfig(md_latency_ns=5_000, entry_latency_ns=250_000,
                                              response_latency_ns=1_000, fees=Fees(-30, 45),
                                              depth=1), None, None),
    "aggressive_strategy": (BacktestConfig(depth=0), {
        "gamma": 0.02, "k": 3.0, "order_qty": 300, "max_position": 600, "min_requote_ns": 0,
        "refresh_ticks": 1, "min_half_spread_ticks": 0.5, "ofi_ticks": 2.0}, None),
    "tight_risk": (None, {"order_qty": 200, "max_position": 400},
                   default_risk_config(1, 300, 150)),
    "throttled_risk": (None, {"min_requote_ns": 0}, RiskConfig(accounts=(AccountConfig(
        account=1, strategy=1, max_order_qty=2000, max_order_notional=100_000_000 * USD,
        max_position=2000, max_orders_per_window=2, rate_window_ns=1_000_000_000,
        duplicate_window_ns=1_000_000_000, daily_loss_limit=10_000_000 * USD,
        breaker_loss_bps=0),))),
}


@pytest.mark.parametrize("day", ["classic", "realistic"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_fast_equals_python(days, day, name):
    cfg, table, risk = CONFIGS[name]
    a, b = _both(days[day], cfg, table, risk)
    _same(a, b)
    assert len(a.quotes) > 100 and len(a.orders) > 10
    if name.endswith("_risk"):
        assert a.denied  # the denial path is exercised


@pytest.mark.parametrize("name", ["default", "zero_latency", "aggressive_strategy"])
def test_fast_equals_python_on_a_hostile_stream(days, name):
    cfg, table, risk = CONFIGS[name]
    m = _hostile(days["classic"])
    a, b = _both(m, cfg, table, risk)
    _same(a, b)
    c = a.counters
    assert c["unknown_ref"] > 0 and c["duplicate_add"] > 0


@pytest.mark.parametrize("seed", range(6))
def test_fast_equals_python_on_random_days_and_settings(tmp_path, seed):
    """Small days of other seeds with drawn latencies (equal ones too: ties in the scheduler),
    fees, depth and strategy parameters."""
    rng = np.random.default_rng(100 + seed)
    p = tmp_path / "d.itch"
    p.write_bytes(generate(25_000, 2, 100 + seed, profile="classic" if seed % 2 else "realistic"))
    m = load_market(p, n_auto=1)
    lat = [0, 1_000, 20_000, 20_000, 150_000]
    cfg = BacktestConfig(md_latency_ns=int(rng.choice(lat)), entry_latency_ns=int(rng.choice(lat)),
                         response_latency_ns=int(rng.choice(lat)),
                         fees=Fees(int(rng.integers(-40, 10)), int(rng.integers(0, 50))),
                         depth=int(rng.integers(0, 6)))
    table = {"gamma": float(rng.choice([0.01, 0.05, 0.1])), "k": float(rng.choice([1.0, 3.0])),
             "order_qty": int(rng.choice([100, 200])), "max_position": int(rng.choice([200, 1000])),
             "min_requote_ns": int(rng.choice([0, 1_000_000])),
             "refresh_ticks": int(rng.integers(1, 3)), "depth": int(rng.integers(1, 5)),
             "vol_sample_ns": int(rng.choice([100_000_000, 1_000_000_000]))}
    a, b = _both(m, cfg, table)
    _same(a, b)


def test_fills_happen_on_the_compared_days(days):
    """The comparisons above are not vacuous: passive fills and both sides traded."""
    a, b = _both(days["realistic"], *CONFIGS["aggressive_strategy"])
    assert len(b.fills) > 20 and set(b.fills["side"].tolist()) == {1, 2}
    assert b.counters["passive_fills"] > 0


def test_buffers_that_grow_and_compact_give_the_same_result(days, monkeypatch):
    """Tiny first buffers: the kernels stop for room again and again (the event buffer is
    compacted, the others doubled) and resume where they were."""
    from host.trading.backtest import fastcore as fc

    monkeypatch.setattr(F, "START_ROWS", 4)
    cfg, table, risk = CONFIGS["aggressive_strategy"]
    m = days["realistic"]
    a = Backtester(m, make_strategy("mm", table), cfg, risk).run()
    fb = FastBacktester(m, make_strategy("mm", table), cfg, risk)
    _same(a, fb.run())
    events = int(fb._st["SI"][fc.I_EVSEQ])
    assert events > 300
    assert fb._st["BUF"][1].shape[0] < events  # compacted: smaller than all events made


def test_progress_calls_and_rows_match(days):
    m = days["realistic"]
    seen = {}
    for cls in (Backtester, FastBacktester):
        bt = cls(m, make_strategy("mm"), None)
        calls = []

        def cb(n, calls=calls, bt=bt):
            calls.append((n, len(bt.progress_rows("quotes")), len(bt.progress_rows("orders"))))

        res = bt.run(cb)
        seen[cls.__name__] = calls
        assert bt.progress_rows("fills").tobytes() == res.fills.tobytes()
        assert bt.progress_rows("orders", 3).tobytes() == res.orders[3:].tobytes()
        assert bt.progress_rows("quotes", 5).tobytes() == res.quotes[5:].tobytes()
    assert seen["Backtester"] == seen["FastBacktester"]
    assert len(seen["Backtester"]) >= 2


def test_cache_check_sees_the_compiled_kernels(days):
    """After a fast run in this process numba's cache holds the kernels (cache=True)."""
    FastBacktester(days["classic"], make_strategy("mm")).run()
    assert F.compiled_cache_warm()


def test_choice_by_environment(days, monkeypatch):
    m = days["classic"]
    monkeypatch.delenv(F.ENV, raising=False)
    # unset: the fast loop when its compiled code is cached, or the input is large enough
    monkeypatch.setattr(F, "compiled_cache_warm", lambda: True)
    assert isinstance(make_backtester(m, make_strategy("mm")), FastBacktester)
    monkeypatch.setattr(F, "compiled_cache_warm", lambda: False)
    bt = make_backtester(m, make_strategy("mm"))
    assert isinstance(bt, Backtester) and "not in numba's cache yet" in bt.path_reason
    monkeypatch.setattr(F, "AUTO_COMPILE_MIN", len(m))
    assert isinstance(make_backtester(m, make_strategy("mm")), FastBacktester)
    monkeypatch.setenv(F.ENV, "fast")  # always the fast loop, cache or not
    assert isinstance(make_backtester(m, make_strategy("mm")), FastBacktester)
    monkeypatch.setenv(F.ENV, "python")
    bt = make_backtester(m, make_strategy("mm"))
    assert isinstance(bt, Backtester) and bt.path_reason == "ITCHFPGA_BACKTEST=python"
    res = bt.run()
    assert res.path == "python" and res.path_reason == "ITCHFPGA_BACKTEST=python"
    monkeypatch.setenv(F.ENV, "turbo")
    with pytest.raises(UserError, match="expected python or fast"):
        make_backtester(m, make_strategy("mm"))
    monkeypatch.setenv(F.ENV, "fast")
    bt = make_backtester(m, make_strategy("momentum"))
    assert isinstance(bt, Backtester) and "no compiled path" in bt.path_reason


def test_circuit_breaker_config_runs_on_python(days):
    risk = RiskConfig(accounts=(AccountConfig(
        account=1, strategy=1, max_order_qty=2000, max_order_notional=100_000_000 * USD,
        max_position=2000, max_orders_per_window=0, duplicate_window_ns=0,
        daily_loss_limit=10_000_000 * USD, breaker_loss_bps=200),))
    bt = make_backtester(days["classic"], make_strategy("mm"), None, risk)
    assert isinstance(bt, Backtester) and "circuit breaker" in bt.path_reason


def test_compiled_loop_that_stops_reruns_on_python(days, monkeypatch):
    """A run the kernels cannot finish (here: room for one own order, the market maker needs
    two) is done again by the Python loop, with the same result and the reason."""
    m = days["classic"]
    want = Backtester(m, make_strategy("mm")).run()
    monkeypatch.setattr(F, "OWN_CAP", 1)
    got = FastBacktester(m, make_strategy("mm")).run()
    assert got.path == "python" and "compiled loop stopped" in got.path_reason
    assert got.fills.tobytes() == want.fills.tobytes()
    assert got.orders.tobytes() == want.orders.tobytes()


@pytest.mark.parametrize("env", ["fast", "python"])
def test_cli_prints_the_event_loop(tmp_path, capsys, monkeypatch, env):
    src = tmp_path / "d.itch"
    src.write_bytes(generate(20_000, 2, 3))
    monkeypatch.setenv(F.ENV, env)
    assert main(["backtest", str(src), "--strategy", "mm", "--out", str(tmp_path / "o"),
                 "--no-progress", "--no-plots"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [x for x in out if x.startswith("event loop: ")]
    assert len(lines) == 1
    assert lines[0].startswith(f"event loop: {env} (")
    assert os.environ[F.ENV] == env
