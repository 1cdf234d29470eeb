"""Indicators: the CPU path against plain-Python definitions, the CUDA path (simulator) against
the CPU path."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host.trading.strategy import indicators as ind

ROOT = Path(__file__).resolve().parents[3]


def _prices(n=400, seed=1):
    rnd = random.Random(seed)
    p = [100.0]
    for _ in range(n - 1):
        p.append(p[-1] * math.exp(rnd.gauss(0, 0.002)))
    return p


def _nan_eq(a, b, rel=1e-9):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rel, atol=1e-9)


def test_cpu_against_plain_python():
    x = _prices()
    n = 10
    sma = [sum(x[i - n + 1:i + 1]) / n if i >= n - 1 else math.nan for i in range(len(x))]
    _nan_eq(ind.sma(x, n), sma)
    e, ema = x[0], []
    for v in x:
        e = e + 2 / (n + 1) * (v - e) if ema else v
        ema.append(e)
    _nan_eq(ind.ema(x, n), ema)
    # Wilder RSI
    d = [x[i] - x[i - 1] for i in range(1, len(x))]
    g = sum(max(v, 0) for v in d[:n]) / n
    lo = sum(max(-v, 0) for v in d[:n]) / n
    rsi = [math.nan] * n + [100 - 100 / (1 + g / lo)]
    for v in d[n:]:
        g = (g * (n - 1) + max(v, 0)) / n
        lo = (lo * (n - 1) + max(-v, 0)) / n
        rsi.append(100 - 100 / (1 + g / lo))
    _nan_eq(ind.rsi(x, n), rsi)
    vol = [float(random.Random(i).randint(1, 500)) for i in range(len(x))]
    vw = [sum(p * v for p, v in zip(x[:i + 1], vol[:i + 1], strict=True)) / sum(vol[:i + 1])
          for i in range(len(x))]
    _nan_eq(ind.vwap(x, vol), vw)
    mid, up, low = ind.bollinger(x, n, 2.0)
    for i in range(n - 1, len(x), 37):
        w = x[i - n + 1:i + 1]
        m = sum(w) / n
        sd = math.sqrt(sum((v - m) ** 2 for v in w) / n)
        assert mid[i] == pytest.approx(m) and up[i] == pytest.approx(m + 2 * sd, rel=1e-9)
        assert low[i] == pytest.approx(m - 2 * sd, rel=1e-9)
    rv = ind.realized_vol(x, n)
    for i in range(n, len(x), 41):
        r = [math.log(x[j] / x[j - 1]) for j in range(i - n + 1, i + 1)]
        assert rv[i] == pytest.approx(math.sqrt(sum(v * v for v in r)), rel=1e-7)
    assert np.isnan(rv[: n]).all()


def test_rsi_bounds_and_monotone_series():
    up = np.arange(1.0, 50.0)
    assert np.nanmin(ind.rsi(up, 14)) == 100.0
    assert np.nanmax(ind.rsi(up[::-1], 14)) == 0.0


_SIM = """
import json, numpy as np
from host.trading.strategy import indicators as ind
rng = np.random.default_rng(4)
x = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, (5, 120)), axis=1))
v = rng.integers(1, 500, (5, 120)).astype(float)
out = {"available": ind.gpu_available()}
for name, args in (("sma", (9,)), ("ema", (9,)), ("rsi", (14,)), ("realized_vol", (10,)),
                   ("vwap", (v,)), ("bollinger", (20, 2.0))):
    g = ind.gpu(name, x, *args)
    c = ind.cpu_rows(name, x, *args)
    g = g if isinstance(g, tuple) else (g,)
    c = c if isinstance(c, tuple) else (c,)
    out[name] = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(g, c))
print(json.dumps(out))
"""


def test_cuda_path_equals_cpu_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", _SIM], env=env, capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res.pop("available") is True  # the simulator counts as a device
    assert res == dict.fromkeys(ind.INDICATORS, True)
