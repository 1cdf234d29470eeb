"""Backtester throughput, indicator timings, and the hftbacktest comparison.

1. A realistic generated day (``generate --profile realistic``, 1M messages, 8 symbols) is
   replayed with one Avellaneda–Stoikov market maker on the most active symbol: messages per
   second of the whole input (the loop skips other symbols' messages) and of the traded
   symbol's book messages, for the event loop alone (input already in memory).
2. Indicators over 1M samples on the CPU path; the CUDA path is timed only when numba finds a
   GPU (this prints that none is present otherwise).
3. The hftbacktest comparison (``bench/hftbacktest_compare.py``) when ``make hftbacktest-venv``
   has built its separate environment (hftbacktest 2.4.4 needs numpy < 2.3).

Run: ``python bench/bench_backtest.py [--messages N] [--repeat R]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host.feed.generator import generate  # noqa: E402
from host.trading.backtest import BacktestConfig, Backtester, load_market  # noqa: E402
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


def bench_backtest(path: Path, repeat: int) -> None:
    t = time.perf_counter()
    market = load_market(path, n_auto=1)
    load_s = time.perf_counter() - t
    best = None
    for _ in range(repeat):
        bt = Backtester(market, make_strategy("mm"), BacktestConfig())
        r = bt.run()
        if best is None or r.seconds < best[0].seconds:
            best = (r, bt.cpu_seconds)
    r, cpu = best
    print(f"backtest mm on locate {r.instruments[0]}: {r.n_input:,} input messages, "
          f"{r.n_book:,} book messages of the symbol, {len(r.fills)} fills, "
          f"{r.counters['forwarded']} commands through risk")
    print(f"  load (parse + filter): {load_s:.2f} s")
    print(f"  event loop, best of {repeat}: {r.seconds:.2f} s = "
          f"{r.n_input / r.seconds / 1e6:.3f} M input msgs/s, "
          f"{r.n_book / r.seconds / 1e6:.3f} M book msgs/s of the traded symbol "
          f"(goal 2 M msgs/s: {'met' if r.n_input / r.seconds >= 2e6 else 'NOT met'})")
    print(f"  same run by CPU time of this process ({cpu:.2f} s; the wall time includes what "
          f"other jobs take on a loaded machine): {r.n_input / cpu / 1e6:.3f} M input msgs/s")


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


def bench_hftbacktest(path: Path) -> None:
    py = ROOT / "build" / "hftbacktest-venv" / "bin" / "python"
    if not py.exists():
        print("hftbacktest comparison: skipped (run `make hftbacktest-venv` first: hftbacktest "
              "2.4.4 needs numpy < 2.3, so it lives in its own venv)")
        return
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "hftbacktest_compare.py"),
                        str(path), "--hbt-python", str(py)], cwd=ROOT)
    if r.returncode:
        print(f"hftbacktest comparison failed (exit {r.returncode})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    path = _input(a.messages)
    bench_backtest(path, a.repeat)
    bench_indicators()
    bench_hftbacktest(path)


if __name__ == "__main__":
    main()
