"""Property tests of the compiled core (host.trading.matching.core) through random command streams.

Invariants checked after every command: the resting book is never crossed and is internally
consistent (``check_book``: level totals, bitmaps, best pointers, FIFO by priority timestamp);
fills come in taker/maker pairs at one price, never outside either limit; every order's open
quantity follows exactly from its events (quantity conservation); buys and sells traded match;
and a batch replay of the same commands gives the same bytes.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.trading.matching import (
    CancelOrder,
    EndSession,
    EngineConfig,
    EventFlag,
    EventKind,
    InstrumentConfig,
    MassCancel,
    MatchingEngine,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    core,
    encode_commands,
)

PX = 10_000
CONFIG = EngineConfig(
    instruments=(InstrumentConfig(1, min_price=100, max_price=20_000),
                 InstrumentConfig(2, min_price=100, max_price=20_000)),
    max_orders=256, event_buffer=64)

oids = st.integers(1, 30)


def _mostly(valid, invalid, p_invalid=10):
    """``valid`` strategy, but ``invalid`` values about 1 in ``p_invalid`` draws."""
    return st.integers(0, p_invalid - 1).flatmap(
        lambda r: st.sampled_from(invalid) if r == 0 else valid)


prices = _mostly(st.integers(-4, 4).map(lambda k: PX + 100 * k), [0, PX + 50, -100])
qtys = _mostly(st.integers(1, 40), [0, -3])


@st.composite
def submits(draw):
    otype = draw(st.sampled_from([1, 1, 1, 1, 2, 3, 4]))
    tif = draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4]))
    qty = draw(qtys)
    px = draw(prices) if otype in (1, 4) else draw(_mostly(st.just(0), [PX], 20))
    stop = draw(st.integers(-3, 3).map(lambda k: PX + 100 * k)) if otype in (3, 4) else 0
    disp = draw(st.sampled_from([0, 0, 0, 0, 1, 3, 7])) if otype == 1 else 0
    return SubmitOrder(
        order_id=draw(oids), instrument=draw(_mostly(st.sampled_from([1, 1, 2]), [3], 20)),
        account=draw(st.integers(1, 3)), side=draw(st.sampled_from([1, 2])), qty=qty,
        price=px, order_type=otype, tif=tif,
        post_only=draw(st.integers(0, 5)) == 0 and otype == 1,
        display_qty=disp, stop_price=stop, stp=draw(st.sampled_from([0, 0, 0, 1, 2, 3, 4])))


commands = st.one_of(
    submits(), submits(), submits(), submits(), submits(), submits(),
    st.builds(CancelOrder, oids),
    st.builds(ReplaceOrder, oids, qtys, st.sampled_from([0, PX - 200, PX, PX + 200, PX + 50])),
    st.builds(MassCancel, st.sampled_from([None, 1, 2]), st.sampled_from([None, 1, 2, 9])),
    st.builds(EndSession, st.sampled_from([None, 1])),
)


def _check_events(ev: np.ndarray, leaves: dict, traded: dict) -> None:
    i = 0
    while i < len(ev):
        e = ev[i]
        k = e["kind"]
        oid = int(e["order_id"])
        if k == EventKind.REJECTED:  # echoes the refused command
            assert e["leaves_qty"] == 0 and e["cum_qty"] == 0
            i += 1
            continue
        assert e["leaves_qty"] >= 0 and e["leaves_qty"] + e["cum_qty"] <= e["init_qty"]
        if k == EventKind.ACCEPTED:
            leaves[oid] = int(e["leaves_qty"])
        elif k == EventKind.FILLED:
            m = ev[i + 1]  # the maker's half follows the taker's
            assert m["kind"] == EventKind.FILLED and m["trade_id"] == e["trade_id"]
            assert not e["flags"] & EventFlag.MAKER and m["flags"] & EventFlag.MAKER
            assert m["last_px"] == e["last_px"] and m["last_qty"] == e["last_qty"] > 0
            assert m["side"] != e["side"] and m["order_id"] == e["contra_id"]
            for x in (e, m):
                if x["order_type"] in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                    if x["side"] == Side.BUY:
                        assert x["last_px"] <= x["price"]
                    else:
                        assert x["last_px"] >= x["price"]
                xo = int(x["order_id"])
                assert leaves[xo] - x["last_qty"] == x["leaves_qty"]
                leaves[xo] = int(x["leaves_qty"])
                traded[int(x["side"])] += int(x["last_qty"])
            i += 2
            continue
        elif k in (EventKind.CANCELED, EventKind.EXPIRED):
            assert leaves[oid] - e["last_qty"] == e["leaves_qty"]
            leaves[oid] = int(e["leaves_qty"])
        elif k == EventKind.REPLACED:
            assert e["leaves_qty"] == e["init_qty"] - e["cum_qty"]
            leaves[oid] = int(e["leaves_qty"])
        i += 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, min_size=1, max_size=60))
def test_invariants(cmds) -> None:
    eng = MatchingEngine(CONFIG)
    arr = encode_commands(cmds)
    arr["ts"] = np.arange(1, len(arr) + 1) * 1000
    leaves: dict[int, int] = {}
    traded = {1: 0, 2: 0}
    stream = []
    for j in range(len(arr)):
        ev = eng.process(arr[j:j + 1])
        stream.append(ev)
        assert eng.check() == 0, f"check_book code {eng.check()} after command {j}"
        for inst in (1, 2):
            b = eng.bbo(inst)
            if b.bid and b.ask:
                assert b.bid.price < b.ask.price
        _check_events(ev, leaves, traded)
        live = {o.order_id: o.displayed_qty + o.hidden_qty for o in eng.open_orders()}
        for oid, q in leaves.items():
            assert live.get(oid, 0) == q, (oid, q, live.get(oid))
    assert traded[1] == traded[2]
    # determinism: one batch call gives the same bytes
    again = MatchingEngine(CONFIG).process(arr)
    assert np.array_equal(np.concatenate(stream).view(np.uint8), again.view(np.uint8))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1999), min_size=1, max_size=80, unique=True))
def test_bitmap_prev_next(levels) -> None:
    bm = np.zeros((2, 32), np.uint64)
    for k in levels:
        bm[0, k >> 6] |= np.uint64(1) << np.uint64(k & 63)
    s = sorted(levels)
    for probe in [0, 1, 63, 64, 65, 1000, 1999, *levels]:
        below = [x for x in s if x < probe]
        above = [x for x in s if x > probe]
        assert core.prev_set(bm, 0, 0, probe) == (below[-1] if below else -1)
        assert core.next_set(bm, 0, 0, probe, 2000) == (above[0] if above else -1)


def test_event_buffer_grows_for_one_huge_command() -> None:
    eng = MatchingEngine(CONFIG)  # 64-row event buffer
    cmds = [SubmitOrder(i, 1, 1, Side.SELL, 1, PX, ts=1) for i in range(1, 200)]
    cmds.append(SubmitOrder(999, 1, 2, Side.BUY, 500, PX, ts=2))
    ev = eng.process(encode_commands(cmds))
    assert (ev["kind"] == EventKind.FILLED).sum() == 2 * 199
    assert np.array_equal(ev["seq"], np.arange(1, len(ev) + 1))
    assert eng.check() == 0 and eng.bbo(1).bid.qty == 301
