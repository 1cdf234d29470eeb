"""Statistics counters with a split carry, so a wide counter is no deeper than a narrow one.

A plain ``c.eq(c + by)`` of 48 bits is a 48-bit carry chain (6 CARRY8 levels on UltraScale+)
behind whatever logic decides the increment: the deepest path of several ingress blocks
(docs/synthesis.md). :func:`counter` splits it into a low part of :data:`LOW_BITS` bits and a
high part that adds the low part's carry (and the high bits of ``by``) one cycle later, from
registers. The value it returns is read from registers only and is **coherent**: it is exactly
the count one cycle earlier (the low part is read through a one-cycle delay register aligned
with the high part), never a torn mix of a wrapped low part and a stale high part.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value

__all__ = ["LOW_BITS", "counter", "counter_lag"]

LOW_BITS = 24
"""Width of the low part (3 CARRY8 levels); counters no wider than this are not split."""


def counter_lag(width: int, low: int = LOW_BITS) -> int:
    """Cycles by which :func:`counter`'s value trails a plain counter: 1 if split, else 0."""
    return 1 if width > low else 0


def counter(m: Module, width: int, *, en: Value, by: Value | int = 1, name: str,
            low: int = LOW_BITS, clear: Value | None = None) -> Signal:
    """A ``width``-bit wrapping counter adding ``by`` in every cycle where ``en`` is set.

    Parameters
    ----------
    m : Module
        Module the counter's registers are added to (``sync`` domain).
    width : int
        Counter width (wraps modulo ``2**width``).
    en : Value
        Add ``by`` at the next clock edge.
    by : Value or int
        Increment (truncated to ``width`` bits; default 1).
    name : str
        Prefix of the registers' names.
    low : int
        Width of the low part; a counter of at most ``low`` bits is a plain register.
    clear : Value, optional
        Zero the count at the next clock edge (over an increment in the same cycle). Every
        register of a split counter is zeroed with it, carries owed to the high part
        included, so the value is 0 from the next cycle on, with no lag and never torn.

    Returns
    -------
    Signal
        The count, driven by registers only. Split (``width > low``): the count of every
        increment up to and including the one applied two edges ago, i.e. it trails a plain
        counter by :func:`counter_lag` cycles, always a value the plain counter had.
    """
    value = Signal(width, name=name)
    by_v = Value.cast(by) if not isinstance(by, int) else Const(by, max(1, by.bit_length()))
    if width <= low:
        acc = Signal(width, name=f"{name}_acc")
        with m.If(en):
            m.d.sync += acc.eq(acc + by_v[:width])
        if clear is not None:
            with m.If(clear):
                m.d.sync += acc.eq(0)
        m.d.comb += value.eq(acc)
        return value
    hw = width - low
    lo = Signal(low, name=f"{name}_lo")  # the low part, current
    lo_d = Signal(low, name=f"{name}_lo_d")  # the low part one cycle ago (aligned with hi)
    hi = Signal(hw, name=f"{name}_hi")
    cy = Signal(name=f"{name}_cy")  # carry out of the low part, owed to hi
    bh = Signal(hw, name=f"{name}_bh")  # high bits of the increment, owed to hi
    s = Signal(low + 1, name=f"{name}_sum")
    m.d.comb += s.eq(lo + by_v[:low])
    m.d.sync += [lo_d.eq(lo), hi.eq(hi + bh + cy), cy.eq(0), bh.eq(0)]
    with m.If(en):
        m.d.sync += [lo.eq(s[:low]), cy.eq(s[low])]
        if len(by_v) > low:
            m.d.sync += bh.eq(by_v[low:width])
    if clear is not None:
        with m.If(clear):
            m.d.sync += [lo.eq(0), lo_d.eq(0), hi.eq(0), cy.eq(0), bh.eq(0)]
    m.d.comb += value.eq(Cat(lo_d, hi))
    return value
