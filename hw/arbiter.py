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

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from host.feed.spec import MOLD_END_OF_SESSION, MOLD_HEADER, MOLD_HEADER_LENGTH, MOLD_SESSION_WIDTH
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
    parser's first beat holds the UDP header's end, so at most ``ceil(20 / nb) + 1``) plus two,
    so the header always completes before the queue is full."""
    nb = data_width // 8
    return -(-MOLD_HEADER_LENGTH // nb) + 3


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
    Latency: 2 cycles per beat (line FIFO, output register) once the packet is decided; a packet
    is decided the cycle after the beat completing its header is queued (the beats before it
    carry no message byte), so a message's last byte leaves 2 cycles after it arrived when its
    packet is not held. Throughput: one beat per clock out; each line drains its duplicates at
    one beat per clock in parallel; one idle output cycle between forwarded packets (absorbed by
    the Ethernet/IPv4/UDP header beats every frame has before its payload). Backpressure:
    ``o_stream.ready`` low holds the output register; the line being forwarded then fills its
    queue (``beat_queue_depth`` beats) and its ``ready`` drops; the other line keeps dropping
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
        timer = Signal(32)
        m.d.comb += self.expected.eq(E)

        # per line: busy (a decided packet is being forwarded or dropped), fwd (forwarded)
        busy = [Signal(name=f"busy_{x}") for x in "ab"]
        fwd = [Signal(name=f"fwd_{x}") for x in "ab"]
        seen = [Signal(name=f"seen_{x}") for x in "ab"]  # the line had a packet of the session
        lend = [Signal(_SEQ_W + 1, name=f"lend_{x}") for x in "ab"]  # end of its furthest one

        head, drop, ahead, fwdable, endp, match, data = [], [], [], [], [], [], []
        for x, f in zip("ab", fronts, strict=True):
            d = f.desc.payload
            present = Signal(name=f"head_{x}")
            m.d.comb += present.eq(f.desc.valid & ~busy["ab".index(x)])
            want = Mux(cfg.session_valid, cfg.session, Mux(learned, learned_sess, d.sess))
            mt = Signal(name=f"match_{x}")
            dt = Signal(name=f"data_{x}")
            ep = Signal(_SEQ_W + 1, name=f"end_{x}")
            m.d.comb += [
                mt.eq(d.mold & (d.sess == want)),
                dt.eq((d.count != 0) & (d.count != MOLD_END_OF_SESSION)),
                ep.eq(d.seq + Mux(dt, d.count, 0)),
            ]
            dr = Signal(name=f"drop_{x}")
            ah = Signal(name=f"ahead_{x}")
            fw = Signal(name=f"fwdable_{x}")
            m.d.comb += [
                dr.eq(present & (~d.mold | (mt & locked & dt & (ep <= E)))),
                ah.eq(present & mt & locked & (d.seq > E)),
                fw.eq(present & ~dr & ~ah),
            ]
            head.append(present)
            drop.append(dr)
            ahead.append(ah)
            fwdable.append(fw)
            endp.append(ep)
            match.append(mt)
            data.append(dt)

        da, db = fronts[0].desc.payload, fronts[1].desc.payload
        b_lower = db.seq < da.seq
        out_free = ~((busy[0] & fwd[0]) | (busy[1] & fwd[1]))
        waited = timer >= cfg.timeout
        pick = [Signal(name="pick_a"), Signal(name="pick_b")]
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

        # the wait timer runs while a held packet waits for the other line
        with m.If(pick[0] | pick[1] | ~(ahead[0] | ahead[1])):
            m.d.sync += timer.eq(0)
        with m.Elif(~waited):
            m.d.sync += timer.eq(timer + 1)

        def inc(name):
            c = getattr(cnt, name)
            m.d.sync += c.eq(c + 1)

        with m.If(by_timeout):
            inc("line_timeouts")

        # E and the session after a forward decision (at most one line picks per cycle)
        for k in range(2):
            d = fronts[k].desc.payload
            with m.If(pick[k] & match[k]):
                m.d.sync += locked.eq(1)
                with m.If(~cfg.session_valid & ~learned):
                    m.d.sync += [learned.eq(1), learned_sess.eq(d.sess)]
                with m.If(~locked | (endp[k] > E)):
                    m.d.sync += E.eq(endp[k])

        # per-line decisions, queue reads and counters
        take = ~o.valid | o.ready
        for k, x in enumerate("ab"):
            f = fronts[k]
            d = f.desc.payload
            decide = Signal(name=f"decide_{x}")
            m.d.comb += decide.eq(drop[k] | pick[k])
            m.d.comb += f.desc.ready.eq(decide)
            with m.If(decide):
                m.d.sync += [busy[k].eq(1), fwd[k].eq(pick[k])]
                inc(f"line_{x}_packets")
                with m.If(drop[k] & d.mold):
                    inc(f"line_{x}_duplicates")
                with m.If(match[k]):
                    m.d.sync += seen[k].eq(1)
                    with m.If(~seen[k] | (endp[k] > lend[k])):
                        m.d.sync += lend[k].eq(endp[k])
                    # a gap of this line, already covered by the other one
                    with m.If(seen[k] & locked & (d.seq > lend[k]) & (d.seq <= E)):
                        inc(f"line_{x}_filled")
            rd = Signal(name=f"read_{x}")
            m.d.comb += [
                rd.eq(busy[k] & f.beat.valid & (~fwd[k] | take)),
                f.beat.ready.eq(rd),
            ]
            with m.If(rd & f.beat.payload.last):
                m.d.sync += busy[k].eq(0)

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
