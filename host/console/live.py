"""The console's live trading session: a replay paced in market time, stepped by a thread.

:class:`LiveSession` runs the same pipeline as :func:`host.trading.session.run_session` --
card records (``model`` or ``sim``, :data:`host.trading.session.CARD_SOURCES`) -> pre-trade
risk (:class:`host.trading.risk.RiskEngine`) -> journaled matching engine, with the built-in
order flow (:class:`host.trading.session.OrderFlow`) -- but chunk by chunk at a chosen speed
of the feed's own clock, so that an operator can watch it and act on it: every chunk also
advances a reference L3 book (:class:`host.feed.fastbook.FastBook`) for the depth ladder,
and every step updates the Prometheus metrics (:mod:`host.console.metrics`).

All mutation goes through one lock: :meth:`step` (the replay thread), :meth:`snapshot` (the
web server), and the operator actions :meth:`kill` and :meth:`clear_stale`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw import bbo_record

__all__ = ["LiveConfig", "LiveSession", "KILL_SCOPES"]

KILL_SCOPES = ("all", "account", "strategy", "instrument")
"""Kill-switch scopes the console accepts (names of :class:`host.trading.risk.KillScope`)."""


@dataclass(frozen=True)
class LiveConfig:
    """What to replay and how fast.

    Parameters
    ----------
    input : path
        NASDAQ ITCH 5.0 file (plain or .gz) or MoldUDP64 pcap.
    card : str
        Key of :data:`host.trading.session.CARD_SOURCES` (``model`` or ``sim``).
    speed : float
        Market seconds per wall second; 0 runs as fast as the host can.
    chunk : int
        Card records applied between two order batches (as ``python -m host session``).
    out_dir : path
        Journals of the session (venue and risk).
    symbols : list, optional
        Symbols or locates (default: up to ``max_symbols`` quoted at $1.00 or more).
    max_symbols : int
    depth : int
        Levels per side of the depth ladder.
    tape : int
        Fills kept for the trades tape.
    seed : int
    max_sleep_s : float
        Wall time left for a quiet stretch of the feed that is skipped (longer than 1 s).
    scripted : bool
        Also play the kill switches of ``python -m host session`` (strategy 2 from 55 % to
        75 % of the chunks, the first instrument from 35 % to 40 %); without it the operator
        has the switches to himself.
    drop_packets : tuple of int
        Packets left out of an ITCH input (sequence gaps: the stale fail-safe at work).
    clock_hz : float
        ``--card sim``: the core clock (Hz) at which card cycles are also shown in ns and
        card-clock rates are computed; 0 (default): cycles only, since the card's nominal
        clock (``ID_CLK_HZ``, 322 MHz) is not timing-closed (docs/synthesis.md).
    """

    input: str
    card: str = "model"
    speed: float = 1.0
    chunk: int = 64
    out_dir: str = "out/console"
    symbols: tuple | None = None
    max_symbols: int = 8
    depth: int = 5
    tape: int = 20
    seed: int = 1
    max_sleep_s: float = 0.05
    scripted: bool = False
    drop_packets: tuple = ()
    clock_hz: float = 0.0


def _hist_edges() -> np.ndarray:
    # 1 us .. ~1 s, 4 buckets per decade (seconds); the page and /metrics use the same edges
    return np.array([10 ** (e / 4) for e in range(-24, 1)])


def card_latency(rp, clock_hz: float = 0.0) -> dict | None:
    """Summary of the simulated card's processing latency in a replay (``rp``, a
    :class:`host.card.replay.Replay` run with ``latency=True``).

    The latency is :func:`host.card.report.latency_by_type`'s: card clock cycles from the
    accept of the MAC beat holding a message's last byte to the record's ``card_cycles``
    stamp (ingress + book + record packer), for every message that produced a record.
    Returns ``{"clk_hz", "nominal_hz", "ns_note", "n", "min", "p50", "p99", "max",
    "by_type"}`` (cycles; ``by_type``: ITCH type -> ``[n, p50, max]``), or None when nothing
    was measured. ``clk_hz`` is ``clock_hz`` (the page adds ns at it), 0 when not given:
    then ``ns_note`` says why no ns are shown (the nominal clock, ``nominal_hz``, is not
    timing-closed), as ``python -m host replay`` does.
    """
    from host.card.report import latency_by_type

    by = latency_by_type(rp)
    if not by:
        return None
    allv = np.concatenate(list(by.values()))
    if not len(allv):
        return None

    def pct(a, q):
        return int(np.percentile(a, q, method="lower"))

    from host.card.report import NOT_CLOSED

    note = "" if clock_hz else NOT_CLOSED.format(mhz=rp.clk_hz / 1e6)
    return {"clk_hz": int(clock_hz), "nominal_hz": int(rp.clk_hz), "ns_note": note,
            "n": len(allv), "min": int(allv.min()),
            "p50": pct(allv, 50), "p99": pct(allv, 99), "max": int(allv.max()),
            "by_type": {t: [len(v), pct(v, 50), int(v.max())] for t, v in by.items()
                        if len(v)}}


class LiveSession:
    """A paced, inspectable, controllable trading session (see the module docstring).

    Parameters
    ----------
    config : LiveConfig
    metrics : host.console.metrics.ConsoleMetrics, optional
        Updated on every step.
    store_sink : host.store.live.StoreWriter, optional
        Writes the session to a store while it runs, through the same calls as
        :func:`host.trading.session.run_session` makes (``python -m host serve --store``):
        ``start`` once the card records are known, ``market`` with each chunk of card
        records before risk applies it, ``events`` with the events of every commit of the
        venue and risk journals (operator actions included), and ``finish_session`` when
        the session stops. The caller closes it. A store failure stops the replay
        (:attr:`store_error`); the journals stay intact.
    """

    def __init__(self, config: LiveConfig, metrics=None, store_sink=None) -> None:
        from host.feed.bulk import parse_records
        from host.feed.capture import load_feed
        from host.feed.fastbook import FastBook
        from host.trading.journal import DurabilityPolicy, JournalConfig, JournaledEngine
        from host.trading.journal.journal import ACK_SUFFIX
        from host.trading.risk import RiskEngine, RiskJournal
        from host.trading.session import (
            BURST,
            CARD_SOURCES,
            LOSER,
            LP,
            MAKER,
            TAKER,
            OrderFlow,
            default_risk_config,
            select_locates,
            venue_config,
        )

        if config.card not in CARD_SOURCES:
            raise ValueError(f"unknown card {config.card!r}; choose from {sorted(CARD_SOURCES)}")
        self.config = config
        self.metrics = metrics
        self.lock = threading.RLock()
        kw = {"drop_packets": list(config.drop_packets)} if config.drop_packets else {}
        self.feed = load_feed(config.input, **kw)
        self.locates = select_locates(self.feed, list(config.symbols or []), config.max_symbols)
        if not self.locates:
            raise ValueError("no instrument to trade (no symbol quoted at $1.00 or more)")
        self.symbols = self._symbol_names()
        t0 = time.perf_counter()
        self.card_counters: dict = {}
        self.card_latency: dict | None = None  # the simulated card's record stamp latency
        self.rec_latency: tuple | None = None  # (cycles, ITCH type) per record (--card sim)
        if config.card == "sim":  # drive the card here to keep its counters and status
            self.records = self._sim_records()
        else:
            self.records = CARD_SOURCES[config.card](self.feed, self.locates)
        self.card_seconds = time.perf_counter() - t0
        if metrics is not None:
            metrics.set_card_counters(self.card_counters)
        # message index of every record (the book advances to it before the record is shown)
        self.msg_of = np.searchsorted(self.feed.seq, self.records["seq"], side="left")
        self.msgs, _ = parse_records(self.feed.itch)
        self.book = FastBook(self.locates)
        ecfg, ticks = venue_config(self.records, self.locates)
        rcfg = default_risk_config().with_instruments(self.locates, ticks)
        out = Path(config.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        vj, rj = out / "venue.journal", out / "risk.journal"
        for p in (vj, rj):
            for q in (p, p.with_name(p.name + ACK_SUFFIX)):
                if q.exists():
                    q.unlink()
        jc = JournalConfig(policy=DurabilityPolicy.FSYNC_INTERVAL, fsync_interval_ns=50_000_000)
        self.venue, _ = JournaledEngine.open(vj, config=ecfg, journal_config=jc)
        self._handover_s = 0.0  # time the venue journal's commit spent handing to the store
        self._time_journal_commits()
        self.rjournal = RiskJournal(rj, jc)
        self.store_sink = store_sink
        self.store_error: str | None = None
        if store_sink is not None:
            store_sink.start(self.feed, self.locates, self.records)

            def venue_commit(ev):
                t = time.perf_counter()
                store_sink.events("venue", ev)
                self._handover_s += time.perf_counter() - t

            self.venue.writer.on_commit = venue_commit
            self.rjournal.writer.on_commit = lambda ev: store_sink.events("risk", ev)
        self.risk = RiskEngine(rcfg, self.venue, journal=self.rjournal)
        self.accounts = (LP, MAKER, TAKER, BURST, LOSER)
        self.gateway = self.risk.gateway(self.accounts)
        self.flow = OrderFlow(self.locates, ticks, self.records, rcfg, seed=config.seed)
        n_chunks = max(1, -(-len(self.records) // config.chunk))
        self.kill_plan: dict[int, tuple] = {}
        if config.scripted and n_chunks >= 10:  # the plan of run_session, same chunks
            self.kill_plan = {int(n_chunks * 0.55): (True, "strategy", MAKER),
                              int(n_chunks * 0.75): (False, "strategy", MAKER),
                              int(n_chunks * 0.35): (True, "instrument", self.locates[0]),
                              int(n_chunks * 0.40): (False, "instrument", self.locates[0])}
        self.account_names = {LP: "liquidity provider", MAKER: "passive maker", TAKER: "taker",
                              BURST: "burst", LOSER: "loser"}
        self.journal_paths = {"venue": str(vj), "risk": str(rj)}
        # progress and counters
        self.pos = 0  # records applied
        self.msg_pos = 0  # messages applied to the depth book
        self.submitted = 0
        self.fills = 0
        self.accepted = 0  # new orders the venue accepted (a kill switch stops these)
        self.gap_records = 0
        self.invalid_records = 0
        self.tape: deque = deque(maxlen=config.tape)
        self.last: dict[int, tuple] = {}  # locate -> (ts, flags, bid_px, bid_sz, ask_px, ask_sz)
        self.edges = _hist_edges()
        self.hist = {k: np.zeros(len(self.edges) + 1, np.int64)
                     for k in ("market_data", "orders", "journal_commit")}
        self.actions: deque = deque(maxlen=20)
        # stale windows of the card references: open {instrument: start ts}, closed ones
        # (instrument, start, end, how it ended), newest first
        self.stale_open: dict[int, int] = {}
        self.stale_closed: deque = deque(maxlen=20)
        self.stale_windows = 0
        self.started = time.time()
        self.finished = False
        self.closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0

    # ------------------------------------------------------------------ setup helpers

    def _symbol_names(self) -> dict[int, str]:
        from host.feed.capture import symbol_directory

        d = {v: k for k, v in symbol_directory(self.feed.itch).items()}
        return {loc: d.get(loc, str(loc)) for loc in self.locates}

    def _sim_records(self) -> np.ndarray:
        from host.card.replay import open_sim_card, replay_through_card

        card = open_sim_card(allow_build=True)
        try:
            # no re-seeds: the console shows the records as a session uses them
            rp = replay_through_card(card, self.feed, self.locates, latency=True,
                                     recover=False)
        finally:
            card.close()
        self.card_counters = {k: int(v) for k, v in rp.counters.items()
                              if isinstance(v, int | np.integer)}
        self.card_latency = card_latency(rp, self.config.clock_hz)
        from host.card.report import record_latency

        self.rec_latency = record_latency(rp)
        if self.metrics is not None:
            self.metrics.set_card_replay(self.config.clock_hz, rp.run.cycles, rp.run.wall_s,
                                         len(rp.recs), self.feed.n_messages)
        rec = rp.recs
        if rec.dtype != bbo_record.DTYPE:
            rec = np.ascontiguousarray(rec[list(bbo_record.DTYPE.names)]).astype(bbo_record.DTYPE)
        return rec

    def _time_journal_commits(self) -> None:
        """Wrap the venue journal's ``commit`` to time it (journal commit latency; the
        hand-over of the committed events to the store writer is not counted)."""
        w = self.venue.writer
        inner = w.commit

        def commit(*a, **kw):
            self._handover_s = 0.0
            t = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                self._observe("journal_commit", time.perf_counter() - t - self._handover_s)

        w.commit = commit

    def _observe(self, name: str, seconds: float) -> None:
        self.hist[name][np.searchsorted(self.edges, seconds)] += 1
        if self.metrics is not None:
            self.metrics.latency.labels(stage=name).observe(seconds)
            if name == "journal_commit":
                self.metrics.journal_commit.observe(seconds)

    # ------------------------------------------------------------------ stepping

    @property
    def n_records(self) -> int:
        return len(self.records)

    @property
    def market_ts(self) -> int:
        """Feed time (ns since midnight) of the last applied record."""
        return int(self.records["ts_event"][self.pos - 1]) if self.pos else (
            int(self.records["ts_event"][0]) if len(self.records) else 0)

    def step(self, max_records: int | None = None) -> int:
        """Apply the next chunk of card records and the order batch it triggers.

        Returns the number of records applied (0 at the end of the replay). With a store,
        the chunk goes to it first; a failed store raises
        :class:`host.store.live.StoreWriteError` here, before anything is applied.
        """
        from host.trading.matching import EventFlag, EventKind

        with self.lock:
            if self.closed or self.pos >= self.n_records:
                self.finished = True
                return 0
            lo = self.pos
            hi = min(self.n_records, lo + (max_records or self.config.chunk))
            recs = self.records[lo:hi]
            if self.store_sink is not None:
                self.store_sink.market(lo, recs)
            m_hi = int(self.msg_of[hi - 1]) + 1
            if m_hi > self.msg_pos:
                self.book.feed(self.msgs[self.msg_pos:m_hi], copy=False)
                if self.metrics is not None:
                    self.metrics.messages.inc(m_hi - self.msg_pos)
                self.msg_pos = m_hi
            t = time.perf_counter()
            md_events = self.risk.on_market_data(recs)
            self._observe("market_data", time.perf_counter() - t)
            self._stale_events(md_events)
            if self.steps in self.kill_plan:
                engage, scope, value = self.kill_plan[self.steps]
                self.kill(scope, value, engage, by="script")
            flags = recs["flags"]
            n_gap = int(np.count_nonzero(flags & bbo_record.FLAG_GAP))
            n_inv = int(np.count_nonzero(flags & bbo_record.FLAG_BOOK_INVALID))
            self.gap_records += n_gap
            self.invalid_records += n_inv
            _, first = np.unique(recs["locate"][::-1], return_index=True)
            for j in (len(recs) - 1 - first).tolist():  # each locate's last record
                r = recs[j]
                self.last[int(r["locate"])] = (int(r["ts_event"]), int(r["flags"]),
                                               int(r["bid_px"]), int(r["bid_sz"]),
                                               int(r["ask_px"]), int(r["ask_sz"]))
            cmds, strat = self.flow.on_records(recs, lo)
            if len(cmds):
                t = time.perf_counter()
                res = self.gateway.process(cmds, strat)
                dt = time.perf_counter() - t
                new = cmds["kind"] != 2
                n_new = int(np.count_nonzero(new))
                self.submitted += n_new
                if n_new:
                    self._observe("orders", dt / len(cmds))
                ev = res.events
                fill = (ev["kind"] == EventKind.FILLED) & ((ev["flags"] & EventFlag.MAKER) == 0)
                for e in ev[fill]:
                    self.tape.appendleft((int(e["ts"]), int(e["instrument"]), int(e["account"]),
                                          "B" if int(e["side"]) == 1 else "S",
                                          int(e["last_px"]), int(e["last_qty"])))
                self.fills += int(np.count_nonzero(fill))
                n_acc = int(np.count_nonzero(ev["kind"] == EventKind.ACCEPTED))
                self.accepted += n_acc
                if self.metrics is not None:
                    self.metrics.accepted.inc(n_acc)
                    self.metrics.orders.inc(n_new)
                    self.metrics.fills.inc(int(np.count_nonzero(fill)))
            self.pos = hi
            self.steps += 1
            if self.metrics is not None:
                m = self.metrics
                m.records.inc(hi - lo)
                if self.rec_latency is not None:
                    m.observe_card_latency(self.rec_latency[0][lo:hi],
                                           self.rec_latency[1][lo:hi])
                m.gap_records.inc(n_gap)
                m.invalid_records.inc(n_inv)
                m.update_risk(self.risk)
                m.stale.set(sum(1 for loc in self.locates if self.risk.reference(loc)[2]))
                m.not_valid.set(len(self.not_valid_slots()))
                m.progress.set(self.pos / max(1, self.n_records))
            if self.pos >= self.n_records:
                self.finished = True
            return hi - lo

    def _stale_events(self, events) -> None:
        from host.trading.risk.types import ReferenceRestored, ReferenceStale

        for e in events:
            if isinstance(e, ReferenceStale) and e.instrument not in self.stale_open:
                self.stale_open[e.instrument] = e.ts
                self.stale_windows += 1
                if self.metrics is not None:
                    self.metrics.stale_windows.inc()
            elif isinstance(e, ReferenceRestored) and e.instrument in self.stale_open:
                self.stale_closed.appendleft((e.instrument, self.stale_open.pop(e.instrument),
                                              e.ts, "restored"))

    def not_valid_slots(self) -> list[int]:
        """Locates whose last card record is not a valid two-sided, exact, gap-free BBO."""
        bad = []
        for loc in self.locates:
            f = self.last.get(loc, (0, 0))[1]
            ok = (f & 6) == 6 and not f & (bbo_record.FLAG_GAP | bbo_record.FLAG_BOOK_INVALID)
            if not ok:
                bad.append(loc)
        return bad

    def run(self) -> None:
        """Replay to the end at ``config.speed`` (feed seconds per wall second)."""
        speed = self.config.speed
        ts = self.records["ts_event"]
        if not len(ts):
            self.finished = True
            return
        from host.store.live import StoreWriteError

        wall0, mkt0 = time.perf_counter(), int(ts[0])
        while not self._stop.is_set():
            try:
                if not self.step():
                    break
            except StoreWriteError as e:  # the replay stops; the page and /metrics say why
                self.store_error = str(e)
                break
            if speed <= 0:
                time.sleep(0)  # let the server's thread take the GIL between chunks
                continue
            if self.pos >= self.n_records:
                break
            wait = wall0 + (int(ts[self.pos]) - mkt0) / 1e9 / speed - time.perf_counter()
            if wait > 1.0:  # a quiet stretch of the feed longer than a second: skip it
                wall0 -= wait - self.config.max_sleep_s
                wait = self.config.max_sleep_s
            if wait > 0:
                self._stop.wait(wait)

    def start(self) -> threading.Thread:
        """Run :meth:`run` in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="console-replay", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop the replay thread and close the journals; with a store, queue the
        ``sessions`` row (the caller closes the writer, which writes what is pending)."""
        from host.store.live import StoreWriteError

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self.lock:
            if not self.closed:
                self.closed = True
                self.venue.close()
                self.rjournal.close()
                if self.store_sink is not None and self.store_error is None:
                    try:
                        self.store_sink.finish_session(self.config.out_dir)
                    except StoreWriteError as e:
                        self.store_error = str(e)

    # ------------------------------------------------------------------ operator actions

    def kill(self, scope: str, value: int, engage: bool, *, by: str = "operator") -> dict:
        """Engage or release a kill switch; ``scope`` in :data:`KILL_SCOPES`.

        Raises ``ValueError`` for an unknown scope or id (the server answers 400).
        """
        from host.trading.risk import KillScope

        if scope not in KILL_SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        ks = KillScope[scope.upper()]
        ids = {"all": {0}, "account": set(self.accounts), "strategy": set(self.accounts),
               "instrument": set(self.locates)}[scope]
        if value not in ids:
            raise ValueError(f"unknown {scope} {value}")
        with self.lock:
            if self.closed:
                raise ValueError("the session is closed")
            ts = self.market_ts
            if engage:
                ev = self.risk.engage_kill_switch(ks, value, ts=ts)
                n = ev[-1].canceled if hasattr(ev[-1], "canceled") else 0
            else:
                self.risk.release_kill_switch(ks, value, ts=ts)
                n = 0
            what = f"{'engage' if engage else 'release'} kill switch {scope} {value}"
            if by != "operator":
                what += f" ({by})"
            self.actions.appendleft((time.time(), what))
            if self.metrics is not None:
                self.metrics.update_risk(self.risk)
                self.metrics.actions.labels(action="kill" if engage else "release").inc()
            return {"ok": True, "action": what, "canceled": int(n)}

    def clear_stale(self, instrument: int | None = None) -> dict:
        """Operator override: treat the card book of ``instrument`` (or every one) as valid."""
        if instrument is not None and instrument not in self.locates:
            raise ValueError(f"unknown instrument {instrument}")
        with self.lock:
            if self.closed:
                raise ValueError("the session is closed")
            todo = [instrument] if instrument is not None else list(self.locates)
            cleared = [loc for loc in todo if self.risk.reference(loc)[2]]
            for loc in todo:
                self.risk.mark_reference_valid(loc)
                if loc in self.stale_open:
                    self.stale_closed.appendleft((loc, self.stale_open.pop(loc),
                                                  self.market_ts, "operator"))
            what = f"clear stale {instrument if instrument is not None else 'all'}"
            self.actions.appendleft((time.time(), what))
            if self.metrics is not None:
                self.metrics.actions.labels(action="clear_stale").inc()
                self.metrics.stale.set(sum(1 for x in self.locates if self.risk.reference(x)[2]))
            return {"ok": True, "action": what, "cleared": cleared}

    # ------------------------------------------------------------------ views

    def kill_switches(self) -> dict:
        """Engaged kill switches: ``{"all": bool, "account": [...], "strategy": [...],
        "instrument": [...]}``."""
        from host.trading.risk import checks as K

        r = self.risk
        return {
            "all": bool(r.G[K.G_KILL]),
            "account": [int(r.A[i, K.A_ID]) for i in range(len(r.config.accounts))
                        if r.A[i, K.A_KILL]],
            "strategy": [s for s in self.accounts if s < len(r.SK) and r.SK[s]],
            "instrument": [int(r.N[i, K.N_ID]) for i in range(len(r.config.instruments))
                           if r.N[i, K.N_KILL]],
        }

    def snapshot(self) -> dict:
        """JSON-ready state for the page (prices Price(4) integers, money 1e-4 USD)."""
        with self.lock:
            r = self.risk
            books = []
            for loc in self.locates:
                last = self.last.get(loc)
                ts, fl, bp, bs, ap, asz = last if last else (0, 0, 0, 0, 0, 0)
                bid, ask, stale = r.reference(loc)
                books.append({
                    "locate": loc, "symbol": self.symbols[loc], "ts": ts, "flags": fl,
                    "bid_px": bp, "bid_sz": bs, "ask_px": ap, "ask_sz": asz, "stale": stale,
                    "bids": [list(x) for x in self.book.depth(loc, "B", self.config.depth)],
                    "asks": [list(x) for x in self.book.depth(loc, "S", self.config.depth)],
                })
            accounts = []
            for a in self.accounts:
                s = r.account(a)
                pos = [{"instrument": loc, "qty": p.qty, "avg_px": p.avg_px}
                       for loc in self.locates if (p := r.position(a, loc)).qty]
                cfg = r.config.account(a)
                accounts.append({
                    "account": a, "name": self.account_names.get(a, ""),
                    "state": s.state.name, "breaker": bool(s.breaker_tripped),
                    "kill": bool(s.kill_switch), "realized": s.realized,
                    "unrealized": s.unrealized, "exposure": s.exposure,
                    "max_position": cfg.max_position,
                    "daily_loss_limit": cfg.daily_loss_limit,
                    "gross_position": sum(abs(p["qty"]) for p in pos),
                    "positions": pos,
                })
            return {
                "input": str(self.config.input), "source": self.config.card,
                "speed": self.config.speed,
                "records": self.pos, "n_records": self.n_records, "messages": self.msg_pos,
                "n_messages": self.feed.n_messages, "market_ts": self.market_ts,
                "finished": self.finished,
                "books": books,
                "tape": [list(t) for t in self.tape],
                "risk": {
                    "submitted": self.submitted, "forwarded": r.forwarded,
                    "denied": r.denied_counts(), "open_orders": r.open_orders,
                    "fills": self.fills, "accepted": self.accepted, "kill": self.kill_switches(),
                    "stale": [loc for loc in self.locates if r.reference(loc)[2]],
                },
                "accounts": accounts,
                "card": {
                    "records": self.pos, "gap_records": self.gap_records,
                    "invalid_records": self.invalid_records,
                    "not_valid": self.not_valid_slots(),
                    "book_anomalies": {k: v for k, v in self.book.anomalies.items() if v},
                    "live_orders": self.book.n_orders,
                    "counters": self.card_counters,
                    "latency": self.card_latency,
                    "stale_windows": self.stale_windows,
                    "stale_list": [[loc, t0, None, "open"]
                                   for loc, t0 in sorted(self.stale_open.items())]
                                  + [list(w) for w in self.stale_closed],
                },
                "latency": {"edges": self.edges.tolist(),
                            **{k: v.tolist() for k, v in self.hist.items()}},
                "actions": [list(a) for a in self.actions],
                "store": self._store_view(),
            }

    def _store_view(self) -> dict | None:
        w = self.store_sink
        if w is None:
            return None
        return {"run": w.run, "written": dict(w.written), "batches": w.batches,
                "queue": w.q.qsize(), "error": self.store_error or w.error}
