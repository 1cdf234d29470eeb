"""Issue 15, items 4 and 5: market orders are collared (they used to fill at the venue book,
2.08x the notional limit, 100 % above the reference); stop prices are collared at entry and a
triggered stop is checked again, as a new order, at trigger time."""

from __future__ import annotations

import pytest

from host.trading.matching import (
    CancelOrder,
    EndSession,
    EventKind,
    MassCancel,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
    encode_commands,
)
from host.trading.risk import (
    CollarConfig,
    DenyReason,
    KillScope,
    OrderDenied,
    StopCanceled,
    StopHeld,
    StopReleased,
    TradingState,
)
from host.trading.risk.testing import ASK, BID, INST, Harness, acct

MID = (BID + ASK) // 2
BAND = MID * 500 // 10_000           # default collar: 5 %
BUY_COLLAR = (MID + BAND) // 100 * 100   # on the risk tick (100)
SELL_COLLAR = -(-(MID - BAND) // 100) * 100


def _names(ev):
    return [type(e).__name__ for e in ev]


# ---------------------------------------------------------------- item 4: market orders


def _far_book(h, side):
    """Account 2 rests 100 shares 15 % above (sell) / 50 % below (buy) the reference, placed
    while the card quoted there; then the card moves back to BID x ASK."""
    if side == Side.SELL:
        h.bbo(1_150_000, 1_150_200)
        assert h.order(2, Side.SELL, 100, 1_150_100)[0] == "PASS"
    else:
        h.bbo(BID // 2, ASK // 2)
        assert h.order(2, Side.BUY, 100, BID // 2 + 50)[0] == "PASS"
    h.bbo()


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_market_order_cannot_fill_outside_the_collar(side):
    h = Harness()
    _far_book(h, Side.SELL if side == Side.BUY else Side.BUY)
    r, ev = h.order(1, side, 100, 0, otype=OrderType.MARKET)
    assert r == "PASS"
    assert not [e for e in ev if type(e).__name__ == "OrderFilled"]
    acc = ev[0]
    assert type(acc).__name__ == "OrderAccepted"
    # forwarded as a marketable limit at the edge of the collar, never resting
    assert acc.order_type == OrderType.LIMIT
    assert acc.price == (BUY_COLLAR if side == Side.BUY else SELL_COLLAR)
    assert acc.tif == TimeInForce.IOC
    assert h.risk.position(1, INST).qty == 0 and h.venue.live_orders == 1
    assert h.risk.open_orders == 1


def test_market_order_fills_inside_the_collar():
    h = Harness()
    h.bbo()
    assert h.order(2, Side.SELL, 100, ASK)[0] == "PASS"
    r, ev = h.order(1, Side.BUY, 100, 0, otype=OrderType.MARKET)
    fills = [e for e in ev if type(e).__name__ == "OrderFilled"]
    assert r == "PASS" and fills and fills[0].last_px == ASK
    assert h.risk.position(1, INST).qty == 100 and h.risk.open_orders == 0


def test_market_order_notional_is_taken_at_the_collar_price():
    # the far side of the BBO (1_000_200 x 100) is inside the limit, the collar price is not
    h = Harness(accounts=(acct(1, max_order_notional=100 * 1_040_000), acct(2)))
    _far_book(h, Side.SELL)
    assert h.order(1, Side.BUY, 100, 0, otype=OrderType.MARKET)[0] == "MAX_ORDER_NOTIONAL"
    assert h.risk.position(1, INST).qty == 0
    assert h.order(1, Side.BUY, 99, 0, otype=OrderType.MARKET)[0] == "PASS"


def test_market_order_keeps_fok_and_batch_api_converts_the_same():
    h = Harness()
    _far_book(h, Side.SELL)
    res = h.risk.process(encode_commands([
        SubmitOrder(900, INST, 1, Side.BUY, 10, order_type=OrderType.MARKET,
                    tif=TimeInForce.FOK, ts=5_000),
        SubmitOrder(901, INST, 1, Side.BUY, 10, order_type=OrderType.MARKET, ts=5_001)]))
    ev = res.events
    assert res.reasons.tolist() == [0, 0] and len(ev)
    assert (ev["order_type"] == OrderType.LIMIT).all() and (ev["price"] == BUY_COLLAR).all()
    assert ev["tif"][ev["order_id"] == 900].tolist()[0] == TimeInForce.FOK
    assert ev["tif"][ev["order_id"] == 901].tolist()[0] == TimeInForce.IOC
    assert not (ev["kind"] == EventKind.FILLED).any()
    assert h.risk.open_orders == h.venue.live_orders == 1


def test_market_order_without_reference_is_denied():
    h = Harness()
    assert h.order(1, Side.BUY, 1, 0, otype=OrderType.MARKET)[0] == "NO_REFERENCE_PRICE"


def test_collar_none_keeps_the_far_side_notional():
    h = Harness(collar=CollarConfig("none"))
    h.bbo()
    assert h.order(2, Side.SELL, 10, ASK)[0] == "PASS"
    r, ev = h.order(1, Side.BUY, 10, 0, otype=OrderType.MARKET)
    assert r == "PASS" and ev[0].order_type == OrderType.MARKET


# ---------------------------------------------------------------- item 5: stops


def _stop_cmd(h, account, side, qty, stop, limit, tif, oid):
    cmd = SubmitOrder(oid or next(h.oid), INST, account, side, qty, limit,
                      order_type=OrderType.STOP_LIMIT if limit else OrderType.STOP, tif=tif,
                      stop_price=stop, ts=next(h.ts))
    return h.risk.submit(cmd)


@pytest.fixture
def h():
    hh = Harness(accounts=(acct(1, max_position=1_000), acct(2), acct(3)))
    hh.bbo()
    return hh


def test_stop_price_is_collared_at_entry(h):
    ev = _stop_cmd(h, 1, Side.BUY, 10, MID + BAND + 1, 0, TimeInForce.GTC, None)
    assert ev[0].reason is DenyReason.PRICE_COLLAR
    ev = _stop_cmd(h, 1, Side.SELL, 10, MID - BAND - 1, 0, TimeInForce.GTC, None)
    assert ev[0].reason is DenyReason.PRICE_COLLAR
    ev = _stop_cmd(h, 1, Side.BUY, 10, ASK, MID + BAND + 1, TimeInForce.GTC, None)
    assert ev[0].reason is DenyReason.PRICE_COLLAR          # the stop limit's limit price
    ev = _stop_cmd(h, 1, Side.BUY, 10, MID + BAND, 0, TimeInForce.GTC, 70)
    assert _names(ev) == ["StopHeld"] and ev[0].stop_price == MID + BAND
    # held by risk, not at the venue; reserved against the position limit
    assert h.venue.live_orders == 0 and h.risk.held_stops() == [70]
    assert h.risk.position(1, INST).open_buy == 10
    assert h.order(1, Side.BUY, 991, BID)[0] == "POSITION_LIMIT"


def _trade_at(h, px, qty=5):
    """Accounts 2 and 3 trade ``qty`` at ``px``; returns the taker's events."""
    assert h.order(2, Side.SELL, qty, px)[0] == "PASS"
    r, ev = h.order(3, Side.BUY, qty, px, tif=TimeInForce.IOC)
    assert r == "PASS"
    return ev


def test_triggered_stop_is_checked_at_trigger_time(h):
    assert _names(_stop_cmd(h, 1, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 71)) == ["StopHeld"]
    h.risk.set_trading_state(TradingState.HALTED, account=1)
    ev = _trade_at(h, ASK)
    den = [e for e in ev if isinstance(e, OrderDenied)]
    assert len(den) == 1 and den[0].order_id == 71 and den[0].reason is \
        DenyReason.TRADING_HALTED
    assert h.venue.order(71) is None and h.risk.held_stops() == []
    assert h.risk.position(1, INST).open_buy == 0 and h.risk.open_orders == 0


def test_triggered_stop_is_collared_at_the_trigger_reference(h):
    assert _names(_stop_cmd(h, 1, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 72)) == ["StopHeld"]
    ev = _trade_at(h, ASK)
    rel = [e for e in ev if isinstance(e, StopReleased)]
    assert [e.order_id for e in rel] == [72]
    mine = [e for e in ev if getattr(e, "order_id", None) == 72
            and type(e).__name__ == "OrderAccepted"]
    assert mine and mine[0].order_type == OrderType.LIMIT and mine[0].price == BUY_COLLAR


def test_triggered_stop_trades(h):
    assert _names(_stop_cmd(h, 1, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 73)) == ["StopHeld"]
    assert h.order(2, Side.SELL, 10, ASK + 100)[0] == "PASS"
    ev = _trade_at(h, ASK)
    assert any(isinstance(e, StopReleased) for e in ev)
    fills = [e for e in ev if type(e).__name__ == "OrderFilled" and e.order_id == 73]
    assert sum(f.last_qty for f in fills) == 10
    p = h.risk.position(1, INST)
    assert (p.qty, p.open_buy) == (10, 0) and h.risk.open_orders == 0


def test_triggered_stop_limit_in_the_batch_api(h):
    res = h.risk.process(encode_commands([
        SubmitOrder(74, INST, 1, Side.SELL, 10, BID - 100, order_type=OrderType.STOP_LIMIT,
                    stop_price=BID, ts=6_000),
        SubmitOrder(75, INST, 2, Side.BUY, 20, BID, ts=6_001),
        SubmitOrder(76, INST, 3, Side.SELL, 5, BID, tif=TimeInForce.IOC, ts=6_002),
    ]))
    assert res.reasons.tolist() == [0, 0, 0]
    kinds = [type(e).__name__ for e in res.risk_events]
    assert kinds == ["StopHeld", "StopReleased"]
    f = res.events[(res.events["order_id"] == 74) & (res.events["kind"] == EventKind.FILLED)]
    assert f["last_qty"].sum() == 10 and (f["last_px"] == BID).all()
    assert h.risk.position(1, INST).qty == -10


def test_held_stop_cancel_and_replace_are_authorised(h):
    _stop_cmd(h, 1, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 80)
    assert h.risk.gateway(2).submit(CancelOrder(80, ts=7_000))[0].reason is \
        DenyReason.NOT_AUTHORIZED
    assert h.risk.gateway(1).submit(ReplaceOrder(80, 5, ts=7_001))[0].reason is \
        DenyReason.STOP_NOT_REPLACEABLE
    ev = h.risk.gateway(1).submit(CancelOrder(80, ts=7_002))
    assert _names(ev) == ["StopCanceled"]
    assert h.risk.held_stops() == [] and h.risk.position(1, INST).open_buy == 0
    _trade_at(h, ASK)
    assert h.risk.position(1, INST).qty == 0


def test_held_stops_leave_with_mass_cancel_kill_switch_and_end_of_session(h):
    _stop_cmd(h, 1, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 81)
    _stop_cmd(h, 2, Side.BUY, 10, ASK, 0, TimeInForce.DAY, 82)
    _stop_cmd(h, 2, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 83)
    _stop_cmd(h, 3, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 84)
    ev = h.risk.gateway(1).submit(MassCancel(account=1, ts=8_000))
    assert [e.order_id for e in ev if isinstance(e, StopCanceled)] == [81]
    ev = h.risk.submit(EndSession(ts=8_001))
    assert [e.order_id for e in ev if isinstance(e, StopCanceled)] == [82]
    ev = h.risk.engage_kill_switch(KillScope.ACCOUNT, 3)
    assert [e.order_id for e in ev if isinstance(e, StopCanceled)] == [84]
    assert ev[-1].canceled == 1
    assert h.risk.held_stops() == [83]
    h.risk.journal = None
    assert isinstance(_stop_cmd(h, 2, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 85)[0], StopHeld)


def test_circuit_breaker_on_a_mark_cancels_held_stops_and_says_so():
    h = Harness(accounts=(acct(1, capital=1_000_000, breaker_loss_bps=100), acct(2)))
    h.bbo()
    h.fill(buyer=1, seller=2, qty=100, px=MID)
    assert _names(_stop_cmd(h, 1, Side.SELL, 100, BID - 100, 0, TimeInForce.GTC, 90)) == \
        ["StopHeld"]
    ev = h.bbo(999_000, 999_200)                       # mid -1_100 per share: tripped
    assert _names(ev)[-2:] == ["CircuitBreakerTripped", "StopCanceled"]
    assert [e.canceled for e in ev if type(e).__name__ == "CircuitBreakerTripped"] == [1]
    assert h.risk.held_stops() == []
    # nothing stale is handed to the next caller
    assert "StopCanceled" not in _names(h.order(2, Side.BUY, 1, 998_000)[1])


def test_denial_of_a_foreign_cancel_does_not_disclose_the_order(h):
    assert h.order(1, Side.SELL, 10, ASK, oid=91)[0] == "PASS"
    d = h.risk.gateway(2).submit(CancelOrder(91, ts=9_000))[0]
    assert d.reason is DenyReason.NOT_AUTHORIZED
    assert (d.account, d.instrument, d.side) == (0, 0, 0)


def test_operator_cancels_held_and_live_orders(h):
    """The operator's cancels skip the owner lookup only while no stop is held."""
    from host.trading.risk import checks as K

    _stop_cmd(h, 1, Side.BUY, 10, ASK, 0, TimeInForce.GTC, 95)
    assert h.order(1, Side.BUY, 10, BID, oid=96)[0] == "PASS"
    assert h.risk.G[K.G_NHELD] == 1
    assert _names(h.risk.submit(CancelOrder(95, ts=9_500))) == ["StopCanceled"]
    assert h.risk.G[K.G_NHELD] == 0 and h.risk.held_stops() == []
    assert _names(h.risk.submit(CancelOrder(96, ts=9_501))) == ["OrderCanceled"]
    assert h.risk.open_orders == h.venue.live_orders == 0
    assert h.risk.position(1, INST).open_buy == 0
