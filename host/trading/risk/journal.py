"""Risk journal: denied commands and risk events, in the audit journal's record format.

The matching engine's journal (:class:`host.trading.journal.JournaledEngine`) must hold exactly the
commands the engine applied: recovery replays them and checks the replayed events. Commands the
risk layer denied never reached the engine, so they go to a second journal file written with
the same :class:`host.trading.journal.JournalWriter` (CRC-32C records, group commit, torn-tail
handling, validating reader):

* a denied command: its ``COMMAND_DTYPE`` record, followed by an ``EVENT_DTYPE`` record with
  ``kind = RiskEventKind.DENIED`` and ``reason = DenyReason``;
* kill switch / circuit breaker / trading state / stale-reference events: one ``EVENT_DTYPE``
  record each, ``kind`` from :class:`host.trading.risk.types.RiskEventKind` (see
  :func:`risk_event_row` for the field mapping);
* a stop held by the risk layer: its ``COMMAND_DTYPE`` record and a ``STOP_HELD`` event
  (``contra_account`` = strategy); ``STOP_RELEASED`` / ``STOP_CANCELED`` events when it leaves;
* ``STRATEGY_ASSIGNED`` events (``order_id``, ``account``, ``contra_account`` = strategy) for
  forwarded orders whose strategy is not their account's default, so that
  :meth:`host.trading.risk.RiskEngine.recover` can rebuild the strategy of every open order.

:func:`risk_records` turns the events into an export table with the columns of
:data:`host.trading.journal.EXPORT_COLUMNS` plus ``risk_event``; :func:`export_risk` writes CSV or
Parquet.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from host.trading.journal import JournalConfig, JournalWriter, order_records, read_journal
from host.trading.matching.types import EVENT_DTYPE
from host.trading.risk.types import DenyReason, KillScope, RiskEventKind

__all__ = ["RiskJournal", "denial_rows", "held_rows", "assigned_rows", "risk_event_row",
           "risk_records", "export_risk", "read_risk_journal"]


def denial_rows(commands: np.ndarray, reasons: np.ndarray, seq0: int) -> np.ndarray:
    """``EVENT_DTYPE`` DENIED rows for denied ``COMMAND_DTYPE`` rows (vectorised)."""
    n = len(commands)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["seq"] = np.arange(seq0 + 1, seq0 + 1 + n, dtype=np.uint64)
    ev["ts"] = commands["ts"]
    ev["order_id"] = commands["order_id"]
    ev["price"] = commands["price"]
    ev["init_qty"] = commands["qty"]
    ev["account"] = commands["account"]
    ev["instrument"] = commands["instrument"]
    ev["kind"] = RiskEventKind.DENIED
    ev["reason"] = reasons
    ev["side"] = commands["side"]
    ev["order_type"] = commands["order_type"]
    ev["tif"] = commands["tif"]
    ev["cmd_kind"] = commands["kind"]
    return ev


def held_rows(commands: np.ndarray, strategies: np.ndarray, seq0: int) -> np.ndarray:
    """``EVENT_DTYPE`` STOP_HELD rows for held stop ``COMMAND_DTYPE`` rows."""
    ev = denial_rows(commands, np.zeros(len(commands), np.uint8), seq0)
    ev["kind"] = RiskEventKind.STOP_HELD
    ev["last_px"] = commands["stop_price"]
    ev["contra_account"] = strategies
    return ev


def assigned_rows(commands: np.ndarray, strategies: np.ndarray, seq0: int) -> np.ndarray:
    """``EVENT_DTYPE`` STRATEGY_ASSIGNED rows (order id, account, strategy) for forwarded
    submits."""
    ev = denial_rows(commands, np.zeros(len(commands), np.uint8), seq0)
    ev["kind"] = RiskEventKind.STRATEGY_ASSIGNED
    ev["contra_account"] = strategies
    return ev


def risk_event_row(kind: RiskEventKind, seq: int, ts: int, *, account: int = 0,
                   instrument: int = 0, scope: int = 0, value: int = 0, pnl: int = 0,
                   threshold: int = 0, count: int = 0, state: int = 0) -> np.ndarray:
    """One ``EVENT_DTYPE`` row for a risk event.

    Field mapping: ``reason`` = kill scope or trading state, ``order_id`` = scope value,
    ``price`` = P&L, ``last_px`` = threshold, ``last_qty`` = orders canceled.
    """
    ev = np.zeros(1, EVENT_DTYPE)
    r = ev[0]
    r["seq"] = seq
    r["ts"] = ts
    r["kind"] = kind
    r["account"] = account
    r["instrument"] = instrument
    r["reason"] = scope or state
    r["order_id"] = value
    r["price"] = pnl
    r["last_px"] = threshold
    r["last_qty"] = count
    return ev


class RiskJournal:
    """Append-only journal of denials and risk events (one file).

    Parameters
    ----------
    path : path
    config : host.trading.journal.JournalConfig, optional
    """

    def __init__(self, path, config: JournalConfig | None = None) -> None:
        self.writer = JournalWriter(path, config)
        self.path = self.writer.path
        self._seq = 0
        if self.writer.recovered is not None and len(self.writer.recovered.events):
            self._seq = int(self.writer.recovered.events["seq"].max())

    def next_seq(self, n: int = 1) -> int:
        """Reserve ``n`` risk-event sequence numbers; returns the last one before them."""
        s = self._seq
        self._seq += n
        return s

    def append_denied(self, commands: np.ndarray, reasons: np.ndarray) -> None:
        """Journal denied commands and their DENIED events."""
        if len(commands) == 0:
            return
        self.writer.append_commands(np.ascontiguousarray(commands))
        self.writer.append_events(denial_rows(commands, reasons, self.next_seq(len(commands))))

    def append_held(self, commands: np.ndarray, strategies: np.ndarray) -> None:
        """Journal stops entered into the risk layer (command + STOP_HELD event)."""
        if len(commands) == 0:
            return
        self.writer.append_commands(np.ascontiguousarray(commands))
        self.writer.append_events(held_rows(commands, strategies, self.next_seq(len(commands))))

    def append_assigned(self, commands: np.ndarray, strategies: np.ndarray) -> None:
        """Journal the strategy of forwarded submits that do not use their account's default."""
        if len(commands):
            self.writer.append_events(assigned_rows(commands, strategies,
                                                    self.next_seq(len(commands))))

    def append_event(self, kind: RiskEventKind, ts: int, **kw) -> None:
        """Journal one risk event (see :func:`risk_event_row`)."""
        self.writer.append_events(risk_event_row(kind, self.next_seq() + 1, ts, **kw))

    def commit(self) -> int:
        """Group commit (per the journal's durability policy)."""
        return self.writer.commit()

    def close(self) -> None:
        self.writer.close()


def read_risk_journal(path):
    """``host.trading.journal.read_journal`` of a risk journal (validated)."""
    return read_journal(path)


_KIND_NAME = {int(k): k.name for k in RiskEventKind}


def risk_records(events: np.ndarray) -> pa.Table:
    """Export table of risk events: :data:`host.trading.journal.EXPORT_COLUMNS` + ``risk_event``.

    ``event_type`` is ``RISK``; ``reason`` the :class:`DenyReason` name for denials, the kill
    scope for kill switches.
    """
    t = order_records(events)
    kind = events["kind"]
    reason = events["reason"]
    names = []
    for k, r in zip(kind.tolist(), reason.tolist(), strict=True):
        if k == RiskEventKind.DENIED:
            names.append(DenyReason(r).name)
        elif k in (RiskEventKind.KILL_SWITCH_ENGAGED, RiskEventKind.KILL_SWITCH_RELEASED):
            names.append(KillScope(r).name)
        else:
            names.append("")
    t = t.set_column(t.schema.get_field_index("event_type"), "event_type",
                     pa.array(["RISK"] * len(events), pa.string()))
    t = t.set_column(t.schema.get_field_index("reason"), "reason", pa.array(names, pa.string()))
    return t.append_column("risk_event", pa.array([_KIND_NAME.get(int(k), "") for k in kind],
                                                  pa.string()))


def export_risk(events: np.ndarray, path) -> int:
    """Write :func:`risk_records` as CSV (``.csv``) or Parquet (anything else); rows."""
    t = risk_records(events)
    path = os.fspath(path)
    if path.endswith(".csv"):
        pacsv.write_csv(t, path)
    else:
        pq.write_table(t, path)
    return t.num_rows
