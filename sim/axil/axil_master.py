"""A tiny AXI4-Lite manager for cocotb benches (no dependency beyond cocotb).

Handshakes are decided on settled values (``ReadOnly``) and signals are driven after the
rising edge, which behaves the same on Verilator and Icarus. ``prefix`` is the flattened port
prefix of the slave (``axil__``).
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

OKAY, SLVERR = 0, 2


class AxiLiteMaster:
    def __init__(self, dut, prefix: str = "axil__", *, clk=None, rng: random.Random | None = None,
                 ready_prob: float = 1.0):
        self.dut = dut
        self.clk = clk if clk is not None else dut.clk
        self.p = prefix
        self.rng = rng or random.Random(0)
        self.ready_prob = ready_prob
        for n in ("awvalid", "wvalid", "arvalid", "bready", "rready"):
            self._s(n).value = 0
        self._s("awaddr").value = 0
        self._s("araddr").value = 0
        self._s("wdata").value = 0
        self._s("wstrb").value = 0

    def _s(self, name):
        return getattr(self.dut, self.p + name)

    async def _delay(self, n):
        for _ in range(n):
            await RisingEdge(self.clk)

    async def _handshake(self, valid, ready):
        self._s(valid).value = 1
        while True:
            await ReadOnly()
            fire = int(self._s(ready).value)
            await RisingEdge(self.clk)
            if fire:
                self._s(valid).value = 0
                return

    async def _aw(self, addr, delay):
        await self._delay(delay)
        self._s("awaddr").value = addr
        await self._handshake("awvalid", "awready")

    async def _w(self, data, strb, delay):
        await self._delay(delay)
        self._s("wdata").value = data
        self._s("wstrb").value = strb
        await self._handshake("wvalid", "wready")

    async def _response(self, valid, ready, fields):
        """Accept one response with random READY backpressure; returns the fields' values."""
        while True:
            r = 1 if self.rng.random() < self.ready_prob else 0
            self._s(ready).value = r
            await ReadOnly()
            fire = r and int(self._s(valid).value)
            vals = [int(self._s(f).value) for f in fields] if fire else None
            await RisingEdge(self.clk)
            if fire:
                self._s(ready).value = 0
                return vals

    async def write(self, addr: int, data: int, strb: int = 0xF, *, aw_delay: int = 0,
                    w_delay: int = 0) -> int:
        """One write; AW and W are presented after their own delays (any order). Returns BRESP."""
        aw = cocotb.start_soon(self._aw(addr, aw_delay))
        w = cocotb.start_soon(self._w(data, strb, w_delay))
        b = cocotb.start_soon(self._response("bvalid", "bready", ["bresp"]))
        await aw
        await w
        (resp,) = await b
        return resp

    async def read(self, addr: int) -> tuple[int, int]:
        """One read; returns (RDATA, RRESP)."""
        self._s("araddr").value = addr
        r = cocotb.start_soon(self._response("rvalid", "rready", ["rdata", "rresp"]))
        await self._handshake("arvalid", "arready")
        data, resp = await r
        return data, resp
