"""AXI4-Lite register slave generated from the register table of :mod:`hw.regs`.

The PCIe BAR of an XDMA-style shell (``m_axil_*``) connects straight to :class:`AXILiteRegisters`.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.regs import UNMAPPED_READ, Access, RegisterTable, build_table

__all__ = ["AXILiteSignature", "AXILiteRegisters", "RESP_OKAY", "RESP_SLVERR"]

RESP_OKAY = 0b00
RESP_SLVERR = 0b10


class AXILiteSignature(wiring.Signature):
    """AXI4-Lite, manager (master) view: 32-bit data, ``addr_width``-bit byte address.

    Member names are the AXI names without the ``s_axi_`` prefix (``awaddr``, ``wstrb``,
    ``rresp``, ...); ``AxPROT`` is not carried (the slave would ignore it).
    """

    def __init__(self, *, addr_width: int = 12):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool):
            raise TypeError(f"addr_width must be an int, not {addr_width!r}")
        if not 3 <= addr_width <= 64:
            raise ValueError(f"addr_width must be in 3..64, not {addr_width}")
        self.addr_width = addr_width
        super().__init__({
            "awaddr": Out(addr_width), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arvalid": Out(1), "arready": In(1),
            "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return isinstance(other, AXILiteSignature) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"AXILiteSignature(addr_width={self.addr_width})"


def _regs_signature(table: RegisterTable) -> wiring.Signature:
    members = {}
    for name, (_access, width, kind) in table.ports().items():
        # Out = the register block drives it; In = the gateware drives it.
        members[name] = Out(width) if kind == "out" else In(width)
    return wiring.Signature(members)


class AXILiteRegisters(wiring.Component):
    """AXI4-Lite slave implementing every register of ``table``.

    Parameters
    ----------
    table : RegisterTable
        From :func:`hw.regs.build_table` (default: the U250 table).
    addr_width : int
        Byte address bits decoded (default 12: a 4 KiB window; higher BAR bits are the
        shell's business). Must cover ``table.size``.

    Attributes
    ----------
    axil : In(AXILiteSignature)
        The slave port.
    regs : Out(Signature)
        One member per field of the table, named by the field (``enable``, ``udp_port``,
        ``cnt_frames`` ...). RW fields and W1P pulses are outputs (registered); RO fields,
        the 64-bit counter/status values, and the *set* pulses of W1C bits are inputs.

    Behaviour
    ---------
    * Write: AW and W are accepted independently (in either order, or together) into one
      holding register each; the write is performed the cycle both are held, and BVALID rises
      the cycle after (2 cycles after the later of the AW and W handshakes). ``AWREADY`` and
      ``WREADY`` stay low while that channel's holding register is full or a response is
      pending, so one write is outstanding at a time: with BREADY held high a new write is
      accepted the cycle after the B handshake (one write every 3 cycles).
    * Read: ARREADY is high when no read is in flight. RVALID rises 3 cycles after the AR
      handshake (address register, then a per-256-byte-page 64:1 mux register, then the page
      select register) and RDATA/RRESP hold until RREADY. One read outstanding.
    * Reads and writes proceed independently of each other.
    * Unmapped read: SLVERR with RDATA 0xDEADBEEF. Write to an unmapped or read-only address:
      SLVERR, no effect. WSTRB masks bytes of RW fields and of W1C/W1P bits.
    * 64-bit pairs: reading ``_LO`` copies bits 63:32 into a shared shadow register (in the same
      cycle as bits 31:0 are sampled); ``_HI`` reads the shadow.
    * Logic depth: every register-to-register path goes through at most a 10-bit equality
      compare plus a strobe/merge (write side) or a 64:1 mux (read side).
    """

    def __init__(self, table: RegisterTable | None = None, *, addr_width: int = 12):
        table = build_table() if table is None else table
        if not isinstance(table, RegisterTable):
            raise TypeError(f"table must be a RegisterTable, not {table!r}")
        if not isinstance(addr_width, int) or isinstance(addr_width, bool):
            raise TypeError(f"addr_width must be an int, not {addr_width!r}")
        if (1 << addr_width) < table.size:
            raise ValueError(f"addr_width={addr_width} cannot address {table.size:#x} bytes")
        self.table = table
        self.addr_width = addr_width
        super().__init__({
            "axil": In(AXILiteSignature(addr_width=addr_width)),
            "regs": Out(_regs_signature(table)),
        })

    def elaborate(self, platform):
        m = Module()
        t, bus, regs = self.table, self.axil, self.regs
        aw = self.addr_width

        # ---------------- storage of RW and W1C fields
        store = {}  # field name -> Signal (RW value or W1C sticky)
        for r in t:
            if r.access in (Access.RW, Access.W1C) and r.half is None:
                for f in r.fields:
                    s = Signal(f.width, name=f"r_{f.name}", init=f.reset)
                    store[f.name] = s
                    if r.access is Access.RW:
                        m.d.comb += getattr(regs, f.name).eq(s)

        # ---------------- write path
        aw_full = Signal()
        aw_addr = Signal(aw - 2)
        w_full = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)
        b_valid = Signal()
        b_resp = Signal(2)
        m.d.comb += [
            bus.awready.eq(~aw_full & ~b_valid),
            bus.wready.eq(~w_full & ~b_valid),
            bus.bvalid.eq(b_valid),
            bus.bresp.eq(b_resp),
        ]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(bus.awaddr[2:])]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        with m.If(b_valid & bus.bready):
            m.d.sync += b_valid.eq(0)

        do_write = Signal()
        m.d.comb += do_write.eq(aw_full & w_full)
        bitmask = Signal(32)  # WSTRB expanded to bits
        m.d.comb += bitmask.eq(Cat(*(w_strb[i].replicate(8) for i in range(4))))

        writable = [r for r in t if r.access in (Access.RW, Access.W1C, Access.W1P)]
        hit_any = Signal()
        hits = []
        for r in writable:
            hit = Signal(name=f"whit_{r.name.lower()}")
            m.d.comb += hit.eq(aw_addr == (r.offset >> 2))
            hits.append(hit)
            for f in r.fields:
                sl = slice(f.lsb, f.lsb + f.width)
                data, mask = w_data[sl], bitmask[sl]
                if r.access is Access.RW:
                    s = store[f.name]
                    with m.If(do_write & hit):
                        m.d.sync += s.eq((s & ~mask) | (data & mask))
                elif r.access is Access.W1P:
                    pulse = getattr(regs, f.name)
                    m.d.sync += pulse.eq(Mux(do_write & hit, data & mask, 0))
        # W1C: set by the gateware, cleared by a write of 1 (set wins over clear)
        for r in t:
            if r.access is Access.W1C:
                hit = hits[writable.index(r)]
                for f in r.fields:
                    sl = slice(f.lsb, f.lsb + f.width)
                    s = store[f.name]
                    clr = Mux(do_write & hit, w_data[sl] & bitmask[sl], 0)
                    m.d.sync += s.eq((s & ~clr) | getattr(regs, f.name))
        m.d.comb += hit_any.eq(Cat(*hits).any() if hits else 0)
        with m.If(do_write):
            m.d.sync += [
                aw_full.eq(0), w_full.eq(0), b_valid.eq(1),
                b_resp.eq(Mux(hit_any, RESP_OKAY, RESP_SLVERR)),
            ]

        # ---------------- read path
        r_busy = Signal()  # a read is in the pipeline or waiting for RREADY
        s0_valid = Signal()
        s0_addr = Signal(aw - 2)
        s1_valid = Signal()
        r_valid = Signal()
        r_data = Signal(32)
        r_resp = Signal(2)
        shadow = Signal(32)
        m.d.comb += [
            bus.arready.eq(~r_busy),
            bus.rvalid.eq(r_valid),
            bus.rdata.eq(r_data),
            bus.rresp.eq(r_resp),
        ]
        m.d.sync += [s0_valid.eq(0), s1_valid.eq(0)]
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [r_busy.eq(1), s0_valid.eq(1), s0_addr.eq(bus.araddr[2:])]
        with m.If(r_valid & bus.rready):
            m.d.sync += [r_valid.eq(0), r_busy.eq(0)]

        # word value of every readable register
        def word(r):
            if r.const is not None:
                return Const(r.const, 32)
            if r.half == "lo":
                return getattr(regs, r.fields[0].name)[:32]
            if r.half == "hi":
                return shadow
            if r.access is Access.W1P:
                return Const(0, 32)
            parts = []
            pos = 0
            for f in sorted(r.fields, key=lambda f: f.lsb):
                if f.lsb > pos:
                    parts.append(Const(0, f.lsb - pos))
                parts.append(store[f.name] if f.name in store else getattr(regs, f.name))
                pos = f.lsb + f.width
            if pos < 32:
                parts.append(Const(0, 32 - pos))
            return Cat(*parts)

        page_bits = 6  # 64 words = 256 bytes per page
        pages: dict[int, list] = {}
        for r in t:
            pages.setdefault(r.offset >> (2 + page_bits), []).append(r)
        page_sel = s0_addr[page_bits:]
        page_q = {}  # page -> (data, hit, is_lo, hi-of-lo) registered
        for p, rs in sorted(pages.items()):
            d = Signal(32, name=f"page{p}_data")
            h = Signal(name=f"page{p}_hit")
            has_lo = any(r.half == "lo" for r in rs)
            lo = Signal(name=f"page{p}_lo") if has_lo else Const(0, 1)
            hi = Signal(32, name=f"page{p}_hi") if has_lo else Const(0, 32)
            page_q[p] = (d, h, lo, hi)
            m.d.sync += [d.eq(0), h.eq(0)]
            if has_lo:
                m.d.sync += [lo.eq(0), hi.eq(0)]
            with m.If(s0_valid):
                with m.Switch(s0_addr[:page_bits]):
                    for r in rs:
                        with m.Case((r.offset >> 2) & ((1 << page_bits) - 1)):
                            m.d.sync += [d.eq(word(r)), h.eq(page_sel == p)]
                            if r.half == "lo":
                                m.d.sync += [
                                    lo.eq(1),
                                    hi.eq(getattr(regs, r.fields[0].name)[32:64]),
                                ]
            m.d.sync += s1_valid.eq(s0_valid)
        # stage 2: only the page that matched has hit=1 (others are forced to 0 data)
        any_hit = Cat(*(q[1] for q in page_q.values())).any()
        data_or = 0
        lo_or = 0
        hi_or = 0
        for d, h, lo, hi in page_q.values():
            data_or = data_or | Mux(h, d, 0)
            lo_or = lo_or | (h & lo)
            hi_or = hi_or | Mux(h & lo, hi, 0)
        with m.If(s1_valid):
            m.d.sync += [
                r_valid.eq(1),
                r_data.eq(Mux(any_hit, data_or, UNMAPPED_READ)),
                r_resp.eq(Mux(any_hit, RESP_OKAY, RESP_SLVERR)),
            ]
            with m.If(lo_or):
                m.d.sync += shadow.eq(hi_or)
        return m
