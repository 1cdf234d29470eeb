"""Issue 15, items 1-3: the gateway is the only way to the venue, every command is authorised
by account and strategy ownership, and a sender cannot pick a strategy it does not own."""

from __future__ import annotations

import functools
import types
import weakref

import numpy as np
import pytest

from host.trading.journal import JournaledEngine
from host.trading.matching import (
    CancelOrder,
    EndSession,
    MassCancel,
    MatchingEngine,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
    encode_commands,
)
from host.trading.risk import (
    AccountConfig,
    DenyReason,
    KillScope,
    OrderDenied,
    RiskEngine,
    RiskJournal,
    config_from_dict,
)
from host.trading.risk.config import ConfigError
from host.trading.risk.journal import read_risk_journal
from host.trading.risk.testing import BID, INST, INST2, Harness, acct

# ---------------------------------------------------------------- item 1: no path to the venue


def _reachable(root):
    """Every object reachable from ``root`` by attribute access, without gc and without
    calling anything: ``__dict__``, ``__slots__``, ``dir()`` attributes, bound methods'
    ``__self__``/``__func__``, functions' closures, defaults and ``__wrapped__``, partials,
    containers and array bases. Modules and classes are not entered (their globals reach the
    whole program; that is the import system, not a handle an order source was given)."""
    seen: dict[int, object] = {}
    stack = [root]
    while stack:
        o = stack.pop()
        if id(o) in seen or o is None:
            continue
        seen[id(o)] = o
        if isinstance(o, types.ModuleType | type | str | bytes | int | float | complex):
            continue
        if isinstance(o, list | tuple | set | frozenset):
            stack.extend(o)
            continue
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
            continue
        if isinstance(o, np.ndarray):
            stack.append(o.base)
            continue
        if isinstance(o, types.FunctionType):
            for c in o.__closure__ or ():
                try:
                    stack.append(c.cell_contents)
                except ValueError:  # empty cell
                    pass
            stack.extend([o.__defaults__, o.__kwdefaults__, o.__dict__,
                          getattr(o, "__wrapped__", None)])
            continue
        if isinstance(o, types.MethodType | types.BuiltinMethodType):
            stack.extend([getattr(o, "__self__", None), getattr(o, "__func__", None)])
            continue
        if isinstance(o, functools.partial):
            stack.extend([o.func, o.args, o.keywords])
            continue
        if isinstance(o, weakref.ReferenceType):
            continue  # dereferencing is a call
        d = getattr(o, "__dict__", None)
        if isinstance(d, dict):
            stack.append(d)
        for cls in type(o).__mro__:
            for name in getattr(cls, "__slots__", ()):
                stack.append(getattr(o, name, None))
        for name in dir(o):
            if name.startswith("__") and name not in ("__self__", "__func__", "__wrapped__"):
                continue
            try:
                stack.append(getattr(o, name))
            except Exception:  # noqa: BLE001 - a property that cannot be computed
                pass
    return list(seen.values())


def _venues(objs):
    return [o for o in objs if isinstance(o, MatchingEngine | JournaledEngine | RiskEngine)]


def test_walker_finds_the_venue_from_the_risk_engine():
    """The walker is not blind: from the risk engine (the operator's object) it finds the
    venue, as the old gateway (a ``_risk`` slot) did."""
    h = Harness()
    assert any(o is h.venue for o in _reachable(h.risk))


@pytest.mark.parametrize("journaled", [False, True])
def test_no_attribute_chain_from_the_gateway_to_the_venue(tmp_path, journaled):
    h = Harness()
    if journaled:
        venue, _ = JournaledEngine.open(tmp_path / "v.journal", config=h.venue.config)
        h.risk = RiskEngine(h.cfg, venue, clock=h.risk.clock)
        h.venue = venue
    g = h.risk.gateway(1)
    h.bbo()
    assert g.submit(SubmitOrder(1, INST, 1, Side.BUY, 1, BID, ts=5))[0].__class__.__name__ \
        == "OrderAccepted"
    reach = _reachable(g)
    assert len(reach) > 5
    assert _venues(reach) == []
    assert not any(o is h.venue for o in reach)
    if journaled:
        h.venue.close()


def test_gateway_is_immutable_and_its_principal_read_only():
    h = Harness()
    g = h.risk.gateway(2)
    with pytest.raises(AttributeError):
        g.submit = None
    with pytest.raises(AttributeError):
        g._risk = h.risk
    assert not hasattr(g, "__dict__")
    for arr in (o for o in _reachable(g) if isinstance(o, np.ndarray)):
        with pytest.raises(ValueError):
            arr.flags.writeable = True


def test_gateway_does_not_keep_the_risk_engine_alive():
    h = Harness()
    g = h.risk.gateway(1)
    del h
    import gc

    gc.collect()
    with pytest.raises(RuntimeError, match="gone"):
        g.submit(CancelOrder(1, ts=1))


def test_gateway_of_an_unknown_account_is_refused():
    with pytest.raises(KeyError):
        Harness().risk.gateway(7)


# ---------------------------------------------------------------- item 2: authorisation


@pytest.fixture
def h():
    hh = Harness(accounts=(acct(1), acct(2)))
    hh.bbo()
    hh.bbo(inst=INST2)
    return hh


def _denied(ev):
    assert len(ev) == 1 and isinstance(ev[0], OrderDenied), ev
    return ev[0].reason


def test_cancel_and_replace_of_another_accounts_order_are_denied(h, tmp_path):
    h.risk.journal = RiskJournal(tmp_path / "risk.journal")
    assert h.order(1, Side.BUY, 10, BID, oid=11)[0] == "PASS"
    g2 = h.risk.gateway(2)
    assert _denied(g2.submit(CancelOrder(11, ts=50))) is DenyReason.NOT_AUTHORIZED
    assert _denied(g2.submit(ReplaceOrder(11, 5, ts=51))) is DenyReason.NOT_AUTHORIZED
    assert _denied(g2.submit(ReplaceOrder(11, 50, BID - 5, ts=52))) is DenyReason.NOT_AUTHORIZED
    assert h.venue.order(11) is not None and h.venue.order(11).init_qty == 10
    # the owner may
    g1 = h.risk.gateway(1)
    assert type(g1.submit(ReplaceOrder(11, 5, ts=53))[0]).__name__ == "OrderReplaced"
    assert type(g1.submit(CancelOrder(11, ts=54))[0]).__name__ == "OrderCanceled"
    h.risk.journal.close()
    j = read_risk_journal(tmp_path / "risk.journal")
    assert j.events["reason"].tolist() == [DenyReason.NOT_AUTHORIZED] * 3
    assert j.commands["order_id"].tolist() == [11, 11, 11]


def test_submit_for_another_account_is_denied(h):
    g2 = h.risk.gateway(2)
    ev = g2.submit(SubmitOrder(5, INST, 1, Side.BUY, 1, BID, ts=9))
    assert _denied(ev) is DenyReason.NOT_AUTHORIZED
    assert h.venue.live_orders == 0


def test_cancel_of_an_order_risk_does_not_hold_cancels_nothing(h):
    """Risk's open-order table holds every live order of the venue, so an id it does not hold
    is not live: the cancel goes on and the venue rejects it (as for a finished order)."""
    assert h.order(1, Side.BUY, 10, BID, oid=11)[0] == "PASS"
    ev = h.risk.gateway(2).submit(CancelOrder(999, ts=9))
    assert type(ev[0]).__name__ == "OrderRejected"
    assert h.venue.live_orders == 1 and h.risk.open_orders == 1


def test_mass_cancel_is_scoped_to_the_senders_accounts(h):
    for a, oid in ((1, 21), (2, 22), (2, 23)):
        assert h.order(a, Side.BUY, 10, BID - oid, oid=oid)[0] == "PASS"
    g2 = h.risk.gateway(2)
    assert _denied(g2.submit(MassCancel(ts=60))) is DenyReason.NOT_AUTHORIZED
    assert _denied(g2.submit(MassCancel(instrument=INST, ts=61))) is DenyReason.NOT_AUTHORIZED
    assert _denied(g2.submit(MassCancel(account=1, ts=62))) is DenyReason.NOT_AUTHORIZED
    assert h.venue.live_orders == 3
    ev = g2.submit(MassCancel(account=2, instrument=INST, ts=63))
    assert sorted(e.order_id for e in ev) == [22, 23]
    assert [o.order_id for o in h.venue.open_orders()] == [21]
    assert h.risk.open_orders == 1


def test_end_session_needs_the_operator(h):
    assert h.order(1, Side.BUY, 10, BID, oid=31, tif=TimeInForce.DAY)[0] == "PASS"
    g = h.risk.gateway((1, 2))
    assert _denied(g.submit(EndSession(ts=70))) is DenyReason.NOT_AUTHORIZED
    assert h.venue.live_orders == 1
    ev = h.risk.submit(EndSession(ts=71))  # the operator (the risk engine's holder)
    assert type(ev[0]).__name__ == "OrderExpired"


def test_batch_api_authorises_every_row(h):
    assert h.order(1, Side.BUY, 10, BID, oid=41)[0] == "PASS"
    cmds = encode_commands([
        CancelOrder(41, ts=80),
        ReplaceOrder(41, 20, ts=81),
        MassCancel(ts=82),
        EndSession(ts=83),
        SubmitOrder(42, INST, 1, Side.BUY, 1, BID, ts=84),
        SubmitOrder(43, INST, 2, Side.BUY, 1, BID, ts=85),
    ])
    res = h.risk.gateway(2).process(cmds)
    assert res.reasons.tolist() == [DenyReason.NOT_AUTHORIZED] * 5 + [0]
    assert {o.order_id for o in h.venue.open_orders()} == {41, 43}


# ---------------------------------------------------------------- item 3: strategy binding


def test_a_sender_cannot_escape_a_strategy_kill_switch():
    h = Harness(accounts=(acct(1, strategy=3), acct(2, strategy=4)))
    h.bbo()
    h.risk.engage_kill_switch(KillScope.STRATEGY, 3)
    g = h.risk.gateway(1)
    for strategy in (None, 3):
        assert _denied(g.submit(SubmitOrder(50, INST, 1, Side.BUY, 1, BID, ts=90),
                                strategy=strategy)) is DenyReason.KILL_SWITCH
    # the bypass of the issue: declare someone else's live strategy
    assert _denied(g.submit(SubmitOrder(51, INST, 1, Side.BUY, 1, BID, ts=91), strategy=4)) \
        is DenyReason.STRATEGY_NOT_PERMITTED
    # the operator is bound by the same configuration
    assert h.order(1, Side.BUY, 1, BID, strategy=4)[0] == "STRATEGY_NOT_PERMITTED"
    # ... and in the batch API
    cmds = encode_commands([SubmitOrder(52 + k, INST, 1, Side.BUY, 1, BID - k, ts=92 + k)
                            for k in range(100)])
    assert g.process(cmds, np.full(100, 4)).reasons.tolist() == \
        [DenyReason.STRATEGY_NOT_PERMITTED] * 100
    assert h.venue.live_orders == 0


def test_bound_strategies_pass_and_are_killed_with_their_orders():
    h = Harness(accounts=(acct(1, strategy=3, strategies=(5,)),))
    h.bbo()
    g = h.risk.gateway(1)
    assert type(g.submit(SubmitOrder(60, INST, 1, Side.BUY, 1, BID, ts=100),
                         strategy=5)[0]).__name__ == "OrderAccepted"
    ev = h.risk.engage_kill_switch(KillScope.STRATEGY, 5)
    assert ev[-1].canceled == 1
    assert _denied(g.submit(SubmitOrder(61, INST, 1, Side.BUY, 1, BID, ts=101), strategy=5)) \
        is DenyReason.KILL_SWITCH
    assert type(g.submit(SubmitOrder(62, INST, 1, Side.BUY, 1, BID, ts=102))[0]).__name__ \
        == "OrderAccepted"


def test_strategies_in_the_config():
    cfg = config_from_dict({"accounts": [{"account": 1, "strategy": 2, "strategies": [3, 4]}]})
    assert cfg.account(1).owned_strategies == (2, 3, 4)
    with pytest.raises(ConfigError, match="strategy 64"):
        config_from_dict({"accounts": [{"account": 1, "strategies": [64]}]})
    with pytest.raises(ConfigError, match="strategies"):
        config_from_dict({"accounts": [{"account": 1, "strategies": 3}]})
    with pytest.raises(ConfigError):
        AccountConfig(1, strategies=(-1,))


# ---------------------------------------------------------------- the giant iceberg


def test_the_giant_iceberg_is_denied_for_every_session_account():
    from host.trading.matching import EngineConfig, InstrumentConfig
    from host.trading.session import default_risk_config

    cfg = default_risk_config().with_instruments([1])
    venue = MatchingEngine(EngineConfig(instruments=(
        InstrumentConfig(1, tick=100, min_price=100, max_price=2_000_000),), max_orders=1 << 10))
    risk = RiskEngine(cfg, venue)
    g = risk.gateway([a.account for a in cfg.accounts])
    for a in cfg.accounts:
        for qty in (10**8, 10**7):
            ev = g.submit(SubmitOrder(a.account * 100 + len(str(qty)), 1, a.account, Side.SELL,
                                      qty, 1_100_000, display_qty=1, ts=5))
            assert _denied(ev) in (DenyReason.MAX_ORDER_QTY, DenyReason.MAX_ORDER_NOTIONAL)
    assert venue.live_orders == 0
