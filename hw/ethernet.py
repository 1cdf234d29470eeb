"""Ethernet II / IPv4 / UDP frame parser (cut-through): MAC beats in, UDP payload beats out.

The parser never moves data between byte lanes: it marks which lanes of each beat hold UDP
payload (``keep``) and where the payload starts (``offset`` of lane 0 in payload bytes), so the
downstream blocks see every payload byte in the very beat it arrived in (no realignment delay).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
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
        not counted), ``udp_port``, ``ip_dst`` (a.b.c.d = a<<24|b<<16|c<<8|d).
    ev_drop : Out(1)
        One-cycle pulse (registered) when a frame is counted in a drop counter.
    counters : Out(...)
        ``frames`` and one drop counter per frame at most (see ``host.card.ingress_model``).

    Notes
    -----
    Combinational: latency 0 cycles (``o_stream`` is driven from ``i_stream`` in the same
    cycle; header fields, the checksum accumulator and the frame state are registers).
    Throughput one beat per clock, every beat, including back-to-back frames. Backpressure:
    ``i_stream.ready = o_stream.ready`` (header and dropped beats too), so nothing is lost.
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
        xfer = i.valid & i.ready

        # beat index in the frame, saturating (at the all-ones value, past MAX_FRAME_BYTES and
        # below a 32 KiB payload offset): every beat of an accepted datagram has its true index,
        # bytes past the datagram are ignored anyway
        bi = Signal(range(MAX_FRAME_BYTES // nb + 2))
        base = Signal(20)
        m.d.comb += base.eq(bi << lb)
        n_valid = Signal(range(nb + 1))  # valid bytes in this beat (keep is contiguous)
        with m.Switch(beat.keep):
            for k in range(nb + 1):
                with m.Case((1 << k) - 1):
                    m.d.comb += n_valid.eq(k)
            with m.Default():
                m.d.comb += n_valid.eq(nb)
        end = Signal(20)  # bytes received including this beat
        m.d.comb += end.eq(base + n_valid)

        def arrived(addr):
            return addr < end

        regs = {}

        def cap(addr, name):
            """Byte at frame offset ``addr``: this beat's lane if it is here, else the register."""
            reg = regs[name] = Signal(8, name=f"h_{name}")
            now = Signal(8, name=f"n_{name}")
            a = Signal(20, name=f"a_{name}")
            m.d.comb += a.eq(addr)
            hit = (a >> lb) == bi
            lane = beat.data.word_select(a[:lb], 8)
            m.d.comb += now.eq(Mux(hit, lane, reg))
            with m.If(xfer & hit):
                m.d.sync += reg.eq(lane)
            return now

        def be(*bs):
            return Cat(*reversed(bs))

        et0 = be(cap(12, "et0h"), cap(13, "et0l"))
        vlan = et0 == ETHERTYPE_VLAN
        et = Mux(vlan, be(cap(16, "et1h"), cap(17, "et1l")), et0)
        ip = Signal(5)
        m.d.comb += ip.eq(Mux(vlan, 18, 14))
        vihl = Mux(vlan, cap(18, "vihl1"), cap(14, "vihl0"))
        ihl = vihl[0:4]
        ihl_eff = Mux(ihl < 5, 5, ihl)
        udp = Signal(8)
        m.d.comb += udp.eq(ip + (ihl_eff << 2))
        total = be(cap(ip + 2, "tot_h"), cap(ip + 3, "tot_l"))
        frag = be(cap(ip + 6, "frag_h"), cap(ip + 7, "frag_l"))
        proto = cap(ip + 9, "proto")
        dst = be(*(cap(ip + 16 + k, f"dst{k}") for k in range(4)))
        dport = be(cap(udp + 2, "dport_h"), cap(udp + 3, "dport_l"))
        ulen = be(cap(udp + 4, "ulen_h"), cap(udp + 5, "ulen_l"))
        start = Signal(8)  # frame offset of UDP payload byte 0
        m.d.comb += start.eq(udp + 8)
        pend = Signal(18)  # frame offset just past the UDP payload
        m.d.comb += pend.eq(udp + ulen)

        # IPv4 header checksum, 16 bits per lane pair as the header streams in
        acc = Signal(24)
        acc_cur = Mux(bi == 0, 0, acc)
        words = []
        hlen_end = Signal(8)
        m.d.comb += hlen_end.eq(ip + (ihl_eff << 2))
        for j in range(nb // 2):
            a = base + 2 * j
            w = Cat(beat.data[16 * j + 8 : 16 * j + 16], beat.data[16 * j : 16 * j + 8])
            words.append(Mux((a >= ip) & (a < hlen_end), w, 0))
        beat_sum = Signal(24)
        m.d.comb += beat_sum.eq(sum(words))
        csum = Signal(24)
        m.d.comb += csum.eq(acc_cur + beat_sum)
        with m.If(xfer):
            m.d.sync += acc.eq(csum)
        # Pipelined header checks (beats of at most 8 bytes): the IPv4 header ends at least 8
        # bytes before the deciding byte (start - 1), so with nb <= 8 its last word is in an
        # earlier beat and the registered sum ``acc`` is already complete when the decision is
        # taken; total length, IHL, fragment and protocol bytes arrive (bytes 14..27) at least
        # two beats before the deciding beat (beat >= 5 at 8 bytes), so checks derived from
        # their capture registers are registered once more. Wider beats (the header in one or
        # two beats) keep the one-cycle decision.
        piped = nb <= 8
        dsum = acc if piped else csum
        f1 = Signal(17)
        f2 = Signal(17)
        m.d.comb += [f1.eq(dsum[:16] + dsum[16:]), f2.eq(f1[:16] + f1[16:])]
        csum_ok = f2[:16] == 0xFFFF
        ip_len = (ihl << 2)
        ip_bad = (vihl[4:8] != 4) | (ihl < 5) | (total < ip_len) | (frag[:14] != 0)
        udp_room = total - ip_len  # largest UDP length the datagram holds
        too_long = ip + total > MAX_FRAME_BYTES
        if piped:
            ip_bad_r = Signal()
            udp_room_r = Signal(16)
            too_long_r = Signal()
            proto_bad_r = Signal()
            m.d.sync += [ip_bad_r.eq(ip_bad), udp_room_r.eq(udp_room), too_long_r.eq(too_long),
                         proto_bad_r.eq(proto != 17)]
            ip_bad, udp_room, too_long, proto_bad = ip_bad_r, udp_room_r, too_long_r, proto_bad_r
        else:
            proto_bad = proto != 17

        # frame state
        decided = Signal()  # header decision taken (registered)
        reason = Signal(3)  # drop reason of a decided frame (_NONE: accepted)
        en = Signal()  # enable sampled at the first beat
        en_cur = Mux(bi == 0, cfg.enable, en)
        dec_cur = Mux(bi == 0, 0, decided)
        rsn_cur = Mux(bi == 0, _NONE, reason)

        dec_now = Signal()
        rsn_now = Signal(3)
        m.d.comb += [dec_now.eq(dec_cur), rsn_now.eq(rsn_cur)]
        with m.If(~dec_cur):
            with m.If(arrived(ip - 1)):
                with m.If(et != ETHERTYPE_IPV4):
                    m.d.comb += [dec_now.eq(1), rsn_now.eq(_ETHERTYPE)]
                with m.Elif(arrived(start - 1)):
                    m.d.comb += dec_now.eq(1)
                    with m.If(ip_bad | ~csum_ok):
                        m.d.comb += rsn_now.eq(_IP)
                    with m.Elif(proto_bad):
                        m.d.comb += rsn_now.eq(_PROTO)
                    with m.Elif((ulen < UDP_MIN_LENGTH) | (ulen > udp_room)):
                        m.d.comb += rsn_now.eq(_SHORT)
                    with m.Elif(too_long):
                        m.d.comb += rsn_now.eq(_LONG)
                    with m.Elif(dst != cfg.ip_dst):
                        m.d.comb += rsn_now.eq(_ADDR)
                    with m.Elif(dport != cfg.udp_port):
                        m.d.comb += rsn_now.eq(_PORT)
                    with m.Else():
                        m.d.comb += rsn_now.eq(_NONE)
        fwd = en_cur & dec_now & (rsn_now == _NONE)
        first = fwd & ~dec_cur

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

        # output (combinational)
        keep = Signal(nb)
        for j in range(nb):
            a = base + j
            m.d.comb += keep[j].eq((a >= start) & (a < pend) & (j < n_valid))
        m.d.comb += [
            o.valid.eq(i.valid & fwd),
            i.ready.eq(o.ready),
            o.payload.data.eq(beat.data),
            o.payload.keep.eq(keep),
            o.payload.offset.eq(base - start),
            o.payload.first.eq(first),
            o.payload.last.eq(beat.last),
            o.payload.error.eq(beat.last & beat.error),
            o.payload.trunc.eq(beat.last & (end < pend)),
            o.payload.rx_ns.eq(stamp),
        ]

        ev_frame = Signal()  # a counted frame ended last cycle
        ev_reason = Signal(len(_REASONS) + 1)  # its drop counter (one-hot by reason; none: ok)
        m.d.sync += [self.ev_drop.eq(0), ev_frame.eq(0), ev_reason.eq(0)]
        with m.If(xfer):
            m.d.sync += [decided.eq(dec_now), reason.eq(rsn_now), en.eq(en_cur)]
            with m.If(beat.last):
                m.d.sync += bi.eq(0)
            with m.Elif(bi != (1 << len(bi)) - 1):
                m.d.sync += bi.eq(bi + 1)
            with m.If(beat.last & en_cur):
                m.d.sync += [ev_frame.eq(1), ev_reason.eq(0)]
                m.d.sync += self.ev_drop.eq(
                    beat.error | ~dec_now | (rsn_now != _NONE) | (end < ip + total)
                )
                with m.If(beat.error):
                    m.d.sync += ev_reason.eq(1 << _ERROR)
                with m.Elif(~dec_now):
                    m.d.sync += ev_reason.eq(1 << _SHORT)
                with m.Elif(rsn_now == _NONE):
                    with m.If(end < ip + total):
                        m.d.sync += ev_reason.eq(1 << _SHORT)
                with m.Else():
                    for r in _REASONS:
                        with m.If(rsn_now == r):
                            m.d.sync += ev_reason.eq(1 << r)

        # counters: the frame's outcome is registered (ev_frame, ev_reason one-hot) and counted
        # a cycle later by split-carry counters (hw/counter.py), so neither the header decision
        # nor a wide carry chain sits on the same register-to-register path
        cw = self.counter_width
        m.d.comb += cnt.frames.eq(counter(m, cw, en=ev_frame, name="c_frames"))
        for r, name in _REASONS.items():
            m.d.comb += getattr(cnt, name).eq(counter(m, cw, en=ev_reason[r], name=f"c_{name}"))
        return m
