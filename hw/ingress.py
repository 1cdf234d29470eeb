"""The ingress chain: MAC beats in, decoded ITCH records out.

``FrameParser`` (Ethernet/IPv4/UDP, combinational) -> ``MoldUDP64`` (header + sequence
tracker, one register) -> ``Framer`` (message blocks, combinational) -> ``Decoder`` (record
register). See ``docs/ingress.md``.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from host.feed.spec import MOLD_SESSION_WIDTH
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


def ingress_config_signature() -> wiring.Signature:
    """Configuration of the chain (the RW registers of ``hw.regs``), used as ``In(...)``."""
    return wiring.Signature(
        {
            "enable": Out(1),
            "udp_port": Out(16),
            "ip_dst": Out(32),
            "session": Out(8 * MOLD_SESSION_WIDTH),
            "session_valid": Out(1),
        }
    )


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

    Attributes
    ----------
    i_stream : In(stream.Signature(hw.layouts.mac_beat_layout(data_width)))
    o_stream : Out(stream.Signature(hw.layouts.ItchRecord))
    config : In(ingress_config_signature())
    status : Out(ingress_status_signature())
    counters : Out(...)
        Members named as ``hw.regs.INGRESS_COUNTERS`` (checked at construction).

    Notes
    -----
    Latency: 2 cycles from the MAC beat holding a message's last byte to its record being
    valid (MoldUDP64 output register + decoder record register). Throughput: one MAC beat
    per clock for every legal stream (back-to-back frames, packed minimum-size messages);
    only malformed blocks shorter than a beat stall (one cycle per extra block ending in a
    beat). Backpressure on ``o_stream`` stalls ``i_stream`` without loss; ``i_stream.ready``
    is combinational from ``o_stream.ready`` through the chain.
    """

    def __init__(self, *, data_width: int = 64, counter_width: int = 32):
        _check_width(data_width)
        _check_counter_width(counter_width)
        self.data_width = data_width
        self.counter_width = counter_width
        super().__init__(
            {
                "i_stream": In(stream.Signature(mac_beat_layout(data_width))),
                "o_stream": Out(stream.Signature(ItchRecord)),
                "config": In(ingress_config_signature()),
                "status": Out(ingress_status_signature()),
                "counters": Out(
                    wiring.Signature({n: Out(counter_width) for n in INGRESS_COUNTER_NAMES})
                ),
            }
        )

    def elaborate(self, platform):
        m = Module()
        kw = dict(data_width=self.data_width, counter_width=self.counter_width)
        m.submodules.eth = eth = FrameParser(**kw)
        m.submodules.mold = mold = MoldUDP64(**kw)
        m.submodules.framer = framer = Framer(**kw)
        m.submodules.decoder = dec = Decoder(counter_width=self.counter_width)

        wiring.connect(m, wiring.flipped(self.i_stream), eth.i_stream)
        wiring.connect(m, eth.o_stream, mold.i_stream)
        wiring.connect(m, mold.o_stream, framer.i_stream)
        wiring.connect(m, framer.o_stream, dec.i_stream)
        wiring.connect(m, dec.o_stream, wiring.flipped(self.o_stream))
        m.d.comb += [mold.commit.eq(framer.commit), mold.commit_seq.eq(framer.commit_seq)]

        cfg = self.config
        m.d.comb += [
            eth.config.enable.eq(cfg.enable),
            eth.config.udp_port.eq(cfg.udp_port),
            eth.config.ip_dst.eq(cfg.ip_dst),
            mold.config.session.eq(cfg.session),
            mold.config.session_valid.eq(cfg.session_valid),
        ]
        for name in mold_status_signature().members:
            m.d.comb += getattr(self.status, name).eq(getattr(mold.status, name))
        m.d.comb += self.status.ev_drop.eq(eth.ev_drop)
        for block, names in (
            (eth, ETHERNET_COUNTERS),
            (mold, MOLD_COUNTERS),
            (framer, FRAMER_COUNTERS),
            (dec, DECODER_COUNTERS),
        ):
            for n in names:
                m.d.comb += getattr(self.counters, n).eq(getattr(block.counters, n))
        return m
