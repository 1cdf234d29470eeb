"""Wide arithmetic in :data:`CHUNK`-bit pieces, for paths that must stay a few logic levels
deep at 322 MHz (a 64-bit carry chain alone is 8 CARRY8 levels on UltraScale+).

Shared by :mod:`hw.arbiter` (the packet-end and expected-number compares), :mod:`hw.moldudp`
(a header's ``seq + count``, the session compares) and :mod:`hw.book` (the post stage's
before/after compare, registered in pieces), :mod:`hw.order_table` (the way match's
equalities as carry chains, the per-slot selects as :func:`mux_tree`). Intermediate nets carry
``keep`` so that the mapper does not fold the pieces back into one long chain.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, Value

__all__ = [
    "CHUNK", "add_small", "all_ones", "carry_out", "eq_carry", "ge", "mux_tree", "piece_eq",
    "any_kept", "prefix_or",
]

CHUNK = 16


def carry_out(m, a, b, cin, name):
    """Carry out of ``a + b + cin`` (same width) from :data:`CHUNK`-bit pieces: each piece's
    generate (``a > ~b``: its own carry out, one LUT and a CARRY8 chain of two levels) and
    propagate (``a ^ b`` all ones, LUTs), in parallel, then a lookahead of two LUT levels:
    groups of up to three pieces (kept as nets, so the mapper does not turn the lookahead into
    one long mux chain), then across the groups. A 64-bit chain would be 8 CARRY8 levels."""
    a, b = Value.cast(a), Value.cast(b)
    gs, ps = [], []
    for i, lo in enumerate(range(0, len(a), CHUNK)):
        hi = min(len(a), lo + CHUNK)
        g = Signal(name=f"{name}_g{i}", attrs={"keep": 1})
        p = Signal(name=f"{name}_p{i}", attrs={"keep": 1})
        m.d.comb += [g.eq(a[lo:hi] > ~b[lo:hi]),
                     p.eq(all_ones(m, a[lo:hi] ^ b[lo:hi], f"{name}_p{i}"))]
        gs.append(g)
        ps.append(p)
    # groups from the top, so the lowest group (which also takes cin) is the smallest
    n = len(gs)
    bounds = list(range(n, 0, -3))
    groups = [(max(0, top - 3), top) for top in bounds]
    r = Const(cin, 1)
    terms = []
    for gi, (lo, top) in enumerate(reversed(groups)):
        gg = Signal(name=f"{name}_G{gi}", attrs={"keep": 1})
        pp = Signal(name=f"{name}_P{gi}", attrs={"keep": 1})
        c = Const(0, 1) if gi else r  # the lowest group folds cin in
        for q in range(lo, top):
            c = gs[q] | (ps[q] & c)
        allp = Const(1, 1)
        for q in range(lo, top):
            allp = allp & ps[q]
        m.d.comb += [gg.eq(c), pp.eq(allp)]
        terms.append((gg, pp))
    r = Const(0, 1)
    for gg, pp in terms:
        r = gg | (pp & r)
    return r


def all_ones(m, v, name):
    """All bits of ``v`` set, as :data:`CHUNK`-bit pieces kept as nets (two LUT levels each)
    and their AND: the mapper otherwise builds wide ANDs as mux chains."""
    v = Value.cast(v)
    parts = []
    for i, lo in enumerate(range(0, len(v), CHUNK)):
        q = Signal(name=f"{name}_all{i}", attrs={"keep": 1})
        m.d.comb += q.eq(v[lo : lo + CHUNK].all())
        parts.append(q)
    return Cat(*parts).all()


def ge(m, a, b, name):
    """``a >= b`` (unsigned): the carry out of ``a + ~b + 1`` at the wider width."""
    a, b = Value.cast(a), Value.cast(b)
    w = max(len(a), len(b))
    a = Cat(a, Const(0, w - len(a))) if len(a) < w else a
    b = Cat(b, Const(0, w - len(b))) if len(b) < w else b
    return carry_out(m, a, ~b, 1, name)


def add_small(m, a, b, name):
    """``a + b`` (``len(a) + 1`` bits) for a ``b`` of at most :data:`CHUNK` bits, carry-select:
    the low piece's sum and every higher piece plus one in parallel, then a select."""
    a, b = Value.cast(a), Value.cast(b)
    lo = Signal(CHUNK + 1, name=f"{name}_lo", attrs={"keep": 1})
    m.d.comb += lo.eq(a[:CHUNK] + b)
    parts, c = [lo[:CHUNK]], lo[CHUNK]
    for i, base in enumerate(range(CHUNK, len(a), CHUNK)):
        piece = a[base : base + CHUNK]
        inc = Signal(len(piece), name=f"{name}_inc{i}", attrs={"keep": 1})
        ones = Signal(name=f"{name}_ones{i}", attrs={"keep": 1})
        m.d.comb += [inc.eq(piece + 1), ones.eq(piece == (1 << len(piece)) - 1)]
        parts.append(Mux(c, inc, piece))
        c = c & ones
    return Cat(*parts, c)


def piece_eq(a, b, piece=CHUNK):
    """``a == b`` per ``piece``-bit piece, low piece first: one bit per piece, 1 = equal. A
    value, not a net: the caller registers it (or names it), so that a wide compare is split
    over a register and the pieces are combined in the next cycle."""
    a, b = Value.cast(a), Value.cast(b)
    return Cat(*(a[i : i + piece] == b[i : i + piece] for i in range(0, len(a), piece)))


def eq_carry(a, b):
    """``a == b`` as 3-bit :func:`piece_eq` pieces (6 inputs: one LUT each) and the carry out
    of their sum with 1 (all pieces equal): a carry chain, 8 pieces a level, which the mapper
    cannot fold into chains of wide LUTs (MUXF7/F8/F9) as it does a tree of LUTs. 64 bits:
    one LUT level and 22 carry bits (3 levels)."""
    pieces = piece_eq(a, b, 3)
    return (Cat(pieces, Const(0, 1)) + 1)[len(pieces)]


def mux_tree(m, values, index, name):
    """``values[index]`` as a tree of 4:1 muxes whose outputs are nets kept (``keep``):
    ``values`` padded with its last element to a power of two, two bits of ``index`` a stage.

    An :class:`~amaranth.hdl.Array` or ``bit_select`` with a signal index is a ``$shiftx``,
    which ``synth_xilinx`` and ABC (whose wide LUTs, LUT6 with MUXF7/F8/F9, count one level
    there) turned into chains of MUXF7/F8/F9 at 256 values: 14 levels counted per cell; a plain
    tree of 2:1 muxes gave the same chains. ABC still maps across the kept nets, but less: a
    256-way select of 8-bit values was 4 stages, LUT6 then three LUT + MUXF7 (7 levels),
    2026-12-07. A small memory with an asynchronous read port (LUTRAM) is shallower."""
    vals = list(values)
    bits = max(1, (len(vals) - 1).bit_length())
    vals += [vals[-1]] * ((1 << bits) - len(vals))
    for lvl, b in enumerate(range(0, bits, 2)):
        nxt = []
        for i in range(0, len(vals), 4 if b + 1 < bits else 2):
            if b + 1 < bits:
                v = Mux(index[b + 1], Mux(index[b], vals[i + 3], vals[i + 2]),
                        Mux(index[b], vals[i + 1], vals[i]))
            else:
                v = Mux(index[b], vals[i + 1], vals[i])
            if len(vals) > 4 or b + 2 < bits:
                n = Signal(len(Value.cast(vals[i])), name=f"{name}_m{lvl}_{len(nxt)}",
                           attrs={"keep": 1})
                m.d.comb += n.eq(v)
                v = n
            nxt.append(v)
        vals = nxt
    return vals[0]


def prefix_or(m, bits, name):
    """Every prefix OR of ``bits``: ``(out[i], any)`` with ``out[i] = bits[0] | ... | bits[i]``
    and ``any = out[-1]``, two LUT levels for up to 24 bits.

    Written as ``Cat(bits[:i + 1].any() for i ...)`` the prefixes share their terms, and ABC
    maps them to one chain of LUT2s, a level per bit: 16 bits were 13 levels in the ladder's
    cache update (the U250 book, 2026-12-07, 16 levels reg to reg). Here the ORs of groups of
    four bits are nets kept from the mapper, each prefix is the OR of the groups below its own
    and its own group's bits below it (at most 5 + 4 inputs), and ``any`` the OR of the groups.
    """
    bits = Value.cast(bits)
    n = len(bits)
    groups = _or_groups(m, bits, name)
    out = Signal(n, name=f"{name}_pre")
    for i in range(n):
        g = i // 4
        m.d.comb += out[i].eq(Cat(*groups[:g], bits[4 * g : i + 1]).any())
    anyb = Signal(name=f"{name}_any", attrs={"keep": 1})
    m.d.comb += anyb.eq(Cat(*groups).any())
    return out, anyb


def _or_groups(m, bits, name):
    groups = []
    for g, lo in enumerate(range(0, len(bits), 4)):
        q = Signal(name=f"{name}_g{g}", attrs={"keep": 1})
        m.d.comb += q.eq(bits[lo : lo + 4].any())
        groups.append(q)
    return groups


def any_kept(m, bits, name):
    """``bits.any()`` as ORs of four bits kept from the mapper, then their OR: two LUT levels
    for up to 24 bits (see :func:`prefix_or` for the chain the mapper builds otherwise)."""
    bits = Value.cast(bits)
    anyb = Signal(name=f"{name}_any", attrs={"keep": 1})
    m.d.comb += anyb.eq(Cat(*_or_groups(m, bits, name)).any())
    return anyb
