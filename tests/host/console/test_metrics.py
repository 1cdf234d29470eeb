"""``/metrics``: the names the Grafana board reads, with the session's own values."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from host.console.metrics import METRIC_NAMES

from .conftest import TOKEN

BOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "itchfpga.json"

_SIM_ONLY = ("itchfpga_card_counter", "itchfpga_card_latency_cycles",
             "itchfpga_card_replay_per_second")
"""Families with series only with ``--card sim`` (the card's counters, latency, rates)."""


def _scrape(client) -> dict:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_scrape_has_every_family_and_the_session_values(client, live):
    for _ in range(40):
        live.step()
    r = client.post("/api/kill", json={"scope": "strategy", "value": 1, "engage": True},
                    headers={"X-Console-Token": TOKEN})
    assert r.status_code == 200
    assert not live.finished
    for _ in range(10):
        live.step()
    m = _scrape(client)
    names = {n for n, _ in m}
    for fam in METRIC_NAMES:
        if fam in _SIM_ONLY or fam == "itchfpga_store_rows_total":  # --card sim / --store
            continue
        assert any(n == fam or n.startswith(fam + "_") or n == fam.removesuffix("_total")
                   for n in names), fam
    assert m[("itchfpga_card_records_total", ())] == live.pos
    assert m[("itchfpga_card_messages_total", ())] == live.msg_pos
    assert m[("itchfpga_risk_orders_total", ())] == live.submitted
    assert m[("itchfpga_risk_forwarded_total", ())] == live.risk.forwarded
    assert m[("itchfpga_venue_fills_total", ())] == live.fills
    assert m[("itchfpga_venue_accepted_total", ())] == live.accepted > 0
    denied = live.risk.denied_counts()
    assert denied.get("KILL_SWITCH", 0) > 0
    for reason, n in denied.items():
        assert m[("itchfpga_risk_denials_total", (("reason", reason),))] == n
    assert m[("itchfpga_risk_kill_switches", (("scope", "strategy"),))] == 1
    assert m[("itchfpga_risk_kill_switches", (("scope", "all"),))] == 0
    assert m[("itchfpga_console_actions_total", (("action", "kill"),))] == 1
    assert 0 < m[("itchfpga_replay_progress", ())] <= 1
    # histograms: one observation per market-data chunk, per order batch, per journal commit
    md = m[("itchfpga_host_latency_seconds_count", (("stage", "market_data"),))]
    assert md == live.steps == int(sum(live.hist["market_data"]))
    jc = m[("itchfpga_journal_commit_seconds_count", ())]
    assert jc == int(sum(live.hist["journal_commit"])) > 0
    assert m[("itchfpga_host_latency_seconds_count", (("stage", "journal_commit"),))] == jc
    # the model card has no clock, latency or replay rates; without a store its families are 0
    assert m[("itchfpga_card_clock_hz", ())] == 0
    assert not any(n.startswith(("itchfpga_card_latency_cycles", "itchfpga_card_replay_"))
                   for n in names)
    for fam in ("queue_items", "queue_capacity", "pending_rows", "batches_total",
                "producer_blocked_seconds_total", "failed"):
        assert m[(f"itchfpga_store_{fam}", ())] == 0, fam
    assert not any(n == "itchfpga_store_rows_total" for n in names)


def _client(live, metrics):
    from starlette.testclient import TestClient

    from host.console.app import create_app

    app = create_app(live, token=TOKEN, metrics=metrics, hz=50, start=False,
                     allowed_hosts=("127.0.0.1", "localhost", "testserver"))
    return TestClient(app, base_url="http://127.0.0.1:8000")


def _settled(w, timeout=30.0):
    """Wait until the writer has written everything it was given (queue and pending empty)."""
    t0 = time.monotonic()
    while w.q.qsize() or w.pending_rows:
        assert time.monotonic() - t0 < timeout, "the store writer did not settle"
        time.sleep(0.02)
    time.sleep(0.05)  # the last batch's counters are updated after its write returns


def test_store_writer_metrics_equal_the_rows_in_the_store(market, tmp_path):
    """``serve --store``: queue depth, batches and rows written by table, as the store holds
    them, half way through the replay and at the end."""
    from host.console.live import LiveConfig, LiveSession
    from host.console.metrics import ConsoleMetrics
    from host.store import ParquetStore
    from host.store.live import StoreWriter

    metrics = ConsoleMetrics()
    w = StoreWriter(ParquetStore(tmp_path / "st"), "metrics-run", str(tmp_path / "j"),
                    source=market, batch_rows=2000, flush_s=0.05, queue_items=64)
    live = LiveSession(LiveConfig(input=market, out_dir=str(tmp_path / "j"), speed=0,
                                  chunk=16), metrics=metrics, store_sink=w)
    metrics.attach_store(w)
    reader = ParquetStore(tmp_path / "st")

    def check(client):
        _settled(w)
        m = _scrape(client)
        rows = {dict(k)["table"]: v for (n, k), v in m.items() if n == "itchfpga_store_rows_total"}
        assert rows == w.written and rows["md_bbo"] == live.pos
        reader._db = None  # new files since the last query
        for t, n in rows.items():
            assert reader.query(f"SELECT COUNT(*) FROM {t}")[1][0][0] == n, t
        assert m[("itchfpga_store_batches_total", ())] == w.batches > 0
        assert m[("itchfpga_store_queue_items", ())] == 0
        assert m[("itchfpga_store_pending_rows", ())] == 0
        assert m[("itchfpga_store_queue_capacity", ())] == 64
        assert m[("itchfpga_store_failed", ())] == 0
        assert m[("itchfpga_store_producer_blocked_seconds_total", ())] == w.blocked_s
        return rows

    try:
        with _client(live, metrics) as client:
            while live.pos < live.n_records // 2:
                live.step()
            half = check(client)
            assert 0 < half["journal_events"] and half["md_bbo"] < live.n_records
            while live.step():
                pass
            end = check(client)
            assert end["md_bbo"] == live.n_records and end["fills"] > 0
            assert end["journal_events"] > half["journal_events"]
    finally:
        live.stop()
        w.close()
        reader.close()


def _sim_card_built() -> str | None:
    from host.card.sim import ModelNotBuilt, card_library

    try:
        card_library(allow_build=False)
    except ModelNotBuilt as e:
        return f"the simulated card is not built (it takes minutes; not built here): {e}"
    return None


def test_simulated_card_latency_and_rates(tmp_path):
    """``--card sim``: the latency histogram fills as records are applied (half way: the
    latencies of the records applied so far), and at the end holds every record's latency
    of an independent replay of the same input (count, sum and buckets per ITCH type); the
    replay rates are its records and messages per second of card clock."""
    why = _sim_card_built()
    if why:
        pytest.skip(why)
    import numpy as np

    from host.card.replay import open_sim_card, replay_through_card
    from host.card.report import latency_by_type
    from host.cli import main
    from host.console.live import LiveConfig, LiveSession
    from host.console.metrics import CYCLE_BUCKETS, ConsoleMetrics
    from host.feed.capture import load_feed

    src = tmp_path / "m.itch"
    assert main(["generate", "--messages", "3000", "--symbols", "3", "--seed", "5",
                 "--out", str(src)]) == 0
    metrics = ConsoleMetrics()
    live = LiveSession(LiveConfig(input=str(src), out_dir=str(tmp_path / "j"), card="sim",
                                  speed=0, chunk=64, clock_hz=250e6), metrics=metrics)
    card = open_sim_card(allow_build=False)  # the reference: the same replay, run again
    try:
        rp = replay_through_card(card, load_feed(str(src)), live.locates, latency=True)
    finally:
        card.close()
    ref = latency_by_type(rp)
    assert ref and sum(len(v) for v in ref.values()) > 100

    def hist(m):
        out = {}
        for (n, k), v in m.items():
            if n.startswith("itchfpga_card_latency_cycles_"):
                d = dict(k)
                out.setdefault(d["type"], {})[n.rsplit("_", 1)[1] + d.get("le", "")] = v
        return out

    try:
        with _client(live, metrics) as client:
            m = _scrape(client)
            assert hist(m) == {}  # nothing applied yet
            assert m[("itchfpga_card_clock_hz", ())] == 250e6  # --clock-mhz, not the nominal
            card_s = rp.run.cycles / 250e6
            for what, n in (("records", len(rp.recs)), ("messages", rp.feed.n_messages)):
                got = m[("itchfpga_card_replay_per_second", (("clock", "card"),
                                                               ("what", what)))]
                assert got == pytest.approx(n / card_s, rel=1e-9)
                assert m[("itchfpga_card_replay_per_second", (("clock", "wall"),
                                                             ("what", what)))] > 0
            half = len(live.records) // 2
            while live.pos < half:
                live.step()
            h = hist(_scrape(client))
            applied = sum(v["count"] for v in h.values())
            assert 0 < applied < sum(len(v) for v in ref.values())
            while live.step():
                pass
            h = hist(_scrape(client))
    finally:
        live.stop()
    assert set(h) == set(ref)
    for t, v in ref.items():
        assert h[t]["count"] == len(v) and h[t]["sum"] == int(v.sum()), t
        for b in CYCLE_BUCKETS:
            assert h[t][f"bucket{float(b)}"] == int((v <= b).sum()), (t, b)
        assert h[t]["bucket+Inf"] == len(v)
    # and the page's summary is the same measurement
    allv = np.concatenate(list(ref.values()))
    assert live.card_latency["n"] == len(allv) and live.card_latency["max"] == allv.max()


def test_grafana_board_reads_only_exported_names():
    board = json.loads(BOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert len(board["panels"]) >= 10
    used = set()
    for e in exprs:
        for name in re.findall(r"\bitchfpga_[a-z_]+", e):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert base in METRIC_NAMES, f"{name} in {e!r} is not exported"
            used.add(base)
    # the board shows every family the issue asks for
    for need in ("itchfpga_card_records_total", "itchfpga_card_counter",
                 "itchfpga_host_latency_seconds", "itchfpga_risk_denials_total",
                 "itchfpga_journal_commit_seconds", "itchfpga_card_latency_cycles",
                 "itchfpga_card_clock_hz", "itchfpga_card_replay_per_second",
                 "itchfpga_store_queue_items", "itchfpga_store_pending_rows",
                 "itchfpga_store_batches_total", "itchfpga_store_rows_total",
                 "itchfpga_store_failed"):
        assert need in used


def test_no_card_clock_rates_without_a_closed_clock(monkeypatch):
    """Without ``--clock-mhz`` the card-clock rates and the ns are left out (the nominal clock
    is not timing-closed); the wall-clock rates stay."""
    from types import SimpleNamespace

    import numpy as np

    import host.card.report as report
    from host.console.live import card_latency
    from host.console.metrics import ConsoleMetrics

    metrics = ConsoleMetrics()
    metrics.set_card_replay(0, 1_000_000, 2.0, 10, 40)
    assert metrics.collected.clk_hz == 0
    assert set(metrics.collected.rates) == {("records", "wall"), ("messages", "wall")}
    metrics.set_card_replay(200e6, 1_000_000, 2.0, 10, 40)
    assert metrics.collected.rates[("messages", "card")] == pytest.approx(40 / 0.005)
    # the page's summary: a note instead of ns at the nominal clock (latencies given here:
    # the replay's measurement is tested with the simulated card above)
    monkeypatch.setattr(report, "latency_by_type", lambda _rp: {"A": np.array([18, 20, 25])})
    rp = SimpleNamespace(clk_hz=322_265_625)
    lat = card_latency(rp)
    assert lat["clk_hz"] == 0 and "not timing-closed" in lat["ns_note"]
    assert "322.27 MHz" in lat["ns_note"] and lat["nominal_hz"] == 322_265_625
    assert (lat["min"], lat["max"]) == (18, 25)
    assert card_latency(rp, 250e6)["ns_note"] == ""
