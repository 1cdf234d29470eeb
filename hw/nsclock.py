"""A host-set, host-trimmed 64-bit nanosecond clock for the card's hardware timestamps.

PTP-style: the host *sets* the clock (``load`` with ``set_value``), *trims* its rate
(``incr_ns`` + ``incr_frac``: nanoseconds per core clock cycle as an 8.32 fixed-point number)
and *steps* it (``step`` adds the signed ``adjust`` once), all through registers
(``CLOCK_*``, docs/registers.md). :class:`hw.top.Top` stamps each frame with ``now`` at its
first MAC beat (``rx_ns`` of the BBO record, hw/bbo_record.py).

Why fixed point: the nominal core clock (322.265625 MHz) is 3.1030303… ns per cycle; an 8.32
increment keeps the rate error below 2**-32 ns per cycle (0.08 ppb at 3.1 ns), far finer than
any oscillator a servo would correct, and lets the host trim the rate in ppb steps.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["NsClock", "FRAC_BITS", "increment"]

FRAC_BITS = 32
"""Fraction bits of the increment and of the clock's hidden sub-nanosecond part."""


def increment(clk_hz: float, ppb: float = 0.0) -> tuple[int, int]:
    """``(incr_ns, incr_frac)`` for a core clock of ``clk_hz`` Hz, trimmed by ``ppb`` (parts
    per billion faster when positive): round(2**32 · 1e9 / clk_hz · (1 + ppb·1e-9)).

    Raises ValueError when the clock is outside ~3.9 MHz .. 2 GHz (the integer part must fit
    in 8 bits and be at least 0.5 ns).
    """
    if not (isinstance(clk_hz, int | float) and 3.92e6 <= clk_hz <= 2e9):
        raise ValueError(f"clock must be in 3.92e6..2e9 Hz, not {clk_hz!r}")
    if not isinstance(ppb, int | float) or abs(ppb) > 1e6:
        raise ValueError(f"ppb must be within +-1e6, not {ppb!r}")
    # integers only past this point: the host and the gateware agree bit for bit
    q = round((1 << FRAC_BITS) * 1e9 * (1 + ppb * 1e-9) / clk_hz)
    return q >> FRAC_BITS, q & ((1 << FRAC_BITS) - 1)


class NsClock(wiring.Component):
    """64-bit ns clock: ``now`` advances by ``incr_ns + incr_frac / 2**32`` every cycle.

    Ports
    -----
    now : Out(64)
        The clock, ns (registered). The sub-nanosecond remainder is kept inside.
    set_value : In(64), load : In(1)
        ``load`` high for a cycle: ``now`` becomes ``set_value`` on the next cycle, remainder 0.
    adjust : In(signed(32)), step : In(1)
        ``step`` high for a cycle: ``now`` moves by ``adjust`` ns on top of that cycle's
        increment (``load`` wins over ``step``).
    incr_ns : In(8), incr_frac : In(32)
        The rate, ns per cycle in 8.32 fixed point (:func:`increment`).

    Latency: ``now`` shows a load or a step one cycle after the pulse. Throughput: one update
    per cycle; no stream, no backpressure. The update is one 64-bit add (plus the adjust on a
    step) per cycle.
    """

    def __init__(self):
        super().__init__({
            "now": Out(64),
            "set_value": In(64),
            "load": In(1),
            "adjust": In(signed(32)),
            "step": In(1),
            "incr_ns": In(8),
            "incr_frac": In(FRAC_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        frac = Signal(FRAC_BITS)
        fsum = Signal(FRAC_BITS + 1)
        m.d.comb += fsum.eq(frac + self.incr_frac)
        adv = Signal(9)  # whole ns this cycle: the integer part and the fraction's carry
        m.d.comb += adv.eq(self.incr_ns + fsum[FRAC_BITS])
        with m.If(self.load):
            m.d.sync += [self.now.eq(self.set_value), frac.eq(0)]
        with m.Elif(self.step):
            m.d.sync += [self.now.eq(self.now + adv + self.adjust), frac.eq(fsum[:FRAC_BITS])]
        with m.Else():
            m.d.sync += [self.now.eq(self.now + adv), frac.eq(fsum[:FRAC_BITS])]
        return m
