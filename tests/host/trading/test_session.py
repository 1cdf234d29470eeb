"""End-to-end session: card -> risk -> journaled matching engine (model card; sim if built)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from host.trading.journal import read_journal, recover
from host.trading.matching import MatchingEngine
from host.trading.session import LOSER, MAKER, run_session

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def itch(tmp_path_factory):
    from host.feed.files import write_file
    from host.feed.generator import generate

    p = tmp_path_factory.mktemp("sess") / "day.itch"
    write_file(str(p), generate(60_000, 8, 1))
    return p


@pytest.fixture(scope="module")
def run(itch, tmp_path_factory):
    """One session with a spy on the matching engine: who called it, with which orders."""
    calls = []
    real = MatchingEngine.process
    holder = {}

    def spy(self, commands, *a, **k):
        risk = holder.get("risk")
        calls.append((risk is not None and risk.forwarding, commands.copy()))
        return real(self, commands, *a, **k)

    import host.trading.risk.engine as reng

    orig_init = reng.RiskEngine.__init__

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        holder["risk"] = self

    MatchingEngine.process = spy
    reng.RiskEngine.__init__ = init
    try:
        out = tmp_path_factory.mktemp("out")
        rep = run_session(itch, card="model", out_dir=out)
    finally:
        MatchingEngine.process = real
        reng.RiskEngine.__init__ = orig_init
    return rep, out, calls


def test_session_exercises_every_scenario(run):
    rep, out, _ = run
    d = rep.denied
    for reason in ("RATE_LIMIT", "MAX_ORDER_QTY", "PRICE_COLLAR", "DUPLICATE_ORDER",
                   "KILL_SWITCH", "DAILY_LOSS_LIMIT"):
        assert d.get(reason, 0) > 0, (reason, d)
    assert rep.risk_events["KillSwitchEngaged"] == 2
    assert rep.risk_events["KillSwitchReleased"] == 2
    assert rep.trades > 0
    tripped = [e for e in rep.risk.risk_events if type(e).__name__ == "CircuitBreakerTripped"]
    assert LOSER in {e.account for e in tripped}
    assert rep.risk.account(LOSER).state.name == "HALTED"
    # the maker's orders were canceled by the strategy kill switch
    engaged = [e for e in rep.risk.risk_events if type(e).__name__ == "KillSwitchEngaged"
               and e.scope.name == "STRATEGY"]
    assert engaged[0].value == MAKER and engaged[0].canceled > 0
    text = "\n".join(rep.lines())
    assert "denied by reason" in text and "loser" in text


def test_only_risk_calls_the_engine_and_denied_orders_never_reach_it(run):
    rep, out, calls = run
    assert calls and all(fwd for fwd, _ in calls)
    sent = np.concatenate([c for _, c in calls])
    j = read_journal(out / "risk.journal")
    denied_ids = set(j.commands["order_id"][j.commands["kind"] == 1].tolist())
    assert len(denied_ids) == sum(rep.denied.values())
    assert not denied_ids & set(sent["order_id"][sent["kind"] == 1].tolist())
    assert len(sent) == rep.forwarded


def test_journal_recovers_and_exports(run):
    rep, out, _ = run
    vj = read_journal(out / "venue.journal")

    eng, report = recover(out / "venue.journal", config=rep.risk._venue.engine.config)
    assert report.events_checked == len(vj.events) > 0
    t = pq.read_table(out / "orders.parquet")
    assert t.num_rows == len(vj.events)
    r = pq.read_table(out / "risk.parquet")
    assert r.num_rows == len(read_journal(out / "risk.journal").events)
    assert "RATE_LIMIT" in r.column("reason").to_pylist()
    assert (out / "orders.csv").stat().st_size > 0


def test_stale_book_denies_end_to_end(itch, tmp_path):
    rep = run_session(itch, card="model", out_dir=tmp_path, drop_packets=[30, 120],
                      kill_switch=False, export=False)
    assert rep.risk_events.get("ReferenceStale", 0) > 0
    assert rep.denied.get("STALE_REFERENCE", 0) > 0


def test_cli_session(itch, tmp_path, capsys):
    from host.cli import main

    assert main(["session", str(itch), "--out", str(tmp_path), "--no-progress",
                 "--config", str(ROOT / "examples" / "risk.toml")]) == 0
    o = capsys.readouterr().out
    assert "orders submitted" in o and "liquidity provider" in o
    assert main(["session", str(itch), "--card", "nope"]) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nfoo = 1\n")
    assert main(["session", str(itch), "--config", str(bad)]) == 1
    assert "unknown key" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("hw.top") is None,
                    reason="hw/top.py (the card's top level) is not in this tree yet: the "
                           "simulated card cannot be built")
def test_session_on_the_simulated_card(itch, tmp_path, run):
    rep = run_session(itch, card="sim", out_dir=tmp_path, export=False)
    assert rep.records > 0 and rep.trades > 0
    # the simulated card's BBO records drive the same session as the model card's
    model = run[0]
    assert rep.records == model.records
    skip = ("card:", "seconds", "venue journal", "risk journal", "exports")
    same = [ln for ln in rep.lines() if not ln.startswith(skip)]
    assert same == [ln for ln in model.lines() if not ln.startswith(skip)]
