"""cocotb bench for hw.axil.AXILiteRegisters: reads, writes, strobes, W1C, W1P, 64-bit snapshot,
unmapped addresses, AW/W in any order, B/R backpressure, and a random stress against a model."""

from __future__ import annotations

import random

import cocotb
from axil_master import OKAY, SLVERR, AxiLiteMaster
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hw.regs import MAGIC, UNMAPPED_READ, Access, build_table

T = build_table()


async def setup(dut, ready_prob=1.0, seed=0):
    cocotb.start_soon(Clock(dut.clk, 4, unit="ns").start())
    for name, (_a, _w, kind) in T.ports().items():
        if kind == "in":
            getattr(dut, f"regs__{name}").value = 0
    dut.rst.value = 1
    m = AxiLiteMaster(dut, rng=random.Random(seed), ready_prob=ready_prob)
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return m


def port(dut, name):
    return getattr(dut, f"regs__{name}")


@cocotb.test()
async def test_id_and_reset_values(dut):
    m = await setup(dut)
    for r in T:
        if r.access is Access.RW or r.const is not None:
            data, resp = await m.read(r.offset)
            assert resp == OKAY, r.name
            assert data == r.reset, f"{r.name}: {data:#x} != {r.reset:#x}"
    data, _ = await m.read(T["ID_MAGIC"].offset)
    assert data == 0x49544348


@cocotb.test()
async def test_rw_and_strobes(dut):
    m = await setup(dut)
    r = T["CONFIG_IP_DST"]
    assert await m.write(r.offset, 0x11223344) == OKAY
    assert (await m.read(r.offset))[0] == 0x11223344
    await RisingEdge(dut.clk)
    assert int(port(dut, "ip_dst").value) == 0x11223344
    assert await m.write(r.offset, 0xAABBCCDD, strb=0b0101) == OKAY
    assert (await m.read(r.offset))[0] == 0x11BB33DD
    # a register with unused bits reads them as 0
    r = T["CONFIG_SESSION_2"]
    assert await m.write(r.offset, 0xFFFFFFFF) == OKAY
    assert (await m.read(r.offset))[0] == 0x8000FFFF
    assert int(port(dut, "session_valid").value) == 1


@cocotb.test()
async def test_w1p_pulse(dut):
    m = await setup(dut)
    seen = []

    async def mon():
        cyc = 0
        while True:
            await ReadOnly()
            v = int(port(dut, "clear_stale_slot").value)
            if v:
                seen.append((cyc, v))
            await RisingEdge(dut.clk)
            cyc += 1

    cocotb.start_soon(mon())
    assert await m.write(T["CTRL_PULSE"].offset, 0b0100) == OKAY
    assert await m.write(T["CTRL_PULSE"].offset, 0b0100, strb=0) == OKAY  # masked: no pulse
    for _ in range(4):
        await RisingEdge(dut.clk)
    assert len(seen) == 1, seen
    assert (await m.read(T["CTRL_PULSE"].offset)) == (0, OKAY)


@cocotb.test()
async def test_w1c_sticky(dut):
    m = await setup(dut)
    off = T["STATUS_STICKY"].offset
    port(dut, "seen_gap").value = 1
    await RisingEdge(dut.clk)
    port(dut, "seen_gap").value = 0
    port(dut, "seen_table_full").value = 1
    await RisingEdge(dut.clk)
    port(dut, "seen_table_full").value = 0
    assert (await m.read(off))[0] == 0b0101
    assert await m.write(off, 0b0001) == OKAY
    assert (await m.read(off))[0] == 0b0100
    assert await m.write(off, 0xFFFFFFFF) == OKAY
    assert (await m.read(off))[0] == 0


@cocotb.test()
async def test_64bit_snapshot(dut):
    m = await setup(dut)
    lo, hi = T["CNT_FRAMES_LO"], T["CNT_FRAMES_HI"]
    port(dut, "cnt_frames").value = 0x00000005_FFFFFFFE
    await RisingEdge(dut.clk)
    assert (await m.read(lo.offset)) == (0xFFFFFFFE, OKAY)
    port(dut, "cnt_frames").value = 0x00000006_00000001  # carries after the _LO read
    assert (await m.read(hi.offset)) == (5, OKAY)        # still the snapshot
    assert (await m.read(lo.offset)) == (1, OKAY)
    assert (await m.read(hi.offset)) == (6, OKAY)
    # another pair shares the shadow
    port(dut, "cnt_bbo_updates").value = (7 << 32) | 9
    await RisingEdge(dut.clk)
    assert (await m.read(T["CNT_BBO_UPDATES_LO"].offset)) == (9, OKAY)
    assert (await m.read(T["CNT_BBO_UPDATES_HI"].offset)) == (7, OKAY)


@cocotb.test()
async def test_unmapped_and_readonly(dut):
    m = await setup(dut)
    # unmapped words taken from the table itself: the first hole after the ID registers, the
    # last word of each page that has a hole there, and the first word past the table
    holes = [a for a in range(0, T.size, 4) if T.at(a) is None]
    assert holes, "the register table has no unmapped word below its size"
    picks = {holes[0], holes[-1], T.size, *(a for a in holes if a % 0x100 == 0xFC)}
    for addr in sorted(picks):
        assert T.at(addr) is None
        assert (await m.read(addr)) == (UNMAPPED_READ, SLVERR), hex(addr)
        assert await m.write(addr, 0x1234) == SLVERR
    before = await m.read(T["ID_MAGIC"].offset)
    assert await m.write(T["ID_MAGIC"].offset, 0) == SLVERR
    assert await m.write(T["CNT_FRAMES_LO"].offset, 0) == SLVERR
    assert (await m.read(T["ID_MAGIC"].offset)) == before
    # low address bits ignored
    assert (await m.read(T["ID_MAGIC"].offset + 3))[0] == MAGIC
    # an unmapped access leaves nothing behind: the next mapped read is clean
    assert (await m.read(T["ID_VERSION"].offset)) == (T["ID_VERSION"].const, OKAY)


@cocotb.test()
async def test_aw_w_order(dut):
    m = await setup(dut)
    off = T["CONFIG_UDP_PORT"].offset
    for i, (da, dw) in enumerate([(0, 0), (0, 3), (3, 0), (1, 5), (6, 1)]):
        assert await m.write(off, 1000 + i, aw_delay=da, w_delay=dw) == OKAY
        assert (await m.read(off))[0] == 1000 + i


@cocotb.test()
async def test_random_stress_backpressure(dut):
    """Random reads/writes with random AW/W skew and B/R READY backpressure against a model."""
    rng = random.Random(5)
    m = await setup(dut, ready_prob=0.4, seed=5)
    rw = [r for r in T if r.access is Access.RW]
    model = {r.offset: r.reset for r in rw}
    masks = {r.offset: sum(f.mask for f in r.fields) for r in rw}
    ro_in = {}
    for name, (_a, w, kind) in T.ports().items():
        if kind == "in" and w == 64:
            v = rng.getrandbits(64)
            port(dut, name).value = v
            ro_in[name] = v
    for _ in range(150):
        op = rng.random()
        if op < 0.4:
            r = rng.choice(rw)
            d, s = rng.getrandbits(32), rng.getrandbits(4)
            bm = sum(0xFF << (8 * i) for i in range(4) if s >> i & 1) & masks[r.offset]
            assert await m.write(r.offset, d, s, aw_delay=rng.randrange(3),
                                 w_delay=rng.randrange(3)) == OKAY
            model[r.offset] = (model[r.offset] & ~bm) | (d & bm)
        elif op < 0.7:
            off = rng.choice(list(model))
            assert (await m.read(off)) == (model[off], OKAY), T.at(off).name
        elif op < 0.9:
            r = rng.choice([r for r in T if r.half == "lo"])
            v = ro_in[r.fields[0].name]
            assert (await m.read(r.offset)) == (v & 0xFFFFFFFF, OKAY)
            assert (await m.read(r.offset + 4)) == (v >> 32, OKAY)
        else:
            addr = rng.randrange(0, 1 << 12) & ~3
            if T.at(addr) is None:
                assert (await m.read(addr)) == (UNMAPPED_READ, SLVERR)
