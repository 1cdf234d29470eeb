"""ITCH 5.0 decoder: one framed message in, one fixed-layout record out.

The field muxes are generated from :data:`host.feed.record_map.RECORD_MAP` and the offsets of
:mod:`host.feed.spec`; nothing here names an offset.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from host.feed.record_map import RECORD_MAP
from host.feed.spec import MAX_MESSAGE_LENGTH, MESSAGES
from hw.counter import counter
from hw.layouts import ItchRecord

__all__ = ["message_layout", "Decoder", "DECODER_COUNTERS", "type_counter"]


def type_counter(t: str) -> str:
    """Counter name of message type ``t`` (the ``hw.regs`` naming: ``A`` -> ``msg_a``,
    ``h`` -> ``msg_hh``)."""
    return f"msg_{t.lower()}" if t.isupper() else f"msg_{t.lower() * 2}"


DECODER_COUNTERS: tuple[str, ...] = (
    "messages",
    *(type_counter(t) for t in MESSAGES),
    "unknown_type",
    "bad_length",
)
"""Counters of :class:`Decoder`."""


def message_layout(max_length: int = MAX_MESSAGE_LENGTH) -> data.StructLayout:
    """One framed message as the framer hands it to the decoder.

    ``data`` holds the first ``max_length`` message bytes, message byte ``i`` (the type byte is
    byte 0) in bits ``8*i+7 : 8*i``; ``length`` is the MoldUDP64 block length (which may be
    larger or smaller than the type's length); ``seq`` its sequence number; ``gap`` set when a
    sequence gap came before it; ``rx_ns`` the hardware timestamp of its frame.
    """
    return data.StructLayout(
        {
            "data": unsigned(8 * max_length),
            "length": unsigned(16),
            "seq": unsigned(64),
            "gap": unsigned(1),
            "rx_ns": unsigned(64),
        }
    )


def _counter_signature(names, width):
    return wiring.Signature({n: Out(width) for n in names})


def _field_value(msg_data, spec_field):
    """The record value of a spec field: alpha as wire bytes (first char in bits 7:0),
    numbers big-endian."""
    o, w = spec_field.offset, spec_field.width
    raw = msg_data[8 * o : 8 * (o + w)]
    if spec_field.kind == "alpha":
        return raw
    return Cat(*(raw[8 * (w - 1 - i) : 8 * (w - i)] for i in range(w)))


class Decoder(wiring.Component):
    """ITCH 5.0 message decoder.

    Parameters
    ----------
    counter_width : int, keyword-only
        Width of each counter (default 32; wraps).

    Attributes
    ----------
    i_stream : In(stream.Signature(message_layout()))
        Framed messages.
    o_stream : Out(stream.Signature(hw.layouts.ItchRecord))
        Decoded records (``seq``/``gap`` copied; fields a type does not map are 0).
    counters : Out(...)
        ``messages`` (records emitted), ``msg_<type>`` per type, ``unknown_type``,
        ``bad_length`` (length 0 or shorter than the type's length; longer is accepted and
        the extra bytes ignored).

    Notes
    -----
    Latency: 1 cycle (record register). Throughput: one message per clock. Backpressure: the
    input is ready when the record register is empty or being read (``o_stream.ready``), so
    a stalled output stalls the input in the same cycle, without loss. Messages that yield
    no record (unknown type, bad length) are consumed in one cycle; a gap flag they carry
    moves to the next record.
    """

    def __init__(self, *, counter_width: int = 32):
        if not isinstance(counter_width, int) or isinstance(counter_width, bool):
            raise TypeError(f"counter_width must be an int, not {counter_width!r}")
        if not 1 <= counter_width <= 64:
            raise ValueError(f"counter_width must be 1..64, not {counter_width}")
        self.counter_width = counter_width
        super().__init__(
            {
                "i_stream": In(stream.Signature(message_layout())),
                "o_stream": Out(stream.Signature(ItchRecord)),
                "counters": Out(_counter_signature(DECODER_COUNTERS, counter_width)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        msg = i.payload
        mtype = msg.data[0:8]

        known = Signal()
        short = Signal()
        rec = Signal(ItchRecord)
        with m.Switch(mtype):
            for t, spec in MESSAGES.items():
                with m.Case(spec.code):
                    m.d.comb += known.eq(1)
                    m.d.comb += short.eq(msg.length < spec.length)
                    for rf, per_type in RECORD_MAP.items():
                        sf = per_type.get(t)
                        if sf is not None:
                            m.d.comb += getattr(rec, rf).eq(_field_value(msg.data, spec.field(sf)))
        carry = Signal()  # a gap flag waiting for the next record
        good = known & ~short & (msg.length != 0)
        m.d.comb += [rec.seq.eq(msg.seq), rec.gap.eq(msg.gap | carry), rec.rx_ns.eq(msg.rx_ns)]

        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        cnt = self.counters
        xfer = i.valid & i.ready
        cw = self.counter_width
        bad_len = Signal()
        m.d.comb += bad_len.eq((known & (msg.length != 0)) | (msg.length == 0))
        with m.If(xfer):
            with m.If(good):
                m.d.sync += [o.valid.eq(1), o.payload.eq(rec), carry.eq(0)]
            with m.Else():
                m.d.sync += carry.eq(msg.gap | carry)
        # split-carry counters (hw/counter.py): the 48-bit increments were the deepest
        # register-to-register paths of this block
        m.d.comb += cnt.messages.eq(counter(m, cw, en=xfer & good, name="c_messages"))
        for t, spec in MESSAGES.items():
            name = type_counter(t)
            hit = xfer & good & (mtype == spec.code)
            m.d.comb += getattr(cnt, name).eq(counter(m, cw, en=hit, name=f"c_{name}"))
        m.d.comb += [
            cnt.bad_length.eq(counter(m, cw, en=xfer & ~good & bad_len, name="c_bad_length")),
            cnt.unknown_type.eq(counter(m, cw, en=xfer & ~good & ~bad_len, name="c_unknown")),
        ]
        return m
