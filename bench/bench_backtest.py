"""Backtester throughput, indicator timings, and the hftbacktest comparison.

1. A realistic generated day (``generate --profile realistic``, 1M messages, 8 symbols) is
   replayed with one Avellaneda–Stoikov market maker on the most active symbol, on both event
   loops: the Python one (:class:`Backtester`) and the compiled one
   (:class:`~host.trading.backtest.fast.FastBacktester`, numba): messages per second of the
   whole input (the loop skips other symbols' messages) and of the traded symbol's book
   messages, by wall time and by this process's CPU time, for the event loop alone (input
   already in memory). The two loops' fills and orders are checked equal.
2. The compiled loop's first-run cost: a fresh process with an empty numba cache
   (``NUMBA_CACHE_DIR``) compiles the kernels, a second process loads them from that cache.
3. Indicators over 1M samples on the CPU path; the CUDA path is timed only when numba finds a
   GPU (this prints that none is present otherwise).
4. The hftbacktest comparison (``bench/hftbacktest_compare.py``) when ``make hftbacktest-venv``
   has built its separate environment (hftbacktest 2.4.4 needs numpy < 2.3), then the speeds
   on that same file side by side.

Run: ``python bench/bench_backtest.py [--messages N] [--repeat R]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host.feed.generator import generate  # noqa: E402
from host.trading.backtest import BacktestConfig, Backtester, load_market  # noqa: E402
from host.trading.backtest.fast import FastBacktester  # noqa: E402
from host.trading.strategy import indicators as ind  # noqa: E402
from host.trading.strategy import make_strategy  # noqa: E402


def _input(n: int) -> Path:
    p = ROOT / "out" / "bench" / f"realistic_{n}.itch"
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        p.write_bytes(generate(n, 8, 2, profile="realistic"))
        print(f"generated {p.relative_to(ROOT)} ({n:,} messages) in "
              f"{time.perf_counter() - t:.1f} s")
    return p


def _best(cls, market, repeat: int):
    best = None
    for _ in range(repeat):
        bt = cls(market, make_strategy("mm"), BacktestConfig())
        r = bt.run()
        if best is None or r.seconds < best[0].seconds:
            best = (r, bt.cpu_seconds)
    return best


def bench_backtest(path: Path, repeat: int) -> dict:
    t = time.perf_counter()
    market = load_market(path, n_auto=1)
    load_s = time.perf_counter() - t
    FastBacktester(market, make_strategy("mm"), BacktestConfig()).run()  # load the kernels
    out = {}
    for label, cls in (("python", Backtester), ("fast", FastBacktester)):
        r, cpu = _best(cls, market, repeat)
        out[label] = r
        if label == "python":
            print(f"backtest mm on locate {r.instruments[0]}: {r.n_input:,} input messages, "
                  f"{r.n_book:,} book messages of the symbol, {len(r.fills)} fills, "
                  f"{r.counters['forwarded']} commands through risk")
            print(f"  load (parse + filter): {load_s:.2f} s")
        print(f"  {label} event loop (path={r.path}), best of {repeat}: {r.seconds:.3f} s = "
              f"{r.n_input / r.seconds / 1e6:.3f} M input msgs/s, "
              f"{r.n_book / r.seconds / 1e6:.3f} M book msgs/s of the traded symbol by wall "
              f"time; by CPU time of this process ({cpu:.3f} s): "
              f"{r.n_input / cpu / 1e6:.3f} M input msgs/s")
    p, f = out["python"], out["fast"]
    same = (p.fills.tobytes() == f.fills.tobytes() and p.orders.tobytes() == f.orders.tobytes()
            and p.quotes.tobytes() == f.quotes.tobytes())
    def met(x):
        return "met" if x / f.seconds >= 2e6 else "NOT met"

    print(f"  fast / python: {p.seconds / f.seconds:.1f}x; same fills, orders and quotes: "
          f"{'yes' if same else 'NO'}; goal 2 M msgs/s on one core (wall time): "
          f"{met(f.n_input)} per input message, {met(f.n_book)} per book message of the symbol")
    return out


_FIRST_RUN = """
import sys, time
from host.trading.backtest import BacktestConfig, load_market
from host.trading.backtest.fast import FastBacktester
from host.trading.strategy import make_strategy
m = load_market(sys.argv[1], n_auto=1)
t = time.perf_counter()
r = FastBacktester(m, make_strategy("mm"), BacktestConfig()).run()
first = time.perf_counter() - t
t = time.perf_counter()
FastBacktester(m, make_strategy("mm"), BacktestConfig()).run()
print(first, time.perf_counter() - t)
"""


def bench_compile(path: Path) -> None:
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d)
        res = []
        for _ in range(2):
            p = subprocess.run([sys.executable, "-c", _FIRST_RUN, str(path)], cwd=ROOT, env=env,
                               capture_output=True, text=True, check=True)
            res.append([float(x) for x in p.stdout.split()])
    (c1, w1), (c2, w2) = res
    print(f"  compiled loop, first run in a process: {c1:.1f} s with an empty numba cache "
          f"(compile; a warm run takes {w1:.2f} s), {c2:.2f} s with the cache filled "
          f"(cache=True: loading the kernels)")


def bench_indicators(n: int = 1_000_000) -> None:
    rng = np.random.default_rng(1)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    v = rng.integers(1, 1000, n).astype(float)
    calls = {"sma": lambda: ind.sma(x, 50), "ema": lambda: ind.ema(x, 50),
             "rsi": lambda: ind.rsi(x, 14), "vwap": lambda: ind.vwap(x, v),
             "bollinger": lambda: ind.bollinger(x, 20, 2.0),
             "realized_vol": lambda: ind.realized_vol(x, 100)}
    for name, f in calls.items():
        f()  # compile
        t = time.perf_counter()
        f()
        dt = time.perf_counter() - t
        print(f"  indicator {name:<13} CPU {n / dt / 1e6:8.1f} M samples/s")
    if ind.gpu_available():
        xs = np.tile(x[:100_000], (256, 1))
        ind.gpu("ema", xs, 50)
        t = time.perf_counter()
        ind.gpu("ema", xs, 50)
        dt = time.perf_counter() - t
        print(f"  indicator ema GPU, 256 series x 100k: {xs.size / dt / 1e6:.1f} M samples/s")
    else:
        print("  CUDA path: no GPU present on this machine, not timed (its numbers are "
              "checked against the CPU path under NUMBA_ENABLE_CUDASIM=1 in the tests)")


def bench_hftbacktest(path: Path, ours: dict) -> None:
    py = ROOT / "build" / "hftbacktest-venv" / "bin" / "python"
    if not py.exists():
        print("hftbacktest comparison: skipped (run `make hftbacktest-venv` first: hftbacktest "
              "2.4.4 needs numpy < 2.3, so it lives in its own venv)")
        return
    with tempfile.TemporaryDirectory() as d:
        js = Path(d) / "rows.json"
        r = subprocess.run([sys.executable, str(ROOT / "bench" / "hftbacktest_compare.py"),
                            str(path), "--hbt-python", str(py), "--json", str(js)], cwd=ROOT)
        if r.returncode:
            print(f"hftbacktest comparison failed (exit {r.returncode})")
            return
        rows = json.loads(js.read_text())
    print(f"speed on {path.name}, the most active symbol, wall time (mm: the market maker on "
          "the symbol's book messages; join-the-touch: the comparison strategy, hftbacktest on "
          "its converted events; hftbacktest's first row includes its numba compilation)")
    for label, res in ours.items():
        print(f"  {'this project, ' + label + ' loop, mm':<58} {res.seconds:>7.3f} s "
              f"{res.n_book / res.seconds / 1e6:>7.3f} M msgs/s of the symbol "
              f"({res.n_input / res.seconds / 1e6:.3f} M input msgs/s)")
    for row in rows:
        if "STOPPED" in row["name"] or not row["seconds"]:
            continue
        name = row["name"].replace("this project (exact FIFO, L3)",
                                   "this project, python loop, join-the-touch")
        print(f"  {name:<58} {row['seconds']:>7.3f} s "
              f"{row['events'] / row['seconds'] / 1e6:>7.3f} M events/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    path = _input(a.messages)
    ours = bench_backtest(path, a.repeat)
    bench_compile(path)
    bench_indicators()
    bench_hftbacktest(path, ours)


if __name__ == "__main__":
    main()
