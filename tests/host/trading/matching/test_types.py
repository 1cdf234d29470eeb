"""Binary layouts and command/event object conversions (host.trading.matching.types)."""

from __future__ import annotations

import numpy as np
import pytest

from host.trading.matching import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    CancelOrder,
    CommandKind,
    EndSession,
    MassCancel,
    OrderType,
    ReplaceOrder,
    Side,
    StpMode,
    SubmitOrder,
    TimeInForce,
    core,
    decode_events,
    encode_commands,
)


def test_layout_offsets_match_core_words() -> None:
    assert COMMAND_DTYPE.itemsize == 8 * 8 and EVENT_DTYPE.itemsize == core.E_NF * 8
    c = COMMAND_DTYPE.fields
    assert (c["ts"][1], c["order_id"][1], c["price"][1], c["qty"][1]) == (0, 8, 16, 24)
    assert (c["account"][1], c["instrument"][1], c["kind"][1], c["stp"][1]) == (48, 52, 56, 61)
    e = EVENT_DTYPE.fields
    assert (e["seq"][1], e["order_id"][1], e["leaves_qty"][1], e["init_qty"][1]) == (0, 24, 72, 88)
    assert (e["account"][1], e["instrument"][1], e["kind"][1], e["stp"][1]) == (96, 104, 108, 115)


def test_encode_commands() -> None:
    arr = encode_commands([
        SubmitOrder(2**64 - 1, 65535, 2**32 - 1, Side.SELL, 5, 100, OrderType.STOP_LIMIT,
                    TimeInForce.DAY, True, 0, 200, StpMode.CANCEL_BOTH, ts=-1),
        CancelOrder(3, ts=4),
        ReplaceOrder(5, 6, 700, ts=8),
        MassCancel(account=9),
        MassCancel(instrument=2),
        EndSession(instrument=3),
    ])
    r = arr[0]
    assert (int(r["order_id"]), int(r["instrument"]), int(r["account"])) == (2**64 - 1, 65535,
                                                                             2**32 - 1)
    assert (r["kind"], r["side"], r["order_type"], r["tif"], r["flags"], r["stp"]) == (
        1, 2, 4, 2, 1, 3)
    assert (r["ts"], r["stop_price"]) == (-1, 200)
    assert list(arr["kind"]) == [1, 2, 3, 4, 4, 5]
    assert (arr[2]["qty"], arr[2]["price"]) == (6, 700)
    assert (arr[3]["flags"], arr[3]["account"]) == (1, 9)
    assert (arr[4]["flags"], arr[4]["instrument"]) == (2, 2)
    assert (arr[5]["flags"], arr[5]["instrument"]) == (2, 3)
    words = arr.view(np.int64).reshape(-1, 8)
    assert words[0, 7] & 0xFF == CommandKind.SUBMIT and (words[0, 7] >> 40) & 0xFF == 3
    with pytest.raises(TypeError):
        encode_commands([object()])


def test_decode_events_kinds() -> None:
    ev = np.zeros(2, EVENT_DTYPE)
    ev["kind"] = [3, 7]
    ev["flags"] = [4, 0]
    ev["last_px"] = [10, 20]
    ev["contra_id"] = [8, 0]
    ev["order_id"] = [1, 2]
    ev["leaves_qty"] = [5, 0]
    fill, trig = decode_events(ev)
    assert fill.is_maker and fill.is_partial and fill.maker_order_id == 1
    assert fill.taker_order_id == 8 and trig.stop_price == 20
