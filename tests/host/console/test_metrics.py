"""``/metrics``: the names the Grafana board reads, with the session's own values."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from host.console.metrics import METRIC_NAMES

from .conftest import TOKEN

BOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "itchfpga.json"


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
        if fam == "itchfpga_card_counter":  # labelled by the sim card's counters only
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
                 "itchfpga_journal_commit_seconds"):
        assert need in used
