"""Multi-book backtests split by symbol over worker processes equal the one-process run.

Compared byte for byte: fills, orders (with denials), the quotes each strategy saw, the
strategies' logs, counters, denials, the analytics metrics (all but wall times and the shard
layout) and the per-book and per-shard digests, on the demo sample (``make demo``'s
parameters) and a generated realistic day, on the Python and the compiled loop, and with risk
limits tight enough to deny. Each book also equals a plain single-symbol backtest of its
symbol (order ids shifted by the book's base), which shows the limits apply per book.
Hostile inputs: one symbol, more shards than books, an empty file, bad ``--shards`` values,
a two-symbol strategy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from host.cli import main
from host.errors import UserError
from host.feed.generator import generate
from host.trading.analytics import analyze
from host.trading.backtest import BacktestConfig, Backtester, load_market
from host.trading.backtest import sharded as S
from host.trading.backtest.fast import FastBacktester
from host.trading.risk import USD, AccountConfig, RiskConfig
from host.trading.shards import partition
from host.trading.strategy import make_strategy


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sharded")
    out = {}
    # the demo sample: Makefile `demo` (generate --messages 200000 --symbols 16 --seed 1
    # --profile realistic)
    out["sample"] = d / "sample.itch"
    out["sample"].write_bytes(generate(200_000, 16, 1, profile="realistic"))
    out["day"] = d / "day.itch"
    out["day"].write_bytes(generate(120_000, 6, 23, profile="realistic"))
    out["one"] = d / "one.itch"
    out["one"].write_bytes(generate(20_000, 1, 4, profile="realistic"))
    out["empty"] = d / "empty.itch"
    out["empty"].write_bytes(b"")
    return out


def _tight_risk(open_orders: int = 1 << 18):
    """Limits the market maker hits on a generated day: a position limit of 400 shares and an
    account-wide order rate of 2 per second (both deny in three of the day's books);
    ``open_orders`` = 1: the open-order table holds one order (the second quote is denied)."""
    return RiskConfig(accounts=(AccountConfig(
        account=1, strategy=1, max_order_qty=10_000, max_order_notional=100_000_000 * USD,
        max_position=400, max_orders_per_window=2, rate_window_ns=1_000_000_000,
        duplicate_window_ns=0, daily_loss_limit=10_000_000 * USD, breaker_loss_bps=0),),
        max_open_orders=open_orders)


def _metrics(res):
    m, _ = analyze(res)
    for k in ("seconds", "msgs_per_s_input", "msgs_per_s_book", "cpu_seconds"):
        m.pop(k, None)
    return json.dumps(m, sort_keys=True, default=str)


def _same(a, b):
    assert a.fills.tobytes() == b.fills.tobytes()
    assert a.orders.tobytes() == b.orders.tobytes()
    assert np.asarray(a.quotes).tobytes() == np.asarray(b.quotes).tobytes()
    assert repr(a.strategy_log) == repr(b.strategy_log)
    assert a.counters == b.counters and a.denied == b.denied
    assert a.instruments == b.instruments and a.n_book == b.n_book
    assert (a.first_ts, a.last_ts, a.path) == (b.first_ts, b.last_ts, b.path)
    assert _metrics(a) == _metrics(b)


def _check_runs(market, shard_counts, risk=None, table=None, cfg=None):
    """Run ``market``'s books on 1 and on each of ``shard_counts`` shards; all equal."""
    cfg = cfg or BacktestConfig()
    one, info1 = S.run_books(market, "mm", table or {}, cfg, risk, 1)
    assert info1.parts == [sorted(market.locates)]
    for n in shard_counts:
        res, info = S.run_books(market, "mm", table or {}, cfg, risk, n)
        assert info.parts == partition(market.locates, min(n, len(market.locates)))
        _same(one, res)
        assert info.book_digests == info1.book_digests
        # per shard: the digest of its books equals the one-process run's books
        assert info.shard_digests == [S.shard_digest(info1.book_digests, p) for p in info.parts]
    return one, info1


def test_partition_is_the_cluster_routers():
    from host.cluster import router, session

    assert router.partition is partition and session.partition is partition
    assert S.partition is partition


def test_order_ids_per_book(files):
    m = load_market(files["day"], n_auto=3)
    res, info = S.run_books(m, "mm", {}, BacktestConfig(), None, 2)
    oid = res.orders["order_id"].astype(np.int64)
    loc = oid >> S.ORDER_ID_BITS
    assert len(oid) and set(loc.tolist()) <= set(m.locates)
    assert (res.orders["instrument"][res.orders["denied"] == 0] ==
            loc[res.orders["denied"] == 0]).all()
    assert len(np.unique(res.fills["order_id"] >> np.uint64(S.ORDER_ID_BITS))) > 1


@pytest.mark.parametrize("loop", ["python", "fast"])
def test_sample_sharded_equals_one_process(files, loop, monkeypatch):
    monkeypatch.setenv("ITCHFPGA_BACKTEST", loop)
    m = load_market(files["sample"], n_auto=4)
    one, _ = _check_runs(m, [2])
    assert {one.path} == {loop} and len(one.fills) > 0


@pytest.mark.parametrize("loop", ["python", "fast"])
@pytest.mark.parametrize("limits", [("RATE_LIMIT", "POSITION_LIMIT"), ("OPEN_ORDER_CAPACITY",)])
def test_realistic_day_with_risk_denials(files, loop, limits, monkeypatch):
    monkeypatch.setenv("ITCHFPGA_BACKTEST", loop)
    m = load_market(files["day"], n_auto=5)
    risk = _tight_risk(1 if "OPEN_ORDER_CAPACITY" in limits else 1 << 18)
    one, info = _check_runs(m, [2, 3], risk=risk)
    assert one.path == loop
    assert all(one.denied.get(k, 0) > 0 for k in limits), one.denied
    # denials in several books, hence in several shards of the 2- and 3-shard runs
    assert sum(1 for r in info.book_results.values()
               if all(r.denied.get(k, 0) for k in limits)) >= 3


def test_each_book_is_a_plain_backtest_of_its_symbol(files, monkeypatch):
    """Risk is per book: book X of the multi-book run is the single-symbol backtest of X
    with the same limits (the account-wide rate limit included), order ids aside."""
    monkeypatch.setenv("ITCHFPGA_BACKTEST", "python")
    m = load_market(files["day"], n_auto=3)
    _, info = S.run_books(m, "mm", {}, BacktestConfig(), _tight_risk(), 2)
    for loc, r in info.book_results.items():
        plain = Backtester(load_market(files["day"], [loc]), make_strategy("mm", {}),
                           BacktestConfig(), _tight_risk()).run()
        base = np.uint64(S.first_order_id(loc) - 1)
        assert (r.orders["order_id"] - base).tobytes() == plain.orders["order_id"].tobytes()
        assert (r.fills["order_id"] - base).tobytes() == plain.fills["order_id"].tobytes()
        for k in ("ts", "price", "qty", "side", "denied"):
            assert r.orders[k].tobytes() == plain.orders[k].tobytes()
        assert r.denied == plain.denied and r.counters == plain.counters


def test_fast_book_equals_python_book(files):
    m = load_market(files["day"], n_auto=2)
    for b in S.split_books(m):
        loc = b.locates[0]
        a = Backtester(b, make_strategy("mm", {}), first_order_id=S.first_order_id(loc)).run()
        f = FastBacktester(b, make_strategy("mm", {}), first_order_id=S.first_order_id(loc)).run()
        assert a.fills.tobytes() == f.fills.tobytes()
        assert a.orders.tobytes() == f.orders.tobytes()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_start_methods(files, monkeypatch, method):
    """Workers forked (one-thread parent) or spawned (otherwise) give the same result."""
    monkeypatch.setenv("ITCHFPGA_BACKTEST", "python")
    monkeypatch.setattr(S, "_start_method", lambda: method)
    m = load_market(files["day"], n_auto=3)
    _check_runs(m, [3])


def test_one_symbol_and_more_shards_than_books(files, monkeypatch):
    monkeypatch.setenv("ITCHFPGA_BACKTEST", "python")
    m = load_market(files["one"], n_auto=1)
    one, info = S.run_books(m, "mm", {}, BacktestConfig(), None, 1)
    res, info3 = S.run_books(m, "mm", {}, BacktestConfig(), None, 3)
    assert info3.parts == [list(m.locates)] and "running 1 shard" in info3.note
    _same(one, res)
    m2 = load_market(files["day"], n_auto=2)
    _check_runs(m2, [5])


def test_bad_values(files):
    m = load_market(files["day"], n_auto=2)
    for n in (0, -1):
        with pytest.raises(UserError, match="--shards must be >= 1"):
            S.run_books(m, "mm", {}, BacktestConfig(), None, n)
    with pytest.raises(UserError, match="one-symbol strategy"):
        S.run_books(m, "pairs", {}, BacktestConfig(), None, 2)


def _cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ITCHFPGA_BACKTEST", "python")
    runs = {}
    for n in (1, 2):
        o = tmp_path / f"s{n}"
        code, out, err = _cli(capsys, "backtest", str(files["day"]), "--strategy", "mm",
                              "--books", "3", "--shards", str(n), "--out", str(o),
                              "--no-plots", "--no-progress")
        assert code == 0, err
        assert f"shards: {n} (" in out and "3 book(s)" in out
        runs[n] = o
    for f in ("fills.parquet", "orders.parquet"):
        assert (runs[1] / f).read_bytes() == (runs[2] / f).read_bytes()
    m1, m2 = (json.loads((runs[n] / "metrics.json").read_text()) for n in (1, 2))
    assert m1["shards"]["book_digests"] == m2["shards"]["book_digests"]
    code, out, err = _cli(capsys, "backtest", str(files["one"]), "--strategy", "mm",
                          "--books", "1", "--shards", "4", "--out", str(tmp_path / "o"),
                          "--no-plots", "--no-progress")
    assert code == 0 and "note: 4 shards for 1 book(s): running 1 shard(s)" in out, err


@pytest.mark.parametrize("args, msg", [
    (("--shards", "0"), "--shards must be >= 1, got 0"),
    (("--shards", "-2"), "--shards must be >= 1, got -2"),
    (("--books", "0"), "--books must be >= 1, got 0"),
    (("--books", "9"), "has book messages for 6 symbol(s)"),
    (("--books", "2", "--symbols", "A"), "not both"),
    (("--shards", "2", "--store", "x"), "--store is not supported"),
])
def test_cli_errors_are_one_line(files, tmp_path, capsys, args, msg):
    code, out, err = _cli(capsys, "backtest", str(files["day"]), "--strategy", "mm",
                          "--out", str(tmp_path / "o"), "--no-progress", *args)
    assert code == 1 and msg in err and "Traceback" not in err and err.count("\n") == 1, err


def test_cli_empty_file_and_pairs(files, tmp_path, capsys):
    code, _, err = _cli(capsys, "backtest", str(files["empty"]), "--strategy", "mm",
                        "--shards", "2", "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1, err
    code, _, err = _cli(capsys, "backtest", str(files["day"]), "--strategy", "pairs",
                        "--shards", "2", "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 1 and "one-symbol strategy" in err, err


def test_progress_from_workers(files, monkeypatch):
    monkeypatch.setenv("ITCHFPGA_BACKTEST", "python")
    m = load_market(files["day"], n_auto=2)
    seen = []
    S.run_books(m, "mm", {}, BacktestConfig(), None, 2, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (len(m), len(m))
    assert all(0 <= d <= t for d, t in seen)
