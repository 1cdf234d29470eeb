"""MoldUDP64 message framer: block-area beats in, whole messages out (cut-through).

Walks the 2-byte length / message blocks of a packet in place (no realignment): each message
byte is written straight from its beat lane into a :data:`host.feed.spec.MAX_MESSAGE_LENGTH`-byte
message register, and the message leaves in the very cycle its last byte is on the input.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from host.feed.spec import MAX_MESSAGE_LENGTH, MOLD_BLOCK_LENGTH_WIDTH
from hw.decoder import message_layout
from hw.ethernet import _check_counter_width, _check_width
from hw.moldudp import block_beat_layout

__all__ = ["Framer", "FRAMER_COUNTERS"]

FRAMER_COUNTERS: tuple[str, ...] = ("truncated",)
"""Counters of :class:`Framer` (names as in ``hw.regs.INGRESS_COUNTERS``)."""

assert MOLD_BLOCK_LENGTH_WIDTH == 2


class Framer(wiring.Component):
    """Message framer.

    Parameters
    ----------
    data_width : int, keyword-only
        Beat width in bits.
    counter_width : int, keyword-only
        Counter width (default 32; wraps).

    Attributes
    ----------
    i_stream : In(stream.Signature(hw.moldudp.block_beat_layout(data_width)))
    o_stream : Out(stream.Signature(hw.decoder.message_layout()))
        One message per completed block ``k`` of an active packet with ``skip <= k <
        count``; ``seq = seq + k``; ``gap`` on the first message after a gap.
    commit, commit_seq : Out(1), Out(64)
        A message was handed on this cycle (to the sequence tracker).
    counters : Out(...)
        ``truncated``: packets whose frame ended before ``count`` complete blocks.

    Notes
    -----
    Combinational: latency 0 cycles (the message is driven in the cycle whose beat holds its
    last byte; state registers update on the transfer). Throughput: one beat per clock while
    at most one block ends per beat, which holds for every block of 8 or more bytes at
    64-bit beats (every ITCH message: the shortest block is 2 + 12 bytes). A beat in which
    ``n > 1`` blocks end (blocks shorter than the beat: only malformed or unknown messages)
    is held for ``n`` cycles, one message per cycle. Backpressure: a beat that completes a
    message waits for ``o_stream.ready``; other beats pass. A MAC error (``last & error``)
    drops every block ending in that beat and the truncation check.
    """

    def __init__(self, *, data_width: int = 64, counter_width: int = 32):
        _check_width(data_width)
        _check_counter_width(counter_width)
        self.data_width = data_width
        super().__init__(
            {
                "i_stream": In(stream.Signature(block_beat_layout(data_width))),
                "o_stream": Out(stream.Signature(message_layout())),
                "commit": Out(1),
                "commit_seq": Out(64),
                "counters": Out(wiring.Signature({n: Out(counter_width) for n in FRAMER_COUNTERS})),
            }
        )

    def elaborate(self, platform):
        m = Module()
        nb = self.data_width // 8
        lb = nb.bit_length() - 1
        ml = MAX_MESSAGE_LENGTH
        i, o, cnt = self.i_stream, self.o_stream, self.counters
        beat = i.payload

        # state (per packet)
        bs = Signal(16)  # block-area offset of the current block's length field
        k = Signal(16)  # index of the current block
        len_hi = Signal(8)
        len_lo = Signal(8)
        have_hi = Signal()
        have_lo = Signal()
        buf = Signal(8 * ml)
        pending = Signal()  # a gap waits for the next message
        hold = Signal()  # re-processing a beat held for a second block end

        fresh = beat.first & ~hold
        c_bs = Mux(fresh, 0, bs)
        c_k = Mux(fresh, 0, k)
        c_have_hi = Mux(fresh, 0, have_hi)
        c_have_lo = Mux(fresh, 0, have_lo)
        c_pending = pending | (beat.hdr & beat.gap & ~hold)

        def at(off, name):
            """(lane, here, byte) of block-area offset ``off`` in this beat."""
            lane = Signal(signed(19), name=f"{name}_lane")
            m.d.comb += lane.eq(off - beat.offset)
            here = Signal(name=f"{name}_here")
            m.d.comb += here.eq((lane >= 0) & (lane < nb) & beat.keep.bit_select(lane[:lb], 1))
            return lane, here, beat.data.word_select(lane[:lb], 8)

        def walk(start, have_h, have_l, reg_h, reg_l, name):
            """Length and last-byte position of the block whose length field is at ``start``."""
            _, h_here, h_byte = at(start, f"{name}_h")
            _, l_here, l_byte = at(start + 1, f"{name}_l")
            lh = Mux(have_h, reg_h, h_byte)
            ll = Mux(have_l, reg_l, l_byte)
            known = (have_h | h_here) & (have_l | l_here)
            length = Signal(16, name=f"{name}_len")
            m.d.comb += length.eq(Cat(ll, lh))
            last_off = Signal(18, name=f"{name}_lastoff")
            m.d.comb += last_off.eq(start + 1 + length)
            _, e_here, _ = at(last_off, f"{name}_e")
            ends = Signal(name=f"{name}_ends")
            m.d.comb += ends.eq(known & e_here)
            return length, last_off, ends, (h_here, h_byte, l_here, l_byte)

        def place(start, name):
            """Message bytes of a block starting at ``start`` placed from this beat."""
            d = Signal(signed(19), name=f"{name}_d")
            m.d.comb += d.eq(start + 2 - beat.offset)  # lane of message byte 0
            hits = []
            bytes_ = []
            for idx in range(ml):
                lane = d + idx
                hits.append((lane >= 0) & (lane < nb))
                bytes_.append(beat.data.word_select(lane[:lb], 8))
            return hits, bytes_

        length, last_off, ends, (h_here, h_byte, l_here, l_byte) = walk(
            c_bs, c_have_hi, c_have_lo, len_hi, len_lo, "cur"
        )
        hits, bytes_ = place(c_bs, "cur")
        merged = Signal(8 * ml)
        for idx in range(ml):
            m.d.comb += merged[8 * idx : 8 * idx + 8].eq(
                Mux(hits[idx], bytes_[idx], buf[8 * idx : 8 * idx + 8])
            )

        suppress = beat.last & beat.error
        in_count = c_k < beat.count
        completes = Signal()
        m.d.comb += completes.eq(beat.active & in_count & ends & ~suppress)
        emit = Signal()
        m.d.comb += emit.eq(completes & (c_k >= beat.skip))

        # the next block, when this one ends here: does it end in this beat too?
        nbs = Signal(16)
        m.d.comb += nbs.eq(last_off + 1)
        _, _, n_ends, (nh_here, nh_byte, nl_here, nl_byte) = walk(nbs, 0, 0, 0, 0, "nxt")
        n_hits, n_bytes = place(nbs, "nxt")
        more = Signal()
        m.d.comb += more.eq(completes & n_ends & (c_k + 1 < beat.count))

        seq = Signal(64)
        m.d.comb += seq.eq(beat.seq + c_k)
        m.d.comb += [
            o.valid.eq(i.valid & emit),
            o.payload.data.eq(merged),
            o.payload.length.eq(length),
            o.payload.seq.eq(seq),
            o.payload.gap.eq(c_pending),
            o.payload.rx_ns.eq(beat.rx_ns),
            i.ready.eq((~emit | o.ready) & ~more),
        ]
        step = Signal()  # the state machine moves this cycle
        m.d.comb += step.eq(i.valid & (~emit | o.ready))
        m.d.comb += [self.commit.eq(i.valid & emit & o.ready), self.commit_seq.eq(seq)]

        with m.If(step):
            m.d.sync += pending.eq(c_pending & ~emit)
            with m.If(completes):
                # move to the next block; capture what of it is in this beat
                m.d.sync += [bs.eq(nbs), k.eq(c_k + 1)]
                m.d.sync += [
                    have_hi.eq(nh_here),
                    have_lo.eq(nl_here),
                    len_hi.eq(nh_byte),
                    len_lo.eq(nl_byte),
                ]
                for idx in range(ml):
                    with m.If(n_hits[idx]):
                        m.d.sync += buf[8 * idx : 8 * idx + 8].eq(n_bytes[idx])
            with m.Else():
                m.d.sync += [bs.eq(c_bs), k.eq(c_k), buf.eq(merged)]
                m.d.sync += [have_hi.eq(c_have_hi | h_here), have_lo.eq(c_have_lo | l_here)]
                with m.If(~c_have_hi & h_here):
                    m.d.sync += len_hi.eq(h_byte)
                with m.If(~c_have_lo & l_here):
                    m.d.sync += len_lo.eq(l_byte)
            m.d.sync += hold.eq(more)
            with m.If(beat.last & ~more):
                k_after = Mux(completes, c_k + 1, c_k)
                with m.If(beat.active & ~suppress & (k_after < beat.count)):
                    m.d.sync += cnt.truncated.eq(cnt.truncated + 1)
        return m
