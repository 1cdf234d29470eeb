"""Ethernet II / IPv4 / UDP frame parser (cut-through): MAC beats in, UDP payload beats out.

The parser never moves data between byte lanes: it marks which lanes of each beat hold UDP
payload (``keep``) and where the payload starts (``offset`` of lane 0 in payload bytes), so the
downstream blocks see every payload byte in the very beat it arrived in (no realignment delay).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.counter import counter
from hw.layouts import mac_beat_layout

__all__ = [
    "payload_beat_layout",
    "FrameParser",
    "ETHERNET_COUNTERS",
    "MAX_FRAME_BYTES",
    "config_signature",
]

ETHERNET_COUNTERS: tuple[str, ...] = (
    "frames",
    "drop_error",
    "drop_ethertype",
    "drop_ip",
    "drop_proto",
    "drop_addr",
    "drop_port",
    "drop_short",
    "drop_long",
)
"""Counters of :class:`FrameParser` (names as in ``hw.regs.INGRESS_COUNTERS``)."""

MAX_FRAME_BYTES = 16384
"""Largest IPv4 datagram end the ingress parses, in frame bytes (Ethernet + VLAN + IPv4 total
length, FCS excluded): a frame whose IPv4 total length ends past it is dropped whole at the
header (``drop_long``), before any payload beat is forwarded. 16 KiB covers 9216-byte jumbo
frames; it keeps every payload offset inside the chain's signed 16-bit ``offset`` fields and
the beat counter (sized from it) below saturation for every data width. Bytes after the IPv4
datagram (padding) are ignored, so a physically longer frame with a datagram that fits is
parsed normally."""

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_VLAN = 0x8100
UDP_MIN_LENGTH = 8 + 20  # UDP header + MoldUDP64 header

# drop reasons (internal)
_NONE, _ETHERTYPE, _IP, _PROTO, _SHORT, _ADDR, _PORT, _LONG = range(8)
_ERROR = 0  # bit 0 of the registered outcome (_NONE is never counted)
_REASONS = {
    _ERROR: "drop_error",
    _ETHERTYPE: "drop_ethertype",
    _IP: "drop_ip",
    _PROTO: "drop_proto",
    _SHORT: "drop_short",
    _ADDR: "drop_addr",
    _PORT: "drop_port",
    _LONG: "drop_long",
}


def payload_beat_layout(data_width: int = 64) -> data.StructLayout:
    """A beat of an accepted frame, as :class:`FrameParser` forwards it.

    ``data`` is the MAC beat unchanged; ``keep`` marks the lanes holding UDP payload (bounded
    by the UDP length, so Ethernet padding is never marked); ``offset`` is the payload byte
    index of lane 0 (negative before the payload starts); ``first`` marks the first forwarded
    beat of a frame, ``last`` its final beat (always forwarded, possibly with no payload
    lanes); ``error`` (on ``last``) the MAC error flag; ``trunc`` (on ``last``) that the frame
    ended before the UDP length; ``rx_ns`` the parser's ``rx_ns`` input in the first cycle the
    frame's first MAC beat was valid (the frame's hardware timestamp, on every beat).
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
            "trunc": unsigned(1),
            "rx_ns": unsigned(64),
        }
    )


def config_signature() -> wiring.Signature:
    """Frame filter configuration (inputs of the parser)."""
    return wiring.Signature({"enable": Out(1), "udp_port": Out(16), "ip_dst": Out(32)})


def _check_width(data_width):
    if not isinstance(data_width, int) or isinstance(data_width, bool):
        raise TypeError(f"data_width must be an int, not {data_width!r}")
    if data_width < 16 or data_width > 512 or data_width & (data_width - 1):
        raise ValueError(f"data_width must be a power of two in 16..512, not {data_width}")


def _check_counter_width(counter_width):
    if not isinstance(counter_width, int) or isinstance(counter_width, bool):
        raise TypeError(f"counter_width must be an int, not {counter_width!r}")
    if not 1 <= counter_width <= 64:
        raise ValueError(f"counter_width must be 1..64, not {counter_width}")


class FrameParser(wiring.Component):
    """Ethernet II (one optional 802.1Q tag) / IPv4 (with options) / UDP parser and filter.

    Parameters
    ----------
    data_width : int, keyword-only
        MAC data width in bits (power of two, 16..512; 64 is the reference).
    counter_width : int, keyword-only
        Counter width (default 32; wraps).

    Attributes
    ----------
    i_stream : In(stream.Signature(hw.layouts.mac_beat_layout(data_width)))
        MAC receive beats.
    o_stream : Out(stream.Signature(payload_beat_layout(data_width)))
        Beats of accepted frames from the one holding the end of the UDP header to the final
        beat, payload lanes marked.
    config : In(config_signature())
        ``enable`` (sampled at the first beat of a frame; a disabled frame is consumed and
        not counted), ``udp_port`` (compared when the beat holding the destination port is
        taken, at most one beat before the decision), ``ip_dst`` (a.b.c.d =
        a<<24|b<<16|c<<8|d).
    ev_drop : Out(1)
        One-cycle pulse (registered) when a frame is counted in a drop counter.
    counters : Out(...)
        ``frames`` and one drop counter per frame at most (see ``host.card.ingress_model``).

    Notes
    -----
    Latency 1 cycle: stage 0 captures the header fields of the input beat and registers the
    beat with its lane marks, offset and truncation flag; stage 1 (the output) takes the
    filter decision on registers (``o_stream.valid`` and ``first`` are that decision, the
    other output fields are registers). The stage register loads whenever ``o_stream.ready``
    is high. Throughput one beat per clock, every beat, including back-to-back frames.
    Backpressure: ``i_stream.ready = o_stream.ready`` (header and dropped beats too), so
    nothing is lost. Counters trail a frame's last beat by 3 cycles more than a plain
    register (stage, registered outcome, its decode; plus the split counter's cycle).
    The IPv4 header checksum is summed 16 bits at a time as the header streams in and is
    checked before the first payload beat is forwarded; the UDP checksum is not checked (it
    covers the whole datagram, which a cut-through parser has already forwarded).
    """

    def __init__(self, *, data_width: int = 64, counter_width: int = 32):
        _check_width(data_width)
        _check_counter_width(counter_width)
        self.data_width = data_width
        self.counter_width = counter_width
        super().__init__(
            {
                "i_stream": In(stream.Signature(mac_beat_layout(data_width))),
                "o_stream": Out(stream.Signature(payload_beat_layout(data_width))),
                "config": In(config_signature()),
                "rx_ns": In(64),  # the time now (hw.nsclock): a frame's stamp is its value in
                #                   the first cycle the frame's first beat is valid
                "ev_drop": Out(1),
                "counters": Out(
                    wiring.Signature({n: Out(counter_width) for n in ETHERNET_COUNTERS})
                ),
            }
        )

    def elaborate(self, platform):
        m = Module()
        nb = self.data_width // 8
        lb = nb.bit_length() - 1
        i, o, cfg, cnt = self.i_stream, self.o_stream, self.config, self.counters
        beat = i.payload
        # one pipeline: stage 0 (the MAC beat at the input: byte capture, beat position, lane
        # marks) loads stage 1 (the output register) whenever the output may move, so the
        # backpressure is unchanged (i.ready = o.ready) and a stalled beat keeps both stages
        xfer = i.valid & o.ready
        # Beats of at most 8 bytes (the reference width): every header field is captured at
        # least one beat before the deciding beat (the one holding the last UDP header byte),
        # the IHL and the Ethertype at least three beats before the UDP header, so the field
        # positions and the checks derived from captured fields are registers (one cycle late
        # is early enough). Wider beats (the header in one or two beats) compute them from the
        # beat itself (deeper logic, not the measured width).
        piped = nb <= 8

        def late(expr, name, shape=1):
            """``expr`` one cycle late (registered) in the pipelined build, else ``expr``."""
            if not piped:
                return expr
            r = Signal(shape, name=name)
            m.d.sync += r.eq(expr)
            return r

        # ---- stage 0: beat position --------------------------------------------------------
        # beat index in the frame, saturating (at the all-ones value, past MAX_FRAME_BYTES and
        # below a 32 KiB payload offset): every beat of an accepted datagram has its true index,
        # bytes past the datagram are ignored anyway
        bi = Signal(range(MAX_FRAME_BYTES // nb + 2))
        # the same index one-hot over the header beats (bytes 0..87): a capture at a fixed
        # frame offset is enabled by one register bit instead of a compare of ``bi``
        npos = (88 >> lb) + 1
        pos = Signal(npos, init=1)
        sof = pos[0]  # this beat starts a frame (bi == 0)
        base = Signal(20)
        m.d.comb += base.eq(bi << lb)
        n_valid = Signal(range(nb + 1))  # valid bytes in this beat (keep is contiguous)
        with m.Switch(beat.keep):
            for k in range(nb + 1):
                with m.Case((1 << k) - 1):
                    m.d.comb += n_valid.eq(k)
            with m.Default():
                m.d.comb += n_valid.eq(nb)
        with m.If(xfer):
            with m.If(beat.last):
                m.d.sync += [bi.eq(0), pos.eq(1)]
            with m.Else():
                with m.If(bi != (1 << len(bi)) - 1):
                    m.d.sync += bi.eq(bi + 1)
                m.d.sync += pos.eq(pos << 1)

        def split(x):
            """Beat index and lane of frame offset ``x`` (an int or a value)."""
            if isinstance(x, int):
                return x >> lb, x & (nb - 1)
            return x[lb:], x[:lb]

        def arrived(x):
            """Frame offset ``x`` is in this beat or an earlier one (``x < end``), compared
            as beat index and lane: no add of the valid-byte count on the path."""
            xh, xl = split(x)
            return (xh < bi) | ((xh == bi) & (xl < n_valid))

        def lane_before(j, x):
            """Lane ``j`` of this beat is before frame offset ``x``."""
            xh, xl = split(x)
            return (bi < xh) | ((bi == xh) & (j < xl))

        def word(addr):
            """The big-endian 16-bit word at even frame offset ``addr`` of this beat, and
            whether this beat holds it (``addr``: an int, or a value whose bit 0 is 0)."""
            if isinstance(addr, int):
                hit = pos[addr >> lb] if (addr >> lb) < npos else Const(0)
                w = beat.data.word_select((addr & (nb - 1)) >> 1, 16) if nb > 2 else beat.data
            else:
                hit = pos.bit_select(addr[lb:], 1)
                w = beat.data.word_select(addr[1:lb], 16) if nb > 2 else beat.data
            return hit, Cat(w[8:16], w[0:8])

        def cap(hit, val, name, shape=16):
            """Capture register of ``val`` (taken when ``hit``), and its value now."""
            reg = Signal(shape, name=f"h_{name}")
            with m.If(xfer & hit):
                m.d.sync += reg.eq(val)
            return reg, Mux(hit, val, reg)

        def eff(vihl):
            ihl = vihl[0:4]
            return Mux(ihl < 5, 5, ihl)

        # Ethertype (fixed offsets): registered as match bits
        hit12, w12 = word(12)
        hit16, w16 = word(16)
        vlan_r, vlan_mux = cap(hit12, w12 == ETHERTYPE_VLAN, "vlan", 1)
        vlan_now = Signal(name="vlan_now")
        m.d.comb += vlan_now.eq(vlan_mux)
        et0_ok_r, _ = cap(hit12, w12 == ETHERTYPE_IPV4, "et0_ok", 1)
        et1_ok_r, _ = cap(hit16, w16 == ETHERTYPE_IPV4, "et1_ok", 1)
        # version/IHL at both possible offsets (14: no tag, 18: tagged)
        hit14, w14 = word(14)
        hit18, w18 = word(18)
        vihl0_r, vihl0_now = cap(hit14, w14[8:16], "vihl0", 8)
        vihl1_r, vihl1_now = cap(hit18, w18[8:16], "vihl1", 8)
        # UDP header position: udp = 4 * uw - 2 (the IPv4 header starts at 14 or 18 and is a
        # whole number of 4-byte words); uw = the 4-byte word holding the destination port
        if piped:
            # registered positions, each a function of five captured bits (one LUT level)
            uw = Signal(5, name="uw")
            hend = Signal(8, name="hend")  # frame offset just past the IPv4 header (udp)
            start = Signal(8, name="start")  # frame offset of UDP payload byte 0
            stm1 = Signal(8, name="stm1")  # start - 1: the last UDP header byte
            hend_m1 = Signal(8, name="hend_m1")
            udp_r = Mux(vlan_r, 18 + (eff(vihl1_r) << 2), 14 + (eff(vihl0_r) << 2))
            uw_n = Signal(5)
            m.d.comb += uw_n.eq(Mux(vlan_r, 5 + eff(vihl1_r), 4 + eff(vihl0_r)))
            # one-hot beat of the destination port and of the UDP length: the capture enable
            # is an AND-OR with the one-hot beat position, not a mux selected by uw
            tgt_p = Signal(npos, name="tgt_p")
            tgt_l = Signal(npos, name="tgt_l")
            m.d.sync += [tgt_p.eq(Const(1, npos) << (Cat(Const(0, 2), uw_n) >> lb)),
                         tgt_l.eq(Const(1, npos) << (Cat(Const(2, 2), uw_n) >> lb))]
            m.d.sync += [uw.eq(uw_n),
                         hend.eq(udp_r), start.eq(udp_r + 8), stm1.eq(udp_r + 7),
                         hend_m1.eq(udp_r - 1)]
            vlan0 = vlan_r  # valid from the beat after the Ethertype (ip + 2 >= 16)
        else:
            uw = Signal(5, name="uw")
            m.d.comb += uw.eq(Mux(vlan_now, 5 + eff(vihl1_now), 4 + eff(vihl0_now)))
            hend = Signal(8)
            start = Signal(8)
            stm1 = Signal(8)
            hend_m1 = Signal(8)
            m.d.comb += [hend.eq((uw << 2) - 2), start.eq((uw << 2) + 6),
                         stm1.eq((uw << 2) + 5), hend_m1.eq((uw << 2) - 3)]
            vlan0 = vlan_now

        def ipword(off):
            """The word at ``ip + off`` (ip = 14 or 18)."""
            ha, wa = word(18 + off)
            hb, wb = word(14 + off)
            return Mux(vlan0, ha, hb), Mux(vlan0, wa, wb)

        tot_r, tot_now = cap(*ipword(2), "tot")
        frag_r, _ = cap(*ipword(6), "frag")
        proto_r, _ = cap(*ipword(8), "ttlproto")
        dsth_r, _ = cap(*ipword(16), "dst_h")
        dstl_r, _ = cap(*ipword(18), "dst_l")
        hitp, wp = word(Cat(Const(0, 2), uw))
        hitl, wl = word(Cat(Const(2, 2), uw))
        if piped:
            hitp = (pos & tgt_p).any()
            hitl = (pos & tgt_l).any()
        hitp_s, hitl_s = Signal(name="hit_dport"), Signal(name="hit_ulen")
        m.d.comb += [hitp_s.eq(hitp), hitl_s.eq(hitl)]
        hitp, hitl = hitp_s, hitl_s
        # the destination port's match with ``config.udp_port``, registered as one bit when
        # the port is captured (at most a beat before the decision), so no 16-bit compare
        # sits on the frame decision (``o_stream.valid``)
        dport_ok_r, _ = cap(hitp, wp == cfg.udp_port, "dport_ok", 1)
        ulen_r, ulen_now = cap(hitl, wl, "ulen")

        # checks of the captured IPv4 fields (from the capture registers; registered again in
        # the pipelined build: those fields end at least one beat before the deciding beat)
        vihl = Mux(vlan_r, vihl1_r, vihl0_r)
        ihl = vihl[0:4]
        ip_len = ihl << 2
        ip_bad = late((vihl[4:8] != 4) | (ihl < 5) | (tot_r < ip_len) | (frag_r[:14] != 0),
                      "ip_bad")
        udp_room = late(tot_r - ip_len, "udp_room", 16)  # largest UDP length the datagram holds
        too_long = late(Mux(vlan_r, tot_r > MAX_FRAME_BYTES - 18, tot_r > MAX_FRAME_BYTES - 14),
                        "too_long")
        proto_bad = late(proto_r[0:8] != 17, "proto_bad")
        dst_bad = late(Cat(dstl_r, dsth_r) != cfg.ip_dst, "dst_bad")
        # the last byte of the IPv4 datagram (at stage 0: this beat included)
        if piped:
            ipend_m1 = late(Mux(vlan_r, tot_r + 17, tot_r + 13), "ipend_m1", 18)
        else:
            ipend_m1 = Signal(18)
            m.d.comb += ipend_m1.eq(Mux(vlan_now, 18, 14) + tot_now - 1)

        # frame offset just past the UDP payload and the last payload byte, captured with
        # the UDP length (pend >= 34: pend - 1 never wraps)
        pend_r, pend_now = cap(hitl, hend + wl, "pend", 18)
        pendm1_r, pendm1_now = cap(hitl, hend_m1 + wl, "pend_m1", 18)
        if piped:
            # the beat holding the UDP length ends before udp + 28 <= pend for every accepted
            # frame (UDP length >= 28), so nothing in it is past the payload
            short_r, _ = cap(hitl, (wl < UDP_MIN_LENGTH) | (wl > udp_room), "short", 1)

            def lane_in_udp(j):
                return hitl | lane_before(j, pend_r)

            def end_in_udp():  # the frame ends before its UDP datagram does
                return hitl | ~arrived(pendm1_r)
        else:
            def lane_in_udp(j):
                return lane_before(j, pend_now)

            def end_in_udp():
                return ~arrived(pendm1_now)

        # ---- IPv4 header checksum: two register stages --------------------------------------
        # stage 0 registers this beat's header words (masked), the next cycle adds them to the
        # accumulator (carry-save, one carry chain); the check is a pattern on the sum
        ck_v = Signal()
        ck_sof = Signal()
        ck_w = [Signal(16, name=f"ck_w{j}") for j in range(nb // 2)]
        m.d.sync += ck_v.eq(xfer)
        with m.If(xfer):
            m.d.sync += ck_sof.eq(sof)
            for j in range(nb // 2):
                w = Cat(beat.data[16 * j + 8 : 16 * j + 16], beat.data[16 * j : 16 * j + 8])
                after_ip = ~Mux(vlan_now, lane_before(2 * j, 18), lane_before(2 * j, 14))
                # every IPv4 header ends at 34 or later; past that the registered end is valid
                in_hdr = lane_before(2 * j, hend)
                if piped:
                    in_hdr = lane_before(2 * j, 34) | in_hdr
                m.d.sync += ck_w[j].eq(Mux(after_ip & in_hdr, w, 0))
        acc = Signal(24)
        ops = [Mux(ck_sof, 0, acc)] + [Cat(w, Const(0, 8)) for w in ck_w]
        lvl = 0
        while len(ops) > 2:
            # per bit column, the count of up to six operand bits (one LUT6 per count bit),
            # or a 3:2 compressor for three operands: operands in carry-save form (named
            # signals, so every slice refers to one net instead of re-emitting the sum)
            k = 3 if len(ops) <= 3 else min(len(ops), 6)
            grp, ops = ops[:k], ops[k:]
            cols = []
            for b in range(24):
                c = Signal(k.bit_length(), name=f"ck_c{lvl}_{b}")
                m.d.comb += c.eq(sum(op[b] for op in grp))
                cols.append(c)
            for t in range(k.bit_length()):
                v = Signal(24, name=f"ck_v{lvl}_{t}")
                m.d.comb += v.eq(Cat(*(c[t] for c in cols)) << t)
                ops.append(v)
            lvl += 1
        acc_next = Signal(24)
        m.d.comb += acc_next.eq(Mux(ck_v, ops[0][:24] + ops[1][:24], acc))
        with m.If(ck_v):
            m.d.sync += acc.eq(acc_next)
        # ones' complement check: fold(fold(s)) == 0xFFFF  <=>  s[8:16] == 0xFF and
        # s[0:8] == ~s[16:24] (s < 2**24: a header has at most 30 words)
        csum = acc if piped else acc_next
        # as four 6-input pieces (kept nets: one LUT6 each, then one AND), so that the mapper
        # does not merge the pattern with the decision below into wide-LUT mux chains
        ck_p = [Cat(csum[8:14]).all(),
                csum[14] & csum[15] & (csum[0:2] == ~csum[16:18]),
                csum[2:5] == ~csum[18:21],
                csum[5:8] == ~csum[21:24]]
        ck_pk = Signal(4, name="ck_ok_p", attrs={"keep": 1})
        m.d.comb += ck_pk.eq(Cat(*ck_p))
        csum_ok = Signal(name="csum_ok", attrs={"keep": 1})
        m.d.comb += csum_ok.eq(ck_pk.all())

        # the frame's timestamp: the time its first beat (bi == 0) arrived, i.e. the first
        # cycle it is valid (a stalled first beat keeps that time: a MAC stamps arrival, and a
        # forwarded first beat's payload must not change while stalled), held for the frame
        rx_ns = Signal(64)
        # "the next beat starts a frame and has not been seen yet": a flag of its own rather
        # than a compare of the beat counter, so the stamp adds one LUT level at most
        ts_open = Signal(init=1)
        with m.If(i.valid & ts_open):
            m.d.sync += [rx_ns.eq(self.rx_ns), ts_open.eq(0)]
        with m.If(xfer & beat.last):
            m.d.sync += ts_open.eq(1)
        stamp = Signal(64)
        m.d.comb += stamp.eq(Mux(ts_open, self.rx_ns, rx_ns))

        # ---- stage 1 register ----------------------------------------------------------------
        s_v = Signal()
        s_data = Signal(self.data_width)
        s_keep = Signal(nb)
        s_off = Signal(16)
        s_sof = Signal()
        s_last = Signal()
        s_err = Signal()
        s_trunc = Signal()
        s_en = Signal()  # config.enable when the beat was at the input (used at a frame start)
        s_stamp = Signal(64)
        s_a13 = Signal()  # the beat holds byte 13 or an earlier one (Ethertype decided)
        s_a17 = Signal()
        s_ast = Signal()  # ... the last UDP header byte (start - 1)
        s_shend = Signal()  # the frame ends before its IPv4 datagram does
        keep = Signal(nb)
        for j in range(nb):
            m.d.comb += keep[j].eq(~lane_before(j, start) & lane_in_udp(j) & (j < n_valid))
        ast = arrived(stm1)
        if piped:
            ast = ast & (bi >= (41 >> lb))  # the UDP header ends at 41 or later (uw valid)
        with m.If(o.ready):
            m.d.sync += [
                s_v.eq(i.valid),
                s_data.eq(beat.data),
                s_keep.eq(keep),
                s_off.eq(base - start),
                s_sof.eq(sof),
                s_last.eq(beat.last),
                s_err.eq(beat.error),
                s_trunc.eq(beat.last & end_in_udp()),
                s_en.eq(cfg.enable),
                s_stamp.eq(stamp),
                s_a13.eq(arrived(13)),
                s_a17.eq(arrived(17)),
                s_ast.eq(ast),
                s_shend.eq(~arrived(ipend_m1)),
            ]

        # ---- stage 1: the frame decision (capture registers hold every byte up to this beat)
        if piped:
            short = short_r
        else:
            short = (ulen_r < UDP_MIN_LENGTH) | (ulen_r > udp_room)
        decided = Signal()  # header decision taken (registered)
        reason = Signal(3)  # drop reason of a decided frame (_NONE: accepted)
        en = Signal()  # enable sampled at the first beat
        en_cur = Mux(s_sof, s_en, en)
        dec_cur = Mux(s_sof, 0, decided)
        rsn_cur = Mux(s_sof, _NONE, reason)
        et_bad = ~Mux(vlan_r, et1_ok_r, et0_ok_r)
        arr_ip = Mux(vlan_r, s_a17, s_a13)

        dec_now = Signal()
        rsn_now = Signal(3)
        m.d.comb += [dec_now.eq(dec_cur), rsn_now.eq(rsn_cur)]
        with m.If(~dec_cur):
            with m.If(arr_ip):
                with m.If(et_bad):
                    m.d.comb += [dec_now.eq(1), rsn_now.eq(_ETHERTYPE)]
                with m.Elif(s_ast):
                    m.d.comb += dec_now.eq(1)
                    with m.If(ip_bad | ~csum_ok):
                        m.d.comb += rsn_now.eq(_IP)
                    with m.Elif(proto_bad):
                        m.d.comb += rsn_now.eq(_PROTO)
                    with m.Elif(short):
                        m.d.comb += rsn_now.eq(_SHORT)
                    with m.Elif(too_long):
                        m.d.comb += rsn_now.eq(_LONG)
                    with m.Elif(dst_bad):
                        m.d.comb += rsn_now.eq(_ADDR)
                    with m.Elif(~dport_ok_r):
                        m.d.comb += rsn_now.eq(_PORT)
                    with m.Else():
                        m.d.comb += rsn_now.eq(_NONE)
        # The forward decision (``o_stream.valid``, which MoldUDP64's header-byte capture
        # enables read), written apart from the reason priority above as a few kept nets of
        # at most six register bits each: = en_cur & dec_now & (rsn_now == _NONE).
        # ``ok_r``: the registered decision forwards (reason == _NONE); ``hdr_ok``: every check
        # of the fields at byte 27 or earlier (Ethertype, IPv4 version/IHL/length/fragment/
        # protocol, the frame size), registered once more: byte 27 is at least two beats
        # before the deciding beat (byte 41 or later) at 8-byte beats, so it is in time
        ok_r = Signal()
        hdr_ok = late(~ip_bad & ~proto_bad & ~too_long & ~et_bad, "hdr_ok")
        f_old = Signal(name="f_old", attrs={"keep": 1})  # decided earlier and forwarding
        m.d.comb += f_old.eq(s_v & en_cur & ~s_sof & decided & ok_r)
        f_can = Signal(name="f_can", attrs={"keep": 1})  # undecided: this beat may decide
        m.d.comb += f_can.eq(s_v & en_cur & ~dec_cur)
        f_chk = Signal(name="f_chk", attrs={"keep": 1})  # this beat decides and passes, but
        #                                                   for the checksum
        m.d.comb += f_chk.eq(arr_ip & s_ast & hdr_ok & ~short & ~dst_bad & dport_ok_r)
        fwd_v = Signal(name="fwd_v")
        m.d.comb += fwd_v.eq(f_old | (f_can & f_chk & csum_ok))
        first = f_can & f_chk & csum_ok  # (= fwd & ~dec_cur)

        m.d.comb += [
            o.valid.eq(fwd_v),
            i.ready.eq(o.ready),
            o.payload.data.eq(s_data),
            o.payload.keep.eq(s_keep),
            o.payload.offset.eq(s_off),
            o.payload.first.eq(first),
            o.payload.last.eq(s_last),
            o.payload.error.eq(s_last & s_err),
            o.payload.trunc.eq(s_trunc),
            o.payload.rx_ns.eq(s_stamp),
        ]

        s_xfer = s_v & o.ready
        with m.If(s_xfer):
            m.d.sync += [decided.eq(dec_now), reason.eq(rsn_now), en.eq(en_cur),
                         ok_r.eq(rsn_now == _NONE)]
        # a counted frame's end: its decision registered as is, the counter it goes to
        # decoded a cycle later (the decode is not on the decision's path)
        fe_go = Signal()
        fe_err = Signal()
        fe_dec = Signal()
        fe_rsn = Signal(3)
        fe_short = Signal()
        m.d.sync += [fe_go.eq(s_xfer & s_last & en_cur), fe_err.eq(s_err), fe_dec.eq(dec_now),
                     fe_rsn.eq(rsn_now), fe_short.eq(s_shend)]
        ev_frame = Signal()  # a counted frame ended last cycle
        ev_reason = Signal(len(_REASONS) + 1)  # its drop counter (one-hot by reason; none: ok)
        m.d.sync += [self.ev_drop.eq(0), ev_frame.eq(0), ev_reason.eq(0)]
        with m.If(fe_go):
            m.d.sync += [ev_frame.eq(1), ev_reason.eq(0)]
            m.d.sync += self.ev_drop.eq(fe_err | ~fe_dec | (fe_rsn != _NONE) | fe_short)
            with m.If(fe_err):
                m.d.sync += ev_reason.eq(1 << _ERROR)
            with m.Elif(~fe_dec):
                m.d.sync += ev_reason.eq(1 << _SHORT)
            with m.Elif(fe_rsn == _NONE):
                with m.If(fe_short):
                    m.d.sync += ev_reason.eq(1 << _SHORT)
            with m.Else():
                for r in _REASONS:
                    with m.If(fe_rsn == r):
                        m.d.sync += ev_reason.eq(1 << r)

        # counters: the frame's outcome is registered (ev_frame, ev_reason one-hot) and counted
        # a cycle later by split-carry counters (hw/counter.py), so neither the header decision
        # nor a wide carry chain sits on the same register-to-register path
        cw = self.counter_width
        m.d.comb += cnt.frames.eq(counter(m, cw, en=ev_frame, name="c_frames"))
        for r, name in _REASONS.items():
            m.d.comb += getattr(cnt, name).eq(counter(m, cw, en=ev_reason[r], name=f"c_{name}"))
        return m
