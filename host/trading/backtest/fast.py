"""Compiled fast path of the backtester (the market maker) and the choice of event loop.

:class:`FastBacktester` runs :mod:`host.trading.backtest.fastcore` -- the Python event loop of
:class:`~host.trading.backtest.engine.Backtester` with :class:`SimExchange` and the
Avellaneda–Stoikov strategy, compiled with numba -- and returns the same
:class:`~host.trading.backtest.engine.BacktestResult`, bit for bit (``result.path`` says
which loop ran). :func:`make_backtester` picks the loop: ``ITCHFPGA_BACKTEST=python|fast``
(default ``fast`` where the strategy and configuration are supported, else ``python`` with
the reason in ``path_reason``).

Supported: the ``mm`` strategy (:class:`~host.trading.strategy.mm.AvellanedaStoikov` itself,
not a subclass) with any :class:`BacktestConfig` and any risk configuration without a
circuit breaker (a tripped breaker cancels orders from Python code in the risk engine). Should
the compiled loop meet something it does not model while running (a buffer overflow inside one
message, more than 256 live own orders), the run is done again on the Python loop and
``path_reason`` says so. Numba compiles the kernels once per machine (``cache=True``); the
first run pays the compile time (see ``docs/backtest.md``).
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np

from host.errors import UserError
from host.trading.backtest.data import MarketData
from host.trading.backtest.engine import (
    ORDER_DTYPE,
    SYNC_ORDER_ID,
    BacktestConfig,
    Backtester,
    BacktestResult,
    VenueLink,
    default_risk_config,
)
from host.trading.backtest.exchange import FILL_DTYPE
from host.trading.matching import Side, SubmitOrder, encode_commands
from host.trading.risk import DenyReason, RiskConfig, RiskEngine
from host.trading.risk import checks as K
from host.trading.strategy.api import Strategy

__all__ = ["FastBacktester", "make_backtester", "ENV", "COUNTER_NAMES"]

ENV = "ITCHFPGA_BACKTEST"
"""Environment variable choosing the event loop: ``python`` or ``fast`` (the default)."""

COUNTER_NAMES = ("unknown_ref", "duplicate_add", "hidden_trades", "passive_fills", "taker_fills",
                 "cross_fills", "ahead_inconsistent", "quoted_qty")
OWN_CAP = 256
MARGIN = 256
START_ROWS = 1 << 14
"""First size of the output and event buffers (they grow by doubling, the event buffer is
compacted first); the tests make it small to run those paths."""
_ERRORS = {1: "a buffer overflowed inside one message", 2: f"more than {OWN_CAP} live own orders",
           3: "the risk layer held a stop order", 4: "a strategy timer",
           5: "a circuit breaker tripped"}


def _risk_config(strategy: Strategy, cfg: BacktestConfig, risk_config):
    if risk_config is None:
        sc = strategy.config
        maxpos = int(getattr(sc, "max_position", 10_000))
        qty = int(getattr(sc, "order_qty", 100))
        risk_config = default_risk_config(cfg.account, max(maxpos, 1) * 2,
                                          max(qty, maxpos, 1) * 2)
    return risk_config


def unsupported(strategy: Strategy, risk: RiskEngine | None = None) -> str | None:
    """Why the compiled loop cannot run this backtest (None: it can)."""
    from host.trading.strategy.mm import AvellanedaStoikov

    if type(strategy) is not AvellanedaStoikov:
        return f"strategy {strategy.name!r} has no compiled path (only mm)"
    if risk is not None and bool((risk.A[:, K.A_BREAKER] > 0).any()):
        return "the risk config has a circuit breaker (handled in Python by the risk engine)"
    return None


class FastBacktester:
    """The compiled :class:`Backtester` of the ``mm`` strategy (same parameters, same result).

    Parameters
    ----------
    market : MarketData
    strategy : AvellanedaStoikov
    config : BacktestConfig
    risk_config : RiskConfig, optional
        As for :class:`Backtester`.
    first_order_id : int
        As for :class:`Backtester`.

    Raises
    ------
    ValueError
        The strategy or configuration is not supported (see :func:`unsupported`).
    """

    path = "fast"

    def __init__(self, market: MarketData, strategy: Strategy,
                 config: BacktestConfig | None = None, risk_config: RiskConfig | None = None,
                 first_order_id: int = 1):
        self.market = market
        self.first_order_id = int(first_order_id)
        self.strategy = strategy
        self.cfg = config or BacktestConfig()
        self.instruments = tuple(market.locates[: max(strategy.n_instruments, 1)])
        strategy.instruments = self.instruments
        self.risk_config = _risk_config(strategy, self.cfg, risk_config).with_instruments(
            self.instruments)
        self.risk = RiskEngine(self.risk_config, VenueLink(lambda row: None), clock=lambda: 0)
        why = unsupported(strategy, self.risk)
        if why:
            raise ValueError(why)
        self.path_reason = "compiled mm event loop (numba)"
        self.cpu_seconds = 0.0
        self._fallback: Backtester | None = None
        self._st: dict = {}

    # ------------------------------------------------------------------ state

    def _setup(self) -> None:
        from host.trading.backtest import fastcore as fc

        c = self.market.cols
        cols = [np.ascontiguousarray(c[k]) for k in (
            "msg_index", "msg_type", "stock_locate", "timestamp", "order_ref", "new_order_ref",
            "side", "shares", "price")]
        n = len(cols[0])
        loc = self.instruments[0]
        mine = cols[2] == loc
        mt = cols[1][mine]
        adds = int(np.count_nonzero((mt == 65) | (mt == 70) | (mt == 85)))
        ocap = 1 << 12  # grows with the live orders (a small table stays in cache)
        BK = (np.zeros(ocap, np.int64), np.zeros(ocap, np.uint8), np.zeros((ocap, 4), np.int64),
              np.zeros((2, 2 * adds + 4), np.int64), np.zeros((2, 2 * adds + 4), np.int64),
              np.zeros((2, 2 * adds + 4), np.int64))
        VN = (np.zeros((OWN_CAP, fc.O_NF), np.int64), np.zeros((2, OWN_CAP), np.int64),
              np.zeros(2, np.int64), np.zeros(OWN_CAP, np.int64), np.zeros(2, np.int64))
        rows = START_ROWS
        guess = max(rows, min(n + MARGIN, 1 << 18))
        BUF = [np.zeros((min(rows, 1024), fc.HP_NF), np.int64), np.zeros((4 * rows, 15), np.int64),
               np.zeros((rows, 10), np.int64), np.zeros((rows, 9), np.int64),
               np.zeros((guess, 4), np.int64), np.zeros((guess, 4), np.int64),
               np.zeros((guess, 2), np.float64)]
        cfg = self.cfg
        sc = self.strategy.config
        w7 = {}
        for side in (Side.BUY, Side.SELL):
            r = encode_commands([SubmitOrder(order_id=1, instrument=loc, account=cfg.account,
                                             side=side, qty=1, price=1, post_only=True)])
            w7[side] = int(r.view(np.int64).reshape(-1, 8)[0, 7])
        Q = np.zeros(24, np.int64)
        Q[fc.Q_LOC] = loc
        Q[fc.Q_MD] = cfg.md_latency_ns
        Q[fc.Q_ENTRY] = cfg.entry_latency_ns
        Q[fc.Q_RESP] = cfg.response_latency_ns
        Q[fc.Q_DEPTH] = cfg.depth
        Q[fc.Q_FEE_M] = cfg.fees.maker
        Q[fc.Q_FEE_T] = cfg.fees.taker
        Q[fc.Q_ACCT] = cfg.account
        Q[fc.Q_SDEPTH] = sc.depth
        Q[fc.Q_OQTY] = sc.order_qty
        Q[fc.Q_MAXPOS] = sc.max_position
        Q[fc.Q_TICK] = sc.tick
        Q[fc.Q_VOLNS] = sc.vol_sample_ns
        Q[fc.Q_REFRESH] = sc.refresh_ticks
        Q[fc.Q_MINREQ] = sc.min_requote_ns
        Q[fc.Q_W7_BUY] = w7[Side.BUY]
        Q[fc.Q_W7_SELL] = w7[Side.SELL]
        Q[fc.Q_NMSG] = n
        strat = self.strategy
        R = np.zeros(8, np.float64)
        R[fc.R_GAMMA] = sc.gamma
        R[fc.R_K] = sc.k
        R[fc.R_TAU] = sc.tau_s
        R[fc.R_MINSIG2] = sc.min_sigma_ticks ** 2
        R[fc.R_ALPHA] = strat._alpha
        R[fc.R_OFI] = sc.ofi_ticks
        R[fc.R_MINHALF] = sc.min_half_spread_ticks
        SI = np.zeros(fc.I_NF_, np.int64)
        SI[fc.I_NEXTID] = self.first_order_id
        SI[fc.I_LH_B] = SI[fc.I_LH_S] = SI[fc.I_LT_B] = SI[fc.I_LT_S] = adds + 2
        SI[fc.I_T_B] = SI[fc.I_T_S] = -(1 << 62)
        SI[fc.I_NOW] = int(cols[3][0]) if n else 0
        F = np.zeros(2, np.float64)
        F[fc.F_VAR] = strat._var
        F[fc.F_LASTMID] = strat._last_sample_mid
        SI[fc.I_LASTTS] = strat._last_sample_ts
        risk = self.risk
        mask = np.zeros(risk.A.shape[0], bool)
        mask[risk._a(cfg.account)] = True
        PR, PS = K.thawed(K.principal(K.ROLE_ACCOUNT, mask, risk._owned))
        RK = (risk.G, risk.A, risk.N, risk.P, risk.SK, risk.RING, risk.DUP, risk.H, risk.AMAP,
              risk.NMAP, PR, PS)
        sync = encode_commands([_sync_cmd()]).view(np.int64).reshape(-1, 8)
        SC = (np.zeros((4, 8), np.int64), np.zeros(4, np.int64), np.zeros((4, 8), np.int64),
              np.zeros(4, np.int64), np.zeros(0, np.int64), np.zeros((64, 2), np.int64),
              np.zeros((64, 2), np.int64), np.zeros((4, 1), np.int64), sync.copy(),
              np.zeros(fc.HP_NF, np.int64))
        CO = np.zeros((2, fc.C_NF), np.int64)
        DEN = np.zeros((64, 2), np.int64)
        self._st = dict(cols=cols, n=n, BK=BK, VN=VN, BUF=BUF, SI=SI, F=F, Q=Q, R=R, RK=RK,
                        CO=CO, DEN=DEN, SC=SC)

    def _grow(self) -> None:
        from host.trading.backtest import fastcore as fc

        st = self._st
        SI = st["SI"]
        OK, OU, OV = st["BK"][:3]
        if 2 * (SI[fc.I_OLIVE] + 2) > OK.shape[0]:  # the visible-order table: twice as big
            cap = 2 * OK.shape[0]
            new = np.zeros(cap, np.int64), np.zeros(cap, np.uint8), np.zeros((cap, 4), np.int64)
            fc.ob_rehash(OK, OU, OV, *new)
            st["BK"] = (*new, *st["BK"][3:])

        buf = st["BUF"]
        if buf[1].shape[0] - SI[fc.I_ESN] < MARGIN:
            self._compact_events()
        used = (SI[fc.I_HN], SI[fc.I_ESN], SI[fc.I_NF], SI[fc.I_NO], SI[fc.I_NQ], SI[fc.I_NL],
                SI[fc.I_NL])
        for j, a in enumerate(buf):
            if a.shape[0] - used[j] < MARGIN:
                b = np.zeros((2 * a.shape[0] + MARGIN, *a.shape[1:]), a.dtype)
                b[: a.shape[0]] = a
                buf[j] = b

    def _compact_events(self) -> None:
        """Drop the venue events already handed to risk and the strategy: move the ones still
        referenced (scheduled batches, the link's outbox, the batch being made) to the front
        of the event buffer, so it does not grow with the length of the day."""
        from host.trading.backtest import fastcore as fc

        st = self._st
        SI, HP, ES = st["SI"], st["BUF"][0], st["BUF"][1]
        OB = st["SC"][5]
        hn, nout = int(SI[fc.I_HN]), int(SI[fc.I_NOUT])
        pend = HP[:hn][HP[:hn, 2] == 1]
        lo = min([int(SI[fc.I_ESPEND]), *pend[:, 3].tolist(), *OB[:nout, 0].tolist()])
        if lo == 0:
            return
        n = int(SI[fc.I_ESN]) - lo
        ES[:n] = ES[lo: lo + n].copy()
        HP[:hn, 3] -= np.where(HP[:hn, 2] == 1, lo, 0)
        OB[:nout, 0] -= lo
        SI[fc.I_ESN] -= lo
        SI[fc.I_ESPEND] -= lo

    # ------------------------------------------------------------------ run

    def run(self, progress=None) -> BacktestResult:
        """Replay every message; ``progress(n)`` is called with messages done so far (every
        32,768 messages, as the Python loop does)."""
        from host.trading.backtest import fastcore as fc

        t0, c0 = time.perf_counter(), time.process_time()
        self._setup()
        st = self._st
        cols, n = st["cols"], st["n"]
        SI = st["SI"]
        step = 1 << 15
        while True:
            nxt = int(SI[fc.I_NEXT])
            if nxt >= n:
                break
            end = n if progress is None else min(n, (nxt // step + 1) * step)
            rc = fc.run_chunk(*cols, end, st["BK"], st["VN"], tuple(st["BUF"]), SI, st["F"],
                              st["Q"], st["R"], st["RK"], st["CO"], st["DEN"], st["SC"], MARGIN)
            if rc == fc.ST_ROOM:
                self._grow()
                continue
            if rc == fc.ST_ERROR:
                return self._fall_back(int(SI[fc.I_ERR]), progress)
            if progress is not None and end % step == 0:
                progress(end)
        self._grow()
        end_ts = int(cols[3][-1]) if n else 0
        rc = fc.finish(end_ts, st["BK"], st["VN"], tuple(st["BUF"]), SI, st["F"], st["Q"],
                       st["R"], st["RK"], st["CO"], st["DEN"], st["SC"])
        if rc == fc.ST_ERROR:
            return self._fall_back(int(SI[fc.I_ERR]), progress)
        if progress is not None:
            progress(n)
        res = self._result(t0)
        self.cpu_seconds = time.process_time() - c0
        return res

    def _fall_back(self, err: int, progress) -> BacktestResult:
        strat = type(self.strategy)(self.strategy.config)
        self._fallback = Backtester(self.market, strat, self.cfg, self.risk_config,
                                    self.first_order_id)
        self._fallback.path_reason = (f"the compiled loop stopped ({_ERRORS.get(err, err)}); "
                                      "ran on the Python loop")
        self.path = "python"
        self.path_reason = self._fallback.path_reason
        res = self._fallback.run(progress)
        self.cpu_seconds = self._fallback.cpu_seconds
        self.strategy.log = strat.log
        return res

    def progress_rows(self, kind: str, start: int = 0) -> np.ndarray:
        """Rows produced so far from ``start`` on: ``kind`` = ``fills`` (``FILL_DTYPE``),
        ``orders`` (``ORDER_DTYPE``) or ``quotes`` ((n, 4) int64), as
        :meth:`Backtester.progress_rows`."""
        if self._fallback is not None:
            return self._fallback.progress_rows(kind, start)
        from host.trading.backtest import fastcore as fc

        if not self._st:
            return _empty(kind)
        SI = self._st["SI"]
        buf = self._st["BUF"]
        if kind == "fills":
            return _fills(buf[2][start: SI[fc.I_NF]])
        if kind == "orders":
            return _orders(buf[3][start: SI[fc.I_NO]])
        if kind == "quotes":
            return buf[4][start: SI[fc.I_NQ]].copy()
        raise ValueError(f"unknown kind {kind!r}")

    def _result(self, t0: float) -> BacktestResult:
        from host.trading.backtest import fastcore as fc

        st = self._st
        SI, buf, cols, n = st["SI"], st["BUF"], st["cols"], st["n"]
        nl = int(SI[fc.I_NL])
        LGI, LGF = buf[5][:nl], buf[6][:nl]
        gc_on = gc.isenabled()
        gc.disable()  # many small tuples, no cycles: spare the collector's passes
        try:
            log = list(zip(LGI[:, 0].tolist(), LGF[:, 0].tolist(), LGF[:, 1].tolist(),
                           LGI[:, 1].tolist(), LGI[:, 2].tolist(), LGI[:, 3].tolist(),
                           strict=True))
        finally:
            if gc_on:
                gc.enable()
        self.strategy.log = log
        counters = {k: int(SI[fc.I_UNKNOWN + j]) for j, k in enumerate(COUNTER_NAMES)}
        counters["forwarded"] = int(SI[fc.I_FWD])
        counters["risk_fills"] = int(SI[fc.I_RFILLS])
        DEN = st["DEN"]
        seen = [r for r in range(DEN.shape[0]) if DEN[r, 0]]
        denied = {DenyReason(r).name: int(DEN[r, 0]) for r in sorted(seen, key=lambda r: DEN[r, 1])}
        ts = cols[3]
        return BacktestResult(
            fills=_fills(buf[2][: SI[fc.I_NF]]), orders=_orders(buf[3][: SI[fc.I_NO]]),
            quotes=buf[4][: SI[fc.I_NQ]].copy(), instruments=self.instruments,
            symbols=self.market.symbols, counters=counters, config=self.cfg,
            strategy=self.strategy.name, strategy_log=log, n_input=self.market.n_input,
            n_book=n, seconds=time.perf_counter() - t0, first_ts=int(ts[0]) if n else 0,
            last_ts=int(ts[-1]) if n else 0, denied=denied, path=self.path,
            path_reason=self.path_reason)


def _sync_cmd():
    from host.trading.matching import CancelOrder

    return CancelOrder(order_id=SYNC_ORDER_ID)


def _empty(kind: str) -> np.ndarray:
    if kind == "fills":
        return np.zeros(0, FILL_DTYPE)
    if kind == "orders":
        return np.zeros(0, ORDER_DTYPE)
    return np.zeros((0, 4), np.int64)


def _table(rows: np.ndarray, dt: np.dtype) -> np.ndarray:
    out = np.zeros(len(rows), dt)
    for j, name in enumerate(dt.names):
        out[name] = rows[:, j]
    return out


def _fills(rows: np.ndarray) -> np.ndarray:
    return _table(rows, FILL_DTYPE)


def _orders(rows: np.ndarray) -> np.ndarray:
    return _table(rows, ORDER_DTYPE)


AUTO_COMPILE_MIN = 20_000_000
"""Book messages from which an unset ``ITCHFPGA_BACKTEST`` compiles the fast loop on a machine
whose numba cache does not hold it yet: compiling takes ~40-60 s on a 2-core VM, the Python
loop runs ~0.37 M msgs/s and the compiled one ~4.6 M (docs/backtest.md), so compiling pays
from about 20 M messages on; below that the first run stays on Python."""


def choice() -> str:
    """The event loop ``ITCHFPGA_BACKTEST`` asks for: ``fast``, ``python`` or ``auto`` (unset:
    the fast loop where its compiled code is cached or the input is large, see
    :func:`make_backtester`).

    Raises
    ------
    UserError
        Any other value.
    """
    v = os.environ.get(ENV, "").strip().lower() or "auto"
    if v not in ("fast", "python", "auto"):
        raise UserError(f"{ENV}={os.environ.get(ENV)!r}: expected python or fast")
    return v


def compiled_cache_warm() -> bool:
    """Whether numba's cache holds the fast loop's kernels for the current source: index
    files (``fastcore.*.nbi``) in ``NUMBA_CACHE_DIR`` or beside the source, newer than it."""
    from pathlib import Path

    from host.trading.backtest import fastcore

    src = Path(fastcore.__file__)
    roots = [src.parent / "__pycache__"]
    if os.environ.get("NUMBA_CACHE_DIR"):
        roots.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    stamp = src.stat().st_mtime
    for root in roots:
        if root.is_dir() and any(f.stat().st_mtime >= stamp
                                 for f in root.rglob("fastcore.*.nbi")):
            return True
    return False


def make_backtester(market: MarketData, strategy: Strategy, config: BacktestConfig | None = None,
                    risk_config: RiskConfig | None = None, *, first_order_id: int = 1,
                    want: str | None = None):
    """The backtester ``ITCHFPGA_BACKTEST`` and the strategy allow: a :class:`FastBacktester`
    where supported, else a :class:`Backtester`; ``.path`` / ``.path_reason`` say which and
    why. Unset (``auto``), a supported strategy gets the fast loop when its compiled code is
    in numba's cache (:func:`compiled_cache_warm`) or the input has at least
    :data:`AUTO_COMPILE_MIN` book messages; ``fast`` always compiles. ``want`` (``python``,
    ``fast`` or ``auto``) overrides the environment (a sharded run decides once for every
    book, :mod:`host.trading.backtest.sharded`); ``first_order_id`` as for
    :class:`Backtester`."""
    want = want or choice()
    if want in ("fast", "auto"):
        why = unsupported(strategy)
        if why is None and want == "auto" and len(market) < AUTO_COMPILE_MIN \
                and not compiled_cache_warm():
            why = (f"the compiled loop is not in numba's cache yet: compiling it (~1 min, once "
                   f"per machine) costs more than {len(market):,} book messages take here; "
                   f"{ENV}=fast compiles it")
        if why is None:
            try:
                return FastBacktester(market, strategy, config, risk_config, first_order_id)
            except ValueError as e:
                why = str(e)
    else:
        why = f"{ENV}=python"
    bt = Backtester(market, strategy, config, risk_config, first_order_id)
    bt.path_reason = why
    return bt


class _OwnView:
    """An own order of a :class:`FastExchange` (read-only view of its row)."""

    _F = {"oid": 1, "acct": 2, "loc": 3, "side": 4, "price": 5, "qty": 6, "leaves": 7,
          "cum": 8, "seq": 9, "ahead": 10, "tif": 11, "otype": 12, "flags": 13}

    def __init__(self, OO, slot):
        self._row = OO[slot]

    def __getattr__(self, name):
        if name in _OwnView._F:
            return int(self._row[_OwnView._F[name]])
        raise AttributeError(name)

    @property
    def resting(self) -> bool:
        return bool(self._row[14])


class _OwnMap:
    def __init__(self, OO):
        self._OO = OO

    def _slot(self, oid):
        hit = np.nonzero((self._OO[:, 0] != 0) & (self._OO[:, 1] == np.int64(oid)))[0]
        return int(hit[0]) if len(hit) else -1

    def get(self, oid, default=None):
        j = self._slot(oid)
        return _OwnView(self._OO, j) if j >= 0 else default

    def __contains__(self, oid) -> bool:
        return self._slot(oid) >= 0

    def __len__(self) -> int:
        return int(np.count_nonzero(self._OO[:, 0]))


class FastExchange:
    """The compiled simulated venue of one locate with :class:`SimExchange`'s methods (what
    the queue-position scenarios drive; the fast backtest calls the same kernels).

    Parameters
    ----------
    locates : sequence of one int
    fees : Fees, optional
    max_orders : int
        Room for visible orders (and price levels) of the replayed book.
    """

    def __init__(self, locates, fees=None, *, max_orders: int = 1 << 17):
        from host.trading.backtest import fastcore as fc
        from host.trading.backtest.exchange import Fees

        locates = tuple(int(x) for x in locates)
        if len(locates) != 1:
            raise ValueError("FastExchange keeps the book of one locate")
        self.locates = locates
        self.fees = fees or Fees()
        cap = 1 << max(4, (2 * max_orders).bit_length())
        self._BK = (np.zeros(cap, np.int64), np.zeros(cap, np.uint8),
                    np.zeros((cap, 4), np.int64), *(np.zeros((2, 2 * max_orders + 4), np.int64)
                                                    for _ in range(3)))
        self._OO = np.zeros((OWN_CAP, fc.O_NF), np.int64)
        self._RL = np.zeros((2, OWN_CAP), np.int64)
        self._RN = np.zeros(2, np.int64)
        self._TMP = np.zeros(OWN_CAP, np.int64)
        self._EXEC = np.zeros(2, np.int64)
        self._ES = np.zeros((1 << 16, 15), np.int64)
        self._FO = np.zeros((1 << 16, 10), np.int64)
        self._SI = np.zeros(fc.I_NF_, np.int64)
        self._SI[[fc.I_LH_B, fc.I_LH_S, fc.I_LT_B, fc.I_LT_S]] = max_orders + 2
        self._Q = np.zeros(24, np.int64)
        self._Q[fc.Q_LOC] = locates[0]
        self._Q[fc.Q_FEE_M] = self.fees.maker
        self._Q[fc.Q_FEE_T] = self.fees.taker
        self._row = np.zeros(11, np.int64)
        self._fc = fc
        self.own = _OwnMap(self._OO)

    def _check(self):
        if self._SI[self._fc.I_ERR]:
            raise RuntimeError(_ERRORS.get(int(self._SI[self._fc.I_ERR])))

    @property
    def counts(self) -> dict:
        return {k: int(self._SI[self._fc.I_UNKNOWN + j]) for j, k in enumerate(COUNTER_NAMES)}

    @property
    def n_resting(self) -> int:
        return int(self._SI[self._fc.I_NRES])

    @property
    def last_exec(self) -> tuple[int, int]:
        return int(self._EXEC[0]), int(self._EXEC[1])

    @property
    def fills(self) -> list[tuple]:
        n = int(self._SI[self._fc.I_NF])
        return [tuple(r) for r in _fills(self._FO[:n]).tolist()]

    def best(self, loc: int) -> tuple[int, int, int, int]:
        """``(bid_px, bid_sz, ask_px, ask_sz)``; an empty side is 0, 0."""
        SI, LK, LS = self._SI, self._BK[3], self._BK[4]
        fc = self._fc
        tb, ta = SI[fc.I_LT_B], SI[fc.I_LT_S]
        nb, na = tb - SI[fc.I_LH_B], ta - SI[fc.I_LH_S]
        return (int(LK[0, tb - 1]) if nb else 0, int(LS[0, tb - 1]) if nb else 0,
                int(-LK[1, ta - 1]) if na else 0, int(LS[1, ta - 1]) if na else 0)

    def apply(self, index, mt, loc, ts, ref, nref, side, shares, price) -> int:
        """One market message (as :meth:`SimExchange.apply`)."""
        if loc != self.locates[0]:
            raise ValueError(f"locate {loc} is not kept here")
        OK, OU, OV, LK, LS, LC = self._BK
        r = self._fc.apply_msg(OK, OU, OV, LK, LS, LC, self._ES, self._FO, self._SI, self._Q,
                               self._OO, self._RL, self._RN, self._TMP, index, mt, ts,
                               np.int64(np.uint64(ref)), np.int64(np.uint64(nref)), side, shares,
                               price, self._EXEC)
        self._check()
        return int(r)

    def submit(self, oid, acct, loc, side, qty, price, otype, tif, flags, ts) -> None:
        self._SI[self._fc.I_TS] = ts
        self._fc.submit(self._BK[3], self._BK[4], self._ES, self._FO, self._SI, self._Q,
                        self._OO, self._RL, self._RN, oid, acct, loc, side, qty, price, otype,
                        tif, flags, ts)
        self._check()

    def replace(self, oid, qty, price, ts) -> None:
        self._SI[self._fc.I_TS] = ts
        self._fc.replace(self._BK[3], self._BK[4], self._ES, self._FO, self._SI, self._Q,
                         self._OO, self._RL, self._RN, oid, qty, price, ts)
        self._check()

    def command(self, row, ts: int) -> None:
        """One ``COMMAND_DTYPE`` row arriving at ``ts``."""
        self._row[3:] = np.asarray(row).reshape(1).view(np.int64)
        self._fc.command(self._BK[3], self._BK[4], self._ES, self._FO, self._SI, self._Q,
                         self._OO, self._RL, self._RN, self._TMP, self._row, ts)
        self._check()

    def cancel(self, oid: int, ts: int) -> None:
        from host.trading.matching import CancelOrder

        self.command(encode_commands([CancelOrder(order_id=oid)])[0], ts)

    def collect(self) -> np.ndarray:
        """The ``EVENT_DTYPE`` events made since the last call."""
        from host.trading.matching import EVENT_DTYPE

        fc = self._fc
        a, b = int(self._SI[fc.I_ESPEND]), int(self._SI[fc.I_ESN])
        self._SI[fc.I_ESPEND] = b
        return self._ES[a:b].copy().view(EVENT_DTYPE).reshape(-1)
