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

from amaranth.hdl import Cat, Module, Mux, Signal, signed
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
        ``load`` high for a cycle: ``now`` shows ``set_value`` two cycles later, remainder 0.
    adjust : In(signed(32)), step : In(1)
        ``step`` high for a cycle: the clock moves by ``adjust`` ns once, on top of the
        increments (``now`` shows it three cycles later; ``load`` wins over ``step``).
    incr_ns : In(8), incr_frac : In(32)
        The rate, ns per cycle in 8.32 fixed point (:func:`increment`).

    Latency: a load shows on ``now`` 2 cycles after its pulse, a step 3 cycles after its pulse
    (a step pulsed the cycle before a load is lost). After a load at cycle ``L``,
    ``now(L + 2 + n) = set_value + n * incr_ns + floor(max(n - 2, 0) * incr_frac / 2**32)``
    (mod 2**64) while the rate is unchanged (``tests/hw/test_nsclock.py``). Throughput: one
    update per cycle; no stream, no backpressure. These delays are constant, so ``now`` is the
    exact clock seen through a fixed pipeline (one load and the increments after it).

    Pipelining (the 322 MHz goal of <= 6 logic levels): no add is wider than 34 bits. The
    fraction's carry is registered (``c_frac``); the cycle's increment ``inc`` = ``incr_ns`` +
    that carry (+ ``adjust`` on a step) is registered; the count is kept as 32 low bits and
    32 high bits with the low half's carry or borrow (``delta``, -1..1) registered and added to
    the high half in the next cycle; ``now`` is a register of ``lo`` and ``hi + delta``. The
    one 64-bit add per cycle before was 16 logic levels (the small top's worst path).
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
        c_frac = Signal()  # the fraction's carry of the last cycle: one more ns
        fsum = Signal(FRAC_BITS + 1)
        m.d.comb += fsum.eq(frac + self.incr_frac)
        inc = Signal(signed(34))  # this cycle's increment (a step's adjust included)
        lo = Signal(32)
        hi = Signal(32)
        delta = Signal(signed(2))  # lo's carry (+1) or borrow (-1) of the last cycle
        lo_sum = Signal(signed(35))
        hi_now = Signal(32)  # the high half with the last cycle's carry or borrow
        m.d.comb += [lo_sum.eq(lo + inc), hi_now.eq(hi + delta)]
        m.d.sync += [
            frac.eq(fsum[:FRAC_BITS]),
            c_frac.eq(fsum[FRAC_BITS]),
            inc.eq(self.incr_ns + c_frac + Mux(self.step & ~self.load, self.adjust, 0)),
            lo.eq(lo_sum[:32]),
            delta.eq(lo_sum[32:34]),
            hi.eq(hi_now),
            self.now.eq(Cat(lo, hi_now)),
        ]
        with m.If(self.load):
            # the increment in flight is dropped with the old fraction: after a load the
            # clock counts from set_value alone (and a step pulsed just before is lost)
            m.d.sync += [lo.eq(self.set_value[:32]), hi.eq(self.set_value[32:]), delta.eq(0),
                         frac.eq(0), c_frac.eq(0), inc.eq(self.incr_ns)]
        return m
