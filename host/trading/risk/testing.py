"""Test and example helpers: a small venue behind a risk engine, card BBO records, one-line
orders (used by ``tests/host/trading/risk``)."""

from __future__ import annotations

import itertools

import numpy as np

from host.trading.matching import (
    EngineConfig,
    InstrumentConfig,
    MatchingEngine,
    OrderType,
    Side,
    SubmitOrder,
    TimeInForce,
)
from host.trading.risk import (
    AccountConfig,
    InstrumentRiskConfig,
    OrderDenied,
    RiskConfig,
    RiskEngine,
)
from hw import bbo_record

INST = 5
INST2 = 6
BID = 1_000_000  # $100.00
ASK = 1_000_200  # $100.02 -> floor mid 1_000_100


def acct(account: int, **kw) -> AccountConfig:
    """An account with the duplicate and rate checks off unless asked for."""
    base = dict(duplicate_window_ns=0, max_orders_per_window=0)
    base.update(kw)
    return AccountConfig(account, **base)


class Harness:
    """A risk engine over a tick-1 matching engine (instruments 5 and 6)."""

    def __init__(self, accounts=None, instruments=None, **kw):
        accounts = accounts or (acct(1), acct(2))
        instruments = instruments or (InstrumentRiskConfig(INST), InstrumentRiskConfig(INST2))
        self.cfg = RiskConfig(accounts=tuple(accounts), instruments=tuple(instruments), **kw)
        venue = MatchingEngine(EngineConfig(
            instruments=tuple(InstrumentConfig(i.instrument, tick=1, min_price=1,
                                               max_price=1_200_000) for i in instruments),
            max_orders=1 << 12))
        self.venue = venue
        self.ts = itertools.count(1_000)
        self.risk = RiskEngine(self.cfg, venue, clock=lambda: next(self.ts))
        self.oid = itertools.count(1)

    def bbo(self, bid=BID, ask=ASK, inst=INST, flags=None):
        rec = np.zeros(1, bbo_record.DTYPE)
        rec["locate"] = inst
        rec["bid_px"] = bid
        rec["ask_px"] = ask
        if flags is None:
            flags = (bbo_record.FLAG_BID_VALID if bid else 0) | (
                bbo_record.FLAG_ASK_VALID if ask else 0)
        rec["flags"] = flags
        rec["ts_event"] = next(self.ts)
        return self.risk.on_market_data(rec)

    def order(self, account, side, qty, px, *, inst=INST, ts=None, oid=None, strategy=None,
              otype=OrderType.LIMIT, tif=TimeInForce.GTC):
        """Submit; return (reason name or 'PASS', events)."""
        cmd = SubmitOrder(oid or next(self.oid), inst, account, Side(side), qty, px,
                          order_type=otype, tif=tif,
                          ts=ts if ts is not None else next(self.ts))
        ev = self.risk.submit(cmd, strategy=strategy)
        if len(ev) == 1 and isinstance(ev[0], OrderDenied):
            return ev[0].reason.name, ev
        return "PASS", ev

    def fill(self, buyer, seller, qty, px, inst=INST):
        """A trade: ``seller`` rests a sell, ``buyer`` takes it (both must pass risk)."""
        r1, _ = self.order(seller, Side.SELL, qty, px, inst=inst)
        r2, ev = self.order(buyer, Side.BUY, qty, px, inst=inst, tif=TimeInForce.IOC)
        assert (r1, r2) == ("PASS", "PASS"), (r1, r2)
        return ev
