"""Prometheus metrics of the console (``GET /metrics``), one registry per server.

Every name starts with ``itchfpga_``; ``docs/grafana/itchfpga.json`` reads exactly these
(``tests/host/console/test_metrics.py`` checks both). Counters are totals since the server
started (rates come from PromQL ``rate()``); latencies are histograms in seconds.

======================================  =========  ==============================================
name                                    type       what
======================================  =========  ==============================================
``itchfpga_card_records_total``         counter    card BBO records applied
``itchfpga_card_messages_total``        counter    feed messages applied to the depth book
``itchfpga_card_gap_records_total``     counter    records flagged ``gap`` (stale after a
                                                   sequence gap)
``itchfpga_card_invalid_records_total`` counter    records flagged ``book_invalid``
``itchfpga_card_not_valid_slots``       gauge      subscribed books whose last record is not a
                                                   valid two-sided, exact, gap-free BBO
``itchfpga_card_counter``               gauge      the card's own counters (``name`` label;
                                                   ``--card sim``: read after its replay)
``itchfpga_replay_progress``            gauge      fraction of the replay's records applied
``itchfpga_host_latency_seconds``       histogram  ``stage``: ``market_data`` (risk marks per
                                                   chunk), ``orders`` (risk + venue per command),
                                                   ``journal_commit`` (venue journal commit)
``itchfpga_journal_commit_seconds``     histogram  venue journal commit (same samples as
                                                   ``stage="journal_commit"``)
``itchfpga_risk_orders_total``          counter    new orders submitted through risk
``itchfpga_risk_forwarded_total``       counter    commands forwarded to the venue
``itchfpga_risk_denials_total``         counter    denials, ``reason`` label (DenyReason name)
``itchfpga_risk_kill_switches``         gauge      engaged kill switches, ``scope`` label
``itchfpga_risk_stale_instruments``     gauge      instruments whose card reference is stale
``itchfpga_risk_stale_windows_total``   counter    stale windows opened
``itchfpga_venue_fills_total``          counter    aggressor fills of the venue
``itchfpga_venue_accepted_total``       counter    new orders the venue accepted
``itchfpga_console_actions_total``      counter    operator actions, ``action`` label
``itchfpga_console_clients``            gauge      WebSocket clients connected
``itchfpga_console_ws_dropped_total``   counter    snapshots replaced before they were sent
                                                   (coalesced: the client was slower than the
                                                   push rate)
``itchfpga_console_ws_sent_total``      counter    snapshots sent
``itchfpga_card_latency_cycles``        histogram  ``--card sim``: card clock cycles from the MAC
                                                   beat with a message's last byte to its BBO
                                                   record's ``card_cycles`` stamp
                                                   (:func:`host.card.report.record_latency`),
                                                   ``type`` label (ITCH message type); observed
                                                   as the records are applied
``itchfpga_card_clock_hz``              gauge      the simulated card's clock (0: the model)
``itchfpga_card_replay_per_second``     gauge      ``--card sim``: the replay through the card,
                                                   ``what`` (records, messages) per second of
                                                   ``clock`` (``card``: card clock cycles the
                                                   replay took, frames back to back; ``wall``:
                                                   the simulation's wall time)
``itchfpga_store_queue_items``          gauge      ``--store``: items waiting in the writer's
                                                   queue (:class:`host.store.live.StoreWriter`)
``itchfpga_store_queue_capacity``       gauge      its bound (a full queue blocks the session)
``itchfpga_store_pending_rows``         gauge      rows taken from the queue, not written yet
``itchfpga_store_batches_total``        counter    batches written
``itchfpga_store_rows_total``           counter    rows written (new keys), ``table`` label
``itchfpga_store_producer_blocked_*``   counter    ``..._seconds_total``: time the session
                                                   waited on a full queue
``itchfpga_store_failed``               gauge      1 once the writer failed (the replay stops)
======================================  =========  ==============================================

Without ``--card sim`` the card latency histogram has no series; without ``--store`` the store
families are 0.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["ConsoleMetrics", "METRIC_NAMES", "CYCLE_BUCKETS"]

METRIC_NAMES = (
    "itchfpga_card_records_total", "itchfpga_card_messages_total",
    "itchfpga_card_gap_records_total", "itchfpga_card_invalid_records_total",
    "itchfpga_card_not_valid_slots", "itchfpga_card_counter", "itchfpga_replay_progress",
    "itchfpga_host_latency_seconds", "itchfpga_journal_commit_seconds",
    "itchfpga_risk_orders_total", "itchfpga_risk_forwarded_total", "itchfpga_risk_denials_total",
    "itchfpga_risk_kill_switches", "itchfpga_risk_stale_instruments",
    "itchfpga_risk_stale_windows_total",
    "itchfpga_venue_fills_total", "itchfpga_venue_accepted_total",
    "itchfpga_console_actions_total", "itchfpga_console_clients",
    "itchfpga_console_ws_dropped_total", "itchfpga_console_ws_sent_total",
    "itchfpga_card_latency_cycles", "itchfpga_card_clock_hz", "itchfpga_card_replay_per_second",
    "itchfpga_store_queue_items", "itchfpga_store_queue_capacity", "itchfpga_store_pending_rows",
    "itchfpga_store_batches_total", "itchfpga_store_rows_total",
    "itchfpga_store_producer_blocked_seconds_total", "itchfpga_store_failed",
)
"""Every metric family the console exports (the Grafana board may use only these)."""

_BUCKETS = tuple(10 ** (e / 4) for e in range(-24, 1))  # 1 us .. 1 s, 4 per decade

CYCLE_BUCKETS = (*range(1, 17), 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192,
                 256, 384, 512, 1024, 2048)
"""Upper bounds (card clock cycles) of ``itchfpga_card_latency_cycles``: one per cycle up to
16, then about 4 per doubling (the ladder card's records take 17..111 cycles)."""


class _Collected:
    """The families read at scrape time: the card latency histogram (filled by
    :meth:`ConsoleMetrics.observe_card_latency`), the card replay's rates, and the store
    writer's state (:meth:`ConsoleMetrics.attach_store`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lat_counts: dict[str, np.ndarray] = {}  # type -> per-bucket counts (+Inf last)
        self.lat_sum: dict[str, int] = {}
        self.clk_hz = 0
        self.rates: dict[tuple[str, str], float] = {}
        self.store = None

    def describe(self):
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        yield HistogramMetricFamily("itchfpga_card_latency_cycles", "", labels=["type"])
        for n in ("card_clock_hz", "card_replay_per_second", "store_queue_items",
                  "store_queue_capacity", "store_pending_rows", "store_failed"):
            yield GaugeMetricFamily("itchfpga_" + n, "")
        for n in ("store_batches", "store_rows", "store_producer_blocked_seconds"):
            yield CounterMetricFamily("itchfpga_" + n, "")

    def collect(self):
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        h = HistogramMetricFamily(
            "itchfpga_card_latency_cycles", "Simulated card: cycles from the MAC beat with a "
            "message's last byte to its BBO record stamp", labels=["type"])
        with self.lock:
            for t in sorted(self.lat_counts):
                cum = np.cumsum(self.lat_counts[t]).tolist()
                h.add_metric([t], [(str(float(b)), c) for b, c in
                                   zip(CYCLE_BUCKETS, cum, strict=False)]
                             + [("+Inf", cum[-1])], sum_value=self.lat_sum[t])
            rates = dict(self.rates)
        yield h
        yield GaugeMetricFamily("itchfpga_card_clock_hz", "Card clock of the card-clock rates "
                                "(serve --clock-mhz; 0: not given or model)",
                                value=self.clk_hz)
        g = GaugeMetricFamily("itchfpga_card_replay_per_second",
                              "Replay through the simulated card: per second of clock",
                              labels=["what", "clock"])
        for (what, clock), v in sorted(rates.items()):
            g.add_metric([what, clock], v)
        yield g
        w = self.store
        written = dict(w.written) if w is not None else {}
        yield GaugeMetricFamily("itchfpga_store_queue_items", "Items in the store writer queue",
                                value=w.q.qsize() if w is not None else 0)
        yield GaugeMetricFamily("itchfpga_store_queue_capacity", "Bound of that queue",
                                value=w.q.maxsize if w is not None else 0)
        yield GaugeMetricFamily("itchfpga_store_pending_rows",
                                "Rows taken from the queue, not written yet",
                                value=w.pending_rows if w is not None else 0)
        yield CounterMetricFamily("itchfpga_store_batches", "Store batches written",
                                  value=w.batches if w is not None else 0)
        c = CounterMetricFamily("itchfpga_store_rows", "Rows written to the store (new keys)",
                                labels=["table"])
        for t, n in sorted(written.items()):
            c.add_metric([t], n)
        yield c
        yield CounterMetricFamily("itchfpga_store_producer_blocked_seconds",
                                  "Time the session waited on a full store queue",
                                  value=w.blocked_s if w is not None else 0.0)
        yield GaugeMetricFamily("itchfpga_store_failed", "1 once the store writer failed",
                                value=int(w is not None and w.error is not None))


class ConsoleMetrics:
    """The metric objects, in their own :class:`prometheus_client.CollectorRegistry`."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry(auto_describe=True)
        self.records = Counter("itchfpga_card_records", "Card BBO records applied", registry=r)
        self.messages = Counter("itchfpga_card_messages", "Feed messages applied", registry=r)
        self.gap_records = Counter("itchfpga_card_gap_records",
                                   "Records flagged gap (stale after a sequence gap)", registry=r)
        self.invalid_records = Counter("itchfpga_card_invalid_records",
                                       "Records flagged book_invalid", registry=r)
        self.not_valid = Gauge("itchfpga_card_not_valid_slots",
                               "Books whose last record is not a valid exact BBO", registry=r)
        self.card_counter = Gauge("itchfpga_card_counter", "The card's own counters",
                                  ["name"], registry=r)
        self.progress = Gauge("itchfpga_replay_progress", "Fraction of the replay applied",
                              registry=r)
        self.latency = Histogram("itchfpga_host_latency_seconds", "Host latency by stage",
                                 ["stage"], buckets=_BUCKETS, registry=r)
        self.journal_commit = Histogram("itchfpga_journal_commit_seconds",
                                        "Venue journal commit latency", buckets=_BUCKETS,
                                        registry=r)
        self.orders = Counter("itchfpga_risk_orders", "New orders submitted through risk",
                              registry=r)
        self.forwarded = Counter("itchfpga_risk_forwarded",
                                 "Commands forwarded to the venue", registry=r)
        self.denials = Counter("itchfpga_risk_denials", "Risk denials by reason", ["reason"],
                               registry=r)
        self.kill = Gauge("itchfpga_risk_kill_switches", "Engaged kill switches", ["scope"],
                          registry=r)
        self.stale = Gauge("itchfpga_risk_stale_instruments",
                           "Instruments with a stale card reference", registry=r)
        self.stale_windows = Counter("itchfpga_risk_stale_windows",
                                     "Stale windows opened (a reference became stale)",
                                     registry=r)
        self.fills = Counter("itchfpga_venue_fills", "Aggressor fills of the venue", registry=r)
        self.accepted = Counter("itchfpga_venue_accepted", "New orders the venue accepted",
                                registry=r)
        self.actions = Counter("itchfpga_console_actions", "Operator actions", ["action"],
                               registry=r)
        self.clients = Gauge("itchfpga_console_clients", "WebSocket clients", registry=r)
        self.ws_dropped = Counter("itchfpga_console_ws_dropped",
                                  "Snapshots coalesced away before sending", registry=r)
        self.ws_sent = Counter("itchfpga_console_ws_sent", "Snapshots sent", registry=r)
        self.collected = _Collected()
        r.register(self.collected)
        self._denied_seen: dict[str, int] = {}
        self._forwarded_seen = 0
        for s in ("all", "account", "strategy", "instrument"):
            self.kill.labels(scope=s).set(0)

    def observe_journal_commit(self, seconds: float) -> None:
        self.journal_commit.observe(seconds)

    def attach_store(self, writer) -> None:
        """Export the state of a :class:`host.store.live.StoreWriter` (read at each scrape)."""
        self.collected.store = writer

    def set_card_replay(self, clk_hz: int, cycles: int | None, wall_s: float, records: int,
                        messages: int) -> None:
        """The replay's rates: per wall second, and per second of card clock at ``clk_hz``
        (``serve --clock-mhz``, a clock the build closes; 0: not given, no card-clock rates,
        since the nominal clock is not timing-closed)."""
        c = self.collected
        c.clk_hz = int(clk_hz)
        rates = {}
        if cycles and clk_hz:
            card_s = cycles / clk_hz
            rates[("records", "card")] = records / card_s
            rates[("messages", "card")] = messages / card_s
        if wall_s > 0:
            rates[("records", "wall")] = records / wall_s
            rates[("messages", "wall")] = messages / wall_s
        with c.lock:
            c.rates = rates

    def observe_card_latency(self, cycles: np.ndarray, mtype: np.ndarray) -> None:
        """Add the card latency (cycles, ``-1`` = none) of records just applied, with the
        ITCH type (``uint8``) of the message of each."""
        has = cycles >= 0
        if not has.any():
            return
        cyc, typ = cycles[has], mtype[has]
        c = self.collected
        with c.lock:
            for t in np.unique(typ).tolist():
                v = cyc[typ == t]
                k = chr(t)
                if k not in c.lat_counts:
                    c.lat_counts[k] = np.zeros(len(CYCLE_BUCKETS) + 1, np.int64)
                    c.lat_sum[k] = 0
                c.lat_counts[k] += np.bincount(np.searchsorted(CYCLE_BUCKETS, v, side="left"),
                                               minlength=len(CYCLE_BUCKETS) + 1)
                c.lat_sum[k] += int(v.sum())

    def update_risk(self, risk) -> None:
        """Bring the risk counters up to ``risk``'s totals (counters only move forward)."""
        from host.trading.risk import checks as K

        for reason, n in risk.denied_counts().items():
            d = n - self._denied_seen.get(reason, 0)
            if d > 0:
                self.denials.labels(reason=reason).inc(d)
                self._denied_seen[reason] = n
        d = risk.forwarded - self._forwarded_seen
        if d > 0:
            self.forwarded.inc(d)
            self._forwarded_seen = risk.forwarded
        na, ni = len(risk.config.accounts), len(risk.config.instruments)
        self.kill.labels(scope="all").set(int(risk.G[K.G_KILL] != 0))
        self.kill.labels(scope="account").set(int((risk.A[:na, K.A_KILL] != 0).sum()))
        self.kill.labels(scope="strategy").set(int((risk.SK != 0).sum()))
        self.kill.labels(scope="instrument").set(int((risk.N[:ni, K.N_KILL] != 0).sum()))

    def set_card_counters(self, counters: dict) -> None:
        for k, v in counters.items():
            if isinstance(v, int | float):
                self.card_counter.labels(name=str(k)).set(v)

    def exposition(self) -> tuple[bytes, str]:
        """``(body, content type)`` of the text exposition format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
