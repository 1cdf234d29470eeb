"""cocotb bench of hw.moldudp.MoldUDP64 alone (no framer feedback): header decisions, block
area lanes, counters and status vs host.card.ingress_model.IngressModel(mold_only=True)."""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from host.card.ingress_model import IngressModel
from host.feed import moldudp, net
from hw.ethernet import payload_beat_layout
from hw.moldudp import MOLD_COUNTERS, block_beat_layout, block_ends
from sim.ingress.stimulus import SESSION, packets, payload_beats, realistic_messages
from sim.streams import StreamMonitor, StreamSink, StreamSource, pauses, reset_dut, start_clock

W = int(os.environ.get("PARAM_DATA_WIDTH", "64"))
NB = W // 8


def _stream(rng, n):
    msgs = realistic_messages(n, seed=41)
    pk = packets(msgs, seed=41, max_payload=250)
    out = []
    for i, p in enumerate(pk):
        r = rng.random()
        if r < 0.08:
            continue  # lost -> gap
        out.append((p, False))
        if r < 0.15:
            out.append((p, False))  # duplicate
        elif r < 0.2 and i > 3:
            out.append((pk[i - 3], False))  # old
        elif r < 0.25:
            seq = int.from_bytes(p[10:18], "big") + int.from_bytes(p[18:20], "big")
            out.append((moldudp.encode_packet(SESSION, seq + int(rng.integers(0, 3)), []), False))
        elif r < 0.3:
            out.append((moldudp.encode_packet("NOPE", 5, [b"x"]), False))
        elif r < 0.35:
            out.append((p[: int(rng.integers(1, len(p)))], False))  # UDP-short: cut payload
        elif r < 0.45:
            out.append((p, True))  # MAC error
    out.append((moldudp.encode_packet(SESSION, 1 << 40, [], end_of_session=True), False))
    return out


@cocotb.test()
async def headers_vs_model(dut):
    await start_clock(dut.clk)
    src = StreamSource(dut, "i_stream", dut.clk, layout=payload_beat_layout(W), idle=pauses(0.1, 1))
    sink = StreamSink(
        dut, "o_stream", dut.clk, layout=block_beat_layout(W), backpressure=pauses(0.2, 2)
    )
    mons = [StreamMonitor(dut, "i_stream", dut.clk), StreamMonitor(dut, "o_stream", dut.clk)]
    dut.commit.value = 0
    dut.commit_next.value = 0
    dut.config__session.value = 0
    dut.config__session_valid.value = 0
    await reset_dut(dut, dut.clk)
    rng = np.random.default_rng(42)
    model = IngressModel(data_width=W, mold_only=True)
    areas = []
    for p, err in _stream(rng, int(os.environ.get("N_MESSAGES", "2000"))):
        kw = {}
        if rng.random() < 0.3:
            kw["vlan"] = 7
        if rng.random() < 0.3:
            kw["ip_options"] = b"\x01" * (4 * int(rng.integers(1, 11)))
        fr = net.udp_frame(p, **kw)
        if len(p) < 20:
            # keep the UDP length legal (>= 28): cut the frame instead of the payload
            fr = net.udp_frame(p + bytes(20 - len(p)), **kw)[: len(fr) if len(fr) > 62 else 62]
        reason, payload, _ = model.frame_payload(fr)
        assert reason is None
        _, info = model.classify(fr)
        model.feed(fr, err)
        areas.append(payload[20:])
        src.extend(payload_beats(fr, info["start"], info["end"], NB, err))
    log = [e for e in model.packet_log if e["match"]]
    n_hdr = 0
    prev_last = 0
    for idx, area in enumerate(areas):
        got = bytearray()
        first_beat = True
        while True:
            b = await sink.recv()
            # the framer's predecode: lane 0 reads the previous beat's last byte (any lane of
            # a packet's first beat is header or the block area's first byte, never checked)
            want = block_ends(b["data"], prev_last, NB)
            mask = ((1 << NB) - 1) ^ (1 if first_beat else 0)
            assert (b["ends"] ^ want) & mask == 0, (idx, b["ends"], want)
            prev_last = b["data"] >> (W - 8)
            off = b["offset"] - (1 << 16) if b["offset"] >= 1 << 15 else b["offset"]
            assert b["fin"] == int(2 - NB <= off <= 1), (idx, off, b["fin"])
            assert b["fnext"] == int(2 - 2 * NB <= off <= 1 - NB), (idx, off, b["fnext"])
            assert b["cnz"] == int(b["count"] != 0) and b["cgt1"] == int(b["count"] > 1)
            assert b["first"] == int(not got and b is not None and first_beat)
            first_beat = False
            for j in range(NB):
                if b["keep"] >> j & 1:
                    off = (b["offset"] + j) & 0xFFFF
                    assert off == len(got), f"packet {idx}: lane {j} offset {off}"
                    got.append(b["data"] >> (8 * j) & 0xFF)
            if b["hdr"]:
                exp = log[n_hdr]
                n_hdr += 1
                assert b["active"] == exp["active"], (idx, b, exp)
                assert (b["seq"], b["count"], b["gap"]) == (exp["seq"], exp["count"], exp["gap"])
                if exp["active"]:
                    assert b["skip"] == exp["skip"], (idx, b["skip"], exp)
            if b["last"]:
                break
        assert bytes(got) == area, f"packet {idx}: block area differs"
    assert n_hdr == len(log)
    await src.wait_idle()
    for _ in range(10):
        await RisingEdge(dut.clk)
    assert sink.empty()
    for name in MOLD_COUNTERS:
        got = int(getattr(dut, f"counters__{name}").value)
        want = model.counters[name] & 0xFFFFFFFF
        assert got == want, f"{name}: {got} != {want}"
    for k, v in model.status().items():
        assert int(getattr(dut, f"status__{k}").value) == v, k
    dut._log.info("%d headers; %s", n_hdr, {k: model.counters[k] for k in MOLD_COUNTERS})
    for mon in mons:
        mon.check()
