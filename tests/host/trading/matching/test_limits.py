"""Regression tests of the engine's edges (issue 15): sizes that could overflow, iceberg memory,
FIFO checks with backward timestamps, replace of pending stops."""

from __future__ import annotations

import numpy as np
import pytest

from host.trading.matching import (
    EngineConfig,
    MatchingEngine,
    OrderType,
    Reason,
    ReplaceOrder,
    Side,
    SubmitOrder,
    core,
    encode_commands,
)
from host.trading.matching.engine import MAX_ICEBERG_SLICES, MAX_ORDER_QTY, MAX_ORDERS

from .conftest import PX, Harness

BIG = 2**62


def test_quantities_that_could_overflow_are_rejected(h: Harness) -> None:
    # two resting orders of 2**62 used to wrap the level total to -2**63
    assert h.sell(1, BIG, PX) == [("REJ", 1, "QTY_ABOVE_MAX")]
    assert h.sell(2, BIG, PX) == [("REJ", 2, "QTY_ABOVE_MAX")]
    assert h.engine.bbo(1).ask is None
    assert h.sell(3, MAX_ORDER_QTY, PX) == [("ACC", 3, MAX_ORDER_QTY)]
    assert h.sell(4, MAX_ORDER_QTY, PX) == [("ACC", 4, MAX_ORDER_QTY)]
    assert h.engine.bbo(1).ask.qty == 2 * MAX_ORDER_QTY
    assert h.sell(5, MAX_ORDER_QTY + 1, PX) == [("REJ", 5, "QTY_ABOVE_MAX")]
    assert h.do(ReplaceOrder(3, MAX_ORDER_QTY + 1)) == [("REJ", 3, "QTY_ABOVE_MAX")]
    assert h.do(ReplaceOrder(3, BIG)) == [("REJ", 3, "QTY_ABOVE_MAX")]
    assert h.sell(6, 2**63 - 1, 0, order_type=OrderType.STOP, stop_price=PX) == [
        ("REJ", 6, "QTY_ABOVE_MAX")]
    with pytest.raises(ValueError):
        EngineConfig(max_orders=MAX_ORDERS + 1)


def test_check_detects_an_overflowed_level() -> None:
    eng = MatchingEngine()
    eng.submit(SubmitOrder(1, 1, 1, Side.SELL, 10, PX, ts=1))
    eng.submit(SubmitOrder(2, 1, 1, Side.SELL, 10, PX, ts=2))
    assert eng.check() == 0
    # the state two 2**62 orders produced before the limit: quantities and a wrapped total
    rows = [int(eng.H[core.hfind(eng.H, eng.S, k), 1]) - 1 for k in (1, 2)]
    for o in rows:
        eng.P[o, core.O_DISP] = BIG
        eng.P[o, core.O_INIT] = BIG
    g = eng.P[rows[0], core.O_LVL]
    eng.L[g, core.L_QTY] = np.int64(-(2**63))  # BIG + BIG wrapped
    assert eng.bbo(1).ask.qty == -(2**63)
    assert eng.check() == 10


def test_iceberg_memory_is_bounded() -> None:
    eng = MatchingEngine()
    # the order of the issue: 10**8 slices of 1 would make every later bound 4e8 events
    ev = eng.submit(SubmitOrder(1, 1, 1, Side.SELL, 10**8, 1_100_000, display_qty=1))
    assert ev[0].reason == Reason.INVALID_DISPLAY_QTY
    # the deepest accepted iceberg: MAX_ICEBERG_SLICES refreshes
    d = 1000
    ev = eng.submit(SubmitOrder(2, 1, 1, Side.SELL, d * (MAX_ICEBERG_SLICES + 1), 1_100_000,
                                display_qty=d))
    assert type(ev[0]).__name__ == "OrderAccepted"
    ev = eng.submit(SubmitOrder(3, 1, 1, Side.SELL, d * (MAX_ICEBERG_SLICES + 1) + 1,
                                1_100_000, display_qty=d))
    assert ev[0].reason == Reason.INVALID_DISPLAY_QTY
    # nine deep icebergs (they all passed the session's risk in the issue)
    for k in range(10, 19):
        eng.submit(SubmitOrder(k, 1, 1, Side.SELL, 10**6, 1_100_000, display_qty=1000))
    rows0 = eng._E.shape[0]
    # small orders need a small buffer whatever rests: the bound follows their quantity
    for k in range(100, 200):
        eng.submit(SubmitOrder(k, 1, 2, Side.BUY, 5, 1_000_000))
        eng.submit(SubmitOrder(k + 1000, 1, 2, Side.BUY, 3, 1_100_000))
    assert eng._E.shape[0] == rows0 == 1 << 16
    assert eng.check() == 0
    # a replace that would make a resting iceberg deeper than the limit is refused
    ev = eng.submit(ReplaceOrder(10, 10**6 + 1000 * MAX_ICEBERG_SLICES))
    assert ev[0].reason == Reason.INVALID_DISPLAY_QTY
    # a sweep through a deep iceberg still emits every fill (the bound is real)
    ev = eng.process(encode_commands([SubmitOrder(7, 1, 3, Side.BUY, 2_000_000, 1_100_000,
                                                  ts=5)]))
    assert int(ev["last_qty"][ev["kind"] == 3].sum()) == 2 * 2_000_000
    assert eng.check() == 0


def test_recover_after_deep_iceberg(tmp_path) -> None:
    from host.trading.journal import JournaledEngine, recover

    je, _ = JournaledEngine.open(tmp_path / "j", config=EngineConfig())
    je.submit(SubmitOrder(1, 1, 1, Side.SELL, 10**8, 1_100_000, display_qty=1))
    je.submit(SubmitOrder(2, 1, 1, Side.SELL, 10**6, 1_100_000, display_qty=1000))
    for k in range(3, 50):
        je.submit(SubmitOrder(k, 1, 2, Side.BUY, 7, 1_100_000))
    expect = je.engine.state_hash()
    je.close()
    eng, rep = recover(tmp_path / "j", config=EngineConfig())
    assert eng.state_hash() == expect and eng._E.shape[0] == 1 << 16


def test_fifo_check_ignores_backward_timestamps() -> None:
    eng = MatchingEngine()
    # arrival order 1, 2, 3 with timestamps going backwards (several senders, one engine)
    cmds = encode_commands([SubmitOrder(k, 1, 1, Side.BUY, 10, PX, ts=ts)
                            for k, ts in ((1, 3000), (2, 2000), (3, 1000))])
    eng.process(cmds)
    assert eng.orders_at(1, Side.BUY, PX) == [1, 2, 3]
    assert eng.check() == 0
    # a queue really out of arrival order is still reported
    r1, r3 = (int(eng.H[core.hfind(eng.H, eng.S, k), 1]) - 1 for k in (1, 3))
    eng.P[r1, core.O_PRIO], eng.P[r3, core.O_PRIO] = eng.P[r3, core.O_PRIO], eng.P[r1, core.O_PRIO]
    assert eng.check() == 8


def test_replacing_a_pending_stop_follows_the_priority_rule(h: Harness) -> None:
    stop = dict(order_type=OrderType.STOP, price=0, stop_price=PX)
    for oid in (1, 2, 3):
        h.do(SubmitOrder(oid, 1, 1, Side.BUY, 10, **stop))
    # a quantity decrease keeps the stop's place in the trigger order ...
    assert h.do(ReplaceOrder(1, 5)) == [("REPL", 1, 0, 5, 5, True)]
    # ... an increase loses it: order 2 now triggers after order 3
    assert h.do(ReplaceOrder(2, 20)) == [("REPL", 2, 0, 20, 20, False)]
    h.sell(10, 100, PX, account=2)
    evs = h.buy(11, 1, PX, account=3)
    assert [e[1] for e in evs if e[0] == "TRIG"] == [1, 3, 2]
    # a stop-limit repriced loses its place too
    for oid in (21, 22):
        h.do(SubmitOrder(oid, 1, 1, Side.SELL, 10, PX - 200, order_type=OrderType.STOP_LIMIT,
                         stop_price=PX - 100))
    assert h.do(ReplaceOrder(21, 10, PX - 300)) == [("REPL", 21, PX - 300, 10, 10, False)]
    h.buy(30, 5, PX - 100, account=4)
    evs = h.sell(31, 5, PX - 100, account=5)
    assert [e[1] for e in evs if e[0] == "TRIG"] == [22, 21]
    assert h.engine.check() == 0
