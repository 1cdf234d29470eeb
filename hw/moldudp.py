"""MoldUDP64 header parser and sequence tracker (one registered stage).

Takes the UDP payload beats of :class:`hw.ethernet.FrameParser`, reads the 20-byte downstream
header (session, sequence number, message count; offsets from :data:`host.feed.spec.MOLD_HEADER`),
filters the session, tracks the expected sequence number and hands the message-block area on
with the per-packet decision attached to every beat, for :class:`hw.framer.Framer`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from host.feed.spec import MOLD_END_OF_SESSION, MOLD_HEADER, MOLD_HEADER_LENGTH, MOLD_SESSION_WIDTH
from hw.ethernet import _check_counter_width, _check_width, payload_beat_layout

__all__ = [
    "block_beat_layout",
    "MoldUDP64",
    "MOLD_COUNTERS",
    "mold_config_signature",
    "mold_status_signature",
]

MOLD_COUNTERS: tuple[str, ...] = (
    "packets",
    "heartbeats",
    "end_of_session",
    "session_mismatch",
    "gaps",
    "missing",
    "duplicates",
)
"""Counters of :class:`MoldUDP64` (names as in ``hw.regs.INGRESS_COUNTERS``)."""

_F = {f.name: f for f in MOLD_HEADER}


def block_beat_layout(data_width: int = 64) -> data.StructLayout:
    """A payload beat with the MoldUDP64 decision of its packet attached.

    ``keep`` marks the lanes of the message-block area (payload bytes after the header);
    ``offset`` is the block-area byte index of lane 0 (negative inside the header). The packet
    fields (``active``: a data packet of the right session to frame; ``seq``/``count`` from the
    header; ``skip``: leading blocks already seen) are valid on every beat from the one that
    completes the header; ``hdr`` marks that beat and ``gap`` (with ``hdr``) says the header
    opened a sequence gap. ``first``/``last``/``error``/``rx_ns`` as in
    :func:`hw.ethernet.payload_beat_layout`.
    """
    nb = data_width // 8
    return data.StructLayout(
        {
            "data": unsigned(data_width),
            "keep": unsigned(nb),
            "offset": signed(16),
            "first": unsigned(1),
            "last": unsigned(1),
            "error": unsigned(1),
            "active": unsigned(1),
            "hdr": unsigned(1),
            "gap": unsigned(1),
            "seq": unsigned(64),
            "count": unsigned(16),
            "skip": unsigned(16),
            "rx_ns": unsigned(64),
        }
    )


def mold_config_signature() -> wiring.Signature:
    """``session`` (10 bytes, byte 0 in bits 7:0) and ``session_valid`` (1: accept only that
    session; 0: learn the session from the first packet)."""
    return wiring.Signature({"session": Out(8 * MOLD_SESSION_WIDTH), "session_valid": Out(1)})


def mold_status_signature() -> wiring.Signature:
    """Live status: ``session_locked``, ``expected_seq``, the last gap (``last_gap_first``,
    ``last_gap_count``) and one-cycle event pulses ``ev_gap``, ``ev_end_of_session``."""
    return wiring.Signature(
        {
            "session_locked": Out(1),
            "expected_seq": Out(64),
            "last_gap_first": Out(64),
            "last_gap_count": Out(64),
            "ev_gap": Out(1),
            "ev_end_of_session": Out(1),
        }
    )


class MoldUDP64(wiring.Component):
    """MoldUDP64 downstream header parser and sequence tracker.

    Parameters
    ----------
    data_width : int, keyword-only
        Beat width in bits (as the frame parser).
    counter_width : int, keyword-only
        Counter width (default 32; wraps).

    Attributes
    ----------
    i_stream : In(stream.Signature(hw.ethernet.payload_beat_layout(data_width)))
    o_stream : Out(stream.Signature(block_beat_layout(data_width)))
    config : In(mold_config_signature())
    status : Out(mold_status_signature())
    commit, commit_seq : In(1), In(64)
        From the framer: a message with sequence number ``commit_seq`` was handed to the
        decoder this cycle (the expected sequence number becomes ``commit_seq + 1``).
    counters : Out(...)
        ``packets`` (accepted headers), ``heartbeats``, ``end_of_session``,
        ``session_mismatch``, ``gaps``, ``missing``, ``duplicates`` (blocks skipped as
        already seen, counted at the header).

    Notes
    -----
    Latency: 1 cycle (output register). Throughput one beat per clock. Backpressure:
    ``i_stream.ready = ~o_stream.valid | o_stream.ready``. The header is taken from the beat
    that completes it (its fields are muxed from that beat's lanes and earlier captures), so
    its decision travels in the same output beat. A header completed in the final beat of a
    frame the MAC flagged has no effect (cut-through error rule).
    """

    def __init__(self, *, data_width: int = 64, counter_width: int = 32):
        _check_width(data_width)
        _check_counter_width(counter_width)
        self.data_width = data_width
        super().__init__(
            {
                "i_stream": In(stream.Signature(payload_beat_layout(data_width))),
                "o_stream": Out(stream.Signature(block_beat_layout(data_width))),
                "config": In(mold_config_signature()),
                "status": Out(mold_status_signature()),
                "commit": In(1),
                "commit_seq": In(64),
                "counters": Out(wiring.Signature({n: Out(counter_width) for n in MOLD_COUNTERS})),
            }
        )

    def elaborate(self, platform):
        m = Module()
        nb = self.data_width // 8
        lb = nb.bit_length() - 1
        i, o, cfg, st, cnt = self.i_stream, self.o_stream, self.config, self.status, self.counters
        beat = i.payload
        xfer = i.valid & i.ready

        def lane_of(off):
            lane = Signal(signed(18), name=f"lane{off}")
            m.d.comb += lane.eq(off - beat.offset)
            here = (lane >= 0) & (lane < nb) & beat.keep.bit_select(lane[:lb], 1)
            return lane, here

        hbytes = []
        for off in range(MOLD_HEADER_LENGTH):
            lane, here = lane_of(off)
            reg = Signal(8, name=f"mh{off}")
            now = Signal(8, name=f"mn{off}")
            byte = beat.data.word_select(lane[:lb], 8)
            m.d.comb += now.eq(Mux(here, byte, reg))
            with m.If(xfer & here):
                m.d.sync += reg.eq(byte)
            hbytes.append(now)

        def big(f):
            return Cat(*reversed(hbytes[f.offset : f.end]))

        sess = Cat(*hbytes[_F["session"].offset : _F["session"].end])
        seq = big(_F["sequence_number"])
        count = big(_F["message_count"])
        _, done_here = lane_of(MOLD_HEADER_LENGTH - 1)
        proc = Signal()
        m.d.comb += proc.eq(done_here & ~(beat.last & beat.error))

        # tracker state
        learned = Signal()
        learned_sess = Signal(8 * MOLD_SESSION_WIDTH)
        locked = Signal()
        seq_locked = Signal()
        expected = Signal(64)
        last_gap_first = Signal(64)
        last_gap_count = Signal(64)
        m.d.comb += [
            st.session_locked.eq(locked),
            st.expected_seq.eq(expected),
            st.last_gap_first.eq(last_gap_first),
            st.last_gap_count.eq(last_gap_count),
        ]
        exp_cur = Signal(64)
        m.d.comb += exp_cur.eq(Mux(self.commit, self.commit_seq + 1, expected))
        with m.If(self.commit):
            m.d.sync += expected.eq(self.commit_seq + 1)

        want = Mux(cfg.session_valid, cfg.session, Mux(learned, learned_sess, sess))
        match = sess == want
        exp0 = Mux(seq_locked, exp_cur, seq)
        gapd = seq > exp0
        diff = Signal(64)
        m.d.comb += diff.eq(exp0 - seq)
        skip = Signal(16)
        m.d.comb += skip.eq(Mux(gapd, 0, Mux(diff > count, count, diff)))
        is_hb = count == 0
        is_eos = count == MOLD_END_OF_SESSION
        is_data = ~is_hb & ~is_eos

        # per-packet decision, attached to every beat from the header on
        p_active = Signal()
        p_seq = Signal(64)
        p_count = Signal(16)
        p_skip = Signal(16)
        n_active = Signal()
        n_seq = Signal(64)
        n_count = Signal(16)
        n_skip = Signal(16)
        with m.If(proc):
            m.d.comb += [
                n_active.eq(match & is_data),
                n_seq.eq(seq),
                n_count.eq(count),
                n_skip.eq(skip),
            ]
        with m.Else():
            m.d.comb += [
                n_active.eq(Mux(beat.first, 0, p_active)),
                n_seq.eq(p_seq),
                n_count.eq(p_count),
                n_skip.eq(p_skip),
            ]

        def inc(name, by=1):
            c = getattr(cnt, name)
            m.d.sync += c.eq(c + by)

        m.d.sync += [st.ev_gap.eq(0), st.ev_end_of_session.eq(0)]
        with m.If(xfer):
            m.d.sync += [
                p_active.eq(n_active),
                p_seq.eq(n_seq),
                p_count.eq(n_count),
                p_skip.eq(n_skip),
            ]
            with m.If(proc):
                with m.If(~match):
                    inc("session_mismatch")
                with m.Else():
                    m.d.sync += [locked.eq(1), seq_locked.eq(1)]
                    with m.If(~cfg.session_valid & ~learned):
                        m.d.sync += [learned.eq(1), learned_sess.eq(sess)]
                    inc("packets")
                    with m.If(is_hb):
                        inc("heartbeats")
                    with m.If(is_eos):
                        inc("end_of_session")
                        m.d.sync += st.ev_end_of_session.eq(1)
                    with m.If(gapd):
                        inc("gaps")
                        inc("missing", seq - exp0)
                        m.d.sync += [
                            last_gap_first.eq(exp0),
                            last_gap_count.eq(seq - exp0),
                            expected.eq(seq),
                            st.ev_gap.eq(1),
                        ]
                    with m.Else():
                        m.d.sync += expected.eq(exp0)
                    with m.If(is_data):
                        inc("duplicates", skip)

        # output register
        keep = Signal(nb)
        for j in range(nb):
            m.d.comb += keep[j].eq(beat.keep[j] & (beat.offset + j >= MOLD_HEADER_LENGTH))
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(xfer):
            m.d.sync += [
                o.valid.eq(1),
                o.payload.data.eq(beat.data),
                o.payload.keep.eq(keep),
                o.payload.offset.eq(beat.offset - MOLD_HEADER_LENGTH),
                o.payload.first.eq(beat.first),
                o.payload.last.eq(beat.last),
                o.payload.error.eq(beat.error),
                o.payload.active.eq(n_active),
                o.payload.hdr.eq(proc & match),
                o.payload.gap.eq(proc & match & gapd),
                o.payload.seq.eq(n_seq),
                o.payload.count.eq(n_count),
                o.payload.skip.eq(n_skip),
                o.payload.rx_ns.eq(beat.rx_ns),
            ]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m
