"""cocotb bench of hw.ethernet.FrameParser: forwarded payload bytes, flags and counters vs the
host model (host.card.ingress_model.IngressModel.frame_payload / feed)."""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from host.card.ingress_model import IngressModel, ip_to_int
from host.feed import net
from hw.ethernet import ETHERNET_COUNTERS, MAX_FRAME_BYTES, payload_beat_layout
from hw.layouts import mac_beat_layout
from sim.ingress.stimulus import packets, realistic_messages
from sim.streams import (
    StreamMonitor,
    StreamSink,
    StreamSource,
    frame_arrivals,
    frame_to_beats,
    pauses,
    reset_dut,
    start_clock,
)

W = int(os.environ.get("PARAM_DATA_WIDTH", "64"))
NB = W // 8


def _frames(rng, n_msgs):
    good = [
        net.udp_frame(p)
        for p in packets(realistic_messages(n_msgs, seed=31), seed=31, max_payload=300)
    ]
    out = []
    for fr in good:
        r = rng.random()
        err = False
        if r < 0.1:
            fr = fr[: int(rng.integers(1, len(fr) + 1))]
        elif r < 0.2:
            fr = bytearray(fr)
            k = int(rng.integers(0, min(len(fr), 70)))
            fr[k] ^= 1 << int(rng.integers(0, 8))
            fr = bytes(fr)
        elif r < 0.25:
            err = True
        elif r < 0.35:
            p, _ = net.parse_frame(fr)
            kw = {"vlan": int(rng.integers(0, 4096))} if rng.random() < 0.5 else {}
            kw["ip_options"] = b"\x01" * (4 * int(rng.integers(0, 11)))
            fr = net.udp_frame(p, **kw) + bytes(int(rng.integers(0, 9)))
        elif r < 0.4:
            p, _ = net.parse_frame(fr)
            fr = net.udp_frame(p, dst_port=int(rng.integers(0, 65536)))
        out.append((fr, err))
    out.append((bytes(12) + b"\x86\xdd" + bytes(60), False))  # IPv6
    out.append((net.udp_frame(bytes(20))[:60], False))  # smallest legal payload
    out.append((net.udp_frame(bytes(10)), False))  # UDP too short for MoldUDP64
    # frame length limit: a datagram ending exactly at MAX_FRAME_BYTES is parsed; one byte
    # more, or a 40,000-byte frame (past the 32 KiB a 12-bit beat counter could index), is
    # dropped whole (drop_long); a small datagram followed by 40,000 bytes of padding is parsed
    body = bytes(rng.integers(0, 256, MAX_FRAME_BYTES, np.uint8))
    out.append((net.udp_frame(body[: MAX_FRAME_BYTES - 42]), False))
    out.append((net.udp_frame(body[: MAX_FRAME_BYTES - 41]), False))
    out.append((net.udp_frame(body * 2 + body[:7000]), False))
    out.append((net.udp_frame(body[:100]) + bytes(40000), False))
    out.append((net.udp_frame(bytes(10)), False))
    return out


@cocotb.test()
async def frames_vs_model(dut):
    await start_clock(dut.clk)
    L = payload_beat_layout(W)
    src = StreamSource(dut, "i_stream", dut.clk, layout=mac_beat_layout(W), idle=pauses(0.1, 1))
    sink = StreamSink(dut, "o_stream", dut.clk, layout=L, backpressure=pauses(0.2, 2))
    mons = [StreamMonitor(dut, "i_stream", dut.clk), StreamMonitor(dut, "o_stream", dut.clk)]
    dut.config__enable.value = 1
    dut.config__udp_port.value = net.DEFAULTS["dst_port"]
    dut.config__ip_dst.value = ip_to_int(net.DEFAULTS["dst_ip"])
    dut.rx_ns.value = 0
    await reset_dut(dut, dut.clk)

    # a clock on rx_ns (7 ns a cycle, from a 64-bit value): every beat of a frame must carry
    # the value at the frame's first MAC beat
    async def clock():
        t = 0xFEDC_BA98_0000_0000
        while True:
            dut.rx_ns.value = t
            await RisingEdge(dut.clk)
            t += 7

    cocotb.start_soon(clock())
    stamp: list[int] = []  # input frame -> rx_ns in the first cycle its first beat was valid
    cocotb.start_soon(frame_arrivals(dut, "i_stream", dut.clk, mac_beat_layout(W),
                                     lambda: stamp.append(int(dut.rx_ns.value))))
    rng = np.random.default_rng(int(os.environ.get("SEED", "5")))
    model = IngressModel(data_width=W)
    expected = []
    for fi, (fr, err) in enumerate(_frames(rng, int(os.environ.get("N_MESSAGES", "1500")))):
        model.feed(fr, err)
        reason, payload, trunc = model.frame_payload(fr)
        if reason is None:
            expected.append((payload, trunc, err, fi))
        src.extend(frame_to_beats(fr, W, error=err))
    for idx, (payload, trunc, err, fi) in enumerate(expected):
        got = bytearray()
        beat = await sink.recv()
        assert beat["first"] == 1, f"frame {idx}: first beat not flagged"
        want_rx = stamp[fi]
        while True:
            assert beat["rx_ns"] == want_rx, f"frame {idx}: rx_ns {beat['rx_ns']} != {want_rx}"
            for j in range(NB):
                if beat["keep"] >> j & 1:
                    off = (beat["offset"] + j) & 0xFFFF
                    assert off == len(got), f"frame {idx}: lane {j} offset {off} != {len(got)}"
                    got.append(beat["data"] >> (8 * j) & 0xFF)
            if beat["last"]:
                break
            assert not beat["error"] and not beat["trunc"]
            beat = await sink.recv()
            assert beat["first"] == 0
        assert bytes(got) == payload, f"frame {idx}: payload differs"
        assert (beat["trunc"], beat["error"]) == (int(trunc), int(err)), f"frame {idx} flags"
    await src.wait_idle()
    # drain: the last beat leaves the pipeline stage (after up to 2 stalled cycles), its
    # outcome is registered, decoded, counted and read through the split counter's delay
    for _ in range(10):
        await RisingEdge(dut.clk)
    assert sink.empty()
    for name in ETHERNET_COUNTERS:
        got = int(getattr(dut, f"counters__{name}").value)
        assert got == model.counters[name], f"{name}: {got} != {model.counters[name]}"
    dut._log.info(
        "%d frames, %d accepted; %s",
        model.counters["frames"],
        len(expected),
        {k: model.counters[k] for k in ETHERNET_COUNTERS},
    )
    for mon in mons:
        mon.check()


@cocotb.test()
async def disabled_drops_silently(dut):
    await start_clock(dut.clk)
    src = StreamSource(dut, "i_stream", dut.clk, layout=mac_beat_layout(W))
    sink = StreamSink(dut, "o_stream", dut.clk)
    mons = [StreamMonitor(dut, "i_stream", dut.clk), StreamMonitor(dut, "o_stream", dut.clk)]
    dut.config__enable.value = 0
    dut.config__udp_port.value = net.DEFAULTS["dst_port"]
    dut.config__ip_dst.value = ip_to_int(net.DEFAULTS["dst_ip"])
    await reset_dut(dut, dut.clk)
    for _ in range(3):
        src.extend(frame_to_beats(net.udp_frame(bytes(40)), W))
    await src.wait_idle()
    for _ in range(10):
        await RisingEdge(dut.clk)
    assert sink.empty()
    assert int(dut.counters__frames.value) == 0
    for mon in mons:
        mon.check()
