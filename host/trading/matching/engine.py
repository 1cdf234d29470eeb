"""Typed Python facade over the compiled matching core (:mod:`host.trading.matching.core`).

Two entry points share one state:

* :meth:`MatchingEngine.submit` -- one command object in, a list of event objects out
  (convenient, a few microseconds per call);
* :meth:`MatchingEngine.process` -- a ``COMMAND_DTYPE`` array in, an ``EVENT_DTYPE`` array
  out, in one compiled call (millions of commands per second).

A pre-trade risk layer wraps either: it sees every command before the engine and every event
after it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from host.trading.matching import core
from host.trading.matching.types import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    Bbo,
    Command,
    Event,
    Level,
    Side,
    _encode_into,
    decode_events,
)

__all__ = ["InstrumentConfig", "EngineConfig", "MatchingEngine", "OrderView", "encode_one",
           "MAX_ORDER_QTY", "MAX_ORDERS", "MAX_ICEBERG_SLICES", "InterruptedBatch"]


def encode_one(one: np.ndarray, cmd, clock: Callable[[], int]) -> None:
    """Encode ``cmd`` into the 1-row ``one``; stamp ``ts == 0`` with ``clock()``.

    A value that does not fit the binary layout (e.g. a negative order id, a non-integer)
    or an object that is not a command becomes an invalid command row, which the engine
    rejects ``INVALID_COMMAND`` -- the per-command API never raises for a bad command.
    """
    one.view(np.int64)[:] = 0
    try:
        _encode_into(one, 0, cmd)
        if cmd.ts == 0:
            one[0]["ts"] = clock()
    except (TypeError, ValueError, OverflowError, AttributeError):
        one.view(np.int64)[:] = 0
        one[0]["kind"] = 0xFF


MAX_INSTRUMENT_ID = 1 << 16
MAX_ORDER_QTY = core.MAX_ORDER_QTY
"""Largest order quantity (submit ``qty``, replace ``qty``); above it ``QTY_ABOVE_MAX``."""
MAX_ORDERS = core.MAX_ORDERS
"""Largest ``EngineConfig.max_orders``."""
MAX_ICEBERG_SLICES = core.MAX_ICEBERG_SLICES
"""Most refreshes of one iceberg: ``qty - display_qty <= display_qty * MAX_ICEBERG_SLICES``,
else ``INVALID_DISPLAY_QTY`` (bounds the events, and the buffer, one order can cause)."""


@dataclass(frozen=True)
class InstrumentConfig:
    """One tradable instrument.

    Parameters
    ----------
    instrument_id : int
        Id used in commands and events (0 <= id < 65536, e.g. an ITCH stock locate).
    tick : int
        Price increment in Price(4) units; default 100 (one cent).
    min_price : int
        Lowest accepted limit price (a multiple of ``tick``); default 100.
    max_price : int
        Highest accepted limit price; default 2_000_000 ($200.00), i.e. a 20 000-level ladder.
        Limit prices outside [min_price, max_price] are rejected ``PRICE_OUT_OF_BAND``.
    """

    instrument_id: int
    tick: int = 100
    min_price: int = 100
    max_price: int = 2_000_000

    def __post_init__(self) -> None:
        if not 0 <= self.instrument_id < MAX_INSTRUMENT_ID:
            raise ValueError(f"instrument_id out of range: {self.instrument_id}")
        if self.tick <= 0 or self.min_price <= 0 or self.min_price % self.tick:
            raise ValueError("tick and min_price must be positive, min_price on the tick")
        if self.max_price < self.min_price:
            raise ValueError("max_price < min_price")

    @property
    def n_levels(self) -> int:
        """Number of price levels of the ladder."""
        return (self.max_price - self.min_price) // self.tick + 1


@dataclass(frozen=True)
class EngineConfig:
    """Engine configuration.

    Parameters
    ----------
    instruments : tuple of InstrumentConfig
        Tradable instruments; default one instrument, id 1, default ladder.
    max_orders : int
        Capacity of the order pool (live orders: resting, pending stops and the order being
        matched); default 1 << 20, at most ``MAX_ORDERS`` (1 << 22, so that no sum of order
        quantities can overflow int64). A submit beyond it is rejected ``CAPACITY_EXCEEDED``.
        Memory is touched only as it is used.
    event_buffer : int
        Initial event buffer rows; default 1 << 16 (grown as needed).
    clock : callable
        ``() -> int`` ns, stamped by :meth:`MatchingEngine.submit` on commands whose ``ts`` is
        0; default :func:`time.time_ns`. The batch path never reads a clock.
    """

    instruments: tuple[InstrumentConfig, ...] = (InstrumentConfig(1),)
    max_orders: int = 1 << 20
    event_buffer: int = 1 << 16
    clock: Callable[[], int] = field(default=time.time_ns, compare=False)

    def __post_init__(self) -> None:
        ids = [i.instrument_id for i in self.instruments]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate instrument ids")
        if not 0 < self.max_orders <= MAX_ORDERS:
            raise ValueError(f"max_orders must be in 1..{MAX_ORDERS}")

    def to_json(self) -> str:
        """JSON of everything but the clock (stored with snapshots)."""
        return json.dumps(
            {"instruments": [asdict(i) for i in self.instruments],
             "max_orders": self.max_orders, "event_buffer": self.event_buffer}
        )

    @classmethod
    def from_json(cls, text: str) -> EngineConfig:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        return cls(
            instruments=tuple(InstrumentConfig(**i) for i in d["instruments"]),
            max_orders=d["max_orders"],
            event_buffer=d["event_buffer"],
        )


@dataclass(frozen=True, slots=True)
class OrderView:
    """A live order as the engine holds it."""

    order_id: int
    account: int
    instrument: int
    side: int
    order_type: int
    tif: int
    price: int
    stop_price: int
    displayed_qty: int
    hidden_qty: int
    cum_qty: int
    init_qty: int
    resting: bool
    ts: int


_STATE_ARRAYS = ("S", "P", "H", "L", "BM", "I", "IMAP")


@dataclass(frozen=True)
class InterruptedBatch:
    """What a :meth:`MatchingEngine.process` call that raised had applied.

    Attributes
    ----------
    applied : int
        Commands of the batch applied (the first ``applied``; each one completely).
    events : numpy.ndarray
        Their events (``EVENT_DTYPE``).
    """

    applied: int
    events: np.ndarray


class MatchingEngine:
    """Multi-instrument price-time priority matching engine.

    Parameters
    ----------
    config : EngineConfig, optional
        Default ``EngineConfig()``.

    Notes
    -----
    Everything is deterministic: the same commands (timestamps included) give the same
    events, bit for bit, whatever the batching.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        cfg = self.config
        cap = cfg.max_orders
        hcap = 1 << max(4, int(2 * cap - 1).bit_length())
        ninst = len(cfg.instruments)
        self.I = np.zeros((ninst, core.I_NF), np.int64)
        self.IMAP = np.full(MAX_INSTRUMENT_ID, -1, np.int64)
        loff = 0
        woff = 0
        for ii, ic in enumerate(cfg.instruments):
            nlev = ic.n_levels
            self.I[ii, core.I_ID] = ic.instrument_id
            self.I[ii, core.I_TICK] = ic.tick
            self.I[ii, core.I_MINPX] = ic.min_price
            self.I[ii, core.I_NLEV] = nlev
            self.I[ii, core.I_LOFF] = loff
            self.I[ii, core.I_WOFF] = woff
            self.I[ii, core.I_BID] = -1
            self.I[ii, core.I_ASK] = -1
            self.I[ii, core.I_SHEAD] = -1
            self.I[ii, core.I_STAIL] = -1
            self.IMAP[ic.instrument_id] = ii
            loff += nlev
            woff += (nlev + 63) >> 6
        self.L = np.zeros((loff, 4), np.int64)
        self.L[:, core.L_HEAD] = -1
        self.L[:, core.L_TAIL] = -1
        self.BM = np.zeros((2, max(woff, 1)), np.uint64)
        self.P = np.zeros((cap, core.O_NF), np.int64)
        self.H = np.zeros((hcap, 2), np.int64)
        self.TQ = np.zeros(cap, np.int64)
        self.S = np.zeros(core.S_NF, np.int64)
        self.S[core.S_FREE] = -1
        self.S[core.S_HSHIFT] = 64 - (hcap.bit_length() - 1)
        self.S[core.S_HMASK] = hcap - 1
        self.S[core.S_CAP] = cap
        self._E = np.empty((max(cfg.event_buffer, 64), core.E_NF), np.int64)
        self._one = np.zeros(1, COMMAND_DTYPE)
        self._tick = {ic.instrument_id: ic for ic in cfg.instruments}
        self.interrupted: InterruptedBatch | None = None
        """Set when the last :meth:`process` raised after applying part of its batch."""

    # ------------------------------------------------------------------ command paths

    def process(self, commands: np.ndarray, *, copy: bool = True) -> np.ndarray:
        """Apply a batch of commands in one compiled call.

        Parameters
        ----------
        commands : numpy.ndarray
            1-D ``COMMAND_DTYPE`` array.
        copy : bool
            If False the result is a view of the engine's event buffer, valid until the next
            call (saves a copy in hot loops).

        Returns
        -------
        numpy.ndarray
            ``EVENT_DTYPE`` array of the events, in sequence order.

        Notes
        -----
        Commands are applied whole, in order. If the call raises part way (e.g.
        ``MemoryError`` growing the event buffer), the commands before the failure stay
        applied and :attr:`interrupted` says how many, with their events (a journaling
        caller records exactly those); it is None after a call that returned.
        """
        if commands.dtype != COMMAND_DTYPE:
            raise TypeError("commands must be a COMMAND_DTYPE array")
        self.interrupted = None
        c = np.ascontiguousarray(commands).view(np.int64).reshape(-1, 8)
        m = c.shape[0]
        c0 = int(self.S[core.S_CMDSEQ])
        i = 0
        n = 0  # events of the last kernel call not yet taken out of E
        parts = []
        E = self._E
        try:
            while True:
                E = self._E
                i, n, need = core.process(c, i, E, self.S, self.P, self.H, self.L,
                                          self.BM, self.I, self.IMAP, self.TQ)
                if i >= m:
                    if not parts:
                        out = E[:n].view(EVENT_DTYPE).reshape(n)
                        return out.copy() if copy else out
                    parts.append(E[:n].copy())
                    break
                parts.append(E[:n].copy())
                n = 0
                if need > E.shape[0]:
                    self._E = np.empty((max(need, 2 * E.shape[0]), core.E_NF), np.int64)
        except BaseException:
            # commands before the failure were applied (never half of one): say which, with
            # their events, so a journaling caller can record exactly what the engine did
            applied = int(self.S[core.S_CMDSEQ]) - c0
            if applied:
                if n:
                    parts.append(E[:n].copy())
                ev = (np.concatenate(parts) if parts else np.zeros((0, core.E_NF), np.int64))
                self.interrupted = InterruptedBatch(applied, ev.view(EVENT_DTYPE).reshape(-1))
            raise
        return np.concatenate(parts).view(EVENT_DTYPE).reshape(-1)

    def submit(self, cmd: Command) -> list[Event]:
        """Apply one command object; return its events as objects.

        A command with ``ts == 0`` is stamped with ``config.clock()``.
        """
        encode_one(self._one, cmd, self.config.clock)
        return decode_events(self.process(self._one, copy=False))

    def submit_many(self, cmds: Iterable[Command]) -> list[Event]:
        """Apply several command objects in one compiled call (timestamps as given)."""
        from host.trading.matching.types import encode_commands

        return decode_events(self.process(encode_commands(cmds), copy=False))

    # ------------------------------------------------------------------------ queries

    def _ii(self, instrument: int) -> int:
        if not 0 <= instrument < MAX_INSTRUMENT_ID or self.IMAP[instrument] < 0:
            raise KeyError(f"unknown instrument {instrument}")
        return int(self.IMAP[instrument])

    def depth(self, instrument: int, side: Side, n: int = 5) -> list[Level]:
        """Top-``n`` aggregated levels of one side, best first (displayed quantity only)."""
        out = np.zeros((max(n, 1), 3), np.int64)
        c = core.depth(self.P, self.L, self.BM, self.I, self._ii(instrument),
                       0 if Side(side) == Side.BUY else 1, n, out)
        return [Level(int(p), int(q), int(k)) for p, q, k in out[:c]]

    def bbo(self, instrument: int) -> Bbo:
        """Best bid and offer (``None`` for an empty side)."""
        b = self.depth(instrument, Side.BUY, 1)
        a = self.depth(instrument, Side.SELL, 1)
        return Bbo(b[0] if b else None, a[0] if a else None)

    def order(self, order_id: int) -> OrderView | None:
        """The live order ``order_id`` or None."""
        key = np.uint64(order_id).astype(np.int64)
        j = core.hfind(self.H, self.S, key)
        if j < 0:
            return None
        return self._view(int(self.H[j, 1]) - 1)

    def _view(self, o: int) -> OrderView:
        r = self.P[o]
        return OrderView(
            order_id=int(np.int64(r[core.O_ID]).astype(np.uint64)),
            account=int(r[core.O_ACCT]),
            instrument=int(self.I[r[core.O_INST], core.I_ID]),
            side=int(r[core.O_SIDE]),
            order_type=int(r[core.O_TYPE]),
            tif=int(r[core.O_TIF]),
            price=int(r[core.O_PX]),
            stop_price=int(r[core.O_STOP]),
            displayed_qty=int(r[core.O_DISP]),
            hidden_qty=int(r[core.O_HID]),
            cum_qty=int(r[core.O_CUM]),
            init_qty=int(r[core.O_INIT]),
            resting=int(r[core.O_STATE]) == core.ST_RESTING,
            ts=int(r[core.O_TS]),
        )

    def orders_at(self, instrument: int, side: Side, price: int) -> list[int]:
        """Order ids resting at one price, in time priority (FIFO) order."""
        ii = self._ii(instrument)
        tick = self.I[ii, core.I_TICK]
        k = (price - self.I[ii, core.I_MINPX]) // tick
        if price % tick or not 0 <= k < self.I[ii, core.I_NLEV]:
            return []
        g = self.I[ii, core.I_LOFF] + k
        out = []
        o = int(self.L[g, core.L_HEAD])
        while o >= 0:
            if self.P[o, core.O_SIDE] != int(side):
                return []
            out.append(int(np.int64(self.P[o, core.O_ID]).astype(np.uint64)))
            o = int(self.P[o, core.O_NEXT])
        return out

    def open_orders(self) -> list[OrderView]:
        """Every live order (resting and pending stops), by pool row."""
        hwm = int(self.S[core.S_HWM])
        st = self.P[:hwm, core.O_STATE]
        rows = np.nonzero((st == core.ST_RESTING) | (st == core.ST_STOP))[0]
        return [self._view(int(o)) for o in rows]

    @property
    def live_orders(self) -> int:
        """Number of live orders."""
        return int(self.S[core.S_LIVE])

    @property
    def event_seq(self) -> int:
        """Sequence number of the last event emitted."""
        return int(self.S[core.S_EVSEQ])

    @property
    def command_seq(self) -> int:
        """Number of commands applied so far."""
        return int(self.S[core.S_CMDSEQ])

    def state_hash(self) -> int:
        """64-bit hash of the logical state (book, stops, sequence numbers)."""
        return int(core.state_hash(self.P, self.L, self.BM, self.I, self.S))

    def check(self) -> int:
        """Structural self-check of the book: 0 when consistent (see ``core.check_book``)."""
        return int(core.check_book(self.P, self.L, self.BM, self.I, self.S))

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copy of the complete state (only the used part of the order pool)."""
        hwm = int(self.S[core.S_HWM])
        snap = {k: getattr(self, k).copy() for k in _STATE_ARRAYS if k != "P"}
        snap["P"] = self.P[:hwm].copy()
        snap["config"] = np.frombuffer(self.config.to_json().encode(), np.uint8).copy()
        return snap

    @classmethod
    def from_snapshot(cls, snap: dict[str, np.ndarray],
                      config: EngineConfig | None = None) -> MatchingEngine:
        """Rebuild an engine from :meth:`snapshot` output (config from the snapshot if None)."""
        if config is None:
            config = EngineConfig.from_json(bytes(np.asarray(snap["config"])).decode())
        eng = cls(config)
        for k in _STATE_ARRAYS:
            if k == "P":
                p = snap["P"]
                eng.P[: len(p)] = p
            else:
                a = getattr(eng, k)
                if a.shape != snap[k].shape:
                    raise ValueError(f"snapshot array {k} does not fit this config")
                a[...] = snap[k]
        # the pending-stop total feeds the event bound (an underestimate would overrun the
        # event buffer): recompute it rather than trust a snapshot of an older layout
        hwm = int(eng.S[core.S_HWM])
        stops = eng.P[:hwm, core.O_STATE] == core.ST_STOP
        eng.S[core.S_STOPQ] = int(eng.P[:hwm, core.O_DISP][stops].sum())
        return eng
