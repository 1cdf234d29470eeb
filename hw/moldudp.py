"""MoldUDP64 header parser and sequence tracker (three registered stages).

Takes the UDP payload beats of :class:`hw.ethernet.FrameParser`, reads the 20-byte downstream
header (session, sequence number, message count; offsets from :data:`host.feed.spec.MOLD_HEADER`),
filters the session, tracks the expected sequence number and hands the message-block area on
with the per-packet decision attached to every beat, for :class:`hw.framer.Framer`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from host.feed.spec import MOLD_END_OF_SESSION, MOLD_HEADER, MOLD_HEADER_LENGTH, MOLD_SESSION_WIDTH
from hw.arith import CHUNK, all_ones, piece_eq
from hw.counter import counter
from hw.ethernet import _check_counter_width, _check_width, payload_beat_layout

__all__ = [
    "block_beat_layout",
    "block_ends",
    "MoldUDP64",
    "MOLD_COUNTERS",
    "mold_config_signature",
    "mold_status_signature",
    "LATENCY",
    "EVENT_LAG",
    "GAP_LAG",
]

LATENCY = 3
"""Cycles from a beat accepted on ``i_stream`` to the beat valid on ``o_stream`` (stages A, B and
the output register)."""
EVENT_LAG = 2
"""Cycles from a header's decision (the cycle its beat enters the output register) to the
``packets`` ... ``duplicates`` counters showing it (1 in the one-stage block), plus
:func:`hw.counter.counter_lag`."""
GAP_LAG = 3
"""Cycles from a gap's decision to ``gaps``, ``missing``, ``last_gap_*`` and ``ev_gap`` showing
it (1 in the one-stage block), plus :func:`hw.counter.counter_lag` for the counters."""

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
    :func:`hw.ethernet.payload_beat_layout`. ``ends`` (a predecode for the framer, on every
    beat): bit ``j`` says that a 2-byte block length whose low byte is at lane ``j`` (its high
    byte at lane ``j - 1``, or at lane ``nb - 1`` of the previous beat for ``j = 0``) is below
    ``nb - j``: a block starting there ends in this beat. ``fin`` / ``fnext``: the block
    area's byte 1 (block 0's length low byte) is in this beat / the next one (``2 - nb <=
    offset <= 1`` / ``2 - 2 nb <= offset <= 1 - nb``); ``cnz`` / ``cgt1``: ``count != 0`` /
    ``count > 1`` (valid with ``count``).
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
            "ends": unsigned(nb),
            "fin": unsigned(1),
            "fnext": unsigned(1),
            "cnz": unsigned(1),
            "cgt1": unsigned(1),
        }
    )


def block_ends(data, prev_last, nb):
    """The ``ends`` predecode of :func:`block_beat_layout` from a beat's ``data`` and the
    previous beat's last byte ``prev_last``: Amaranth values (a list of bits), or ints (an int,
    for benches and checks)."""
    if isinstance(data, int):
        lanes = [prev_last] + [(data >> 8 * j) & 0xFF for j in range(nb)]
        return sum(int(lanes[j] == 0 and lanes[j + 1] < nb - j) << j for j in range(nb))
    lanes = [prev_last] + [data[8 * j : 8 * j + 8] for j in range(nb)]
    return [(lanes[j] == 0) & (lanes[j + 1] < nb - j) for j in range(nb)]


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
    commit, commit_next : In(1), In(64)
        From the framer: a message was handed to the decoder this cycle; the expected sequence
        number becomes ``commit_next`` (its sequence number + 1, a framer register).
    counters : Out(...)
        ``packets`` (accepted headers), ``heartbeats``, ``end_of_session``,
        ``session_mismatch``, ``gaps``, ``missing``, ``duplicates`` (blocks skipped as
        already seen, counted at the header).

    Notes
    -----
    Three registered stages (docs/ingress.md): A takes the beat and, per header byte, its
    lane (selected by the beat's offset: equality compares with constants, no adder) into the
    header byte registers; B reads the header fields from those registers and precomputes
    ``seq + count`` (16-bit chunks, carry select) and the session compares; the output register
    takes the decision, from B's registers, the expected number register and the framer's
    commit of this cycle (64-bit compares in 16-bit chunks).

    Latency: 3 cycles (beat accepted -> the beat valid on ``o_stream``). Throughput one beat
    per clock. Backpressure: a skid register behind the output register takes B's beat when
    the output register is full and not read, and the three stages move together while it is
    empty: ``i_stream.ready`` is a function of registers (``~s_valid``, and a header waiting,
    below), not of ``o_stream.ready``, so the framer's hold decision does not reach the stages
    or the frame parser. The decision of a header is taken in the cycle its beat leaves stage
    B (into either register). A header waits in B while the output register holds its
    packet's first beat, so when it completes in a packet's second beat or later (every 64- and
    128-bit stream) the framer has taken the packet's previous beats but the last one, hence
    committed every message of the previous packet (in that cycle, counted first, or
    earlier). The wait costs a cycle per packet only where a header completes in its packet's
    second beat (128-bit beats); never at 64 bits, where it completes in the third beat or
    later. A header in a packet's first beat (256/512-bit beats) has no such guarantee
    (docs/ingress.md, Known limitations).
    ``expected_seq`` and ``session_locked`` move at the decision (as the one-stage block did);
    ``ev_end_of_session`` pulses the cycle after it; ``packets``, ``heartbeats``,
    ``end_of_session``, ``session_mismatch`` and ``duplicates`` move :data:`EVENT_LAG` cycles
    after the decision and ``gaps``, ``missing``, ``last_gap_first``, ``last_gap_count`` and
    ``ev_gap`` :data:`GAP_LAG` cycles after it (one more for counters wider than
    :data:`hw.counter.LOW_BITS` bits). A header completed in the final beat of a frame
    the MAC flagged has no effect (cut-through error rule).
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
                "commit_next": In(64),
                "counters": Out(wiring.Signature({n: Out(counter_width) for n in MOLD_COUNTERS})),
            }
        )

    def elaborate(self, platform):
        m = Module()
        nb = self.data_width // 8
        lb = nb.bit_length() - 1
        hl = MOLD_HEADER_LENGTH
        i, o, cfg, st, cnt = self.i_stream, self.o_stream, self.config, self.status, self.counters
        cw = len(cnt.packets)
        beat = i.payload
        # The three stages move when the skid register behind the output register is empty
        # (and no header waits for the packet's first beat, below): registers only, so the
        # framer's hold decision (its ``i_stream.ready``) stops at the output and skid
        # registers instead of running on into the stages and the frame parser.
        adv = Signal()
        s_valid = Signal()  # the skid register holds a beat (the output register is full)
        o_free = Signal()  # the output register is empty or read this cycle
        m.d.comb += o_free.eq(~o.valid | o.ready)
        m.d.comb += i.ready.eq(adv)
        xfer = i.valid & adv

        # --- stage A: the beat, and the header bytes it holds into their registers ----------
        # Byte k of the payload is in this beat at lane k - offset. With offset = nb*q + r and
        # k = nb*a + c: in the beat when q == a (r <= c) or q == a - 1 (r > c), at lane
        # (c - r) mod nb. So the lane is a mux of the beat rotated by a constant, selected by
        # the offset's low bits, and "in the beat" two equality compares with constants.
        r = beat.offset[:lb]
        q = beat.offset[lb:]
        qmask = (1 << len(q)) - 1
        hb = []  # header byte registers: the header as of the beat in stage A
        here_last = None
        for k in range(hl):
            a, c = divmod(k, nb)
            r_gt_c = Cat(*[r == x for x in range(c + 1, nb)]).any() if c < nb - 1 else Const(0)
            in_beat = Mux(r_gt_c, q == ((a - 1) & qmask), q == (a & qmask))
            keep_rot = Cat(*[beat.keep[(c - x) % nb] for x in range(nb)])
            data_rot = Cat(*[beat.data[8 * ((c - x) % nb) : 8 * ((c - x) % nb) + 8]
                             for x in range(nb)])
            here = Signal(name=f"here{k}")
            m.d.comb += here.eq(in_beat & keep_rot.bit_select(r, 1))
            reg = Signal(8, name=f"mh{k}")
            with m.If(xfer & here):
                m.d.sync += reg.eq(data_rot.word_select(r, 8))
            hb.append(reg)
            here_last = here
        a_valid = Signal()
        a_proc = Signal()  # the header completes in A's beat
        a_data = Signal(self.data_width)
        a_keep = Signal(nb)
        a_offset = Signal(signed(16))
        a_first = Signal()
        a_last = Signal()
        a_error = Signal()
        a_rx_ns = Signal(64)
        a_prev = Signal(8)  # the last byte of the beat before A's (``ends`` of lane 0)
        with m.If(adv & a_valid):
            m.d.sync += a_prev.eq(a_data[-8:])
        with m.If(adv):
            m.d.sync += [
                a_valid.eq(i.valid),
                a_proc.eq(here_last & ~(beat.last & beat.error)),
                a_data.eq(beat.data),
                a_keep.eq(Cat(*[beat.keep[j] & (beat.offset >= hl - j) for j in range(nb)])),
                a_offset.eq(beat.offset - hl),
                a_first.eq(beat.first),
                a_last.eq(beat.last),
                a_error.eq(beat.error),
                a_rx_ns.eq(beat.rx_ns),
            ]

        # --- stage B: header fields from registers; seq + count; session compares ----------
        def big(f):
            return Cat(*reversed(hb[f.offset : f.end]))

        sess = Cat(*hb[_F["session"].offset : _F["session"].end])
        seq = big(_F["sequence_number"])
        count = big(_F["message_count"])
        # seq + count in 16-bit chunks: the low chunk adds, the others select seq or seq + 1
        # by the carry (ANDed with the all-ones flags of the chunks between)
        s = [seq[16 * n : 16 * n + 16] for n in range(4)]
        lo = Signal(17, name="end_lo")
        m.d.comb += lo.eq(s[0] + count)
        carry = lo[16]
        e_parts = [lo[:16]]
        for n in range(1, 4):
            inc = Signal(16, name=f"seq_inc{n}")
            m.d.comb += inc.eq(s[n] + 1)
            e_parts.append(Mux(carry, inc, s[n]))
            carry = carry & (s[n] == 0xFFFF)
        b_valid = Signal()
        b_proc = Signal()
        b_data = Signal(self.data_width)
        b_keep = Signal(nb)
        b_offset = Signal(signed(16))
        b_first = Signal()
        b_last = Signal()
        b_error = Signal()
        b_rx_ns = Signal(64)
        b_ends = Signal(nb)
        b_fin = Signal()
        b_fnext = Signal()
        b_sess = Signal(8 * MOLD_SESSION_WIDTH)
        b_seq = Signal(64)
        b_count = Signal(16)
        b_end = Signal(64)  # seq + count (mod 2^64)
        b_endc = Signal()  # seq + count >= 2^64
        b_hb = Signal()
        b_eos = Signal()
        learn_now = Signal()  # the decision below learns b_sess
        learned = Signal()
        learned_sess = Signal(8 * MOLD_SESSION_WIDTH)
        # the session compares of A's header in 16-bit chunks (with the configured session, and
        # with the learned one as it will be when A's beat is decided: the decision ahead may
        # learn B's session in this cycle), combined at the decision
        ns = MOLD_SESSION_WIDTH // 2
        lsess = Signal(8 * MOLD_SESSION_WIDTH)
        # (B's header learns when it moves, and A's loads into B only then: the select needs no
        # ``adv``)
        learn_b = Signal()
        m.d.comb += learn_b.eq(b_proc & ~cfg.session_valid & ~learned)
        m.d.comb += lsess.eq(Mux(learn_b, b_sess, learned_sess))
        a_eqc = piece_eq(sess, cfg.session, 16)
        a_eql = piece_eq(sess, lsess, 16)
        b_eqc = Signal(ns)
        b_eql = Signal(ns)
        with m.If(adv):
            m.d.sync += [
                b_valid.eq(a_valid),
                b_proc.eq(a_valid & a_proc),
                b_data.eq(a_data),
                b_keep.eq(a_keep),
                b_offset.eq(a_offset),
                b_first.eq(a_first),
                b_last.eq(a_last),
                b_error.eq(a_error),
                b_rx_ns.eq(a_rx_ns),
                b_ends.eq(Cat(*block_ends(a_data, a_prev, nb))),
                b_fin.eq((a_offset >= 2 - nb) & (a_offset <= 1)),
                b_fnext.eq((a_offset >= 2 - 2 * nb) & (a_offset <= 1 - nb)),
                b_sess.eq(sess),
                b_seq.eq(seq),
                b_count.eq(count),
                b_end.eq(Cat(*e_parts)),
                b_endc.eq(carry),
                b_eqc.eq(a_eqc),
                b_eql.eq(a_eql),
                b_hb.eq(count == 0),
                b_eos.eq(count == MOLD_END_OF_SESSION),
            ]

        # --- decision, loaded with B's beat into the output register ------------------------
        locked = Signal()
        seq_locked = Signal()
        exp = Signal(64)  # the expected sequence number
        m.d.comb += [st.session_locked.eq(locked), st.expected_seq.eq(exp)]

        def gt64(x, y, name):
            """x > y (64 bits): the carry out of ``x + ~y`` from 16-bit pieces' generate (``x >
            y`` of the piece, one LUT and its CARRY chain) and propagate (``x == y``, LUTs), as
            :func:`hw.arith.carry_out`, but with the lookahead across the four pieces on a carry
            chain (``(g | p) + g``: g and p exclusive, so its carry out is the lookahead's)
            instead of two LUT levels. The chain's carry out ends the mapper's cone: with the
            LUT lookahead ABC merged it with the commit select and the skid select after it
            into LUT6 + MUXF7/8(/9) functions (9 levels at U250; docs/synthesis.md)."""
            out = Signal(name=name, attrs={"keep": 1})
            gs, ps = [], []
            for n, lo in enumerate(range(0, 64, CHUNK)):
                g = Signal(name=f"{name}_g{n}", attrs={"keep": 1})
                p = Signal(name=f"{name}_p{n}", attrs={"keep": 1})
                xs, ys = x[lo : lo + CHUNK], y[lo : lo + CHUNK]
                m.d.comb += [g.eq(xs > ys), p.eq(all_ones(m, xs ^ ~ys, f"{name}_p{n}"))]
                gs.append(g)
                ps.append(p)
            gv, pv = Cat(*gs), Cat(*ps)
            la = Signal(len(gs) + 1, name=f"{name}_la")
            m.d.comb += la.eq((gv | pv) + gv)
            m.d.comb += out.eq(la[-1])
            return out

        # against the register and against this cycle's commit in parallel, selected after
        commit = self.commit
        cnext = self.commit_next
        gap_e = gt64(b_seq, exp, "gap_e")
        gap_c = gt64(b_seq, cnext, "gap_c")
        over_e = gt64(b_end, exp, "over_e")
        over_c = gt64(b_end, cnext, "over_c")
        dl_e = Signal(16)
        dl_c = Signal(16)
        m.d.comb += [dl_e.eq(exp[:16] - b_seq[:16]), dl_c.eq(cnext[:16] - b_seq[:16])]
        exp_cur = Signal(64)  # the expected number after this cycle's commit
        m.d.comb += exp_cur.eq(Mux(commit, cnext, exp))
        # The compares' results meet the commit select and the lock in one LUT each (nets kept
        # so the mapper does not spread the selects over mux chains), and each skip bit is then
        # one function of them and s_valid (below): compare (3.5 levels) + 1 + 1.
        nogap = Signal(attrs={"keep": 1})  # locked and seq <= expected: skip may be non-zero
        m.d.comb += nogap.eq(seq_locked & ~Mux(commit, gap_c, gap_e))
        gapd = Signal()  # seq > expected
        m.d.comb += gapd.eq(seq_locked & Mux(commit, gap_c, gap_e))
        over = Signal(attrs={"keep": 1})  # seq + count > expected: skip is expected - seq
        m.d.comb += over.eq(b_endc | Mux(commit, over_c, over_e))
        dl = Signal(16, attrs={"keep": 1})
        m.d.comb += dl.eq(Mux(commit, dl_c, dl_e))
        # skip (no gap: expected - seq, at most count; a gap or the first header: 0)
        skip = Signal(16)
        m.d.comb += skip.eq(Mux(nogap, Mux(over, dl, b_count), 0))
        # The output register's skip: B's decision, or the skid register's skip when that
        # holds a beat (it reloads from there). The skid select is folded into the terms
        # below (as one expression, with the selects inside it, 9 levels at U250).
        s_p = Signal(block_beat_layout(self.data_width))
        # Two kept terms, each one LUT of the compares, the commit select and ``s_valid``
        # (``nz``: skip not zero, ``sel_dl``: skip is expected - seq), and a kept operand of
        # registers only (``alt``: the skid's skip, or B's count); each bit then the 4-input
        # function of the skid-less decision.
        skip_o = Signal(16)
        nz = Signal(attrs={"keep": 1})  # the skid's skip, or no gap
        sel_dl = Signal(attrs={"keep": 1})  # B's decision and seq + count > expected
        alt = Signal(16, attrs={"keep": 1})
        m.d.comb += [
            nz.eq(seq_locked & ~Mux(commit, gap_c, gap_e) | s_valid),
            sel_dl.eq((b_endc | Mux(commit, over_c, over_e)) & ~s_valid),
            alt.eq(Mux(s_valid, s_p.skip, b_count)),
        ]
        m.d.comb += skip_o.eq(Mux(nz, Mux(sel_dl, dl, alt), 0))
        match = Signal()
        m.d.comb += match.eq(Mux(cfg.session_valid, b_eqc.all(), ~learned | b_eql.all()))
        b_hdr = Signal()  # B's beat completes a header of the session
        m.d.comb += b_hdr.eq(b_proc & match)
        is_data = ~b_hb & ~b_eos
        move = adv & b_valid  # B's beat enters the output register
        dec = Signal()  # a header of the session is decided
        m.d.comb += dec.eq(adv & b_hdr)
        m.d.comb += learn_now.eq(dec & ~cfg.session_valid & ~learned)

        with m.If(dec & (~seq_locked | gapd)):
            m.d.sync += exp.eq(b_seq)
        with m.Elif(commit):
            m.d.sync += exp.eq(cnext)
        with m.If(dec):
            m.d.sync += [locked.eq(1), seq_locked.eq(1)]
        with m.If(learn_now):
            m.d.sync += [learned.eq(1), learned_sess.eq(b_sess)]

        # per-packet decision, attached to every beat from the header on. ``seq``, ``count``
        # and ``skip`` load into the output register only with a header (between headers the
        # register keeps them), so no select by ``b_proc`` follows the decision's compares.
        p_active = Signal()
        n_active = Signal()
        m.d.comb += n_active.eq(Mux(b_proc, b_hdr & is_data, Mux(b_first, 0, p_active)))
        with m.If(move):
            m.d.sync += p_active.eq(n_active)

        # --- counters and gap status, from registered events (EVENT_LAG / GAP_LAG) ----------
        ev_pkt = Signal()
        ev_hb = Signal()
        ev_eos = Signal()
        ev_mis = Signal()
        ev_dup = Signal()
        dup_by = Signal(16)
        g1 = Signal()  # a gap, one cycle after its decision
        g_seq = Signal(64)
        g_first = Signal(64)
        m.d.sync += [
            ev_pkt.eq(dec),
            ev_hb.eq(dec & b_hb),
            ev_eos.eq(dec & b_eos),
            ev_mis.eq(move & b_proc & ~match),
            ev_dup.eq(dec & is_data),
            dup_by.eq(skip),
            g1.eq(dec & gapd),
        ]
        with m.If(dec & gapd):
            m.d.sync += [g_seq.eq(b_seq), g_first.eq(exp_cur)]
        # seq - first in two 32-bit halves (the high half both ways), selected a cycle later
        g2 = Signal()
        d_lo = Signal(33)
        d_hi0 = Signal(32)
        d_hi1 = Signal(32)  # d_hi0 - 1 (a borrow from the low half)
        g_first2 = Signal(64)
        m.d.sync += [
            g2.eq(g1),
            d_lo.eq(g_seq[:32] - g_first[:32]),
            d_hi0.eq(g_seq[32:] - g_first[32:]),
            d_hi1.eq(g_seq[32:] + ~g_first[32:]),
            g_first2.eq(g_first),
        ]
        gap_count = Signal(64)
        m.d.comb += gap_count.eq(Cat(d_lo[:32], Mux(d_lo[32], d_hi1, d_hi0)))
        last_gap_first = Signal(64)
        last_gap_count = Signal(64)
        ev_gap = Signal()
        m.d.sync += ev_gap.eq(g2)
        with m.If(g2):
            m.d.sync += [last_gap_first.eq(g_first2), last_gap_count.eq(gap_count)]
        m.d.comb += [
            st.last_gap_first.eq(last_gap_first),
            st.last_gap_count.eq(last_gap_count),
            st.ev_gap.eq(ev_gap),
            st.ev_end_of_session.eq(ev_eos),
        ]
        for name, en, by in (
            ("packets", ev_pkt, 1),
            ("heartbeats", ev_hb, 1),
            ("end_of_session", ev_eos, 1),
            ("session_mismatch", ev_mis, 1),
            ("duplicates", ev_dup, dup_by),
            ("gaps", g2, 1),
            ("missing", g2, gap_count[:cw]),
        ):
            m.d.comb += getattr(cnt, name).eq(counter(m, cw, en=en, by=by, name=f"c_{name}"))

        # --- output register and skid register ----------------------------------------------
        # B's beat (with its decision) moves into the output register when that is free,
        # else into the skid register; the output register reloads from the skid register
        # when it is read. ``adv`` is ~s_valid: no beat moves while the skid register is full.
        # A header completing in B's beat waits while the output register holds its packet's
        # first beat (a header in a packet's second beat: 128-bit beats and wider), so the
        # decision is never taken before the framer has taken the packet's first beat, when
        # it has handed on every message of the previous packets (docs/ingress.md). At 64-bit
        # beats a header completes in a packet's third beat or later and never waits.
        m.d.comb += adv.eq(~s_valid & ~(b_proc & o.valid & o.payload.first))
        # ``seq``, ``count``, ``skip`` (and the count predecodes) of the skid register load
        # with every header decided (into either register): they are those of the latest
        # header, which is the skid beat's own when it holds one (no beat moves while it is
        # full). The output register's load them only with a header, or from the skid register.
        nxt = [
            ("data", b_data),
            ("keep", b_keep),
            ("offset", b_offset),
            ("first", b_first),
            ("last", b_last),
            ("error", b_error),
            ("active", n_active),
            ("hdr", b_hdr),
            ("gap", b_hdr & gapd),
            ("rx_ns", b_rx_ns),
            ("ends", b_ends),
            ("fin", b_fin),
            ("fnext", b_fnext),
        ]
        per_packet = [
            ("seq", b_seq),
            ("count", b_count),
            ("skip", skip),
            ("cnz", b_count != 0),
            ("cgt1", b_count[1:].any()),
        ]
        with m.If(move & b_proc):
            m.d.sync += [getattr(s_p, f).eq(v) for f, v in per_packet]
        o_pp = Signal()  # the output register loads the per-packet fields
        m.d.comb += o_pp.eq(Mux(s_valid, o.ready, move & o_free & b_proc))
        with m.If(o_pp):
            for f, v in per_packet:
                d = skip_o if f == "skip" else Mux(s_valid, getattr(s_p, f), v)
                m.d.sync += getattr(o.payload, f).eq(d)
        with m.If(s_valid):
            with m.If(o.ready):
                m.d.sync += s_valid.eq(0)
                m.d.sync += [getattr(o.payload, f).eq(getattr(s_p, f)) for f, _ in nxt]
        with m.Elif(move):
            with m.If(o_free):
                m.d.sync += o.valid.eq(1)
                m.d.sync += [getattr(o.payload, f).eq(v) for f, v in nxt]
            with m.Else():
                m.d.sync += s_valid.eq(1)
                m.d.sync += [getattr(s_p, f).eq(v) for f, v in nxt]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m
