"""End-to-end trading session: card market data -> risk -> matching engine -> journal.

``python -m host session INPUT [--card model|sim] [--config risk.toml] [--out DIR]`` (the
command is :mod:`host.cli.trading`).

1. The input (NASDAQ ITCH 5.0 file or MoldUDP64 pcap) is loaded as a :class:`host.feed.capture.Feed`
   and replayed through a *card source* (:data:`CARD_SOURCES`): ``model`` runs the reference
   book (:func:`host.card.model.reference_trace`) and turns its BBO trace into card records
   (:data:`hw.bbo_record.DTYPE`, with the ``gap`` flag after a sequence gap); ``sim`` drives the
   simulated card (:func:`host.card.replay.replay_through_card`) and uses its records as they are.
2. The venue is a :class:`host.trading.matching.MatchingEngine` with one instrument per subscribed
   locate (tick = the gcd of the card's prices, ladder around the day's range) behind a
   :class:`host.trading.journal.JournaledEngine`, and the :class:`host.trading.risk.RiskEngine` in
   front of it.
3. The records are applied in chunks (:meth:`RiskEngine.on_market_data`); after each chunk the
   built-in order-flow generator (:class:`OrderFlow`) submits a batch through risk
   (an :class:`host.trading.risk.OrderGateway` bound to its five accounts): a liquidity
   provider quoting the card's BBO, a passive maker,
   a taker (with oversized and off-collar orders), a bursty account (rate limit, duplicates) and
   a loser averaging down into the day's largest drawdown (loss limit, then circuit breaker).
   A kill switch (strategy scope, then instrument scope) is engaged and released on the way.
4. It prints orders submitted / forwarded / denied by reason, fills, positions and P&L per
   account, and writes the journals and their exports (CSV and Parquet).

See ``docs/risk.md`` ("Session").
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.trading.matching import (
    COMMAND_DTYPE,
    EngineConfig,
    EventKind,
    InstrumentConfig,
    OrderType,
    Side,
    TimeInForce,
)
from host.trading.risk import (
    USD,
    AccountConfig,
    KillScope,
    RiskConfig,
    RiskEngine,
    RiskJournal,
)
from hw import bbo_record

__all__ = ["CARD_SOURCES", "register_card_source", "model_records", "sim_records",
           "default_risk_config", "venue_config", "OrderFlow", "SessionReport", "run_session",
           "select_locates",
           "LP", "MAKER", "TAKER", "BURST", "LOSER"]

LP, MAKER, TAKER, BURST, LOSER = 1, 2, 3, 4, 5
"""Account ids of the built-in order flow (their strategy id is the same number)."""

_NAMES = {LP: "liquidity provider", MAKER: "passive maker", TAKER: "taker", BURST: "burst",
          LOSER: "loser"}


# ---------------------------------------------------------------- card sources


def model_records(feed, locates, *, progress: bool = False) -> np.ndarray:
    """Card records from the reference book (``--card model``).

    The reference BBO trace of ``feed.itch`` for ``locates`` becomes :data:`hw.bbo_record.DTYPE`
    records: ``seq`` from the feed, ``bid_valid``/``ask_valid`` from non-empty sides, and
    ``gap`` on the first record after each MoldUDP64 sequence gap of the feed (dropped
    packets), as the card flags it.
    """
    from host.card.model import reference_trace

    tr = reference_trace(feed.itch, locates)
    rec = np.zeros(len(tr), bbo_record.DTYPE)
    mi = tr["msg_index"].astype(np.int64)
    rec["seq"] = feed.seq[mi] if len(mi) else 0
    rec["ts_event"] = tr["ts_event"]
    rec["locate"] = tr["locate"]
    for c in ("bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz", "ask_ct"):
        rec[c] = np.minimum(tr[c].astype(np.int64), (1 << 32) - 1)
    flags = np.where(tr["bid_px"] > 0, bbo_record.FLAG_BID_VALID, 0) | np.where(
        tr["ask_px"] > 0, bbo_record.FLAG_ASK_VALID, 0)
    jumps = np.nonzero(np.diff(feed.seq) != 1)[0] + 1
    at = np.searchsorted(mi, jumps)
    at = at[at < len(rec)]
    flags[at] |= bbo_record.FLAG_GAP
    rec["flags"] = flags
    rec["record_seq"] = np.arange(len(rec))
    return rec


def sim_records(feed, locates, *, progress: bool = False, depth: int = 1) -> np.ndarray:
    """Card records from the simulated card (``--card sim``; needs ``hw/top.py``).

    Runs :func:`host.card.replay.replay_through_card` without re-seeds (``recover=False``:
    books cleared after a gap, as the model card does; the risk engine treats the stale
    records as stale marks).

    ``depth`` 1 (default): :data:`hw.bbo_record.DTYPE` records of the U250 card. 2..16: the
    card built with ``depth_n = depth`` (its own cached model), :func:`hw.bbo_record.dtype`
    ``(depth)`` records, ``depth_only`` records included (the NATS top-N fan-out's input).
    """
    from host.card.replay import open_sim_card, replay_through_card

    params = {"depth_n": depth} if depth != 1 else None
    card = open_sim_card(allow_build=True, params=params)
    try:
        rp = replay_through_card(card, feed, locates, progress=progress, latency=False,
                                 recover=False)
    finally:
        card.close()
    rec = rp.recs
    want = bbo_record.DTYPE if depth == 1 else bbo_record.dtype(depth)
    if rec.dtype != want:
        rec = np.ascontiguousarray(rec[list(want.names)]).astype(want)
    return rec


CARD_SOURCES: dict[str, Callable] = {"model": model_records, "sim": sim_records}
"""``--card`` name -> ``f(feed, locates, progress=) -> hw.bbo_record.DTYPE records``."""


def register_card_source(name: str, fn: Callable) -> None:
    """Make ``--card name`` available to the session."""
    CARD_SOURCES[name] = fn


# ---------------------------------------------------------------- configuration


def default_risk_config() -> RiskConfig:
    """The built-in risk configuration of the session (``examples/risk.toml`` is the same)."""
    return RiskConfig(accounts=(
        AccountConfig(LP, strategy=LP, max_order_qty=1_000_000, max_order_notional=5_000_000 * USD,
                      max_position=10_000_000, max_orders_per_window=0, duplicate_window_ns=0,
                      daily_loss_limit=10_000_000 * USD, breaker_loss_bps=0),
        AccountConfig(MAKER, strategy=MAKER),
        AccountConfig(TAKER, strategy=TAKER, max_order_qty=5_000, capital=100_000_000 * USD,
                      daily_loss_limit=1_000_000 * USD),
        AccountConfig(BURST, strategy=BURST, max_orders_per_window=20,
                      rate_window_ns=1_000_000_000),
        AccountConfig(LOSER, strategy=LOSER, daily_loss_limit=5_000 * USD,
                      capital=500_000 * USD, breaker_loss_bps=200),
    ))


def venue_config(records: np.ndarray, locates, max_levels: int = 1_000_000):
    """Venue instruments from the card's prices: ``(EngineConfig, {locate: tick})``.

    Tick = gcd of the locate's BBO prices (raised to a power of ten if the ladder would pass
    ``max_levels``); ladder from 80 % of the day's low to 120 % of its high.
    """
    inst, ticks = [], {}
    for loc in locates:
        r = records[records["locate"] == loc]
        px = np.concatenate([r["bid_px"], r["ask_px"]]).astype(np.int64)
        px = px[px > 0]
        if len(px) == 0:
            px = np.array([10_000], np.int64)
        tick = int(np.gcd.reduce(px))
        lo, hi = int(px.min()) * 8 // 10, -(-int(px.max()) * 12 // 10)
        while (hi - lo) // tick > max_levels:
            tick *= 10
        lo = max(tick, lo // tick * tick)
        hi = max(lo, -(-hi // tick) * tick)
        inst.append(InstrumentConfig(int(loc), tick=tick, min_price=lo, max_price=hi))
        ticks[int(loc)] = tick
    return EngineConfig(instruments=tuple(inst), max_orders=1 << 18), ticks


# ---------------------------------------------------------------- order flow


@dataclass
class OrderFlow:
    """Deterministic order-flow generator around the card's BBO.

    Parameters
    ----------
    locates : list of int
    ticks : dict
        Venue tick per locate (every generated price is on it).
    records : numpy.ndarray
        The whole card record stream (the loser picks the day's largest drawdown from it).
    risk_config : RiskConfig
        Order sizes respect the accounts' limits where the scenario wants them to pass.
    seed : int
    """

    locates: list
    ticks: dict
    records: np.ndarray
    risk_config: RiskConfig
    seed: int = 1
    lp_notional: int = 2_000_000 * USD
    order_notional: int = 20_000 * USD
    p_taker: float = 0.5
    p_maker: float = 0.6
    p_bad: float = 0.04
    burst_every: int = 40
    maker_live: int = 20

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.next_id = 1
        self.bbo: dict[int, tuple[int, int]] = {}
        self.lp_quotes: dict[int, tuple] = {}   # locate -> (bid_id, bid_px, ask_id, ask_px)
        self.maker_orders: list[int] = []
        self.chunk = 0
        self._cmds: list = []
        self._strat: list = []
        self._loser_plan()

    # -- loser: buy the top of the day's largest drawdown, average down
    def _loser_plan(self) -> None:
        best = None
        r = self.records
        valid = ((r["flags"] & 6) == 6) & ((r["flags"] & bbo_record.FLAG_GAP) == 0)
        for loc in self.locates:
            idx = np.nonzero(valid & (r["locate"] == loc))[0]
            if len(idx) < 10:
                continue
            mid = (r["bid_px"][idx].astype(np.int64) + r["ask_px"][idx]) // 2
            peak = np.maximum.accumulate(mid)
            dd = peak - mid
            k = int(np.argmax(dd))
            if dd[k] <= 0:
                continue
            p = int(np.nonzero(mid[: k + 1] == peak[k])[0][0])
            rel = dd[k] / peak[k]
            if best is None or rel > best[0]:
                best = (rel, int(loc), int(idx[p]), int(idx[k]), int(dd[k]), int(peak[k]))
        self.loser = best
        if best is None:
            self.loser_qty = 0
            return
        cfg = self.risk_config.account(LOSER)
        # size the position to lose ~3x the breaker threshold over the drawdown
        want = -(-3 * max(cfg.breaker_loss, cfg.daily_loss_limit, 1) // best[4])
        self.loser_qty = int(min(want, cfg.max_position // 2))
        self.loser_bought = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _add(self, strat, ts, oid, inst, acct, side, qty, px, otype=OrderType.LIMIT,
             tif=TimeInForce.GTC, kind=1):
        c = np.zeros(1, COMMAND_DTYPE)[0]
        c["ts"], c["order_id"], c["price"], c["qty"] = ts, oid, px, qty
        c["account"], c["instrument"], c["kind"] = acct, inst, kind
        c["side"], c["order_type"], c["tif"] = side, otype, tif
        self._cmds.append(c)
        self._strat.append(strat)

    def _cancel(self, ts, oid):
        c = np.zeros(1, COMMAND_DTYPE)[0]
        c["ts"], c["order_id"], c["kind"] = ts, oid, 2
        self._cmds.append(c)
        self._strat.append(-1)

    def _qty(self, px: int, notional: int | None = None) -> int:
        q = max(1, (notional or self.order_notional) // max(px, 1))
        return int(q // 100 * 100 if q >= 100 else q)

    def on_records(self, recs: np.ndarray, first_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Update the BBO view from a chunk of card records; return the orders to submit.

        Returns ``(COMMAND_DTYPE commands, int64 strategies)`` in timestamp order.
        """
        self._cmds, self._strat = [], []
        changed = set()
        ok = (recs["flags"] & (bbo_record.FLAG_GAP | bbo_record.FLAG_CLEARED)) == 0
        for loc, b, a, f, good in zip(recs["locate"].tolist(), recs["bid_px"].tolist(),
                                      recs["ask_px"].tolist(), recs["flags"].tolist(),
                                      ok.tolist(), strict=True):
            b = b if f & bbo_record.FLAG_BID_VALID and good else 0
            a = a if f & bbo_record.FLAG_ASK_VALID and good else 0
            self.bbo[loc] = (b, a)
            changed.add(loc)
        ts = int(recs["ts_event"][-1]) if len(recs) else 0
        step = iter(range(1, 1_000_000))
        rng = self.rng
        # liquidity provider: requote the card's touch on every instrument that moved
        for loc in sorted(changed):
            b, a = self.bbo[loc]
            t = self.ticks[loc]
            old = self.lp_quotes.pop(loc, None)
            if old:
                for oid in (old[0], old[2]):
                    if oid:
                        self._cancel(ts + next(step), oid)
            if b <= 0 or a <= 0 or b >= a:
                continue
            bp, ap = b // t * t, -(-a // t) * t
            bid_id, ask_id = self._id(), self._id()
            self._add(LP, ts + next(step), bid_id, loc, LP, Side.BUY, self._qty(bp,
                      self.lp_notional), bp)
            self._add(LP, ts + next(step), ask_id, loc, LP, Side.SELL, self._qty(ap,
                      self.lp_notional), ap)
            self.lp_quotes[loc] = (bid_id, bp, ask_id, ap)
        quoted = [loc for loc in self.locates if loc in self.lp_quotes]
        if not quoted:
            self.chunk += 1
            return self._flush()
        # passive maker: joins or steps behind the touch, cancels its oldest orders
        if rng.random() < self.p_maker:
            loc = int(rng.choice(quoted))
            _, bp, _, ap = self.lp_quotes[loc]
            t = self.ticks[loc]
            k = int(rng.integers(0, 4))
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            px = bp - k * t if side == Side.BUY else ap + k * t
            oid = self._id()
            self._add(MAKER, ts + next(step), oid, loc, MAKER, side, self._qty(px), px)
            self.maker_orders.append(oid)
            while len(self.maker_orders) > self.maker_live:
                self._cancel(ts + next(step), self.maker_orders.pop(0))
        # taker: marketable IOC at the far side; some oversized or off-collar
        if rng.random() < self.p_taker:
            loc = int(rng.choice(quoted))
            _, bp, _, ap = self.lp_quotes[loc]
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            px = ap if side == Side.BUY else bp
            qty = self._qty(px)
            u = rng.random()
            if u < self.p_bad:  # fat finger: more than the account's max order quantity
                qty = self.risk_config.account(TAKER).max_order_qty + 100
            elif u < 2 * self.p_bad:  # off collar: 20 % through the touch
                t = self.ticks[loc]
                px = (px * 12 // 10) // t * t if side == Side.BUY else -(-px * 8 // 10 // t) * t
            self._add(TAKER, ts + next(step), self._id(), loc, TAKER, side, qty, px,
                      tif=TimeInForce.IOC)
            if u > 1 - self.p_bad:  # double click: the same order again, new id, 1 us later
                self._add(TAKER, ts + next(step) + 1000, self._id(), loc, TAKER, side, qty, px,
                          tif=TimeInForce.IOC)
        # burst: 30 orders within 30 us on an instrument under $1 000 (rate limit)
        if self.chunk % self.burst_every == self.burst_every // 2:
            cheap = [loc for loc in quoted if self.lp_quotes[loc][1] < 1000 * USD]
            if cheap:
                loc = int(rng.choice(cheap))
                bp = self.lp_quotes[loc][1]
                base = self._qty(bp)
                for k in range(30):
                    self._add(BURST, ts + 1000 * (k + 1), self._id(), loc, BURST, Side.BUY,
                              base + k, bp, tif=TimeInForce.IOC)
        # loser
        lp = self.loser
        if lp is not None and self.loser_qty:
            _, loc, ipeak, itrough, _, _ = lp
            last = first_index + len(recs)
            if ipeak < last and loc in self.lp_quotes:
                _, bp, _, ap = self.lp_quotes[loc]
                cfg = self.risk_config.account(LOSER)
                if self.loser_bought < self.loser_qty:
                    q = min(self.loser_qty - self.loser_bought, cfg.max_order_qty,
                            max(1, cfg.max_order_notional // ap))
                    self.loser_bought += q
                elif first_index <= itrough:  # averaging down, every chunk
                    q = max(1, self._qty(ap) // 10)
                else:
                    q = 0
                if q:
                    self._add(LOSER, ts + next(step), self._id(), loc, LOSER, Side.BUY, q, ap,
                              tif=TimeInForce.IOC)
        self.chunk += 1
        return self._flush()

    def _flush(self):
        if not self._cmds:
            return np.zeros(0, COMMAND_DTYPE), np.zeros(0, np.int64)
        cmds = np.array(self._cmds, dtype=COMMAND_DTYPE)
        strat = np.array(self._strat, np.int64)
        o = np.argsort(cmds["ts"], kind="stable")
        return cmds[o], strat[o]


# ---------------------------------------------------------------- the session


@dataclass
class SessionReport:
    """What :func:`run_session` did (printed by the CLI)."""

    card: str
    messages: int
    records: int
    locates: list
    submitted: int = 0
    forwarded: int = 0
    denied: dict = field(default_factory=dict)
    submitted_by_account: dict = field(default_factory=dict)
    denied_by_account: dict = field(default_factory=dict)
    trades: int = 0
    accounts: list = field(default_factory=list)
    risk_events: dict = field(default_factory=dict)
    loser: tuple | None = None
    files: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable summary."""
        def usd(x):
            return f"{x / USD:,.2f}"

        out = [
            f"card: {self.card}; {self.messages:,} messages; {self.records:,} BBO records; "
            f"{len(self.locates)} instruments {self.locates}",
            f"orders submitted {self.submitted:,}; commands forwarded to the venue "
            f"{self.forwarded:,} (with cancels); "
            f"denied {sum(self.denied.values()):,}; trades {self.trades:,}",
            "denied by reason: " + (", ".join(f"{k}={v}" for k, v in sorted(
                self.denied.items(), key=lambda kv: -kv[1])) or "none"),
            "risk events: " + (", ".join(f"{k}={v}" for k, v in self.risk_events.items())
                               or "none"),
        ]
        if self.loser:
            out.append(f"loser scenario: locate {self.loser[1]}, drawdown "
                       f"{self.loser[4]} Price(4)/share from {self.loser[5]}")
        out.append(f"{'account':>22} {'sent':>7} {'denied':>7} {'state':>9} {'position':>24} "
                   f"{'realized $':>14} {'unrealized $':>14} {'exposure $':>14}")
        for a in self.accounts:
            pos = ", ".join(f"{p.instrument}:{p.qty:+d}" for p in a["positions"] if p.qty)[:24]
            s = a["summary"]
            out.append(
                f"{a['account']:>3} {_NAMES.get(a['account'], ''):>18} "
                f"{self.submitted_by_account.get(a['account'], 0):>7} "
                f"{self.denied_by_account.get(a['account'], 0):>7} {s.state.name:>9} "
                f"{pos or 'flat':>24} {usd(s.realized):>14} {usd(s.unrealized):>14} "
                f"{usd(s.exposure):>14}")
        out.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in self.seconds.items()))
        for k, v in self.files.items():
            out.append(f"{k}: {v}")
        return out


def select_locates(feed, symbols=None, max_symbols: int = 8) -> list[int]:
    """The locates a session trades.

    Parameters
    ----------
    feed : host.feed.capture.Feed
    symbols : list, optional
        Symbols or locates (:func:`host.card.replay.resolve_locates`); when given, exactly
        those.
    max_symbols : int
        Without ``symbols``: at most this many of the instruments quoted at $1.00 or more,
        the most active first (returned sorted by locate).
    """
    from host.card.replay import resolve_locates

    locs = resolve_locates(feed, symbols)
    if symbols:
        return locs
    # default: instruments quoted at $1.00 or more (sub-dollar books make percent collars
    # meaningless), the most active first
    from host.card.model import reference_trace

    tr = reference_trace(feed.itch, locs)
    keep = []
    for loc in locs:
        s = tr[(tr["locate"] == loc) & (tr["bid_px"] > 0) & (tr["ask_px"] > 0)]
        if len(s) and int(np.median((s["bid_px"].astype(np.int64) + s["ask_px"]) // 2)) >= USD:
            keep.append((len(s), loc))
    keep.sort(reverse=True)
    return sorted(loc for _, loc in keep[:max_symbols])


def run_session(
    input_path,
    *,
    card: str = "model",
    config: RiskConfig | None = None,
    out_dir="out/session",
    symbols=None,
    max_symbols: int = 8,
    chunk: int = 64,
    seed: int = 1,
    drop_packets=(),
    progress: bool = False,
    kill_switch: bool = True,
    export: bool = True,
    store_sink=None,
) -> SessionReport:
    """Run the whole session; see the module docstring.

    Parameters
    ----------
    input_path : path
        NASDAQ ITCH 5.0 file (plain or .gz) or MoldUDP64 pcap.
    card : str
        Key of :data:`CARD_SOURCES`.
    config : RiskConfig, optional
        Default :func:`default_risk_config`; instruments are added for the subscribed locates.
    out_dir : path
        ``venue.journal``, ``risk.journal``, ``orders.csv``/``.parquet``,
        ``risk.csv``/``.parquet``.
    symbols : list, optional
        Symbols or locates to subscribe (default: up to ``max_symbols`` >= $1.00).
    chunk : int
        Card records applied between two order batches.
    drop_packets : iterable of int
        Packets left out of an ITCH input (sequence gaps: exercises the stale fail-safe).
    store_sink : object, optional
        Writes the run to a store while it goes (``python -m host session --store``: a
        :class:`host.store.live.StoreWriter`; this floor only calls it): ``start(feed,
        locates, records)`` once the card records are known, ``market(first, records)`` with
        each chunk of card records before it is applied, and ``events(journal, events)``
        (``"venue"`` or ``"risk"``) with the events of every journal commit, after it is
        written (:attr:`host.trading.journal.JournalWriter.on_commit`). An exception it
        raises ends the session (the journals are closed intact).
    """
    from host.feed.capture import load_feed
    from host.trading.journal import (
        DurabilityPolicy,
        JournalConfig,
        JournaledEngine,
        export_csv,
        export_parquet,
        read_journal,
    )
    from host.trading.journal.journal import ACK_SUFFIX

    if card not in CARD_SOURCES:
        raise ValueError(f"unknown card {card!r}; choose from {sorted(CARD_SOURCES)}")
    t0 = time.perf_counter()
    kw = {"drop_packets": list(drop_packets)} if drop_packets else {}
    feed = load_feed(input_path, **kw)
    locates = select_locates(feed, symbols, max_symbols)
    if not locates:
        raise ValueError("no instrument to trade (no symbol quoted at $1.00 or more)")
    t1 = time.perf_counter()
    records = CARD_SOURCES[card](feed, locates, progress=progress)
    t2 = time.perf_counter()
    ecfg, ticks = venue_config(records, locates)
    rcfg = (config or default_risk_config()).with_instruments(locates, ticks)
    for need in (LP, MAKER, TAKER, BURST, LOSER):
        rcfg.account(need)  # KeyError early if a config lacks a session account
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vj, rj = out / "venue.journal", out / "risk.journal"
    for p in (vj, rj):
        for q in (p, p.with_name(p.name + ACK_SUFFIX)):  # the journal and its acknowledgement file
            if q.exists():
                q.unlink()
    jc = JournalConfig(policy=DurabilityPolicy.FSYNC_INTERVAL, fsync_interval_ns=50_000_000)
    venue, _ = JournaledEngine.open(vj, config=ecfg, journal_config=jc)
    rjournal = RiskJournal(rj, jc)
    risk = RiskEngine(rcfg, venue, journal=rjournal)
    if store_sink is not None:
        store_sink.start(feed, locates, records)
        venue.writer.on_commit = lambda ev: store_sink.events("venue", ev)
        rjournal.writer.on_commit = lambda ev: store_sink.events("risk", ev)
    # the order flow is an order source: it gets a gateway bound to its accounts (it may not
    # act for any other account, use a strategy its accounts do not own, or end the session)
    gateway = risk.gateway((LP, MAKER, TAKER, BURST, LOSER))
    flow = OrderFlow(locates, ticks, records, rcfg, seed=seed)
    rep = SessionReport(card=card, messages=feed.n_messages, records=len(records),
                        locates=list(locates), loser=flow.loser)
    n = len(records)
    n_chunks = max(1, -(-n // chunk))
    kill_plan = {}
    if kill_switch and n_chunks >= 10:
        kill_plan = {int(n_chunks * 0.55): ("engage", KillScope.STRATEGY, MAKER),
                     int(n_chunks * 0.75): ("release", KillScope.STRATEGY, MAKER),
                     int(n_chunks * 0.35): ("engage", KillScope.INSTRUMENT, locates[0]),
                     int(n_chunks * 0.40): ("release", KillScope.INSTRUMENT, locates[0])}
    sub_acct: dict[int, int] = {}
    den_acct: dict[int, int] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="rec", unit_scale=True, desc="session", file=sys.stderr)
    try:
        for c in range(n_chunks):
            lo, hi = c * chunk, min(n, (c + 1) * chunk)
            recs = records[lo:hi]
            if store_sink is not None:
                store_sink.market(lo, recs)
            risk.on_market_data(recs)
            if c in kill_plan:
                what, scope, value = kill_plan[c]
                ts = int(recs["ts_event"][-1])
                if what == "engage":
                    risk.engage_kill_switch(scope, value, ts=ts)
                else:
                    risk.release_kill_switch(scope, value, ts=ts)
            cmds, strat = flow.on_records(recs, lo)
            if len(cmds):
                res = gateway.process(cmds, strat)
                new = cmds["kind"] != 2
                rep.submitted += int(np.count_nonzero(new))
                acc = cmds["account"][new]
                for a, k in zip(*np.unique(acc, return_counts=True), strict=True):
                    sub_acct[int(a)] = sub_acct.get(int(a), 0) + int(k)
                bad = res.reasons != 0
                for a, k in zip(*np.unique(cmds["account"][bad], return_counts=True),
                                strict=True):
                    den_acct[int(a)] = den_acct.get(int(a), 0) + int(k)
            if bar is not None:
                bar.update(hi - lo)
    finally:
        if bar is not None:
            bar.close()
        venue.close()
        rjournal.close()
    t3 = time.perf_counter()
    rep.forwarded = risk.forwarded
    rep.denied = risk.denied_counts()
    rep.submitted_by_account = sub_acct
    rep.denied_by_account = den_acct
    ev = read_journal(vj).events
    rep.trades = int(np.count_nonzero((ev["kind"] == EventKind.FILLED)
                                      & ((ev["flags"] & 4) == 0)))
    for e in risk.risk_events:
        k = type(e).__name__
        rep.risk_events[k] = rep.risk_events.get(k, 0) + 1
    for a in rcfg.accounts:
        rep.accounts.append({
            "account": a.account,
            "summary": risk.account(a.account),
            "positions": [risk.position(a.account, loc) for loc in locates],
        })
    rep.files = {"venue journal": str(vj), "risk journal": str(rj)}
    if export:
        from host.trading.risk import export_risk

        rev = read_journal(rj).events
        export_csv(ev, out / "orders.csv")
        export_parquet(ev, out / "orders.parquet")
        export_risk(rev, out / "risk.csv")
        export_risk(rev, out / "risk.parquet")
        rep.files["exports"] = ", ".join(str(out / f) for f in (
            "orders.csv", "orders.parquet", "risk.csv", "risk.parquet"))
    rep.seconds = {"load": t1 - t0, "card": t2 - t1, "trading": t3 - t2,
                   "export": time.perf_counter() - t3}
    rep.risk = risk  # for tests and callers that want the final state
    return rep
