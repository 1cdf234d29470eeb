"""MAC-side adapters of the card wrapper for a 10G/25G MAC (AMD 10G/25G Ethernet Subsystem,
PG210): its RX AXI-Stream is 64 bits wide in the MAC's own clock (156.25 MHz at 10G,
390.625 MHz at 25G) with no backpressure, so the core needs a clock-crossing frame FIFO in
front of it (the 100G CMAC path uses :class:`hw.platform.alveo.MacDownsizer` in the core's
own clock instead).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import AsyncFIFOBuffered, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.layouts import mac_beat_layout

__all__ = ["MIN_FRAME_BYTES", "MacRxFifo"]

MIN_FRAME_BYTES = 64
"""The shortest frame a MAC delivers (IEEE 802.3 minimum; PG210 ``ctl_rx_min_packet_len``):
it bounds the frames one FIFO of beats can hold, and so the stamp FIFO's depth."""


def mac_rx_members(width: int) -> dict:
    """The ports of a MAC-side adapter (:class:`MacRxFifo`, ``hw.platform.alveo.MacDownsizer``):
    the MAC's AXI4-Stream RX at ``width`` bits in, 64-bit core beats out with the frame's
    start-of-packet stamp, a whole-frame ``overflow`` pulse and the core's ns clock ``now``."""
    return {
        "rx_tdata": In(width), "rx_tkeep": In(width // 8), "rx_tlast": In(1), "rx_tuser": In(1),
        "rx_tvalid": In(1),
        "o_payload": Out(mac_beat_layout(64)), "o_valid": Out(1), "o_ready": In(1),
        "overflow": Out(1),
        "now": In(64), "o_sop_ns": Out(64),
    }


class MacRxFifo(wiring.Component):
    """10G/25G MAC RX AXI-Stream (64-bit, ``w_domain``, no backpressure) -> core-domain
    ``mac_beat_layout(64)`` stream, whole frames only, with a start-of-packet stamp.

    A frame is admitted only if the FIFO has room for a maximum-size frame when its first
    beat arrives (the write side's level, which lags the reads: conservative); otherwise the
    whole frame is dropped and ``overflow`` pulses once in the core domain. Admitted frames
    are never cut. ``error`` (the MAC's ``rx_axis_tuser``) is kept on the last beat.

    Start-of-packet stamp: every admitted frame toggles a flag in the MAC domain at its first
    beat; the core domain sees the toggle through a 2-flop synchronizer and pushes ``now``
    (the core's ns clock, ``hw.top.Top.ns_now``) into a stamp FIFO, which the read side pairs
    with the frames in order: ``o_sop_ns`` is the frame's stamp beside each of its beats. The
    stamp is therefore taken 2-3 core cycles plus up to one MAC cycle after the first beat
    left the MAC (within ~12 ns at 322 MHz / 390.625 MHz), not after the frame waited in this
    FIFO. Two first beats are at least ``MIN_FRAME_BYTES / 8`` MAC cycles apart, longer than
    the synchronizer's window, so no toggle is missed; a first beat waits for its stamp when
    it crosses faster than the toggle (the FIFO's own crossing is about as long).

    Throughput: one 64-bit beat per core cycle out: 20.6 Gb/s at 322 MHz, below 25GBASE-R's
    25 Gb/s, so at 25G a sustained full-rate burst drops whole frames once ``depth`` beats
    are queued (an ITCH feed is a few Gb/s); at 10G the core is never the bottleneck.
    Latency: the asynchronous FIFO's crossing (about 4-5 core cycles) plus the queue.
    Backpressure: ``o_ready`` low holds the output; frames that do not fit are dropped whole.

    Parameters
    ----------
    depth : int
        FIFO entries (64-bit beats), a power of two and at least twice a maximum frame.
    max_frame_bytes : int
        Largest frame the MAC is configured to pass (PG210 ``ctl_rx_max_packet_len``).
    w_domain : str
        The MAC's clock domain (the read side is ``sync``, the core's).
    """

    def __init__(self, *, depth: int = 4096, max_frame_bytes: int = 9600,
                 w_domain: str = "mac"):
        for name, v in (("depth", depth), ("max_frame_bytes", max_frame_bytes)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, not {v!r}")
        if max_frame_bytes < MIN_FRAME_BYTES:
            raise ValueError(f"max_frame_bytes {max_frame_bytes} < {MIN_FRAME_BYTES}")
        self.max_beats = -(-max_frame_bytes // 8)
        if depth & (depth - 1) or depth < 2 * self.max_beats:
            raise ValueError(f"depth {depth} must be a power of two >= 2 x {self.max_beats} "
                             "beats of a maximum frame")
        if not isinstance(w_domain, str) or w_domain == "sync":
            raise ValueError("w_domain must name the MAC's clock domain (not 'sync')")
        self.depth = depth
        self.w_domain = w_domain
        # frames in the beat FIFO at once: at most depth / (beats of a shortest frame)
        self.stamp_depth = depth // (MIN_FRAME_BYTES // 8) + 4
        super().__init__(mac_rx_members(64))

    def elaborate(self, platform):
        m = Module()
        wd = getattr(m.d, self.w_domain)
        beat = data.StructLayout({"data": 64, "keep": 8, "last": 1, "error": 1})
        m.submodules.fifo = fifo = AsyncFIFOBuffered(
            width=beat.size, depth=self.depth, w_domain=self.w_domain, r_domain="sync")
        w = data.View(beat, fifo.w_data)

        # ---- MAC domain: admission, whole-frame drop, toggles for SOP and drop
        in_frame = Signal()
        dropping = Signal()
        room = Signal()
        sop_t = Signal()   # toggles at each admitted frame's first beat
        drop_t = Signal()  # toggles at each dropped frame's first beat
        m.d.comb += room.eq(fifo.w_level <= self.depth - self.max_beats)
        with m.If(self.rx_tvalid):
            first = ~in_frame
            m.d.comb += [
                fifo.w_en.eq(Mux(first, room, ~dropping)),
                w.data.eq(self.rx_tdata), w.keep.eq(self.rx_tkeep),
                w.last.eq(self.rx_tlast), w.error.eq(self.rx_tuser),
            ]
            wd += in_frame.eq(~self.rx_tlast)
            with m.If(first):
                wd += dropping.eq(~room)
                with m.If(room):
                    wd += sop_t.eq(~sop_t)
                with m.Else():
                    wd += drop_t.eq(~drop_t)

        # ---- core domain: toggles -> pulses; stamps
        sop_s, drop_s = Signal(), Signal()
        m.submodules.sop_sync = FFSynchronizer(sop_t, sop_s, o_domain="sync")
        m.submodules.drop_sync = FFSynchronizer(drop_t, drop_s, o_domain="sync")
        sop_p, drop_p = Signal(), Signal()
        m.d.sync += [sop_p.eq(sop_s), drop_p.eq(drop_s)]
        m.d.sync += self.overflow.eq(drop_s != drop_p)
        m.submodules.stamps = stamps = SyncFIFOBuffered(width=64, depth=self.stamp_depth)
        m.d.comb += [stamps.w_data.eq(self.now), stamps.w_en.eq(sop_s != sop_p)]

        # ---- read side: a frame's first beat leaves with its stamp
        r = data.View(beat, fifo.r_data)
        r_in_frame = Signal()
        held = Signal(64)
        m.d.comb += [
            self.o_valid.eq(fifo.r_rdy & (r_in_frame | stamps.r_rdy)),
            self.o_payload.data.eq(r.data), self.o_payload.keep.eq(r.keep),
            self.o_payload.last.eq(r.last), self.o_payload.error.eq(r.error & r.last),
            self.o_sop_ns.eq(Mux(r_in_frame, held, stamps.r_data)),
        ]
        xfer = self.o_valid & self.o_ready
        m.d.comb += fifo.r_en.eq(xfer)
        with m.If(xfer):
            m.d.sync += r_in_frame.eq(~r.last)
            with m.If(~r_in_frame):
                m.d.comb += stamps.r_en.eq(1)
                m.d.sync += held.eq(stamps.r_data)
        return m
