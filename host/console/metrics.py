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
======================================  =========  ==============================================
"""

from __future__ import annotations

__all__ = ["ConsoleMetrics", "METRIC_NAMES"]

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
)
"""Every metric family the console exports (the Grafana board may use only these)."""

_BUCKETS = tuple(10 ** (e / 4) for e in range(-24, 1))  # 1 us .. 1 s, 4 per decade


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
        self._denied_seen: dict[str, int] = {}
        self._forwarded_seen = 0
        for s in ("all", "account", "strategy", "instrument"):
            self.kill.labels(scope=s).set(0)

    def observe_journal_commit(self, seconds: float) -> None:
        self.journal_commit.observe(seconds)

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
