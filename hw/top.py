"""The top level: MAC RX beats in, BBO records out (64 bytes; ``record_bytes(depth_n)`` with
the top ``depth_n`` levels in a depth build), AXI4-Lite registers.

::

    mac ──> Ingress ──> Book ──> record packer ──> bbo (records, hw/bbo_record.py)
             │  config/status/counters  │ subscription, clears, counters
             └──────────── AXILiteRegisters (hw/axil.py, table of hw/regs.py) <── axil

See ``docs/top.md`` for the bring-up sequence, the measured latency and the known limits.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw import bbo_record
from hw.axil import AXILiteRegisters, AXILiteSignature
from hw.book import Book
from hw.counter import counter
from hw.ingress import Ingress
from hw.layouts import mac_beat_layout
from hw.nsclock import NsClock
from hw.regs import (
    ARBITER_COUNTERS,
    BOOK_COUNTERS,
    INGRESS_COUNTERS,
    TOP_COUNTERS,
    BuildParams,
    build_table,
    check_counters,
)

__all__ = ["Top", "SIM_PARAMS"]

SIM_PARAMS = dict(data_width=64, slots=16, capacity=4096, ways=4, levels=4096, depth_n=1)
"""The default (simulation) parameters; the U250 set is ``hw.synth.BLOCKS['top']``."""

_U32_MAX = (1 << 32) - 1


def _int(name, v, lo, hi=None):
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, not {v!r}")
    if v < lo or (hi is not None and v > hi):
        raise ValueError(f"{name} must be in {lo}..{hi if hi is not None else 'inf'}, not {v}")


class Top(wiring.Component):
    """MAC RX -> :class:`hw.ingress.Ingress` -> :class:`hw.book.Book` -> BBO record stream.

    Parameters (keyword-only)
    -------------------------
    data_width : int
        MAC beat width in bits (64: the reference; see :class:`hw.ingress.Ingress`).
    slots, capacity, ways, levels : int
        Book parameters (:class:`hw.book.Book`): symbols tracked, order table entries (power of
        two), ways per bucket, ladder window per side per slot in ticks (power of two >= 64).
    depth_n : int
        Levels per side in a record, 1..``min(k, 16)``. 1: the 64-byte record of
        :mod:`hw.bbo_record`. More: ``bbo_record.record_bytes(depth_n)`` bytes (levels 2..N of
        both sides after the 64 bytes), and a record for every change in the top ``depth_n``
        of a side (``FLAG_DEPTH_ONLY`` marks those a ``depth_n = 1`` build would not send).
    k : int
        Top-K cache entries per (slot, side) of the book's ladder.
    fifo_depth : int
        Book output FIFO, op queue and message-data FIFO entries.
    lanes, lane_fifo : int
        Ladder lanes of the book and their FIFO depth (:class:`hw.lanes.LadderLanes`).
    counter_width : int
        Width of the ingress counters (the book's are ``hw.book.COUNTER_WIDTH``); the registers
        zero-extend to 64.
    clk_hz : int
        Nominal core clock reported by ``ID_CLK_HZ``.
    addr_width : int
        AXI4-Lite byte address bits (default 12: 4 KiB).
    lines : int
        1 (default): one MAC input. 2: an A/B feed, ``mac`` is line A and ``mac_b`` line B,
        merged by :class:`hw.arbiter.LineArbiter` in the ingress (``ID_LINES``,
        ``CONFIG_AB_TIMEOUT``, the ``CNT_LINE_*`` counters).
    mac_stamp : bool
        False (default): a frame's ``rx_ns`` is the ns clock when its first beat reaches
        ``mac``. True: it is ``mac_sop_ns``, a stamp the platform's MAC path took from
        ``ns_now`` at the MAC's start of packet and carried with the frame (e.g.
        :class:`hw.platform.alveo.MacDownsizer`), so the time a frame waits in front of the
        core is in the record's latency. Adds the ports ``ns_now`` and ``mac_sop_ns``.

    Attributes
    ----------
    mac : In(stream.Signature(hw.layouts.mac_beat_layout(data_width)))
        MAC RX beats.
    mac_b : In(stream.Signature(hw.layouts.mac_beat_layout(data_width)))
        ``lines=2`` only: line B's MAC RX beats.
    bbo : Out(stream.Signature(8 * record_bytes(depth_n)))
        One little-endian record per BBO (or, ``depth_n > 1``, top-N) update, byte 0 in bits
        7:0: 512 bits when ``depth_n = 1``.
    mac_overflow : In(1)
        One cycle high per frame the platform's MAC path dropped whole before ``mac`` (e.g.
        :class:`hw.platform.alveo.MacDownsizer`'s ``overflow``); counted in
        ``CNT_MAC_DROPPED_FRAMES``. Tie to 0 where nothing in front of the core drops frames.
    axil : In(hw.axil.AXILiteSignature(addr_width=addr_width))
        Register slave; every register of ``self.table`` (:func:`hw.regs.build_table` with
        this build's parameters).
    ns_now : Out(64)
        ``mac_stamp=True`` only: the ns clock (``STATUS_CLK_NOW``), for the MAC path's stamp.
    mac_sop_ns : In(64)
        ``mac_stamp=True`` only: the start-of-packet stamp of the frame on ``mac`` (read with
        its first beat).

    Notes
    -----
    Latency (measured by ``sim/top`` before the Ethernet parser's stage, see docs/top.md):
    ingress 3 cycles (4 since that stage, bench_ingress) from the beat holding a message's
    last byte to its decoded record; MAC beat to BBO record valid 21 cycles at the least
    (``U``: 24) in the simulation parameters, one more with the parser's stage.
    Throughput: one MAC beat per clock; one record per clock out.
    Backpressure: ``bbo.ready`` low holds the record in the output register, fills the book's
    output FIFO, then stalls the book input, the ingress and ``mac.ready``; nothing is lost.
    ``CTRL_PULSE.soft_reset`` resets the ingress, the book (which then clears every slot,
    ``slots`` cycles, plus one order-table scrub of ``capacity // ways`` cycles when that wraps
    a slot's epoch, see docs/book.md), the packer and the counters; the register values and
    ``STATUS_CYCLES`` are kept. ``CTRL_PULSE.counters_clear`` zeroes every counter (the block
    counters through a snapshot subtracted on read-out; the counter registers lag the source by
    one cycle). ``INJECT_CTRL`` loads one injection (``INJECT_*`` registers) into a register
    that offers it to the book's ``inj`` port until taken (``STATUS.inject_busy``); a pulse
    while one waits is dropped and sets ``STATUS_STICKY.seen_inject_overrun``.
    """

    def __init__(self, *, data_width: int = 64, slots: int = SIM_PARAMS["slots"],
                 capacity: int = SIM_PARAMS["capacity"], ways: int = SIM_PARAMS["ways"],
                 levels: int = SIM_PARAMS["levels"], depth_n: int = 1, k: int = 16,
                 fifo_depth: int = 16, lanes: int = 1, lane_fifo: int = 4,
                 counter_width: int = 32, clk_hz: int = 322_265_625, addr_width: int = 12,
                 lines: int = 1, mac_stamp: bool = False):
        _int("k", k, 2)
        if not isinstance(mac_stamp, bool):
            raise TypeError(f"mac_stamp must be a bool, not {mac_stamp!r}")
        if mac_stamp and lines != 1:
            raise ValueError("mac_stamp needs lines=1 (the ingress stamps both lines from one "
                             "clock input)")
        self.mac_stamp = mac_stamp
        _int("depth_n", depth_n, 1, min(k, bbo_record.MAX_DEPTH_N))
        _int("clk_hz", clk_hz, 1, 2**32 - 1)
        self.lines = lines
        self._ingress = Ingress(data_width=data_width, counter_width=counter_width, lines=lines)
        self.depth_n = depth_n
        self.record_bytes = bbo_record.record_bytes(depth_n)
        # depth_n > 1: a record for every change in the top depth_n (depth_only marks the
        # ones a depth_n = 1 build would not send)
        self._book = Book(slots=slots, capacity=capacity, ways=ways, levels=levels,
                          depth_n=depth_n, k=k, fifo_depth=fifo_depth, lanes=lanes,
                          lane_fifo=lane_fifo, depth_records=depth_n > 1)
        ing_names = list(self._ingress.signature.members["counters"].signature.members)
        book_names = [n for n, _ in self._book.signature.members["counters"].shape]
        check_counters("ingress", ing_names)
        check_counters("book", book_names)
        check_counters("top", [n for n, _ in TOP_COUNTERS])
        self.params = BuildParams(data_width=data_width, slots=slots, table_capacity=capacity,
                                  levels=levels, depth_n=depth_n,
                                  record_bytes=self.record_bytes, clk_hz=clk_hz, ways=ways,
                                  lines=lines)
        self.table = build_table(self.params)
        self._regs = AXILiteRegisters(self.table, addr_width=addr_width)
        self.data_width = data_width
        members = {
            "mac": In(stream.Signature(mac_beat_layout(data_width))),
            "bbo": Out(stream.Signature(8 * self.record_bytes)),
            "mac_overflow": In(1),
            "axil": In(AXILiteSignature(addr_width=addr_width)),
        }
        if lines == 2:
            check_counters("lines", list(
                self._ingress.signature.members["line_counters"].signature.members))
            members["mac_b"] = In(stream.Signature(mac_beat_layout(data_width)))
        if mac_stamp:
            members["ns_now"] = Out(64)
            members["mac_sop_ns"] = In(64)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        ing, book, regs = self._ingress, self._book, self._regs
        r = regs.regs
        soft = Signal()
        m.d.comb += soft.eq(r.soft_reset)
        m.submodules.ingress = ResetInserter(soft)(ing)
        m.submodules.book = ResetInserter(soft)(book)
        m.submodules.regs = regs
        core = Module()  # everything reset by the soft reset
        m.submodules.core = ResetInserter(soft)(core)

        wiring.connect(m, wiring.flipped(self.axil), regs.axil)
        wiring.connect(m, wiring.flipped(self.mac), ing.i_stream)
        if self.lines == 2:
            wiring.connect(m, wiring.flipped(self.mac_b), ing.i_stream_b)
            m.d.comb += ing.config.ab_timeout.eq(r.ab_timeout)
        wiring.connect(m, ing.o_stream, book.i_stream)

        # ---------------- configuration / control
        m.d.comb += [
            ing.config.enable.eq(r.enable),
            ing.config.udp_port.eq(r.udp_port),
            ing.config.ip_dst.eq(r.ip_dst),
            ing.config.session.eq(Cat(r.session_0, r.session_1, r.session_2)),
            ing.config.session_valid.eq(r.session_valid),
            book.sub_locate.eq(r.sub_locate),
            book.sub_slot.eq(r.sub_slot),
            book.sub_valid.eq(r.sub_valid),
            book.sub_tick.eq(r.sub_tick),
            book.sub_write.eq(r.sub_write),
            book.clear_slot.eq(r.clear_slot),
            book.clear_stale_slot.eq(r.clear_stale_slot),
            book.clear_stale_all.eq(r.clear_stale_all),
        ]

        # ---------------- host injection (re-seed): one waiting record, ahead of the feed
        inj = book.inj
        inj_overrun = Signal()
        strobe = r.inject_add | r.inject_commit
        with core.If(inj.valid & inj.ready):
            core.d.sync += inj.valid.eq(0)
        with core.If(strobe):
            with core.If(inj.valid & ~inj.ready):
                core.d.comb += inj_overrun.eq(1)  # dropped: the waiting one is kept
            with core.Else():
                core.d.sync += [
                    inj.valid.eq(1),
                    inj.payload.locate.eq(r.inject_locate),
                    inj.payload.bid.eq(r.inject_bid),
                    inj.payload.ref.eq(Cat(r.inject_ref_lo, r.inject_ref_hi)),
                    inj.payload.shares.eq(r.inject_shares),
                    inj.payload.px.eq(r.inject_price),
                    inj.payload.commit.eq(r.inject_commit),
                ]

        # ---------------- status
        st = ing.status
        m.d.comb += [
            r.session_locked.eq(st.session_locked),
            r.clear_busy.eq(book.clear_busy),
            r.sub_busy.eq(book.sub_busy),
            r.inject_busy.eq(book.inj.valid),
            r.seen_inject_overrun.eq(inj_overrun),
            r.seen_gap.eq(st.ev_gap),
            r.seen_drop.eq(st.ev_drop),
            r.seen_table_full.eq(book.ev_table_full),
            r.seen_level_overflow.eq(book.ev_level_overflow),
            r.seen_end_of_session.eq(st.ev_end_of_session),
            r.expected_seq.eq(st.expected_seq),
            r.last_gap_first.eq(st.last_gap_first),
            r.last_gap_count.eq(st.last_gap_count),
        ]

        # free-running cycle counter (hard reset only): two 32-bit halves, registered carry
        cyc_lo = Signal(32)
        cyc_hi = Signal(32)
        lo_wrap = Signal()
        m.d.sync += [cyc_lo.eq(cyc_lo + 1), lo_wrap.eq(cyc_lo == _U32_MAX - 1)]
        with m.If(lo_wrap):
            m.d.sync += cyc_hi.eq(cyc_hi + 1)
        cycles = Cat(cyc_lo, cyc_hi)
        m.d.comb += r.cycles.eq(cycles)

        # ns clock (hard reset only, as the cycle counter): frames are stamped at their first
        # MAC beat by the ingress (rx_ns of the records)
        m.submodules.nsclock = clk = NsClock()
        m.d.comb += [
            clk.set_value.eq(Cat(r.clk_set_lo, r.clk_set_hi)),
            clk.load.eq(r.clk_load),
            clk.adjust.eq(r.clk_adjust),
            clk.step.eq(r.clk_step),
            clk.incr_ns.eq(r.clk_incr_ns),
            clk.incr_frac.eq(r.clk_incr_frac),
            r.clk_now.eq(clk.now),
            ing.rx_ns.eq(self.mac_sop_ns if self.mac_stamp else clk.now),
        ]
        if self.mac_stamp:
            m.d.comb += self.ns_now.eq(clk.now)

        # ---------------- counters: source - snapshot, registered
        clr = r.counters_clear
        sources = [(ing.counters, [n for n, _ in INGRESS_COUNTERS]),
                   (book.counters, [n for n, _ in BOOK_COUNTERS])]
        if self.lines == 2:  # one line: the CNT_LINE_* registers read 0
            sources.append((ing.line_counters, [n for n, _ in ARBITER_COUNTERS]))
        for src, names in sources:
            for n in names:
                raw = getattr(src, n)
                base = Signal(len(raw), name=f"base_{n}")
                view = Signal(len(raw), name=f"view_{n}")
                with core.If(clr):
                    core.d.sync += base.eq(raw)
                core.d.sync += view.eq(raw - base)
                m.d.comb += getattr(r, f"cnt_{n}").eq(view)

        # ---------------- record packer: one output register
        bi, ob = book.o_stream, self.bbo
        p = bi.payload
        fb = bbo_record.field_bits()
        word = Signal(8 * self.record_bytes)
        rec_seq = Signal(32)

        def put(name, value):
            lsb, width = fb[name]
            core.d.comb += word[lsb:lsb + width].eq(value)

        def sat32(v):
            return Mux(v[32:].any(), _U32_MAX, v[:32]) if len(v) > 32 else v

        bid_ct, ask_ct = p.bid_ct, p.ask_ct
        put("seq", p.seq)
        put("ts_event", p.timestamp)
        put("locate", p.locate)
        put("slot", p.slot)
        put("flags", Cat(p.stale, bid_ct.any(), ask_ct.any(), p.seeded, ~p.valid, p.recovered,
                         p.bad, p.depth_only))
        put("msg_type", p.msg_type)
        put("depth_n", self.depth_n)
        # levels 2..depth_n: bid side then ask side, (px, sz, ct) u32 each; the rest 0
        lb, d = bbo_record.LEVEL_BYTES, self.depth_n - 1
        for si, side in enumerate((p.bids, p.asks)):
            for j in range(d):
                lsb = 8 * (bbo_record.RECORD_BYTES + lb * (si * d + j))
                lv = side[j + 1]
                core.d.comb += [word[lsb:lsb + 32].eq(lv.px),
                                word[lsb + 32:lsb + 64].eq(sat32(lv.sz)),
                                word[lsb + 64:lsb + 96].eq(sat32(lv.ct))]
        put("bid_px", p.bid_px)
        put("bid_sz", sat32(p.bid_sz))
        put("bid_ct", sat32(bid_ct))
        put("ask_px", p.ask_px)
        put("ask_sz", sat32(p.ask_sz))
        put("ask_ct", sat32(ask_ct))
        put("record_seq", rec_seq)
        put("card_cycles", cycles[:32])
        put("rx_ns", p.rx_ns)

        core.d.comb += bi.ready.eq(~ob.valid | ob.ready)
        with core.If(bi.valid & bi.ready):
            core.d.sync += [ob.payload.eq(word), ob.valid.eq(1), rec_seq.eq(rec_seq + 1)]
        with core.Elif(ob.ready):
            core.d.sync += ob.valid.eq(0)

        # ---------------- top counters (64 bits, cleared by counters_clear)
        # split-carry counters (hw.counter): a plain 64-bit add behind its enable was 9 levels
        # (small top, 2026-12-07); they trail the events by one cycle, a clear by none
        macdrop = Signal()  # registered first: the port and the 64-bit add are not one path
        core.d.sync += macdrop.eq(self.mac_overflow)
        cnt_rec = counter(core, 64, en=ob.valid & ob.ready, clear=clr, name="cnt_rec")
        cnt_stall = counter(core, 64, en=ob.valid & ~ob.ready, clear=clr, name="cnt_stall")
        cnt_macdrop = counter(core, 64, en=macdrop, clear=clr, name="cnt_macdrop")
        m.d.comb += [r.cnt_bbo_records.eq(cnt_rec), r.cnt_bbo_stall_cycles.eq(cnt_stall),
                     r.cnt_mac_dropped_frames.eq(cnt_macdrop)]
        return m

