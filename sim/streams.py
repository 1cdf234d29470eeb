"""Shared cocotb stream helpers: source, sink, protocol monitor, idle/backpressure generators.

Works on the Verilog that Amaranth generates for an ``amaranth.lib.stream`` signature member
``<prefix>``: ports ``<prefix>__payload``, ``<prefix>__valid`` and ``<prefix>__ready`` (a member
without ``ready`` is driven as always ready). Payloads are ints, or dicts packed/unpacked with
the Amaranth layout of the stream (``hw.layouts.pack`` / ``hw.layouts.unpack``).

Timing model (the same in every helper, so they can share a port): each helper wakes on the
rising edge, first retires the transfer decided at the previous read-only phase, then drives
its outputs for the new cycle, then waits for ``ReadOnly`` and samples ``valid``/``ready``.
A transfer happens at a rising edge iff ``valid & ready`` were both high in the read-only
phase before it, which is exactly the synchronous rule the gateware uses.

Cycle numbers (``cycle`` attributes, transfer timestamps) are ``sim time // period``, so helpers
started at different times agree on them.

Usage::

    src = StreamSource(dut, "i_stream", dut.clk, layout=mac_beat_layout(64), idle=pauses(0.2))
    sink = StreamSink(dut, "o_stream", dut.clk, layout=ItchRecord, backpressure=pauses(0.3))
    mon = StreamMonitor(dut, "o_stream", dut.clk, layout=ItchRecord)
    src.send_nowait(beat)           # queue; or ``await src.send(beat)``
    rec = await sink.recv()
    ...
    mon.check_idle()
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import cocotb
from cocotb.triggers import Event, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

__all__ = [
    "StreamSource",
    "StreamSink",
    "StreamMonitor",
    "pauses",
    "bursts",
    "never",
    "frame_to_beats",
    "cycle_now",
    "start_clock",
    "reset_dut",
    "frame_arrivals",
]

_PERIOD_NS = 10


def cycle_now() -> int:
    """Current clock cycle number (sim time // period), shared by every helper."""
    return int(get_sim_time("ns")) // _PERIOD_NS


async def start_clock(clk, period_ns: int = 10) -> None:
    """Start a free-running clock of ``period_ns`` on ``clk``."""
    from cocotb.clock import Clock

    global _PERIOD_NS
    _PERIOD_NS = period_ns
    Clock(clk, period_ns, unit="ns").start()


async def frame_arrivals(dut, prefix: str, clk, layout, on_arrival: Callable[[], None]) -> None:
    """Call ``on_arrival()`` in the first cycle each frame's first beat is valid on the stream
    ``prefix`` (``layout`` has a ``last`` field), at ReadOnly of that cycle: the arrival a
    MAC timestamp records, whatever backpressure follows. Start it before the first beat."""
    from hw.layouts import unpack

    valid_s = getattr(dut, f"{prefix}__valid")
    ready_s = getattr(dut, f"{prefix}__ready")
    payload_s = getattr(dut, f"{prefix}__payload")
    have = False
    while True:
        await ReadOnly()  # this cycle first: the source may already drive valid
        valid = int(valid_s.value)
        if valid and not have:
            on_arrival()
            have = True
        if valid and int(ready_s.value) and unpack(layout, payload_s.value)["last"]:
            have = False
        await RisingEdge(clk)


async def reset_dut(dut, clk, cycles: int = 3, rst_name: str = "rst") -> None:
    """Hold ``rst`` high for ``cycles`` rising edges (zeroing ``*_valid``/``*_ready`` first)."""
    rst = getattr(dut, rst_name)
    rst.value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    rst.value = 0
    await RisingEdge(clk)


# --- idle / backpressure generators ------------------------------------------------------------


def pauses(p: float, seed: int = 0) -> Iterator[bool]:
    """Endless ``True`` (pause this cycle) with probability ``p``, seeded."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < p


def bursts(on: int, off: int, seed: int | None = None) -> Iterator[bool]:
    """``off`` pause cycles after every ``on`` active cycles (random lengths up to those when
    ``seed`` is given)."""
    rng = random.Random(seed) if seed is not None else None
    while True:
        n_on = rng.randint(1, on) if rng else on
        n_off = rng.randint(0, off) if rng else off
        yield from [False] * n_on
        yield from [True] * n_off


def never() -> Iterator[bool]:
    """Never pause (full rate)."""
    while True:
        yield False


def frame_to_beats(frame: bytes, width: int = 64, *, error: bool = False) -> list[dict]:
    """Split a frame into MAC beats (``hw.layouts.mac_beat_layout(width)`` dicts).

    Byte 0 of each beat goes to bits 7:0; ``keep`` is contiguous from bit 0; ``error`` is set
    on the last beat only.
    """
    nb = width // 8
    if not frame:
        raise ValueError("empty frame")
    beats = []
    for off in range(0, len(frame), nb):
        chunk = frame[off : off + nb]
        last = off + nb >= len(frame)
        beats.append(
            {
                "data": int.from_bytes(chunk, "little"),
                "keep": (1 << len(chunk)) - 1,
                "last": int(last),
                "error": int(last and error),
            }
        )
    return beats


def _sig(dut, prefix: str, name: str):
    return getattr(dut, f"{prefix}__{name}", None)


def _pack(layout, payload) -> int:
    if isinstance(payload, dict):
        if layout is None:
            raise TypeError("a dict payload needs the stream's layout")
        from hw.layouts import pack

        return pack(layout, payload)
    return int(payload)


def _unpack(layout, value: int):
    if layout is None:
        return value
    from hw.layouts import unpack

    return unpack(layout, value)


def _int(handle) -> int:
    v = handle.value
    try:
        return int(v)
    except ValueError:  # X/Z
        raise AssertionError(f"{handle._name} is X/Z: {v}") from None


class StreamSource:
    """Drive a stream: queue payloads, present one per cycle unless ``idle`` says pause.

    Parameters
    ----------
    dut : cocotb handle
    prefix : str
        Stream member name (``i_stream``).
    clk : cocotb handle
    layout : amaranth.lib.data.Layout, optional
        Payload layout for dict payloads.
    idle : iterator of bool, optional
        ``True`` = keep ``valid`` low this cycle (before presenting the next item).
    """

    def __init__(self, dut, prefix: str, clk, *, layout=None, idle: Iterable[bool] | None = None):
        self.payload = _sig(dut, prefix, "payload")
        self.valid = _sig(dut, prefix, "valid")
        self.ready = _sig(dut, prefix, "ready")
        self.clk = clk
        self.layout = layout
        self.idle = iter(idle) if idle is not None else never()
        self.queue: deque = deque()
        self.sent = 0
        self.on_transfer: Callable[[object, int], None] | None = None
        self._done = Event()
        self._done.set()
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send_nowait(self, payload) -> None:
        """Queue one payload (dict or int)."""
        self.queue.append(payload)
        self._done.clear()

    def extend(self, payloads: Iterable) -> None:
        for p in payloads:
            self.send_nowait(p)

    async def send(self, payload) -> None:
        """Queue one payload and wait until it has been transferred."""
        self.send_nowait(payload)
        await self.wait_idle()

    async def wait_idle(self) -> None:
        """Wait until every queued payload has been transferred."""
        if self.queue or self._cur is not None:
            self._done.clear()
            await self._done.wait()

    def idle_now(self) -> bool:
        return not self.queue and self._cur is None

    _cur = None

    async def _run(self) -> None:
        xfer = False
        while True:
            await RisingEdge(self.clk)
            if xfer:
                self.sent += 1
                if self.on_transfer is not None:
                    self.on_transfer(self._cur, cycle_now() - 1)
                self._cur = None
            if self._cur is None and self.queue and not next(self.idle):
                self._cur = self.queue.popleft()
                self.payload.value = _pack(self.layout, self._cur)
            if self._cur is None:
                self.valid.value = 0
                if not self.queue:
                    self._done.set()
            else:
                self.valid.value = 1
            await ReadOnly()
            # ready may be X while nothing is presented (e.g. before reset): only read it
            # when it matters
            xfer = self._cur is not None and (self.ready is None or bool(_int(self.ready)))


class StreamSink:
    """Accept a stream into ``queue`` (unpacked with ``layout``), with optional backpressure.

    Parameters
    ----------
    backpressure : iterator of bool, optional
        ``True`` = hold ``ready`` low this cycle.
    """

    def __init__(
        self, dut, prefix: str, clk, *, layout=None, backpressure: Iterable[bool] | None = None
    ):
        self.payload = _sig(dut, prefix, "payload")
        self.valid = _sig(dut, prefix, "valid")
        self.ready = _sig(dut, prefix, "ready")
        self.clk = clk
        self.layout = layout
        self.backpressure = iter(backpressure) if backpressure is not None else never()
        self.queue: deque = deque()
        self.received = 0
        self.times: deque = deque()  # cycle of each transfer, parallel to queue
        self._event = Event()
        if self.ready is not None:
            self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    def empty(self) -> bool:
        return not self.queue

    def __len__(self) -> int:
        return len(self.queue)

    async def recv(self):
        """Next received payload (waits for one)."""
        while not self.queue:
            self._event.clear()
            await self._event.wait()
        self.times.popleft()
        return self.queue.popleft()

    def recv_nowait(self):
        self.times.popleft()
        return self.queue.popleft()

    async def _run(self) -> None:
        pending = None
        while True:
            await RisingEdge(self.clk)
            if pending is not None:
                self.queue.append(_unpack(self.layout, pending))
                self.times.append(cycle_now() - 1)
                self.received += 1
                self._event.set()
                pending = None
            if self.ready is not None:
                self.ready.value = 0 if next(self.backpressure) else 1
            await ReadOnly()
            ready = 1 if self.ready is None else _int(self.ready)
            if _int(self.valid) and ready:
                pending = _int(self.payload)


class StreamMonitor:
    """Check the valid/ready rules on a stream and time its transfers.

    Rules (AXI-Stream-like): once ``valid`` is high it stays high, with the payload unchanged,
    until the cycle in which ``ready`` is high too; ``valid`` and ``payload`` are never X/Z
    while ``valid`` is high. Violations raise ``AssertionError`` from the monitor task (cocotb
    fails the test) and are also collected in ``errors``.

    ``on_transfer(payload, t_valid, t_xfer)`` (optional) is called for every transfer with the
    cycle in which this item first became valid and the cycle of the transfer.
    """

    def __init__(self, dut, prefix: str, clk, *, layout=None, on_transfer=None, name=None):
        self.payload = _sig(dut, prefix, "payload")
        self.valid = _sig(dut, prefix, "valid")
        self.ready = _sig(dut, prefix, "ready")
        self.clk = clk
        self.layout = layout
        self.name = name or prefix
        self.on_transfer = on_transfer
        self.transfers = 0
        self.valid_cycles = 0
        self.stall_cycles = 0
        self.errors: list[str] = []
        self._task = cocotb.start_soon(self._run())

    def _fail(self, msg: str) -> None:
        self.errors.append(msg)
        raise AssertionError(f"stream {self.name}: {msg}")

    def check(self) -> None:
        """Raise if any violation was seen."""
        assert not self.errors, self.errors

    async def _run(self) -> None:
        held = None  # payload of an item that was valid and not accepted
        t_valid = None
        while True:
            await RisingEdge(self.clk)
            await ReadOnly()
            valid = _int(self.valid)
            ready = 1 if self.ready is None or not valid else _int(self.ready)
            cyc = cycle_now()
            if held is not None:
                if not valid:
                    self._fail(f"valid dropped without a transfer at cycle {cyc}")
                p = _int(self.payload)
                if p != held:
                    self._fail(f"payload changed while stalled at cycle {cyc}: {held:#x} -> {p:#x}")
            if valid:
                p = _int(self.payload)
                self.valid_cycles += 1
                if t_valid is None:
                    t_valid = cyc
                if ready:
                    self.transfers += 1
                    if self.on_transfer is not None:
                        self.on_transfer(_unpack(self.layout, p), t_valid, cyc)
                    held = None
                    t_valid = None
                else:
                    self.stall_cycles += 1
                    held = p
            else:
                held = None
                t_valid = None
