"""Price ladder: level operations of (slot, side) in, exact top-N of both sides out.

Step 1 of the deep book of issue 13 (docs/book-design.md, docs/ladder.md). Per (slot, side)
the block keeps

- a circular **ladder** of ``depth`` ticks in one memory (URAM-shaped: ``depth`` x
  (``size_width`` + ``count_width``) per side): entry ``key mod depth`` holds ``(sz, ct)`` of
  the level at tick ``key``;
- an **occupancy bitmap** of ``depth / 64`` words of 64 bits (one memory) plus a
  ``depth / 64``-bit **summary** word (in the side's state word): the summary says which
  bitmap words are non-zero, so a next-occupied search is one priority encoder on the summary
  and one on a word. A bitmap word whose summary bit is 0 is garbage, and a ladder entry whose
  bitmap bit is 0 is garbage: clearing a slot is O(1) (zero its two state words);
- a **top-K cache** (in the side's state word): the ``c <= K`` best represented levels, best
  first, with ``key, px, sz, ct``; the output record reads it, never the ladder;
- the **window** ``[lo, lo + depth)`` of represented keys, ``nlev`` (represented levels),
  ``span_hi`` (upper bound of the represented keys), and the **far** levels: the best of them
  exact in the **far cache** (``fc_*``: key, price, size, count; in the side's state word),
  the others as counts ``far_orders`` / ``far_lo``.

Keys: ``idx = px / tick`` (tick per slot: 1, 100 or 10000, written through the ``tick_*``
port; exact constant-reciprocal multiply, a price off the grid is ``off_grid``); asks use
``key = idx``, bids ``key = ~idx`` (32 bits), so on both sides a smaller key is a better price
and every search runs upwards.

Rules (mirrored by ``sim/ladder/ladder_model.py``):

- ADD at ``k``: far when ``k >= fc_key`` (far cache valid) or far orders are counted and
  ``k >= far_lo``: at ``fc_key`` the far cache's level grows, else ``far_orders += 1``,
  ``far_lo = min(far_lo, k)``; otherwise represented, after moving the window: side without
  represented levels: ``lo = k``; ``k < lo``: ``lo = k``, evicting every represented level at
  ``>= k + depth`` (a scan under backpressure, only when ``span_hi >= k + depth``);
  ``k >= lo + depth``: ``lo = k - depth + 1`` when that keeps the best level in the window,
  else a new far level.
- A new far level (that ADD, or an evicted level better than the far cache's) becomes the
  far cache's; the far cache's level before it joins the counts (``far_lo = its key``). So
  represented keys < ``fc_key`` < ``far_lo``: the far cache holds the best far level, exact.
- RED at ``k``: at ``fc_key``: the far cache's ``sz -= q``, ``ct -= remove`` (empty at
  ``ct == 0``); else far when far orders are counted and ``k >= far_lo`` (``far_orders -=
  remove``); otherwise the represented level's ``sz -= q``, ``ct -= remove``; the level
  disappears when ``ct`` reaches 0.
- Promotion: after a RED, a side without represented levels whose far cache holds a level
  (size below 2**32, an op's shares) moves its window onto it: ``lo = fc_key``, the level
  becomes represented (an internal ADD of the whole level, no record), the far cache empties.
  The orders that follow the touch there are then represented, not counted.
- CLR: both sides of the slot empty, flags cleared.
- Every represented key is below the far levels, so the cache's levels are the best levels of
  the side, and the far cache's level the next. A record shows the cached levels, then the far
  cache's; it is ``valid`` unless the slot is *bad* (sticky until CLR: ``off_grid``,
  ``size_overflow``, ``missing``) or a side shows fewer than ``n`` levels while far orders are
  counted (``far_visible``: a counted far level would show in the top ``n``). A far stub left
  alone when the near levels drain is the far cache's level: shown, exact, valid.

Organisation (docs/ladder.md, "Controller"): a 5-stage front end (tick divide in DSP partial
products, grid check, key) runs ahead of a controller that applies the ops to the side state.
With ``divided`` (what :class:`hw.book.Book` builds) the caller has divided already (the op
carries ``idx`` and ``offg``; the book's order table divides beside its own pipeline) and the
front end is one stage (the key register).
An op on a represented level that needs no refill takes 3 cycles (CMP, DECIDE, RMW3): DECIDE
reads the next op's state words, ladder entry and bitmap word, and RMW3 (which writes this
op's level, bitmap word and side state) takes that op with forwarding (its side state from
this op's result when it is on the same slot, its ladder entry / bitmap word from this op's
new values when they are the same), so that its CMP follows; this op's record waits one
cycle in a pending register. Other ops take the slow path (take, LOAD, ..., WB: 4 cycles
for a far op (its DECIDE picks the far cache or the counts, FAR applies it), more with a
refill or an eviction scan (each evicted level also computes its price). Not one op per
cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.arith import any_kept, prefix_or

__all__ = [
    "Ladder",
    "LadderOp",
    "LADDER_COUNTERS",
    "TICKS",
    "TICK_MAGIC",
    "ladder_op_layout",
    "ladder_out_layout",
    "div_tick",
]

PX_WIDTH = 32
Q_WIDTH = 32
KEY_WIDTH = 32
COUNTER_WIDTH = 32

TICKS: tuple[int, ...] = (1, 100, 10000)
"""Tick sizes selectable per slot (code 0, 1, 2), in Price(4) units."""

TICK_MAGIC: dict[int, tuple[int, int]] = {100: (1374389535, 37), 10000: (3518437209, 45)}
"""``d -> (m, s)`` with ``(x * m) >> s == x // d`` for every 32-bit ``x`` (m = ceil(2^s / d);
``(m d - 2^s)(2^32 - 1) < 2^s``)."""

LADDER_COUNTERS: tuple[tuple[str, str], ...] = (
    ("ops", "level ops accepted"),
    ("far_visible", "records with valid=0 because a far level would show in the top n"),
    ("off_grid", "ops whose price is not a multiple of the slot's tick (slot marked bad)"),
    ("size_overflow", "adds whose level size or count would not fit (slot marked bad)"),
    ("missing", "reduces of a level that is not there or is too small (slot marked bad)"),
    ("far_ops", "ops applied to the far levels (the far cache or the far counts)"),
    ("slides", "window moves (either direction)"),
    ("evicted", "represented levels moved to the far levels by a slide"),
    ("refill_levels", "levels copied from the ladder into a cache"),
    ("busy_cycles", "cycles with an op offered and not accepted"),
    ("pairs", "ADDs applied one cycle after the RED before them (replace pairs)"),
    ("promotions", "far cache levels made represented: the window moved onto them after a RED "
                   "left the side without represented levels"),
)


class LadderOp:
    """Op codes of :func:`ladder_op_layout` ``kind``."""

    ADD = 0  # sz += q, ct += 1
    RED = 1  # sz -= q, ct -= remove
    CLR = 2  # empty both sides of the slot


def div_tick(px: int, code: int) -> tuple[int, bool]:
    """``(px // tick, on_grid)`` as the gateware computes it."""
    d = TICKS[code]
    if d == 1:
        return px, True
    m, s = TICK_MAGIC[d]
    q = (px * m) >> s
    return q, q * d == px


def _slot_bits(slots):
    return max(1, (slots - 1).bit_length())


def ladder_op_layout(slots: int, tag_width: int, divided: bool = False) -> data.StructLayout:
    """One level op: ``kind`` (:class:`LadderOp`), ``slot``, ``bid`` (1 = bid side), ``px``
    (ITCH Price(4)), ``q`` (shares), ``remove`` (RED: the order leaves the level), ``tag``
    (passed to the output record). With ``divided`` also ``idx`` (``px // tick`` of the slot's
    tick, :func:`div_tick`) and ``offg`` (``px`` is off the slot's tick grid), computed by the
    caller; ``px`` is then only read by an ``ADD`` (the price of a new level)."""
    fields = {
        "kind": unsigned(2),
        "slot": unsigned(_slot_bits(slots)),
        "bid": unsigned(1),
        "px": unsigned(PX_WIDTH),
        "q": unsigned(Q_WIDTH),
        "remove": unsigned(1),
        "tag": unsigned(tag_width),
    }
    if divided:
        fields.update({"idx": unsigned(PX_WIDTH), "offg": unsigned(1)})
    return data.StructLayout(fields)


def _level_layout(size_width, count_width):
    return data.StructLayout({
        "px": unsigned(PX_WIDTH), "sz": unsigned(size_width), "ct": unsigned(count_width)})


def ladder_out_layout(slots: int, n: int, tag_width: int, size_width: int = 48,
                      count_width: int = 21) -> data.StructLayout:
    """One output record: ``slot``, ``tag``, ``valid``, ``bad`` (sticky cause on the slot),
    ``far_visible``, and ``bids``/``asks``: the best ``n`` levels, best first, empty = 0."""
    lv = _level_layout(size_width, count_width)
    return data.StructLayout({
        "slot": unsigned(_slot_bits(slots)),
        "tag": unsigned(tag_width),
        "valid": unsigned(1),
        "bad": unsigned(1),
        "far_visible": unsigned(1),
        "bids": data.ArrayLayout(lv, n),
        "asks": data.ArrayLayout(lv, n),
    })


def _int_param(name, v, lo):
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, not {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, not {v}")


def _or_all(values):
    """OR of a list of values as a balanced tree."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def _onehot(idx, width):
    """Decoder: bit ``i`` set iff ``idx == i`` (one LUT per bit, no barrel shifter)."""
    return Cat(*(idx == i for i in range(width)))


def _prio8(x):
    """Index of the lowest set bit of an up-to-8-bit value, as one function per output bit
    (each maps to one LUT6 + MUXF7, no priority chain)."""
    w = len(x)
    first = [x[i] & ~(x[:i].any() if i else 0) for i in range(w)]
    nb = max(1, (w - 1).bit_length())
    return Cat(*(Cat(*(first[i] for i in range(w) if (i >> b) & 1)).any() for b in range(nb)))


class Ladder(wiring.Component):
    """Circular price ladder + occupancy bitmap + top-K cache per (slot, side).

    Parameters
    ----------
    slots : int
        Symbol slots.
    depth : int
        Ticks per (slot, side) window (power of two, >= 64; U250: 4096).
    k : int
        Cache entries per (slot, side) (U250: 16).
    n : int
        Levels per side in every output record (``<= k``); a refill runs when a cache holds
        fewer than ``n`` levels and the ladder has more.
    size_width, count_width : int
        Bits of a level's aggregate size / order count (ladder entry = both).
    far_width : int
        Bits of ``far_orders``.
    tag_width : int
        Bits of the op's ``tag``, copied into its output record.
    divided : bool
        False: the ladder divides ``px`` by the slot's tick (5-stage front end). True: every
        op carries ``idx = px // tick`` and ``offg`` (:func:`ladder_op_layout`), the front end
        is one stage, and the latency below is 4 cycles shorter.

    Attributes
    ----------
    i_stream : In(stream.Signature(ladder_op_layout(slots, tag_width)))
        Level ops.
    o_stream : Out(stream.Signature(ladder_out_layout(...)))
        One record per op, after the op: the top ``n`` levels of both sides of the op's slot.
    tick_slot, tick_code, tick_write : In
        On ``tick_write``, slot ``tick_slot`` uses tick ``TICKS[tick_code]`` for ops accepted
        from the next cycle on. Change a slot's tick only while it is empty (clear it after).
        With ``divided`` the tick only rebuilds the prices of refilled levels
        (``px = idx * tick``); the ops' ``idx`` must be divided by the same tick.
    counters : Out(StructLayout)
        :data:`LADDER_COUNTERS`, ``COUNTER_WIDTH`` bits each.

    Latency and throughput
    ----------------------
    A front end of 5 stages (tick divide, grid check; 1 stage with ``divided``) accepts one
    op per cycle while its last stage is free; the controller takes ops from it. From the
    op's transfer to its record's ``o_stream.valid``, with nothing else in flight: 11 cycles
    for an op on a represented level (5 front end, take, LOAD, CMP, DECIDE, RMW3, pending
    record), 10 for an op on the far counts or a missing level, 9 for an off-grid op, 8 for
    a clear; with ``divided`` 4 fewer each (7 for a represented level); plus, under
    backpressure (``ready`` low once the front end is full), 9 cycles per level copied by a
    refill and about 8 per level evicted by a slide (+3 when a search moves to another bitmap
    word). Back to back, an op on a represented level that cannot need a refill takes 3
    cycles (its CMP follows the previous op's RMW3); a RED that removes a level while the
    cache holds ``<= n`` levels and the ladder more, a far op, an error, a clear and the op
    after an eviction scan take the slow path (take in WB or IDLE: 4 cycles and more).
    Measured by ``sim/ladder``: 0.29 ops/cycle on the small random realistic stream (see
    docs/ladder.md). ``i_stream.ready`` is a register: an op offered while the front end's
    first stage is full waits in a one-op skid register (ready then drops for the next
    cycles) and moves on when the stage does, the cycle it would have been accepted without
    it. Backpressure: a completed op's record waits in a pending register and
    then in the output register while ``o_stream.ready`` is low; the next op stops in CMP
    while both are full; a record is never published before its op, refill and eviction are
    complete. After reset every slot is emptied (``slots`` cycles, ``ready`` low); the tick
    memory keeps its contents.
    """

    def __init__(self, *, slots: int = 4, depth: int = 4096, k: int = 16, n: int = 5,
                 size_width: int = 48, count_width: int = 21, far_width: int = 24,
                 tag_width: int = 16, divided: bool = False):
        _int_param("slots", slots, 1)
        _int_param("depth", depth, 64)
        if not isinstance(divided, bool):
            raise TypeError(f"divided must be a bool, not {divided!r}")
        self.divided = divided
        _int_param("k", k, 2)
        _int_param("n", n, 1)
        _int_param("size_width", size_width, Q_WIDTH)
        _int_param("count_width", count_width, 2)
        _int_param("far_width", far_width, 2)
        _int_param("tag_width", tag_width, 1)
        if depth & (depth - 1):
            raise ValueError(f"depth must be a power of two, not {depth}")
        if n > k:
            raise ValueError(f"n ({n}) must be <= k ({k})")
        if depth > (1 << 24):
            raise ValueError(f"depth must be <= 2**24, not {depth}")
        self.slots, self.depth, self.k, self.n = slots, depth, k, n
        self.size_width, self.count_width = size_width, count_width
        self.far_width, self.tag_width = far_width, tag_width
        self.slot_bits = _slot_bits(slots)
        self.dbits = depth.bit_length() - 1
        self.words = depth // 64
        self.wbits = max(1, self.dbits - 6)
        self.op_layout = ladder_op_layout(slots, tag_width, divided)
        self.out_layout = ladder_out_layout(slots, n, tag_width, size_width, count_width)
        self.entry_layout = data.StructLayout({
            "key": unsigned(KEY_WIDTH), "px": unsigned(PX_WIDTH),
            "sz": unsigned(size_width), "ct": unsigned(count_width)})
        self.lad_layout = data.StructLayout({
            "sz": unsigned(size_width), "ct": unsigned(count_width)})
        self.side_layout = data.StructLayout({
            "c": unsigned((k).bit_length()),
            "nlev": unsigned(self.dbits + 1),
            "lo": unsigned(KEY_WIDTH),
            "span_hi": unsigned(KEY_WIDTH + 1),
            "far_orders": unsigned(far_width),
            "far_lo": unsigned(KEY_WIDTH),
            # the far cache: the best far level, exact (see the module docstring)
            "fc_v": unsigned(1),
            "fc_key": unsigned(KEY_WIDTH),
            "fc_px": unsigned(PX_WIDTH),
            "fc_sz": unsigned(size_width),
            "fc_ct": unsigned(count_width),
            "bad": unsigned(1),
            "summary": unsigned(self.words),
            "cache": data.ArrayLayout(self.entry_layout, k),
        })
        super().__init__({
            "i_stream": In(stream.Signature(self.op_layout)),
            "o_stream": Out(stream.Signature(self.out_layout)),
            "tick_slot": In(self.slot_bits),
            "tick_code": In(2),
            "tick_write": In(1),
            "counters": Out(data.StructLayout(
                {nm: unsigned(COUNTER_WIDTH) for nm, _ in LADDER_COUNTERS})),
        })

    # ------------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        S, D, K, N = self.slots, self.depth, self.k, self.n
        SW, CW = self.size_width, self.count_width
        sb, db, W = self.slot_bits, self.dbits, self.words

        # -- memories ------------------------------------------------------------------------
        m.submodules.tick_mem = tick_mem = Memory(shape=2, depth=S, init=[])
        tick_wr = tick_mem.write_port()
        tick_rd = tick_mem.read_port(domain="comb")
        m.d.comb += [tick_wr.en.eq(self.tick_write), tick_wr.addr.eq(self.tick_slot),
                     tick_wr.data.eq(self.tick_code)]
        st_rd, st_wr = [], []
        for side in ("ask", "bid"):
            mem = Memory(shape=self.side_layout, depth=S, init=[])
            m.submodules[f"state_{side}"] = mem
            st_wr.append(mem.write_port())
            # not transparent: the read is always addressed by the front end's last op and an
            # op on the slot whose state is being written takes it from the working registers
            # (LOAD / the fast take forward ``w``/``o``, see "Hazards" in docs/ladder.md)
            st_rd.append(mem.read_port())
        # one ladder and one bitmap memory for all (slot, side): address {slot, side, index}
        m.submodules.ladder = lad_mem = Memory(shape=self.lad_layout, depth=2 * S * D, init=[])
        lad_wr = lad_mem.write_port()
        lad_rd = lad_mem.read_port()
        m.submodules.bitmap = bm_mem = Memory(shape=64, depth=2 * S * W, init=[])
        bm_wr = bm_mem.write_port()
        bm_rd = bm_mem.read_port()

        # -- registers -----------------------------------------------------------------------
        op = Signal(self.op_layout)
        w = Signal(self.side_layout)  # working copy of the op's side
        o = Signal(self.side_layout)  # the other side (for the record)
        # ``w`` after RMW3's updates (combinational; equal to ``w`` in every other state):
        # what RMW3 writes to the state memory, forwards to the next op and publishes
        w_upd = Signal(self.side_layout)
        m.d.comb += w_upd.eq(w)
        m.d.sync += w.eq(w_upd)
        # the record of an op completed by the short RMW3 (no refill), waiting for the
        # output register while the next op runs
        pend_v = Signal()
        pend_w = Signal(self.side_layout)
        pend_o = Signal(self.side_layout)
        pend_op = Signal(self.op_layout)
        # peeked in DECIDE for the fast take in RMW3: the front end's op was valid (its
        # memories were read at the end of DECIDE), is on the same slot / side as this op,
        # on the same ladder entry / bitmap word (this op's RMW3 write is forwarded)
        pk = Signal()
        # where the fast take's ``w`` / ``o`` come from, one-hot (from the peek in DECIDE):
        # the state memory's bid / ask word (another slot), ``o`` (the other side of this
        # slot), else this op's result ``w_upd``. Registered as four selects, not as
        # same-slot / same-side flags and the front end's side, so that the select of the
        # next ``w`` is one AND-OR (9 levels reg to reg with the flags, 2026-12-08)
        # the far count's next values, a state ahead (no state-selected adder before ``w``)
        far_inc = Signal.like(w.far_orders)
        far_dec = Signal.like(w.far_orders)
        far_add = Signal.like(w.far_orders)
        # far cache (``fc_*``): CMP's flags, the sums registered every cycle from ``w`` and
        # ``op`` (both stable from CMP to FAR for a far op), and the far op's kind, decided in
        # DECIDE and applied in FAR (none of it on the select of the next ``w`` in DECIDE)
        fc_hit = Signal()  # the op is at the far cache's level
        far_fc = Signal.like(w.far_orders)  # the far counts with the far cache's orders
        rem_lo = Signal(KEY_WIDTH)  # far_lo after a far count ADD at ``key``
        fcs_add = Signal(SW + 1)
        fcc_add = Signal(CW + 1)
        fcs_sub = Signal(SW + 1)
        fcc_sub = Signal(CW + 1)
        fcs_lo_a = Signal(SW // 2 + 1)  # the size sums' low halves (with carry / borrow), a cycle
        fcs_lo_s = Signal(SW // 2 + 1)  # ahead of their high halves (H = SW // 2)
        fm_fadd = Signal()  # FAR: ADD to the far cache's level
        fm_fnew = Signal()  # FAR: ADD of a new far level better than the far cache's
        fm_radd = Signal()  # FAR: ADD to the far counts
        fm_fred = Signal()  # FAR: RED of the far cache's level
        fm_rred = Signal()  # FAR: RED on the far counts
        # R_EVC: the evicted level is better than the far cache's (the scan visits the
        # levels in index order, which is not key order when the whole window is evicted)
        ev_better = Signal()
        far_ev = Signal.like(w.far_orders)  # R_EVC: far counts + the far cache's orders
        # promotion: a RED left the side without represented levels and the far cache holds
        # a level: the window moves onto it (an internal ADD of the whole level, no record),
        # so that the orders that follow it there are represented, not counted
        promo = Signal()  # the op in the controller is the internal ADD of a promotion
        promo_ct = Signal(CW)  # its count (the level's, not 1)
        tk_b = Signal()
        tk_a = Signal()
        tk_o = Signal()
        tk_w = Signal()
        fwd_e = Signal()
        fwd_w = Signal()
        # this op may need a refill after RMW3 (conservative, from CMP): RMW3 then goes to WB
        may_refill = Signal()
        tcode = Signal(2)
        offg = Signal()  # the op's price is off its slot's tick grid
        key = Signal(KEY_WIDTH)
        kd = Signal(KEY_WIDTH + 1)  # key + depth
        kmd = Signal(signed(KEY_WIDTH + 2))  # key - depth
        # compare flags (registered in CMP)
        ge_far = Signal()
        rep_empty = Signal()
        lt_lo = Signal()
        ge_top = Signal()
        lt_best_d = Signal()
        evict_need = Signal()
        gt_span = Signal()
        # level RMW
        nsz = Signal(SW)
        # the size RMW3 writes: ``nsz`` (DECIDE's), or the paired ADD's (``nsz_p``, registered
        # in the RED's RMW3: a second source on ``nsz`` would put a mux after DECIDE's add)
        nsz_p = Signal(SW)
        use_p = Signal()  # RMW3 of a paired ADD
        nsz_w = Signal(SW)
        m.d.comb += nsz_w.eq(Mux(use_p, nsz_p, nsz))
        nct = Signal(CW)
        was_new = Signal()
        removed = Signal()
        H = SW // 2  # the size update is split in two halves (CMP, DECIDE)
        a_lo = Signal(H + 1)
        s_lo = Signal(H + 1)
        ct_ovf = Signal()
        ct_miss = Signal()
        e_ovf = Signal()
        e_miss = Signal()
        nword = Signal(64)
        nword_any = Signal()
        nlev_new = Signal(self.dbits + 1)
        fs_gi = Signal(3)
        bitv_r = Signal(64)  # one-hot bit of the level being updated / evicted
        fs_locs = Signal(24)
        fs_hit = Signal()
        ev_hit = Signal()
        cur_word = Signal(64)
        bit_r = Signal()
        lsz = Signal(SW)
        app_ok = Signal()
        hit = Signal(K)
        lt = Signal(K)
        # search
        evict = Signal()  # search mode: eviction scan (else refill)
        skey = Signal(KEY_WIDTH + 1)
        last_key = Signal(KEY_WIDTH)
        smask = Signal(64)  # bits >= the start bit in the start word
        sbit_s = Signal()  # summary bit of the word being searched
        sm_hi = Signal(W)  # summary bits above the start word
        wn_r = Signal(self.wbits)  # next non-empty word after the start word (circular)
        cur_widx = Signal(self.wbits)
        sw1 = Signal(64)
        keep = Signal(K)
        pos = Signal(db)
        fkey = Signal(KEY_WIDTH)
        fsz = Signal(SW)
        fct = Signal(CW)
        fpx = Signal(PX_WIDTH + 14)
        fpx_a = Signal(16 + 14)  # refill px = idx * tick in two DSP products + one add
        fpx_b = Signal(16 + 14)
        # output
        outv = Signal()
        out = Signal(self.out_layout)
        m.d.comb += [self.o_stream.valid.eq(outv), self.o_stream.payload.eq(out)]
        with m.If(self.o_stream.ready):
            m.d.sync += outv.eq(0)

        cnt = self.counters
        bump = {nm: Signal(name=f"bump_{nm}") for nm, _ in LADDER_COUNTERS}
        for nm, sig in bump.items():
            with m.If(sig):
                m.d.sync += cnt[nm].eq(cnt[nm] + 1)
        m.d.comb += bump["busy_cycles"].eq(self.i_stream.valid & ~self.i_stream.ready)
        m.d.comb += bump["ops"].eq(self.i_stream.valid & self.i_stream.ready)

        # -- front end: tick divide and grid check (no side state needed), 5 stages ----------
        # F1 registers the four 16 x 16 partial products of ``px * m`` (one DSP each, no
        # adder in the DSP's path), F2-F4 add them in three carry chains of <= 34 bits, F5
        # takes ``idx = prod >> s`` and the grid check ``px mod tick == 0`` <=> ``prod mod 2^s
        # < m`` (exact for the magic constants: ``q (m d - 2^s) < m`` for every 32-bit px).
        # The whole front end moves when its last stage is empty or taken by the controller.
        # With ``divided`` the op carries ``idx`` and ``offg`` (the caller divided, see
        # hw/order_table.py): one stage (F1 registers the op and its key) instead of five.
        running = Signal()  # INIT done
        fe_take = Signal()  # the controller takes the front end's op this cycle
        NF = 1 if self.divided else 5
        f_v = [Signal(name=f"f{i + 1}_v") for i in range(NF)]
        f_op = [Signal(self.op_layout, name=f"f{i + 1}_op") for i in range(NF)]
        f_code = [Signal(2, name=f"f{i + 1}_code") for i in range(NF)]
        adv = Signal()
        pin = self.i_stream.payload
        # input skid register: ``i_stream.ready`` is a flop (``running`` and no op waiting in
        # the skid), not the controller's take decision, which ends ~8 logic levels deep (the
        # refill / fast-take checks) and would otherwise run on through the caller's dispatch
        # into its FIFO level counters. An op offered while F1 is full and not taken waits
        # here and enters F1 when it moves (the cycle it would have been accepted without the
        # skid): no latency added, the same ops per cycle.
        sk_v = Signal()
        sk_op = Signal(self.op_layout)
        sk_code = Signal(2)
        src = Signal(self.op_layout)  # what F1 takes: the skid's op, else the input's
        src_code = Signal(2)
        src_v = Signal()
        acc = Signal()
        m.d.comb += [
            adv.eq(~f_v[-1] | fe_take),
            self.i_stream.ready.eq(running & ~sk_v),
            acc.eq(self.i_stream.valid & self.i_stream.ready),
            tick_rd.addr.eq(pin.slot),
            src.eq(Mux(sk_v, sk_op, pin)),
            src_code.eq(Mux(sk_v, sk_code, tick_rd.data)),
            src_v.eq(sk_v | acc),
        ]
        with m.If(adv):
            m.d.sync += sk_v.eq(0)
        with m.Elif(acc):
            m.d.sync += [sk_v.eq(1), sk_op.eq(pin), sk_code.eq(tick_rd.data)]
        fe_key = Signal(KEY_WIDTH)  # key of the op in the last stage: ``idx`` or ``~idx`` (bids)
        fe_ongrid = Signal()
        if self.divided:
            with m.If(adv):
                m.d.sync += [f_v[0].eq(src_v), f_op[0].eq(src), f_code[0].eq(src_code),
                             fe_key.eq(Mux(src.bid, ~src.idx, src.idx)),
                             fe_ongrid.eq(~src.offg)]
        else:
            self._divide_front_end(m, adv, src_v, src, src_code, f_v, f_op, f_code, fe_key,
                                   fe_ongrid)

        # -- addresses (combinational, per state) ---------------------------------------------
        side = op.bid
        kidx = key[:db]

        # (slot, side) of the memory addresses: the op's, or the front end's op being taken
        # (its ladder entry and bitmap word are read in the take cycle)
        a_slot = Signal(sb)
        a_side = Signal()
        m.d.comb += [a_slot.eq(op.slot), a_side.eq(side)]

        def lad_addr(index):
            return Cat(index, a_side, a_slot)

        def bm_addr(word):
            if W == 1:
                return Cat(a_side, a_slot)
            return Cat(word, a_side, a_slot)

        bm_word_sel = Signal(self.wbits)  # word index presented to the bitmap read port
        lad_sel = Signal(db)
        m.d.comb += [bm_word_sel.eq(kidx[6:]), lad_sel.eq(kidx)]
        m.d.comb += [bm_rd.addr.eq(bm_addr(bm_word_sel[:max(0, db - 6)] if W > 1 else 0)),
                     lad_rd.addr.eq(lad_addr(lad_sel))]
        for p in st_rd:
            m.d.comb += p.addr.eq(f_op[-1].slot)

        def summary_bit(word_idx):
            return w.summary.bit_select(word_idx, 1) if W > 1 else w.summary[0]

        cache = w.cache
        in_c = Cat(*(Const(i, 8) < w.c for i in range(K)))
        tick_d = Signal(14)
        m.d.comb += tick_d.eq(Mux(tcode == 1, 100, Mux(tcode == 2, 10000, 1)))

        # search helpers: the start of a search is ``skey``; its word is read in R_START
        s_idx = skey[:db]
        s_word = s_idx[6:] if W > 1 else Const(0, 1)
        s_bit = s_idx[:6]
        # next non-empty word after the start word (circular), in two registered steps:
        # R_W1 registers per-group indices of the summary (above the start word, and all of
        # it), R_FS selects
        ng = (W + 7) // 8
        gb = max(1, (ng - 1).bit_length())

        def group_regs(x, name):
            groups = [x[g:g + 8] for g in range(0, W, 8)]
            any_r = Signal(name=f"{name}_any")
            gi_r = Signal(gb, name=f"{name}_gi")
            locs_r = Signal(3 * ng, name=f"{name}_locs")
            upd = [any_r.eq(x.any()), gi_r.eq(_prio8(Cat(*(g.any() for g in groups)))),
                   locs_r.eq(Cat(*(_prio8(g).as_unsigned() for g in groups)))]
            idx = Cat(locs_r.word_select(gi_r, 3)[:min(3, max(1, (W - 1).bit_length()))], gi_r)
            return any_r, idx[:self.wbits], upd

        sh_any, sh_idx, sh_upd = group_regs(sm_hi, "sh")
        _sa_any, sa_idx, sa_upd = group_regs(w.summary, "sa")

        def key_of(index):  # represented key stored at ladder index ``index``
            return (w.lo + ((index - w.lo[:db]) & (D - 1)))[:KEY_WIDTH]

        # any bit of the current bitmap word other than the one being cleared
        others_any = Signal()
        m.d.comb += others_any.eq(_or_all([cur_word[i] & ~bitv_r[i] for i in range(64)]))

        # -- controller steps used by several states ------------------------------------------
        # forwarding flags of the slow take (LOAD): the new op is on the slot / side whose
        # state is in ``w``/``o`` (the previous op's, possibly not yet in the memory)
        ld_ss = Signal()
        ld_sd = Signal()

        def read_next():
            """Present the front end's op's ladder entry and bitmap word to the read ports
            (the state words are always read at the front end's op's slot)."""
            m.d.comb += [a_slot.eq(f_op[-1].slot), a_side.eq(f_op[-1].bid),
                         lad_sel.eq(fe_key[:db]), bm_word_sel.eq(fe_key[6:db] if W > 1 else 0)]

        # one-hot of the op's summary bit (``kidx[6:]``), registered with ``key``: RMW3's
        # summary update is then one LUT3 per bit, not a 6-bit decode of ``key`` in front of
        # the select of the next ``w`` (9 levels reg to reg with the decode, 2026-12-08)
        soh = Signal(W)
        nq_lo = Signal(H + 1)

        def take_regs():
            m.d.comb += fe_take.eq(1)
            m.d.sync += [op.eq(f_op[-1]), tcode.eq(f_code[-1]), offg.eq(~fe_ongrid),
                         key.eq(fe_key), refill_r.eq(0)]
            if W > 1:
                m.d.sync += soh.eq(_onehot(fe_key[6:db], W))
            # ``-q`` of the size's low half, from a register: Yosys's opt_share otherwise
            # merges the two subtracts of ``s_lo`` into one behind the level-bit select
            m.d.sync += nq_lo.eq(Const(0, H) - f_op[-1].q[:H])

        def finish():
            """After a slow op's record: promote the far cache's level (a RED left the side
            without represented levels; its size fits an op's shares), else take the next
            op."""
            with m.If((op.kind == LadderOp.RED) & (w.nlev == 0) & w.fc_v
                      & (w.fc_sz[Q_WIDTH:] == 0)):
                m.next = "PROMO"
            with m.Else():
                m.next = "IDLE"
                take()

        def take():
            """Take the front end's op; its state words, ladder entry and bitmap word are
            read at the end of this cycle and LOAD latches them (forwarding ``w``/``o`` when
            the op is on the previous op's slot)."""
            with m.If(f_v[-1]):
                read_next()
                take_regs()
                m.d.sync += [ld_ss.eq(f_op[-1].slot == op.slot), ld_sd.eq(f_op[-1].bid == op.bid)]
                m.next = "LOAD"

        # raw ladder entry / bitmap word of the op (read in the take cycle), registered in
        # LOAD (the ladder read data is a mux over the URAMs of all (slot, side): nothing
        # else after it); CMP computes the size and count updates as if the level were
        # present and as if it were empty, and selects with the level's bit (which needs the
        # summary from the side state)
        lr_sz = Signal(SW)
        lr_ct = Signal(CW)
        bmw_r = Signal(64)
        bmbit_r = Signal()  # the op's bit of the word read from the memory
        bmbit_f = Signal()  # the op's bit of the previous op's new word (fast take)
        bmbit_fw = Signal()  # use bmbit_f: the previous op wrote this word
        # one bit index for every state that latches ``bmbit_r``: the 64:1 select has one
        # data source (the memory) and no mux after it (the forwarded bit is a second
        # register, selected in CMP where the bit meets the summary bit)
        bsel = Signal(6)  # fe_key's in RMW3 (the fast take), else kidx's: set after the FSM

        def rmw0():
            m.d.sync += [
                lr_sz.eq(lad_rd.data.sz), lr_ct.eq(lad_rd.data.ct), bmw_r.eq(bm_rd.data),
                bmbit_r.eq(bm_rd.data.bit_select(bsel, 1)), bmbit_fw.eq(0),
            ]

        def rmw1_fast():
            # RMW1 + RMW1B from the raw values registered in LOAD
            is_add = op.kind == LadderOp.ADD
            is_red = op.kind == LadderOp.RED
            sb_ok = summary_bit(kidx[6:] if W > 1 else 0)
            bit = sb_ok & Mux(bmbit_fw, bmbit_f, bmbit_r)
            lct0 = Const(0, CW)
            m.d.sync += [
                cur_word.eq(Mux(sb_ok, bmw_r, 0)),
                bit_r.eq(bit),
                lsz.eq(Mux(bit, lr_sz, 0)),
                a_lo.eq(Mux(bit, lr_sz[:H] + op.q[:H], Const(0, H) + op.q[:H])),
                s_lo.eq(Mux(bit, lr_sz[:H] - op.q[:H], nq_lo)),
                nct.eq(Mux(bit, Mux(is_add, lr_ct + 1, lr_ct - op.remove),
                           Mux(is_add, Mux(promo, promo_ct, lct0 + 1), lct0 - op.remove))),
                ct_ovf.eq(is_add & bit & lr_ct.all()),
                was_new.eq(is_add & ~bit),
                removed.eq(is_red & op.remove & bit & (lr_ct == 1)),
                ct_miss.eq(is_red & (~bit | (op.remove & (lr_ct == 0)))),
                app_ok.eq(w.nlev == w.c),
                bitv_r.eq(_onehot(kidx[:6], 64)),
                hit.eq(Cat(*(in_c[i] & (cache[i].key == key) for i in range(K)))),
                lt.eq(Cat(*(in_c[i] & (cache[i].key < key) for i in range(K)))),
            ]

        def cupd():  # cache update: in place / shift-delete / shift-insert / append (into w_upd)
            new_e = Signal(self.entry_layout)
            m.d.comb += [new_e.key.eq(key), new_e.px.eq(op.px), new_e.sz.eq(nsz_w),
                         new_e.ct.eq(nct)]
            with m.If(cu_del):
                for i in range(K):
                    nxt = cache[i + 1].as_value() if i + 1 < K else 0
                    with m.If(cu_past[i]):
                        m.d.comb += w_upd.cache[i].eq(nxt)
                m.d.comb += w_upd.c.eq(w.c - 1)
            with m.If(cu_upd):
                for i in range(K):
                    with m.If(hit[i]):
                        m.d.comb += [w_upd.cache[i].sz.eq(nsz_w), w_upd.cache[i].ct.eq(nct)]
            with m.If(cu_ins):
                for i in range(K):
                    with m.If(cu_at[i]):
                        m.d.comb += w_upd.cache[i].eq(new_e)
                    if i > 0:
                        with m.If(cu_shift[i]):
                            m.d.comb += w_upd.cache[i].eq(cache[i - 1])
                with m.If(cu_inc):
                    m.d.comb += w_upd.c.eq(w.c + 1)

        def record(w, o, op):
            """Build the record of op ``op`` from its sides ``w``/``o`` into the output
            register."""
            def vis(sd):  # no far count level in the top N: c + fc_v >= N, or none
                full = (sd.c >= N) | ((sd.c == N - 1) & sd.fc_v) if N > 1 else \
                    (sd.c != 0) | sd.fc_v
                return full | (sd.far_orders == 0)

            bad = w.bad | o.bad
            farvis = ~(vis(w) & vis(o))
            sa = Signal(self.side_layout)
            sbid = Signal(self.side_layout)
            m.d.comb += [sa.eq(Mux(op.bid, o.as_value(), w.as_value())),
                         sbid.eq(Mux(op.bid, w.as_value(), o.as_value()))]
            m.d.sync += [
                outv.eq(1),
                out.slot.eq(op.slot), out.tag.eq(op.tag),
                out.valid.eq(~bad & ~farvis), out.bad.eq(bad),
                out.far_visible.eq(farvis),
            ]
            m.d.comb += bump["far_visible"].eq(~bad & farvis)
            for dst, src in ((out.asks, sa), (out.bids, sbid)):
                for i in range(N):
                    # the cached levels, then the far cache's level after the last of them
                    live = src.c > i
                    fcl = (src.c == i) & src.fc_v
                    m.d.sync += [
                        dst[i].px.eq(Mux(live, src.cache[i].px, Mux(fcl, src.fc_px, 0))),
                        dst[i].sz.eq(Mux(live, src.cache[i].sz, Mux(fcl, src.fc_sz, 0))),
                        dst[i].ct.eq(Mux(live, src.cache[i].ct, Mux(fcl, src.fc_ct, 0))),
                    ]

        # cache update controls, registered the state before RMW3 (DECIDE or RMW2) from
        # the hit / less-than vectors of CMP (or RMW1 after an eviction scan)
        cu_at = Signal(K)  # insert position
        cu_shift = Signal(K)  # entries below the insert position move down
        cu_past = Signal(K)  # entries at or after the removed hit move up
        cu_del = Signal()
        cu_upd = Signal()
        cu_ins = Signal()
        cu_inc = Signal()
        # refill needed after this op (``c < n`` and ``nlev > c`` after RMW3), registered: only
        # RMW3 changes ``c``/``nlev`` of a side that was written back without needing one
        refill_r = Signal()

        # the hit vector's prefix ORs (the entries a delete moves up) and its OR, and the
        # insert position's "inside the cache" as kept OR trees: written as plain ``any()``
        # ABC made the 16 prefixes one LUT2 chain (16 levels reg to reg in the U250 book)
        hit_pre, hit_any = prefix_or(m, hit, "hit")
        at = Cat(*(~lt[i] & (lt[i - 1] if i else 1) for i in range(K)))
        p_lt_c = any_kept(m, at & in_c, "p_lt_c")

        def cupd_pre():
            c_lt_k = w.c < K
            ins = ~hit_any & was_new & (p_lt_c | (c_lt_k & app_ok))
            m.d.sync += [
                cu_at.eq(at),
                cu_shift.eq(Cat(*(~lt[i] & ~at[i] for i in range(K)))),
                cu_past.eq(hit_pre),
                cu_del.eq(hit_any & removed), cu_upd.eq(hit_any & ~removed),
                cu_ins.eq(ins), cu_inc.eq(ins & c_lt_k),
            ]

        def rmw2():  # size update high half, errors, new bitmap word
            is_add = op.kind == LadderOp.ADD
            a_hi = Signal(SW - H + 1)
            s_hi = Signal(SW - H + 2)
            # the subtract as one adder whose low bit carries the low half's borrow in
            # (``a - b - c = a + ~b + ~c``, ``(c:a + c:b) >> 1 = a + b + c``): written as
            # ``a - b - c`` Yosys builds two carry chains in series (``op`` -> ``e_miss`` 9
            # levels reg to reg in the U250 lane, 2026-12-07). The add stays as written:
            # Yosys takes its 1-bit operand as the carry in (the same trick on it cost the
            # small book a level, ``lsz`` -> ``e_ovf``)
            hw_ = SW - H + 2
            la, qa = lsz[H:].as_unsigned(), op.q[H:][:hw_].as_unsigned()
            cs = ~s_lo[H]
            m.d.comb += s_hi.eq((Cat(cs, la, Const(0, hw_ - len(la)))
                                 + Cat(cs, ~Cat(qa, Const(0, hw_ - len(qa)))))[1:])
            # the add carry-select: the shares' high half (``qa``) is narrower than the size's
            # (8 of 24 bits in the U250 set), so the size's bits above it only take the carry
            # (``+ 1`` and "all ones", from registers, in parallel); as one 25-bit add the
            # overflow bit was 8.5 levels into ``e_ovf`` (its select gained the pair source)
            nq = len(qa)
            if nq < len(la):
                lo_sum = Signal(nq + 1, name="a_hi_lo")
                hi_inc = Signal(len(la) - nq + 1, name="a_hi_inc")
                m.d.comb += [lo_sum.eq(la[:nq] + qa + a_lo[H]), hi_inc.eq(la[nq:] + 1)]
                m.d.comb += a_hi.eq(Cat(lo_sum[:nq], Mux(lo_sum[nq], hi_inc, la[nq:])))
            else:
                m.d.comb += a_hi.eq(la + qa + a_lo[H])
            new_word = Mux(removed, cur_word & ~bitv_r, cur_word | bitv_r)
            m.d.sync += [
                nsz.eq(Mux(is_add, Cat(a_lo[:H], a_hi[:SW - H]),
                           Cat(s_lo[:H], s_hi[:SW - H]))),
                e_ovf.eq(is_add & (a_hi[-1] | ct_ovf)),
                e_miss.eq(~is_add & (ct_miss | s_hi[-1])),
                nword.eq(new_word), nword_any.eq(~removed | others_any),
                nlev_new.eq(w.nlev + was_new - removed),
            ]

        def write_state(both):
            """Write the op's side state (``w_upd``: RMW3's result, else ``w``) back, and the
            other side's too when ``both`` (a clear)."""
            wa = Mux(op.bid, o.as_value(), w_upd.as_value())
            wb = Mux(op.bid, w_upd.as_value(), o.as_value())
            m.d.comb += [
                st_wr[0].en.eq(both | ~op.bid), st_wr[0].addr.eq(op.slot), st_wr[0].data.eq(wa),
                st_wr[1].en.eq(both | op.bid), st_wr[1].addr.eq(op.slot), st_wr[1].data.eq(wb),
            ]

        def take_fast():
            """Take the op peeked in DECIDE at the end of RMW3, so that its CMP follows: its
            memories were read at the end of DECIDE, before this op's writes of this cycle.
            Side state: from the memory (another slot), else from this op's result
            (``w_upd``) and ``o``, swapped when it is on the other side. Ladder entry / bitmap
            word and the op's bit: this op's new values when it is the same (slot, side)
            entry / word (the whole new word, not only this op's bit: a word whose summary
            bit was 0 is garbage in the memory and this op's RMW has zeroed it)."""
            take_regs()
            m.d.sync += [
                kd.eq(fe_key + D), kmd.eq(Cat(fe_key, Const(0, 2)).as_signed() - D),
                lr_sz.eq(Mux(fwd_e, nsz, lad_rd.data.sz)),
                lr_ct.eq(Mux(fwd_e, nct, lad_rd.data.ct)),
                bmw_r.eq(Mux(fwd_w, nword, bm_rd.data)),
                bmbit_r.eq(bm_rd.data.bit_select(bsel, 1)),
                bmbit_f.eq(nword.bit_select(fe_key[:6], 1)), bmbit_fw.eq(fwd_w),
            ]
            rd_a, rd_b = st_rd[0].data.as_value(), st_rd[1].data.as_value()
            ov, uv = o.as_value(), w_upd.as_value()

            def pick(*terms):  # AND-OR of one-hot selects
                return _or_all([Mux(sel, v, 0) for sel, v in terms])

            m.d.sync += [
                w.eq(pick((tk_b, rd_b), (tk_a, rd_a), (tk_o, ov), (tk_w, uv))),
                o.eq(pick((tk_b, rd_a), (tk_a, rd_b), (tk_o, uv), (tk_w, ov))),
            ]

        # -- replace pair: a RED taken by the slow take (LOAD) and an ADD on the same (slot,
        # side) waiting in the front end (the two halves of a U). The ADD's CMP (``CMP2``)
        # runs in the RED's DECIDE and its DECIDE (``DECIDE2``) in the RED's RMW3, so that the
        # ADD's RMW3 follows the RED's (1 cycle instead of 3). Only when the ADD is on
        # another ladder entry (or at the RED's key when the RED removes an order: a U at the
        # same price), is no far op and needs no eviction scan or slide up
        # (``pair_ok``), and the RED completes short; otherwise the ADD is taken as before
        # (docs/ladder.md, "Replace pairs").
        pr1 = Signal()  # LOAD: the front end's op may pair with this one
        pr2 = Signal()  # CMP: its ladder entry and bitmap word (read in LOAD) are latched
        pr3 = Signal()  # DECIDE: CMP2 done, and both record registers will be free in RMW3
        lr_sz2 = Signal(SW)
        lr_ct2 = Signal(CW)
        bmw2 = Signal(64)
        bmbit2 = Signal()
        sb2_r = Signal()  # CMP: the summary bit of the ADD's word (``w`` is stable to DECIDE)
        bit2_r = Signal()  # CMP: the ADD's level bit as read (summary and word bit)
        kmd2 = Signal(signed(KEY_WIDTH + 2))
        kd2 = Signal(KEY_WIDTH + 1)
        eqk = Signal()  # LOAD: the ADD is at this op's key (then this op removes an order)
        dq = Signal(signed(Q_WIDTH + 1))  # the ADD's shares minus this op's
        qe2 = Signal(signed(SW + 1))  # what the ADD adds to ``lsz2``
        empty2 = Signal()
        lt_lo2 = Signal()
        gt_span2 = Signal()
        samew2 = Signal()
        cw2 = Signal(64)
        bit2 = Signal()
        lsz2 = Signal(SW)
        a_lo2 = Signal(H + 1)
        nct2 = Signal(CW)
        ct_ovf2 = Signal()
        hit2 = Signal(K)
        lt2 = Signal(K)
        in_c2 = Signal(K)
        c2 = Signal.like(w.c)
        app_ok2 = Signal()
        win2 = Signal()  # DECIDE: the window allows the pair (no far op, eviction, slide up)

        # the ADD's level as the RED leaves it: another level is as read in LOAD; the RED's own
        # level (``eqk``) is gone when the RED removed it, else it holds the RED's size minus
        # the RED's shares (the ADD adds ``q2 - q1`` to the RED's size) and the RED's count
        # (one order out, one in). Outside the FSM, and ``a_lo2`` registered every cycle (only
        # RMW3 after DECIDE reads it): no state decode in front of its adder (8.5 levels from
        # the FSM state, 2026-12-07)
        q2 = f_op[-1].q
        bit = Signal()
        lsz_n = Signal(SW)
        qe = Signal(signed(SW + 1))
        m.d.comb += [bit.eq(Mux(eqk, ~removed, bit2_r)),
                     lsz_n.eq(Mux(eqk, Mux(removed, 0, lsz), Mux(bit, lr_sz2, 0))),
                     qe.eq(Mux(eqk & ~removed, dq, q2))]
        m.d.sync += a_lo2.eq(lsz_n[:H] + qe[:H])

        def cmp2():
            """CMP of the front end's ADD against the side as the RED in DECIDE leaves it:
            the RED changes neither ``lo``, ``span_hi`` nor the far counts; it may remove its
            level (``nlev - removed``) and its cached entry (the entries after it move up:
            the ADD's hit / less-than vectors are taken one entry further on)."""
            del1 = hit_any & removed
            past1 = hit_pre
            eqs = [cache[i].key == fe_key for i in range(K)] + [Const(0, 1)]
            lts = [cache[i].key < fe_key for i in range(K)] + [Const(0, 1)]
            inc2 = Mux(del1, Cat(in_c[1:], Const(0, 1)), in_c)
            # the window's verdict on the pair, registered whole: ``pair_ok`` in RMW3 then
            # reads one register here instead of five (it selects the next ``w``: 12 levels
            # reg to reg with the five, 2026-12-07)
            c_far = (((w.far_orders != 0) & (fe_key >= w.far_lo))
                     | (w.fc_v & (fe_key >= w.fc_key)))
            c_empty = w.nlev == removed
            c_lt_lo = fe_key < w.lo
            c_evict = kd2 <= w.span_hi
            c_ge_top = kmd2 >= w.lo
            m.d.sync += [
                empty2.eq(c_empty),
                lt_lo2.eq(c_lt_lo),
                win2.eq(~c_far & (c_empty | (~c_ge_top & ~(c_lt_lo & c_evict)))),
                gt_span2.eq(fe_key > w.span_hi),
                samew2.eq((fe_key[6:db] == kidx[6:]) if W > 1 else 1),
                cw2.eq(Mux(sb2_r, bmw2, 0)),
                bit2.eq(bit),
                lsz2.eq(lsz_n), qe2.eq(qe),
                nct2.eq(Mux(eqk, lr_ct, Mux(bit, lr_ct2 + 1, 1))),
                ct_ovf2.eq(~eqk & bit & lr_ct2.all()),
                hit2.eq(Cat(*(inc2[i] & Mux(del1 & past1[i], eqs[i + 1], eqs[i])
                              for i in range(K)))),
                lt2.eq(Cat(*(inc2[i] & Mux(del1 & past1[i], lts[i + 1], lts[i])
                             for i in range(K)))),
                in_c2.eq(inc2),
                c2.eq(w.c - del1),
                # (nlev - removed) == (c - del1), as two compares of registers selected late
                # (``hit`` -> ``app_ok2`` was 9.5 levels through the subtracts)
                app_ok2.eq(Mux(removed & ~hit_any, w.nlev == w.c + 1, w.nlev == w.c)),
            ]

        def take_pair():
            """In the RED's RMW3 (which completes short): take the ADD and register its
            DECIDE2 results where its RMW3 (next cycle) reads them; ``w`` is then the RED's
            result. The bitmap word: the RED's new word when it is the same word."""
            # the high half over SW + 1 bits: bit SW is the overflow (the exact result is
            # >= 0 and < 2**(SW + 1), ``qe2`` may be negative)
            a_hi2 = Signal(SW - H + 1)
            m.d.comb += a_hi2.eq(lsz2[H:] + qe2[H:] + a_lo2[H])
            at2 = Cat(*(~lt2[i] & (lt2[i - 1] if i else 1) for i in range(K)))
            hit_any2 = any_kept(m, hit2, "hit2")
            c_lt_k = c2 < K
            p_lt_c2 = any_kept(m, at2 & in_c2, "p_lt_c2")
            ins = ~hit_any2 & ~bit2 & (p_lt_c2 | (c_lt_k & app_ok2))
            take_regs()
            m.d.comb += bump["pairs"].eq(1)
            m.d.sync += [
                nsz_p.eq(Cat(a_lo2[:H], a_hi2[:SW - H])), use_p.eq(1), nct.eq(nct2),
                e_ovf.eq(a_hi2[-1] | ct_ovf2), e_miss.eq(0),
                nword.eq(Mux(samew2, nword, cw2) | _onehot(fe_key[:6], 64)),
                nword_any.eq(1),
                nlev_new.eq(nlev_new + ~bit2),
                hit.eq(hit2),
                cu_at.eq(at2), cu_shift.eq(Cat(*(~lt2[i] & ~at2[i] for i in range(K)))),
                cu_del.eq(0), cu_upd.eq(hit_any2), cu_ins.eq(ins), cu_inc.eq(ins & c_lt_k),
                pk.eq(0), may_refill.eq(0),
            ]
            # the window, as DECIDE moves it for an ADD: the side emptied by the RED starts at
            # the ADD's key; a key below the window moves its start (no eviction: see
            # ``pair_ok``); else the bound of the represented keys
            with m.If(empty2):
                m.d.sync += [w.lo.eq(fe_key), w.span_hi.eq(fe_key)]
            with m.Elif(lt_lo2):
                m.d.comb += bump["slides"].eq(1)
                m.d.sync += w.lo.eq(fe_key)
            with m.Elif(gt_span2):
                m.d.sync += w.span_hi.eq(fe_key)

        # the ADD pairs (in the RED's RMW3, which completes short): the front end still holds
        # it, it is no far op, no eviction scan (a key below the window with represented
        # levels a window beyond it) and no slide up (which compares with the best level,
        # which the RED may remove), and both record registers are free (the RED's record
        # moves on in the ADD's RMW3, which fills ``pend`` again; in ``pr3``, DECIDE)
        pair_ok = Signal()
        m.d.comb += pair_ok.eq(pr3 & f_v[-1] & win2)

        # the record of a short RMW3 goes to the output register as soon as it is free (the
        # controller publishes nothing else while it waits: CMP, WB and FIN wait for it)
        with m.If(pend_v & (~outv | self.o_stream.ready)):
            record(pend_w, pend_o, pend_op)
            m.d.sync += pend_v.eq(0)

        # -- controller ----------------------------------------------------------------------
        # the far cache's sums, every cycle: for a far op ``w`` and ``op`` do not change from
        # CMP to FAR, so FAR reads the sums of its own op (bit SW / CW: overflow or borrow)
        # the 48-bit sums in two halves over two cycles (CMP: low halves, DECIDE: high halves
        # with the low halves' carry / borrow; one adder was 8.5 levels, 2026-12-07)
        qw = len(op.q)
        q_hi = op.q[H:qw] if qw > H else Const(0, 1)
        m.d.sync += [
            fcs_lo_a.eq(w.fc_sz[:H] + op.q[:H]),
            fcs_lo_s.eq(Cat(w.fc_sz[:H], Const(1, 1)) - op.q[:H]),  # bit H: no borrow
            fcs_add.eq(Cat(fcs_lo_a[:H], w.fc_sz[H:] + q_hi + fcs_lo_a[H])),
            fcs_sub.eq(Cat(fcs_lo_s[:H], w.fc_sz[H:] - q_hi - ~fcs_lo_s[H])),
            fcc_add.eq(w.fc_ct + 1), fcc_sub.eq(w.fc_ct - op.remove),
        ]

        init_slot = Signal(sb)
        with m.FSM(name="ladder_fsm") as fsm:
            with m.State("INIT"):
                # after reset: empty every slot (one per cycle); ticks keep their values
                for p in st_wr:
                    m.d.comb += [p.en.eq(1), p.addr.eq(init_slot), p.data.eq(0)]
                m.d.sync += init_slot.eq(init_slot + 1)
                with m.If(init_slot == S - 1):
                    m.d.sync += running.eq(1)
                    m.next = "IDLE"

            with m.State("IDLE"):
                take()

            with m.State("LOAD"):
                # the side states: from the memory, or (the op is on the previous op's slot,
                # whose state may have been written back in the take cycle) from ``w``/``o``
                sel_w = Mux(op.bid, st_rd[1].data.as_value(), st_rd[0].data.as_value())
                sel_o = Mux(op.bid, st_rd[0].data.as_value(), st_rd[1].data.as_value())
                with m.If(~ld_ss):
                    m.d.sync += [w.eq(sel_w), o.eq(sel_o)]
                with m.Elif(~ld_sd):
                    m.d.sync += [w.eq(o), o.eq(w)]
                m.d.sync += [kd.eq(key + D), kmd.eq(Cat(key, Const(0, 2)).as_signed() - D)]
                rmw0()
                # replace pair: read the front end's op's ladder entry and bitmap word (the
                # ports are free in LOAD); another ladder index than this op's, or this op's
                # key when this op removes an order (an ITCH U at the same price)
                read_next()
                same_k = fe_key == key
                m.d.sync += [
                    pr1.eq(f_v[-1] & (f_op[-1].kind == LadderOp.ADD)
                           & (op.kind == LadderOp.RED) & (f_op[-1].slot == op.slot)
                           & (f_op[-1].bid == op.bid) & fe_ongrid
                           & ((fe_key[:db] != kidx) | (same_k & op.remove))),
                    eqk.eq(same_k), dq.eq(f_op[-1].q - op.q),
                ]
                with m.If(op.kind == LadderOp.CLR):
                    m.d.sync += [w.eq(0), o.eq(0)]
                    m.next = "WB"
                with m.Else():
                    m.next = "CMP"

            with m.State("CMP"):
                # window compares (``key >= lo + depth`` as ``key - depth >= lo`` etc.), and
                # the first step of the level RMW (it does not depend on the decision)
                # far: at or beyond the far cache's level or the far counts' bound; a RED
                # only at the far cache's level or beyond the bound (between them no order
                # exists: it takes the represented path, which finds its level missing)
                rem_ge = (w.far_orders != 0) & (key >= w.far_lo)
                fc_eq = w.fc_v & (key == w.fc_key)
                m.d.sync += [
                    ge_far.eq(rem_ge | Mux(op.kind == LadderOp.ADD, w.fc_v & (key >= w.fc_key),
                                           fc_eq)),
                    fc_hit.eq(fc_eq),
                    far_fc.eq(w.far_orders + w.fc_ct),
                    rem_lo.eq(Mux((w.far_orders == 0) | (key < w.far_lo), key, w.far_lo)),
                    far_inc.eq(w.far_orders + 1), far_dec.eq(w.far_orders - op.remove),
                    rep_empty.eq(w.nlev == 0),
                    lt_lo.eq(key < w.lo),
                    ge_top.eq(kmd >= w.lo),
                    lt_best_d.eq(kmd < cache[0].key),
                    evict_need.eq(kd <= w.span_hi),
                    gt_span.eq(key > w.span_hi),
                ]
                rmw1_fast()
                # conservative: only a RED that removes a level can leave a side with fewer
                # than n cached levels and more in the ladder (before each op, c >= min(n,
                # nlev); an ADD never lowers c; with nlev == c every level is cached)
                # (or may leave the side without represented levels while the far cache holds
                # one: WB then promotes it)
                m.d.sync += may_refill.eq((op.kind == LadderOp.RED) & op.remove
                                          & (((w.c <= N) & (w.nlev != w.c))
                                             | ((w.nlev == 1) & w.fc_v)))
                # replace pair: latch the front end's op's entry and word (read in LOAD)
                m.d.sync += [lr_sz2.eq(lad_rd.data.sz), lr_ct2.eq(lad_rd.data.ct),
                             bmw2.eq(bm_rd.data), bmbit2.eq(bm_rd.data.bit_select(fe_key[:6], 1)),
                             sb2_r.eq(summary_bit(fe_key[6:db] if W > 1 else 0)),
                             bit2_r.eq(summary_bit(fe_key[6:db] if W > 1 else 0)
                                       & bm_rd.data.bit_select(fe_key[:6], 1)),
                             kmd2.eq(Cat(fe_key, Const(0, 2)).as_signed() - D),
                             kd2.eq(fe_key + D),
                             pr1.eq(0), pr2.eq(0)]
                with m.If(pend_v & outv & ~self.o_stream.ready):
                    pass  # the previous op's record is still pending: RMW3 needs its register
                with m.Elif(offg):
                    m.d.comb += bump["off_grid"].eq(1)
                    m.d.sync += w.bad.eq(1)
                    m.next = "WB"
                with m.Else():
                    m.d.sync += pr2.eq(pr1)
                    m.next = "DECIDE"

            with m.State("DECIDE"):
                far_done = Signal()
                rmw2()  # speculative: used when the decision is a represented op
                cupd_pre()
                cmp2()  # replace pair: used in RMW3 when ``pr3``
                # with "both record registers free in RMW3" folded in: nothing but the pend
                # publish (and the output's ready) changes them in DECIDE, so ``~pend_v &
                # (~outv | ready)`` now is ``~pend_v & ~outv`` then (two fewer inputs on the
                # select of the next ``w``: 10 levels reg to reg with them, 2026-12-07)
                m.d.sync += pr3.eq(pr2 & ~pend_v & (~outv | self.o_stream.ready))
                # peek at the next op: read its state words, ladder entry and bitmap word at
                # the end of this cycle; RMW3 may take it (then its CMP follows RMW3)
                read_next()
                nk = fe_key
                nb = f_op[-1].bid
                ss, sd = f_op[-1].slot == op.slot, nb == op.bid
                same = ss & sd
                m.d.sync += [pk.eq(f_v[-1] & (f_op[-1].kind != LadderOp.CLR)),
                             tk_b.eq(~ss & nb), tk_a.eq(~ss & ~nb), tk_o.eq(ss & ~sd),
                             tk_w.eq(ss & sd),
                             fwd_e.eq(same & (nk[:db] == kidx)),
                             fwd_w.eq(same & ((nk[6:db] == kidx[6:]) if W > 1 else 1))]
                m.d.sync += [fm_fadd.eq(0), fm_fnew.eq(0), fm_radd.eq(0), fm_fred.eq(0),
                             fm_rred.eq(0)]
                with m.If(op.kind == LadderOp.ADD):
                    with m.If(ge_far):
                        m.d.sync += [fm_fadd.eq(fc_hit), fm_radd.eq(~fc_hit)]
                        m.d.comb += far_done.eq(1)
                    with m.Elif(rep_empty):
                        m.d.sync += [w.lo.eq(key), w.span_hi.eq(key)]
                        m.next = "RMW3"
                    with m.Elif(lt_lo):
                        m.d.comb += bump["slides"].eq(1)
                        with m.If(evict_need):
                            m.d.sync += [evict.eq(1), skey.eq(kd)]
                            m.next = "R_START"
                        with m.Else():
                            m.d.sync += w.lo.eq(key)
                            m.next = "RMW3"
                    with m.Elif(ge_top):
                        with m.If(lt_best_d):
                            m.d.comb += bump["slides"].eq(1)
                            m.d.sync += [w.lo.eq(key - (D - 1)), w.span_hi.eq(key)]
                            m.next = "RMW3"
                        with m.Else():
                            m.d.sync += fm_fnew.eq(1)
                            m.d.comb += far_done.eq(1)
                    with m.Else():
                        with m.If(gt_span):
                            m.d.sync += w.span_hi.eq(key)
                        m.next = "RMW3"
                with m.Else():  # RED
                    with m.If(ge_far):
                        m.d.sync += [fm_fred.eq(fc_hit), fm_rred.eq(~fc_hit)]
                        m.d.comb += far_done.eq(1)
                    with m.Elif(rep_empty | lt_lo | ge_top):
                        m.d.comb += bump["missing"].eq(1)
                        m.d.sync += w.bad.eq(1)
                        m.next = "WB"
                    with m.Else():
                        m.next = "RMW3"
                with m.If(far_done):
                    m.d.comb += bump["far_ops"].eq(1)
                    m.next = "FAR"

            with m.State("FAR"):
                # a far op (decided in DECIDE): the far cache's level or the far counts
                fc_ovf = fcs_add[SW] | fcc_add[CW]
                fc_miss = fcs_sub[SW] | fcc_sub[CW]
                with m.If(fm_fadd):
                    with m.If(fc_ovf):
                        m.d.comb += bump["size_overflow"].eq(1)
                        m.d.sync += w.bad.eq(1)
                    with m.Else():
                        m.d.sync += [w.fc_sz.eq(fcs_add[:SW]), w.fc_ct.eq(fcc_add[:CW])]
                with m.If(fm_fnew):
                    # the new level is better than every far level: the far cache's level
                    # (if any) joins the far counts, whose bound it becomes
                    m.d.sync += [w.fc_v.eq(1), w.fc_key.eq(key), w.fc_px.eq(op.px),
                                 w.fc_sz.eq(op.q), w.fc_ct.eq(1)]
                    with m.If(w.fc_v):
                        m.d.sync += [w.far_orders.eq(far_fc), w.far_lo.eq(w.fc_key)]
                with m.If(fm_radd):
                    m.d.sync += [w.far_orders.eq(far_inc), w.far_lo.eq(rem_lo)]
                with m.If(fm_fred):
                    with m.If(fc_miss):
                        m.d.comb += bump["missing"].eq(1)
                        m.d.sync += w.bad.eq(1)
                    with m.Else():
                        m.d.sync += [w.fc_sz.eq(fcs_sub[:SW]), w.fc_ct.eq(fcc_sub[:CW]),
                                     w.fc_v.eq(fcc_sub[:CW] != 0)]
                with m.If(fm_rred):
                    m.d.sync += w.far_orders.eq(far_dec)
                m.next = "WB"

            # after an eviction scan only (else done in LOAD / CMP / DECIDE): the RMW from a
            # fresh read of the entry and word (issued in EV_DONE2)
            with m.State("RMW0E"):
                rmw0()
                m.next = "RMW1E"

            with m.State("RMW1E"):
                rmw1_fast()
                m.next = "RMW2"

            with m.State("RMW2"):
                rmw2()
                cupd_pre()
                # the eviction scan changed the cache and read other entries: no fast take
                m.d.sync += [pk.eq(0), may_refill.eq(1), pr3.eq(0)]
                m.next = "RMW3"

            with m.State("RMW3"):
                m.d.sync += [pr3.eq(0), use_p.eq(0)]
                with m.If(e_ovf | e_miss):
                    m.d.comb += [bump["size_overflow"].eq(e_ovf), bump["missing"].eq(e_miss)]
                    m.d.sync += refill_r.eq((w.c < N) & (w.nlev > w.c))
                    m.d.sync += w.bad.eq(1)
                    m.next = "WB"
                with m.Else():
                    m.d.comb += [
                        lad_wr.en.eq(1), lad_wr.addr.eq(lad_addr(kidx)),
                        lad_wr.data.sz.eq(nsz_w), lad_wr.data.ct.eq(nct),
                        bm_wr.en.eq(1), bm_wr.addr.eq(bm_addr(kidx[6:] if W > 1 else 0)),
                        bm_wr.data.eq(nword),
                    ]
                    if W > 1:  # the bit ``kidx[6:]`` (``soh``) becomes ``nword_any``
                        m.d.comb += w_upd.summary.eq((w.summary & ~soh)
                                                     | Mux(nword_any, soh, 0))
                    else:
                        m.d.comb += w_upd.summary[0].eq(nword_any)
                    m.d.comb += w_upd.nlev.eq(nlev_new)
                    cupd()
                    with m.If(may_refill):
                        c_next = Mux(cu_del, w.c - 1, Mux(cu_inc, w.c + 1, w.c))
                        m.d.sync += refill_r.eq((c_next < N) & (nlev_new > c_next))
                        m.next = "WB"
                    with m.Else():
                        # short completion: write the op's side back, its record waits in
                        # ``pend`` (published from the next cycle on), take the peeked op
                        write_state(0)
                        # a promotion's internal ADD has no record of its own
                        m.d.sync += [pend_v.eq(~promo), pend_w.eq(w_upd), pend_o.eq(o),
                                     pend_op.eq(op), promo.eq(0)]
                        m.next = "IDLE"
                        with m.If(pair_ok):
                            # replace pair: the ADD's RMW3 follows (its DECIDE2 is here)
                            take_pair()
                            m.next = "RMW3"
                        with m.Elif(pk):
                            take_fast()
                            m.next = "CMP"

            with m.State("R_PRE"):
                m.d.sync += [skey.eq(Mux(w.c == 0, w.lo, last_key + 1)), refill_r.eq(0)]
                m.next = "R_START"

            # ---- next-occupied search (refill and eviction scan) ------------------------------
            # R_START reads the bitmap word of ``skey``; R_W1 masks it; R_FS takes its first
            # set bit, or moves to the next non-empty word (summary) and masks nothing there;
            # R_RDL reads the ladder entry; R_LAD computes its key.
            with m.State("R_START"):
                with m.If(evict & (w.nlev == 0)):
                    m.next = "EV_DONE"
                with m.Else():
                    m.d.comb += bm_word_sel.eq(s_word)
                    m.d.sync += [
                        smask.eq(Cat(*(Const(i, 7) >= s_bit for i in range(64)))),
                        sbit_s.eq(summary_bit(s_word)),
                        cur_widx.eq(s_word),
                    ]
                    if W > 1:
                        m.d.sync += sm_hi.eq(w.summary & Cat(*(Const(i, self.wbits + 1) > s_word
                                                               for i in range(W))))
                    m.next = "R_W1"

            with m.State("R_W1"):
                m.d.sync += [sw1.eq(Mux(sbit_s, bm_rd.data & smask, 0)),
                             cur_word.eq(Mux(sbit_s, bm_rd.data, 0))]
                if W > 1:
                    m.d.sync += sh_upd + sa_upd
                m.next = "R_FS"

            with m.State("R_FS"):
                # first set bit of the masked word: per-group indices and the first non-empty
                # group, registered; R_FS2 selects
                if W > 1:
                    m.d.sync += wn_r.eq(Mux(sh_any, sh_idx, sa_idx))
                groups = [sw1[g:g + 8] for g in range(0, 64, 8)]
                m.d.sync += [fs_hit.eq(sw1.any()),
                             fs_gi.eq(_prio8(Cat(*(g.any() for g in groups)))),
                             fs_locs.eq(Cat(*(_prio8(g) for g in groups)))]
                m.next = "R_FS2"

            with m.State("R_FS2"):
                with m.If(fs_hit):
                    loc = fs_locs.word_select(fs_gi, 3)
                    m.d.sync += pos.eq(Cat(loc, fs_gi, cur_widx) if W > 1 else Cat(loc, fs_gi))
                    m.next = "R_RDL"
                with m.Else():
                    m.d.comb += bm_word_sel.eq(wn_r)
                    m.d.sync += [cur_widx.eq(wn_r), smask.eq(~0), sbit_s.eq(1)]
                    m.next = "R_W1"

            with m.State("R_RDL"):
                m.d.comb += lad_sel.eq(pos)
                m.next = "R_LAD"

            with m.State("R_LAD"):
                m.d.sync += [fkey.eq(key_of(pos)), fsz.eq(lad_rd.data.sz),
                             bitv_r.eq(_onehot(pos[:6], 64)),
                             fct.eq(lad_rd.data.ct)]
                # an evicted level goes through R_PX too: the first (best) one becomes the
                # far cache's level, with its price
                m.next = "R_PX"

            with m.State("R_PX"):
                fidx = Mux(op.bid, ~fkey, fkey)
                m.d.sync += [fpx_a.eq(fidx[:16] * tick_d), fpx_b.eq(fidx[16:] * tick_d)]
                m.next = "R_PX2"

            with m.State("R_PX2"):
                m.d.sync += fpx.eq(fpx_a + (fpx_b << 16))
                with m.If(evict):
                    m.next = "R_EVC"
                with m.Else():
                    m.next = "R_APP"

            with m.State("R_APP"):
                e = Signal(self.entry_layout)
                m.d.comb += [e.key.eq(fkey), e.px.eq(fpx), e.sz.eq(fsz), e.ct.eq(fct),
                             bump["refill_levels"].eq(1)]
                for i in range(K):
                    with m.If(w.c == i):
                        m.d.sync += w.cache[i].eq(e)
                m.d.sync += [w.c.eq(w.c + 1), skey.eq(fkey + 1)]
                with m.If((w.c + 1 < K) & (w.nlev > w.c + 1)):
                    m.next = "R_START"
                with m.Else():
                    m.next = "WB"

            with m.State("R_EVC"):
                nw = cur_word & ~bitv_r
                m.d.sync += [ev_hit.eq(fkey >= skey), nword.eq(nw), nword_any.eq(others_any)]
                m.d.sync += [far_add.eq(w.far_orders + fct), far_ev.eq(w.far_orders + w.fc_ct),
                             ev_better.eq(~w.fc_v | (fkey < w.fc_key))]
                m.next = "R_EVD"

            with m.State("R_EVD"):
                with m.If(ev_hit):
                    # evict the level at ``pos``: clear its bit, count its orders as far
                    m.d.comb += [bm_wr.en.eq(1),
                                 bm_wr.addr.eq(bm_addr(pos[6:]) if W > 1 else bm_addr(0)),
                                 bm_wr.data.eq(nword), bump["evicted"].eq(1)]
                    if W > 1:
                        m.d.sync += w.summary.bit_select(pos[6:], 1).eq(nword_any)
                    else:
                        m.d.sync += w.summary[0].eq(nword_any)
                    m.d.sync += w.nlev.eq(w.nlev - 1)
                    with m.If(ev_better):
                        # better than the far cache's level: the far cache's (the old one
                        # joins the far counts and bounds them: far levels never overlap)
                        m.d.sync += [w.fc_v.eq(1), w.fc_key.eq(fkey), w.fc_px.eq(fpx),
                                     w.fc_sz.eq(fsz), w.fc_ct.eq(fct)]
                        with m.If(w.fc_v):
                            m.d.sync += [w.far_orders.eq(far_ev), w.far_lo.eq(w.fc_key)]
                    with m.Else():
                        m.d.sync += [
                            w.far_orders.eq(far_add),
                            w.far_lo.eq(Mux((w.far_orders == 0) | (fkey < w.far_lo), fkey,
                                            w.far_lo)),
                        ]
                    m.next = "R_START"
                with m.Else():
                    m.next = "EV_DONE"

            with m.State("EV_DONE"):
                # drop cached levels at >= key + depth, move the window down to ``key``
                m.d.sync += keep.eq(Cat(*(in_c[i] & (cache[i].key < kd) for i in range(K))))
                m.next = "EV_DONE2"

            with m.State("EV_DONE2"):
                nkeep = Signal(range(K + 1))
                for i in range(K):
                    with m.If(keep[i]):
                        m.d.comb += nkeep.eq(i + 1)
                m.d.sync += [w.c.eq(nkeep), w.lo.eq(key), w.span_hi.eq(kd - 1), evict.eq(0)]
                # the ladder entry and bitmap word of ``key`` are read at the end of this cycle
                m.next = "RMW0E"

            with m.State("WB"):
                # refill when the cache holds fewer than n levels and the ladder has more;
                # else write both side states back, publish the record, take the next op
                with m.If(refill_r):
                    m.d.sync += [evict.eq(0),
                                 last_key.eq(_or_all([Mux(w.c == i + 1, cache[i].key, 0)
                                                      for i in range(K)]))]
                    m.next = "R_PRE"
                with m.Else():
                    write_state(op.kind == LadderOp.CLR)
                    with m.If(promo):  # cannot happen (a promotion completes short)
                        m.d.sync += promo.eq(0)
                        m.next = "IDLE"
                        take()
                    with m.Elif(~pend_v & (~outv | self.o_stream.ready)):
                        record(w, o, op)
                        finish()
                    with m.Else():
                        m.next = "FIN"

            with m.State("FIN"):
                # the record waits for the sink (the state words are written)
                with m.If(~pend_v & (~outv | self.o_stream.ready)):
                    record(w, o, op)
                    finish()

            with m.State("PROMO"):
                # the far cache's level becomes the side's only represented level: an ADD of
                # the whole level (size, count) at its key; its ladder entry and bitmap word
                # are read at the end of this cycle, PROMO2 latches them as LOAD does
                m.d.comb += [lad_sel.eq(w.fc_key[:db]),
                             bm_word_sel.eq(w.fc_key[6:db] if W > 1 else 0)]
                m.d.sync += [op.kind.eq(LadderOp.ADD), op.px.eq(w.fc_px), op.q.eq(w.fc_sz),
                             op.remove.eq(0), key.eq(w.fc_key), offg.eq(0), refill_r.eq(0),
                             nq_lo.eq(Const(0, H) - w.fc_sz[:H]),
                             promo.eq(1), promo_ct.eq(w.fc_ct), w.fc_v.eq(0)]
                if W > 1:
                    m.d.sync += soh.eq(_onehot(w.fc_key[6:db], W))
                m.d.comb += bump["promotions"].eq(1)
                m.next = "PROMO2"

            with m.State("PROMO2"):
                rmw0()
                m.d.sync += [kd.eq(key + D), kmd.eq(Cat(key, Const(0, 2)).as_signed() - D),
                             pr1.eq(0)]
                m.next = "CMP"
        m.d.comb += bsel.eq(Mux(fsm.ongoing("RMW3"), fe_key[:6], kidx[:6]))
        return m

    def _divide_front_end(self, m, adv, src_v, pin, code, f_v, f_op, f_code, fe_key,
                          fe_ongrid):
        """The 5-stage front end of an undivided op (F1-F5: tick divide, grid check, key)."""
        NF = len(f_v)
        m100, s100 = TICK_MAGIC[100]
        m10k, s10k = TICK_MAGIC[10000]
        mg = Mux(code == 1, m100, m10k)
        pp_ac, pp_ad, pp_bc, pp_bd = (Signal(32, name=f"pp_{x}") for x in ("ac", "ad", "bc", "bd"))
        p_ac2, p_bd2, p_bd3 = Signal(32), Signal(32), Signal(32)
        p_mid = Signal(33)
        p_t = Signal(50)
        prod = Signal(64)

        def grid(mm, ss):  # prod mod 2^ss < mm
            mb = mm.bit_length()
            return (prod[mb:ss] == 0) & (prod[:mb] < mm)

        fe_q = Signal(PX_WIDTH)  # idx of the op in F4 (one LUT per key bit with the bid flip)
        m.d.comb += fe_q.eq(Mux(f_code[3] == 1, prod[s100:], Mux(f_code[3] == 2, prod[s10k:],
                                                                 f_op[3].px)))
        with m.If(adv):
            m.d.sync += [f_v[0].eq(src_v), f_op[0].eq(pin), f_code[0].eq(code)]
            for i in range(1, NF):
                m.d.sync += [f_v[i].eq(f_v[i - 1]), f_op[i].eq(f_op[i - 1]),
                             f_code[i].eq(f_code[i - 1])]
            m.d.sync += [
                pp_ac.eq(pin.px[:16] * mg[:16]), pp_ad.eq(pin.px[:16] * mg[16:]),
                pp_bc.eq(pin.px[16:] * mg[:16]), pp_bd.eq(pin.px[16:] * mg[16:]),
                p_mid.eq(pp_ad + pp_bc), p_ac2.eq(pp_ac), p_bd2.eq(pp_bd),
                p_t.eq(Cat(p_ac2[:16], p_ac2[16:] + p_mid)), p_bd3.eq(p_bd2),
                prod.eq(Cat(p_t[:32], p_t[32:] + p_bd3)),
                fe_key.eq(Mux(f_op[3].bid, ~fe_q, fe_q)),
                fe_ongrid.eq(Mux(f_code[3] == 1, grid(m100, s100),
                                 Mux(f_code[3] == 2, grid(m10k, s10k), 1))),
            ]
