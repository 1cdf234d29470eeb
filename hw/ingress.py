"""The ingress chain: MAC beats in, decoded ITCH records out.

``FrameParser`` (Ethernet/IPv4/UDP, one pipeline register) -> ``MoldUDP64`` (header + sequence
tracker, three registers) -> ``Framer`` (message blocks, output register) -> ``Decoder`` (record
register). See ``docs/ingress.md``.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from host.feed.spec import MOLD_SESSION_WIDTH
from hw.arbiter import ARBITER_COUNTERS, DEFAULT_TIMEOUT, LineArbiter
from hw.decoder import DECODER_COUNTERS, Decoder
from hw.ethernet import (
    ETHERNET_COUNTERS,
    FrameParser,
    _check_counter_width,
    _check_width,
)
from hw.framer import FRAMER_COUNTERS, Framer
from hw.layouts import ItchRecord, mac_beat_layout
from hw.moldudp import MOLD_COUNTERS, MoldUDP64, mold_status_signature

__all__ = [
    "Ingress",
    "INGRESS_COUNTER_NAMES",
    "ingress_config_signature",
    "ingress_status_signature",
]


def _ordered_counters() -> tuple[str, ...]:
    from hw.regs import INGRESS_COUNTERS, check_counters

    ours = (*ETHERNET_COUNTERS, *MOLD_COUNTERS, *DECODER_COUNTERS, *FRAMER_COUNTERS)
    check_counters("ingress", ours)
    return tuple(n for n, _ in INGRESS_COUNTERS)


INGRESS_COUNTER_NAMES: tuple[str, ...] = _ordered_counters()
"""Every counter of the chain, in ``hw.regs.INGRESS_COUNTERS`` order."""


def ingress_config_signature(lines: int = 1) -> wiring.Signature:
    """Configuration of the chain (the RW registers of ``hw.regs``), used as ``In(...)``;
    with ``lines=2`` also ``ab_timeout`` (:class:`hw.arbiter.LineArbiter` ``timeout``)."""
    members = {
        "enable": Out(1),
        "udp_port": Out(16),
        "ip_dst": Out(32),
        "session": Out(8 * MOLD_SESSION_WIDTH),
        "session_valid": Out(1),
    }
    if lines == 2:
        members["ab_timeout"] = Out(32, init=DEFAULT_TIMEOUT)
    return wiring.Signature(members)


def ingress_status_signature() -> wiring.Signature:
    """Status outputs: :func:`hw.moldudp.mold_status_signature` plus ``ev_drop`` (a frame was
    dropped), for ``STATUS``/``STATUS_STICKY``/``STATUS_EXPECTED_SEQ`` of ``hw.regs``."""
    return wiring.Signature({**mold_status_signature().members, "ev_drop": Out(1)})


class Ingress(wiring.Component):
    """Ethernet/IPv4/UDP + MoldUDP64 + ITCH 5.0 ingress.

    Parameters
    ----------
    data_width : int, keyword-only
        MAC data width (64 is the reference; any power of two 16..512 works, with the
        throughput notes of :class:`hw.framer.Framer`).
    counter_width : int, keyword-only
        Width of every counter (default 32; wraps).
    lines : int, keyword-only
        1 (default): one MAC input. 2: A/B feed, two MAC inputs (``i_stream`` is line A,
        ``i_stream_b`` line B), each with its own frame parser, merged by
        :class:`hw.arbiter.LineArbiter` before the one MoldUDP64 tracker; the Ethernet
        counters are the sums of both lines, ``line_counters`` the arbiter's.

    Attributes
    ----------
    i_stream : In(stream.Signature(hw.layouts.mac_beat_layout(data_width)))
    i_stream_b : In(stream.Signature(hw.layouts.mac_beat_layout(data_width)))
        ``lines=2`` only.
    o_stream : Out(stream.Signature(hw.layouts.ItchRecord))
    config : In(ingress_config_signature())
    status : Out(ingress_status_signature())
    counters : Out(...)
        Members named as ``hw.regs.INGRESS_COUNTERS`` (checked at construction).
    line_counters : Out(...)
        ``lines=2`` only: :data:`hw.arbiter.ARBITER_COUNTERS`.

    Notes
    -----
    Latency: 6 cycles from the MAC beat holding a message's last byte to its record being
    valid (frame parser pipeline register + MoldUDP64's three stages + framer output
    register + decoder record register).
    Throughput: one MAC beat per clock for every legal stream (back-to-back frames, packed
    minimum-size messages); only malformed blocks shorter than a beat stall (a cycle per
    block whose length field and end share a beat, see :class:`hw.framer.Framer`).
    Backpressure on ``o_stream`` stalls ``i_stream`` without loss, a cycle later:
    ``i_stream.ready`` is MoldUDP64's (a skid register behind its output register), a function
    of registers; ``o_stream.ready`` reaches back only to MoldUDP64's output and skid
    registers through the decoder and the framer. With ``lines=2`` the arbiter
    adds 2 cycles and its backpressure rules (:class:`hw.arbiter.LineArbiter`).
    """

    def __init__(self, *, data_width: int = 64, counter_width: int = 32, lines: int = 1):
        _check_width(data_width)
        _check_counter_width(counter_width)
        if lines not in (1, 2):
            raise ValueError(f"lines must be 1 or 2, not {lines!r}")
        self.data_width = data_width
        self.counter_width = counter_width
        self.lines = lines
        members = {
            "i_stream": In(stream.Signature(mac_beat_layout(data_width))),
            "o_stream": Out(stream.Signature(ItchRecord)),
            "config": In(ingress_config_signature(lines)),
            "rx_ns": In(64),  # the time now: every frame's records carry it at its first beat
            "status": Out(ingress_status_signature()),
            "counters": Out(
                wiring.Signature({n: Out(counter_width) for n in INGRESS_COUNTER_NAMES})
            ),
        }
        if lines == 2:
            members["i_stream_b"] = In(stream.Signature(mac_beat_layout(data_width)))
            members["line_counters"] = Out(
                wiring.Signature({n: Out(counter_width) for n in ARBITER_COUNTERS})
            )
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        kw = dict(data_width=self.data_width, counter_width=self.counter_width)
        m.submodules.eth = eth = FrameParser(**kw)
        m.submodules.mold = mold = MoldUDP64(**kw)
        m.submodules.framer = framer = Framer(**kw)
        m.submodules.decoder = dec = Decoder(counter_width=self.counter_width)
        cfg = self.config
        eths = [eth]

        wiring.connect(m, wiring.flipped(self.i_stream), eth.i_stream)
        if self.lines == 1:
            wiring.connect(m, eth.o_stream, mold.i_stream)
        else:
            m.submodules.eth_b = eth_b = FrameParser(**kw)
            m.submodules.arbiter = arb = LineArbiter(**kw)
            eths.append(eth_b)
            wiring.connect(m, wiring.flipped(self.i_stream_b), eth_b.i_stream)
            wiring.connect(m, eth.o_stream, arb.a_stream)
            wiring.connect(m, eth_b.o_stream, arb.b_stream)
            wiring.connect(m, arb.o_stream, mold.i_stream)
            m.d.comb += [
                arb.config.session.eq(cfg.session),
                arb.config.session_valid.eq(cfg.session_valid),
                arb.config.timeout.eq(cfg.ab_timeout),
            ]
            for n in ARBITER_COUNTERS:
                m.d.comb += getattr(self.line_counters, n).eq(getattr(arb.counters, n))
        wiring.connect(m, mold.o_stream, framer.i_stream)
        wiring.connect(m, framer.o_stream, dec.i_stream)
        wiring.connect(m, dec.o_stream, wiring.flipped(self.o_stream))
        m.d.comb += [mold.commit.eq(framer.commit), mold.commit_next.eq(framer.commit_next)]

        for e in eths:
            m.d.comb += [
                e.rx_ns.eq(self.rx_ns),
                e.config.enable.eq(cfg.enable),
                e.config.udp_port.eq(cfg.udp_port),
                e.config.ip_dst.eq(cfg.ip_dst),
            ]
        m.d.comb += [
            mold.config.session.eq(cfg.session),
            mold.config.session_valid.eq(cfg.session_valid),
        ]
        for name in mold_status_signature().members:
            m.d.comb += getattr(self.status, name).eq(getattr(mold.status, name))
        m.d.comb += self.status.ev_drop.eq(eths[-1].ev_drop | eth.ev_drop)
        for n in ETHERNET_COUNTERS:
            # one line: the parser's counter; two: the sum over both lines
            total = getattr(eth.counters, n)
            for e in eths[1:]:
                total = total + getattr(e.counters, n)
            m.d.comb += getattr(self.counters, n).eq(total)
        for block, names in (
            (mold, MOLD_COUNTERS),
            (framer, FRAMER_COUNTERS),
            (dec, DECODER_COUNTERS),
        ):
            for n in names:
                m.d.comb += getattr(self.counters, n).eq(getattr(block.counters, n))
        return m
