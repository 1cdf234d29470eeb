"""Order table: order reference -> (slot, side, price, shares), a W-way bucketed hash table.

Used by :class:`hw.book.Book` after its issue stage; it turns each book operation into
a *level operation* (add / reduce shares at one price of one (slot, side)) for the price-level
stage.

Hashing and probing
-------------------
``capacity`` entries are ``capacity // ways`` buckets of ``ways`` entries. The bucket of a
64-bit reference is the XOR of its consecutive ``log2(buckets)``-bit chunks
(:func:`bucket_of`); all ways of a bucket are one memory word, read in one cycle and compared
in parallel; an insert takes the first free way; there is no probing beyond the bucket, so a
full bucket is a *table full* event (counted, reported, and the symbol's book marked
not-valid). NASDAQ references grow by one per order, so consecutive references land in
consecutive buckets; random references (the generator mixes them) fill buckets as a Poisson
process: the chance that a given add finds its bucket full is about 6e-8 with 8 ways at a
load of 1/16 (live orders / capacity), 1e-5 at 1/8 and 5% at 1/2; with 4 ways 1.3e-4 at 1/16
(table in docs/book.md).

Pipeline and hazards
--------------------
Four stages, one operation per clock::

    C0  read       bucket index = fold of the reference (or the scrub walk's bucket), the
                   synchronous bucket read starts; same-bucket flags against the two
                   operations ahead are registered
    C1  way match  the bucket (memory, or the whole bucket the op two ahead writes back this
                   cycle) -> per-way live (epoch), hit (reference) and free, registered;
                   a clear bumps its slot's epoch at the end of C1
    C2  update     the ways the op one ahead changed are applied (its bucket and changed-way
                   mask are registered in C3), then select, insert / subtract / remove,
                   the level op is registered (``o``)
    C3  write back the new bucket is written; the read port is transparent to this write,
                   so an op in C0 reads it

An operation's read misses the writes of the two operations ahead of it; both are forwarded
when they address the same bucket: the op two ahead (in C3 while this one is in C1) gives its
whole written bucket, the op one ahead (in C3 while this one is in C2) its changed ways (one
way for an insert or a reduce, the freed ways for a scrub step). A way the op one ahead wrote
is live for the next op exactly when its valid bit is set (no clear can sit between two
adjacent ops); a clear between two ops on one bucket makes them two apart, and C1 then
recomputes the liveness of the forwarded bucket with the bumped epoch. So back-to-back
``A/E/C/X/D/U`` on one reference or on references of one bucket are exact
(``tests/hw/test_order_table.py``).

Entries carry the book *epoch* of their slot: clearing a slot bumps its epoch, which frees
every entry of that slot at once (no scan, one cycle). Epochs are ``epoch_bits`` wide, so a
slot's epoch comes back to a value it had ``2**epoch_bits`` clears earlier, and an entry left
from then would be live again. The clear that would wrap a slot's epoch (from
``2**epoch_bits - 1`` to 0) therefore first **scrubs** the table: it walks every bucket, one per
cycle, and frees every entry of that slot (the clear frees them anyway), with ``i.ready`` low;
then the clear goes through. A wrapping clear that is part of a clear of every slot (``i``
``clr_all``) frees every entry instead (the clear frees them all anyway), and then the table is
known empty: the other slots that wrap in the same clear of every slot need no second walk.
Between two scrubs of a slot its entries carry ``2**epoch_bits`` distinct epochs, so a freed
entry is never live again, after any number of clears (soft resets, hard resets and
``clear_stale`` all count). Cost: ``buckets`` cycles once per ``2**epoch_bits`` clears of a slot.

Tick divide (``divide=True``, what :class:`hw.book.Book` builds)
-----------------------------------------------------------------
The price ladder keys its levels by ``idx = px // tick`` (:func:`hw.ladder.div_tick`). With
``divide`` the table computes it, off the ladder's path: D1-D3 run beside C1-C3 on every
``i`` price (both ticks 100 and 10000: the exact reciprocal multiplies in 16 x 16 partial
products and two adds, the grid flags from byte residues mod 25 / 625), and in C3 an ``ADD``
takes the index and grid flag of its slot's tick code (``i_tick`` for an ``A``, the code of
U1's order for a ``U2``). The entry stores ``idx``, ``offg`` and ``code`` instead of ``px``
(written in C3, so the inserted way of the forwarded bucket gets them there too), and a
reduce gives back the ones its order was added with; a reduce's level op has ``px = 0``.
Same latency (3 cycles), same throughput.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from host.feed.record_map import RECORD_WIDTHS
from hw.arith import eq_carry
from hw.ladder import TICK_MAGIC

__all__ = [
    "OtOp",
    "LevelOpKind",
    "OrderTable",
    "bucket_of",
    "fold_key",
    "order_entry_layout",
    "ot_input_layout",
    "level_op_layout",
    "sub_info_layout",
    "or_all",
]

REF_WIDTH = RECORD_WIDTHS["order_ref"]
PX_WIDTH = RECORD_WIDTHS["price"]
SH_WIDTH = RECORD_WIDTHS["shares"]


class OtOp:
    """Operation codes on the order table input."""

    NONE = 0  # not a book message: passes through (counted as ignored)
    ADD = 1  # A/F: insert key
    RED = 2  # E/C/X/D: reduce or remove key (D: ``is_del``)
    U1 = 3  # first half of U: remove the original reference
    U2 = 4  # second half of U: insert the new reference with U1's slot and side
    CLR = 5  # clear ``slot``: bump its epoch (frees all its entries); may scrub first
    SCRUB = 6  # internal: one bucket of a scrub walk (never on ``i``)
    MARK = 7  # a marker for the locate's slot (the commit of a host re-seed): no table change


class LevelOpKind:
    """Level operation codes on the order table output."""

    NONE = 0
    ADD = 1
    RED = 2
    CLR = 3


def bucket_of(ref: int, bucket_bits: int) -> int:
    """Bucket of a 64-bit order reference (the same fold the gateware computes)."""
    if bucket_bits == 0:
        return 0
    h = 0
    mask = (1 << bucket_bits) - 1
    for lo in range(0, REF_WIDTH, bucket_bits):
        h ^= (ref >> lo) & mask
    return h


def fold_key(value, bits: int):
    """Gateware bucket of ``value`` (:func:`bucket_of`): the XOR of its ``bits``-bit chunks."""
    if bits == 0:
        return Const(0, 1)
    out = value[0:bits]
    for lo in range(bits, len(value), bits):
        chunk = value[lo : min(lo + bits, len(value))]
        out = out ^ chunk
    return out


def _slot_bits(slots: int) -> int:
    return max(1, (slots - 1).bit_length())


def order_entry_layout(slots: int, epoch_bits: int, divide: bool = False) -> data.StructLayout:
    """One stored order. With ``divide`` the price is stored as the ladder needs it: ``idx``
    (``px // tick``), ``offg`` (off the tick grid) and ``code`` (the slot's tick code), instead
    of ``px``."""
    fields = {
        "valid": unsigned(1),
        "ref": unsigned(REF_WIDTH),
        "slot": unsigned(_slot_bits(slots)),
        "epoch": unsigned(epoch_bits),
        "bid": unsigned(1),
    }
    if divide:
        fields.update({"idx": unsigned(PX_WIDTH), "offg": unsigned(1), "code": unsigned(2)})
    else:
        fields["px"] = unsigned(PX_WIDTH)
    fields["shares"] = unsigned(SH_WIDTH)
    return data.StructLayout(fields)


def sub_info_layout(slots: int) -> data.StructLayout:
    return data.StructLayout({"subscribed": unsigned(1), "slot": unsigned(_slot_bits(slots))})


def ot_input_layout(slots: int, tag_width: int) -> data.StructLayout:
    return data.StructLayout(
        {
            "op": unsigned(3),
            "key": unsigned(REF_WIDTH),
            "same_ref": unsigned(1),  # U2: new reference == original reference
            "is_del": unsigned(1),  # RED: D (remove whatever remains)
            "bid": unsigned(1),
            "side_ok": unsigned(1),  # ADD: side byte is 'B' or 'S'
            "px": unsigned(PX_WIDTH),
            "shares": unsigned(SH_WIDTH),
            "slot": unsigned(_slot_bits(slots)),  # CLR only
            "clr_all": unsigned(1),  # CLR: part of a clear of every slot (see module doc)
            "tag": unsigned(tag_width),
        }
    )


def level_op_layout(slots: int, tag_width: int, divide: bool = False) -> data.StructLayout:
    """One level op. With ``divide`` also ``idx``, ``offg`` and ``code`` (the tick-divided
    price, :func:`hw.ladder.div_tick`); ``px`` is then only set for an ``ADD``."""
    extra = {"idx": unsigned(PX_WIDTH), "offg": unsigned(1), "code": unsigned(2)} if divide else {}
    return data.StructLayout(
        {
            **extra,
            "op": unsigned(2),
            "u1": unsigned(1),
            "u2": unsigned(1),
            "touch": unsigned(1),  # a subscribed book was (or could have been) changed
            "slot": unsigned(_slot_bits(slots)),
            "bid": unsigned(1),
            "px": unsigned(PX_WIDTH),
            "q": unsigned(SH_WIDTH),
            "remove": unsigned(1),  # RED: one order leaves the level
            "mark_invalid": unsigned(1),
            "ev_ignored": unsigned(1),
            "ev_unknown": unsigned(1),
            "ev_dup": unsigned(1),
            "ev_full": unsigned(1),
            "ev_oversize": unsigned(1),
            "tag": unsigned(tag_width),
        }
    )


class OrderTable(wiring.Component):
    """W-way bucketed hash table of live orders, one operation per clock.

    Parameters
    ----------
    slots : int
        Book slots (symbols) the ``slot`` fields address.
    capacity : int
        Entries, a power of two.
    ways : int
        Entries per bucket, a power of two dividing ``capacity``.
    epoch_bits : int
        Width of the per-slot epoch (see module docstring): a slot's clears scrub the table
        once every ``2**epoch_bits``.
    tag_width : int
        Width of the opaque ``tag`` carried from input to output.
    ext_bucket : bool
        The caller gives the bucket index (``i_bucket``).
    divide : bool
        Divide prices by the slot's tick (module docstring, "Tick divide"): ``i_tick`` in, the
        level ops carry ``idx``, ``offg`` and ``code``.

    Attributes
    ----------
    i : In(stream.Signature(ot_input_layout))
        One operation per cycle; the bucket read address is computed from ``i.payload.key``.
        ``ready`` is low only during a scrub and while a ``CLR`` that would wrap its slot's
        epoch waits for one (``ready`` does not depend on ``valid``; for any operation other
        than ``CLR`` it is a register: no scrub running).
    i_bucket : In(max(1, bucket_bits))
        Only with ``ext_bucket=True``: ``fold_key(i.payload.key, bucket_bits)``, computed by
        the caller (it must equal that fold; the book folds each candidate key and selects
        the folded value, which keeps its input select off the read-address path).
    i_sub : In(sub_info_layout)
        Subscription of the operation presented on ``i`` in the *previous* cycle (the book
        looks it up in a synchronous memory in parallel with the bucket read).
    i_tick : In(2)
        Only with ``divide=True``: tick code (:data:`hw.ladder.TICKS`) of the slot of
        ``i_sub`` (same cycle as ``i_sub``).
    o : Out(stream.Signature(level_op_layout, always_ready=True))
        The level operation and the events of that input, registered.

    Latency 3 cycles (``i`` accepted in C0 -> ``o`` valid in C3; three operations in flight),
    throughput one operation per clock; the caller keeps its own credit for ``o`` (no
    backpressure from ``o``). Backpressure on ``i``: only the scrub of a wrapping ``CLR``
    (once per ``2**epoch_bits`` clears of a slot): ``ready`` is low for ``buckets + 1``
    cycles, the walk's ``SCRUB`` operations are not on ``o``, operations accepted before the
    ``CLR`` complete normally (a scrub step sees their writes through the same forwarding as
    any operation). Back-to-back operations on the same bucket are exact (module docstring,
    "Pipeline and hazards"); ``U2`` must follow its ``U1`` in the next cycle: in its C2 it
    takes its slot and side from the ``o`` register, which holds ``U1``'s result then.
    """

    def __init__(self, *, slots: int, capacity: int, ways: int = 4, epoch_bits: int = 8,
                 tag_width: int = 1, ext_bucket: bool = False, divide: bool = False):
        for name, v in (("slots", slots), ("capacity", capacity), ("ways", ways),
                        ("epoch_bits", epoch_bits), ("tag_width", tag_width)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, not {v!r}")
        if slots < 1:
            raise ValueError(f"slots must be >= 1, not {slots}")
        if capacity < 1 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two, not {capacity}")
        if ways < 1 or ways & (ways - 1) or ways > capacity:
            raise ValueError(f"ways must be a power of two <= capacity, not {ways}")
        if epoch_bits < 1:
            raise ValueError(f"epoch_bits must be >= 1, not {epoch_bits}")
        if tag_width < 1:
            raise ValueError(f"tag_width must be >= 1, not {tag_width}")
        self.slots = slots
        self.capacity = capacity
        self.ways = ways
        self.buckets = capacity // ways
        self.bucket_bits = self.buckets.bit_length() - 1
        self.epoch_bits = epoch_bits
        self.tag_width = tag_width
        self.divide = bool(divide)
        self.entry_layout = order_entry_layout(slots, epoch_bits, self.divide)
        self.in_layout = ot_input_layout(slots, tag_width)
        self.out_layout = level_op_layout(slots, tag_width, self.divide)
        self.ext_bucket = bool(ext_bucket)
        ports = {
            "i": In(stream.Signature(self.in_layout)),
            "i_sub": In(sub_info_layout(slots)),
            "o": Out(stream.Signature(self.out_layout, always_ready=True)),
        }
        if self.ext_bucket:
            ports["i_bucket"] = In(max(1, self.bucket_bits))
        if self.divide:
            ports["i_tick"] = In(2)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        W = self.ways
        bucket_l = data.ArrayLayout(self.entry_layout, W)
        m.submodules.mem = mem = Memory(shape=bucket_l, depth=self.buckets, init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=(wr,))

        # per slot: the epoch, and two flags registered with it (``epoch == last``, ``epoch ==
        # last - 1``, for the wrap check): small memories with asynchronous read ports (one per
        # reader: LUTRAM), written by a clear's bump at the end of its C1. Not reset, like the
        # registers they replace (a reset must not rewind an epoch)
        last = (1 << self.epoch_bits) - 1
        m.submodules.ep_mem = ep_mem = Memory(shape=unsigned(self.epoch_bits),
                                              depth=self.slots, init=[])
        m.submodules.fl_mem = fl_mem = Memory(shape=unsigned(2), depth=self.slots,
                                              init=[int(last == 1) << 1] * self.slots)
        ep_wr = ep_mem.write_port()
        fl_wr = fl_mem.write_port()

        def ep_of(addr):
            port = ep_mem.read_port(domain="comb")
            m.d.comb += port.addr.eq(addr)
            return port.data

        ip = self.i.payload
        abits = max(1, self.bucket_bits)

        # -- pipeline registers (stage N's registers hold the operation that is in stage N) --
        c1 = Signal(self.in_layout)
        c1v = Signal()
        c1_addr = Signal(abits)
        c1_same1 = Signal()  # same bucket as the operation one ahead (then in C1)
        c1_same2 = Signal()  # same bucket as the operation two ahead (then in C2)
        c2 = Signal(self.in_layout)
        c2v = Signal()
        c2_addr = Signal(abits)
        c2_b = Signal(bucket_l)  # the bucket as C1 saw it (memory + two-ahead forward)
        c2_hit = Signal(W)
        c2_free = Signal(W)
        c2_keyeq = Signal()  # same reference as the operation one ahead
        # per way, for a reduce: the entry's shares minus the op's, and the compares, from
        # C1's bucket (the subtract is one C2 would otherwise do after the way select)
        sh_w = len(ip.shares)
        c2_diff = [Signal(sh_w, name=f"c2_diff{w}") for w in range(W)]
        c2_ge = Signal(W)  # op shares >= entry shares (the order leaves)
        c2_gt = Signal(W)  # op shares > entry shares (oversize)
        c2_sub = Signal(sub_info_layout(self.slots))
        # what the op may do, decoded in C1 (``i_sub`` is the op in C1's subscription)
        c2_add_ok = Signal()  # an ADD, subscribed, side ok (inserts if no hit, a free way)
        c2_u2_new = Signal()  # a U2 to a new reference (inserts if its U1 touched, ...)
        c2_red_ok = Signal()  # a RED / U1, subscribed (reduces its hit way)
        c2_scr = Signal()  # a scrub step
        c2_is_del = Signal()  # the reduce removes the order whatever its shares (D, U1)
        c2_slot_eq = Signal(W)  # per way of C1's bucket: the entry's slot is the op's
        c2_sub_ep = Signal(self.epoch_bits)  # epochs[c2_sub.slot]
        c3_addr = Signal(abits)
        c3_we = Signal()
        c3_b = Signal(bucket_l)  # the bucket C3 writes back (comb: C3 resolves a reduce)
        # the ways C2 changed in it, when the op behind (then in C2) is on the same bucket
        c3_fwd = Signal(W)

        # -- scrub control (see module docstring) ------------------------------------------------
        scrub = Signal()  # walking the buckets
        scrub_addr = Signal(abits)
        scrub_slot = Signal.like(ip.slot)
        scrub_all = Signal()  # the walk frees every entry (not only scrub_slot's)
        scrubbed = Signal()  # scrub_slot has no entry in the table
        empty = Signal()  # the table has no entry
        # the epoch the CLR on ``i`` would bump is its slot's last value (it wraps): a CLR
        # bumps its slot's epoch at the end of C1, so forward the bump of a CLR of the same
        # slot in C1 (back-to-back clears). Not an add and a compare of the read epoch: the
        # slot's two flags (``fl_mem``) read at ``ip.slot``, and one slot compare picks one
        # (a forward mux per slot in front of a select was 16 levels from ``c1`` at 256 slots)
        c1_clr = Signal()  # the op in C1 is a CLR (it bumps ``c1.slot``'s epoch)
        m.d.comb += c1_clr.eq(c1v & (c1.op == OtOp.CLR))
        c1_bump = Signal()  # the CLR in C1 bumps the slot of the op on ``i``
        fl_rd = fl_mem.read_port(domain="comb")
        m.d.comb += fl_rd.addr.eq(ip.slot)
        m.d.comb += c1_bump.eq(c1_clr & (c1.slot == ip.slot))
        wraps = Signal()  # the CLR on ``i`` needs a scrub first
        m.d.comb += wraps.eq(
            (ip.op == OtOp.CLR)
            & Mux(c1_bump, fl_rd.data[1], fl_rd.data[0])
            & ~empty & ~(scrubbed & (scrub_slot == ip.slot))
        )
        m.d.comb += self.i.ready.eq(~scrub & ~wraps)
        accept = self.i.valid & self.i.ready
        with m.If(scrub):
            m.d.sync += scrub_addr.eq(scrub_addr + 1)
            with m.If(scrub_addr == self.buckets - 1):
                m.d.sync += [scrub.eq(0), scrubbed.eq(~scrub_all), empty.eq(scrub_all)]
        with m.Elif(self.i.valid & wraps):
            m.d.sync += [
                scrub.eq(1),
                scrub_addr.eq(0),
                scrub_slot.eq(ip.slot),
                scrub_all.eq(ip.clr_all),
            ]
        with m.Elif(accept & (ip.op != OtOp.CLR)):
            m.d.sync += [scrubbed.eq(0), empty.eq(0)]  # an operation may insert an entry

        # -- C0: bucket index (hash) and read; same-bucket flags against the ops ahead -------
        addr = Signal(abits)
        # the caller's fold (ext_bucket): it folds each candidate key before its own select of
        # the key, so the select is not in front of the XOR tree on the read-address path
        bkt = self.i_bucket if self.ext_bucket else fold_key(ip.key, self.bucket_bits)
        if self.bucket_bits:
            m.d.comb += addr.eq(Mux(scrub, scrub_addr, bkt))
        m.d.comb += rd.addr.eq(addr)
        m.d.sync += [
            c1.eq(ip),
            c1v.eq(accept | scrub),
            c1_addr.eq(addr),
            c1_same1.eq(c1v & (addr == c1_addr)),
            c1_same2.eq(c2v & (addr == c2_addr)),
        ]
        with m.If(scrub):
            # a walk step carries its own slot / all flag down the pipeline
            m.d.sync += [c1.op.eq(OtOp.SCRUB), c1.slot.eq(scrub_slot),
                         c1.clr_all.eq(scrub_all)]

        # -- C1: way match. The read missed the write of the op two ahead (now in C3, written
        # at the end of this cycle): take its whole bucket. The op one ahead (now in C2) is
        # applied in C2, from its changed ways.
        fw2 = Signal()
        m.d.comb += fw2.eq(c1_same2 & c3_we)
        b1 = Signal(bucket_l)
        m.d.comb += b1.eq(Mux(fw2, c3_b, rd.data))
        # live: the entry's epoch is its slot's. On each source (memory, the forwarded bucket)
        # its slot's epoch is read from ``ep_mem`` (an asynchronous read port per way and
        # source) at the source's slot field and compared as a carry chain
        # (:func:`hw.arith.eq_carry`), the forward mux after. At 256 slots a select of the epoch
        # registers was the deepest path: an ``Array`` select 19 levels reg to reg to
        # ``c2_hit`` (MUXF7/F8/F9 chains), a :func:`mux_tree` 11.5 (2026-12-07)
        live = []
        for w in range(W):
            ep_rd = ep_of(rd.data[w].slot)
            ep_c3 = ep_of(c3_b[w].slot)
            lv_rd = rd.data[w].valid & eq_carry(rd.data[w].epoch, ep_rd)
            lv_c3 = c3_b[w].valid & eq_carry(c3_b[w].epoch, ep_c3)
            live.append(Mux(fw2, lv_c3, lv_rd))
        # the reference compared on both sources (memory, the forwarded bucket), selected
        # after: the forward mux is not in front of the 64-bit compare (10 levels to
        # ``c2_hit`` as a mux and a LUT tree, 2026-12-07)
        ref_eq = [Mux(fw2, eq_carry(c3_b[w].ref, c1.key), eq_carry(rd.data[w].ref, c1.key))
                  for w in range(W)]
        m.d.sync += [
            c2.eq(c1),
            c2v.eq(c1v),
            c2_addr.eq(c1_addr),
            c2_b.eq(b1),
            c2_hit.eq(Cat(*(live[w] & ref_eq[w] for w in range(W)))),
            c2_free.eq(Cat(*(~live[w] for w in range(W)))),
            c2_keyeq.eq(c1.key == c2.key),
            c2_ge.eq(Cat(*(c1.shares >= b1[w].shares for w in range(W)))),
            c2_gt.eq(Cat(*(c1.shares > b1[w].shares for w in range(W)))),
            *(c2_diff[w].eq(b1[w].shares - c1.shares) for w in range(W)),
            c2_sub.eq(self.i_sub),
            c2_add_ok.eq((c1.op == OtOp.ADD) & self.i_sub.subscribed & c1.side_ok),
            c2_u2_new.eq((c1.op == OtOp.U2) & ~c1.same_ref),
            c2_red_ok.eq(((c1.op == OtOp.RED) | (c1.op == OtOp.U1)) & self.i_sub.subscribed),
            c2_scr.eq(c1.op == OtOp.SCRUB),
            c2_is_del.eq(c1.is_del | (c1.op == OtOp.U1)),
            c2_slot_eq.eq(Cat(*(b1[w].slot == c1.slot for w in range(W)))),
            # the epoch an ADD inserts with, selected here by its subscription's slot (a
            # register): no bump can come between (only a CLR bumps, at the end of its C1)
            c2_sub_ep.eq(ep_of(self.i_sub.slot)),
        ]
        # the bump: the slot's epoch read at ``c1.slot``, plus one, written with its flags
        c1_ep = ep_of(c1.slot)
        m.d.comb += [
            ep_wr.addr.eq(c1.slot), ep_wr.data.eq(c1_ep + 1), ep_wr.en.eq(c1_clr),
            fl_wr.addr.eq(c1.slot), fl_wr.en.eq(c1_clr),
            fl_wr.data.eq(Cat(c1_ep == last - 1, c1_ep == ((last - 2) & last))),
        ]
        if self.divide:
            c2_tick = Signal(2)
            m.d.sync += c2_tick.eq(self.i_tick)
            dv = self._divide(m, ip.px)

        # -- C2: apply the changed ways of the op one ahead (now in C3), select, update ------
        # Made of nets kept from the mapper (``_kept``), each a function of at most about six
        # inputs: left to itself ABC maps this logic to wide LUTs (LUT6 with MUXF7/F8/F9, one
        # level to ABC, two to four counted per cell), 11 levels reg to reg at 256 slots
        # (2026-12-07). What an op does (insert, reduce, scrub step) is decided from early
        # signals (``c2_add_ok`` etc., registered in C1), the per-way hit / free, their group
        # ORs and the first free way; the subtract and the compares meet small muxes late.
        s = c2
        sub = c2_sub

        def _kept(v, name):
            n = Signal(len(Value.cast(v)), name=name, attrs={"keep": 1})
            m.d.comb += n.eq(v)
            return n

        b = Signal(bucket_l)
        hit, free = [], []
        for w in range(W):
            fwd = c3_fwd[w]
            # a way the op one ahead wrote is live for this op when it is valid: no clear
            # can sit between two adjacent ops
            m.d.comb += b[w].eq(Mux(fwd, c3_b[w], c2_b[w]))
            hit.append(_kept(Mux(fwd, c3_b[w].valid & c2_keyeq, c2_hit[w]), f"hit{w}"))
            free.append(_kept(Mux(fwd, ~c3_b[w].valid, c2_free[w]), f"free{w}"))
        groups = [(lo, min(W, lo + 4)) for lo in range(0, W, 4)]

        def any_groups(bits, name):  # the OR of each group of 4 ways, kept
            return [_kept(Cat(*bits[lo:hi]).any(), f"{name}{g}")
                    for g, (lo, hi) in enumerate(groups)]

        ha = any_groups(hit, "hit_any")
        fa = any_groups(free, "free_any")
        hit_any = _kept(Cat(*ha).any(), "hit_any")
        free_any = _kept(Cat(*fa).any(), "free_any")
        # the first free way: lowest in its group of 4, no free way in a lower group
        first_free = []
        for g, (lo, hi) in enumerate(groups):
            for w in range(lo, hi):
                first_free.append(_kept(free[w] & ~Cat(*free[lo:w], *fa[:g], Const(0, 1)).any(),
                                        f"first_free{w}"))
        prev = self.o.payload  # the previous operation's result (U1 for a U2), now in C3

        # what the op does to the bucket: insert into the first free way (an ADD, or a U2 whose
        # U1 touched, with no hit), reduce / remove the hit way, a scrub step
        ins_ok = _kept(c2_add_ok | (c2_u2_new & self.o.valid & prev.u1 & prev.touch), "ins_ok")
        ins = _kept(ins_ok & ~hit_any & free_any, "ins")
        red = _kept(c2_red_ok & hit_any, "red")
        scr = c2_scr
        ins_w = [_kept(ins_ok & ~Cat(*ha).any() & first_free[w], f"ins_w{w}") for w in range(W)]
        red_w = [_kept(c2_red_ok & hit[w], f"red_w{w}") for w in range(W)]
        scr_w = []
        for w in range(W):
            fsl = _kept(c3_b[w].slot == s.slot, f"fwd_slot_eq{w}")
            scr_w.append(_kept(scr & (s.clr_all | Mux(c3_fwd[w], fsl, c2_slot_eq[w])),
                               f"scr_w{w}"))
        is_u2 = s.op == OtOp.U2
        ins_slot = _kept(Mux(is_u2, prev.slot, sub.slot), "ins_slot")
        ins_ep = _kept(Mux(is_u2, ep_of(prev.slot), c2_sub_ep), "ins_ep")
        ins_code = _kept(Mux(is_u2, prev.code, c2_tick), "ins_code") if self.divide else None
        ins_bid = _kept(Mux(is_u2, prev.bid, s.bid), "ins_bid")

        # the hit entry (at most one way hits), and the reduce's remove / oversize: per way
        # the compare of the forwarded way (its shares are registered in C3) or of C1's bucket
        def hit_sel(field):  # the hit way's field: per way, per group of 4, the groups' OR
            per = [_kept(Mux(hit[w], b[w][field], 0), f"e_{field}_h{w}") for w in range(W)]
            return or_all(_kept(or_all(per[lo:hi]), f"e_{field}_g{g}")
                          for g, (lo, hi) in enumerate(groups))

        e_fields = ["slot", "bid", "shares"] + (["idx", "offg", "code"] if self.divide
                                                 else ["px"])
        e = {f: hit_sel(f) for f in e_fields}
        rge, rgt = [], []
        for w in range(W):
            fwd = c3_fwd[w]
            gef = _kept(s.shares >= c3_b[w].shares, f"fwd_ge{w}")
            gtf = _kept(s.shares > c3_b[w].shares, f"fwd_gt{w}")
            rge.append(_kept(hit[w] & Mux(fwd, gef, c2_ge[w]), f"hit_ge{w}"))
            rgt.append(_kept(hit[w] & Mux(fwd, gtf, c2_gt[w]), f"hit_gt{w}"))
        # their ORs as carry chains (:func:`_any_carry`): as LUTs ABC merged the per-way muxes
        # into a LUT8 after the compare (8.5 levels to ``o``)
        remove = Signal()
        m.d.comb += remove.eq(c2_is_del | _any_carry(rge))

        newb = Signal(bucket_l)
        chg = Signal(W)
        for w in range(W):
            fwd = c3_fwd[w]
            # a reduce's new shares: the subtract of the forwarded way or C1's, a 6-input mux
            d3 = _kept(c3_b[w].shares - s.shares, f"fwd_diff{w}")
            red_sh = _kept(Mux(red_w[w], Mux(fwd, d3, c2_diff[w]), b[w].shares), f"red_sh{w}")
            bval = _kept(b[w].valid, f"b_valid{w}")
            m.d.comb += [
                chg[w].eq(ins_w[w] | red_w[w] | scr_w[w]),
                newb[w].eq(b[w]),
                # a reduce's valid bit is resolved in C3 (``remove``)
                newb[w].valid.eq(ins_w[w] | (bval & ~scr_w[w])),
                newb[w].shares.eq(Mux(ins_w[w], s.shares, red_sh)),
            ]
            with m.If(ins_w[w]):
                m.d.comb += [
                    newb[w].ref.eq(s.key),
                    newb[w].slot.eq(ins_slot),
                    newb[w].epoch.eq(ins_ep),
                    newb[w].bid.eq(ins_bid),
                ]
                if self.divide:  # ``idx`` and ``offg`` are set in C3 (the divide's result)
                    m.d.comb += newb[w].code.eq(ins_code)
                else:
                    m.d.comb += newb[w].px.eq(s.px)

        # the level op and the events (``q`` of a reduce is resolved in C3 from ``remove``)
        nxt = Signal(self.out_layout)
        m.d.comb += nxt.tag.eq(s.tag)
        with m.Switch(s.op):
            with m.Case(OtOp.ADD):
                with m.If(~sub.subscribed | ~s.side_ok):
                    m.d.comb += nxt.ev_ignored.eq(1)
                with m.Elif(hit_any):
                    m.d.comb += nxt.ev_dup.eq(1)
                with m.Else():
                    m.d.comb += [nxt.touch.eq(1), nxt.slot.eq(sub.slot), nxt.bid.eq(s.bid)]
                    with m.If(~free_any):
                        m.d.comb += [nxt.ev_full.eq(1), nxt.mark_invalid.eq(1)]
            with m.Case(OtOp.RED, OtOp.U1):
                m.d.comb += nxt.u1.eq(s.op == OtOp.U1)
                with m.If(~sub.subscribed):
                    m.d.comb += nxt.ev_ignored.eq(1)
                with m.Elif(~hit_any):
                    m.d.comb += nxt.ev_unknown.eq(1)
                with m.Else():
                    m.d.comb += [
                        nxt.op.eq(LevelOpKind.RED),
                        nxt.touch.eq(1),
                        nxt.slot.eq(e["slot"]),
                        nxt.bid.eq(e["bid"]),
                    ]
                    if self.divide:
                        m.d.comb += [nxt.idx.eq(e["idx"]), nxt.offg.eq(e["offg"]),
                                     nxt.code.eq(e["code"])]
                    else:
                        m.d.comb += nxt.px.eq(e["px"])
            with m.Case(OtOp.U2):
                with m.If(self.o.valid & prev.u1 & prev.touch):
                    m.d.comb += [
                        nxt.u2.eq(1),
                        nxt.touch.eq(1),
                        nxt.slot.eq(prev.slot),
                        nxt.bid.eq(prev.bid),
                    ]
                    with m.If(s.same_ref | hit_any):
                        m.d.comb += nxt.ev_dup.eq(1)
                    with m.Elif(~free_any):
                        m.d.comb += [nxt.ev_full.eq(1), nxt.mark_invalid.eq(1)]
            with m.Case(OtOp.CLR):
                m.d.comb += [nxt.op.eq(LevelOpKind.CLR), nxt.slot.eq(s.slot)]
            with m.Case(OtOp.MARK):
                with m.If(sub.subscribed):
                    m.d.comb += [nxt.touch.eq(1), nxt.slot.eq(sub.slot)]
                with m.Else():
                    m.d.comb += nxt.ev_ignored.eq(1)
            with m.Case(OtOp.SCRUB):
                pass
            with m.Default():
                m.d.comb += nxt.ev_ignored.eq(1)
        with m.If(ins):
            m.d.comb += [nxt.op.eq(LevelOpKind.ADD), nxt.px.eq(s.px), nxt.q.eq(s.shares)]
            if self.divide:
                m.d.comb += nxt.code.eq(ins_code)
        # a reduce's remove and oversize flags (the RED / U1 branch above with a hit), from
        # the late compares: outside the switch, a LUT each
        m.d.comb += [
            nxt.remove.eq(red & remove),
            nxt.ev_oversize.eq(red & ~c2_is_del & _any_carry(rgt)),
        ]

        # -- C3: resolve the reduce (valid bit of its way, ``q``), write back; the read port
        # is transparent, so an op in C0 reads this write. ``c3_b`` (resolved) is also what
        # C1 and C2 forward.
        o_r = Signal(self.out_layout)  # the level op as C2 registered it
        c3_raw = Signal(bucket_l)
        c3_red_w = Signal(W)
        c3_e_sh = Signal.like(ip.shares)  # a reduce's entry shares (``q`` when it removes)
        c3_ins_w = Signal(W)  # the way an insert fills (its ``idx`` / ``offg`` set here)
        m.d.sync += [
            c3_ins_w.eq(Cat(*ins_w)),
            o_r.eq(nxt),
            self.o.valid.eq(c2v & (s.op != OtOp.SCRUB)),
            c3_addr.eq(c2_addr),
            c3_we.eq(c2v & (ins | red | scr)),
            c3_raw.eq(newb),
            # the ways changed, for the op now in C1 when it is on the same bucket
            c3_fwd.eq(Mux(c2v & c1_same1, chg, 0)),
            c3_red_w.eq(Cat(*red_w)),
            c3_e_sh.eq(e["shares"]),
        ]
        m.d.comb += self.o.payload.eq(o_r)
        with m.If(o_r.op == LevelOpKind.RED):
            m.d.comb += self.o.payload.q.eq(Mux(o_r.remove, c3_e_sh, o_r.q))
        with m.If(red):
            m.d.sync += o_r.q.eq(s.shares)  # the shares of a reduce that keeps the order
        for w in range(W):
            m.d.comb += c3_b[w].eq(c3_raw[w])
            with m.If(c3_red_w[w]):
                m.d.comb += c3_b[w].valid.eq(~o_r.remove)
        if self.divide:
            # an ADD's index: the divide of its price (D3, in step with C3) by its slot's tick
            a_idx = Signal(PX_WIDTH)
            a_offg = Signal()
            code = o_r.code
            m.d.comb += [
                a_idx.eq(Mux(code == 1, dv["q100"], Mux(code == 2, dv["q10k"], o_r.px))),
                a_offg.eq(Mux(code == 1, ~dv["g100"], Mux(code == 2, ~dv["g10k"], 0))),
            ]
            with m.If(o_r.op == LevelOpKind.ADD):
                m.d.comb += [self.o.payload.idx.eq(a_idx), self.o.payload.offg.eq(a_offg)]
            for w in range(W):
                with m.If(c3_ins_w[w]):
                    m.d.comb += [c3_b[w].idx.eq(a_idx), c3_b[w].offg.eq(a_offg)]
        m.d.comb += [wr.addr.eq(c3_addr), wr.data.eq(c3_b), wr.en.eq(c3_we)]
        return m

    def _divide(self, m, px):
        """Tick divide of the price on ``i`` (``divide``), three stages D1-D3 in step with
        C1-C3: ``q100``/``q10k`` (``px // 100`` / ``px // 10000``, the exact reciprocal
        multiplies of :data:`hw.ladder.TICK_MAGIC`) and ``g100``/``g10k`` (``px`` on the grid),
        registers valid in C3 for the op that was on ``i`` three cycles before.

        Products: D1 registers the four 16 x 16 partial products per constant (one DSP each),
        D2 two 33-bit sums (``ac + ad << 16``, ``bc + bd << 16``), D3 the 48-bit sum's high
        bits. Grid: not from the product (its low bits come last) but from the residues of the
        price's four bytes (``256**i mod 25`` / ``mod 625``, one table lookup each, D1), their
        sum (D2) and a compare with the multiples of 25 / 625 (D3), with the low 2 / 4 bits 0.
        """
        out = {}
        for d, name in ((100, "100"), (10000, "10k")):
            mm, ss = TICK_MAGIC[d]
            ml, mh = mm & 0xFFFF, mm >> 16
            ac, ad, bc, bd = (Signal(32, name=f"dv{name}_{x}") for x in ("ac", "ad", "bc", "bd"))
            x = Signal(49, name=f"dv{name}_x")
            y = Signal(49, name=f"dv{name}_y")
            q = Signal(64 - ss, name=f"dv{name}_q")
            hi = Signal(50, name=f"dv{name}_hi")  # bits 16.. of the product
            m.d.comb += hi.eq(x[16:] + y)
            m.d.sync += [
                ac.eq(px[:16] * ml), ad.eq(px[:16] * mh),
                bc.eq(px[16:] * ml), bd.eq(px[16:] * mh),
                x.eq(Cat(ac[:16], ac[16:] + ad)), y.eq(Cat(bc[:16], bc[16:] + bd)),
                q.eq(hi[ss - 16:48]),
            ]
            out["q" + name] = q
        for mod, low, name in ((25, 2, "100"), (625, 4, "10k")):
            rw = (mod - 1).bit_length()
            res = [Signal(rw, name=f"dv{name}_r{i}") for i in range(4)]
            for i, tab in enumerate(_residues(mod)):
                rom = Const(sum(v << (rw * b) for b, v in enumerate(tab)), rw * 256)
                m.d.sync += res[i].eq(rom.word_select(px.word_select(i, 8), rw))
            tot = Signal(rw + 2, name=f"dv{name}_sum")
            z1, z2 = Signal(name=f"dv{name}_z1"), Signal(name=f"dv{name}_z2")
            g = Signal(name=f"dv{name}_g")
            m.d.sync += [
                z1.eq(px[:low] == 0), z2.eq(z1),
                tot.eq((res[0] + res[1]) + (res[2] + res[3])),
                g.eq(z2 & ((tot == 0) | (tot == mod) | (tot == 2 * mod) | (tot == 3 * mod))),
            ]
            out["g" + name] = g
        return out


def _residues(mod: int) -> list[int]:
    """``(byte * 256**i) mod mod`` for the four bytes ``i`` of a price, as 256-entry tables."""
    return [[(b << (8 * i)) % mod for b in range(256)] for i in range(4)]


def _any_carry(bits):
    """OR of ``bits`` as the carry out of ``~bits + 1`` (set when every bit is 0), inverted: a
    carry chain (4 bits a CARRY4) after one LUT per bit, which the mapper does not fold into
    wide LUTs (LUT6 with MUXF7/F8) as it does a LUT tree (see :func:`hw.arith.eq_carry`)."""
    v = Cat(*bits)
    return ~(Cat(~v, Const(0, 1)) + 1)[len(v)]


def or_all(values):
    """OR of the values; used as the mux of one-hot selections (hit ways, matching levels)."""
    values = list(values)
    out = values[0]
    for v in values[1:]:
        out = out | v
    return out
