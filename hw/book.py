"""Multi-symbol full-depth price-level book: decoded ITCH records in, BBO updates out.

Pipeline (one record per clock; see docs/book.md for the figures and the limits)::

    C0  issue      accept a record (or split a U into U1/U2, or inject a slot clear);
                   subscription lookup (locate -> slot, sync memory) and order-table bucket
                   read start in parallel
    C1  order tbl  compare the bucket's ways, insert/update/remove, emit a level op
    C2  level rd   read both sides of the op's slot (sync memories, transparent)
    C3  level op   add/reduce/insert-shift/delete-shift on the side's sorted level array,
                   write back, compare the top of book before/after, write the BBO record
                   into the output FIFO
    C4  out        the record is valid on ``o_stream``

Each (slot, side) holds up to ``levels`` price levels sorted best first in one memory word, so
the best level, the next ones, and the level that comes up when the best one empties are always
exact. A price level that does not fit (``levels`` distinct prices already on that side), an
aggregate size that does not fit ``size_width`` bits, or an order the order table could not
store marks the slot's book *not valid* (``valid = 0`` in every later record of that slot)
until the host clears the slot: a BBO is never silently wrong.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from host.feed.record_map import META_FIELDS, RECORD_WIDTHS
from hw.book_layouts import bbo_layout
from hw.layouts import ItchRecord
from hw.order_table import LevelOpKind, OrderTable, OtOp, or_all, sub_info_layout
from hw.regs import BOOK_COUNTERS

__all__ = ["Book", "BOOK_STATS", "COUNTER_WIDTH"]

COUNTER_WIDTH = 48
"""Width of every counter (the register block zero-extends to 64)."""

BOOK_STATS: tuple[tuple[str, str], ...] = (
    ("stall_cycles", "cycles with a record offered and not accepted (U second half, clears, "
                     "output FIFO credit)"),
    ("gaps", "records received with the gap flag"),
    ("oversize", "E/C/X taking more shares than the order has (the order is removed)"),
)
"""Extra counters of :class:`Book` (the ``stats`` port), not in the register table."""

_TAG = data.StructLayout(
    {
        "locate": unsigned(RECORD_WIDTHS["stock_locate"]),
        "timestamp": unsigned(RECORD_WIDTHS["timestamp"]),
        "seq": unsigned(META_FIELDS["seq"]),
        "msg_type": unsigned(RECORD_WIDTHS["msg_type"]),
        "gap": unsigned(1),
    }
)


def _int_param(name, v, lo):
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, not {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, not {v}")


class Book(wiring.Component):
    """Order table + full-depth price levels of ``slots`` subscribed symbols.

    Parameters
    ----------
    slots : int
        Symbols tracked at once (subscription table entries point at a slot).
    capacity : int
        Order table entries (power of two), shared by all slots.
    ways : int
        Order table ways per bucket.
    levels : int
        Price levels held per (slot, side): the depth limit of the structure.
    depth_n : int
        Levels per side reported in every BBO record (``<= levels``).
    size_width : int
        Bits of an aggregate level size (the record zero-extends to 64).
    fifo_depth : int
        Output FIFO entries (>= 8).
    epoch_bits : int
        Per-slot epoch width (order table, see :mod:`hw.order_table`): one clear in
        ``2**epoch_bits`` of a slot scrubs the order table first (``capacity // ways``
        cycles).

    Attributes
    ----------
    i_stream : In(stream.Signature(ItchRecord))
        Decoded records.
    o_stream : Out(stream.Signature(bbo_layout(depth_n)))
        One record each time a message changes a subscribed symbol's best bid or offer (price,
        size or order count) or makes its book not-valid; top ``depth_n`` levels of both sides
        in every record.
    sub_locate, sub_slot, sub_valid, sub_write : In
        Subscription write port: on ``sub_write``, locate ``sub_locate`` maps to slot
        ``sub_slot`` (``sub_valid=1``) or is unsubscribed (``sub_valid=0``). Takes effect for
        records accepted from the next cycle on. ``sub_busy`` is always 0.
    clear_slot, clear_stale_slot, clear_stale_all : In
        One-cycle pulses: empty the book of ``clear_slot`` / of every slot, free its orders,
        clear its stale and not-valid flags. ``clear_busy`` is high while clears are pending
        (one slot per cycle; a clear of every slot takes ``slots`` cycles), and for the
        order-table scrub of a clear that wraps a slot's epoch: ``capacity // ways`` more
        cycles, once per ``2**epoch_bits`` clears of that slot (in a clear of every slot, one
        scrub covers every slot that wraps in it). A clear of every slot also runs after reset;
        resets and clears of every slot count as clears of each slot. Exact after any number
        of clears and resets.
    counters : Out(StructLayout)
        :data:`hw.regs.BOOK_COUNTERS`, ``COUNTER_WIDTH`` bits each.
    stats : Out(StructLayout)
        :data:`BOOK_STATS`.
    ev_table_full, ev_level_overflow : Out(1)
        One-cycle event pulses (for the sticky status bits).

    Latency (``i_stream`` transfer to ``o_stream.valid``): 4 cycles for every message type
    except ``U``, 5 cycles. Throughput: one record per clock, including back-to-back records on
    the same symbol, level and order (transparent memories forward every read-modify-write);
    a ``U`` takes two clocks (``i_stream.ready`` low for one cycle). Backpressure: records are
    accepted only while the output FIFO has room for every record in flight
    (``fifo level + 4 <= fifo_depth``), so the pipeline itself never stalls; and not while a
    clear is pending: one cycle per slot cleared, plus ``capacity // ways + 1`` cycles for the
    order-table scrub of a clear that wraps a slot's epoch (once per ``2**epoch_bits`` clears
    of a slot; ``clear_busy`` stays high, the stall cycles are counted in
    ``stats.stall_cycles`` when a record waits). Records never wait for a scrub otherwise.
    """

    def __init__(self, *, slots: int = 64, capacity: int = 65536, ways: int = 8,
                 levels: int = 32, depth_n: int = 5, size_width: int = 48,
                 fifo_depth: int = 16, epoch_bits: int = 8):
        _int_param("slots", slots, 1)
        _int_param("levels", levels, 2)
        _int_param("depth_n", depth_n, 1)
        _int_param("size_width", size_width, RECORD_WIDTHS["shares"])
        _int_param("fifo_depth", fifo_depth, 8)
        if depth_n > levels:
            raise ValueError(f"depth_n ({depth_n}) must be <= levels ({levels})")
        if size_width > 64:
            raise ValueError(f"size_width must be <= 64, not {size_width}")
        self.ot = OrderTable(slots=slots, capacity=capacity, ways=ways, epoch_bits=epoch_bits,
                             tag_width=_TAG.size)
        self.slots = slots
        self.slot_bits = max(1, (slots - 1).bit_length())
        self.capacity = capacity
        self.ways = ways
        self.levels = levels
        self.depth_n = depth_n
        self.size_width = size_width
        self.count_width = capacity.bit_length()  # a level never holds more orders than this
        self.fifo_depth = fifo_depth
        self.bbo_layout = bbo_layout(depth_n)
        self.level_entry = data.StructLayout(
            {
                "valid": unsigned(1),
                "px": unsigned(RECORD_WIDTHS["price"]),
                "sz": unsigned(size_width),
                "ct": unsigned(self.count_width),
            }
        )
        self.side_layout = data.ArrayLayout(self.level_entry, levels)
        sb = self.slot_bits
        super().__init__(
            {
                "i_stream": In(stream.Signature(ItchRecord)),
                "o_stream": Out(stream.Signature(self.bbo_layout)),
                "sub_locate": In(RECORD_WIDTHS["stock_locate"]),
                "sub_slot": In(sb),
                "sub_valid": In(1),
                "sub_write": In(1),
                "sub_busy": Out(1),
                "clear_slot": In(sb),
                "clear_stale_slot": In(1),
                "clear_stale_all": In(1),
                "clear_busy": Out(1),
                "counters": Out(data.StructLayout(
                    {n: unsigned(COUNTER_WIDTH) for n, _ in BOOK_COUNTERS})),
                "stats": Out(data.StructLayout(
                    {n: unsigned(COUNTER_WIDTH) for n, _ in BOOK_STATS})),
                "ev_table_full": Out(1),
                "ev_level_overflow": Out(1),
            }
        )

    # ------------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        S, L, N = self.slots, self.levels, self.depth_n
        m.submodules.ot = ot = self.ot
        m.submodules.fifo = fifo = SyncFIFO(width=self.bbo_layout.size, depth=self.fifo_depth)

        # -- subscription: locate -> (valid, slot); slot -> locate ----------------------------
        m.submodules.sub_mem = sub_mem = Memory(
            shape=sub_info_layout(S), depth=1 << RECORD_WIDTHS["stock_locate"], init=[])
        sub_wr = sub_mem.write_port()
        sub_rd = sub_mem.read_port()
        m.submodules.loc_mem = loc_mem = Memory(
            shape=RECORD_WIDTHS["stock_locate"], depth=S, init=[])
        loc_wr = loc_mem.write_port()
        loc_rd = loc_mem.read_port()
        m.d.comb += [
            sub_wr.en.eq(self.sub_write),
            sub_wr.addr.eq(self.sub_locate),
            sub_wr.data.subscribed.eq(self.sub_valid),
            sub_wr.data.slot.eq(self.sub_slot),
            loc_wr.en.eq(self.sub_write & self.sub_valid),
            loc_wr.addr.eq(self.sub_slot),
            loc_wr.data.eq(self.sub_locate),
            ot.i_sub.eq(sub_rd.data),
        ]

        # -- C0: issue -------------------------------------------------------------------------
        rec = self.i_stream.payload
        mt = rec.msg_type
        is_add = (mt == ord("A")) | (mt == ord("F"))
        is_red = (mt == ord("E")) | (mt == ord("C")) | (mt == ord("X")) | (mt == ord("D"))
        is_u = mt == ord("U")
        phase = Signal()  # the second half of a U is due
        clr_one = Signal()
        clr_one_slot = Signal(self.slot_bits)
        clr_all = Signal(init=1)  # a clear of every slot runs after reset
        clr_idx = Signal(self.slot_bits)
        credit = Signal()
        m.d.comb += credit.eq(fifo.w_level + 4 <= self.fifo_depth)

        oi = ot.i.payload
        tag = Signal(_TAG)
        m.d.comb += [
            sub_rd.addr.eq(rec.stock_locate),
            tag.locate.eq(rec.stock_locate),
            tag.timestamp.eq(rec.timestamp),
            tag.seq.eq(rec.seq),
            tag.msg_type.eq(mt),
            tag.gap.eq(rec.gap),
            oi.tag.eq(tag),
            oi.key.eq(Mux(phase, rec.new_order_ref, rec.order_ref)),
            oi.same_ref.eq(rec.new_order_ref == rec.order_ref),
            oi.is_del.eq(mt == ord("D")),
            oi.bid.eq(rec.side == ord("B")),
            oi.side_ok.eq((rec.side == ord("B")) | (rec.side == ord("S"))),
            oi.px.eq(rec.price),
            oi.shares.eq(rec.shares),
        ]
        with m.If(self.clear_stale_slot):
            m.d.sync += [clr_one.eq(1), clr_one_slot.eq(self.clear_slot)]
        with m.If(self.clear_stale_all):
            m.d.sync += [clr_all.eq(1), clr_idx.eq(0)]

        # ``ot.i.ready`` is low only from a clear that wraps a slot's epoch until the order
        # table has scrubbed for it (hw.order_table); that clear stays pending here (clr_one /
        # clr_all drop only when it is accepted), so the U2 and record branches below never
        # meet a scrub and need not look at ``ot.i.ready`` (which depends on ``oi.op``).
        with m.If(phase):
            m.d.comb += [ot.i.valid.eq(1), oi.op.eq(OtOp.U2), self.i_stream.ready.eq(1)]
            m.d.sync += phase.eq(0)
        with m.Elif(clr_one | clr_all):
            m.d.comb += [
                ot.i.valid.eq(1),
                oi.op.eq(OtOp.CLR),
                oi.slot.eq(Mux(clr_all, clr_idx, clr_one_slot)),
                oi.clr_all.eq(clr_all),
                oi.tag.eq(0),
            ]
            with m.If(ot.i.ready):
                with m.If(clr_all):
                    m.d.sync += clr_idx.eq(clr_idx + 1)
                    with m.If(clr_idx == S - 1):
                        m.d.sync += clr_all.eq(0)
                with m.Else():
                    with m.If(~self.clear_stale_slot):
                        m.d.sync += clr_one.eq(0)
        with m.Elif(self.i_stream.valid & credit):
            m.d.comb += ot.i.valid.eq(1)
            with m.If(is_u):
                m.d.comb += oi.op.eq(OtOp.U1)
                m.d.sync += phase.eq(1)
            with m.Else():
                m.d.comb += [
                    self.i_stream.ready.eq(1),
                    oi.op.eq(Mux(is_add, OtOp.ADD, Mux(is_red, OtOp.RED, OtOp.NONE))),
                ]
        m.d.comb += [self.clear_busy.eq(clr_one | clr_all), self.sub_busy.eq(0)]

        # -- C2: level read ----------------------------------------------------------------------
        s3 = Signal(ot.out_layout)
        s3v = Signal()
        m.d.sync += [s3.eq(ot.o.payload), s3v.eq(ot.o.valid)]
        mems = {}
        for side in ("bid", "ask"):
            m.submodules[f"{side}_mem"] = mem = Memory(shape=self.side_layout, depth=S, init=[])
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            m.d.comb += [rd.addr.eq(ot.o.payload.slot), wr.addr.eq(s3.slot)]
            mems[side] = (rd, wr)
        m.d.comb += loc_rd.addr.eq(ot.o.payload.slot)

        # -- C3: level update ------------------------------------------------------------------
        bid_rd, bid_wr = mems["bid"]
        ask_rd, ask_wr = mems["ask"]
        side_w = Signal(self.side_layout)
        m.d.comb += side_w.eq(Mux(s3.bid, bid_rd.data.as_value(), ask_rd.data.as_value()))
        E = [side_w[i] for i in range(L)]
        eq = Signal(L)
        better = Signal(L)
        m.d.comb += [
            eq.eq(Cat(*(E[i].valid & (E[i].px == s3.px) for i in range(L)))),
            better.eq(Cat(*(E[i].valid & Mux(s3.bid, E[i].px > s3.px, E[i].px < s3.px)
                            for i in range(L)))),
        ]
        found = eq.any()
        hit_sz = Signal(self.size_width)
        hit_ct = Signal(self.count_width)
        m.d.comb += [
            hit_sz.eq(or_all(Mux(eq[i], E[i].sz, 0) for i in range(L))),
            hit_ct.eq(or_all(Mux(eq[i], E[i].ct, 0) for i in range(L))),
        ]
        new_w = Signal(self.side_layout)
        m.d.comb += new_w.eq(side_w)
        lvl_full = Signal()  # a new price does not fit: level store full
        sz_ovf = Signal()  # an aggregate size does not fit size_width
        missing = Signal()  # reduce of a level that is not there (only after an earlier error)
        sum_sz = Signal(self.size_width + 1)
        m.d.comb += sum_sz.eq(hit_sz + s3.q)
        with m.Switch(s3.op):
            with m.Case(LevelOpKind.ADD):
                with m.If(found):
                    m.d.comb += sz_ovf.eq(sum_sz[-1])
                    for i in range(L):
                        with m.If(eq[i]):
                            m.d.comb += [new_w[i].sz.eq(sum_sz), new_w[i].ct.eq(hit_ct + 1)]
                with m.Elif(E[L - 1].valid):
                    m.d.comb += lvl_full.eq(1)
                with m.Else():
                    for j in range(L):
                        at = ~better[j] if j == 0 else (better[j - 1] & ~better[j])
                        with m.If(at):
                            m.d.comb += [
                                new_w[j].valid.eq(1),
                                new_w[j].px.eq(s3.px),
                                new_w[j].sz.eq(s3.q),
                                new_w[j].ct.eq(1),
                            ]
                        if j > 0:
                            with m.If(~better[j] & ~at):
                                m.d.comb += new_w[j].eq(E[j - 1])
            with m.Case(LevelOpKind.RED):
                with m.If(~found | (hit_sz < s3.q) | (s3.remove & (hit_ct == 0))):
                    m.d.comb += missing.eq(1)
                with m.Elif(s3.remove & (hit_ct == 1)):
                    past = Signal(L)
                    for j in range(L):
                        m.d.comb += past[j].eq(eq[: j + 1].any())
                        nxt_e = E[j + 1].as_value() if j + 1 < L else 0
                        with m.If(past[j]):
                            m.d.comb += new_w[j].eq(nxt_e)
                with m.Else():
                    for i in range(L):
                        with m.If(eq[i]):
                            m.d.comb += [
                                new_w[i].sz.eq(hit_sz - s3.q),
                                new_w[i].ct.eq(hit_ct - s3.remove),
                            ]
        bad = lvl_full | sz_ovf | missing
        is_clr = s3v & (s3.op == LevelOpKind.CLR)
        we = Signal()
        m.d.comb += we.eq(s3v & ((s3.op == LevelOpKind.ADD) | (s3.op == LevelOpKind.RED)) & ~bad)
        m.d.comb += [
            bid_wr.en.eq((we & s3.bid) | is_clr),
            ask_wr.en.eq((we & ~s3.bid) | is_clr),
            bid_wr.data.eq(Mux(is_clr, 0, new_w.as_value())),
            ask_wr.data.eq(Mux(is_clr, 0, new_w.as_value())),
        ]
        bid_post = Signal(self.side_layout)
        ask_post = Signal(self.side_layout)
        m.d.comb += [
            bid_post.eq(Mux(we & s3.bid, new_w.as_value(), bid_rd.data.as_value())),
            ask_post.eq(Mux(we & ~s3.bid, new_w.as_value(), ask_rd.data.as_value())),
        ]

        def top(word):
            e0 = word[0]
            return Cat(e0.px, e0.sz, e0.ct)

        before = Signal(len(top(side_w)))
        after = Signal.like(before)
        u_before = Signal.like(before)
        m.d.comb += [
            before.eq(Mux(s3.u2, u_before, top(side_w))),
            after.eq(Mux(s3.bid, top(bid_post), top(ask_post))),
        ]
        with m.If(s3v & s3.u1):
            m.d.sync += u_before.eq(top(side_w))

        # per-slot flags
        invalid = Signal(S)
        stale = Signal(S)
        inv_old = invalid.bit_select(s3.slot, 1)
        inv_new = Signal()
        m.d.comb += inv_new.eq(inv_old | (s3.touch & (s3.mark_invalid | bad)))
        emit = Signal()
        m.d.comb += emit.eq(s3v & s3.touch & ~s3.u1 & ((before != after) | (inv_new & ~inv_old)))
        t3 = Signal(_TAG)
        m.d.comb += t3.eq(s3.tag)
        with m.If(s3v & s3.touch & inv_new):
            m.d.sync += invalid.bit_select(s3.slot, 1).eq(1)
        with m.If(s3v & t3.gap):
            m.d.sync += stale.eq(~0)
        with m.If(is_clr):
            m.d.sync += [
                invalid.bit_select(s3.slot, 1).eq(0),
                stale.bit_select(s3.slot, 1).eq(0),
            ]

        # -- output record ---------------------------------------------------------------------
        out = Signal(self.bbo_layout)
        m.d.comb += [
            out.locate.eq(loc_rd.data),
            out.timestamp.eq(t3.timestamp),
            out.seq.eq(t3.seq),
            out.msg_type.eq(t3.msg_type),
            out.bid_px.eq(bid_post[0].px),
            out.bid_sz.eq(bid_post[0].sz),
            out.bid_ct.eq(bid_post[0].ct),
            out.ask_px.eq(ask_post[0].px),
            out.ask_sz.eq(ask_post[0].sz),
            out.ask_ct.eq(ask_post[0].ct),
            out.valid.eq(~inv_new),
            out.stale.eq(stale.bit_select(s3.slot, 1) | t3.gap),
        ]
        for i in range(N):
            for dst, src in ((out.bids[i], bid_post[i]), (out.asks[i], ask_post[i])):
                m.d.comb += [dst.px.eq(src.px), dst.sz.eq(src.sz), dst.ct.eq(src.ct)]
        m.d.comb += [
            fifo.w_data.eq(out.as_value()),
            fifo.w_en.eq(emit),
            self.o_stream.payload.eq(fifo.r_data),
            self.o_stream.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o_stream.ready),
        ]

        # -- counters and events -----------------------------------------------------------------
        c, st = self.counters, self.stats
        op = ot.o.payload
        ov = ot.o.valid
        acc = self.i_stream.valid & self.i_stream.ready
        lvl_ovf = s3v & s3.touch & (lvl_full | sz_ovf)
        for sig, cond in (
            (c.records, acc),
            (c.ignored, ov & op.ev_ignored),
            (c.unknown_ref, ov & op.ev_unknown),
            (c.duplicate_add, ov & op.ev_dup),
            (c.table_full, ov & op.ev_full),
            (c.level_overflow, lvl_ovf),
            (c.bbo_updates, emit),
            (st.stall_cycles, self.i_stream.valid & ~self.i_stream.ready),
            (st.gaps, acc & rec.gap),
            (st.oversize, ov & op.ev_oversize),
        ):
            with m.If(cond):
                m.d.sync += sig.eq(sig + 1)
        m.d.comb += [
            self.ev_table_full.eq(ov & op.ev_full),
            self.ev_level_overflow.eq(lvl_ovf),
        ]
        return m

