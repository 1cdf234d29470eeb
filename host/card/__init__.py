"""Host driver for the card: one :class:`Card` API over any :mod:`~host.card.transport`.

>>> from host.card import Card
>>> with Card.open("sim") as card:                  # or "xdma"
...     card.configure(udp_port=26477, ip_dst="233.54.12.111")
...     card.subscribe(locates=[1, 2, 3])
...     card.send(frames)                           # Ethernet frames (simulated card)
...     card.run()
...     for batch in card.batches():                # numpy structured arrays
...         ...
...     print(card.counters()["messages"])

Registers come from :mod:`hw.regs` (the same table the gateware is generated from) and records
are decoded with :mod:`hw.bbo_record`. See ``docs/driver.md``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields

import numpy as np

from host.card.transport import (
    CardError,
    CardMismatch,
    CardNotFound,
    CardTimeout,
    ModelNotBuilt,
    Transport,
    TransportClosed,
)
from hw import regs as R

__all__ = [
    "Card",
    "CardInfo",
    "CardError",
    "CardMismatch",
    "CardNotFound",
    "CardTimeout",
    "ModelNotBuilt",
    "Transport",
    "TransportClosed",
    "open_transport",
]

_PARAM_REGS = {
    "data_width": "ID_DATA_WIDTH",
    "slots": "ID_SLOTS",
    "table_capacity": "ID_TABLE_CAPACITY",
    "levels": "ID_LEVELS",
    "depth_n": "ID_DEPTH_N",
    "record_bytes": "ID_RECORD_BYTES",
    "clk_hz": "ID_CLK_HZ",
    "ways": "ID_WAYS",
}


@dataclass(frozen=True)
class CardInfo:
    """What the identification registers say."""

    magic: int
    version: tuple[int, int, int]
    params: R.BuildParams


def open_transport(kind: str = "sim", **kw) -> Transport:
    """Open a transport by name: ``"sim"`` or ``"xdma"`` (keywords go to it)."""
    if kind == "sim":
        from host.card.sim import SimTransport

        return SimTransport(**kw)
    if kind == "xdma":
        from host.card.xdma import XdmaTransport

        return XdmaTransport(**kw)
    raise ValueError(f"unknown card kind {kind!r}: use 'sim' or 'xdma'")


def _ip(value) -> int:
    if isinstance(value, int):
        return value
    return int(ipaddress.IPv4Address(value))


class Card:
    """The card, whatever it runs on.

    Parameters
    ----------
    transport : Transport
        An open transport; the card owns it and closes it.
    expect : hw.regs.BuildParams, optional
        Build parameters the caller relies on; any difference raises :class:`CardMismatch`.
    check : bool
        Read and check the identification registers on open (default True).

    Raises
    ------
    CardMismatch
        Wrong magic (not this design), a register map major version the driver does not know,
        a record size that is not ``hw.bbo_record.record_bytes(ID_DEPTH_N)``, a MAC width the
        transport does not drive, or build parameters that differ from ``expect``.
    """

    def __init__(self, transport: Transport, *, expect: R.BuildParams | None = None, check=True):
        self.t = transport
        self._subs: dict[int, int] = {}
        self._ticks: dict[int, int] = {}
        self.info: CardInfo | None = None
        self.table = R.build_table()
        if check:
            try:
                self.info = self.identify(expect)
            except BaseException:
                self.t.close()
                raise
            self.table = R.build_table(self.info.params)
        self._free = list(range(self.slots))
        if check:
            self._wait("clear_busy")  # the book empties every slot after a reset

    @classmethod
    def open(cls, kind: str = "sim", *, expect: R.BuildParams | None = None, **kw) -> Card:
        """Open the transport ``kind`` (see :func:`open_transport`) and check the card."""
        return cls(open_transport(kind, **kw), expect=expect)

    # ------------------------------------------------------------------ registers
    def _addr(self, name: str) -> int:
        return self.table[name].offset

    def read(self, name: str) -> int:
        """Read register ``name`` (a :mod:`hw.regs` register name)."""
        return self.t.read_reg(self._addr(name))

    def write(self, name: str, value: int | None = None, **flds) -> None:
        """Write register ``name``: a whole ``value``, or field values by field name.

        Fields not given are 0 (registers are written whole; read-modify-write is explicit).
        """
        reg = self.table[name]
        if reg.access not in (R.Access.RW, R.Access.W1C, R.Access.W1P):
            raise CardError(f"{name} is {reg.access.value}: not writable")
        if value is None:
            value = 0
            by_name = {f.name: f for f in reg.fields}
            for k, v in flds.items():
                if k not in by_name:
                    raise KeyError(f"{name} has no field {k!r} (has {sorted(by_name)})")
                f = by_name[k]
                v = int(v)
                if not 0 <= v < (1 << f.width):
                    raise ValueError(f"{name}.{k}={v} does not fit {f.width} bits")
                value |= v << f.lsb
        elif flds:
            raise TypeError("give a whole value or fields, not both")
        self.t.write_reg(reg.offset, value)

    def field(self, name: str, field: str) -> int:
        """Read one field of register ``name``."""
        reg = self.table[name]
        for f in reg.fields:
            if f.name == field:
                return (self.read(name) >> f.lsb) & ((1 << f.width) - 1)
        raise KeyError(f"{name} has no field {field!r}")

    def read64(self, base: str) -> int:
        """Read a 64-bit ``<base>_LO``/``<base>_HI`` pair coherently (LO first, see hw.regs)."""
        lo = self.read(base + "_LO")
        hi = self.read(base + "_HI")
        return (hi << 32) | lo

    # ------------------------------------------------------------------ identification
    def identify(self, expect: R.BuildParams | None = None) -> CardInfo:
        """Read and check the identification registers; see the class doc for the checks."""
        t0 = R.build_table()
        magic = self.t.read_reg(t0["ID_MAGIC"].offset)
        if magic != R.MAGIC:
            raise CardMismatch(
                f"{self.t.name} card: ID_MAGIC is 0x{magic:08x}, expected 0x{R.MAGIC:08x} "
                "(not this design, or the wrong BAR / register base)"
            )
        v = self.t.read_reg(t0["ID_VERSION"].offset)
        version = (v >> 16, (v >> 8) & 0xFF, v & 0xFF)
        if version[0] != R.REGMAP_VERSION[0]:
            raise CardMismatch(
                f"register map version {'.'.join(map(str, version))} on the card, the driver "
                f"knows {'.'.join(map(str, R.REGMAP_VERSION))} (major versions differ)"
            )
        vals = {k: self.t.read_reg(t0[reg].offset) for k, reg in _PARAM_REGS.items()}
        try:
            params = R.BuildParams(**vals)
        except (TypeError, ValueError) as e:
            raise CardMismatch(f"identification registers read {vals}: {e}") from None
        problems = []
        from hw import bbo_record

        try:
            want_rb = bbo_record.record_bytes(params.depth_n)
        except (TypeError, ValueError) as e:
            raise CardMismatch(f"ID_DEPTH_N={params.depth_n}: {e}") from None
        if params.record_bytes != want_rb:
            problems.append(f"record_bytes={params.record_bytes} (depth_n={params.depth_n} "
                            f"records are {want_rb} bytes)")
        elif getattr(self.t, "knows_record_bytes", False):
            if self.t.record_bytes != params.record_bytes:
                problems.append(f"record_bytes={params.record_bytes} (transport delivers "
                                f"{self.t.record_bytes})")
        else:
            self.t.record_bytes = params.record_bytes
        beat = getattr(self.t, "beat_bytes", None)
        if beat is not None and params.data_width != 8 * beat:
            problems.append(f"data_width={params.data_width} (transport drives {8 * beat})")
        if expect is not None:
            for f in fields(R.BuildParams):
                a, b = getattr(params, f.name), getattr(expect, f.name)
                if a != b:
                    problems.append(f"{f.name}={a} (expected {b})")
        if problems:
            raise CardMismatch("card build parameters do not match: " + ", ".join(problems))
        return CardInfo(magic, version, params)

    @property
    def slots(self) -> int:
        return self.table.params.slots

    # ------------------------------------------------------------------ control
    def reset(self, *, hard: bool = False) -> None:
        """Reset the card and wait until the book has emptied every slot.

        Soft reset (``CTRL_PULSE.soft_reset``): datapath, books and counters; the registers and
        the subscriptions are kept. ``hard=True`` resets the transport (simulation: ``rst``
        held); the subscription table is a memory that a reset does not clear, so the driver
        first unsubscribes every locate it subscribed, and then forgets them.
        """
        if hard:
            for loc, slot in list(self._subs.items()):
                self._sub_write(loc, slot, False)
            self.t.reset()
            self._subs.clear()
            self._ticks.clear()
            self._free = list(range(self.slots))
        else:
            self.write("CTRL_PULSE", soft_reset=1)
        self._wait("clear_busy")

    def configure(
        self,
        *,
        udp_port: int | None = None,
        ip_dst: int | str | None = None,
        session: bytes | str | None = None,
        session_filter: bool | None = None,
        enable: bool | None = True,
    ) -> None:
        """Set the feed filters; arguments left ``None`` keep the card's value.

        ``session`` is the 10-byte MoldUDP64 session; giving it enables the session filter
        unless ``session_filter=False``.
        """
        if udp_port is not None:
            self.write("CONFIG_UDP_PORT", udp_port=udp_port)
        if ip_dst is not None:
            self.write("CONFIG_IP_DST", ip_dst=_ip(ip_dst))
        if session is not None:
            s = session.encode("ascii") if isinstance(session, str) else bytes(session)
            if len(s) != 10:
                raise ValueError(f"a MoldUDP64 session is 10 bytes, not {len(s)}: {s!r}")
            v = int.from_bytes(s, "little")
            self.write("CONFIG_SESSION_0", v & 0xFFFFFFFF)
            self.write("CONFIG_SESSION_1", (v >> 32) & 0xFFFFFFFF)
            on = True if session_filter is None else session_filter
            self.write("CONFIG_SESSION_2", session_2=v >> 64, session_valid=int(on))
        elif session_filter is not None:
            cur = self.read("CONFIG_SESSION_2") & 0xFFFF
            self.write("CONFIG_SESSION_2", session_2=cur, session_valid=int(session_filter))
        if enable is not None:
            self.write("CTRL", enable=int(enable))

    def _clear_polls(self) -> int:
        """Polls of :meth:`_wait` for ``clear_busy``: a clear of every slot takes ``slots``
        cycles, plus one order-table scrub (``table_capacity // ways`` cycles) when it wraps a
        slot's epoch (docs/book.md); a simulated card runs 16 cycles per poll."""
        p = self.table.params
        worst = p.slots + p.table_capacity // max(1, p.ways)
        return 10_000 + 2 * worst // 16

    def _wait(self, field: str, timeout_s: float = 1.0, max_polls: int = 10_000) -> None:
        if field == "clear_busy":
            max_polls = max(max_polls, self._clear_polls())
        t_end = time.monotonic() + timeout_s
        for _ in range(max_polls):
            if not self.field("STATUS", field):
                return
            if self.t.has_cycles:
                self.t.run(max_cycles=16)
            elif time.monotonic() > t_end:
                break
        raise CardTimeout(f"STATUS.{field} stayed set")

    # ------------------------------------------------------------------ subscriptions
    def _resolve(self, locates, symbols, directory) -> list[int]:
        out = [int(x) for x in (locates or ())]
        for s in symbols or ():
            if directory is None:
                raise ValueError("subscribing by symbol needs directory={symbol: locate}")
            key = s.strip().upper()
            if key not in directory:
                raise KeyError(f"symbol {s!r} is not in the stock directory")
            out.append(int(directory[key]))
        for loc in out:
            if not 0 <= loc < 1 << 16:
                raise ValueError(f"stock locate {loc} does not fit 16 bits")
        return out

    def _sub_write(self, locate: int, slot: int, valid: bool, tick: int = 0) -> None:
        self.write("CONFIG_SUB_LOCATE", sub_locate=locate)
        fields = dict(sub_slot=slot, sub_valid=int(valid))
        if "sub_tick" in {f.name for f in self.table["CONFIG_SUB_SLOT"].fields}:
            fields["sub_tick"] = tick
        self.write("CONFIG_SUB_SLOT", **fields)
        self.write("CONFIG_SUB_CTRL", sub_write=1)
        self._wait("sub_busy")

    def subscribe(
        self,
        locates: Iterable[int] | None = None,
        *,
        symbols: Iterable[str] | None = None,
        directory: dict[str, int] | None = None,
        ticks: dict[int, int] | None = None,
    ) -> dict[int, int]:
        """Give each locate (or symbol, looked up in ``directory``) a book slot.

        Already subscribed locates keep their slot. ``ticks`` maps a locate to the tick code
        of its slot's price ladder (:mod:`host.card.ticks`: 0, 1, 2 = 1, 100, 10000 Price(4)
        units; :func:`host.card.ticks.tick_codes` picks them from a file), default
        :data:`host.card.ticks.DEFAULT_TICK_CODE` (one cent). The new slot is cleared after
        the write (its ladder changes tick only while empty). Returns ``{locate: slot}`` of
        all current subscriptions. Raises :class:`CardError` when the card runs out of slots.
        """
        from host.card.ticks import DEFAULT_TICK_CODE

        ticks = ticks or {}
        for loc in self._resolve(locates, symbols, directory):
            if loc in self._subs:
                continue
            if not self._free:
                raise CardError(f"no free book slot: the card has {self.slots}")
            slot = self._free.pop(0)
            code = int(ticks.get(loc, DEFAULT_TICK_CODE))
            self._sub_write(loc, slot, True, code)
            self.clear_stale(slot=slot)
            self._subs[loc] = slot
            self._ticks[loc] = code
        return dict(self._subs)

    def unsubscribe(
        self,
        locates: Iterable[int] | None = None,
        *,
        symbols: Iterable[str] | None = None,
        directory: dict[str, int] | None = None,
        clear: bool = True,
    ) -> dict[int, int]:
        """Remove subscriptions (and, with ``clear``, empty the freed slots' books)."""
        for loc in self._resolve(locates, symbols, directory):
            slot = self._subs.pop(loc, None)
            self._ticks.pop(loc, None)
            if slot is None:
                continue
            self._sub_write(loc, slot, False)
            if clear:
                self.clear_stale(slot=slot)
            self._free.append(slot)
            self._free.sort()
        return dict(self._subs)

    def tick_of(self, locate: int) -> int | None:
        """Tick code of a locate's slot as written through this driver (``None``: unknown)."""
        return self._ticks.get(locate)

    @property
    def subscriptions(self) -> dict[int, int]:
        """``{locate: slot}`` as set through this driver."""
        return dict(self._subs)

    def clear_stale(self, *, slot: int | None = None, locate: int | None = None) -> None:
        """Empty the book of one slot (or of a subscribed locate), or of every slot.

        Used after a sequence gap: the books may be wrong until rebuilt from a snapshot.
        """
        if locate is not None:
            if locate not in self._subs:
                raise KeyError(f"locate {locate} is not subscribed")
            slot = self._subs[locate]
        if slot is None:
            self.write("CTRL_PULSE", clear_stale_all=1)
        else:
            if not 0 <= slot < self.slots:
                raise ValueError(f"slot {slot} outside 0..{self.slots - 1}")
            self.write("CLEAR_SLOT", clear_slot=slot)
            self.write("CTRL_PULSE", clear_stale_slot=1)
        self._wait("clear_busy")

    # ------------------------------------------------------------------ re-seed
    def reseed(
        self,
        locate: int,
        orders: Iterable[tuple[int, str, int, int]],
        *,
        seq: int = 0,
        tick: int | None = None,
    ) -> int:
        """Rebuild the book of a subscribed ``locate`` from the host's view of its live orders.

        Clears the locate's slot, optionally changes its ladder tick (the slot is empty then),
        injects one add per order through the ``INJECT_*`` registers (ahead of the feed; a
        seeded add emits no record), and commits: the card then emits one record of the
        slot's new book, flagged ``cleared | recovered`` with ``seq``, and every later record
        of the slot carries ``recovered`` until its next clear (docs/driver.md, "Re-seed").

        Parameters
        ----------
        locate : int
            A subscribed stock locate.
        orders : iterable of (ref, side, shares, price)
            The live orders, ``side`` ``"B"`` or ``"S"``, injected in the order given (give
            the book's priority order: best price first, then time, see
            :func:`host.card.replay.live_orders`).
        seq : int
            Sequence number the commit record carries (the replay gives the sequence number of
            the last message the orders reflect).
        tick : int, optional
            New tick code of the slot (:mod:`host.card.ticks`); ``None`` keeps it. The tick
            is written right after the clear: pause the feed of that symbol around a re-seed
            (the replay re-seeds between batches, with the card idle), as for any injection,
            since injected orders are placed among the feed's records in arrival order.

        Returns
        -------
        int
            Orders injected.

        Raises
        ------
        KeyError
            ``locate`` is not subscribed.
        CardError
            An injection was dropped (``STATUS_STICKY.seen_inject_overrun``: another writer of
            ``INJECT_CTRL``), or a value does not fit its register.
        """
        if locate not in self._subs:
            raise KeyError(f"locate {locate} is not subscribed")
        slot = self._subs[locate]
        self.clear_stale(slot=slot)
        if tick is not None and tick != self._ticks.get(locate):
            self._sub_write(locate, slot, True, int(tick))
            self._ticks[locate] = int(tick)
        a = self._addr
        r_loc, r_lo, r_hi = a("INJECT_LOCATE"), a("INJECT_REF_LO"), a("INJECT_REF_HI")
        r_sh, r_px, r_ctl, r_st = a("INJECT_SHARES"), a("INJECT_PRICE"), a("INJECT_CTRL"), \
            a("STATUS")
        busy = 1 << self.table.field("inject_busy")[1].lsb
        add = 1 << self.table.field("inject_add")[1].lsb
        bid_bit = 1 << self.table.field("inject_bid")[1].lsb
        w, rd = self.t.write_reg, self.t.read_reg
        cur_side = cur_hi = None
        n = 0

        def wait_free():
            for _ in range(1_000_000):
                if not rd(r_st) & busy:
                    return
                if self.t.has_cycles:
                    self.t.run(max_cycles=16)
            raise CardTimeout("STATUS.inject_busy stayed set")

        for ref, side, shares, price in orders:
            ref, shares, price = int(ref), int(shares), int(price)
            if not (0 <= ref < 1 << 64 and 0 <= shares < 1 << 32 and 0 <= price < 1 << 32):
                raise CardError(f"order {ref}: shares {shares} or price {price} out of range")
            if side not in ("B", "S"):
                raise CardError(f"order {ref}: side {side!r} is not 'B' or 'S'")
            if side != cur_side:
                w(r_loc, locate | (bid_bit if side == "B" else 0))
                cur_side = side
            w(r_lo, ref & 0xFFFFFFFF)
            if ref >> 32 != cur_hi:
                w(r_hi, ref >> 32)
                cur_hi = ref >> 32
            w(r_sh, shares)
            w(r_px, price)
            wait_free()
            w(r_ctl, add)
            n += 1
        if cur_side is None:
            w(r_loc, locate)
        seq = int(seq) & ((1 << 64) - 1)
        w(r_lo, seq & 0xFFFFFFFF)
        w(r_hi, seq >> 32)
        wait_free()
        self.write("INJECT_CTRL", inject_commit=1)
        wait_free()
        if self.field("STATUS_STICKY", "seen_inject_overrun"):
            self.clear_sticky("seen_inject_overrun")
            raise CardError(f"re-seed of locate {locate}: an injection was dropped "
                            "(STATUS_STICKY.seen_inject_overrun)")
        return n

    # ------------------------------------------------------------------ status, counters
    def status(self) -> dict[str, int]:
        """Live and sticky status fields, the expected MoldUDP64 sequence number and the last
        gap (``last_gap_first``, ``last_gap_count``)."""
        out = {}
        for name in ("STATUS", "STATUS_STICKY"):
            v = self.read(name)
            for f in self.table[name].fields:
                out[f.name] = (v >> f.lsb) & ((1 << f.width) - 1)
        out["expected_seq"] = self.read64("STATUS_EXPECTED_SEQ")
        for name in ("STATUS_LAST_GAP_FIRST", "STATUS_LAST_GAP_COUNT"):
            if name + "_LO" in self.table:
                out[name[7:].lower()] = self.read64(name)
        return out

    def cycles(self) -> int:
        """``STATUS_CYCLES``: core clock cycles since the hard reset (the records' time base)."""
        return self.read64("STATUS_CYCLES")

    # ------------------------------------------------------------------ hardware clock
    def clock_ns(self) -> int:
        """``CLOCK_NOW``: the card's ns clock (the time base of the records' ``rx_ns``)."""
        return self.read64("CLOCK_NOW")

    def set_clock(self, ns: int) -> None:
        """Set the card's ns clock to ``ns`` (e.g. ``time.time_ns()``; PTP-style step)."""
        ns = int(ns)
        if not 0 <= ns < 1 << 64:
            raise ValueError(f"clock value must be in 0..2**64-1, not {ns}")
        self.write("CLOCK_SET_LO", ns & 0xFFFFFFFF)
        self.write("CLOCK_SET_HI", ns >> 32)
        self.write("CLOCK_CTRL", clk_load=1)

    def step_clock(self, delta_ns: int) -> None:
        """Move the card's clock by ``delta_ns`` (signed, within 32 bits) once."""
        d = int(delta_ns)
        if not -(1 << 31) <= d < 1 << 31:
            raise ValueError(f"a step must fit 32 bits signed, not {d}")
        self.write("CLOCK_ADJUST", d & 0xFFFFFFFF)
        self.write("CLOCK_CTRL", clk_step=1)

    def trim_clock(self, ppb: float = 0.0, *, clk_hz: float | None = None) -> tuple[int, int]:
        """Set the clock's rate: ns per core cycle for ``clk_hz`` (default: the build's
        ``ID_CLK_HZ``) made ``ppb`` parts per billion faster (a servo's frequency correction).
        Returns the ``(incr_ns, incr_frac)`` written (8.32 fixed point,
        :func:`hw.nsclock.increment`)."""
        from hw.nsclock import increment

        if clk_hz is None and self.info is None:
            raise CardError("the card was not identified: give clk_hz")
        hz = self.info.params.clk_hz if clk_hz is None else clk_hz
        inc_ns, inc_frac = increment(hz, ppb)
        self.write("CLOCK_INCR_NS", inc_ns)
        self.write("CLOCK_INCR_FRAC", inc_frac)
        return inc_ns, inc_frac

    def clear_sticky(self, *names: str) -> None:
        """Clear sticky status bits by field name (all of them when none is given)."""
        reg = self.table["STATUS_STICKY"]
        names = names or tuple(f.name for f in reg.fields)
        self.write("STATUS_STICKY", **dict.fromkeys(names, 1))

    def counter_names(self) -> list[str]:
        return [
            r.name[4:-3].lower() for r in self.table if r.name.startswith("CNT_") and r.half == "lo"
        ]

    def counters(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """64-bit counters by name (``frames``, ``messages``, ``msg_a``, ``bbo_updates``...)."""
        names = list(names) if names is not None else self.counter_names()
        return {n: self.read64(f"CNT_{n.upper()}") for n in names}

    def clear_counters(self) -> None:
        self.write("CTRL_PULSE", counters_clear=1)

    # ------------------------------------------------------------------ data path
    def send(self, frames, **kw) -> int:
        """Queue Ethernet frames for the card (simulated card, or a frame sink on xdma)."""
        return self.t.send_frames(frames, **kw)

    def run(self, **kw) -> int:
        """Let a simulated card process what was sent (no-op on hardware)."""
        return self.t.run(**kw)

    @property
    def depth_n(self) -> int:
        """Levels per side of this card's records (``ID_DEPTH_N``; 1 when not identified)."""
        return self.info.params.depth_n if self.info is not None else 1

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of this card's records (:func:`hw.bbo_record.dtype`)."""
        from hw import bbo_record

        return bbo_record.dtype(self.depth_n)

    def read_raw(self, max_records: int = 1 << 16):
        """``(records (n, record_bytes) uint8, cycles or None)`` as the transport delivers
        them."""
        return self.t.recv_records(max_records)

    def read_batch(self, max_records: int = 1 << 16) -> np.ndarray:
        """Up to ``max_records`` records decoded to :data:`hw.bbo_record` numpy records.

        On a simulated card the output cycle is added as field ``cycle``.
        """
        raw, cyc = self.t.recv_records(max_records)
        return decode_records(raw, cyc, depth_n=self.depth_n)

    def batches(self, max_records: int = 1 << 16) -> Iterator[np.ndarray]:
        """Decoded batches until the transport has nothing pending."""
        while True:
            b = self.read_batch(max_records)
            if len(b) == 0:
                return
            yield b

    def records(self, max_records: int = 1 << 16) -> Iterator[np.void]:
        """Decoded records one at a time (convenience; use :meth:`batches` for speed)."""
        for b in self.batches(max_records):
            yield from b

    def close(self) -> None:
        self.t.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_records(raw: np.ndarray, cycles: np.ndarray | None = None, *,
                   depth_n: int = 1) -> np.ndarray:
    """Decode ``(n, record_bytes(depth_n))`` raw records with :func:`hw.bbo_record.dtype`
    (adds ``cycle`` if given)."""
    from hw import bbo_record

    dt = bbo_record.dtype(depth_n)
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, dt.itemsize)
    rec = raw.reshape(-1).view(dt)
    if cycles is None:
        return rec
    out = np.empty(len(rec), dtype=_with_cycle(rec.dtype))
    for n in rec.dtype.names:
        out[n] = rec[n]
    out["cycle"] = cycles
    return out


_DT_CACHE: dict = {}


def _with_cycle(dt: np.dtype) -> np.dtype:
    if dt not in _DT_CACHE:
        _DT_CACHE[dt] = np.dtype([(n, dt.fields[n][0]) for n in dt.names] + [("cycle", "<u8")])
    # (a depth dtype's (d, 3) level arrays keep their shape: fields[n][0] is the subarray)
    return _DT_CACHE[dt]
