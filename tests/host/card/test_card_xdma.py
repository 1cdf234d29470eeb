"""XDMA transport without a card: plain files stand in for the driver's device nodes.

The files are test fixtures, not a card: they check the register encoding (offsets, 32-bit
little-endian words, alignment), the record framing across short reads, and the error paths.
"""

from __future__ import annotations

import errno
import os
import struct

import numpy as np
import pytest

from host.card.transport import CardError, CardNotFound, CardTimeout, TransportClosed
from host.card.xdma import XdmaTransport, device_paths


@pytest.fixture
def devroot(tmp_path):
    user, c2h = device_paths(0, 0, tmp_path)
    bar = bytearray(0x1000)
    bar[0:4] = struct.pack("<I", 0x49544348)
    bar[0x104:0x108] = struct.pack("<I", 0xA1B2C3D4)
    user.write_bytes(bytes(bar))
    c2h.write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("use_mmap", [True, False])
def test_register_encoding(devroot, use_mmap):
    t = XdmaTransport(dev_root=devroot, bar_size=0x1000, use_mmap=use_mmap)
    assert (t._map is not None) == use_mmap
    assert t.read_reg(0) == 0x49544348
    assert t.read_reg(0x104) == 0xA1B2C3D4
    t.write_reg(0x200, 0x01020304)
    t.close()
    raw = (devroot / "xdma0_user").read_bytes()
    assert raw[0x200:0x204] == bytes([4, 3, 2, 1])  # little-endian word at the byte offset


def test_reg_base_and_range(devroot):
    t = XdmaTransport(dev_root=devroot, bar_size=0x1000, reg_base=0x100)
    assert t.read_reg(4) == 0xA1B2C3D4
    with pytest.raises(ValueError, match="aligned"):
        t.read_reg(2)
    with pytest.raises(ValueError, match="outside"):
        t.read_reg(0xF00)
    with pytest.raises(ValueError, match="32 bits"):
        t.write_reg(0, -1)
    t.close()
    with pytest.raises(TransportClosed):
        t.read_reg(0)


def test_records_across_short_reads(devroot):
    recs = np.arange(10 * 64, dtype=np.uint32).astype(np.uint8).reshape(10, 64)
    (devroot / "xdma0_c2h_0").write_bytes(recs.tobytes())
    t = XdmaTransport(dev_root=devroot, bar_size=0x1000, read_chunk=64)
    t.read_chunk = 100  # not a multiple of 64: every read leaves part of a record
    got = []
    for _ in range(20):
        r, cyc = t.recv_records(2)
        assert cyc is None
        got.append(r)
    np.testing.assert_array_equal(np.concatenate(got), recs)
    t.close()


def test_no_device(tmp_path):
    with pytest.raises(CardNotFound, match="XDMA driver"):
        XdmaTransport(dev_root=tmp_path)


def test_no_permission(devroot):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    (devroot / "xdma0_user").chmod(0)
    with pytest.raises(CardNotFound, match="permission"):
        XdmaTransport(dev_root=devroot)


def test_c2h_timeout_is_reported(devroot, monkeypatch):
    t = XdmaTransport(dev_root=devroot, bar_size=0x1000)

    def timeout(fd, n):
        raise OSError(512, "Unknown error 512")  # what the driver returns on C2H timeout

    monkeypatch.setattr(os, "read", timeout)
    with pytest.raises(CardTimeout, match="timeout"):
        t.recv_records()

    def eio(fd, n):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "read", eio)
    with pytest.raises(CardError, match="failed"):
        t.recv_records()
    monkeypatch.undo()
    t.close()


def test_frames_need_a_sink(devroot):
    t = XdmaTransport(dev_root=devroot, bar_size=0x1000)
    with pytest.raises(CardError, match="Ethernet port"):
        t.send_frames([b"x" * 60])
    t.close()

    class Sink:
        def __init__(self):
            self.sent = []

        def send(self, f):
            self.sent.append(f)

    sink = Sink()
    t = XdmaTransport(dev_root=devroot, bar_size=0x1000, frame_sink=sink)
    assert t.send_frames([b"a" * 60, b"bc" * 40]) == 2
    assert sink.sent == [b"a" * 60, b"bc" * 40]
    t.close()


def test_depth_records_across_short_reads(devroot):
    """192-byte records (depth_n = 5, record_bytes told by Card.identify) reassembled across
    reads that end inside a record."""
    recs = (np.arange(7 * 192, dtype=np.uint32) * 7).astype(np.uint8).reshape(7, 192)
    (devroot / "xdma0_c2h_0").write_bytes(recs.tobytes())
    t = XdmaTransport(dev_root=devroot, bar_size=0x1000)
    t.record_bytes = 192
    t.read_chunk = 250
    got = []
    for _ in range(20):
        r, _cyc = t.recv_records(3)
        assert r.shape[1:] == (192,)
        got.append(r)
    np.testing.assert_array_equal(np.concatenate(got), recs)
    t.close()
