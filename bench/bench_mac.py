"""What the card's MAC path adds in front of the core, simulated (Amaranth simulator).

The 100G build: the CMAC delivers a frame as 512-bit beats, one per 322.265625 MHz cycle, and
``hw.platform.alveo.MacDownsizer`` hands it to the core 64 bits per cycle; the 10G/25G builds:
the MAC delivers 64 bits per MAC cycle (156.25 / 390.625 MHz) and
``hw.platform.mac.MacRxFifo`` moves it into the core clock. For one frame arriving alone (no
queue, output always ready) this prints, per frame size, when the frame's last byte leaves
towards the core after it left the MAC, in core cycles and ns: the part of the wire-to-record
latency that the core's figures (bench_ingress, bench_card) do not include. With
``Top(mac_stamp=True)`` (the Alveo build) the record's ``rx_ns`` is taken at the MAC's start of
packet, so this time is inside the card's measured latency. The CMAC's and the 10G/25G MAC's
own latency (PCS, RS-FEC) is not simulated here (vendor IP).

    .venv/bin/python bench/bench_mac.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CORE_HZ = 322_265_625
SIZES = (64, 256, 512, 1500, 9000)


def _downsizer(n: int) -> tuple[int, int]:
    """(cycle the last byte's 512-bit beat arrives, cycle the last 64-bit beat leaves)."""
    from amaranth.sim import Simulator

    from hw.platform.alveo import MacDownsizer

    dut = MacDownsizer(depth=512, max_frame_bytes=9600)
    res = {}

    async def bench(ctx):
        ctx.set(dut.o_ready, 1)
        beats = -(-n // 64)
        cyc = 0
        for i in range(beats):
            k = min(64, n - 64 * i)
            ctx.set(dut.rx_tdata, 0)
            ctx.set(dut.rx_tkeep, (1 << k) - 1)
            ctx.set(dut.rx_tlast, i == beats - 1)
            ctx.set(dut.rx_tvalid, 1)
            if i == beats - 1:
                res["in"] = cyc
            await ctx.tick()
            cyc += 1
        ctx.set(dut.rx_tvalid, 0)
        while True:
            if ctx.get(dut.o_valid) and ctx.get(dut.o_payload.last):
                res["out"] = cyc
                return
            await ctx.tick()
            cyc += 1

    sim = Simulator(dut)
    sim.add_clock(1 / CORE_HZ)
    sim.add_testbench(bench)
    sim.run()
    return res["in"], res["out"]


def _mac_fifo(n: int, mac_hz: float) -> float:
    """ns from the MAC cycle with the frame's last byte to the core cycle it leaves in."""
    from amaranth import ClockDomain, Module
    from amaranth.sim import Simulator

    from hw.platform.mac import MacRxFifo

    dut = MacRxFifo(depth=4096, max_frame_bytes=9600)
    top = Module()
    top.domains.mac = ClockDomain("mac")
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    res = {}
    ticks = {"mac": 0, "sync": 0}

    async def count(ctx):
        while True:
            await ctx.tick("sync")
            ticks["sync"] += 1

    async def source(ctx):
        beats = -(-n // 8)
        for i in range(beats):
            k = min(8, n - 8 * i)
            ctx.set(dut.rx_tkeep, (1 << k) - 1)
            ctx.set(dut.rx_tlast, i == beats - 1)
            ctx.set(dut.rx_tvalid, 1)
            if i == beats - 1:
                res["in"] = ticks["mac"] / mac_hz
            await ctx.tick("mac")
            ticks["mac"] += 1
        ctx.set(dut.rx_tvalid, 0)

    async def sink(ctx):
        ctx.set(dut.o_ready, 1)
        while True:
            await ctx.tick("sync")
            if ctx.get(dut.o_valid) and ctx.get(dut.o_payload.last):
                res["out"] = (ticks["sync"] + 1) / CORE_HZ
                return

    sim = Simulator(top)
    # both clocks start with their first edge at half a period
    sim.add_clock(1 / CORE_HZ, domain="sync")
    sim.add_clock(1 / mac_hz, domain="mac")
    sim.add_process(count)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return (res["out"] + 0.5 / CORE_HZ - res["in"] - 0.5 / mac_hz) * 1e9


def main() -> int:
    ns = 1e9 / CORE_HZ
    print(f"core clock {CORE_HZ / 1e6:.6f} MHz ({ns:.3f} ns/cycle); one frame alone, output "
          "always ready; times from the MAC cycle holding the frame's last byte")
    print("100G: CMAC 512-bit beats -> MacDownsizer -> core (64 bits/cycle)")
    print(f"  {'frame bytes':>11} {'last byte: cycles':>18} {'ns':>8}")
    for n in SIZES:
        t_in, t_out = _downsizer(n)
        print(f"  {n:>11} {t_out - t_in:>18} {(t_out - t_in) * ns:>8.1f}")
    for name, hz in (("25G", 390.625e6), ("10G", 156.25e6)):
        print(f"{name}: MAC 64-bit beats at {hz / 1e6:.3f} MHz -> MacRxFifo -> core "
              "(+-1 cycle: the two clocks' phase)")
        print(f"  {'frame bytes':>11} {'last byte: ns':>14}")
        for n in SIZES:
            print(f"  {n:>11} {_mac_fifo(n, hz):>14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
