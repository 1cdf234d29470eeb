"""A/B line arbitration: two copies of one MoldUDP64 session merged by sequence number.

Sits between two :class:`hw.ethernet.FrameParser` (one per MAC input, "line A" and "line B")
and the one :class:`hw.moldudp.MoldUDP64` of :class:`hw.ingress.Ingress` (``lines=2``). Each
line's UDP payload beats wait in a small per-line queue until their MoldUDP64 header is
complete; then the packet at the head of each line is classified against the merged expected
sequence number ``E`` (the end, ``seq + count``, of the furthest data packet forwarded):

* **duplicate**: a data packet of the session with ``seq + count <= E`` brings nothing new:
  dropped, counted on its line (``line_x_duplicates``). This runs on each line in parallel with
  the other line's forwarding, so dropping the second copy costs no output cycle.
* **new**: ``seq <= E < seq + count`` (or the first packet): forwarded whole; a partly
  overlapping packet is forwarded and the MoldUDP64 stage skips its old blocks (``skip``).
* **ahead**: ``seq > E`` (its line missed something): held until the other line fills the gap
  (its head becomes new and is forwarded first), or the other line's head is ahead too (both
  lines missed it: the lower one is forwarded and MoldUDP64 flags the gap), or it has waited
  ``timeout`` cycles (the other line is dead or too late: forwarded, gap flagged,
  ``line_timeouts``).
* anything else -- another session, a heartbeat or end-of-session not ahead -- is forwarded
  (MoldUDP64 counts it as it would on one line; heartbeats carry no messages and repeat on one
  line too, so copies cannot be told apart); a packet whose header never completed (or
  completed in a final beat the MAC flagged) is dropped, as MoldUDP64 would ignore it.

When both heads can be forwarded, the lower sequence number goes first (A on a tie); a head
that arrives while the output is free is forwarded at once (first arrival wins). Per line,
``line_x_filled`` counts the gaps of that line (a packet starting past the end of the line's
previous packet) that the other line had already covered when the packet was decided.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from host.feed.spec import MOLD_END_OF_SESSION, MOLD_HEADER, MOLD_HEADER_LENGTH, MOLD_SESSION_WIDTH
from hw.arith import add_small, all_ones, carry_out, ge
from hw.counter import counter
from hw.ethernet import _check_counter_width, _check_width, payload_beat_layout
from hw.regs import ARBITER_COUNTERS as _REG_COUNTERS
from hw.regs import DEFAULT_AB_TIMEOUT

__all__ = [
    "ARBITER_COUNTERS",
    "DEFAULT_TIMEOUT",
    "LineArbiter",
    "arbiter_config_signature",
    "beat_queue_depth",
]

ARBITER_COUNTERS: tuple[str, ...] = (
    "line_a_packets",
    "line_a_duplicates",
    "line_a_filled",
    "line_b_packets",
    "line_b_duplicates",
    "line_b_filled",
    "line_timeouts",
)
"""Counters of :class:`LineArbiter` (names as in ``hw.regs.ARBITER_COUNTERS``)."""
if ARBITER_COUNTERS != tuple(n for n, _ in _REG_COUNTERS):
    raise ImportError("hw.arbiter.ARBITER_COUNTERS and hw.regs.ARBITER_COUNTERS differ")

DEFAULT_TIMEOUT = DEFAULT_AB_TIMEOUT
"""Reset value of ``CONFIG_AB_TIMEOUT`` (:data:`hw.regs.DEFAULT_AB_TIMEOUT`)."""

_F = {f.name: f for f in MOLD_HEADER}
_SEQ_W = 8 * (_F["sequence_number"].end - _F["sequence_number"].offset)
_CNT_W = 8 * (_F["message_count"].end - _F["message_count"].offset)


def beat_queue_depth(data_width: int) -> int:
    """Beats one line may hold: every beat up to the one completing the MoldUDP64 header (the
    parser's first beat holds the UDP header's end, so at most ``ceil(20 / nb) + 1``) plus four,
    so the header always completes before the queue is full and a line at full rate does not
    stall while its packet's decision is pending: 2 cycles after the header, and a copy of the
    packet the other line forwards waits one more for flags against the new ``E`` (plus two
    before the flags stage; plus three still left the bench's ``full_rate_no_stall`` with one
    stall cycle on line B). The beats sit in LUTRAM of 32 entries, so depth is cheap."""
    nb = data_width // 8
    return -(-MOLD_HEADER_LENGTH // nb) + 5


def _desc_layout() -> data.StructLayout:
    return data.StructLayout(
        {
            "mold": 1,  # the header completed (not in a final beat the MAC flagged)
            "seq": _SEQ_W,
            "count": _CNT_W,
            "sess": 8 * MOLD_SESSION_WIDTH,
        }
    )


def arbiter_config_signature() -> wiring.Signature:
    """``session``/``session_valid`` as :func:`hw.moldudp.mold_config_signature` and
    ``timeout`` (cycles a packet past a gap waits for the other line; 0: never waits)."""
    return wiring.Signature(
        {
            "session": Out(8 * MOLD_SESSION_WIDTH),
            "session_valid": Out(1),
            "timeout": Out(32),
        }
    )


class _LineFront(wiring.Component):
    """One line's queue: payload beats in a FIFO, one descriptor per packet (its MoldUDP64
    header, captured as the beats go in) in a second FIFO.

    Latency 1 cycle (``SyncFIFO``); the descriptor of a packet is readable the cycle after the
    beat completing its header was written. ``i_stream.ready`` is low only when a FIFO is full.
    """

    def __init__(self, data_width: int):
        self.data_width = data_width
        self.depth = beat_queue_depth(data_width)
        layout = payload_beat_layout(data_width)
        super().__init__(
            {
                "i_stream": In(stream.Signature(layout)),
                "beat": Out(stream.Signature(layout)),
                "desc": Out(stream.Signature(_desc_layout())),
            }
        )

    def elaborate(self, platform):
        m = Module()
        nb = self.data_width // 8
        lb = nb.bit_length() - 1
        i = self.i_stream
        beat = i.payload
        blay = payload_beat_layout(self.data_width)
        dlay = _desc_layout()
        m.submodules.beats = beats = SyncFIFO(width=blay.size, depth=self.depth)
        m.submodules.descs = descs = SyncFIFO(width=dlay.size, depth=4)
        xfer = i.valid & i.ready
        m.d.comb += i.ready.eq(beats.w_rdy & descs.w_rdy)

        def lane_of(off):
            lane = Signal(signed(18), name=f"lane{off}")
            m.d.comb += lane.eq(off - beat.offset)
            here = (lane >= 0) & (lane < nb) & beat.keep.bit_select(lane[:lb], 1)
            return lane, here

        hbytes = []
        for off in range(MOLD_HEADER_LENGTH):
            lane, here = lane_of(off)
            reg = Signal(8, name=f"h{off}")
            now = Signal(8, name=f"n{off}")
            byte = beat.data.word_select(lane[:lb], 8)
            m.d.comb += now.eq(Mux(here, byte, reg))
            with m.If(xfer & here):
                m.d.sync += reg.eq(byte)
            hbytes.append(now)

        def big(f):
            return Cat(*reversed(hbytes[f.offset : f.end]))

        _, done_here = lane_of(MOLD_HEADER_LENGTH - 1)
        got = Signal()  # this packet's descriptor was pushed
        with m.If(xfer):
            m.d.sync += got.eq(Mux(beat.last, 0, got | done_here))
        d = Signal(dlay)
        m.d.comb += [
            d.mold.eq(done_here & ~(beat.last & beat.error)),
            d.seq.eq(big(_F["sequence_number"])),
            d.count.eq(big(_F["message_count"])),
            d.sess.eq(Cat(*hbytes[_F["session"].offset : _F["session"].end])),
            beats.w_data.eq(beat.as_value()),
            beats.w_en.eq(xfer),
            descs.w_data.eq(d.as_value()),
            descs.w_en.eq(xfer & ~got & (done_here | beat.last)),
            self.beat.valid.eq(beats.r_rdy),
            self.beat.payload.eq(beats.r_data),
            beats.r_en.eq(self.beat.ready),
            self.desc.valid.eq(descs.r_rdy),
            self.desc.payload.eq(descs.r_data),
            descs.r_en.eq(self.desc.ready),
        ]
        return m


class LineArbiter(wiring.Component):
    """Merge two lines of one MoldUDP64 session by sequence number (see the module docstring).

    Parameters
    ----------
    data_width : int, keyword-only
        Beat width in bits (as :class:`hw.ethernet.FrameParser`).
    counter_width : int, keyword-only
        Counter width (default 32; wraps).

    Attributes
    ----------
    a_stream, b_stream : In(stream.Signature(hw.ethernet.payload_beat_layout(data_width)))
        The two lines' payload beats, as the frame parsers forward them.
    o_stream : Out(stream.Signature(hw.ethernet.payload_beat_layout(data_width)))
        The merged packets, whole and unchanged, for :class:`hw.moldudp.MoldUDP64`.
    config : In(arbiter_config_signature())
    expected : Out(64)
        The merged expected sequence number ``E`` (end of the furthest data packet forwarded).
    counters : Out(...)
        :data:`ARBITER_COUNTERS`.

    Notes
    -----
    Stages (issue 14 item 1; every register-to-register path within 6 logic levels,
    ``docs/ingress.md``): (1) **flags**: each line's head descriptor, read from the descriptor
    FIFO, is compared with ``E``, the session and the other head in 16-bit pieces (``seq > E``;
    ``seq + count <= E`` through a carry-save ``E + ~seq + ~count`` and a compare, without the
    64-bit sum; the end ``seq + count`` carry-select), registered; (2) **decision** from those
    registered flags: drop, forward or hold, ``E`` and the session updated by a forward (``E``
    <- the forwarded packet's end: a mux, no adder); (3) a line's own history (``line_x_filled``)
    two cycles after its decision, off the decision path. Flags are used only when they belong
    to the current head and the current ``E``: a new head waits one cycle for its flags, and
    every forward decision makes both lines wait one cycle (the flags are recomputed against
    the new ``E``). Counters count one cycle after the event (registered strobes into
    :func:`hw.counter.counter`).

    Latency: 2 cycles per beat (line FIFO, output register) once the packet is decided; a packet
    is decided 2 cycles after the beat completing its header is queued (descriptor FIFO, flags
    register; 1 cycle before the pipelining), so a message's last byte leaves one cycle later
    than with the unpipelined arbiter. Throughput: one beat per clock out; each line drains its
    duplicates at one beat per clock in parallel (a new head per line at most every other
    cycle); one idle output cycle between forwarded packets (absorbed by the Ethernet/IPv4/UDP
    header beats every frame has before its payload). Backpressure: ``o_stream.ready`` low
    holds the output register; the line being forwarded then fills its queue
    (``beat_queue_depth`` beats) and its ``ready`` drops; the other line keeps dropping
    duplicates and stops at its next packet to forward. A packet held past a gap stops its
    line the same way (the MAC side must buffer for up to ``timeout`` cycles).
    Limits: ``E`` assumes a forwarded packet delivers all ``count`` messages; one cut by a MAC
    error or truncation is not re-filled from the other line (MoldUDP64 flags the gap at the
    next packet). Sequence numbers are compared without wrap (2**64).
    """

    def __init__(self, *, data_width: int = 64, counter_width: int = 32):
        _check_width(data_width)
        _check_counter_width(counter_width)
        self.data_width = data_width
        layout = payload_beat_layout(data_width)
        super().__init__(
            {
                "a_stream": In(stream.Signature(layout)),
                "b_stream": In(stream.Signature(layout)),
                "o_stream": Out(stream.Signature(layout)),
                "config": In(arbiter_config_signature()),
                "expected": Out(64),
                "counters": Out(
                    wiring.Signature({n: Out(counter_width) for n in ARBITER_COUNTERS})
                ),
            }
        )

    def elaborate(self, platform):
        m = Module()
        cfg, o, cnt = self.config, self.o_stream, self.counters
        cw = len(cnt.line_timeouts)
        fronts = []
        for name, port in (("a", self.a_stream), ("b", self.b_stream)):
            f = _LineFront(self.data_width)
            m.submodules[f"front_{name}"] = f
            wiring.connect(m, wiring.flipped(port), f.i_stream)
            fronts.append(f)

        locked = Signal()  # a packet of the session was forwarded: E is valid
        learned = Signal()
        learned_sess = Signal(8 * MOLD_SESSION_WIDTH)
        E = Signal(_SEQ_W)
        m.d.comb += self.expected.eq(E)

        # per line: busy (a decided packet is being forwarded or dropped), fwd (forwarded)
        busy = [Signal(name=f"busy_{x}") for x in "ab"]
        fwd = [Signal(name=f"fwd_{x}") for x in "ab"]
        pick = [Signal(name="pick_a"), Signal(name="pick_b")]
        decide = [Signal(name=f"decide_{x}") for x in "ab"]
        picked = Signal()  # a forward decision this cycle: E, locked, the session may change

        # --- stage 1 (flags): each line's head descriptor (the FIFO's LUTRAM) against E, the
        # session and the other head, in 16-bit pieces; registered. They belong to the head
        # the next cycle when it stays (not consumed): fv; and are fresh (computed against the
        # current E) when no forward decision changed E this cycle. Stale flags may still drop
        # a duplicate (E only grows: a packet ending at or below the old E still does).
        fv = [Signal(name=f"fv_{x}") for x in "ab"]
        fresh = [Signal(name=f"fresh_{x}") for x in "ab"]
        r_mold = [Signal(name=f"r_mold_{x}") for x in "ab"]
        r_mt = [Signal(name=f"r_match_{x}") for x in "ab"]
        r_dt = [Signal(name=f"r_data_{x}") for x in "ab"]
        r_le = [Signal(name=f"r_le_{x}") for x in "ab"]  # seq + count <= E
        r_gt = [Signal(name=f"r_gt_{x}") for x in "ab"]  # seq > E
        r_end = [Signal(_SEQ_W + 1, name=f"r_end_{x}") for x in "ab"]  # seq + count
        r_blow = Signal()  # B's head sequence number below A's
        for k, (x, f) in enumerate(zip("ab", fronts, strict=True)):
            d = f.desc.payload
            # the session wanted: configured, else learned, else any (two compares in parallel)
            want = Mux(cfg.session_valid, all_ones(m, ~(d.sess ^ cfg.session), f"sc_{x}"),
                       ~learned | all_ones(m, ~(d.sess ^ learned_sess), f"sl_{x}"))
            # E - seq - count >= 0 without the 64-bit sum: carry-save E + ~seq + ~count into
            # x + 2y (v = 2y + 1 below)
            cnt64 = Cat(d.count, Const(0, _SEQ_W - _CNT_W))
            cx = Signal(_SEQ_W, name=f"csa_x_{x}")
            cy = Signal(_SEQ_W, name=f"csa_y_{x}")
            m.d.comb += [
                cx.eq(E ^ d.seq ^ cnt64),  # E ^ ~seq ^ ~count
                cy.eq((E & ~d.seq) | (E & ~cnt64) | (~d.seq & ~cnt64)),
            ]
            v = Cat(Const(1, 1), cy)  # 2y + 1
            m.d.sync += [
                fv[k].eq(f.desc.valid & ~decide[k]),
                fresh[k].eq(f.desc.valid & ~decide[k] & ~picked),
                r_mold[k].eq(d.mold),
                r_mt[k].eq(d.mold & want),
                r_dt[k].eq((d.count != 0) & (d.count != MOLD_END_OF_SESSION)),
                # E >= seq + count  <=>  x >= ~v  <=>  x + v + 1 carries out of 65 bits
                r_le[k].eq(carry_out(m, Cat(cx, Const(0, 1)), v, 1, f"le_{x}")),
                r_gt[k].eq(~ge(m, E, d.seq, f"ge_{x}")),
                r_end[k].eq(add_small(m, d.seq, d.count, f"end_{x}")),
            ]
        da, db = fronts[0].desc.payload, fronts[1].desc.payload
        m.d.sync += r_blow.eq(~ge(m, db.seq, da.seq, "blow"))

        # --- stage 2 (decision) from the registered flags
        head, drop, ahead, fwdable, le, endp = [], [], [], [], [], []
        for k, (x, f) in enumerate(zip("ab", fronts, strict=True)):
            present = Signal(name=f"head_{x}")
            m.d.comb += present.eq(f.desc.valid & ~busy[k] & fv[k])
            lk = Signal(name=f"le_{x}")  # the packet's end (seq for a non-data one) <= E
            ep = Signal(_SEQ_W + 1, name=f"endp_{x}")
            m.d.comb += [
                lk.eq(Mux(r_dt[k], r_le[k], ~r_gt[k])),
                ep.eq(Mux(r_dt[k], r_end[k], f.desc.payload.seq)),
            ]
            dr = Signal(name=f"drop_{x}")
            ah = Signal(name=f"ahead_{x}")
            fw = Signal(name=f"fwdable_{x}")
            mt, dt = r_mt[k], r_dt[k]
            m.d.comb += [
                dr.eq(present & (~r_mold[k] | (mt & locked & dt & r_le[k]))),
                ah.eq(present & r_mt[k] & locked & r_gt[k]),
                fw.eq(present & fresh[k] & ~dr & ~ah),
            ]
            af = Signal(name=f"held_{x}")  # ahead, by flags fresh against the current E
            m.d.comb += af.eq(ah & fresh[k])
            head.append(present)
            drop.append(dr)
            ahead.append(af)
            fwdable.append(fw)
            le.append(lk)
            endp.append(ep)

        b_lower = r_blow
        out_free = ~((busy[0] & fwd[0]) | (busy[1] & fwd[1]))
        # wait timer; `waited` (timer >= timeout) from registers: tz (timeout 0) or w
        timer = Signal(32)
        tz = Signal()
        tm1 = Signal(32)
        w = Signal()
        m.d.sync += [tz.eq(cfg.timeout == 0), tm1.eq(cfg.timeout - 1)]
        waited = tz | w
        by_timeout = Signal()
        with m.If(out_free):
            with m.If(fwdable[0] & fwdable[1]):
                m.d.comb += pick[1].eq(b_lower), pick[0].eq(~b_lower)
            with m.Elif(fwdable[0]):
                m.d.comb += pick[0].eq(1)
            with m.Elif(fwdable[1]):
                m.d.comb += pick[1].eq(1)
            with m.Elif(ahead[0] & ahead[1]):
                # both lines missed the gap: it is real
                m.d.comb += pick[1].eq(b_lower), pick[0].eq(~b_lower)
            with m.Elif(ahead[0] & waited):
                m.d.comb += pick[0].eq(1), by_timeout.eq(1)
            with m.Elif(ahead[1] & waited):
                m.d.comb += pick[1].eq(1), by_timeout.eq(1)
        m.d.comb += picked.eq(pick[0] | pick[1])

        # the wait timer runs while a held packet waits for the other line
        with m.If(picked | ~(ahead[0] | ahead[1])):
            m.d.sync += [timer.eq(0), w.eq(0)]
        with m.Elif(~waited):
            m.d.sync += [timer.eq(timer + 1), w.eq(timer >= tm1)]

        # counters: one-cycle registered strobes into split-carry counters
        strobes = {}

        def inc(name, cond):
            s = Signal(name=f"inc_{name}")
            m.d.sync += s.eq(cond)
            strobes[name] = s

        inc("line_timeouts", by_timeout)

        # E and the session after a forward decision (at most one line picks per cycle)
        with m.If((pick[0] & r_mt[0]) | (pick[1] & r_mt[1])):
            with m.If(~cfg.session_valid & ~learned):
                m.d.sync += [learned.eq(1), learned_sess.eq(
                    Mux(pick[1], fronts[1].desc.payload.sess, fronts[0].desc.payload.sess))]
        for k in range(2):
            with m.If(pick[k] & r_mt[k]):
                m.d.sync += locked.eq(1)
                with m.If(~locked | ~le[k]):
                    m.d.sync += E.eq(endp[k])

        # per-line decisions, queue reads and counters
        take = ~o.valid | o.ready
        for k, x in enumerate("ab"):
            f = fronts[k]
            d = f.desc.payload
            m.d.comb += decide[k].eq(drop[k] | pick[k])
            m.d.comb += f.desc.ready.eq(decide[k])
            with m.If(decide[k]):
                m.d.sync += [busy[k].eq(1), fwd[k].eq(pick[k])]
            inc(f"line_{x}_packets", decide[k])
            inc(f"line_{x}_duplicates", drop[k] & r_mold[k])
            # stage 3 (a line's own history, for line_x_filled; off the decision path): the
            # decided packet's seq/end against the end of the line's furthest packet
            p0v, p1v = Signal(name=f"p0v_{x}"), Signal(name=f"p1v_{x}")
            p0seq, p0end = Signal(_SEQ_W, name=f"p0seq_{x}"), Signal(_SEQ_W + 1, name=f"p0end_{x}")
            p0ine, p1ine = Signal(name=f"p0ine_{x}"), Signal(name=f"p1ine_{x}")
            p0lk, p1lk = Signal(name=f"p0lk_{x}"), Signal(name=f"p1lk_{x}")
            p1end = Signal(_SEQ_W + 1, name=f"p1end_{x}")
            p1sgt, p1egt = Signal(name=f"p1sgt_{x}"), Signal(name=f"p1egt_{x}")
            seen = Signal(name=f"seen_{x}")  # the line had a packet of the session
            lend = Signal(_SEQ_W + 1, name=f"lend_{x}")  # end of its furthest one
            m.d.sync += [
                p0v.eq(decide[k] & r_mt[k]),
                p0seq.eq(d.seq),
                p0end.eq(endp[k]),
                p0ine.eq(~r_gt[k]),  # seq <= E at the decision
                p0lk.eq(locked),
                p1v.eq(p0v),
                p1end.eq(p0end),
                p1ine.eq(p0ine),
                p1lk.eq(p0lk),
                p1sgt.eq(~ge(m, lend, p0seq, f"sgt_{x}")),
                p1egt.eq(~ge(m, lend, p0end, f"egt_{x}")),
            ]
            with m.If(p1v):
                m.d.sync += seen.eq(1)
                with m.If(~seen | p1egt):
                    m.d.sync += lend.eq(p1end)
            # a gap of this line, already covered by the other one
            inc(f"line_{x}_filled", p1v & seen & p1lk & p1sgt & p1ine)
            rd = Signal(name=f"read_{x}")
            m.d.comb += [
                rd.eq(busy[k] & f.beat.valid & (~fwd[k] | take)),
                f.beat.ready.eq(rd),
            ]
            with m.If(rd & f.beat.payload.last):
                m.d.sync += busy[k].eq(0)
        for name in ARBITER_COUNTERS:
            m.d.comb += getattr(cnt, name).eq(counter(m, cw, en=strobes[name], name=f"c_{name}"))

        # output register, from the line being forwarded
        src = Mux(busy[1] & fwd[1], fronts[1].beat.payload.as_value(),
                  fronts[0].beat.payload.as_value())
        load = ((busy[0] & fwd[0] & fronts[0].beat.valid)
                | (busy[1] & fwd[1] & fronts[1].beat.valid)) & take
        with m.If(load):
            m.d.sync += [o.valid.eq(1), o.payload.eq(src)]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m
