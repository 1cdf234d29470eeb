"""Ladder lanes: ``lanes`` price ladders side by side, one op stream in, records out in op order.

One :class:`hw.ladder.Ladder` applies one level op at a time (about 5 cycles per op on a
represented level, docs/ladder.md), which caps the whole book at about 0.2 messages per cycle.
Ops of different symbols are independent, so :class:`LadderLanes` splits the slots over
``lanes`` ladders: slot ``s`` lives on lane ``s mod lanes`` as that lane's local slot
``s // lanes``. The op stream is dealt to per-lane input FIFOs, every lane runs at its own
pace, and the records are gathered back **in the order the ops came in** through an order FIFO
of lane numbers, so the block has exactly the ports and the record order of one
:class:`~hw.ladder.Ladder` and :class:`hw.book.Book` needs no change beyond the instance.

Why by slot and not by side or by op: a record carries both sides of its slot and every op of
a slot depends on the previous op of that slot (its side state, its cache); ops of two slots
share nothing. The cost is ``lanes`` copies of the controller logic (the ladder memory is
split, not copied: each lane holds ``slots / lanes`` slots). What it buys is bounded by the
busiest lane: a symbol carrying a share ``f`` of the ops cannot go faster than its lane,
about ``0.2 / f`` ops per cycle (docs/book.md, "Lanes").

Latency, throughput, backpressure
---------------------------------
- ``lanes = 1``: the ladder itself, connected straight through (no FIFO, no extra cycle).
- ``lanes > 1``: both lane FIFOs fall through when empty: an op that finds its lane's input
  FIFO empty goes straight into the ladder when the ladder takes it (else into the FIFO), and
  a record that finds its lane's output FIFO empty and is the next in op order goes straight
  into the output register (else into the FIFO). With nothing else in flight an op therefore
  costs the ladder's latency + 1 cycle (the output register); each FIFO that holds an entry
  adds its cycle (until 2026-12-06 it was always + 3). Throughput: one op per cycle in and
  one record per cycle out, as long as the op's
  lane has room (``i_stream.ready`` is low while the op at the input finds its lane's input
  FIFO or the order FIFO full: head-of-line, the ops stay in order) and the record at the head
  of the order is ready (a busy lane holds back the records of the other lanes behind it).
- The output is a register stage: ``o_stream.valid`` and the payload come from flops, and
  ``o_stream.ready`` only gates the pops (no combinational path from the input to the output).
- Counters: each is the sum of the lanes' counters, through a registered adder tree
  (``ceil(log2(lanes))`` cycles late; exact once the block is idle).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.ladder import COUNTER_WIDTH, LADDER_COUNTERS, Ladder, ladder_op_layout, ladder_out_layout

__all__ = ["LadderLanes"]


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


class LadderLanes(wiring.Component):
    """``lanes`` :class:`~hw.ladder.Ladder` instances behind one op stream, records in op order.

    Parameters
    ----------
    lanes : int
        Number of ladders (a power of two, ``<= slots``). Slot ``s`` is on lane
        ``s mod lanes``.
    slots, depth, k, n, size_width, count_width, far_width, tag_width
        As :class:`hw.ladder.Ladder` (``slots`` in all; each lane holds
        ``ceil(slots / lanes)``).
    lane_fifo : int
        Depth of each lane's input and output FIFO (>= 2). Deeper FIFOs absorb longer bursts
        on one lane before the input stalls.
    divided : bool
        The ops carry the tick-divided index (:class:`hw.ladder.Ladder` ``divided``).

    Attributes
    ----------
    i_stream, o_stream, tick_slot, tick_code, tick_write, counters
        Exactly as :class:`~hw.ladder.Ladder` (global slot numbers; ``counters`` summed over
        the lanes).
    """

    def __init__(self, *, lanes: int = 1, slots: int = 4, depth: int = 4096, k: int = 16,
                 n: int = 5, size_width: int = 48, count_width: int = 21, far_width: int = 24,
                 tag_width: int = 16, lane_fifo: int = 4, divided: bool = False):
        for name, v, lo in (("lanes", lanes, 1), ("slots", slots, 1),
                            ("lane_fifo", lane_fifo, 2)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, not {v!r}")
            if v < lo:
                raise ValueError(f"{name} must be >= {lo}, not {v}")
        if lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two, not {lanes}")
        if lanes > slots:
            raise ValueError(f"lanes ({lanes}) must be <= slots ({slots})")
        self.lanes, self.slots, self.lane_fifo = lanes, slots, lane_fifo
        self.depth, self.k, self.n = depth, k, n
        self.size_width, self.count_width = size_width, count_width
        self.lane_bits = lanes.bit_length() - 1
        self.local_slots = -(-slots // lanes)
        kw = dict(depth=depth, k=k, n=n, size_width=size_width, count_width=count_width,
                  far_width=far_width, tag_width=tag_width, divided=divided)
        self.divided = divided
        self.ladders = [Ladder(slots=self.local_slots, **kw) for _ in range(lanes)]
        self.op_layout = ladder_op_layout(slots, tag_width, divided)
        self.out_layout = ladder_out_layout(slots, n, tag_width, size_width, count_width)
        self.slot_bits = _bits(slots)
        super().__init__({
            "i_stream": In(stream.Signature(self.op_layout)),
            "o_stream": Out(stream.Signature(self.out_layout)),
            "tick_slot": In(self.slot_bits),
            "tick_code": In(2),
            "tick_write": In(1),
            "counters": Out(data.StructLayout(
                {nm: unsigned(COUNTER_WIDTH) for nm, _ in LADDER_COUNTERS})),
        })

    def elaborate(self, platform):
        m = Module()
        L, lb = self.lanes, self.lane_bits
        for i, lad in enumerate(self.ladders):
            m.submodules[f"lane{i}"] = lad

        if L == 1:
            lad = self.ladders[0]
            wiring.connect(m, wiring.flipped(self.i_stream), lad.i_stream)
            wiring.connect(m, lad.o_stream, wiring.flipped(self.o_stream))
            m.d.comb += [lad.tick_slot.eq(self.tick_slot), lad.tick_code.eq(self.tick_code),
                         lad.tick_write.eq(self.tick_write), self.counters.eq(lad.counters)]
            return m

        ip = self.i_stream.payload
        lane_of = Signal(lb)
        m.d.comb += lane_of.eq(ip.slot[:lb])
        # the order FIFO bounds what is inside the lanes: every lane full to the brim
        order_depth = L * (2 * self.lane_fifo + 8)
        m.submodules.order = order = SyncFIFO(width=lb, depth=order_depth)

        ins, outs = [], []
        # the output register takes lane i's record straight from its ladder (lane output FIFO
        # empty, record next in op order)
        byp_take = [Signal(name=f"byp_take{i}") for i in range(L)]
        for i, lad in enumerate(self.ladders):
            fin = SyncFIFO(width=self.op_layout.size, depth=self.lane_fifo)
            fout = SyncFIFO(width=lad.out_layout.size, depth=self.lane_fifo)
            m.submodules[f"in{i}"] = fin
            m.submodules[f"out{i}"] = fout
            ins.append(fin)
            outs.append(fout)
            # deal: the op goes to its lane's input FIFO, or straight into the ladder when
            # that FIFO is empty and the ladder takes it (fall-through: no FIFO cycle)
            deal = Signal(name=f"deal{i}")
            m.d.comb += [
                deal.eq(self.i_stream.valid & self.i_stream.ready & (lane_of == i)),
                fin.w_data.eq(ip.as_value()),
                fin.w_en.eq(deal & ~(~fin.r_rdy & lad.i_stream.ready)),
            ]
            # lane input FIFO (or the fall-through) -> ladder, with the local slot number
            op = Signal(self.op_layout)
            li = lad.i_stream.payload
            m.d.comb += [
                op.eq(Mux(fin.r_rdy, fin.r_data, ip.as_value())),
                li.kind.eq(op.kind),
                li.slot.eq(op.slot[lb:]),
                li.bid.eq(op.bid),
                li.px.eq(op.px),
                li.q.eq(op.q),
                li.remove.eq(op.remove),
                li.tag.eq(op.tag),
                *((li.idx.eq(op.idx), li.offg.eq(op.offg)) if self.divided else ()),
                lad.i_stream.valid.eq(fin.r_rdy | deal),
                fin.r_en.eq(fin.r_rdy & lad.i_stream.ready),
                # ladder -> lane output FIFO (or straight into the output register when the
                # FIFO is empty and the record is the next in op order, see below)
                fout.w_data.eq(lad.o_stream.payload.as_value()),
                fout.w_en.eq(lad.o_stream.valid & ~byp_take[i]),
                lad.o_stream.ready.eq(fout.w_rdy),
                # tick writes go to the slot's lane
                lad.tick_slot.eq(self.tick_slot[lb:]),
                lad.tick_code.eq(self.tick_code),
                lad.tick_write.eq(self.tick_write & (self.tick_slot[:lb] == i)),
            ]

        # the op is taken when its lane and the order FIFO have room (head of line: in order)
        lane_rdy = Signal()
        with m.Switch(lane_of):
            for i in range(L):
                with m.Case(i):
                    m.d.comb += lane_rdy.eq(ins[i].w_rdy)
        m.d.comb += [
            self.i_stream.ready.eq(lane_rdy & order.w_rdy),
            order.w_data.eq(lane_of),
            order.w_en.eq(self.i_stream.valid & self.i_stream.ready),
        ]

        # gather in op order into the output register
        head = Signal(lb)
        m.d.comb += head.eq(order.r_data)
        avail = Signal()
        rec = Signal(self.ladders[0].out_layout)
        with m.Switch(head):
            for i in range(L):
                with m.Case(i):
                    lo = self.ladders[i].o_stream
                    m.d.comb += [
                        avail.eq(outs[i].r_rdy | lo.valid),
                        rec.eq(Mux(outs[i].r_rdy, outs[i].r_data, lo.payload.as_value())),
                    ]
        ov = Signal()
        ovp = Signal(self.out_layout)
        take = Signal()
        m.d.comb += [
            take.eq(order.r_rdy & avail & (~ov | self.o_stream.ready)),
            order.r_en.eq(take),
            self.o_stream.valid.eq(ov),
            self.o_stream.payload.eq(ovp),
        ]
        for i in range(L):
            m.d.comb += [
                outs[i].r_en.eq(take & (head == i) & outs[i].r_rdy),
                byp_take[i].eq(take & (head == i) & ~outs[i].r_rdy),
            ]
        with m.If(take):
            m.d.sync += [
                ov.eq(1),
                ovp.slot.eq((rec.slot << lb) | head),
                ovp.tag.eq(rec.tag),
                ovp.valid.eq(rec.valid),
                ovp.bad.eq(rec.bad),
                ovp.far_visible.eq(rec.far_visible),
                ovp.bids.eq(rec.bids),
                ovp.asks.eq(rec.asks),
            ]
        with m.Elif(self.o_stream.ready):
            m.d.sync += ov.eq(0)

        # counters: registered pairwise adder tree over the lanes (one 32-bit add per level)
        for nm, _ in LADDER_COUNTERS:
            level = [getattr(lad.counters, nm) for lad in self.ladders]
            while len(level) > 1:
                nxt = []
                for j in range(0, len(level), 2):
                    s = Signal(COUNTER_WIDTH, name=f"sum_{nm}_{len(level)}_{j}")
                    m.d.sync += s.eq(level[j] + level[j + 1])
                    nxt.append(s)
                level = nxt
            m.d.comb += getattr(self.counters, nm).eq(level[0])
        return m
