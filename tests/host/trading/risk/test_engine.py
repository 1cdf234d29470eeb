"""Kill switch by scope, circuit breaker, journal of denials and risk events."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from host.trading.matching import Side
from host.trading.risk import (
    CircuitBreakerTripped,
    KillScope,
    KillSwitchEngaged,
    RiskEventKind,
    RiskJournal,
    TradingState,
)
from host.trading.risk.journal import read_risk_journal, risk_records
from host.trading.risk.testing import ASK, BID, INST, INST2, Harness, acct


@pytest.fixture
def h():
    # account 2 may also send orders for strategy 3 (issue 15: strategies are bound to accounts)
    hh = Harness(accounts=(acct(1, strategy=3), acct(2, strategy=4, strategies=(3,)),
                           acct(3, strategy=3)))
    hh.bbo()
    hh.bbo(inst=INST2)
    return hh


def _rest(h, n=2):
    """Each account rests n bids on each instrument; returns their ids by account."""
    ids = {}
    for a in (1, 2, 3):
        for inst in (INST, INST2):
            for k in range(n):
                oid = next(h.oid)
                assert h.order(a, Side.BUY, 10, BID - 100 * (k + 1), inst=inst, oid=oid)[0] \
                    == "PASS"
                ids.setdefault(a, []).append(oid)
    return ids


@pytest.mark.parametrize("scope,value,blocked,free", [
    (KillScope.ACCOUNT, 2, [(2, INST)], [(1, INST), (3, INST2)]),
    (KillScope.STRATEGY, 3, [(1, INST), (3, INST2)], [(2, INST)]),
    (KillScope.INSTRUMENT, INST2, [(1, INST2), (2, INST2)], [(1, INST), (3, INST)]),
    (KillScope.ALL, 0, [(1, INST), (2, INST2)], []),
])
def test_kill_switch_scope(h, scope, value, blocked, free):
    _rest(h)
    before = {(o.account, o.instrument) for o in h.venue.open_orders()}
    assert len(h.venue.open_orders()) == 12
    ev = h.risk.engage_kill_switch(scope, value)
    assert isinstance(ev[-1], KillSwitchEngaged)
    left = {(o.account, o.instrument) for o in h.venue.open_orders()}
    for key in before:
        in_scope = (scope is KillScope.ALL or (scope is KillScope.ACCOUNT and key[0] == value)
                    or (scope is KillScope.STRATEGY and key[0] in (1, 3))
                    or (scope is KillScope.INSTRUMENT and key[1] == value))
        assert (key in left) != in_scope, key
    assert ev[-1].canceled == 12 - len(h.venue.open_orders())
    assert h.risk.open_orders == h.venue.live_orders
    for a, inst in blocked:
        assert h.order(a, Side.BUY, 1, BID, inst=inst)[0] == "KILL_SWITCH"
    for a, inst in free:
        assert h.order(a, Side.BUY, 1, BID - 1, inst=inst)[0] == "PASS"
    h.risk.release_kill_switch(scope, value)
    for a, inst in blocked:
        assert h.order(a, Side.BUY, 1, BID - 2, inst=inst)[0] == "PASS"


def test_strategy_of_the_order_overrides_the_account_default(h):
    assert h.order(2, Side.BUY, 1, BID, strategy=3)[0] == "PASS"
    h.risk.engage_kill_switch(KillScope.STRATEGY, 3)
    assert h.venue.live_orders == 0
    assert h.order(2, Side.BUY, 1, BID - 1)[0] == "PASS"          # strategy 4
    assert h.order(2, Side.BUY, 1, BID - 2, strategy=3)[0] == "KILL_SWITCH"


def test_circuit_breaker_trips_at_threshold():
    # capital $100, breaker 100 bps -> loss threshold 10_000 ($1.00)
    h = Harness(accounts=(acct(1, capital=1_000_000, breaker_loss_bps=100), acct(2)))
    h.bbo(1_000_000, 1_000_200)
    h.fill(buyer=1, seller=2, qty=100, px=1_000_100)  # long 100 @ mid
    assert h.order(1, Side.SELL, 5, ASK + 500)[0] == "PASS"     # resting, to be canceled
    ev = h.bbo(999_900, 1_000_100)                    # mid 1_000_000: pnl exactly -10_000
    assert ev == [] and h.risk.account(1).pnl == -10_000
    assert not h.risk.account(1).breaker_tripped
    ev = h.bbo(999_898, 1_000_100)                    # mid 999_999: pnl -10_100
    alerts = [e for e in ev if isinstance(e, CircuitBreakerTripped)]
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.account, a.pnl, a.threshold, a.canceled) == (1, -10_100, 10_000, 1)
    s = h.risk.account(1)
    assert s.state is TradingState.HALTED and s.breaker_tripped
    assert h.venue.live_orders == 0
    assert h.order(1, Side.SELL, 100, ASK)[0] == "TRADING_HALTED"
    ev = h.bbo(999_000, 1_000_100)                    # further losses: no second alert
    assert not [e for e in ev if isinstance(e, CircuitBreakerTripped)]
    h.risk.set_trading_state(TradingState.ACTIVE, account=1)   # operator re-arms
    assert h.order(1, Side.SELL, 100, ASK)[0] == "PASS"


def test_circuit_breaker_on_a_fill_in_the_batch_api():
    from host.trading.matching import SubmitOrder, TimeInForce, encode_commands

    h = Harness(accounts=(acct(1, capital=1_000_000, breaker_loss_bps=100), acct(2)),
                collar=importlib.import_module("host.trading.risk").CollarConfig("none"))
    h.bbo(1_000_000, 1_000_200)
    cmds = encode_commands([
        SubmitOrder(1, INST, 2, Side.SELL, 100, 1_000_300, ts=1),
        SubmitOrder(2, INST, 1, Side.BUY, 100, 1_000_300, tif=TimeInForce.IOC, ts=2),
        SubmitOrder(3, INST, 1, Side.BUY, 1, 900_000, ts=3),
    ])
    res = h.risk.process(cmds)
    # bought 100 at 1_000_300, marked at mid 1_000_100: -20_000 < -10_000 -> tripped;
    # the order of the same batch rested before the fill was known and is canceled
    assert [type(e).__name__ for e in res.risk_events] == ["CircuitBreakerTripped"]
    assert res.risk_events[0].canceled == 1
    assert h.venue.live_orders == 0
    assert h.order(1, Side.SELL, 100, ASK)[0] == "TRADING_HALTED"


def test_risk_journal_and_export(tmp_path):
    h = Harness()
    j = RiskJournal(tmp_path / "risk.journal")
    h.risk.journal = j
    h.bbo()
    assert h.order(1, Side.BUY, 20_000, BID)[0] == "MAX_ORDER_QTY"
    assert h.order(9, Side.BUY, 1, BID)[0] == "UNKNOWN_ACCOUNT"
    h.risk.engage_kill_switch(KillScope.ACCOUNT, 1)
    h.risk.release_kill_switch(KillScope.ACCOUNT, 1)
    j.close()
    c = read_risk_journal(tmp_path / "risk.journal")
    assert c.torn_bytes == 0
    assert c.commands["qty"].tolist() == [20_000, 1]
    kinds = c.events["kind"].tolist()
    assert kinds == [RiskEventKind.DENIED, RiskEventKind.DENIED,
                     RiskEventKind.KILL_SWITCH_ENGAGED, RiskEventKind.KILL_SWITCH_RELEASED]
    assert c.events["seq"].tolist() == [1, 2, 3, 4]
    t = risk_records(c.events)
    assert t.column("reason").to_pylist()[:3] == ["MAX_ORDER_QTY", "UNKNOWN_ACCOUNT", "ACCOUNT"]
    assert t.column("risk_event").to_pylist()[0] == "DENIED"
    # reopening continues the sequence
    j2 = RiskJournal(tmp_path / "risk.journal")
    assert j2.next_seq() == 4
    j2.close()


def test_venue_is_only_called_by_the_risk_engine():
    """The gateway handed to order sources exposes no path to the venue."""
    h = Harness()
    g = h.risk.gateway(1)
    assert not any(isinstance(getattr(g, n, None), type(h.venue)) for n in dir(g))
    assert set(n for n in dir(g) if not n.startswith("__")) == {"accounts", "submit", "process"}
    calls = []
    real = h.venue.process

    def spy(cmds, *a, **k):
        calls.append(h.risk.forwarding)
        return real(cmds, *a, **k)

    h.venue.process = spy
    h.bbo()
    g.submit(__import__("host.trading.matching", fromlist=["SubmitOrder"]).SubmitOrder(
        1, INST, 1, Side.BUY, 1, BID, ts=5))
    assert calls == [True]
    assert np.all(calls)
