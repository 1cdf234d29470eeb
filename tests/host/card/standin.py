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


class RegStandinTop(wiring.Component):
    """Stand-in with the real register slave (:class:`hw.axil.AXILiteRegisters`).

    Data path as :class:`StandinTop` (one record per frame). Register inputs: ``cnt_frames``
    counts frames, ``cnt_drop_error`` and ``STATUS_STICKY.seen_drop`` frames with the MAC error
    bit; the subscription and clear strobes set ``STATUS.sub_busy`` / ``clear_busy`` for 5
    cycles; ``cnt_records`` counts subscription writes with ``sub_valid`` and
    ``cnt_ignored`` those without. Every other input is 0.
    """

    def __init__(self, params=None):
        from hw.axil import AXILiteSignature
        from hw.regs import U250_PARAMS

        self.params = params or U250_PARAMS
        super().__init__(
            {
                "mac": In(stream.Signature(mac_beat_layout(64))),
                "bbo": Out(stream.Signature(512)),
                "axil": In(AXILiteSignature(addr_width=12)),
            }
        )

    def elaborate(self, platform):
        from hw.axil import AXILiteRegisters
        from hw.regs import build_table

        m = Module()
        m.submodules.regs = rb = AXILiteRegisters(build_table(self.params))
        wiring.connect(m, wiring.flipped(self.axil), rb.axil)
        r = rb.regs
        frames = Signal(64)
        errs = Signal(64)
        subs = Signal(64)
        unsubs = Signal(64)
        busy = Signal(3)
        cbusy = Signal(3)
        m.d.comb += [
            r.cnt_frames.eq(frames),
            r.cnt_drop_error.eq(errs),
            r.cnt_records.eq(subs),
            r.cnt_ignored.eq(unsubs),
            r.sub_busy.eq(busy != 0),
            r.clear_busy.eq(cbusy != 0),
        ]
        with m.If(busy != 0):
            m.d.sync += busy.eq(busy - 1)
        with m.If(cbusy != 0):
            m.d.sync += cbusy.eq(cbusy - 1)
        with m.If(r.sub_write):
            m.d.sync += busy.eq(5)
            with m.If(r.sub_valid):
                m.d.sync += subs.eq(subs + 1)
            with m.Else():
                m.d.sync += unsubs.eq(unsubs + 1)
        with m.If(r.clear_stale_all | r.clear_stale_slot):
            m.d.sync += cbusy.eq(5)
        m.d.comb += self.mac.ready.eq(~self.bbo.valid)
        with m.If(self.bbo.valid & self.bbo.ready):
            m.d.sync += self.bbo.valid.eq(0)
        with m.If(self.mac.valid & self.mac.ready & self.mac.payload.last):
            m.d.sync += [frames.eq(frames + 1), self.bbo.valid.eq(1)]
            m.d.sync += self.bbo.payload.eq(frames)
            with m.If(self.mac.payload.error):
                m.d.sync += errs.eq(errs + 1)
                m.d.comb += r.seen_drop.eq(1)
        return m
