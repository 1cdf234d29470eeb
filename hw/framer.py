"""MoldUDP64 message framer: block-area beats in, whole messages out (cut-through).

Walks the 2-byte length / message blocks of a packet in place (no realignment): each message
byte is written straight from its beat lane into a :data:`host.feed.spec.MAX_MESSAGE_LENGTH`-byte
message register, and the message leaves from the output register in the cycle after its last
byte is on the input. The walk keeps its position relative to the next beat (beats ahead, lane)
and every lane reads a block length from its own bytes, so no block-offset add or compare lies
between a register and the lane selects. The message bytes' lanes are registers too (a rotation
lane and a thermometer of the bytes in the beat), and the block index's compares with the
packet's ``count`` / ``skip`` are registered (docs/synthesis.md).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from host.feed.spec import MAX_MESSAGE_LENGTH, MOLD_BLOCK_LENGTH_WIDTH
from hw.counter import counter
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
    commit, commit_seq, commit_next : Out(1), Out(64), Out(64)
        A message was handed on this cycle (to the sequence tracker): its sequence number and
        that number + 1 (a register of its own, so the tracker adds nothing).
    counters : Out(...)
        ``truncated``: packets whose frame ended before ``count`` complete blocks.

    Notes
    -----
    Latency 1 cycle: the message is registered in the cycle whose beat holds its last byte and
    is valid on ``o_stream`` the next cycle (``commit`` on its transfer). Throughput: one beat per
    clock unless a block's length low byte and its last byte are in the same beat: such a
    block (``length <= data_width/8 - 1`` message bytes; never an ITCH message at 64-bit
    beats, the shortest block being 2 + 12 bytes) holds the beat one extra cycle, and leaves
    one cycle later. So a beat in which ``n`` blocks end is held for ``n`` or ``n + 1``
    cycles, one message per cycle (only blocks that count hold). Backpressure: the output
    register waits for ``o_stream.ready`` and the input stalls while it is full and not read.
    A MAC error (``last & error``) drops every block ending in that beat and the truncation
    check. ``truncated`` is counted from a register: it moves two cycles after the packet's
    last beat. ``seq``, ``count`` and ``skip`` are read as :func:`hw.moldudp.block_beat_layout`
    defines them: stable from the packet's header beat on (the compares of the block index with
    them are kept in registers once the index leaves 0).
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
                "commit_next": Out(64),
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
        keep = beat.keep

        # --- state, relative to the beat presented next ----------------------------------
        # Length phase (~body): ``pos`` is where the current block's length low byte is; body
        # phase: where its last byte is. Held as beats ahead (``pos_beat``, 0: this beat;
        # negative: passed, never reached again) and lane (binary and one-hot) with the
        # decodes ``pos_in`` (pos_beat == 0) and ``pos_next`` (== 1) precomputed, so no add or
        # compare of a block offset sits between a register and the lane selects.
        body = Signal()
        pos_beat = Signal(signed(17))
        pos_lane = Signal(lb)
        pos_oh = Signal(nb)
        pos_in = Signal()
        pos_next = Signal()
        have_hi = Signal()  # the length high byte arrived in an earlier beat (lane nb-1)
        len_hi = Signal(8)
        len_hi_z = Signal(init=1)  # len_hi == 0, registered with it (lane 0's end decodes)
        length = Signal(16)  # the current block's length (body phase)
        # Message bytes: byte ``idx`` of the current message is at lane ``dlane + idx`` (mod
        # nb) and in this beat when ``tm[idx + nb] & ~tm[idx]``: ``tm`` is a thermometer over
        # idx = -nb .. ml-1, ``tm[idx + nb] = (idx >= e)`` with ``e`` the message byte at lane
        # 0. A beat advance shifts it by nb; no add of a lane offset and no compare lies
        # between a register and the byte selects.
        dlane = Signal(lb)
        tm = Signal(ml + nb)
        # the lane of byte 0 as a number (>= nb: a later beat), only for the bits a beat
        # advance shifts into ``tm`` (off the byte-select paths)
        dpos = Signal(signed(18))
        # The advance by one beat is applied when read: ``tm`` / ``dpos`` hold the position
        # in the beat just processed, ``adv`` says whether the next one is a new beat (not a
        # held one), ``fillr`` / ``dpos_a`` hold what the advance shifts in. So ``hold_now``
        # (the deepest decision of the walk) drives one register, not the whole window.
        adv = Signal()
        fillr = Signal(nb)
        dpos_a = Signal(signed(18))
        k = Signal(16)  # index of the current block
        k1 = Signal(16)  # k + 1
        k2 = Signal(17)  # k + 2
        # registered compares of k with the packet's count / skip (valid when k != 0: the
        # packet's fields are stable from its header on, and k moves only after the header)
        kz = Signal(init=1)  # k == 0
        lt0 = Signal()  # k < count
        lt1 = Signal()  # k + 1 < count
        ge0 = Signal()  # k >= skip
        buf = Signal(8 * ml)
        pending = Signal()  # a gap waits for the next message
        hold = Signal()  # re-processing a held beat

        fresh = beat.first & ~hold
        # a packet's first beat: block 0's length low byte is at block-area offset 1
        lo0 = Signal(signed(18))
        m.d.comb += lo0.eq(1 - beat.offset)
        f_beat = Signal(signed(17))
        m.d.comb += f_beat.eq(lo0 >> lb)
        c_body = Mux(fresh, 0, body)
        c_pos_beat = Mux(fresh, f_beat, pos_beat)
        # the walk's next ``pos_beat`` (one beat on, a passed position stays negative), per
        # source before the select: ``(lo0 >> lb) - 1 == (lo0 - nb) >> lb``, one subtract from
        # the offset, instead of the select and then a decrement (two carry chains in series
        # from MoldUDP64's output register: 8.5 levels in the ingress, 2026-12-07)
        f_beat_m1 = Signal(signed(17))
        m.d.comb += f_beat_m1.eq((1 - nb - beat.offset) >> lb)
        n_pos_beat = Mux(fresh, Mux(lo0 < 0, f_beat, f_beat_m1),
                         Mux(pos_beat < 0, pos_beat, pos_beat - 1))
        # The first beat's lane and "this / next beat" decodes that the walk's deepest
        # decisions read are equality compares of the offset with constants (LUTs), not the
        # subtract and compares above (carry chains on the hold decision's path).
        off_lo = beat.offset[:lb]

        f_lane = Signal(lb)  # == lo0[:lb]
        f_oh = Signal(nb)  # == 1 << lo0[:lb]
        for j in range(nb):
            m.d.comb += f_oh[j].eq(off_lo == (1 - j) % nb)
        m.d.comb += f_lane.eq(Cat(*[
            Cat(*[f_oh[j] for j in range(nb) if (j >> b) & 1]).any() for b in range(lb)
        ]))
        c_pos_lane = Signal(lb)
        m.d.comb += c_pos_lane.eq(Mux(fresh, f_lane, pos_lane))
        # (kept: one LUT6 per lane of first, hold, the offset's low bits and pos_oh, so the
        # lane selects below read one net instead of re-deriving it in wide-LUT chains)
        c_pos_oh = Signal(nb, attrs={"keep": 1})
        m.d.comb += c_pos_oh.eq(Mux(fresh, f_oh, pos_oh))
        # f_beat == 0: 0 <= 1 - offset < nb; == 1: nb <= 1 - offset < 2 nb
        # (MoldUDP64's registered predecodes ``fin`` / ``fnext`` of the offset)
        c_pos_in = Mux(fresh, beat.fin, pos_in)
        c_pos_next = Mux(fresh, beat.fnext, pos_next)
        c_have_hi = Mux(fresh, 0, have_hi)
        # a packet's first beat: message byte idx of block 0 at lane 2 - offset + idx
        c_dlane = Signal(lb)
        m.d.comb += c_dlane.eq(Mux(fresh, (2 - beat.offset)[:lb], dlane))
        c_d = Signal(signed(18))
        m.d.comb += c_d.eq(Mux(fresh, 2 - beat.offset, Mux(adv, dpos_a, dpos)))
        c_tm = Signal(ml + nb)
        for t in range(ml + nb):
            shifted = tm[t - nb] if t >= nb else fillr[t]
            m.d.comb += c_tm[t].eq(
                Mux(fresh, beat.offset <= t - nb + 2, Mux(adv, shifted, tm[t]))
            )
        c_k = Mux(fresh, 0, k)
        c_k1 = Mux(fresh, 1, k1)
        c_k2 = Mux(fresh, 2, k2)
        c_kz = fresh | kz
        c_pending = pending | (beat.hdr & beat.gap & ~hold)

        def onehot_sel(sel, values, width, name):
            out = Signal(width, name=name)
            m.d.comb += out.eq(0)
            acc = 0
            for s, v in zip(sel, values, strict=True):
                acc = acc | Mux(s, v, 0)
            m.d.comb += out.eq(acc)
            return out

        # --- per lane j: the block whose length low byte is at lane j (high byte at j-1, or
        # the held one for j = 0), from the beat's bytes only ---------------------------------
        lanes = []
        for j in range(nb):
            lo = beat.data[8 * j : 8 * j + 8]
            hi = len_hi if j == 0 else beat.data[8 * j - 8 : 8 * j]
            L_j = Signal(16, name=f"len{j}")
            m.d.comb += L_j.eq(Cat(lo, hi))
            s = Signal(lb + 1, name=f"endl{j}")  # lane of the last byte (+nb: next beat)
            m.d.comb += s.eq(j + L_j[:lb])
            up = L_j[lb:]
            up_lo = L_j[lb:8]  # the low byte's part of ``up``
            hi_z = len_hi_z if j == 0 else hi == 0
            up0 = (up_lo == 0) & hi_z
            up1 = (up_lo == 1) & hi_z
            # the block ends in this beat (= up0 & ~s[lb] = (lo < nb - j) & hi_z): MoldUDP64's
            # registered predecode (``block_beat_layout`` ``ends``), so the hold decision
            # starts at registers
            this = beat.ends[j]
            nxt = Signal(name=f"nin{j}")  # the block ends in the next beat
            m.d.comb += nxt.eq(Mux(s[lb], up0, up1))
            pb = Signal(signed(17), name=f"pb{j}")  # beats ahead of the next beat
            m.d.comb += pb.eq(up + s[lb] - 1)
            lanes.append((L_j, s[:lb], this, nxt, pb))

        suppress = beat.last & beat.error
        in_count = Signal()
        m.d.comb += in_count.eq(Mux(c_kz, beat.cnz, lt0))
        next_in_count = Signal()
        # (count > 1: MoldUDP64's registered predecode, as count != 0)
        m.d.comb += next_in_count.eq(Mux(c_kz, beat.cgt1, lt1))
        in_skip = Signal()  # k >= skip
        m.d.comb += in_skip.eq(Mux(c_kz, beat.skip == 0, ge0))
        keep_at_pos = Signal()
        m.d.comb += keep_at_pos.eq((c_pos_oh & keep).any())
        # A: the current block ends here and counts
        completes = Signal()
        # (a fresh beat is in the length phase: written without the fresh muxes)
        m.d.comb += completes.eq(
            ~fresh & body & pos_in & (pos_oh & keep).any() & beat.active & in_count & ~suppress
        )
        emit = Signal()
        m.d.comb += emit.eq(completes & in_skip)
        # B: the current block's length low byte is here
        len_here = Signal()
        m.d.comb += len_here.eq(~c_body & c_pos_in & keep_at_pos)
        # which lane's walker applies: B at the low byte's lane; after A, the next block's
        # low byte two lanes after the end. The lane depends on the phase only (registers),
        # not on whether A / B happen, so the walker values are selected in parallel with
        # the in-count decision.
        sel = Signal(nb)
        for j in range(nb):
            nxt = c_pos_oh[j - 2] & keep[j] if j >= 2 else 0
            m.d.comb += sel[j].eq(Mux(c_body, nxt, c_pos_oh[j]))
        known = Signal()
        m.d.comb += known.eq(Mux(c_body, completes & sel[2:].any(), len_here))
        w_len = onehot_sel(sel, [x[0] for x in lanes], 16, "w_len")
        w_lane = onehot_sel(sel, [x[1] for x in lanes], lb, "w_lane")
        w_nin = onehot_sel(sel, [x[3] for x in lanes], 1, "w_nin")
        w_pb = onehot_sel(sel, [x[4] for x in lanes], 17, "w_pb")
        # the block whose length was just read ends in this beat too: hold the beat (one
        # message per cycle) when it would count
        # (= known & w_this & active & ~suppress & (completes ? next_in_count : in_count),
        # written per phase as flat and-ors of the lane terms: the deepest decision of the walk)
        # As kept nets: per lane the position term (B: the fresh select of the position and
        # the lane's keep; a LUT6 + MUXF7), three lanes' terms per LUT6, and the phase terms
        # apart; hold_now is then one small function of those.
        pk_b = Signal(nb, name="hold_pk", attrs={"keep": 1})
        m.d.comb += pk_b.eq(c_pos_oh & keep)
        t_b = [pk_b[j] & lanes[j][2] for j in range(nb)]
        t_a = [pos_oh[j - 2] & keep[j] & lanes[j][2] for j in range(2, nb)]

        def or_groups(terms, per, name):
            outs = []
            for g in range(0, len(terms), per):
                x = Signal(name=f"{name}{g // per}", attrs={"keep": 1})
                m.d.comb += x.eq(Cat(*terms[g : g + per]).any())
                outs.append(x)
            return Cat(*outs).any()

        ends_b = or_groups(t_b, 3, "ends_b")
        ends_a = or_groups(t_a, 2, "ends_a")
        # The phase terms: the count tests and the first beat's position decode are MoldUDP64's
        # registered predecodes (``cnz``, ``cgt1``, ``fin``).
        def any_k(v, name, per=6):
            ps = Signal(-(-len(v) // per), name=f"{name}_p", attrs={"keep": 1})
            m.d.comb += ps.eq(Cat(*[v[q : q + per].any() for q in range(0, len(v), per)]))
            x = Signal(name=name, attrs={"keep": 1})
            m.d.comb += x.eq(ps.any())
            return x

        kpa = any_k(pos_oh & keep, "kpa")  # (pos_oh & keep).any()
        cnt_nz = beat.cnz  # count != 0 (registered predecodes, block_beat_layout)
        cnt_gt1 = beat.cgt1  # count > 1
        oi = beat.fin  # 2 - nb <= offset <= 1
        act_ns = Signal(name="act_ns", attrs={"keep": 1})
        m.d.comb += act_ns.eq(beat.active & ~suppress)
        x_n = Signal(name="hold_xn", attrs={"keep": 1})  # not fresh: phase B, counting
        m.d.comb += x_n.eq(~body & pos_in & act_ns & Mux(kz, cnt_nz, lt0))
        x_b = Signal(name="hold_xb", attrs={"keep": 1})  # phase B, counting, not suppressed
        # (= ~c_body & c_pos_in & beat.active & ~suppress & in_count)
        m.d.comb += x_b.eq(Mux(fresh, oi & act_ns & cnt_nz, x_n))
        x_r = Signal(name="hold_xr", attrs={"keep": 1})
        m.d.comb += x_r.eq(~fresh & body & pos_in & act_ns)
        x_a = Signal(name="hold_xa", attrs={"keep": 1})  # phase A completes, next counts
        # (= c_body & completes & next_in_count; count > 1 implies count != 0)
        m.d.comb += x_a.eq(x_r & kpa & Mux(kz, cnt_gt1, lt0 & lt1))
        hold_now = Signal()
        m.d.comb += hold_now.eq((x_a & ends_a) | (x_b & ends_b))

        # message bytes of the current block, and of the next one after A
        # the beat rotated so that rotation r holds the byte of message bytes idx = r (mod
        # nb): one nb-way mux per lane, selected by a register (or the first beat's offset)
        # (the lanes are rotated by constants, so the select is the register itself)
        lanes_b = [beat.data[8 * x : 8 * x + 8] for x in range(nb)]

        def rotated(by):
            return Cat(*[lanes_b[(x + by) % nb] for x in range(nb)])

        rot = [rotated(r).word_select(c_dlane, 8) for r in range(nb)]
        # after A, the next block's byte 0 is at lane pos_lane + 3
        n_lane0 = Signal(lb)
        m.d.comb += n_lane0.eq(c_pos_lane + 3)
        n_rot = [rotated(3 + r).word_select(c_pos_lane, 8) for r in range(nb)]
        merged = Signal(8 * ml)
        n_hits = []
        for idx in range(ml):
            hit = c_tm[idx + nb] & ~c_tm[idx]
            m.d.comb += merged[8 * idx : 8 * idx + 8].eq(
                Mux(hit, rot[idx % nb], buf[8 * idx : 8 * idx + 8])
            )
            n_hits.append(c_pos_lane < nb - 3 - idx if idx < nb - 3 else Const(0))

        # seq + k: the low 16 bits add, the carry selects the upper bits or their increment
        # (from the beat alone), so no 64-bit carry chain starts at k
        # (seq + k + 1, for the tracker's commit port, the same way with k + 1)
        seq = Signal(64)
        seq1 = Signal(64)
        s_hi1 = Signal(48)
        m.d.comb += s_hi1.eq(beat.seq[16:] + 1)
        s_lo = Signal(17)
        m.d.comb += s_lo.eq(beat.seq[:16] + c_k)
        m.d.comb += seq.eq(Cat(s_lo[:16], Mux(s_lo[16], s_hi1, beat.seq[16:])))
        s1_lo = Signal(17)
        m.d.comb += s1_lo.eq(beat.seq[:16] + c_k1)
        m.d.comb += seq1.eq(Cat(s1_lo[:16], Mux(s1_lo[16], s_hi1, beat.seq[16:])))
        o_next = Signal(64)
        step = Signal()  # the state machine moves this cycle
        m.d.comb += step.eq(i.valid & (~o.valid | o.ready))
        m.d.comb += i.ready.eq((~o.valid | o.ready) & ~hold_now)
        m.d.comb += [
            self.commit.eq(o.valid & o.ready),
            self.commit_seq.eq(o.payload.seq),
            self.commit_next.eq(o_next),
        ]

        # output register
        with m.If(step & emit):
            m.d.sync += [
                o.valid.eq(1),
                o.payload.data.eq(merged),
                o.payload.length.eq(length),
                o.payload.seq.eq(seq),
                o_next.eq(seq1),
                o.payload.gap.eq(c_pending),
                o.payload.rx_ns.eq(beat.rx_ns),
            ]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)

        trunc = Signal()  # one packet truncated (counted from a register: shallow paths)
        m.d.sync += trunc.eq(0)
        m.d.comb += cnt.truncated.eq(counter(m, len(cnt.truncated), en=trunc, name="c_trunc"))
        with m.If(step):
            m.d.sync += [pending.eq(c_pending & ~emit), hold.eq(hold_now)]
            m.d.sync += adv.eq(~hold_now)
            with m.If(completes):
                # the next block's byte 0 at lane pos_lane + 3 of this beat: tm[t] = (t - nb
                # >= -(pos_lane + 3)); after an advance, fillr[t] = (t - 2 nb >= -(pos_lane + 3))
                m.d.sync += [
                    dlane.eq(n_lane0),
                    dpos.eq(c_pos_lane + 3),
                    dpos_a.eq(c_pos_lane + 3 - nb),
                    fillr.eq(Cat(*[c_pos_lane >= 2 * nb - 3 - t for t in range(nb)])),
                ]
                for t in range(ml + nb):
                    m.d.sync += tm[t].eq(c_pos_lane >= nb - 3 - t)
            with m.Else():
                # an advance: e + nb, tm[t] = tm[t - nb]; below, (t - 2 nb >= e) = (c_d >= 2 nb
                # - t); dpos - nb stops below -ml (no byte of the message in any later beat)
                m.d.sync += [
                    dlane.eq(c_dlane),
                    dpos.eq(c_d),
                    dpos_a.eq(Mux(c_d < -ml, c_d, c_d - nb)),
                    fillr.eq(Cat(*[c_d >= 2 * nb - t for t in range(nb)])),
                    tm.eq(c_tm),
                ]
            with m.If(completes):
                m.d.sync += [
                    k.eq(c_k + 1),
                    k1.eq(c_k1 + 1),
                    k2.eq(c_k2 + 1),
                    kz.eq(0),
                    lt0.eq(next_in_count),
                    lt1.eq(c_k2 < beat.count),
                    ge0.eq(c_k1 >= beat.skip),
                ]
                for idx in range(ml):
                    with m.If(n_hits[idx]):
                        m.d.sync += buf[8 * idx : 8 * idx + 8].eq(n_rot[idx % nb])
            with m.Else():
                m.d.sync += [
                    k.eq(c_k),
                    k1.eq(c_k1),
                    k2.eq(c_k2),
                    kz.eq(c_kz),
                    lt0.eq(in_count),
                    lt1.eq(next_in_count),
                    ge0.eq(in_skip),
                    buf.eq(merged),
                ]
            with m.If(known):
                # a block's length is known: to the body phase, position = its last byte
                m.d.sync += [
                    body.eq(1),
                    length.eq(w_len),
                    pos_lane.eq(w_lane),
                    pos_oh.eq(Const(1, nb) << w_lane),
                    pos_next.eq(0),
                    have_hi.eq(0),
                ]
                with m.If(hold_now):
                    m.d.sync += [pos_beat.eq(0), pos_in.eq(1)]
                with m.Else():
                    m.d.sync += [pos_beat.eq(w_pb), pos_in.eq(w_nin)]
            with m.Elif(completes):
                # the next block's length field starts at lane nb-1 or in the next beat (or
                # its low byte is past the block area: never reached)
                e_late = c_pos_oh[nb - 2 :].any()
                m.d.sync += [
                    body.eq(0),
                    pos_lane.eq(c_pos_lane + 2),
                    pos_oh.eq(Cat(c_pos_oh[nb - 2 :], c_pos_oh[: nb - 2])),
                    pos_beat.eq(Mux(e_late, 0, -1)),
                    pos_in.eq(e_late),
                    pos_next.eq(0),
                    have_hi.eq(c_pos_oh[nb - 2] & keep[nb - 1]),
                    len_hi.eq(beat.data[-8:]),
                    len_hi_z.eq(beat.data[-8:] == 0),
                ]
            with m.Else():
                cap = ~c_body & ~c_have_hi & c_pos_next & c_pos_oh[0] & keep[nb - 1]
                m.d.sync += [
                    body.eq(c_body),
                    pos_lane.eq(c_pos_lane),
                    pos_oh.eq(c_pos_oh),
                    pos_beat.eq(n_pos_beat),
                    pos_in.eq(c_pos_beat == 1),
                    pos_next.eq(c_pos_beat == 2),
                    have_hi.eq(c_have_hi | cap),
                ]
                with m.If(cap):
                    m.d.sync += [len_hi.eq(beat.data[-8:]), len_hi_z.eq(beat.data[-8:] == 0)]
            with m.If(beat.last & ~hold_now):
                k_left = Mux(completes, next_in_count, in_count)
                m.d.sync += trunc.eq(beat.active & ~suppress & k_left)
        return m
