"""The backtester's event loop: latency, the risk path, strategy callbacks, determinism, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from host.cli import main
from host.feed.files import write_file
from host.feed.generator import generate
from host.feed.itch import encode
from host.trading.backtest import BacktestConfig, Backtester, Fees, load_market
from host.trading.backtest.run import run_backtest
from host.trading.matching import OrderFilled, Side
from host.trading.risk import DenyReason, OrderDenied
from host.trading.strategy import Strategy, make_strategy

LOC = 5
MS = 1_000_000


def _story_file(tmp_path, msgs):
    path = tmp_path / "story.itch"
    head = [encode("R", stock_locate=LOC, stock="TEST", timestamp=1)]
    write_file(path, head + [encode(t, stock_locate=LOC, **kw) for t, kw in msgs])
    return path


def _book(ts0=10 * MS):
    """Bids 300 @100.00 (ref 1) and 200 @100.00 (ref 2), ask 500 @100.10 (ref 3)."""
    return [
        ("A", dict(timestamp=ts0, order_reference_number=1, buy_sell_indicator="B",
                   shares=300, price=1_000_000, stock="TEST")),
        ("A", dict(timestamp=ts0 + 1, order_reference_number=2, buy_sell_indicator="B",
                   shares=200, price=1_000_000, stock="TEST")),
        ("A", dict(timestamp=ts0 + 2, order_reference_number=3, buy_sell_indicator="S",
                   shares=500, price=1_001_000, stock="TEST")),
    ]


class Scripted(Strategy):
    """Joins the bid once with ``qty`` shares; records every order event."""

    name = "scripted"

    def __init__(self, qty=100):
        super().__init__(None)
        self.qty = qty
        self.events = []
        self.sent = False

    def on_quote(self, ctx, q):
        if self.sent or not q.bid_px or not q.ask_px:
            return None
        self.sent = True
        return [ctx.limit(q.instrument, Side.BUY, self.qty, q.bid_px)]

    def on_order(self, ctx, e):
        self.events.append((ctx.now, e))


def _run(tmp_path, msgs, strat, **cfg):
    m = load_market(_story_file(tmp_path, msgs), [LOC])
    bt = Backtester(m, strat, BacktestConfig(fees=Fees(-20, 30), **cfg))
    return bt, bt.run()


def _later(ts):
    """Executions of refs 1 and 2 (ahead), then an order behind that trades."""
    return [
        ("E", dict(timestamp=ts, order_reference_number=1, executed_shares=300)),
        ("E", dict(timestamp=ts + 1, order_reference_number=2, executed_shares=200)),
        ("A", dict(timestamp=ts + 2, order_reference_number=4, buy_sell_indicator="B",
                   shares=400, price=1_000_000, stock="TEST")),
        ("E", dict(timestamp=ts + 3, order_reference_number=4, executed_shares=150)),
    ]


def test_fill_after_the_queue_ahead_with_latencies(tmp_path):
    strat = Scripted()
    bt, r = _run(tmp_path, _book() + _later(20 * MS), strat, md_latency_ns=1000,
                 entry_latency_ns=2000, response_latency_ns=3000)
    assert len(r.fills) == 1
    f = r.fills[0]
    assert (int(f["price"]), int(f["qty"]), int(f["maker"]), int(f["fee"])) == (
        1_000_000, 100, 1, -2000)
    assert int(f["ts"]) == 20 * MS + 3  # the execution of ref 4 (behind)
    fills = [(t, e) for t, e in strat.events if isinstance(e, OrderFilled)]
    assert len(fills) == 1 and fills[0][0] == 20 * MS + 3 + 3000  # response latency
    assert bt.ctx.position(LOC) == 100
    # the risk layer saw the fill (its post-trade kernel got the venue events)
    assert bt.risk.position(1, LOC).qty == 100
    assert bt.risk.open_orders == 0
    # the order was sent when the last book message was seen: ts0 + 2 + md latency
    assert int(r.orders[0]["ts"]) == 10 * MS + 2 + 1000


def test_entry_latency_misses_the_trades(tmp_path):
    # sent at 10 ms + 2 + md, it arrives at 20 ms + 4 + md: after the executions of refs 1, 2
    # and 4; the 250 shares left of ref 4 are ahead of it and nothing trades any more
    strat = Scripted()
    bt, r = _run(tmp_path, _book() + _later(20 * MS), strat, entry_latency_ns=10 * MS + 2)
    assert len(r.fills) == 0
    canceled = [e for _, e in strat.events if type(e).__name__ == "OrderCanceled"]
    assert len(canceled) == 1 and canceled[0].canceled_qty == 100  # by on_stop, at the end


def test_risk_denies_and_nothing_reaches_the_venue(tmp_path):
    strat = Scripted(qty=1_000_000)  # above the default risk max order size
    bt, r = _run(tmp_path, _book() + _later(20 * MS), strat)
    denied = [e for _, e in strat.events if isinstance(e, OrderDenied)]
    assert len(denied) == 1 and denied[0].reason == DenyReason.MAX_ORDER_QTY
    assert bt.link.forwarded == 0 and len(r.fills) == 0
    assert r.denied == {"MAX_ORDER_QTY": 1}
    assert int(r.orders[0]["denied"]) == DenyReason.MAX_ORDER_QTY


@pytest.fixture(scope="module")
def small_itch(tmp_path_factory):
    p = tmp_path_factory.mktemp("bt") / "small.itch"
    p.write_bytes(generate(30_000, 2, 11))
    return p


def test_market_maker_is_deterministic_and_consistent(small_itch):
    runs = []
    for _ in range(2):
        res, m, _ = run_backtest(small_itch, "mm", None, None)
        runs.append((res, m))
    (a, ma), (b, mb) = runs
    assert a.fills.tobytes() == b.fills.tobytes() and len(a.fills) > 0
    assert a.orders.tobytes() == b.orders.tobytes()
    assert ma["pnl_total"] == mb["pnl_total"]
    # position from fills never passes the configured max by more than one in-flight lot
    f = a.fills
    pos = np.cumsum(np.where(f["side"] == 1, 1, -1) * f["qty"])
    assert np.abs(pos).max() <= 1000 + 2 * 100
    assert a.counters["risk_fills"] == len(f)
    assert a.counters["ahead_inconsistent"] == 0


@pytest.mark.parametrize("name", ["pairs", "momentum"])
def test_other_strategies_run(small_itch, name):
    res, m, _ = run_backtest(small_itch, name, None, None)
    assert m["n_orders"] >= 0 and len(res.instruments) == (2 if name == "pairs" else 1)


def test_cli_backtest_writes_outputs(small_itch, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["backtest", str(small_itch), "--strategy", "mm", "--out", str(out),
                 "--no-progress"]) == 0
    txt = capsys.readouterr().out
    assert "sharpe" in txt and "pnl_total" in txt
    m = json.loads((out / "metrics.json").read_text())
    assert m["strategy"] == "mm" and "markout_10s" in m
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    import pyarrow.parquet as pq

    assert pq.read_table(out / "fills.parquet").num_rows == m["n_fills"]


def test_cli_bad_inputs_are_one_line(tmp_path, capsys, small_itch):
    bad = tmp_path / "bad.toml"
    bad.write_text("[strategy]\ngamma = 'x'\n")
    assert main(["backtest", str(small_itch), "--strategy", "mm", "--config", str(bad),
                 "--no-progress", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: strategy.gamma") and err.count("\n") == 1
    bad.write_text("[strategy]\nnope = 1\n")
    assert main(["backtest", str(small_itch), "--strategy", "mm", "--config", str(bad),
                 "--no-progress"]) == 1
    assert "unknown key(s) nope" in capsys.readouterr().err
    assert main(["backtest", str(tmp_path / "missing.itch"), "--strategy", "mm"]) == 1
    assert capsys.readouterr().err.startswith("error:")
    assert main(["backtest", str(small_itch), "--strategy", "mm", "--symbols", "ZZZZ",
                 "--no-progress"]) == 1
    assert "unknown symbol" in capsys.readouterr().err


def test_strategy_config_from_toml(tmp_path):
    p = tmp_path / "mm.toml"
    p.write_text("[strategy]\ngamma = 0.5\norder_qty = 200\n[backtest]\nmd_latency_ns = 5\n"
                 "fees = { maker = -10, taker = 25 }\n")
    from host.trading.backtest.run import load_run_config

    run = load_run_config(p)
    s = make_strategy("mm", run.strategy_table)
    assert s.config.gamma == 0.5 and s.config.order_qty == 200
    assert run.backtest.md_latency_ns == 5 and run.backtest.fees == Fees(-10, 25)
    with pytest.raises(ValueError):
        make_strategy("mm", {"gamma": -1.0})


@pytest.mark.parametrize("name", ["mm", "mm_wide", "pairs", "momentum"])
def test_example_configs_load(name):
    from pathlib import Path

    from host.trading.backtest.run import load_run_config

    root = Path(__file__).resolve().parents[3]
    run = load_run_config(root / "examples" / "backtest" / f"{name}.toml")
    s = make_strategy(name.split("_")[0], run.strategy_table)
    assert s.config is not None


class Ticker(Strategy):
    name = "ticker"

    def __init__(self):
        super().__init__(None)
        self.ticks = []

    def on_start(self, ctx):
        ctx.set_timer(5 * MS)

    def on_timer(self, ctx):
        self.ticks.append(ctx.now)


def test_timer_fires_on_event_time_and_stops_at_the_end(tmp_path):
    strat = Ticker()
    bt, r = _run(tmp_path, _book() + _later(20 * MS), strat)
    # first message at 10 ms, last at 20 ms + 3, timers every 5 ms from the first message
    assert strat.ticks == [15 * MS, 20 * MS]


def test_pcap_input_gives_the_same_fills(tmp_path, capsys):
    itch, pcap = tmp_path / "d.itch", tmp_path / "d.pcap"
    assert main(["generate", "--messages", "20000", "--symbols", "2", "--seed", "3",
                 "--out", str(itch), "--pcap", str(pcap)]) == 0
    a, _, _ = run_backtest(itch, "mm", None, None)
    b, _, _ = run_backtest(pcap, "mm", None, None)
    assert len(a.fills) > 0 and a.fills.tobytes() == b.fills.tobytes()


@pytest.mark.slow
def test_cli_sweep_two_configs_on_two_processes(small_itch, tmp_path, capsys):
    c1, c2 = tmp_path / "tight.toml", tmp_path / "wide.toml"
    c1.write_text("[strategy]\ngamma = 0.05\n")
    c2.write_text("[strategy]\ngamma = 0.5\nmin_half_spread_ticks = 2.0\n")
    out = tmp_path / "sw"
    assert main(["sweep", str(small_itch), "--strategy", "mm", "--config", str(c1), str(c2),
                 "--out", str(out)]) == 0
    table = json.loads((out / "sweep.json").read_text())
    assert set(table) == {"tight", "wide"}
    assert (out / "tight" / "report.html").exists() and (out / "wide" / "metrics.json").exists()
    # each worker applied its own config: the two runs differ
    assert (table["wide"]["n_fills"], table["wide"]["pnl_total"]) != (
        table["tight"]["n_fills"], table["tight"]["pnl_total"])


def test_inputs_without_book_messages_are_one_line_errors(tmp_path, capsys, small_itch):
    only_dir = tmp_path / "dir.itch"
    write_file(only_dir, [encode("R", stock_locate=LOC, stock="TEST", timestamp=1)])
    assert main(["backtest", str(only_dir), "--strategy", "mm", "--no-progress"]) == 1
    assert "no book messages" in capsys.readouterr().err
    assert main(["backtest", str(small_itch), "--strategy", "mm", "--symbols", "9999",
                 "--no-progress"]) == 1
    assert "no book messages for locate(s) [9999]" in capsys.readouterr().err
    empty = tmp_path / "empty.itch"
    empty.write_bytes(b"")
    assert main(["backtest", str(empty), "--strategy", "mm", "--no-progress"]) == 1
    assert capsys.readouterr().err.startswith("error:")
