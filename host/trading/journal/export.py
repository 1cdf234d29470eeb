"""Export of order records with regulatory-style fields (CSV and Parquet).

One row per event about an order (a trade gives two rows: taker and maker). Codes follow the
MiFIR RTS 24 order-record style:

========================  =====================================================
event_type                NEWO accepted, REMO rejected, PARF / FILL partial / full
                          fill, CAME canceled by the member (cancel, mass cancel),
                          CAMO canceled by the venue (IOC/FOK/market remainder,
                          self-trade prevention), REME replaced, EXPI expired,
                          TRIG stop triggered
side                      BUYI / SELL
order_type                LMTO limit, MAKT market, STOP stop, STLI stop-limit
time_in_force             GTCV, DAVY, IOCV, FOKV
liquidity                 AGRE aggressor, PASV passive (fills only)
========================  =====================================================

Prices stay integers in Price(4) units (``limit_price``, ``exec_price``); timestamps are UTC
with microsecond precision (``ts_utc``; ``ts_ns`` keeps the full value).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from host.trading.matching.types import EVENT_DTYPE, EventFlag, EventKind, Reason

__all__ = ["order_records", "export_csv", "export_parquet", "EXPORT_COLUMNS"]

EXPORT_COLUMNS = (
    "seq", "ts_utc", "ts_ns", "event_type", "order_id", "account", "instrument", "side",
    "order_type", "time_in_force", "limit_price", "initial_qty", "remaining_qty", "traded_qty",
    "exec_price", "exec_qty", "trade_id", "contra_order_id", "liquidity", "reason",
)

_MEMBER_CANCEL = (Reason.CANCELED_BY_USER, Reason.MASS_CANCEL)


def _lut(mapping: dict[int, str], size: int = 256) -> np.ndarray:
    lut = np.full(size, "", dtype=object)
    for k, v in mapping.items():
        lut[int(k)] = v
    return lut


_SIDE = _lut({1: "BUYI", 2: "SELL"})
_TYPE = _lut({1: "LMTO", 2: "MAKT", 3: "STOP", 4: "STLI"})
_TIF = _lut({1: "GTCV", 2: "DAVY", 3: "IOCV", 4: "FOKV"})
_REASON = _lut({int(r): r.name for r in Reason})


def order_records(events: np.ndarray) -> pa.Table:
    """Build the export table from an ``EVENT_DTYPE`` array.

    Parameters
    ----------
    events : numpy.ndarray

    Returns
    -------
    pyarrow.Table
        Columns ``EXPORT_COLUMNS``; ``ts_utc`` is ``timestamp[us, tz=UTC]``.
    """
    if events.dtype != EVENT_DTYPE:
        raise TypeError("expected an EVENT_DTYPE array")
    kind = events["kind"]
    reason = events["reason"]
    leaves = events["leaves_qty"]
    etype = np.full(len(events), "", dtype=object)
    etype[kind == EventKind.ACCEPTED] = "NEWO"
    etype[kind == EventKind.REJECTED] = "REMO"
    filled = kind == EventKind.FILLED
    etype[filled & (leaves > 0)] = "PARF"
    etype[filled & (leaves == 0)] = "FILL"
    canc = kind == EventKind.CANCELED
    member = np.isin(reason, [int(r) for r in _MEMBER_CANCEL])
    etype[canc & member] = "CAME"
    etype[canc & ~member] = "CAMO"
    etype[kind == EventKind.REPLACED] = "REME"
    etype[kind == EventKind.EXPIRED] = "EXPI"
    etype[kind == EventKind.TRIGGERED] = "TRIG"
    maker = (events["flags"] & EventFlag.MAKER) != 0
    liq = np.where(filled, np.where(maker, "PASV", "AGRE"), "")
    ts = events["ts"]
    cols = {
        "seq": pa.array(events["seq"]),
        "ts_utc": pa.array(ts // 1000, type=pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "ts_ns": pa.array(ts),
        "event_type": pa.array(etype, type=pa.string()),
        "order_id": pa.array(events["order_id"]),
        "account": pa.array(events["account"]),
        "instrument": pa.array(events["instrument"]),
        "side": pa.array(_SIDE[events["side"]], type=pa.string()),
        "order_type": pa.array(_TYPE[events["order_type"]], type=pa.string()),
        "time_in_force": pa.array(_TIF[events["tif"]], type=pa.string()),
        "limit_price": pa.array(events["price"]),
        "initial_qty": pa.array(events["init_qty"]),
        "remaining_qty": pa.array(leaves),
        "traded_qty": pa.array(events["cum_qty"]),
        "exec_price": pa.array(np.where(filled, events["last_px"], 0)),
        "exec_qty": pa.array(np.where(filled, events["last_qty"], 0)),
        "trade_id": pa.array(events["trade_id"]),
        "contra_order_id": pa.array(events["contra_id"]),
        "liquidity": pa.array(liq.astype(object), type=pa.string()),
        "reason": pa.array(_REASON[reason], type=pa.string()),
    }
    return pa.table(cols)


def export_csv(events: np.ndarray, path: str | os.PathLike) -> int:
    """Write the order records as CSV; timestamps as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Returns
    -------
    int
        Rows written.
    """
    t = order_records(events)
    us = events["ts"] // 1000
    iso = np.char.add(np.datetime_as_string(us.astype("datetime64[us]"), unit="us"), "Z")
    t = t.set_column(t.schema.get_field_index("ts_utc"), "ts_utc", pa.array(iso, pa.string()))
    pacsv.write_csv(t, os.fspath(path))
    return t.num_rows


def export_parquet(events: np.ndarray, path: str | os.PathLike) -> int:
    """Write the order records as Parquet (``ts_utc`` as ``timestamp[us, UTC]``)."""
    t = order_records(events)
    pq.write_table(t, os.fspath(path))
    return t.num_rows
