"""Multi-symbol deep price-level book: decoded ITCH records in, BBO updates out.

Pipeline (see docs/book.md for the figures and the limits)::

    C0  issue      accept a record (or split a U into U1/U2, or inject a slot clear, or take
                   a host injection: a seeded add or the commit of a re-seed);
                   subscription lookup (locate -> slot, sync memory) and order-table bucket
                   read (hash of the reference) start in parallel
    T1-T3 order tbl :class:`hw.order_table.OrderTable`'s C1 way match, C2 insert/update/
                   remove (forwarding the two ops ahead on the same bucket), C3 write back
                   with the level op registered (3 cycles after C0); beside them the tick
                   divide of the record's price (the slot's tick code is read in C1), so the
                   level op carries the ladder's index: an add's from the divide, a reduce's
                   from its order's entry
    Q   op queue   level ops that touch a subscribed book (and clears, gap markers) wait in
                   a FIFO; C0 accepts a record only while the FIFO has room for every op in
                   flight (``level + 5 <= fifo_depth``), so the order table never stalls; with
                   ``lanes > 1`` an op that meets an empty queue is dispatched from the order
                   table's output in the same cycle (fall-through: no queue cycle)
    L   ladder     :class:`hw.ladder.Ladder` (price-indexed circular ladder per (slot, side),
                   occupancy bitmap, top-K cache, refill): one record per level op with the
                   exact top ``depth_n`` of both sides after the op; it may hold ``ready``
                   low and take any number of cycles (only the stream handshakes are used)
    P0  post in    in op order (a second FIFO holds every dispatched op's message data):
                   the FIFO's head, its slot's last ladder record and the BBO and validity
                   before its event (a ``U`` is one event: before its RED) are registered
    P   post       compare them with after the event (the ladder's record; a ``U``: after its
                   ADD) in 8-bit pieces, registered into Q with the record
    Q   out        combine the pieces: a record is emitted when they differ; it leaves at
                   once when the output FIFO is empty and ``o_stream.ready`` is high, else
                   it goes into the FIFO (with its emit bit; entries without one are dropped
                   at the FIFO's head). Q takes the cycle the output FIFO took before: the
                   compare never reaches the FIFO's write enable or level counter

Each (slot, side) keeps every price level within ``levels`` ticks (the ladder window) of its
touch exactly; a level beyond it is counted (far orders) and makes the book *not valid* only
while it would show in the top ``depth_n`` (``far_visible``). A price off the slot's tick
grid, an aggregate size that does not fit ``size_width`` bits, a missing level, or an order
the order table could not store mark the slot's book *not valid* until the host clears the
slot: a BBO is never silently wrong. The host re-seeds a slot through ``inj`` (docs/book.md,
"Host injection"): after a clear, the symbol's live orders as adds that emit no record, then a
commit that emits one record of the rebuilt book, flagged ``seeded`` and ``recovered``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from host.feed.record_map import META_FIELDS, RECORD_WIDTHS
from hw.arith import mux_tree, piece_eq
from hw.book_layouts import bbo_layout
from hw.ladder import LadderOp
from hw.lanes import LadderLanes
from hw.layouts import ItchRecord
from hw.order_table import LevelOpKind, OrderTable, OtOp, fold_key, sub_info_layout
from hw.regs import BOOK_COUNTERS

__all__ = ["Book", "BOOK_STATS", "COUNTER_WIDTH", "INJECT_LAYOUT"]

COUNTER_WIDTH = 48
"""Width of every counter (the register block zero-extends to 64)."""

BOOK_STATS: tuple[tuple[str, str], ...] = (
    ("stall_cycles", "cycles with a record offered and not accepted (U second half, clears, "
                     "op queue credit: the ladder is busy)"),
    ("gaps", "records received with the gap flag"),
    ("oversize", "E/C/X taking more shares than the order has (the order is removed)"),
    ("far_ops", "level ops applied to a side's far levels (beyond the ladder window: the far "
                "cache or the far counts)"),
    ("evicted", "represented levels moved to the far levels by a window slide"),
    ("refill_levels", "levels copied from the ladder into a top-K cache"),
    ("ladder_busy", "cycles with a level op offered to the ladder and not accepted"),
)
"""Extra counters of :class:`Book` (the ``stats`` port), not in the register table."""

_TAG = data.StructLayout(
    {
        "locate": unsigned(RECORD_WIDTHS["stock_locate"]),
        "timestamp": unsigned(RECORD_WIDTHS["timestamp"]),
        "seq": unsigned(META_FIELDS["seq"]),
        "rx_ns": unsigned(META_FIELDS["rx_ns"]),  # the frame's hardware timestamp
        "msg_type": unsigned(RECORD_WIDTHS["msg_type"]),
        "gap": unsigned(1),
        "seed": unsigned(1),  # injected by the host (``inj``): no record of its own
        "commit": unsigned(1),  # the end of a re-seed: always a record, marked recovered
    }
)

INJECT_LAYOUT = data.StructLayout(
    {
        "locate": unsigned(RECORD_WIDTHS["stock_locate"]),
        "bid": unsigned(1),
        "ref": unsigned(RECORD_WIDTHS["order_ref"]),
        "shares": unsigned(RECORD_WIDTHS["shares"]),
        "px": unsigned(RECORD_WIDTHS["price"]),
        "commit": unsigned(1),
    }
)
"""One host injection (:attr:`Book.inj`): an add order of ``locate`` (``commit=0``), or the
commit that ends a re-seed of ``locate`` (``commit=1``; ``ref`` is then the sequence number
the commit record carries)."""


def _int_param(name, v, lo):
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, not {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, not {v}")


class Book(wiring.Component):
    """Order table + deep price ladders of ``slots`` subscribed symbols.

    Parameters
    ----------
    slots : int
        Symbols tracked at once (subscription table entries point at a slot).
    capacity : int
        Order table entries (power of two), shared by all slots.
    ways : int
        Order table ways per bucket.
    levels : int
        Ladder window per (slot, side), in ticks (power of two, >= 64; U250: 4096): every
        level within ``levels`` ticks of the side's touch is held exactly
        (:class:`hw.ladder.Ladder` ``depth``).
    depth_n : int
        Levels per side reported in every BBO record (``<= k``).
    k : int
        Top-K cache entries per (slot, side) in the ladder.
    size_width : int
        Bits of an aggregate level size (the record zero-extends to 64).
    fifo_depth : int
        Output FIFO, op queue and message-data FIFO entries (>= 8).
    epoch_bits : int
        Per-slot epoch width (order table, see :mod:`hw.order_table`): one clear in
        ``2**epoch_bits`` of a slot scrubs the order table first (``capacity // ways``
        cycles).
    far_width : int
        Bits of a side's far-order count in the ladder.
    lanes : int
        Ladders side by side (:class:`hw.lanes.LadderLanes`, a power of two ``<= slots``):
        slot ``s`` is on lane ``s mod lanes``; ops of different lanes run in parallel and
        their records come back in op order. 1 = one ladder, no lane FIFOs.
    lane_fifo : int
        Depth of each lane's input and output FIFO (``lanes > 1``).
    depth_records : bool
        False (default): a record when the best level of a side or the validity changes.
        True: also when any of the top ``depth_n`` levels changes; such a record (best levels
        and validity unchanged) has ``depth_only`` set, so the records without it are exactly
        those of ``depth_records=False`` (:mod:`hw.bbo_record`, ``FLAG_DEPTH_ONLY``).

    Attributes
    ----------
    i_stream : In(stream.Signature(ItchRecord))
        Decoded records.
    inj : In(stream.Signature(INJECT_LAYOUT))
        Host injections, taken ahead of ``i_stream`` (but never between the two halves of a
        ``U``) when the op queue has room: ``commit = 0`` adds order ``ref`` (``shares`` at
        ``px`` on the ``bid`` side) to the book of ``locate`` like an ``A`` record, except
        that it emits no BBO record; ``commit = 1`` emits one record of the locate's book as
        it stands (``seeded = recovered = 1``, ``seq = ref``, ``msg_type = timestamp = 0``)
        and marks every later record of the slot ``recovered`` until its next clear.
        Injections for an unsubscribed locate are ignored (counted).
    o_stream : Out(stream.Signature(bbo_layout(depth_n)))
        One record each time a message changes a subscribed symbol's best bid or offer (price,
        size or order count) or the validity of its book; top ``depth_n`` levels of both sides
        in every record.
    sub_locate, sub_slot, sub_valid, sub_tick, sub_write : In
        Subscription write port: on ``sub_write``, locate ``sub_locate`` maps to slot
        ``sub_slot`` (``sub_valid=1``, the slot's tick becomes ``hw.ladder.TICKS[sub_tick]``)
        or is unsubscribed (``sub_valid=0``). Takes effect for records accepted from the next
        cycle on; change a slot's tick only while its book is empty (the driver clears the
        slot after a subscription). ``sub_busy`` is always 0.
    clear_slot, clear_stale_slot, clear_stale_all : In
        One-cycle pulses: empty the book of ``clear_slot`` / of every slot, free its orders,
        clear its stale and not-valid flags. ``clear_busy`` is high while clears are pending
        (one slot per cycle; a clear of every slot takes ``slots`` cycles), and for the
        order-table scrub of a clear that wraps a slot's epoch: ``capacity // ways`` more
        cycles, once per ``2**epoch_bits`` clears of that slot (in a clear of every slot, one
        scrub covers every slot that wraps in it). A clear of every slot also runs after reset;
        resets and clears of every slot count as clears of each slot. Exact after any number
        of clears and resets. A clear is ordered with the records: records accepted before it
        are processed on the old book.
    counters : Out(StructLayout)
        :data:`hw.regs.BOOK_COUNTERS`, ``COUNTER_WIDTH`` bits each; an event is counted one
        cycle after it (registered), the ladder's counters two cycles after the ladder's.
    stats : Out(StructLayout)
        :data:`BOOK_STATS`.
    ev_table_full, ev_level_overflow : Out(1)
        One-cycle event pulses (for the sticky status bits).

    Latency and throughput: the order table takes one record per clock (a ``U`` two); the
    ladder is the bottleneck (3 cycles or more per level op per lane: with ``lanes`` ladders
    the book is bounded by its busiest lane, see docs/book.md for the measured figures).
    With nothing queued a record is valid 12 cycles after its message (``U`` 14): 3 in the
    order table (the tick divide beside it), the ladder's 7 (one-stage front end), the lanes'
    output register, stage Q (in the output FIFO's place); with ``lanes = 1`` also 12 (``U``
    14): the op queue's cycle instead of the lanes' output register (docs/book.md, "Where the
    cycles go").
    Records are accepted only while the op queue has room for every op in flight
    (``level + 5 <= fifo_depth``: three in the order table, this one and a ``U``'s second
    half); a full queue (busy ladder) or a full output FIFO
    backpressures ``i_stream``, a clear waits for room in the op queue. The book never
    relies on the ladder's latency: ops and their message data are matched in order through
    FIFOs, so a ladder that backpressures for any number of cycles and has a variable
    latency gives the same records.
    """

    def __init__(self, *, slots: int = 64, capacity: int = 65536, ways: int = 8,
                 levels: int = 4096, depth_n: int = 5, k: int = 16, size_width: int = 48,
                 fifo_depth: int = 16, epoch_bits: int = 8, far_width: int = 24,
                 lanes: int = 1, lane_fifo: int = 4, depth_records: bool = False):
        _int_param("slots", slots, 1)
        if not isinstance(depth_records, bool):
            raise TypeError(f"depth_records must be a bool, not {depth_records!r}")
        self.depth_records = depth_records
        _int_param("levels", levels, 64)
        _int_param("depth_n", depth_n, 1)
        _int_param("k", k, 2)
        _int_param("size_width", size_width, RECORD_WIDTHS["shares"])
        _int_param("fifo_depth", fifo_depth, 8)
        if levels & (levels - 1):
            raise ValueError(f"levels must be a power of two, not {levels}")
        if depth_n > k:
            raise ValueError(f"depth_n ({depth_n}) must be <= k ({k})")
        if size_width > 64:
            raise ValueError(f"size_width must be <= 64, not {size_width}")
        self.ot = OrderTable(slots=slots, capacity=capacity, ways=ways, epoch_bits=epoch_bits,
                             tag_width=_TAG.size, ext_bucket=True, divide=True)
        self.slots = slots
        self.slot_bits = max(1, (slots - 1).bit_length())
        self.capacity = capacity
        self.ways = ways
        self.levels = levels
        self.depth_n = depth_n
        self.k = k
        self.size_width = size_width
        self.count_width = capacity.bit_length()  # a level never holds more orders than this
        self.fifo_depth = fifo_depth
        self.bbo_layout = bbo_layout(depth_n)
        self.lanes = lanes
        self.ladder = LadderLanes(lanes=lanes, lane_fifo=lane_fifo, slots=slots, depth=levels,
                                  k=k, n=depth_n, size_width=size_width,
                                  count_width=max(2, self.count_width), far_width=far_width,
                                  tag_width=1, divided=True)
        lv = data.StructLayout({
            "px": unsigned(RECORD_WIDTHS["price"]),
            "sz": unsigned(size_width),
            "ct": unsigned(max(2, self.count_width)),
        })
        # what the post stage remembers of a slot: the ladder's last record
        self.top_layout = data.StructLayout({
            "lvalid": unsigned(1),
            "bids": data.ArrayLayout(lv, depth_n),
            "asks": data.ArrayLayout(lv, depth_n),
            "lbad": unsigned(1),  # the ladder's sticky cause (off grid, size, missing)
        })
        sb = self.slot_bits
        super().__init__(
            {
                "i_stream": In(stream.Signature(ItchRecord)),
                "inj": In(stream.Signature(INJECT_LAYOUT)),
                "o_stream": Out(stream.Signature(self.bbo_layout)),
                "sub_locate": In(RECORD_WIDTHS["stock_locate"]),
                "sub_slot": In(sb),
                "sub_valid": In(1),
                "sub_tick": In(2),
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
        S, N = self.slots, self.depth_n
        m.submodules.ot = ot = self.ot
        m.submodules.ladder = lad = self.ladder
        # the output FIFO holds Q's entries with their emit bit (see Q below)
        m.submodules.fifo = fifo = SyncFIFO(width=self.bbo_layout.size + 1,
                                            depth=self.fifo_depth)
        # level ops waiting for the ladder, and the message data of every dispatched op
        m.submodules.opq = opq = SyncFIFO(width=ot.out_layout.size, depth=self.fifo_depth)
        meta_l = data.StructLayout({
            "lad": unsigned(1),  # the op went to the ladder: a ladder record belongs to it
            "clr": unsigned(1),
            "touch": unsigned(1),
            "u1": unsigned(1),
            "u2": unsigned(1),
            "mark_invalid": unsigned(1),
            "slot": unsigned(self.slot_bits),
            "tag": _TAG,
        })
        m.submodules.mq = mq = SyncFIFO(width=meta_l.size, depth=self.fifo_depth)

        # -- subscription: locate -> (valid, slot); slot -> locate; slot -> tick ---------------
        m.submodules.sub_mem = sub_mem = Memory(
            shape=sub_info_layout(S), depth=1 << RECORD_WIDTHS["stock_locate"], init=[])
        sub_wr = sub_mem.write_port()
        sub_rd = sub_mem.read_port()
        m.submodules.loc_mem = loc_mem = Memory(
            shape=RECORD_WIDTHS["stock_locate"], depth=S, init=[])
        loc_wr = loc_mem.write_port()
        loc_rd = loc_mem.read_port(domain="comb")
        # the slot's tick code for the order table's divide (the ladder keeps its own copy):
        # read in C1 at the subscription's slot
        m.submodules.tick_mem = tick_mem = Memory(shape=2, depth=S, init=[])
        tick_wr = tick_mem.write_port()
        tick_rd = tick_mem.read_port(domain="comb")
        m.d.comb += [
            tick_wr.en.eq(self.sub_write & self.sub_valid),
            tick_wr.addr.eq(self.sub_slot),
            tick_wr.data.eq(self.sub_tick),
            tick_rd.addr.eq(sub_rd.data.slot),
            ot.i_tick.eq(tick_rd.data),
        ]
        m.d.comb += [
            sub_wr.en.eq(self.sub_write),
            sub_wr.addr.eq(self.sub_locate),
            sub_wr.data.subscribed.eq(self.sub_valid),
            sub_wr.data.slot.eq(self.sub_slot),
            loc_wr.en.eq(self.sub_write & self.sub_valid),
            loc_wr.addr.eq(self.sub_slot),
            loc_wr.data.eq(self.sub_locate),
            ot.i_sub.eq(sub_rd.data),
            lad.tick_write.eq(self.sub_write & self.sub_valid),
            lad.tick_slot.eq(self.sub_slot),
            lad.tick_code.eq(self.sub_tick),
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
        # room in the op queue for every op in flight: three in the order table (C1, C2 and
        # its output register, C3), this one and a U's second half
        # (a compare with a constant: ``w_level + 5 <= fifo_depth`` was an adder and a compare,
        # two carry chains in front of the whole issue select). Registered, one cycle late and
        # one entry stricter (``w_level <= fifo_depth - 6`` of the cycle before): the level
        # grows by at most one per cycle, so it implies the credit of this cycle; the compare
        # is off the issue select (at 256 slots the op queue's level -> credit -> the bucket
        # select -> the order table's same-bucket flags was 10 levels)
        credit = Signal(init=1)
        m.d.sync += credit.eq(opq.w_level <= self.fifo_depth - 6)

        oi = ot.i.payload
        tag = Signal(_TAG)
        m.d.comb += [
            sub_rd.addr.eq(rec.stock_locate),
            tag.locate.eq(rec.stock_locate),
            tag.timestamp.eq(rec.timestamp),
            tag.seq.eq(rec.seq),
            tag.rx_ns.eq(rec.rx_ns),
            tag.msg_type.eq(mt),
            tag.gap.eq(rec.gap),
            oi.tag.eq(tag),
            oi.key.eq(Mux(phase, rec.new_order_ref, rec.order_ref)),
            # the order table's bucket: each key folded, then selected (the same value as
            # folding the selected key, with the select after the XOR tree)
            ot.i_bucket.eq(Mux(phase, fold_key(rec.new_order_ref, ot.bucket_bits),
                               fold_key(rec.order_ref, ot.bucket_bits))),
            oi.same_ref.eq(rec.new_order_ref == rec.order_ref),
            oi.is_del.eq(mt == ord("D")),
            oi.bid.eq(rec.side == ord("B")),
            oi.side_ok.eq((rec.side == ord("B")) | (rec.side == ord("S"))),
            oi.px.eq(rec.price),
            oi.shares.eq(rec.shares),
            # the slot of a clear (the order table reads ``slot`` only for a ``CLR``): set on
            # every branch, so that the order table's wrap check (a 256-way select by it at
            # 256 slots, on the path to ``ot.i.ready``) starts from one mux of registers
            oi.slot.eq(Mux(clr_all, clr_idx, clr_one_slot)),
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
            # a clear is a level op too (the ladder empties the slot): it needs queue room
            m.d.comb += [
                ot.i.valid.eq(credit),
                oi.op.eq(OtOp.CLR),
                oi.clr_all.eq(clr_all),
                oi.tag.eq(0),
            ]
            with m.If(ot.i.ready & credit):
                with m.If(clr_all):
                    m.d.sync += clr_idx.eq(clr_idx + 1)
                    with m.If(clr_idx == S - 1):
                        m.d.sync += clr_all.eq(0)
                with m.Else():
                    with m.If(~self.clear_stale_slot):
                        m.d.sync += clr_one.eq(0)
        with m.Elif(self.inj.valid & credit):
            # a host injection (re-seed): an add with the ``seed`` tag, or the commit
            ij = self.inj.payload
            itag = Signal(_TAG)
            m.d.comb += [
                itag.locate.eq(ij.locate),
                itag.seq.eq(Mux(ij.commit, ij.ref, 0)),
                itag.msg_type.eq(Mux(ij.commit, 0, ord("A"))),
                itag.seed.eq(1),
                itag.commit.eq(ij.commit),
                sub_rd.addr.eq(ij.locate),
                ot.i.valid.eq(1),
                self.inj.ready.eq(1),
                oi.op.eq(Mux(ij.commit, OtOp.MARK, OtOp.ADD)),
                oi.tag.eq(itag),
                oi.key.eq(ij.ref),
                ot.i_bucket.eq(fold_key(ij.ref, ot.bucket_bits)),
                oi.same_ref.eq(0),
                oi.is_del.eq(0),
                oi.bid.eq(ij.bid),
                oi.side_ok.eq(1),
                oi.px.eq(ij.px),
                oi.shares.eq(ij.shares),
            ]
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

        # -- Q: op queue (every op that changes a subscribed book, clears, gap markers) -------
        # With ``lanes > 1``, an op that meets an empty queue is dispatched straight from the
        # order table's output register in the same cycle (fall-through, no queue cycle); it
        # is written into the queue only when the dispatch cannot take it. The queue's head is
        # older than the order table's output, so the bypass is used only while it is empty.
        # With ``lanes = 1`` (the simulated card, hw.synth's BOOK_SMALL) the queue does not fall
        # through: that build is left exactly as it was (its post-stage compare sits at the
        # synthesis budget's depth and ABC maps it 1-2 levels deeper when the netlist changes
        # around it; docs/book.md, "Where the cycles go").
        o = ot.o.payload
        o_tag = Signal(_TAG)
        if self.lanes > 1:
            go = Signal()  # the head op is dispatched this cycle
            o_keep = Signal()  # the order table's output goes to the ladder / post stage
            m.d.comb += [
                o_tag.eq(o.tag),
                o_keep.eq(ot.o.valid & (o.touch | (o.op == LevelOpKind.CLR) | o_tag.gap)),
                opq.w_data.eq(o.as_value()),
                # empty queue: the head is the order table's output
                opq.w_en.eq(o_keep & ~(~opq.r_rdy & go)),
            ]
        else:
            go = None
            m.d.comb += [
                o_tag.eq(o.tag),
                opq.w_data.eq(o.as_value()),
                opq.w_en.eq(ot.o.valid & (o.touch | (o.op == LevelOpKind.CLR) | o_tag.gap)),
            ]

        # -- L: dispatch to the ladder; the op's message data goes to ``mq`` in order ---------
        h = Signal(ot.out_layout)
        if self.lanes > 1:
            h_v = Signal()  # there is a head op
            m.d.comb += [
                h.eq(Mux(opq.r_rdy, opq.r_data, o.as_value())),
                h_v.eq(opq.r_rdy | o_keep),
            ]
        else:
            m.d.comb += h.eq(opq.r_data)
            h_v = opq.r_rdy
        h_clr = h.op == LevelOpKind.CLR
        h_lad = Signal()  # a level op for the ladder (a touched NONE only needs a record)
        m.d.comb += h_lad.eq(
            (((h.op == LevelOpKind.ADD) | (h.op == LevelOpKind.RED)) & h.touch) | h_clr)
        li = lad.i_stream.payload
        m.d.comb += [
            li.kind.eq(Mux(h_clr, LadderOp.CLR,
                           Mux(h.op == LevelOpKind.ADD, LadderOp.ADD, LadderOp.RED))),
            li.slot.eq(h.slot),
            li.bid.eq(h.bid),
            li.px.eq(h.px),
            li.idx.eq(h.idx),
            li.offg.eq(h.offg),
            li.q.eq(h.q),
            li.remove.eq(h.remove),
            li.tag.eq(0),
            lad.i_stream.valid.eq(h_v & mq.w_rdy & h_lad),
        ]
        if go is None:
            go = Signal()
        m.d.comb += go.eq(h_v & mq.w_rdy & (~h_lad | lad.i_stream.ready))
        mw = Signal(meta_l)
        m.d.comb += [
            mw.lad.eq(h_lad),
            mw.clr.eq(h_clr),
            mw.touch.eq(h.touch),
            mw.u1.eq(h.u1),
            mw.u2.eq(h.u2),
            mw.mark_invalid.eq(h.mark_invalid),
            mw.slot.eq(h.slot),
            mw.tag.eq(h.tag),
            mq.w_data.eq(mw.as_value()),
            mq.w_en.eq(go),
            opq.r_en.eq(go & opq.r_rdy if self.lanes > 1 else go),
        ]

        # -- P0: the post stage's input register: the head of ``mq`` and its slot's last ladder
        # record (read from ``top_mem`` here, forwarded from P's write of the same cycle), so
        # that P compares two registers (the ladder's output register and ``cur``) instead of
        # FIFO read -> memory read -> compare. No latency for a ladder op: its entry is in P0
        # long before its ladder record (>= 8 cycles, hw/ladder.py); one more cycle only for
        # an op without a ladder record (a touched NONE, a gap marker) when ``mq`` was empty.
        Mn = Signal(meta_l)
        m.d.comb += Mn.eq(mq.r_data)
        M = Signal(meta_l)  # the entry in P
        pv = Signal()  # P holds an entry
        lo_ = lad.o_stream.payload
        lad_top = Signal(self.top_layout)
        m.d.comb += lad_top.eq(Cat(lo_.valid, lo_.bids.as_value(), lo_.asks.as_value(), lo_.bad))
        proc = Signal()
        load = Signal()
        q_valid = Signal()  # Q (below) holds an entry
        q_free = Signal()  # Q can take P's entry: it is empty or its entry leaves
        m.d.comb += [
            proc.eq(pv & (~M.lad | lad.o_stream.valid) & q_free),
            lad.o_stream.ready.eq(pv & M.lad & q_free),
            load.eq(mq.r_rdy & (~pv | proc)),
            mq.r_en.eq(load),
        ]
        with m.If(load):
            m.d.sync += [M.eq(Mn), pv.eq(1)]
        with m.Elif(proc):
            m.d.sync += pv.eq(0)
        # the ladder's last record of every slot: the "before" of the next event, and the
        # levels of a record that has no ladder op (a table-full add, a U2 dropped add)
        m.submodules.top_mem = top_mem = Memory(shape=self.top_layout, depth=S, init=[])
        top_wr = top_mem.write_port()
        top_rd = top_mem.read_port(domain="comb")
        cur = Signal(self.top_layout)  # top_mem[M.slot] before P's event (registered)
        aft = Signal(self.top_layout)
        m.d.comb += aft.eq(Mux(M.lad, lad_top, cur))
        m.d.comb += [
            top_rd.addr.eq(Mn.slot),
            top_wr.addr.eq(M.slot),
            top_wr.data.eq(lad_top),
            top_wr.en.eq(proc & M.lad),
            loc_rd.addr.eq(M.slot),
        ]

        # per-slot flags: not valid from the order table (table full: sticky), stale; read
        # through :func:`hw.arith.mux_tree` (a ``bit_select`` by a signal is a MUXF chain
        # at 256 slots)
        invalid = Signal(S)
        stale = Signal(S)
        recovered = Signal(S)  # re-seeded by the host since the slot's last clear
        inv_r = Signal()  # invalid[M.slot] (registered in P0, forwarded)
        inv_old = inv_r
        inv_new = Signal()
        m.d.comb += inv_new.eq(inv_old | (M.touch & M.mark_invalid))

        def bbo_of(t, v):
            return Cat(t.bids[0].as_value(), t.asks[0].as_value(), v)

        # levels 2..depth_n of both sides (depth_records only): compared apart from the BBO so
        # that a record emitted for them alone is marked depth_only
        deep_n = N if self.depth_records else 1

        def deep_of(t):
            return Cat(*(t.bids[i].as_value() for i in range(1, deep_n)),
                       *(t.asks[i].as_value() for i in range(1, deep_n)))

        # the "before" of P's event is registered in P0 (with ``cur``): the BBO (and, with
        # depth_records, the deeper levels) and validity of the slot before the event, or for
        # a U2 those before its U1; the values P writes this cycle are forwarded
        fwd = Signal()  # P's event of this cycle is on the slot being loaded
        m.d.comb += fwd.eq(proc & (M.slot == Mn.slot))
        inv_next = Signal()
        inv_sel = mux_tree(m, invalid, Mn.slot, "inv_sel")
        m.d.comb += inv_next.eq(Mux(fwd, ~M.clr & inv_new, inv_sel))
        with m.If(load):
            m.d.sync += inv_r.eq(inv_next)
        cur_next = Signal(self.top_layout)
        m.d.comb += cur_next.eq(Mux(fwd & M.lad, lad_top, top_rd.data))
        v_before = ~inv_old & cur.lvalid
        v_after = Signal()
        m.d.comb += v_after.eq(~inv_new & aft.lvalid)
        before = Signal(len(bbo_of(cur, v_before)))  # registered
        after = Signal.like(before)
        u_before = Signal.like(before)  # a U compares before its RED with after its ADD
        u_before_next = Signal.like(before)
        m.d.comb += [
            u_before_next.eq(Mux(proc & M.u1, bbo_of(cur, v_before), u_before)),
            after.eq(bbo_of(aft, v_after)),
        ]
        m.d.sync += u_before.eq(u_before_next)
        with m.If(load):
            m.d.sync += [
                cur.eq(cur_next),
                before.eq(Mux(Mn.u2, u_before_next,
                              bbo_of(cur_next, ~inv_next & cur_next.lvalid))),
            ]
        # the compare is split over P and Q: P registers the equality of 8-bit pieces, Q
        # combines them (a 200-bit compare is 12 logic levels as ABC maps it in one cycle)
        bbo_eq_p = Signal((len(before) + 7) // 8, name="bbo_eq")
        m.d.comb += bbo_eq_p.eq(piece_eq(before, after, 8))
        bbo_changed = Signal()
        deep_changed = Signal()
        if deep_n > 1:
            d_before = Signal(len(deep_of(cur)))  # registered
            d_after = Signal.like(d_before)
            d_u_before = Signal.like(d_before)
            d_u_before_next = Signal.like(d_before)
            m.d.comb += [
                d_u_before_next.eq(Mux(proc & M.u1, deep_of(cur), d_u_before)),
                d_after.eq(deep_of(aft)),
            ]
            m.d.sync += d_u_before.eq(d_u_before_next)
            with m.If(load):
                m.d.sync += d_before.eq(Mux(Mn.u2, d_u_before_next, deep_of(cur_next)))
            deep_eq_p = Signal((len(d_before) + 7) // 8, name="deep_eq")
            m.d.comb += deep_eq_p.eq(piece_eq(d_before, d_after, 8))
        with m.If(proc & M.touch & inv_new):
            m.d.sync += invalid.bit_select(M.slot, 1).eq(1)
        with m.If(proc & M.tag.gap):
            m.d.sync += stale.eq(~0)
        with m.If(proc & M.clr):
            m.d.sync += [
                invalid.bit_select(M.slot, 1).eq(0),
                stale.bit_select(M.slot, 1).eq(0),
                recovered.bit_select(M.slot, 1).eq(0),
            ]
        with m.If(proc & M.tag.commit):
            m.d.sync += recovered.bit_select(M.slot, 1).eq(1)

        # -- output record ---------------------------------------------------------------------
        out = Signal(self.bbo_layout)
        m.d.comb += [
            out.locate.eq(loc_rd.data),
            out.timestamp.eq(M.tag.timestamp),
            out.seq.eq(M.tag.seq),
            out.rx_ns.eq(M.tag.rx_ns),
            out.msg_type.eq(M.tag.msg_type),
            out.bid_px.eq(aft.bids[0].px),
            out.bid_sz.eq(aft.bids[0].sz),
            out.bid_ct.eq(aft.bids[0].ct),
            out.ask_px.eq(aft.asks[0].px),
            out.ask_sz.eq(aft.asks[0].sz),
            out.ask_ct.eq(aft.asks[0].ct),
            out.valid.eq(v_after),
            out.stale.eq(mux_tree(m, stale, M.slot, "stale_sel") | M.tag.gap),
            out.recovered.eq(mux_tree(m, recovered, M.slot, "rec_sel") | M.tag.commit),
            out.seeded.eq(M.tag.commit),
            out.bad.eq(inv_new | aft.lbad),
            out.slot.eq(M.slot),
        ]
        for i in range(N):
            for dst, src in ((out.bids[i], aft.bids[i]), (out.asks[i], aft.asks[i])):
                m.d.comb += [dst.px.eq(src.px), dst.sz.eq(src.sz), dst.ct.eq(src.ct)]

        # -- Q: the processed entry, registered with the piece equalities of its compare. Q
        # decides whether it emits (``emit``, from registers) and goes straight out when the
        # output FIFO is empty, else into the FIFO, which keeps the emit bit and drops entries
        # without one at its head: the cycle Q adds is the cycle the FIFO took before, and no
        # compare reaches the FIFO's write enable or level counter.
        q_out = Signal(self.bbo_layout)
        q_eq = Signal(len(bbo_eq_p))
        q_deq = Signal(len(deep_eq_p)) if deep_n > 1 else None
        q_flags = Signal(data.StructLayout({"touch": 1, "u1": 1, "seed": 1, "commit": 1}))
        m.d.comb += q_free.eq(~q_valid | fifo.w_rdy)
        with m.If(q_free):
            m.d.sync += q_valid.eq(proc)
        with m.If(proc):
            m.d.sync += [
                q_out.eq(out), q_eq.eq(bbo_eq_p),
                q_flags.eq(Cat(M.touch, M.u1, M.tag.seed, M.tag.commit)),
            ]
            if q_deq is not None:
                m.d.sync += q_deq.eq(deep_eq_p)
        m.d.comb += bbo_changed.eq(~q_eq.all())
        if q_deq is not None:
            m.d.comb += deep_changed.eq(~q_deq.all())
        emit = Signal()
        # a seeded add emits nothing; the commit of a re-seed always emits (the clean record)
        m.d.comb += emit.eq(q_valid & q_flags.touch & ~q_flags.u1
                            & (((bbo_changed | deep_changed) & ~q_flags.seed) | q_flags.commit))
        q_rec = Signal(self.bbo_layout)
        m.d.comb += [q_rec.eq(q_out),
                     q_rec.depth_only.eq(deep_changed & ~bbo_changed & ~q_flags.commit)]
        head_emit = fifo.r_data[-1]
        direct = Signal()  # Q's entry leaves this cycle without the FIFO
        m.d.comb += [
            direct.eq(~fifo.r_rdy & self.o_stream.ready),
            fifo.w_data.eq(Cat(q_rec.as_value(), emit)),
            fifo.w_en.eq(q_valid & ~direct),
            # an entry without a record leaves the FIFO in the cycle it reaches the head
            fifo.r_en.eq(self.o_stream.ready | ~head_emit),
        ]
        with m.If(fifo.r_rdy):
            m.d.comb += [self.o_stream.payload.eq(fifo.r_data[:-1]),
                         self.o_stream.valid.eq(head_emit)]
        with m.Else():
            m.d.comb += [self.o_stream.payload.eq(q_rec), self.o_stream.valid.eq(emit)]

        # -- counters and events -----------------------------------------------------------------
        c, st = self.counters, self.stats
        op = ot.o.payload
        ov = ot.o.valid
        acc = self.i_stream.valid & self.i_stream.ready
        lvl_bad = Signal()  # a level op whose ladder record is not valid
        m.d.comb += lvl_bad.eq(proc & M.lad & M.touch & ~lo_.valid)
        for i, (sig, cond) in enumerate((
            (c.records, acc),
            (c.injected, self.inj.valid & self.inj.ready),
            (c.ignored, ov & op.ev_ignored),
            (c.unknown_ref, ov & op.ev_unknown),
            (c.duplicate_add, ov & op.ev_dup),
            (c.table_full, ov & op.ev_full),
            (c.level_overflow, lvl_bad),
            (c.bbo_updates, emit & (direct | fifo.w_rdy)),  # once, as Q's entry leaves
            (st.stall_cycles, self.i_stream.valid & ~self.i_stream.ready),
            (st.gaps, acc & rec.gap),
            (st.oversize, ov & op.ev_oversize),
            (st.ladder_busy, lad.i_stream.valid & ~lad.i_stream.ready),
        )):
            # the event is registered first and counted one cycle later: the event logic and
            # the 48-bit increment are not one path
            ev = Signal(name=f"count_ev{i}")
            m.d.sync += ev.eq(cond)
            with m.If(ev):
                m.d.sync += sig.eq(sig + 1)
        # the ladder's per-cause counters (32 bits) accumulate into 48-bit ones: add the
        # difference since the last cycle (exact for any step below 2**32), registered
        lc = lad.counters
        for dst, name in ((c.far_visible, "far_visible"), (c.off_grid, "off_grid"),
                          (c.size_overflow, "size_overflow"), (c.missing_level, "missing"),
                          (st.far_ops, "far_ops"), (st.evicted, "evicted"),
                          (st.refill_levels, "refill_levels")):
            src = getattr(lc, name)
            prev = Signal.like(src, name=f"prev_{name}")
            diff = Signal.like(src, name=f"diff_{name}")
            m.d.sync += [prev.eq(src), diff.eq((src - prev)[: len(src)]), dst.eq(dst + diff)]
        m.d.comb += [
            self.ev_table_full.eq(ov & op.ev_full),
            self.ev_level_overflow.eq(lvl_bad),
        ]
        return m
