"""The C++ shim and SimTransport, on a stand-in top with the contract's port names.

These tests exercise the simulated card's machinery (build cache, frames in as batches, records
out, AXI4-Lite access, back-pressure, beat timing) independently of the real top level.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog

from host.card.sim import SimTransport, build_library, parse_ports, ports_header
from host.card.transport import CardTimeout, ModelNotBuilt, TransportClosed
from tests.host.card.standin import MAGIC, StandinTop


@pytest.fixture(scope="module")
def standin_verilog():
    return verilog.convert(StandinTop(), name="top", emit_src=False)


@pytest.fixture(scope="module")
def lib(standin_verilog):
    return build_library(standin_verilog)


@pytest.fixture
def card(lib):
    t = SimTransport(lib, idle_cycles=32, axil_timeout=200)
    yield t
    t.close()


def frames_of(n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes() for _ in range(n)
    ]


def expected_records(frames, errors=None):
    out = np.zeros((len(frames), 64), np.uint8)
    for i, f in enumerate(frames):
        out[i, : min(8, len(f))] = np.frombuffer(f[:8], np.uint8)
        out[i, 8:12] = np.frombuffer(len(f).to_bytes(4, "little"), np.uint8)
        out[i, 12:16] = np.frombuffer(i.to_bytes(4, "little"), np.uint8)
        out[i, 16] = 0 if errors is None else int(errors[i])
    return out


def test_ports_and_header(standin_verilog):
    ports = parse_ports(standin_verilog)
    assert ports["mac__payload"] == ("input", 74)
    assert ports["bbo__payload"] == ("output", 512)
    h = ports_header(standin_verilog)
    assert "#define PORT_MAC_PAYLOAD mac___05Fpayload" in h
    assert "#define MAC_LAST_OFF 72" in h


def test_missing_ports_are_named():
    v = "module top(clk);\n  input clk;\nendmodule\n"
    with pytest.raises(ModelNotBuilt, match="MAC_PAYLOAD"):
        ports_header(v)


def test_not_built_without_permission(tmp_path, standin_verilog):
    with pytest.raises(ModelNotBuilt, match="not built"):
        build_library(standin_verilog, build_root=tmp_path, allow_build=False)


def test_build_is_cached(lib, standin_verilog):
    assert build_library(standin_verilog) == lib
    assert build_library(standin_verilog, allow_build=False) == lib


def test_registers(card):
    assert card.read_reg(0x00) == MAGIC
    card.write_reg(0x04, 0x12345678)
    assert card.read_reg(0x04) == 0x12345678
    card.write_reg(0x04, 0xAB, strb=0b0001)
    assert card.read_reg(0x04) == 0x123456AB
    assert card.read_reg(0x44) == 0xDEADBEEF
    with pytest.raises(ValueError):
        card.write_reg(0x04, 1 << 32)


def test_frames_to_records_in_batches(card):
    frames = frames_of(3000)
    errors = np.zeros(len(frames), bool)
    errors[::7] = True
    card.send_frames(frames[:1000], errors=errors[:1000])
    card.send_frames(frames[1000:], errors=errors[1000:])
    assert card.run() == 0
    recs, cyc = card.recv_records(10_000)
    np.testing.assert_array_equal(recs, expected_records(frames, errors))
    assert np.all(np.diff(cyc.astype(np.int64)) > 0)
    assert card.frames_accepted == len(frames)
    assert card.read_reg(0x08) == len(frames)
    assert card.read_reg(0x0C) == sum(map(len, frames))
    assert card.recv_records(10)[0].shape == (0, 64)


def test_packed_buffer_input(card):
    frames = frames_of(50, seed=3)
    buf = np.frombuffer(b"".join(frames), np.uint8)
    lens = np.array([len(f) for f in frames], np.uint32)
    card.send_frames((buf, lens))
    card.run()
    np.testing.assert_array_equal(card.recv_records(100)[0], expected_records(frames))
    with pytest.raises(ValueError):
        card.send_frames((buf[:-1], lens))


def test_backpressure_keeps_every_record(card):
    frames = frames_of(2000, seed=1)
    card.set_stalls(bbo_ready=0.3, mac_valid=0.6, seed=7)
    card.send_frames(frames)
    card.run()
    got = [card.recv_records(333)[0] for _ in range(10)]
    np.testing.assert_array_equal(np.concatenate(got), expected_records(frames))


def test_run_limits(card):
    frames = frames_of(500, seed=2)
    card.send_frames(frames)
    assert card.run(max_records=100) == 1
    assert len(card.recv_records(1000)[0]) == 100
    c0 = card.cycle
    assert card.run(max_cycles=50) == 2
    assert card.cycle - c0 == 50
    assert card.beats_pending > 0
    card.run()
    assert len(card.recv_records(1000)[0]) == 400


def test_registers_while_streaming(card):
    frames = frames_of(400, seed=4)
    card.send_frames(frames)
    card.run(max_records=50)
    card.write_reg(0x10, 1)  # stall: the stand-in stops accepting beats
    before = card.read_reg(0x08)
    card.run(max_cycles=2000)
    assert card.read_reg(0x08) == before
    card.write_reg(0x10, 0)
    card.run()
    recs = np.concatenate([card.recv_records(1000)[0]])
    np.testing.assert_array_equal(recs, expected_records(frames))


def test_beat_cycles_and_ifg(card):
    card.record_beat_cycles(True)
    card.set_ifg(3)
    frames = [bytes(16), bytes(9)]  # 2 beats, then 2 beats
    card.send_frames(frames)
    card.run()
    cyc = card.take_beat_cycles().astype(np.int64)
    assert len(cyc) == 4
    # Back-to-back inside a frame; the stand-in holds mac.ready low for one cycle while its
    # record is waiting, then 3 idle cycles of inter-frame gap.
    assert cyc[1] - cyc[0] == 1 and cyc[3] - cyc[2] == 1
    assert cyc[2] - cyc[1] >= 4


def test_reset_drops_queue(card):
    card.send_frames(frames_of(100))
    card.run(max_records=10)
    card.reset()
    assert card.beats_pending == 0
    assert card.recv_records(100)[0].shape == (0, 64)
    assert card.read_reg(0x08) == 0


def test_timeout_and_closed(lib):
    t = SimTransport(lib, axil_timeout=200)
    t.write_reg(0x10, 1)
    t.close()
    t.close()
    with pytest.raises(TransportClosed):
        t.read_reg(0)


def test_axil_timeout_is_reported(tmp_path):
    # A top whose AXI4-Lite slave never answers.
    from amaranth import Module

    class Mute(StandinTop):
        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.mac.ready.eq(1)
            m.d.sync += self.bbo.valid.eq(0)  # a clock domain, so that clk/rst exist
            return m

    v = verilog.convert(Mute(), name="top", emit_src=False)
    t = SimTransport(build_library(v, build_root=tmp_path), axil_timeout=50)
    with pytest.raises(CardTimeout, match="no response"):
        t.read_reg(0)
    with pytest.raises(CardTimeout, match="no response"):
        t.write_reg(0, 1)
    t.close()


def test_card_lanes_default_and_override(monkeypatch):
    """The simulated card builds the U250 parameters with one ladder lane unless
    ITCHFPGA_CARD_LANES says otherwise; the lanes are part of the build's cache key."""
    from host.card.sim import SIM_LANES, card_params, source_key
    from hw.synth import BLOCKS

    monkeypatch.delenv("ITCHFPGA_CARD_LANES", raising=False)
    u250 = BLOCKS["top"].params["u250"]
    p = card_params()
    assert p["lanes"] == SIM_LANES == 1
    assert {k: v for k, v in p.items() if k != "lanes"} == {
        k: v for k, v in u250.items() if k != "lanes"}
    key1 = source_key()
    monkeypatch.setenv("ITCHFPGA_CARD_LANES", str(u250["lanes"]))
    assert card_params() == dict(u250)
    assert source_key() != key1


@pytest.mark.parametrize("raw", ["0", "3", "-2", "abc", "512", "1.5"])
def test_card_lanes_bad_value_is_one_line(monkeypatch, raw):
    from host.card.sim import card_params

    monkeypatch.setenv("ITCHFPGA_CARD_LANES", raw)
    with pytest.raises(ModelNotBuilt, match="ITCHFPGA_CARD_LANES"):
        card_params()
