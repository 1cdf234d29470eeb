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
    moves to the next record. The counters move from registered enables: one cycle after
    the message is consumed, plus :func:`hw.counter.counter_lag`.
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

        # The length check, split so that no wide function of the type and the length sits
        # before the record's valid bit: the type's minimum length (a 6-bit table of the type
        # byte, every ITCH length being < 64) and ``known`` are kept nets, the length compares
        # with that table value in 6 bits, and the upper length bits are one zero test.
        lmax = max(spec.length for spec in MESSAGES.values())
        assert lmax < 64
        known = Signal(attrs={"keep": 1})
        minlen = Signal(6, attrs={"keep": 1})  # the type's length (0: unknown type)
        hz = Signal(attrs={"keep": 1})  # length < 64
        nz = Signal(attrs={"keep": 1})  # length != 0
        lt6 = Signal(attrs={"keep": 1})  # length[:6] < minlen
        m.d.comb += [hz.eq(msg.length[6:] == 0), nz.eq(msg.length != 0),
                     lt6.eq(msg.length[:6] < minlen)]
        short = hz & lt6
        rec = Signal(ItchRecord)
        with m.Switch(mtype):
            for t, spec in MESSAGES.items():
                with m.Case(spec.code):
                    m.d.comb += known.eq(1)
                    m.d.comb += minlen.eq(spec.length)
                    for rf, per_type in RECORD_MAP.items():
                        sf = per_type.get(t)
                        if sf is not None:
                            m.d.comb += getattr(rec, rf).eq(_field_value(msg.data, spec.field(sf)))
        carry = Signal()  # a gap flag waiting for the next record
        good = Signal(attrs={"keep": 1})
        m.d.comb += good.eq(known & ~short & nz)
        m.d.comb += [rec.seq.eq(msg.seq), rec.gap.eq(msg.gap | carry), rec.rx_ns.eq(msg.rx_ns)]

        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        cnt = self.counters
        xfer = i.valid & i.ready
        cw = self.counter_width
        bad_len = Signal()
        m.d.comb += bad_len.eq((known & nz) | ~nz)
        with m.If(xfer):
            # (the record loads with every accepted message, good or not: its valid bit says
            # which, so the length check does not enable the record's flops)
            m.d.sync += o.payload.eq(rec)
            with m.If(good):
                m.d.sync += [o.valid.eq(1), carry.eq(0)]
            with m.Else():
                m.d.sync += carry.eq(msg.gap | carry)
        # split-carry counters (hw/counter.py): the 48-bit increments were the deepest
        # register-to-register paths of this block. Their enables are registered (one-hot by
        # type), so the counters move a cycle after the message: the type and length checks
        # and the counter carry are not on one path.
        ev_msg = Signal()
        ev_bad = Signal()
        ev_unk = Signal()
        ev_type = Signal(len(MESSAGES))
        m.d.sync += [ev_msg.eq(xfer & good), ev_bad.eq(xfer & ~good & bad_len),
                     ev_unk.eq(xfer & ~good & ~bad_len)]
        m.d.sync += ev_type.eq(Cat(*[xfer & good & (mtype == spec.code)
                                     for spec in MESSAGES.values()]))
        m.d.comb += cnt.messages.eq(counter(m, cw, en=ev_msg, name="c_messages"))
        for n, t in enumerate(MESSAGES):
            name = type_counter(t)
            m.d.comb += getattr(cnt, name).eq(counter(m, cw, en=ev_type[n], name=f"c_{name}"))
        m.d.comb += [
            cnt.bad_length.eq(counter(m, cw, en=ev_bad, name="c_bad_length")),
            cnt.unknown_type.eq(counter(m, cw, en=ev_unk, name="c_unknown")),
        ]
        return m
