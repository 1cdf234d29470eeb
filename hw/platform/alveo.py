"""Alveo U250 platform and card wrapper: CMAC (100G MAC) -> core -> XDMA (PCIe DMA + AXI-Lite BAR).

``python -m hw.platform.alveo build [--out build/alveo]`` writes the complete Vivado build tree
(Verilog, XDC, TCL including the ``create_ip`` commands of the vendor IP) and, when ``vivado``
is on PATH, runs it through Amaranth's Xilinx (Vivado) toolchain. See ``docs/alveo.md``.

Clocking
--------
* ``core``: the CMAC user clock ``gt_txusrclk2`` (322.265625 MHz for 100GBASE-R4), which also
  clocks the CMAC RX AXI-Stream (``rx_clk`` is tied to it). The ingress, book, record packer and
  register block run here.
* ``pcie``: XDMA ``axi_aclk`` (250 MHz for Gen3 x16, 512-bit). The AXI-Lite BAR crosses into
  ``core`` through a Xilinx ``axi_clock_converter`` (``axil_cdc_0``); the BBO records cross
  from ``core`` through an Amaranth ``AsyncFIFO``.
* ``init``: SYSCLK0 300 MHz / 3 = 100 MHz (``BUFGCE_DIV``): CMAC ``init_clk`` and ``drp_clk``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from amaranth import (
    Cat,
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    Mux,
    ResetSignal,
    Signal,
)
from amaranth.build import Attrs, Clock, DiffPairs, Pins, PinsN, Resource, Subsignal
from amaranth.hdl import DomainRenamer
from amaranth.lib import data, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.fifo import AsyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.vendor import XilinxPlatform

from hw.layouts import mac_beat_layout
from hw.platform.mac import mac_rx_members

__all__ = ["MACS", "AlveoU250Platform", "AlveoWrapper", "C2hPacketizer", "MacDownsizer",
           "RecordBeats", "ip_tcl", "main"]

GT_PIN_PREFIX = "GT_"
"""Pins named ``GT_*`` are placeholders for transceiver pins: no LOC is written for them, the
vendor IP's GT site selection (``GT_GROUP_SELECT`` / PCIe block location) places them."""


def _gt(prefix: str, n: int) -> str:
    return " ".join(f"{GT_PIN_PREFIX}{prefix}{i}" for i in range(n))


class AlveoU250Platform(XilinxPlatform):
    """Xilinx Alveo U250 (``xcu250-figd2104-2L-e``).

    Pins from the AU200/AU250 master XDC (Xilinx Alveo lounge): SYSCLK0 300 MHz on AY37/AY38,
    PCIe reference clock on AM11/AM10 (MGTREFCLK0 of quad 226), PCIe PERST# on BD21, QSFP0
    reference clock 156.25 MHz (SI570) on M11/M10 (MGTREFCLK0 of quad 231, the clock OpenNIC
    uses with CMACE4_X0Y8 / GTs X1Y44~X1Y47), QSFP0 sideband pins on bank 64.
    The GT lanes have no LOC (see :data:`GT_PIN_PREFIX`). Check against UG1289 before
    building for a card revision this was not written for. The card has no user LEDs wired to
    the FPGA; status goes through the register map.
    """

    device = "xcu250"
    package = "figd2104"
    speed = "2L-e"
    default_clk = "sysclk0"
    default_rst = None
    resources = [
        Resource("sysclk0", 0, DiffPairs("AY37", "AY38", dir="i"), Clock(300e6),
                 Attrs(IOSTANDARD="DIFF_POD12_DCI")),
        Resource("pcie_refclk", 0, DiffPairs("AM11", "AM10", dir="i"), Clock(100e6)),
        Resource("pcie_perst", 0, PinsN("BD21", dir="i"), Attrs(IOSTANDARD="LVCMOS12")),
        Resource("pcie_gt", 0,
                 Subsignal("rx", DiffPairs(_gt("PCIE_RXP", 16), _gt("PCIE_RXN", 16), dir="i")),
                 Subsignal("tx", DiffPairs(_gt("PCIE_TXP", 16), _gt("PCIE_TXN", 16), dir="o"))),
        Resource("qsfp0_refclk", 0, DiffPairs("M11", "M10", dir="i"), Clock(156.25e6)),
        Resource("qsfp0_gt", 0,
                 Subsignal("rx", DiffPairs(_gt("QSFP0_RXP", 4), _gt("QSFP0_RXN", 4), dir="i")),
                 Subsignal("tx", DiffPairs(_gt("QSFP0_TXP", 4), _gt("QSFP0_TXN", 4), dir="o"))),
        Resource("qsfp0_gt1", 0,  # lane 0 only: the 10G/25G MAC (``mac="25g"`` or ``"10g"``)
                 Subsignal("rx", DiffPairs(_gt("QSFP0_RXP", 1), _gt("QSFP0_RXN", 1), dir="i")),
                 Subsignal("tx", DiffPairs(_gt("QSFP0_TXP", 1), _gt("QSFP0_TXN", 1), dir="o"))),
        Resource("qsfp0_ctl", 0,
                 Subsignal("modsel_n", Pins("BE16", dir="o")),
                 Subsignal("reset_n", Pins("BE17", dir="o")),
                 Subsignal("lpmode", Pins("BD18", dir="o")),
                 Attrs(IOSTANDARD="LVCMOS12")),
    ]
    connectors = []

    def iter_port_constraints_bits(self):
        for name, pin, attrs in super().iter_port_constraints_bits():
            if not pin.startswith(GT_PIN_PREFIX):
                yield name, pin, attrs


# ------------------------------------------------------------------------------------------------
# Vendor IP: create_ip commands (the IP is generated inside the Vivado run)

CMAC_IP = "cmac_usplus_0"
XXV_IP = "xxv_ethernet_0"
XDMA_IP = "xdma_0"
AXIL_CDC_IP = "axil_cdc_0"

MACS = ("100g", "25g", "10g")
"""The MAC options: the 100G CMAC (CAUI-4, RS-FEC) or one lane of the 10G/25G Ethernet
Subsystem (PG210: BASE-R, no FEC, 64-bit AXI-Stream) on QSFP0."""

XXV_CORE_HZ = 322_580_645
"""Core clock of the 10G/25G builds: an MMCM's 100 MHz x 12.5 / 3.875 (the 100G build's core
runs on the CMAC's 322.265625 MHz user clock, which a 10G/25G MAC does not provide)."""


def _mac_tcl(mac: str) -> str:
    if mac == "100g":
        return f"""create_ip -name cmac_usplus -vendor xilinx.com -library ip -module_name {CMAC_IP}
set_property -dict {{
    CONFIG.CMAC_CAUI4_MODE {{1}}
    CONFIG.NUM_LANES {{4x25}}
    CONFIG.GT_REF_CLK_FREQ {{156.25}}
    CONFIG.USER_INTERFACE {{AXIS}}
    CONFIG.GT_DRP_CLK {{100.00}}
    CONFIG.INCLUDE_RS_FEC {{1}}
    CONFIG.ENABLE_AXI_INTERFACE {{0}}
    CONFIG.CMAC_CORE_SELECT {{CMACE4_X0Y8}}
    CONFIG.GT_GROUP_SELECT {{X1Y44~X1Y47}}
    CONFIG.RX_MAX_PACKET_LEN {{9600}}
}} [get_ips {CMAC_IP}]
"""
    # one core, MAC + PCS/PMA, 64-bit AXI-Stream, no AXI4-Lite (control on ctl_* ports, as the
    # CMAC), FEC left at its default (none), the first GT of QSFP0's quad (X1Y44, quad X1Y11)
    return f"""create_ip -name xxv_ethernet -vendor xilinx.com -library ip -module_name {XXV_IP}
set_property -dict {{
    CONFIG.CORE {{Ethernet MAC+PCS/PMA 64-bit}}
    CONFIG.LINE_RATE {{{mac[:-1]}}}
    CONFIG.NUM_OF_CORES {{1}}
    CONFIG.BASE_R_KR {{BASE-R}}
    CONFIG.INCLUDE_AXI4_INTERFACE {{0}}
    CONFIG.GT_REF_CLK_FREQ {{156.25}}
    CONFIG.GT_DRP_CLK {{100.00}}
    CONFIG.GT_GROUP_SELECT {{Quad_X1Y11}}
    CONFIG.LANE1_GT_LOC {{X1Y44}}
    CONFIG.ENABLE_PIPELINE_REG {{1}}
}} [get_ips {XXV_IP}]
"""


def ip_tcl(mac: str = "100g") -> str:
    """TCL run after the sources are read: creates, generates and synthesizes the vendor IP
    (the MAC of ``mac``, one of :data:`MACS`)."""
    if mac not in MACS:
        raise ValueError(f"mac must be one of {MACS}, not {mac!r}")
    return f"""
# --- vendor IP (hw/platform/alveo.py ip_tcl) ---
{_mac_tcl(mac)}
create_ip -name xdma -vendor xilinx.com -library ip -module_name {XDMA_IP}
set_property -dict {{
    CONFIG.mode_selection {{Advanced}}
    CONFIG.pl_link_cap_max_link_width {{X16}}
    CONFIG.pl_link_cap_max_link_speed {{8.0_GT/s}}
    CONFIG.axi_data_width {{512_bit}}
    CONFIG.axisten_freq {{250}}
    CONFIG.xdma_axi_intf_mm {{AXI_Stream}}
    CONFIG.xdma_rnum_chnl {{1}}
    CONFIG.xdma_wnum_chnl {{1}}
    CONFIG.axilite_master_en {{true}}
    CONFIG.axilite_master_size {{1}}
    CONFIG.axilite_master_scale {{Megabytes}}
    CONFIG.pf0_device_id {{903F}}
    CONFIG.pcie_blk_locn {{PCIE4C_X1Y0}}
}} [get_ips {XDMA_IP}]

create_ip -name axi_clock_converter -vendor xilinx.com -library ip -module_name {AXIL_CDC_IP}
set_property -dict {{
    CONFIG.PROTOCOL {{AXI4LITE}}
    CONFIG.ADDR_WIDTH {{32}}
    CONFIG.DATA_WIDTH {{32}}
    CONFIG.ACLK_ASYNC {{1}}
}} [get_ips {AXIL_CDC_IP}]

generate_target all [get_ips]
synth_ip [get_ips]
"""


# ------------------------------------------------------------------------------------------------
# 512 -> 64 bit MAC stream downsizer


class MacDownsizer(wiring.Component):
    """CMAC RX AXI-Stream (512-bit, no backpressure) -> ``mac_beat_layout(64)`` stream.

    A frame is admitted only if the packet FIFO has room for a maximum-size frame when its first
    beat arrives; otherwise the whole frame is dropped and ``overflow`` pulses (count it). Admitted
    frames are never cut. Each 512-bit beat then leaves as up to 8 64-bit beats (the last 512-bit
    beat as many as its ``tkeep`` needs); ``error`` (CMAC ``rx_axis_tuser``) is set on the last
    64-bit beat.

    Start-of-packet stamp: ``now`` (the core's ns clock, ``hw.top.Top.ns_now``) is sampled
    when a frame's first 512-bit beat arrives from the CMAC and stored with every beat of the
    frame; ``o_sop_ns`` carries it beside each 64-bit beat out, so the core can stamp a frame
    with the time it left the MAC instead of the time it left this FIFO (``Top(mac_stamp=True)``
    reads it as ``mac_sop_ns``). The stamp costs 64 bits per FIFO entry (about one BRAM36).

    Throughput: one 64-bit beat per cycle out (20.6 Gb/s at 322 MHz), also across 512-bit
    beats (the next loads as the held one's final word leaves; until 2026-12-06 a bubble per
    512-bit beat made it 8/9 of that); bursts above that are absorbed by the FIFO (``depth``
    beats of 64 bytes). Latency: 3 cycles plus the FIFO.
    Backpressure: ``o_ready`` low holds the output; the CMAC side has none (frames that do not
    fit are dropped whole and counted by ``overflow``).
    """

    def __init__(self, *, depth: int = 512, max_frame_bytes: int = 9600):
        if not isinstance(depth, int) or not isinstance(max_frame_bytes, int):
            raise TypeError("depth and max_frame_bytes must be ints")
        self.max_beats = -(-max_frame_bytes // 64)
        if depth < 2 * self.max_beats:
            raise ValueError(f"depth {depth} < 2 x {self.max_beats} beats of a maximum frame")
        self.depth = depth
        super().__init__(mac_rx_members(512))

    def elaborate(self, platform):
        m = Module()
        beat = data.StructLayout({"data": 512, "keep": 64, "last": 1, "error": 1, "ns": 64})
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=beat.size, depth=self.depth)
        w = data.View(beat, fifo.w_data)
        in_frame = Signal()
        dropping = Signal()
        room = Signal()
        sop = Signal(64)  # the frame's start-of-packet stamp, for its later beats
        m.d.comb += room.eq(fifo.w_level <= self.depth - self.max_beats)
        m.d.sync += self.overflow.eq(0)
        with m.If(self.rx_tvalid):
            first = ~in_frame
            admit = Mux(first, room, ~dropping)
            m.d.comb += [
                fifo.w_en.eq(admit),
                w.data.eq(self.rx_tdata), w.keep.eq(self.rx_tkeep),
                w.last.eq(self.rx_tlast), w.error.eq(self.rx_tuser),
                w.ns.eq(Mux(first, self.now, sop)),
            ]
            m.d.sync += in_frame.eq(~self.rx_tlast)
            with m.If(first):
                m.d.sync += dropping.eq(~room)
                m.d.sync += self.overflow.eq(~room)
                m.d.sync += sop.eq(self.now)

        # unpack: hold one 512-bit beat, emit 64-bit words
        r = data.View(beat, fifo.r_data)
        cur = Signal(beat)
        have = Signal()
        idx = Signal(3)
        nwords = Signal(4)  # words in the held beat (1..8)
        word_keep = Signal(8)
        m.d.comb += word_keep.eq(cur.keep.word_select(idx, 8))
        final = Signal()
        m.d.comb += final.eq(idx + 1 == nwords)
        # the next 512-bit beat loads in the cycle the held one's final word leaves: no bubble
        # between beats (one 64-bit word per cycle for a whole frame)
        load = Signal()
        m.d.comb += [load.eq(~have | (self.o_ready & final)), fifo.r_en.eq(load)]
        m.d.comb += [
            self.o_valid.eq(have),
            self.o_payload.data.eq(cur.data.word_select(idx, 64)),
            self.o_payload.keep.eq(word_keep),
            self.o_payload.last.eq(cur.last & final),
            self.o_payload.error.eq(cur.error & cur.last & final),
            self.o_sop_ns.eq(cur.ns),
        ]
        with m.If(have & self.o_ready):
            m.d.sync += idx.eq(idx + 1)
            with m.If(final):
                m.d.sync += have.eq(0)
        with m.If(fifo.r_rdy & load):  # after the above: a load in the final word's cycle wins
            ones = sum(r.keep[i] for i in range(64))
            m.d.sync += [cur.eq(r), have.eq(1), idx.eq(0),
                         nwords.eq(Mux(r.last, (ones + 7) >> 3, 8))]
        return m


# ------------------------------------------------------------------------------------------------
# Wrapper


def _default_core(mac: str = "100g"):
    """The project's top level (hw.top.Top) with the U250 parameters, stamping frames at the
    MAC's start of packet (``mac_stamp``), its ``ID_CLK_HZ`` the core clock of ``mac``."""
    from hw.synth import BLOCKS  # noqa: PLC0415 - keeps the platform importable alone
    from hw.top import Top  # noqa: PLC0415

    params = dict(BLOCKS["top"].params["u250"], mac_stamp=True)
    if mac != "100g":
        params["clk_hz"] = XXV_CORE_HZ
    return Top(**params)


class RecordBeats(wiring.Component):
    """A stream of ``width``-bit records -> 512-bit beats, ``width // 512`` per record, low
    bytes first (so the host reads the record's bytes in order from the C2H byte stream).

    One record is held at a time: ``i_stream.ready`` is high when the register is empty or its
    last beat leaves in this cycle, so back-to-back records go out at one beat per clock.
    ``width = 512`` is a plain register stage.
    """

    def __init__(self, width: int):
        if not isinstance(width, int) or width < 512 or width % 512:
            raise ValueError(f"width must be a positive multiple of 512, not {width!r}")
        self.width = width
        self.beats = width // 512
        super().__init__({
            "i_stream": In(_stream_sig(width)),
            "o_stream": Out(_stream_sig(512)),
            "o_last": Out(1),  # the last beat of a record (C2hPacketizer's i_end)
        })

    def elaborate(self, platform):
        m = Module()
        n = self.beats
        buf = Signal(self.width)
        idx = Signal(range(max(2, n)))
        last = Signal()
        m.d.comb += [
            last.eq(idx == n - 1),
            self.o_stream.payload.eq(buf[:512]),
            self.o_last.eq(last),
            self.i_stream.ready.eq(~self.o_stream.valid | (self.o_stream.ready & last)),
        ]
        with m.If(self.o_stream.valid & self.o_stream.ready & ~last):
            m.d.sync += [buf.eq(buf >> 512), idx.eq(idx + 1)]
        with m.Elif(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [buf.eq(self.i_stream.payload), idx.eq(0), self.o_stream.valid.eq(1)]
        return m


def _c2h_params(max_records, flush_cycles) -> dict:
    """Validated :class:`C2hPacketizer` parameters (ValueError names the bad one)."""
    for name, v, lo, hi in (("max_records", max_records, 1, 65536),
                            ("flush_cycles", flush_cycles, 0, 65535)):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {v!r}")
    return dict(max_records=max_records, flush_cycles=flush_cycles)


class C2hPacketizer(wiring.Component):
    """Groups 512-bit record beats into C2H packets: ``o_stream`` carries ``data`` and ``last``
    (AXI4-Stream ``tlast``, which completes one XDMA C2H descriptor / one host ``read``).

    ``tlast`` is set only on the last beat of a record (``i_end``), and on it when (a) the
    packet holds ``max_records`` records, or (b) no next beat is waiting at the input when
    the record's last beat leaves, after waiting up to ``flush_cycles`` cycles for one. So a
    burst of back-to-back records (the book under load, or the DMA stalling) leaves as packets
    of up to ``max_records`` records, one descriptor each instead of one per record, and an
    isolated record still ends its packet at once (``flush_cycles = 0``, the default: no
    latency is traded for fewer descriptors). The record's bytes are not changed.

    Latency: 2 cycles from an input beat to ``o_stream`` (a hold register that looks one beat
    ahead, and the output register), plus up to ``flush_cycles`` for a record's last beat
    when nothing follows it. Throughput: one beat per cycle. Backpressure: ``i_stream.ready``
    falls only while ``o_stream`` is stalled with the hold register full; ``data`` and
    ``last`` are stable while ``o_stream.valid`` is high and ``ready`` low.

    Parameters
    ----------
    max_records : int
        Records per packet at most, 1..65536 (default 64: 4 KiB of 64-byte records). 1 gives
        one packet per record (``tlast`` on every record's last beat).
    flush_cycles : int
        Cycles a record's last beat waits in the hold register for a following beat before it
        ends the packet, 0..65535 (default 0).
    """

    def __init__(self, *, max_records: int = 64, flush_cycles: int = 0):
        _c2h_params(max_records, flush_cycles)
        self.max_records = max_records
        self.flush_cycles = flush_cycles
        super().__init__({
            "i_stream": In(_stream_sig(512)),
            "i_end": In(1),  # with i_stream.payload: the last beat of a record
            "o_stream": Out(_stream_sig(data.StructLayout({"data": 512, "last": 1}))),
        })

    def elaborate(self, platform):
        m = Module()
        h_valid, h_end = Signal(), Signal()
        h_data = Signal(512)
        count = Signal(range(self.max_records))  # records already in the open packet
        timer = Signal(range(self.flush_cycles + 1))
        full = Signal()
        go, move = Signal(), Signal()
        o = self.o_stream
        m.d.comb += [
            full.eq(count == self.max_records - 1),
            # the hold register may leave: a beat inside a record, a full packet, a next beat
            # waiting (the packet goes on), or the wait for one is over (the packet ends)
            go.eq(~h_end | full | self.i_stream.valid | (timer == self.flush_cycles)),
            move.eq(h_valid & go & (~o.valid | o.ready)),
            self.i_stream.ready.eq(~h_valid | move),
        ]
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(move):
            last = h_end & (full | ~self.i_stream.valid)
            m.d.sync += [o.valid.eq(1), o.payload.data.eq(h_data), o.payload.last.eq(last)]
            with m.If(h_end):
                m.d.sync += count.eq(Mux(last, 0, count + 1))
            m.d.sync += h_valid.eq(0)
        with m.If(h_valid & h_end & ~self.i_stream.valid & (timer != self.flush_cycles)):
            m.d.sync += timer.eq(timer + 1)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [h_valid.eq(1), h_data.eq(self.i_stream.payload),
                         h_end.eq(self.i_end), timer.eq(0)]
        return m


class AlveoWrapper(Elaboratable):
    """CMAC RX -> :class:`MacDownsizer` -> core; XDMA AXI-Lite BAR -> core registers;
    core BBO records -> XDMA C2H stream: a record of ``record_bytes`` (``ID_RECORD_BYTES``: 64,
    or 192 for ``depth_n = 5``) leaves as ``record_bytes / 64`` 512-bit beats
    (:class:`RecordBeats`, in the ``core`` domain before the clock-crossing FIFO), grouped
    into C2H packets by :class:`C2hPacketizer`: ``tlast`` (one XDMA descriptor, one host
    ``read``) after ``c2h_max_records`` records or when no record follows within
    ``c2h_flush_cycles`` core cycles, never inside a record. The driver reads the C2H stream
    as a byte stream (``host.card.xdma`` reassembles whole records by ``record_bytes``, and a
    read that ends inside a record keeps the rest for the next read).

    Parameters
    ----------
    core : wiring.Component, optional
        An Amaranth component with the ports of ``docs/CONTRACTS.md`` (``mac``,
        ``mac_overflow``, ``bbo``, ``axil``), elaborated in the ``core`` clock domain (default:
        :class:`hw.top.Top` with the U250 parameters).
    c2h_max_records : int
        Records per C2H packet at most (default 64).
    c2h_flush_cycles : int
        Core cycles a record waits for a next one before its packet ends (default 0).
    mac : str
        ``"100g"`` (default): the CMAC on QSFP0's four lanes, the core on its 322.265625 MHz
        user clock, :class:`MacDownsizer` in front of the core. ``"25g"`` or ``"10g"``: the
        10G/25G Ethernet Subsystem on QSFP0's lane 0 (PG210, BASE-R, no FEC), its 64-bit
        RX stream in its own clock (390.625 / 156.25 MHz) crossing into the core through
        :class:`hw.platform.mac.MacRxFifo`; the core runs on an MMCM's
        :data:`XXV_CORE_HZ` from the 100 MHz ``init`` clock.
    """

    def __init__(self, core=None, *, c2h_max_records: int = 64, c2h_flush_cycles: int = 0,
                 mac: str = "100g"):
        if mac not in MACS:
            raise ValueError(f"mac must be one of {MACS}, not {mac!r}")
        self.mac = mac
        self.core = core
        # validated here, where a user's mistake should surface, not at elaboration
        self.c2h = _c2h_params(c2h_max_records, c2h_flush_cycles)

    def elaborate(self, platform):
        m = Module()
        core = self.core if self.core is not None else _default_core(self.mac)

        # ---- clocks and resets
        sysclk = platform.request("sysclk0", 0)
        m.domains.init = ClockDomain("init", reset_less=True)
        m.submodules.init_div = Instance(
            "BUFGCE_DIV", p_BUFGCE_DIVIDE=3, i_I=sysclk.i, i_CE=Const(1), i_CLR=Const(0),
            o_O=ClockSignal("init"))
        m.domains.core = ClockDomain("core")
        m.domains.pcie = ClockDomain("pcie")

        # ---- PCIe / XDMA
        perst = platform.request("pcie_perst", 0)
        pref = platform.request("pcie_refclk", 0, dir="-")
        pgt = platform.request("pcie_gt", 0, dir={"rx": "-", "tx": "-"})
        sys_clk, sys_clk_gt = Signal(), Signal()
        m.submodules.pcie_refbuf = Instance(
            "IBUFDS_GTE4", p_REFCLK_HROW_CK_SEL=0b00, i_I=pref.p, i_IB=pref.n, i_CEB=Const(0),
            o_O=sys_clk_gt, o_ODIV2=sys_clk)
        axi_aresetn = Signal()
        x = {n: Signal(w, name=f"xdma_{n}") for n, w in [
            ("awaddr", 32), ("awvalid", 1), ("awready", 1), ("wdata", 32), ("wstrb", 4),
            ("wvalid", 1), ("wready", 1), ("bresp", 2), ("bvalid", 1), ("bready", 1),
            ("araddr", 32), ("arvalid", 1), ("arready", 1), ("rdata", 32), ("rresp", 2),
            ("rvalid", 1), ("rready", 1), ("awprot", 3), ("arprot", 3)]}
        c2h_tdata, c2h_tlast = Signal(512), Signal()
        c2h_tvalid, c2h_tready = Signal(), Signal()
        m.submodules.xdma = Instance(
            XDMA_IP,
            i_sys_clk=sys_clk, i_sys_clk_gt=sys_clk_gt, i_sys_rst_n=~perst.i,
            i_pci_exp_rxp=pgt.rx.p, i_pci_exp_rxn=pgt.rx.n,
            o_pci_exp_txp=pgt.tx.p, o_pci_exp_txn=pgt.tx.n,
            o_axi_aclk=ClockSignal("pcie"), o_axi_aresetn=axi_aresetn,
            i_usr_irq_req=Const(0, 1),
            **{f"o_m_axil_{n}": s for n, s in x.items()
               if n in ("awaddr", "awvalid", "wdata", "wstrb", "wvalid", "bready", "araddr",
                        "arvalid", "rready", "awprot", "arprot")},
            **{f"i_m_axil_{n}": s for n, s in x.items()
               if n in ("awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp",
                        "rvalid")},
            i_s_axis_c2h_tdata_0=c2h_tdata, i_s_axis_c2h_tkeep_0=Const(2**64 - 1, 64),
            i_s_axis_c2h_tlast_0=c2h_tlast, i_s_axis_c2h_tvalid_0=c2h_tvalid,
            o_s_axis_c2h_tready_0=c2h_tready,
            i_m_axis_h2c_tready_0=Const(1),
        )
        m.d.comb += ResetSignal("pcie").eq(~axi_aresetn)

        if self.mac == "100g":
            self._cmac(m, platform, core, axi_aresetn)
        else:
            self._xxv(m, platform, core, axi_aresetn)

        # ---- AXI-Lite BAR -> CDC -> core registers
        self._bar(m, core, x, axi_aresetn)

        # ---- BBO records -> C2H
        self._c2h(m, core, c2h_tdata, c2h_tlast, c2h_tvalid, c2h_tready)
        return m

    @staticmethod
    def _qsfp(m, platform, gt: str):
        """Request QSFP0's reference clock and the lanes ``gt``; module select, out of reset,
        high power."""
        qref = platform.request("qsfp0_refclk", 0, dir="-")
        qgt = platform.request(gt, 0, dir={"rx": "-", "tx": "-"})
        qctl = platform.request("qsfp0_ctl", 0)
        m.d.comb += [qctl.modsel_n.o.eq(0), qctl.reset_n.o.eq(1), qctl.lpmode.o.eq(0)]
        return qref, qgt

    @staticmethod
    def _feed_core(m, core, mac):
        """MAC adapter (``mac``: :func:`hw.platform.mac.mac_rx_members` ports) -> core, in the
        core clock: beats, the whole-frame drop pulse (``CNT_MAC_DROPPED_FRAMES``) and, for a
        ``Top(mac_stamp=True)``, the start-of-packet stamp against the core's ns clock."""
        m.submodules.core = DomainRenamer("core")(core)
        m.d.comb += [
            core.mac.payload.eq(mac.o_payload), core.mac.valid.eq(mac.o_valid),
            mac.o_ready.eq(core.mac.ready),
            core.mac_overflow.eq(mac.overflow),
        ]
        if "mac_sop_ns" in core.signature.members:
            m.d.comb += [mac.now.eq(core.ns_now), core.mac_sop_ns.eq(mac.o_sop_ns)]

    @staticmethod
    def _rx_to(m, rx: dict, mac):
        """The MAC IP's RX AXI4-Stream signals (``rx``: name -> signal) into the adapter."""
        m.d.comb += [getattr(mac, f"rx_{n}").eq(s) for n, s in rx.items()]

    def _cmac(self, m, platform, core, axi_aresetn):
        """CMAC (100G) RX -> MacDownsizer -> core; the core clock is the CMAC's."""
        qref, qgt = self._qsfp(m, platform, "qsfp0_gt")
        usr_rx_reset, rx_aligned = Signal(), Signal()
        rx = {n: Signal(w, name=f"cmac_rx_{n}") for n, w in
              [("tdata", 512), ("tkeep", 64), ("tlast", 1), ("tuser", 1), ("tvalid", 1)]}
        m.submodules.cmac = Instance(
            CMAC_IP,
            i_gt_ref_clk_p=qref.p, i_gt_ref_clk_n=qref.n,
            i_gt_rxp_in=qgt.rx.p, i_gt_rxn_in=qgt.rx.n,
            o_gt_txp_out=qgt.tx.p, o_gt_txn_out=qgt.tx.n,
            i_init_clk=ClockSignal("init"), i_drp_clk=ClockSignal("init"),
            i_sys_reset=~axi_aresetn, i_gt_loopback_in=Const(0, 12),
            i_core_rx_reset=Const(0), i_core_tx_reset=Const(0), i_core_drp_reset=Const(0),
            i_drp_addr=Const(0, 10), i_drp_di=Const(0, 16), i_drp_en=Const(0), i_drp_we=Const(0),
            o_gt_txusrclk2=ClockSignal("core"), i_rx_clk=ClockSignal("core"),
            o_usr_rx_reset=usr_rx_reset,
            **{f"o_rx_axis_{n}": s for n, s in rx.items()},
            i_ctl_rx_enable=Const(1), i_ctl_rx_force_resync=Const(0),
            i_ctl_rx_test_pattern=Const(0), o_stat_rx_aligned=rx_aligned,
            i_ctl_tx_enable=rx_aligned, i_ctl_tx_send_rfi=~rx_aligned,
            i_ctl_tx_send_idle=Const(0), i_ctl_tx_send_lfi=Const(0),
            i_ctl_tx_test_pattern=Const(0),
            i_tx_axis_tvalid=Const(0), i_tx_axis_tdata=Const(0, 512),
            i_tx_axis_tkeep=Const(0, 64), i_tx_axis_tlast=Const(0), i_tx_axis_tuser=Const(0),
            i_tx_preamblein=Const(0, 56),
            i_ctl_rx_rsfec_enable=Const(1), i_ctl_rx_rsfec_enable_correction=Const(1),
            i_ctl_rx_rsfec_enable_indication=Const(1), i_ctl_tx_rsfec_enable=Const(1),
            i_ctl_rsfec_ieee_error_indication_mode=Const(0),
        )
        m.submodules.core_rst = ResetSynchronizer(usr_rx_reset, domain="core")

        # ---- MAC -> core
        m.submodules.down = down = DomainRenamer("core")(MacDownsizer())
        self._rx_to(m, rx, down)
        self._feed_core(m, core, down)

    def _xxv(self, m, platform, core, axi_aresetn):
        """10G/25G Ethernet Subsystem RX (its own clock) -> MacRxFifo -> core; the core clock
        from an MMCM on the ``init`` clock."""
        # core clock: 100 MHz x 12.5 = 1250 MHz VCO (MMCME4: 800-1600 MHz), / 3.875
        locked, fb, clk_core = Signal(), Signal(), Signal()
        m.submodules.core_mmcm = Instance(
            "MMCME4_BASE", p_CLKIN1_PERIOD=10.0, p_DIVCLK_DIVIDE=1, p_CLKFBOUT_MULT_F=12.5,
            p_CLKOUT0_DIVIDE_F=3.875, i_CLKIN1=ClockSignal("init"), i_CLKFBIN=fb,
            o_CLKFBOUT=fb, o_CLKOUT0=clk_core, o_LOCKED=locked, i_PWRDWN=Const(0),
            i_RST=~axi_aresetn)
        m.submodules.core_bufg = Instance("BUFG", i_I=clk_core, o_O=ClockSignal("core"))
        m.submodules.core_rst = ResetSynchronizer(~locked, domain="core")

        m.domains.mac = ClockDomain("mac")
        qref, qgt = self._qsfp(m, platform, "qsfp0_gt1")
        usr_rx_reset, rx_status = Signal(), Signal()
        rx = {n: Signal(w, name=f"xxv_rx_{n}") for n, w in
              [("tdata", 64), ("tkeep", 8), ("tlast", 1), ("tuser", 1), ("tvalid", 1)]}
        # ports of PG210 with "Include AXI4-Lite" off (ctl_* inputs); the RX FIFO's
        # rx_core_clk tied to tx_clk_out, one clock for the MAC's user side
        m.submodules.xxv = Instance(
            XXV_IP,
            i_gt_refclk_p=qref.p, i_gt_refclk_n=qref.n,
            i_gt_rxp_in=qgt.rx.p, i_gt_rxn_in=qgt.rx.n,
            o_gt_txp_out=qgt.tx.p, o_gt_txn_out=qgt.tx.n,
            o_tx_clk_out_0=ClockSignal("mac"), i_rx_core_clk_0=ClockSignal("mac"),
            i_dclk=ClockSignal("init"), i_sys_reset=~axi_aresetn,
            i_rx_reset_0=Const(0), i_tx_reset_0=Const(0),
            i_gtwiz_reset_rx_datapath_0=Const(0), i_gtwiz_reset_tx_datapath_0=Const(0),
            i_qpllreset_in_0=Const(0), i_gt_loopback_in_0=Const(0, 3),
            i_txoutclksel_in_0=Const(0b101, 3), i_rxoutclksel_in_0=Const(0b101, 3),
            o_user_rx_reset_0=usr_rx_reset,
            **{f"o_rx_axis_{n}_0": s for n, s in rx.items()},
            i_ctl_rx_enable_0=Const(1), i_ctl_rx_check_preamble_0=Const(1),
            i_ctl_rx_check_sfd_0=Const(1), i_ctl_rx_force_resync_0=Const(0),
            i_ctl_rx_delete_fcs_0=Const(1), i_ctl_rx_ignore_fcs_0=Const(0),
            i_ctl_rx_max_packet_len_0=Const(9600, 15), i_ctl_rx_min_packet_len_0=Const(64, 8),
            i_ctl_rx_process_lfi_0=Const(0), i_ctl_rx_test_pattern_0=Const(0),
            i_ctl_rx_custom_preamble_enable_0=Const(0), o_stat_rx_status_0=rx_status,
            i_ctl_tx_enable_0=rx_status, i_ctl_tx_send_rfi_0=~rx_status,
            i_ctl_tx_send_lfi_0=Const(0), i_ctl_tx_send_idle_0=Const(0),
            i_ctl_tx_fcs_ins_enable_0=Const(1), i_ctl_tx_ignore_fcs_0=Const(0),
            i_ctl_tx_test_pattern_0=Const(0),
            i_tx_axis_tvalid_0=Const(0), i_tx_axis_tdata_0=Const(0, 64),
            i_tx_axis_tkeep_0=Const(0, 8), i_tx_axis_tlast_0=Const(0),
            i_tx_axis_tuser_0=Const(0), i_tx_preamblein_0=Const(0, 56),
        )
        m.submodules.mac_rst = ResetSynchronizer(usr_rx_reset, domain="mac")

        from hw.platform.mac import MacRxFifo  # noqa: PLC0415 - only the 10G/25G build

        m.submodules.rxfifo = f = DomainRenamer({"sync": "core"})(MacRxFifo(w_domain="mac"))
        self._rx_to(m, rx, f)
        self._feed_core(m, core, f)

    def _bar(self, m, core, x, axi_aresetn):
        """XDMA AXI-Lite BAR (pcie clock) -> axi_clock_converter -> core registers."""
        a = core.axil
        aw = len(a.awaddr)
        m.submodules.axil_cdc = Instance(
            AXIL_CDC_IP,
            i_s_axi_aclk=ClockSignal("pcie"), i_s_axi_aresetn=axi_aresetn,
            **{f"i_s_axi_{n}": x[n] for n in ("awaddr", "awprot", "awvalid", "wdata", "wstrb",
                                              "wvalid", "bready", "araddr", "arprot", "arvalid",
                                              "rready")},
            **{f"o_s_axi_{n}": x[n] for n in ("awready", "wready", "bresp", "bvalid",
                                              "arready", "rdata", "rresp", "rvalid")},
            i_m_axi_aclk=ClockSignal("core"), i_m_axi_aresetn=~ResetSignal("core"),
            o_m_axi_awaddr=_low(m, a.awaddr, aw, "awaddr"), o_m_axi_awvalid=a.awvalid,
            i_m_axi_awready=a.awready, o_m_axi_wdata=a.wdata, o_m_axi_wstrb=a.wstrb,
            o_m_axi_wvalid=a.wvalid, i_m_axi_wready=a.wready, i_m_axi_bresp=a.bresp,
            i_m_axi_bvalid=a.bvalid, o_m_axi_bready=a.bready,
            o_m_axi_araddr=_low(m, a.araddr, aw, "araddr"), o_m_axi_arvalid=a.arvalid,
            i_m_axi_arready=a.arready, i_m_axi_rdata=a.rdata, i_m_axi_rresp=a.rresp,
            i_m_axi_rvalid=a.rvalid, o_m_axi_rready=a.rready,
        )

    def _c2h(self, m, core, c2h_tdata, c2h_tlast, c2h_tvalid, c2h_tready):
        """Core BBO records -> 512-bit beats -> C2H packets -> AsyncFIFO -> XDMA C2H."""
        m.submodules.c2h_fifo = f = AsyncFIFO(width=513, depth=16, w_domain="core",
                                              r_domain="pcie")  # 512 data bits + tlast
        m.submodules.c2h_beats = rb = DomainRenamer("core")(RecordBeats(len(core.bbo.payload)))
        m.submodules.c2h_pkt = pk = DomainRenamer("core")(C2hPacketizer(**self.c2h))
        m.d.comb += [
            rb.i_stream.payload.eq(core.bbo.payload), rb.i_stream.valid.eq(core.bbo.valid),
            core.bbo.ready.eq(rb.i_stream.ready),
            pk.i_stream.payload.eq(rb.o_stream.payload), pk.i_stream.valid.eq(rb.o_stream.valid),
            pk.i_end.eq(rb.o_last), rb.o_stream.ready.eq(pk.i_stream.ready),
            f.w_data.eq(Cat(pk.o_stream.payload.data, pk.o_stream.payload.last)),
            f.w_en.eq(pk.o_stream.valid), pk.o_stream.ready.eq(f.w_rdy),
            c2h_tdata.eq(f.r_data[:512]), c2h_tlast.eq(f.r_data[512]),
            c2h_tvalid.eq(f.r_rdy), f.r_en.eq(c2h_tready),
        ]


def _low(m, sig, width, name):
    """A 32-bit wire whose low ``width`` bits drive ``sig`` (the BAR decodes the rest)."""
    w = Signal(32, name=f"cdc_m_{name}")
    m.d.comb += sig.eq(w[:width])
    return w


# ------------------------------------------------------------------------------------------------
# CLI


def build(out: Path, *, core=None, run: bool | None = None, **wrapper) -> int:
    """Write the build tree into ``out``; run Vivado when available (``run=None``: auto).

    ``wrapper``: keyword arguments of :class:`AlveoWrapper` (``c2h_max_records``,
    ``c2h_flush_cycles``, ``mac``)."""
    platform = AlveoU250Platform(toolchain="Vivado")
    vivado = shutil.which("vivado")
    do_run = bool(vivado) if run is None else run
    plan = platform.build(
        AlveoWrapper(core, **wrapper), name="itchfpga_u250", build_dir=str(out), do_build=False,
        script_after_read=ip_tcl(wrapper.get("mac", "100g")),
        add_constraints="set_property CONFIG_VOLTAGE 1.8 [current_design]\n"
                        "set_property BITSTREAM.CONFIG.SPI_BUSWIDTH 4 [current_design]\n"
                        "set_property BITSTREAM.CONFIG.CONFIGRATE 85.0 [current_design]\n"
                        "set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]\n",
    )
    plan.extract(str(out))
    files = sorted(p.name for p in out.iterdir())
    print(f"wrote {out}/: {', '.join(files)}")
    if not do_run:
        print("vivado not found on PATH: build tree written, bitstream not built "
              f"(run `cd {out} && sh build_itchfpga_u250.sh` on a machine with Vivado)")
        return 0
    products = plan.execute_local(str(out))
    print(f"bitstream: {out}/itchfpga_u250.bit ({len(products.get('itchfpga_u250.bit'))} bytes)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw.platform.alveo",
                                 description="Alveo U250 build (Vivado)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the build tree; run Vivado if it is on PATH")
    b.add_argument("--out", type=Path, default=Path("build/alveo"))
    b.add_argument("--no-run", action="store_true", help="never run Vivado")
    b.add_argument("--stand-in", action="store_true",
                   help="use a stand-in core (register block only) instead of hw.top.Top")
    b.add_argument("--c2h-max-records", type=int, default=64,
                   help="records per C2H packet (one DMA descriptor) at most (default 64)")
    b.add_argument("--c2h-flush-cycles", type=int, default=0,
                   help="core cycles a record waits for the next before its packet ends "
                   "(default 0: no added latency)")
    b.add_argument("--mac", choices=MACS, default="100g",
                   help="100g: the CMAC on QSFP0 (default); 25g / 10g: one lane of the "
                   "10G/25G Ethernet Subsystem, no FEC")
    args = ap.parse_args(argv)
    try:
        _c2h_params(args.c2h_max_records, args.c2h_flush_cycles)
    except ValueError as e:
        print(f"--c2h-{str(e).replace('_', '-')}", file=sys.stderr)
        return 2
    core = StandInCore() if args.stand_in else None
    if core is None:
        try:
            _default_core(args.mac)
        except ImportError as e:
            print(f"hw.top is not available ({e}); use --stand-in", file=sys.stderr)
            return 2
    os.makedirs(args.out, exist_ok=True)
    return build(args.out, core=core, run=False if args.no_run else None,
                 c2h_max_records=args.c2h_max_records, c2h_flush_cycles=args.c2h_flush_cycles,
                 mac=args.mac)


class StandInCore(wiring.Component):
    """A core with the top-level ports and only the register block (to check the card build
    before the datapath exists): MAC beats are accepted and counted, no records are produced."""

    def __init__(self):
        from hw.axil import AXILiteSignature

        super().__init__({
            "mac": In(_stream_sig(mac_beat_layout(64))),
            "bbo": Out(_stream_sig(512)),
            "mac_overflow": In(1),
            "axil": In(AXILiteSignature(addr_width=12)),
        })

    def elaborate(self, platform):
        from hw.axil import AXILiteRegisters

        m = Module()
        m.submodules.regs = regs = AXILiteRegisters(addr_width=12)
        wiring.connect(m, wiring.flipped(self.axil), regs.axil)
        m.d.comb += [self.mac.ready.eq(1), self.bbo.valid.eq(0)]
        with m.If(self.mac.valid & self.mac.payload.last):
            m.d.sync += regs.regs.cnt_frames.eq(regs.regs.cnt_frames + 1)
        with m.If(self.mac_overflow):
            m.d.sync += regs.regs.cnt_mac_dropped_frames.eq(regs.regs.cnt_mac_dropped_frames + 1)
        return m


def _stream_sig(shape):
    from amaranth.lib import stream

    return stream.Signature(shape)


if __name__ == "__main__":
    raise SystemExit(main())
