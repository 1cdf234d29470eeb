"""The core side of a MAC adapter's testbench (``MacDownsizer``, ``MacRxFifo``): 64-bit beats
collected into frames with their error flag and the set of SOP stamps their beats carried."""

from __future__ import annotations


class MacSink:
    """Collects the adapter's ``o_payload`` beats into frames.

    ``frames``: ``(bytes, error)`` per frame in arrival order; ``stamps``: per frame, the set of
    ``o_sop_ns`` values its beats carried (one value when the stamp is right); ``overflows``:
    cycles with the adapter's ``overflow`` pulse.
    """

    def __init__(self, dut):
        self.dut = dut
        self.frames: list[tuple[bytes, bool]] = []
        self.stamps: list[set[int]] = []
        self.overflows = 0
        self._cur = bytearray()
        self._cur_ns: set[int] = set()

    def sample(self, ctx, ready: bool) -> None:
        """One core cycle: drive ``o_ready`` then (after a delta) take a beat if one moves."""
        dut = self.dut
        if ready and ctx.get(dut.o_valid):
            p = ctx.get(dut.o_payload)
            n = bin(p.keep).count("1")
            self._cur += int(p.data).to_bytes(8, "little")[:n]
            self._cur_ns.add(ctx.get(dut.o_sop_ns))
            if p.last:
                self.frames.append((bytes(self._cur), bool(p.error)))
                self.stamps.append(self._cur_ns)
                self._cur, self._cur_ns = bytearray(), set()
        self.overflows += ctx.get(dut.overflow)

    @property
    def partial(self) -> bytes:
        """Bytes of a frame begun and not ended (empty when every frame came out whole)."""
        return bytes(self._cur)
