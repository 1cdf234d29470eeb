"""Issue 15, item 6: a venue recovered from its journal no longer sits behind an empty risk
engine (2000 shares live against a 1000 limit): risk state is rebuilt from the journals."""

from __future__ import annotations

import itertools

import pytest

from host.trading.journal import JournaledEngine
from host.trading.matching import (
    EngineConfig,
    InstrumentConfig,
    OrderType,
    Side,
    SubmitOrder,
    TimeInForce,
)
from host.trading.risk import (
    InstrumentRiskConfig,
    KillScope,
    RiskConfig,
    RiskEngine,
    RiskJournal,
    TradingState,
)
from host.trading.risk.testing import ASK, BID, INST, INST2, acct

ECFG = EngineConfig(instruments=tuple(InstrumentConfig(i, tick=1, min_price=1,
                                                       max_price=1_200_000)
                                      for i in (INST, INST2)), max_orders=1 << 12)
CFG = RiskConfig(accounts=(acct(1, max_position=1000, strategy=3, strategies=(7,)),
                           acct(2, max_position=10**6, max_order_qty=10**6), acct(4)),
                 instruments=(InstrumentRiskConfig(INST), InstrumentRiskConfig(INST2)))


class Run:
    """A risk engine over a journaled venue, both journals in ``d``."""

    def __init__(self, d, recover=False):
        self.vj, self.rj = d / "venue.journal", d / "risk.journal"
        self.venue, _ = JournaledEngine.open(self.vj, config=ECFG)
        self.journal = RiskJournal(self.rj)
        self.ts = itertools.count(10**9 if recover else 1_000)
        clock = lambda: next(self.ts)  # noqa: E731
        if recover:
            self.risk = RiskEngine.recover(CFG, self.venue, venue_journal=self.vj,
                                           risk_journal=self.rj, journal=self.journal,
                                           clock=clock)
        else:
            self.risk = RiskEngine(CFG, self.venue, journal=self.journal, clock=clock)
        self.oid = itertools.count(1000 if recover else 1)

    def bbo(self):
        from host.trading.risk.testing import Harness

        Harness.bbo(self, inst=INST)  # same records as the harness

    def order(self, a, side, qty, px, **kw):
        ev = self.risk.submit(SubmitOrder(kw.pop("oid", None) or next(self.oid), INST, a,
                                          side, qty, px, ts=next(self.ts), **kw),
                              strategy=kw.pop("strategy", None))
        return type(ev[0]).__name__ if len(ev) != 1 or type(ev[0]).__name__ != "OrderDenied" \
            else ev[0].reason.name

    def close(self):
        self.venue.close()
        self.journal.close()


def _first_day(d):
    r = Run(d)
    r.bbo()
    assert r.order(2, Side.SELL, 600, BID) == "OrderAccepted"
    assert r.order(1, Side.BUY, 600, BID, tif=TimeInForce.IOC) == "OrderAccepted"  # filled
    assert r.order(1, Side.BUY, 300, BID - 100) == "OrderAccepted"                 # rests
    ev = r.risk.submit(SubmitOrder(77, INST, 1, Side.BUY, 50, BID - 200, ts=next(r.ts)),
                       strategy=7)
    assert type(ev[0]).__name__ == "OrderAccepted"
    assert r.order(1, Side.BUY, 50, 0, order_type=OrderType.STOP, stop_price=ASK + 500) \
        == "StopHeld"
    p = r.risk.position(1, INST)
    assert (p.qty, p.open_buy) == (600, 400)
    assert r.order(1, Side.BUY, 1, BID - 300) == "POSITION_LIMIT"  # 600 + 400 = the limit
    r.risk.engage_kill_switch(KillScope.ACCOUNT, 4)
    r.risk.set_trading_state(TradingState.REDUCING, instrument=INST2)
    r.close()
    return p


def test_a_fresh_risk_engine_refuses_a_used_venue(tmp_path):
    _first_day(tmp_path)
    venue, _ = JournaledEngine.open(tmp_path / "venue.journal", config=ECFG)
    with pytest.raises(ValueError, match="recover"):
        RiskEngine(CFG, venue)
    venue.close()


def test_run_stop_recover_the_limit_still_binds(tmp_path):
    before = _first_day(tmp_path)
    r = Run(tmp_path, recover=True)
    p = r.risk.position(1, INST)
    assert (p.qty, p.open_buy, p.cost, p.realized) == (before.qty, before.open_buy,
                                                       before.cost, before.realized)
    assert r.risk.held_stops() == [r.risk.held_stops()[0]] and len(r.risk.held_stops()) == 1
    assert r.risk.open_orders == 3  # two resting + the held stop
    r.bbo()
    assert r.order(1, Side.BUY, 1, BID - 300) == "POSITION_LIMIT"
    # kill switch and trading state came back
    assert r.order(4, Side.BUY, 1, BID - 300) == "KILL_SWITCH"
    ev = r.risk.submit(SubmitOrder(5000, INST2, 2, Side.BUY, 1, BID, ts=next(r.ts)))
    assert ev[0].reason.name in ("TRADING_REDUCING", "NO_REFERENCE_PRICE")
    # the strategy of the order sent with strategy=7 came back: its kill switch cancels it
    ev = r.risk.engage_kill_switch(KillScope.STRATEGY, 7)
    assert ev[-1].canceled == 1 and r.venue.engine.order(77) is None
    # selling down frees the limit again (the open orders and fills are the real ones)
    assert r.order(2, Side.BUY, 600, ASK) == "OrderAccepted"
    assert r.order(1, Side.SELL, 600, ASK, tif=TimeInForce.IOC) == "OrderAccepted"
    assert r.risk.position(1, INST).qty == 0
    r.close()


def test_recovered_breaker_and_account_state(tmp_path):
    r = Run(tmp_path)
    r.risk.set_trading_state(TradingState.HALTED, account=1)
    r.close()
    r = Run(tmp_path, recover=True)
    r.bbo()
    assert r.order(1, Side.BUY, 1, BID) == "TRADING_HALTED"
    r.close()


def test_recover_refuses_a_venue_with_orders_it_cannot_own(tmp_path):
    """Cancels of ids risk does not hold go on to the venue, so recovery must hold every live
    order: a live order of an account the configuration lost is refused."""
    _first_day(tmp_path)
    small = RiskConfig(accounts=(acct(2), acct(4)), instruments=CFG.instruments)  # no 1
    venue, _ = JournaledEngine.open(tmp_path / "venue.journal", config=ECFG)
    with pytest.raises(ValueError, match="does not know"):
        RiskEngine.recover(small, venue, venue_journal=tmp_path / "venue.journal")
    venue.close()


def test_recover_without_a_risk_journal(tmp_path):
    _first_day(tmp_path)
    venue, _ = JournaledEngine.open(tmp_path / "venue.journal", config=ECFG)
    r = RiskEngine.recover(CFG, venue, venue_journal=tmp_path / "venue.journal")
    p = r.position(1, INST)
    assert (p.qty, p.open_buy) == (600, 350)   # the held stop needs the risk journal
    venue.close()
