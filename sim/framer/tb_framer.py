"""cocotb bench of hw.framer.Framer alone: every message handed on (bytes, length, seq, gap),
the commit port and the truncated counter vs host.card.ingress_model.IngressModel.

The per-packet MoldUDP64 decisions on the input beats come from the model's packet log, so the
framer sees exactly what the real tracker would give it.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from host.card.ingress_model import IngressModel
from host.feed import moldudp, net
from host.feed.spec import MAX_MESSAGE_LENGTH
from hw.decoder import message_layout
from hw.moldudp import block_beat_layout, block_ends
from sim.ingress.stimulus import SESSION, packets, payload_beats, realistic_messages
from sim.streams import StreamMonitor, StreamSink, StreamSource, pauses, reset_dut, start_clock

W = int(os.environ.get("PARAM_DATA_WIDTH", "64"))
NB = W // 8


def _block_beats(fr, info, err, decision):
    """payload beats -> block beats with the decision attached from the header beat on."""
    out = []
    seen_hdr = False
    prev_last = 0  # the previous beat's last byte (``ends`` of lane 0)
    for b in payload_beats(fr, info["start"], info["end"], NB, err):
        off = b["offset"] - (1 << 16) if b["offset"] >= 1 << 15 else b["offset"]
        keep = 0
        hdr_here = False
        for j in range(NB):
            if b["keep"] >> j & 1:
                if off + j >= 20:
                    keep |= 1 << j
                if off + j == 19:
                    hdr_here = True
        hdr = hdr_here and decision is not None and decision["match"]
        if hdr:
            seen_hdr = True
        d = decision if (seen_hdr and decision["match"]) else None
        out.append(
            {
                "data": b["data"],
                "keep": keep,
                "offset": (off - 20) & 0xFFFF,
                "first": b["first"],
                "last": b["last"],
                "error": b["error"],
                "active": d["active"] if d else 0,
                "hdr": int(hdr),
                "gap": d["gap"] if (d and hdr) else 0,
                "seq": d["seq"] if d else 0,
                "count": d["count"] if d else 0,
                "skip": d["skip"] if d else 0,
                "ends": block_ends(b["data"], prev_last, NB),
                "fin": int(2 - NB <= off - 20 <= 1),
                "fnext": int(2 - 2 * NB <= off - 20 <= 1 - NB),
                "cnz": int(bool(d) and d["count"] != 0),
                "cgt1": int(bool(d) and d["count"] > 1),
            }
        )
        prev_last = b["data"] >> (W - 8)
    return out


def _stream(rng, n):
    msgs = realistic_messages(n, seed=51)
    pk = packets(msgs, seed=51, max_payload=300)
    out = []
    for i, p in enumerate(pk):
        r = rng.random()
        if r < 0.05:
            continue
        if r < 0.1:
            out.append((p[: int(rng.integers(20, len(p) + 1))], False))  # truncated
        elif r < 0.2:
            out.append((p, True))  # MAC error
        elif r < 0.25 and i > 2:
            out.append((pk[i - 1], False))  # overlap / duplicate
            out.append((p, False))
        elif r < 0.3:
            seq = int.from_bytes(p[10:18], "big")
            junk = [bytes([0x01]) * int(rng.integers(0, 7)) for _ in range(4)]  # tiny blocks
            out.append(
                (moldudp.encode_packet(SESSION, seq, junk + [m for m in [b"", b"zz"]]), False)
            )
            out.append(
                (p[:18] + (int.from_bytes(p[18:20], "big") + 6).to_bytes(2, "big") + p[20:], False)
            )
        else:
            out.append((p, False))
    return out


@cocotb.test()
async def messages_vs_model(dut):
    await start_clock(dut.clk)
    src = StreamSource(dut, "i_stream", dut.clk, layout=block_beat_layout(W), idle=pauses(0.1, 1))
    sink = StreamSink(
        dut, "o_stream", dut.clk, layout=message_layout(), backpressure=pauses(0.25, 2)
    )
    mons = [StreamMonitor(dut, "i_stream", dut.clk), StreamMonitor(dut, "o_stream", dut.clk)]
    commits = []

    async def watch_commit():
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if int(dut.commit.value):
                commits.append(int(dut.commit_seq.value))

    cocotb.start_soon(watch_commit())
    await reset_dut(dut, dut.clk)
    rng = np.random.default_rng(52)
    model = IngressModel(data_width=W)
    for p, err in _stream(rng, int(os.environ.get("N_MESSAGES", "2500"))):
        fr = net.udp_frame(p, vlan=3) if rng.random() < 0.3 else net.udp_frame(p)
        _, info = model.classify(fr)
        n_log = len(model.packet_log)
        model.feed(fr, err)
        decision = model.packet_log[n_log] if len(model.packet_log) > n_log else None
        src.extend(_block_beats(fr, info, err, decision))
    for i, (seq, msg, gap) in enumerate(model.messages_log):
        got = await sink.recv()
        n = min(len(msg), MAX_MESSAGE_LENGTH)
        data = got["data"] & ((1 << (8 * n)) - 1)
        assert (got["seq"], got["gap"], got["length"]) == (seq, int(gap), len(msg)), (i, got)
        assert data == int.from_bytes(msg[:n], "little"), f"message {i} bytes differ"
    await src.wait_idle()
    for _ in range(5):
        await RisingEdge(dut.clk)
    assert sink.empty()
    assert commits == [s for s, _, _ in model.messages_log]
    assert int(dut.counters__truncated.value) == model.counters["truncated"]
    dut._log.info("%d messages, truncated %d", len(commits), model.counters["truncated"])
    for mon in mons:
        mon.check()
