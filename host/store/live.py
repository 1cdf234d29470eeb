"""Writing a run to the store while it goes: a background writer with a bounded queue.

``python -m host session INPUT --store URL`` and ``python -m host backtest INPUT --store URL``
hand a :class:`StoreWriter` their market data (card records / the quotes the strategy saw),
their journal events (session) or orders and fills (backtest) as the run produces them. The
producer only copies arrays into a bounded queue (:meth:`StoreWriter.put`); one thread turns
them into store rows (:mod:`host.store.ingest`) and writes them in batches, a batch per table
when ``batch_rows`` rows are pending or ``flush_s`` seconds passed since the first of them.
A full queue blocks the producer: nothing acknowledged is dropped. :meth:`StoreWriter.close`
writes the rest and returns ``{table: rows written}``; a store error (server gone, disk full)
stops the writer, and the producer's next call (or :meth:`close`) raises
:class:`StoreWriteError` with a one-line message that says what was written before it.

Keys: everything of a run is keyed by its *run id* (:func:`run_id`, derived from the input's
content and the run's options unless given), so a re-run with the same id writes no row twice
(the backends' idempotent writes). The run's market data is its own capture in the schema:
``captures``/``md_symbols``/``md_bbo`` rows with ``capture_id`` = the run id and
``msg_index`` = the position of the record in the run's stream, and the ``sessions`` row
points at it (so ``db query tca --session ID`` prices the fills against the BBO the run saw).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from host.store.ingest import RUN_ID_FILE, _assigned, _table, event_batches, session_row
from host.store.schema import content_id

__all__ = ["StoreWriter", "StoreWriteError", "run_id", "RUN_ID_FILE"]

class StoreWriteError(Exception):
    """The store writer failed; the message says what was written before."""


class SweepSinks:
    """Picklable factory of one :class:`StoreWriter` per backtest of a sweep
    (:func:`host.trading.backtest.run.run_sweep`): each worker process opens the store itself.

    Parameters
    ----------
    store : str
        A folder or a ``postgresql://`` URL (as ``--store``).
    """

    errors = (StoreWriteError,)
    """Exceptions that fail one config of the sweep (its entry gets ``error``)."""

    def __init__(self, store: str):
        self.store = str(store)

    def __call__(self, rid: str, out, source) -> StoreWriter:
        from host.store import open_store

        return StoreWriter(open_store(self.store), rid, out, source=source)


def run_id(kind: str, input_path, **options) -> str:
    """16 hex digits of the SHA-256 of the run's kind, input content and options.

    The same input and options give the same id (and the run the same rows: the session and
    the backtest are deterministic), so a re-run writes nothing new; a file given as an
    option (``config``) counts by its content.
    """
    opts = {}
    for k, v in sorted(options.items()):
        if k == "config" and v:
            v = content_id(v)
        opts[k] = v
    doc = json.dumps({"kind": kind, "input": content_id(input_path), "options": opts},
                     sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _where(store) -> str:
    loc = getattr(store, "root", None)
    return f"folder {loc}" if loc is not None else "postgresql"


class StoreWriter:
    """Background writer of one run (see the module docstring).

    Parameters
    ----------
    store : ParquetStore or PostgresStore
        Opened by the caller (an unreachable server fails before the run starts); used only
        by the writer thread from then on, closed by :meth:`close`.
    run : str
        The run id (``sessions.session_id`` and the capture id of its market data).
    path : str
        What the ``sessions`` row names (the run's output folder).
    source : str
        What the run's ``captures`` row names (its input file).
    batch_rows : int
        Pending rows of one kind that make a batch.
    flush_s : float
        Age of the oldest pending item that makes a batch (so a slow run still lands).
    queue_items : int
        Bound of the queue (items are the producer's arrays, one per chunk or commit).
    """

    def __init__(self, store, run: str, path: str, *, source: str = "",
                 batch_rows: int = 20_000, flush_s: float = 1.0,
                 queue_items: int = 256) -> None:
        self.store = store
        self.source = str(source)
        self.run = run
        self.path = str(path)
        self.batch_rows = batch_rows
        self.flush_s = flush_s
        self.q: queue.Queue = queue.Queue(maxsize=queue_items)
        self.written: dict[str, int] = {}
        self.batches = 0
        self.items = 0
        self.blocked = 0  # puts that found the queue full
        self.blocked_s = 0.0  # producer time spent waiting on a full queue
        self.error: str | None = None
        self.pending_rows = 0  # records/events taken from the queue, not written yet
        self._events = 0
        self._assigned: dict[int, int] = {}
        self._closed = False
        self._t = threading.Thread(target=self._loop, name=f"store-{run}", daemon=True)
        self._t.start()

    # ------------------------------------------------------------------ producer side

    def put(self, kind: str, *payload) -> None:
        """Queue one item; blocks while the queue is full; raises if the writer failed."""
        self._check()
        item = (kind, *payload)
        try:
            self.q.put_nowait(item)
        except queue.Full:  # wait for the writer (checking that it still lives)
            t0 = time.perf_counter()
            self.blocked += 1
            while True:
                try:
                    self.q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    self._check()
            self.blocked_s += time.perf_counter() - t0
        self.items += 1

    def _check(self) -> None:
        if self.error is not None:
            raise StoreWriteError(self._message())
        if not self._t.is_alive() and not self._closed:
            self.error = "the writer thread is gone"
            raise StoreWriteError(self._message())

    def _message(self) -> str:
        done = ", ".join(f"{k} {v:,}" for k, v in sorted(self.written.items())) or "nothing"
        return (f"store ({_where(self.store)}) failed: {self.error}; run {self.run}: written "
                f"before the error: {done}")

    # session (host.trading.session.run_session's store_sink protocol)

    def start(self, feed, locates, records) -> None:
        """The run's capture rows: ``captures`` and ``md_symbols`` of its locates."""
        from host.feed.capture import symbol_directory

        names = {v: k for k, v in symbol_directory(feed.itch).items()}
        self.put("rows", "captures", _table("captures", {
            "capture_id": [self.run], "path": [self.source],
            "messages": [int(feed.n_messages)], "bbo_rows": [len(records)]}))
        self.symbols(locates, names)

    def symbols(self, locates, names: dict) -> None:
        """``md_symbols`` rows of the run's locates."""
        locs = sorted(int(x) for x in locates)
        self.put("rows", "md_symbols", _table("md_symbols", {
            "capture_id": [self.run] * len(locs), "locate": locs,
            "symbol": [names.get(x, "") for x in locs]}))

    def market(self, first: int, records: np.ndarray) -> None:
        """Card records (``hw.bbo_record.DTYPE``), the first at position ``first``."""
        if len(records):
            self.put("bbo", int(first), records.copy())

    def events(self, journal: str, events: np.ndarray) -> None:
        """The events of one journal commit (``"venue"`` or ``"risk"``).

        Called from inside the journal's commit (:attr:`JournalWriter.on_commit`), so it never
        raises: after a store failure it returns (the failure is kept, and the run's next
        :meth:`market` call or :meth:`close` raises it, outside any commit, so the session
        still closes its journals cleanly).
        """
        if len(events):
            try:
                self.put("events", journal, events)
            except StoreWriteError:
                pass

    def finish_session(self, folder) -> None:
        """The ``sessions`` row (last: with the event count) and the run id file."""
        self.put("session_row", str(folder))
        Path(folder, RUN_ID_FILE).write_text(self.run + "\n")

    # backtest

    def backtest_progress(self, bt) -> None:
        """Orders, fills and quotes a running backtester (:class:`Backtester` or
        :class:`FastBacktester`) produced since last time (its ``progress_rows``)."""
        n = self._bt_done
        for kind, name in (("bt_fills", "fills"), ("bt_orders", "orders"),
                           ("bt_quotes", "quotes")):
            arr = bt.progress_rows(name, n[kind])
            if len(arr):
                self.put(kind, n[kind], arr)
                n[kind] += len(arr)

    _bt_done: dict

    def start_backtest(self, market, account: int, strategy: int) -> None:
        """A backtest's capture rows; ``account``/``strategy`` go on its orders and fills."""
        self._bt_done = {"bt_fills": 0, "bt_orders": 0, "bt_quotes": 0}
        self._bt_ids = (int(account), int(strategy))
        self.put("rows", "captures", _table("captures", {
            "capture_id": [self.run], "path": [self.source],
            "messages": [int(market.n_input)], "bbo_rows": [None]}))
        self.symbols(market.locates, market.symbols)

    def finish_backtest(self, result, folder) -> None:
        """What the last progress call did not see (from the result's own arrays), then the
        ``sessions`` row and the run id file."""
        n = self._bt_done
        for kind, arr in (("bt_fills", result.fills), ("bt_orders", result.orders),
                          ("bt_quotes", result.quotes)):
            if len(arr) > n[kind]:
                self.put(kind, n[kind], arr[n[kind]:].copy())
                n[kind] = len(arr)
        self.put("session_row", str(folder) if folder is not None else "")
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            Path(folder, RUN_ID_FILE).write_text(self.run + "\n")

    def close(self) -> dict[str, int]:
        """Write what is pending, stop the thread, close the store; ``{table: rows}``."""
        if not self._closed:
            if self.error is None and self._t.is_alive():
                self.put("stop")
            self._closed = True
            self._t.join()
            try:
                self.store.close()
            except Exception:  # a dead connection: nothing more to tell than the error
                pass
        if self.error is not None:
            raise StoreWriteError(self._message())
        return dict(self.written)

    def abort(self) -> None:
        """Stop without raising (the run failed for another reason); pending rows are
        written first when the store still works."""
        try:
            self.close()
        except StoreWriteError:
            pass

    # ------------------------------------------------------------------ writer thread

    def _write(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        n = self.store.write(table, rows)
        self.written[table] = self.written.get(table, 0) + n
        self.batches += 1

    def _loop(self) -> None:
        pending: dict[str, list] = {}
        size = 0
        first = None
        try:
            while True:
                timeout = None if first is None else max(0.0, first + self.flush_s
                                                          - time.monotonic())
                try:
                    item = self.q.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if item is not None and item[0] == "stop":
                    self._flush(pending)
                    self.pending_rows = 0
                    return
                if item is not None and item[0] == "session_row":
                    self._flush(pending)
                    pending, size, first = {}, 0, None
                    self.pending_rows = 0
                    self._write("sessions", session_row(self.run, item[1], self.run,
                                                        self._events))
                    continue
                if item is not None:
                    pending.setdefault(item[0], []).append(item[1:])
                    size += len(item[-1]) if hasattr(item[-1], "__len__") else 1
                    self.pending_rows = size
                    if first is None:
                        first = time.monotonic()
                if size >= self.batch_rows or (first is not None and
                                               time.monotonic() - first >= self.flush_s):
                    self._flush(pending)
                    pending, size, first = {}, 0, None
                    self.pending_rows = 0
        except Exception as e:  # reported by the producer's next call, as one line
            msg = str(e).strip().splitlines()
            self.error = f"{type(e).__name__}: {msg[0] if msg else ''}".rstrip(": ")

    def _flush(self, pending: dict[str, list]) -> None:
        for t, rows in pending.get("rows", []):
            self._write(t, rows)
        for kind in ("bbo", "bt_quotes"):
            if kind in pending:
                first = pending[kind][0][0]
                arr = np.concatenate([a for _, a in pending[kind]])
                self._write("md_bbo", (self._bbo if kind == "bbo" else self._quotes)(first, arr))
        if "events" in pending:
            # risk before venue: STRATEGY_ASSIGNED of an order is known before its fills
            by = {"risk": [], "venue": []}
            for j, ev in pending["events"]:
                by[j].append(ev)
            for j in ("risk", "venue"):
                if not by[j]:
                    continue
                ev = np.concatenate(by[j])
                self._events += len(ev)
                if j == "risk":
                    self._assigned.update(_assigned(ev))
                for table, rows in event_batches(self.run, j, ev, self._assigned,
                                                 batch_rows=1 << 30):
                    self._write(table, rows)
        if "bt_orders" in pending:
            first = pending["bt_orders"][0][0]
            arr = np.concatenate([a for _, a in pending["bt_orders"]])
            self._events += len(arr)
            self._write("orders", self._bt_orders(first, arr))
        if "bt_fills" in pending:
            first = pending["bt_fills"][0][0]
            arr = np.concatenate([a for _, a in pending["bt_fills"]])
            self._events += len(arr)
            self._write("fills", self._bt_fills(first, arr))

    def _bbo(self, first: int, rec: np.ndarray) -> pa.Table:
        n = len(rec)
        return _table("md_bbo", {
            "capture_id": np.full(n, self.run, dtype=object),
            "msg_index": np.arange(first, first + n, dtype=np.int64),
            "ts": rec["ts_event"].astype(np.int64), "locate": rec["locate"].astype(np.int32),
            **{c: rec[c].astype(np.int64) for c in ("bid_px", "bid_sz", "bid_ct", "ask_px",
                                                    "ask_sz", "ask_ct")}})

    def _quotes(self, first: int, q: np.ndarray) -> pa.Table:
        # (ts the strategy saw it, instrument, bid, ask): sizes and counts are not kept
        n = len(q)
        none = [None] * n
        return _table("md_bbo", {
            "capture_id": np.full(n, self.run, dtype=object),
            "msg_index": np.arange(first, first + n, dtype=np.int64),
            "ts": q[:, 0], "locate": q[:, 1].astype(np.int32), "bid_px": q[:, 2],
            "bid_sz": none, "bid_ct": none, "ask_px": q[:, 3], "ask_sz": none,
            "ask_ct": none})

    def _bt_orders(self, first: int, o: np.ndarray) -> pa.Table:
        from host.trading.matching import CommandKind
        from host.trading.risk.types import DenyReason

        n = len(o)
        acct, strat = self._bt_ids
        side = np.array(["", "B", "S"] + [""] * 253, dtype=object)
        status = [f"denied:{DenyReason(int(d)).name}" if d else
                  ("sent" if int(k) == CommandKind.SUBMIT else "replace")
                  for k, d in zip(o["kind"].tolist(), o["denied"].tolist(), strict=True)]
        none = [None] * n
        return _table("orders", {
            "session_id": np.full(n, self.run, dtype=object),
            "journal": np.full(n, "backtest", dtype=object),
            "seq": np.arange(first + 1, first + 1 + n, dtype=np.int64), "ts": o["ts"],
            "order_id": o["order_id"], "account": np.full(n, acct, np.int32),
            "strategy": np.full(n, strat, np.int32), "instrument": o["instrument"],
            "side": side[o["side"]], "order_type": none, "tif": none, "price": o["price"],
            "qty": o["qty"], "status": status})

    def _bt_fills(self, first: int, f: np.ndarray) -> pa.Table:
        n = len(f)
        acct, strat = self._bt_ids
        side = np.array(["", "B", "S"] + [""] * 253, dtype=object)
        return _table("fills", {
            "session_id": np.full(n, self.run, dtype=object),
            "seq": np.arange(first + 1, first + 1 + n, dtype=np.int64), "ts": f["ts"],
            "order_id": f["order_id"], "trade_id": [None] * n,
            "account": np.full(n, acct, np.int32), "strategy": np.full(n, strat, np.int32),
            "instrument": f["instrument"], "side": side[f["side"]], "px": f["price"],
            "qty": f["qty"],
            "liquidity": np.where(f["maker"] != 0, "maker", "taker").astype(object)})
