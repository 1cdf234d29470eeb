"""Event loop of the backtester: market replay, latency, risk, strategy, simulated venue.

Time line (all integer ns of exchange time)::

    market message at t ──► SimExchange (book, own-order queues)   at t
                       └──► strategy sees the quote/trade          at t + md_latency_ns
    strategy command at u ──► risk checks (OrderGateway)           at u   (local, no latency)
                          └──► venue applies it                    at u + entry_latency_ns
    venue event at v ──► risk post-trade and strategy              at v + response_latency_ns

Items due at the same time run in the order they were scheduled; a command arriving at the
venue at time ``t`` is applied before every market message stamped ``t`` or later that has not
been applied yet (so with zero latencies it comes between two messages of one timestamp).
Nothing depends on the wall clock or on a random generator, so one input and one
configuration give the same fills.

Risk: the strategy's commands go through :class:`host.trading.risk.RiskEngine` via an
:class:`~host.trading.risk.OrderGateway` bound to the strategy's account; the risk engine's
venue is a :class:`VenueLink` whose ``process`` puts the forwarded commands in flight to the
simulated exchange. The risk engine's venue interface is synchronous (its post-trade kernel
reads the events a ``process`` call returns), while the simulated venue answers later: the
venue events due at the strategy are handed to the risk engine by a zero-effect request through
the same gateway -- a cancel of the reserved order id :data:`SYNC_ORDER_ID`, which the risk
layer forwards (it holds no such order) and the link swallows -- so that risk positions, open
quantities and P&L are current before the strategy reacts. The risk engine's reference price
(collars) is the BBO the strategy saw last, pushed with :meth:`RiskEngine.on_market_data`
before each batch of commands.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from host.trading.backtest.data import MarketData
from host.trading.backtest.exchange import FILL_DTYPE, Fees, SimExchange
from host.trading.matching import (
    EVENT_DTYPE,
    CancelOrder,
    CommandKind,
    decode_events,
    encode_commands,
)
from host.trading.risk import (
    USD,
    AccountConfig,
    OrderDenied,
    RiskConfig,
    RiskEngine,
)
from host.trading.strategy.api import QuoteTick, Strategy, StrategyContext, TradeTick
from hw import bbo_record

__all__ = ["BacktestConfig", "BacktestResult", "Backtester", "VenueLink", "SYNC_ORDER_ID",
           "ORDER_DTYPE", "default_risk_config"]

SYNC_ORDER_ID = (1 << 63) - 1
"""Order id of the zero-effect cancel that carries due venue events to the risk engine."""

ORDER_DTYPE = np.dtype([
    ("ts", "<i8"), ("order_id", "<u8"), ("instrument", "<u4"), ("kind", "u1"), ("side", "u1"),
    ("price", "<i8"), ("qty", "<i8"), ("mid", "<i8"), ("denied", "u1"),
])
"""One submit or modify the strategy sent (and every denied command): ``kind`` a
:class:`~host.trading.matching.CommandKind` (a modify has its new price, 0 = unchanged, and
new total quantity; instrument and side are the order's),
``mid`` = bid + ask the strategy saw (twice the arrival mid), ``denied`` the risk
:class:`~host.trading.risk.DenyReason` (0 = forwarded)."""


@dataclass(frozen=True)
class BacktestConfig:
    """Backtest settings (the ``[backtest]`` table of a config file).

    Parameters
    ----------
    md_latency_ns : int
        Exchange -> strategy market-data latency; default 20 µs.
    entry_latency_ns : int
        Strategy -> exchange order-entry latency; default 30 µs.
    response_latency_ns : int
        Exchange -> strategy order-event latency; default 30 µs.
    fees : Fees
        Per-share maker/taker fees (money units, negative = rebate).
    depth : int
        Levels per side in each :class:`QuoteTick`; default 5.
    account : int
        The strategy's account (risk config); default 1.
    capital : int
        Capital in money units (1e-4 USD) for returns; default $1 000 000.
    max_messages : int
        Stop after this many input messages; 0 = all.
    """

    md_latency_ns: int = 20_000
    entry_latency_ns: int = 30_000
    response_latency_ns: int = 30_000
    fees: Fees = field(default_factory=Fees)
    depth: int = 5
    account: int = 1
    capital: int = 1_000_000 * USD
    max_messages: int = 0

    def __post_init__(self):
        for k in ("md_latency_ns", "entry_latency_ns", "response_latency_ns", "depth",
                  "max_messages"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} must be >= 0")
        if self.capital <= 0:
            raise ValueError("capital must be > 0")


def default_risk_config(account: int, max_position: int, max_order_qty: int) -> RiskConfig:
    """Risk limits of a backtest account: position and size limits from the strategy, no
    throttle nor duplicate window (requotes repeat prices), 5 % collar, breaker off."""
    return RiskConfig(accounts=(AccountConfig(
        account=account, strategy=1, max_order_qty=max_order_qty,
        max_order_notional=100_000_000 * USD, max_position=max_position,
        max_orders_per_window=0, duplicate_window_ns=0,
        daily_loss_limit=10_000_000 * USD, breaker_loss_bps=0),))


class VenueLink:
    """The risk engine's venue in a backtest: forwarded commands go in flight to the
    simulated exchange; due venue events come back on the next ``process`` call."""

    command_seq = 0

    def __init__(self, on_forward):
        self._on_forward = on_forward
        self.outbox: list[np.ndarray] = []
        self.forwarded = 0

    def process(self, cmds: np.ndarray) -> np.ndarray:
        for r in cmds:
            if int(r["order_id"]) == SYNC_ORDER_ID and int(r["kind"]) == CommandKind.CANCEL:
                continue
            self.forwarded += 1
            self._on_forward(r.copy())
        if not self.outbox:
            return np.zeros(0, EVENT_DTYPE)
        out = np.concatenate(self.outbox) if len(self.outbox) > 1 else self.outbox[0]
        self.outbox = []
        return out


@dataclass
class BacktestResult:
    """What a backtest produced (inputs of :mod:`host.trading.analytics`)."""

    fills: np.ndarray  # FILL_DTYPE
    orders: np.ndarray  # ORDER_DTYPE
    quotes: np.ndarray  # (ts, instrument, bid, ask) the strategy saw
    instruments: tuple[int, ...]
    symbols: dict
    counters: dict
    config: BacktestConfig
    strategy: str
    strategy_log: list
    n_input: int
    n_book: int
    seconds: float
    first_ts: int
    last_ts: int
    denied: dict
    path: str = "python"
    """Which event loop ran: ``python`` (:class:`Backtester`) or ``fast``
    (:class:`host.trading.backtest.fast.FastBacktester`)."""
    path_reason: str = ""
    """Why that loop (e.g. the strategy has no compiled path)."""


class Backtester:
    """Replay ``market`` through a :class:`SimExchange` with ``strategy`` behind risk.

    Parameters
    ----------
    market : MarketData
    strategy : Strategy
    config : BacktestConfig
    risk_config : RiskConfig, optional
        Default :func:`default_risk_config` with the strategy's ``max_position`` and order
        size; the traded instruments are added with a 1-cent tick.
    first_order_id : int
        First order id the strategy hands out (default 1; a multi-book run gives each book
        its own range, :func:`host.trading.backtest.sharded.first_order_id`).
    """

    def __init__(self, market: MarketData, strategy: Strategy, config: BacktestConfig | None = None,
                 risk_config: RiskConfig | None = None, first_order_id: int = 1):
        self.market = market
        self.strategy = strategy
        self.cfg = config or BacktestConfig()
        self.instruments = tuple(market.locates[: max(strategy.n_instruments, 1)])
        strategy.instruments = self.instruments
        self.ex = SimExchange(self.instruments, self.cfg.fees)
        if risk_config is None:
            sc = strategy.config
            maxpos = int(getattr(sc, "max_position", 10_000))
            qty = int(getattr(sc, "order_qty", 100))
            risk_config = default_risk_config(self.cfg.account, max(maxpos, 1) * 2,
                                              max(qty, maxpos, 1) * 2)
        self.risk_config = risk_config.with_instruments(self.instruments)
        self.link = VenueLink(self._in_flight)
        self.risk = RiskEngine(self.risk_config, self.link, clock=lambda: self.now)
        self.gateway = self.risk.gateway(self.cfg.account)
        self.first_order_id = int(first_order_id)
        self.ctx = StrategyContext(self.cfg.account, self.first_order_id)
        self.now = 0
        self._heap: list = []
        self._n = 0
        self._orders: list[tuple] = []
        self._quotes: list[tuple] = []
        self._seen: dict[int, tuple] = {}  # instrument -> (bid, ask) the strategy saw
        self._risk_dirty: dict[int, tuple] = {}
        self._sync = encode_commands([CancelOrder(order_id=SYNC_ORDER_ID)])
        self.denied: dict[str, int] = {}
        self._ended = False
        self.path = "python"
        self.path_reason = ""

    def progress_rows(self, kind: str, start: int = 0) -> np.ndarray:
        """Rows produced so far from ``start`` on (what a progress callback may read while
        the run goes): ``kind`` = ``fills`` (``FILL_DTYPE``), ``orders`` (``ORDER_DTYPE``) or
        ``quotes`` ((n, 4) int64: ts, instrument, bid, ask the strategy saw)."""
        if kind == "fills":
            new = self.ex.fills[start:]
            return np.array(new, FILL_DTYPE) if new else np.zeros(0, FILL_DTYPE)
        if kind == "orders":
            new = self._orders[start:]
            return np.array(new, ORDER_DTYPE) if new else np.zeros(0, ORDER_DTYPE)
        if kind == "quotes":
            return np.array(self._quotes[start:], np.int64).reshape(-1, 4)
        raise ValueError(f"unknown kind {kind!r}")

    # ------------------------------------------------------------------ scheduling

    def _push(self, t: int, kind: int, payload) -> None:
        self._n += 1
        heapq.heappush(self._heap, (t, self._n, kind, payload))

    def _in_flight(self, row) -> None:
        self._push(self.now + self.cfg.entry_latency_ns, 0, row)

    def _venue_events(self, t: int) -> None:
        if self.ex.events:
            self._push(t + self.cfg.response_latency_ns, 1, self.ex.collect())

    def _due(self, t: int) -> None:
        heap = self._heap
        while heap and heap[0][0] <= t:
            when, _, kind, payload = heapq.heappop(heap)
            self.now = self.ctx.now = when
            if kind == 0:  # a command reaches the venue
                self.ex.command(payload, when)
                self._venue_events(when)
            elif kind == 1:  # venue events reach risk and the strategy
                self.link.outbox.append(payload)
                res = self.gateway.process(self._sync)
                self._deliver(res.events)
            elif kind == 2:
                self._on_quote(payload)
            elif kind == 3:
                self._emit(self.strategy.on_trade(self.ctx, payload))
            elif kind == 4:
                if self._ended:  # no timers after the end of data (the drain would not end)
                    continue
                self._emit(self.strategy.on_timer(self.ctx))
                if self.ctx.timer_ns:
                    self._push(when + self.ctx.timer_ns, 4, None)

    # ------------------------------------------------------------------ strategy side

    def _on_quote(self, q: QuoteTick) -> None:
        self._seen[q.instrument] = (q.bid_px, q.ask_px)
        self._risk_dirty[q.instrument] = (q.ts, q.bid_px, q.ask_px)
        self._quotes.append((q.ts_recv, q.instrument, q.bid_px, q.ask_px))
        self._emit(self.strategy.on_quote(self.ctx, q))

    def _deliver(self, events: np.ndarray) -> None:
        if not len(events):
            return
        for e in decode_events(events):
            self.ctx.apply(e)
            self._emit(self.strategy.on_order(self.ctx, e))

    def _push_reference(self) -> None:
        d = self._risk_dirty
        rec = np.zeros(len(d), bbo_record.DTYPE)
        for i, (inst, (ts, b, a)) in enumerate(d.items()):
            rec[i]["locate"] = inst
            rec[i]["ts_event"] = ts
            rec[i]["bid_px"] = b
            rec[i]["ask_px"] = a
            rec[i]["flags"] = (bbo_record.FLAG_BID_VALID if b else 0) | (
                bbo_record.FLAG_ASK_VALID if a else 0)
        d.clear()
        self.risk.on_market_data(rec)

    def _emit(self, cmds) -> None:
        """Send a strategy's commands through risk at ``self.now``."""
        if not cmds:
            return
        cmds = list(cmds)
        if not cmds:
            return
        self.ctx.now = self.now
        arr = encode_commands(cmds)
        arr["ts"] = self.now
        if self._risk_dirty:
            self._push_reference()
        res = self.gateway.process(arr)
        for r, why in zip(arr, res.reasons.tolist(), strict=True):
            inst, side = int(r["instrument"]), int(r["side"])
            if int(r["kind"]) != CommandKind.SUBMIT:  # a modify/cancel names the order only
                oo = self.ctx.orders.get(int(r["order_id"]))
                inst, side = (oo.instrument, oo.side) if oo is not None else (0, 0)
            if int(r["kind"]) in (CommandKind.SUBMIT, CommandKind.REPLACE) or why:
                b, a = self._seen.get(inst, (0, 0))
                self._orders.append((self.now, int(r["order_id"]), inst, int(r["kind"]),
                                     side, int(r["price"]), int(r["qty"]),
                                     b + a if b and a else 0, why))
            if why:
                from host.trading.risk import DenyReason

                name = DenyReason(why).name
                self.denied[name] = self.denied.get(name, 0) + 1
                e = OrderDenied(self.now, int(r["order_id"]), self.cfg.account, inst,
                                int(r["side"]), int(r["qty"]), int(r["price"]), int(r["kind"]),
                                DenyReason(why))
                self.ctx.apply(e)
                self._emit(self.strategy.on_order(self.ctx, e))
        self._deliver(res.events)

    # ------------------------------------------------------------------ run

    def run(self, progress=None) -> BacktestResult:
        """Replay every message; ``progress(n)`` is called with messages done so far."""
        t0, c0 = time.perf_counter(), time.process_time()
        c = self.market.cols
        n = len(c["msg_type"])
        idx = c["msg_index"].tolist()
        mt = c["msg_type"].tolist()
        loc = c["stock_locate"].tolist()
        ts = c["timestamp"].tolist()
        ref = c["order_ref"].tolist()
        nref = c["new_order_ref"].tolist()
        side = c["side"].tolist()
        sh = c["shares"].tolist()
        px = c["price"].tolist()
        ex = self.ex
        cfg = self.cfg
        md = cfg.md_latency_ns
        depth = cfg.depth
        traded = set(self.instruments)
        last = {i: None for i in traded}
        heap = self._heap
        self.now = ts[0] if n else 0
        self.ctx.now = self.now
        self._emit(self.strategy.on_start(self.ctx))
        if self.ctx.timer_ns:
            self._push(self.now + self.ctx.timer_ns, 4, None)
        step = 1 << 15
        for i in range(n):
            t = ts[i]
            if heap and heap[0][0] <= t:
                self._due(t)
            li = loc[i]
            if li not in traded:
                continue
            ex_sh = ex.apply(idx[i], mt[i], li, t, ref[i], nref[i], side[i], sh[i], px[i])
            if ex.events:
                self._venue_events(t)
            b = ex.best(li)
            if b != last[li]:
                last[li] = b
                q = QuoteTick(t, t + md, li, b[0], b[1], b[2], b[3],
                              tuple(ex.depth(li, 1, depth)) if depth else (),
                              tuple(ex.depth(li, 2, depth)) if depth else ())
                if md == 0 and not heap:
                    self.now = self.ctx.now = t
                    self._on_quote(q)
                else:
                    self._push(t + md, 2, q)
            if ex_sh:
                m = mt[i]
                if m == 80:
                    rside = 1 if side[i] == 66 else 2
                    tpx = px[i]
                else:
                    rside, tpx = ex.last_exec
                tr = TradeTick(t, t + md, li, tpx, ex_sh, 2 if rside == 1 else 1, m == 80)
                self._push(t + md, 3, tr)
            if progress is not None and i % step == step - 1:
                progress(i + 1)
        end = ts[-1] if n else 0
        self._due(end + md)
        self._ended = True
        self.now = max(self.now, end + md)
        self.ctx.now = self.now
        self._emit(self.strategy.on_stop(self.ctx))
        # drain: in-flight commands and their answers, with no more market data
        while heap:
            self._due(heap[0][0])
        if progress is not None:
            progress(n)
        seconds = time.perf_counter() - t0
        self.cpu_seconds = time.process_time() - c0  # this process's CPU time (loaded hosts)
        counters = dict(ex.counts)
        counters["forwarded"] = self.link.forwarded
        counters["risk_fills"] = self.risk.fills
        return BacktestResult(
            fills=np.array(ex.fills, FILL_DTYPE) if ex.fills else np.zeros(0, FILL_DTYPE),
            orders=np.array(self._orders, ORDER_DTYPE) if self._orders
            else np.zeros(0, ORDER_DTYPE),
            quotes=np.array(self._quotes, np.int64).reshape(-1, 4),
            instruments=self.instruments, symbols=self.market.symbols, counters=counters,
            config=cfg, strategy=self.strategy.name, strategy_log=self.strategy.log,
            n_input=self.market.n_input, n_book=n, seconds=seconds,
            first_ts=ts[0] if n else 0, last_ts=end, denied=dict(self.denied), path=self.path,
            path_reason=self.path_reason)
