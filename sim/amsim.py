"""Helpers for Amaranth's own simulator (``amaranth.sim``), beside the cocotb ones of
:mod:`sim.streams`: the Amaranth-level tests (``tests/hw``) and ``bench/book_stages.py``."""

from __future__ import annotations

__all__ = ["put"]


async def put(ctx, stream, payload) -> None:
    """Offer ``payload`` on ``stream`` (an ``amaranth.lib.stream`` interface the testbench
    drives) until the DUT takes it, then drop ``valid``: the transfer happens in the clock
    edge after which this returns. ``payload`` is a value or an int for the raw bits."""
    target = stream.payload if not isinstance(payload, int) else stream.payload.as_value()
    ctx.set(target, payload)
    ctx.set(stream.valid, 1)
    while True:
        await ctx.delay(1e-9)  # let the DUT's combinational ready settle on this payload
        rdy = ctx.get(stream.ready)
        await ctx.tick()
        if rdy:
            break
    ctx.set(stream.valid, 0)
