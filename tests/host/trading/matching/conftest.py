"""Shared helpers for the matching-engine tests."""

from __future__ import annotations

import itertools

import pytest

from host.trading.matching import (
    EngineConfig,
    InstrumentConfig,
    MatchingEngine,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    Side,
    SubmitOrder,
)

PX = 10_000  # $1.00 in Price(4); tick 100


def brief(events) -> list[tuple]:
    """Compact, readable form of an event list for golden comparisons."""
    out = []
    for e in events:
        if isinstance(e, OrderAccepted):
            out.append(("ACC", e.order_id, e.leaves_qty))
        elif isinstance(e, OrderFilled):
            out.append(("FILL", e.order_id, e.last_px, e.last_qty, e.leaves_qty,
                        e.contra_order_id, "M" if e.is_maker else "T"))
        elif isinstance(e, OrderCanceled):
            out.append(("CXL", e.order_id, e.reason.name, e.canceled_qty, e.leaves_qty))
        elif isinstance(e, OrderRejected):
            out.append(("REJ", e.order_id, e.reason.name))
        elif isinstance(e, OrderReplaced):
            out.append(("REPL", e.order_id, e.price, e.init_qty, e.leaves_qty, e.priority_kept))
        elif isinstance(e, OrderExpired):
            out.append(("EXP", e.order_id, e.expired_qty))
        elif isinstance(e, OrderTriggered):
            out.append(("TRIG", e.order_id, e.stop_price))
        else:  # pragma: no cover
            raise AssertionError(e)
    return out


class Harness:
    """An engine with two instruments and a monotonic command clock."""

    def __init__(self, max_orders: int = 1024) -> None:
        self.engine = MatchingEngine(EngineConfig(
            instruments=(InstrumentConfig(1), InstrumentConfig(2)), max_orders=max_orders))
        self._ts = itertools.count(1_000)

    def do(self, cmd) -> list[tuple]:
        """Apply ``cmd`` (its ts replaced by the next clock value); return ``brief`` events."""
        cmd = type(cmd)(**{**{f: getattr(cmd, f) for f in cmd.__dataclass_fields__},
                           "ts": next(self._ts)})
        evs = self.engine.submit(cmd)
        assert self.engine.check() == 0
        return brief(evs)

    def buy(self, oid, qty, px=PX, account=1, instrument=1, **kw) -> list[tuple]:
        return self.do(SubmitOrder(oid, instrument, account, Side.BUY, qty, px, **kw))

    def sell(self, oid, qty, px=PX, account=2, instrument=1, **kw) -> list[tuple]:
        return self.do(SubmitOrder(oid, instrument, account, Side.SELL, qty, px, **kw))


@pytest.fixture
def h() -> Harness:
    return Harness()
