"""Streaming indicators: SMA, EMA, RSI, VWAP, Bollinger bands, realised volatility.

Each indicator is written once as a plain loop over one series (``_*_loop``: it reads ``x[i]``
in time order and writes ``out[i]`` from what came before, exactly what a streaming update
does) and compiled twice:

* CPU (default): :func:`numba.njit`, one series (:func:`sma`, :func:`ema`, ...);
* GPU: the same loop as a :func:`numba.cuda.jit` device function, one CUDA thread per series
  of a 2-D ``(series, time)`` array (:func:`gpu`), e.g. one row per instrument or parameter
  set. The arithmetic is the same, in the same order, so both paths give the same numbers
  (``tests/host/trading/test_indicators.py`` runs the CUDA path under the simulator,
  ``NUMBA_ENABLE_CUDASIM=1``; this machine has no GPU).

Outputs are float64; a value that needs more history than there is is NaN. Definitions
(window ``n``): SMA mean of the last ``n``; EMA ``e += 2/(n+1) (x - e)`` seeded with the
first value; RSI Wilder's (averages of gains and losses seeded with the mean of the first
``n`` changes, then ``a = (a (n-1) + g) / n``), ``100 - 100 / (1 + gain/loss)``, 100 when no
loss; VWAP cumulative ``sum(p v) / sum(v)``; Bollinger ``SMA +- k * std`` (population std of
the window); realised volatility ``sqrt(sum of squared log returns over the last n)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["sma", "ema", "rsi", "vwap", "bollinger", "realized_vol", "gpu", "gpu_available",
           "INDICATORS"]


def _sma_loop(x, n, out):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
        if i >= n:
            s -= x[i - n]
        out[i] = s / n if i >= n - 1 else math.nan


def _ema_loop(x, n, out):
    a = 2.0 / (n + 1.0)
    e = 0.0
    for i in range(x.shape[0]):
        if i == 0:
            e = x[0]
        else:
            e += a * (x[i] - e)
        out[i] = e


def _rsi_loop(x, n, out):
    g = 0.0
    lo = 0.0
    for i in range(x.shape[0]):
        if i == 0:
            out[i] = math.nan
            continue
        d = x[i] - x[i - 1]
        up = d if d > 0 else 0.0
        dn = -d if d < 0 else 0.0
        if i <= n:
            g += up
            lo += dn
            if i < n:
                out[i] = math.nan
                continue
            g /= n
            lo /= n
        else:
            g = (g * (n - 1) + up) / n
            lo = (lo * (n - 1) + dn) / n
        out[i] = 100.0 if lo == 0.0 else 100.0 - 100.0 / (1.0 + g / lo)


def _vwap_loop(p, v, out):
    pv = 0.0
    vv = 0.0
    for i in range(p.shape[0]):
        pv += p[i] * v[i]
        vv += v[i]
        out[i] = pv / vv if vv > 0 else math.nan


def _boll_loop(x, n, k, mid, up, lo):
    s = 0.0
    s2 = 0.0
    for i in range(x.shape[0]):
        s += x[i]
        s2 += x[i] * x[i]
        if i >= n:
            s -= x[i - n]
            s2 -= x[i - n] * x[i - n]
        if i >= n - 1:
            m = s / n
            var = s2 / n - m * m
            sd = math.sqrt(var) if var > 0 else 0.0
            mid[i] = m
            up[i] = m + k * sd
            lo[i] = m - k * sd
        else:
            mid[i] = math.nan
            up[i] = math.nan
            lo[i] = math.nan


def _rvol_loop(x, n, out):
    s = 0.0
    for i in range(x.shape[0]):
        if i == 0:
            out[i] = math.nan
            continue
        r = math.log(x[i] / x[i - 1])
        s += r * r
        if i > n:
            r0 = math.log(x[i - n] / x[i - n - 1])
            s -= r0 * r0
        out[i] = math.sqrt(s) if i >= n and s > 0 else (0.0 if i >= n else math.nan)


_LOOPS = {"sma": _sma_loop, "ema": _ema_loop, "rsi": _rsi_loop, "vwap": _vwap_loop,
          "bollinger": _boll_loop, "realized_vol": _rvol_loop}
_CPU = {k: njit(cache=True, fastmath=False)(f) for k, f in _LOOPS.items()}
INDICATORS = tuple(_LOOPS)


def _f(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def sma(x, n: int) -> np.ndarray:
    """Simple moving average over ``n`` samples."""
    x = _f(x)
    out = np.empty_like(x)
    _CPU["sma"](x, int(n), out)
    return out


def ema(x, n: int) -> np.ndarray:
    """Exponential moving average, span ``n`` (alpha = 2 / (n + 1))."""
    x = _f(x)
    out = np.empty_like(x)
    _CPU["ema"](x, int(n), out)
    return out


def rsi(x, n: int = 14) -> np.ndarray:
    """Wilder's relative strength index over ``n`` changes."""
    x = _f(x)
    out = np.empty_like(x)
    _CPU["rsi"](x, int(n), out)
    return out


def vwap(price, volume) -> np.ndarray:
    """Cumulative volume-weighted average price."""
    p, v = _f(price), _f(volume)
    out = np.empty_like(p)
    _CPU["vwap"](p, v, out)
    return out


def bollinger(x, n: int = 20, k: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(middle, upper, lower)`` Bollinger bands."""
    x = _f(x)
    mid, up, lo = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    _CPU["bollinger"](x, int(n), float(k), mid, up, lo)
    return mid, up, lo


def realized_vol(x, n: int) -> np.ndarray:
    """Realised volatility: sqrt of the sum of squared log returns over ``n`` returns."""
    x = _f(x)
    out = np.empty_like(x)
    _CPU["realized_vol"](x, int(n), out)
    return out


def gpu_available() -> bool:
    """True when numba finds a CUDA GPU (or runs the CUDA simulator)."""
    from numba import cuda

    try:
        return bool(cuda.is_available())
    except Exception:  # no driver: numba raises instead of answering
        return False


_KERNELS: dict = {}


cuda = None  # numba.cuda, imported on first GPU use (a module global: the CUDA simulator
#              swaps the kernels' global ``cuda`` for its own, a closure would keep the real one)


def _kernel(name: str):
    global cuda
    if name in _KERNELS:
        return _KERNELS[name]
    if cuda is None:
        from numba import cuda

    dev = cuda.jit(device=True)(_LOOPS[name])
    if name == "vwap":
        @cuda.jit
        def k(P, V, OUT):
            i = cuda.grid(1)
            if i < P.shape[0]:
                dev(P[i], V[i], OUT[i])
    elif name == "bollinger":
        @cuda.jit
        def k(X, n, kk, M, U, L):
            i = cuda.grid(1)
            if i < X.shape[0]:
                dev(X[i], n, kk, M[i], U[i], L[i])
    else:
        @cuda.jit
        def k(X, n, OUT):
            i = cuda.grid(1)
            if i < X.shape[0]:
                dev(X[i], n, OUT[i])
    _KERNELS[name] = k
    return k


def gpu(name: str, x, *args, threads: int = 64):
    """Run indicator ``name`` on every row of the 2-D array ``x`` on the GPU (one thread per
    row). ``args``: the window (and ``k`` for Bollinger; the volumes array for VWAP).

    Returns the output array(s) on the host, shaped like ``x``.
    """
    if name not in _LOOPS:
        raise ValueError(f"unknown indicator {name!r}; choose from {INDICATORS}")
    x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
    rows = x.shape[0]
    blocks = (rows + threads - 1) // threads
    k = _kernel(name)
    dx = cuda.to_device(x)  # the module global set by _kernel
    if name == "vwap":
        dv = cuda.to_device(np.ascontiguousarray(np.atleast_2d(args[0]), dtype=np.float64))
        do = cuda.device_array_like(x)
        k[blocks, threads](dx, dv, do)
        return do.copy_to_host()
    if name == "bollinger":
        outs = [cuda.device_array_like(x) for _ in range(3)]
        k[blocks, threads](dx, int(args[0]), float(args[1] if len(args) > 1 else 2.0), *outs)
        return tuple(o.copy_to_host() for o in outs)
    do = cuda.device_array_like(x)
    k[blocks, threads](dx, int(args[0]), do)
    return do.copy_to_host()


def cpu_rows(name: str, x, *args):
    """The CPU path over every row of a 2-D array (what :func:`gpu` computes)."""
    x = np.atleast_2d(_f(x))
    if name == "vwap":
        v = np.atleast_2d(_f(args[0]))
        return np.stack([vwap(x[i], v[i]) for i in range(len(x))])
    if name == "bollinger":
        res = [bollinger(x[i], *args) for i in range(len(x))]
        return tuple(np.stack([r[j] for r in res]) for j in range(3))
    fn = {"sma": sma, "ema": ema, "rsi": rsi, "realized_vol": realized_vol}[name]
    return np.stack([fn(x[i], *args) for i in range(len(x))])
