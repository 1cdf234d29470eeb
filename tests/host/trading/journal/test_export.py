"""Regulatory-style order-record export (CSV and Parquet)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from host.trading.journal import EXPORT_COLUMNS, export_csv, export_parquet, order_records
from host.trading.matching import (
    CancelOrder,
    EndSession,
    EngineConfig,
    InstrumentConfig,
    MatchingEngine,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
    encode_commands,
)

T0 = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z
PX = 10_000


def _events():
    eng = MatchingEngine(EngineConfig(instruments=(InstrumentConfig(7),)))
    cmds = [
        SubmitOrder(1, 7, 11, Side.SELL, 100, PX, tif=TimeInForce.DAY, ts=T0),
        SubmitOrder(2, 7, 12, Side.BUY, 30, PX, ts=T0 + 1000),
        SubmitOrder(3, 7, 12, Side.BUY, 10, 0, order_type=OrderType.STOP, stop_price=PX,
                    ts=T0 + 2000),
        ReplaceOrder(1, 80, ts=T0 + 3000),
        SubmitOrder(4, 7, 12, Side.BUY, 100, PX, tif=TimeInForce.IOC, ts=T0 + 4000),
        SubmitOrder(5, 7, 12, Side.BUY, 0, PX, ts=T0 + 5000),
        SubmitOrder(6, 7, 13, Side.SELL, 5, PX + 100, tif=TimeInForce.DAY, ts=T0 + 6000),
        SubmitOrder(8, 7, 13, Side.SELL, 5, PX + 200, ts=T0 + 6000),
        CancelOrder(8, ts=T0 + 6500),
        EndSession(ts=T0 + 7000),
    ]
    return eng.process(encode_commands(cmds))


def test_event_types_and_fields() -> None:
    t = order_records(_events())
    assert tuple(t.column_names) == EXPORT_COLUMNS
    rows = t.to_pylist()
    types = [(r["order_id"], r["event_type"]) for r in rows]
    assert types == [
        (1, "NEWO"), (2, "NEWO"), (2, "FILL"), (1, "PARF"), (3, "NEWO"), (1, "REME"),
        (4, "NEWO"), (4, "PARF"), (1, "FILL"), (4, "CAMO"), (3, "TRIG"), (3, "CAMO"),
        (5, "REMO"), (6, "NEWO"), (8, "NEWO"), (8, "CAME"), (6, "EXPI"),
    ]
    fill = rows[2]
    assert fill["side"] == "BUYI" and fill["order_type"] == "LMTO" and fill["liquidity"] == "AGRE"
    assert (fill["exec_price"], fill["exec_qty"], fill["contra_order_id"]) == (PX, 30, 1)
    maker = rows[3]
    assert maker["liquidity"] == "PASV" and maker["time_in_force"] == "DAVY"
    assert (maker["initial_qty"], maker["remaining_qty"], maker["traded_qty"]) == (100, 70, 30)
    reme = rows[5]
    assert (reme["initial_qty"], reme["remaining_qty"], reme["traded_qty"]) == (80, 50, 30)
    assert rows[9]["reason"] == "IOC_REMAINDER" and rows[10]["order_type"] == "STOP"
    assert rows[11]["reason"] == "MARKET_REMAINDER"
    assert rows[12]["reason"] == "INVALID_QUANTITY"
    assert t.schema.field("ts_utc").type == pa.timestamp("us", tz="UTC")
    assert rows[0]["ts_ns"] == T0 and [r["seq"] for r in rows] == list(range(1, 18))


def test_csv_and_parquet(tmp_path) -> None:
    ev = _events()
    n = export_csv(ev, tmp_path / "o.csv")
    text = (tmp_path / "o.csv").read_text().splitlines()
    assert n == len(ev) == len(text) - 1
    assert '"2023-11-14T22:13:20.123456Z"' in text[1]
    back = pacsv.read_csv(tmp_path / "o.csv")
    assert back.column("order_id").to_pylist() == ev["order_id"].tolist()
    assert export_parquet(ev, tmp_path / "o.parquet") == len(ev)
    pt = pq.read_table(tmp_path / "o.parquet")
    assert pt.equals(order_records(ev))
    assert pt.column("ts_utc")[0].value == T0 // 1000
