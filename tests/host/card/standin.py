"""A stand-in top level for testing the simulated-card shim without the real ``hw/top.py``.

It has the port names of the top-level contract (``docs/CONTRACTS.md``, "Top level") and does
something simple and checkable with them, so the C++ clock loop, the batching, the AXI4-Lite
access and the back-pressure paths of :mod:`host.card.sim` can be tested on their own:

* AXI4-Lite registers: ``0x00`` a read-only magic (:data:`MAGIC`), ``0x04`` a read/write scratch
  register (byte strobes honoured), ``0x08`` frames received, ``0x0C`` bytes received, ``0x10``
  a write-1 "stall" register: while bit 0 is set, ``mac.ready`` is held low.
* For every frame, one 64-byte record on ``bbo``: bytes 0-7 the frame's first beat, bytes 8-11
  its length in bytes, bytes 12-15 the frame number (from 0), byte 16 the error flag, the rest 0.

This is a test fixture, not a model of the card.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.layouts import mac_beat_layout

MAGIC = 0x57A2D1E5

AXIL_SIGNATURE = wiring.Signature(
    {
        "awaddr": In(16), "awvalid": In(1), "awready": Out(1),
        "wdata": In(32), "wstrb": In(4), "wvalid": In(1), "wready": Out(1),
        "bresp": Out(2), "bvalid": Out(1), "bready": In(1),
        "araddr": In(16), "arvalid": In(1), "arready": Out(1),
        "rdata": Out(32), "rresp": Out(2), "rvalid": Out(1), "rready": In(1),
    }
)  # fmt: skip


class StandinTop(wiring.Component):
    mac: In(stream.Signature(mac_beat_layout(64)))
    bbo: Out(stream.Signature(512))
    axil: Out(AXIL_SIGNATURE)

    def elaborate(self, platform):
        m = Module()
        ax = self.axil
        scratch = Signal(32)
        frames = Signal(32)
        nbytes = Signal(32)
        stall = Signal()

        # --- AXI4-Lite write: accept address and data together, then answer on B.
        with m.If(ax.bvalid & ax.bready):
            m.d.sync += ax.bvalid.eq(0)
        aw_go = ax.awvalid & ax.wvalid & ~ax.bvalid
        m.d.comb += [ax.awready.eq(aw_go), ax.wready.eq(aw_go)]
        with m.If(aw_go):
            m.d.sync += ax.bvalid.eq(1)
            with m.Switch(ax.awaddr):
                with m.Case(0x04):
                    for i in range(4):
                        with m.If(ax.wstrb[i]):
                            m.d.sync += scratch[8 * i : 8 * i + 8].eq(ax.wdata[8 * i : 8 * i + 8])
                with m.Case(0x10):
                    m.d.sync += stall.eq(ax.wdata[0])
                with m.Default():
                    m.d.sync += ax.bresp.eq(0)

        # --- AXI4-Lite read.
        with m.If(ax.rvalid & ax.rready):
            m.d.sync += ax.rvalid.eq(0)
        ar_go = ax.arvalid & ~ax.rvalid
        m.d.comb += ax.arready.eq(ar_go)
        with m.If(ar_go):
            m.d.sync += ax.rvalid.eq(1)
            with m.Switch(ax.araddr):
                with m.Case(0x00):
                    m.d.sync += ax.rdata.eq(MAGIC)
                with m.Case(0x04):
                    m.d.sync += ax.rdata.eq(scratch)
                with m.Case(0x08):
                    m.d.sync += ax.rdata.eq(frames)
                with m.Case(0x0C):
                    m.d.sync += ax.rdata.eq(nbytes)
                with m.Case(0x10):
                    m.d.sync += ax.rdata.eq(stall)
                with m.Default():
                    m.d.sync += ax.rdata.eq(0xDEADBEEF)

        # --- Frames in, one record per frame out.
        first = Signal(64)
        in_frame = Signal()
        flen = Signal(32)
        beat = self.mac.payload
        nkeep = Signal(4)
        m.d.comb += nkeep.eq(sum(beat.keep[i] for i in range(8)))
        m.d.comb += self.mac.ready.eq(~self.bbo.valid & ~stall)
        with m.If(self.bbo.valid & self.bbo.ready):
            m.d.sync += self.bbo.valid.eq(0)
        with m.If(self.mac.valid & self.mac.ready):
            m.d.sync += nbytes.eq(nbytes + nkeep)
            with m.If(~in_frame):
                m.d.sync += [first.eq(beat.data), in_frame.eq(1), flen.eq(nkeep)]
            with m.Else():
                m.d.sync += flen.eq(flen + nkeep)
            with m.If(beat.last):
                total = flen + nkeep
                m.d.sync += [
                    in_frame.eq(0),
                    frames.eq(frames + 1),
                    self.bbo.valid.eq(1),
                    self.bbo.payload.eq(0),
                    self.bbo.payload[96:128].eq(frames),
                    self.bbo.payload[128:136].eq(beat.error),
                ]
                with m.If(in_frame):
                    m.d.sync += [
                        self.bbo.payload[0:64].eq(first),
                        self.bbo.payload[64:96].eq(total),
                    ]
                with m.Else():
                    m.d.sync += [
                        self.bbo.payload[0:64].eq(beat.data),
                        self.bbo.payload[64:96].eq(nkeep),
                    ]
        return m
