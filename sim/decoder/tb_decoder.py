"""cocotb bench of hw.decoder.Decoder: every record compared with an independent decoder.

The expected record comes from :func:`sim.ingress.independent.independent_record` (itchfeed
parsing the raw bytes, with a hand-written field table), not from ``host.feed.record_map``,
from which the gateware is generated; the host model supplies the counters and must agree on
which messages yield a record.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np

from host.card.ingress_model import IngressModel
from hw.decoder import DECODER_COUNTERS, message_layout
from hw.layouts import ItchRecord, record_layout_fields
from sim.ingress.independent import independent_record
from sim.ingress.stimulus import message_payload, odd_messages, realistic_messages
from sim.streams import (
    StreamMonitor,
    StreamSink,
    StreamSource,
    pauses,
    reset_dut,
    start_clock,
)

N = int(os.environ.get("N_MESSAGES", "3000"))
WIDTHS = record_layout_fields()


async def _run(dut, msgs, *, idle, bp, seed):
    await start_clock(dut.clk)
    src = StreamSource(dut, "i_stream", dut.clk, layout=message_layout(), idle=idle)
    sink = StreamSink(dut, "o_stream", dut.clk, layout=ItchRecord, backpressure=bp)
    mons = [
        StreamMonitor(dut, "i_stream", dut.clk, layout=message_layout()),
        StreamMonitor(dut, "o_stream", dut.clk, layout=ItchRecord),
    ]
    await reset_dut(dut, dut.clk)
    model = IngressModel()
    rng = np.random.default_rng(seed)
    expected = []
    for k, msg in enumerate(msgs):
        gap = bool(rng.random() < 0.05)
        seq = int(rng.integers(0, 1 << 64, dtype=np.uint64)) if k % 97 == 0 else k + 1
        carried = gap or model.t.carry_gap  # the gap flag moves over dropped messages
        rec = model.decode_message(msg, seq, gap)
        ind = independent_record(msg, seq, carried, WIDTHS)
        assert (rec is None) == (ind is None), f"message {k}: model and itchfeed disagree"
        rx_ns = int(rng.integers(0, 1 << 63, dtype=np.int64)) * 2 + k % 2  # any 64-bit stamp
        if ind is not None:
            ind["rx_ns"] = rx_ns  # the frame's stamp passes through unchanged
            expected.append(ind)
        src.send_nowait(message_payload(msg, seq, gap, rx_ns))
    for i, exp in enumerate(expected):
        got = await sink.recv()
        assert got == exp, f"record {i}: got {got}, expected {exp}"
    await src.wait_idle()
    for _ in range(5):
        await cocotb.triggers.RisingEdge(dut.clk)
    assert sink.empty(), f"{len(sink)} unexpected records"
    for name in DECODER_COUNTERS:
        got = int(getattr(dut, f"counters__{name}").value)
        assert got == model.counters[name], f"counter {name}: {got} != {model.counters[name]}"
    for mon in mons:
        mon.check()
    return mons


@cocotb.test()
async def realistic_full_rate(dut):
    """Generated stream, no idles, no backpressure: one record per clock."""
    msgs = realistic_messages(N, seed=3)
    mons = await _run(dut, msgs, idle=None, bp=None, seed=1)
    assert mons[0].stall_cycles == 0, "input stalled at full rate"


@cocotb.test()
async def odd_and_backpressure(dut):
    """Unknown types, short/long/empty blocks mixed in, random idles and backpressure."""
    rng = np.random.default_rng(7)
    msgs = realistic_messages(N // 2, seed=5)
    odd = odd_messages(rng, N // 4)
    for m in odd:
        msgs.insert(int(rng.integers(0, len(msgs) + 1)), m)
    await _run(dut, msgs, idle=pauses(0.3, 1), bp=pauses(0.4, 2), seed=2)
