"""host.feed.net: Ethernet II / IPv4 / UDP frames, classic pcap, ITCH out of a pcap."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.feed import bulk, files, moldudp, net
from host.feed.net import FrameError, PcapError
from host.feed.spec import MESSAGES


def ones_sum(data: bytes) -> int:
    """Independent 16-bit ones' complement sum (for checking, not the code under test)."""
    if len(data) % 2:
        data += b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_checksum_known_answer():
    # the textbook IPv4 header example: checksum 0xb861
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert net.checksum16(hdr) == 0xB861
    assert net.checksum16(hdr[:10] + b"\xb8\x61" + hdr[12:]) == 0
    assert net.checksum16(b"\x01") == ~0x0100 & 0xFFFF


def test_frame_layout_known():
    payload = b"hello, mold"
    fr = net.udp_frame(payload, src_mac="02:00:00:00:00:01", dst_mac="01:00:5e:00:00:fb",
                       src_ip="192.168.0.1", dst_ip="224.0.0.251", src_port=1234,
                       dst_port=5353, ip_id=0x1c46, ttl=64)  # fmt: skip
    assert fr[0:6] == bytes.fromhex("01005e0000fb") and fr[6:12] == bytes.fromhex("020000000001")
    assert fr[12:14] == b"\x08\x00"
    ip = fr[14:34]
    assert ip[0] == 0x45 and struct.unpack(">H", ip[2:4])[0] == 20 + 8 + len(payload)
    assert ip[4:6] == b"\x1c\x46" and ip[6:8] == b"\x40\x00" and ip[8] == 64 and ip[9] == 17
    assert ip[12:16] == bytes([192, 168, 0, 1]) and ip[16:20] == bytes([224, 0, 0, 251])
    assert ones_sum(ip) == 0xFFFF
    udp = fr[34 : 34 + 8 + len(payload)]
    assert struct.unpack(">HHH", udp[:6]) == (1234, 5353, 8 + len(payload))
    pseudo = ip[12:20] + b"\x00\x11" + struct.pack(">H", len(udp))
    assert ones_sum(pseudo + udp) == 0xFFFF
    assert len(fr) == 60 and fr[34 + len(udp) :] == bytes(60 - 34 - len(udp))  # padded
    assert net.parse_frame(fr)[0] == payload


macs = st.binary(min_size=6, max_size=6)
ips = st.integers(0, 2**32 - 1)
ports = st.integers(0, 65535)


@settings(max_examples=150, deadline=None)
@given(
    payload=st.binary(max_size=300),
    src_mac=macs,
    dst_mac=macs,
    src_ip=ips,
    dst_ip=ips,
    sport=ports,
    dport=ports,
    ip_id=st.integers(0, 65535),
    ttl=st.integers(0, 255),
    opt_words=st.integers(0, 10),
    csum=st.booleans(),
    vlan=st.none() | st.integers(0, 4095),
)
def test_frame_round_trip(payload, src_mac, dst_mac, src_ip, dst_ip, sport, dport, ip_id, ttl,
                          opt_words, csum, vlan):  # fmt: skip
    opts = bytes([1]) * (4 * opt_words)  # NOP options
    fr = net.udp_frame(payload, src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip, dst_ip=dst_ip,
                       src_port=sport, dst_port=dport, ip_id=ip_id, ttl=ttl, ip_options=opts,
                       udp_checksum=csum, vlan=vlan)  # fmt: skip
    assert len(fr) >= 60
    got, info = net.parse_frame(fr)
    assert got == payload
    assert info.ihl == 5 + opt_words and info.ip_options == opts
    assert (info.src_port, info.dst_port, info.ip_id, info.ttl, info.vlan) == (
        sport, dport, ip_id, ttl, vlan)  # fmt: skip
    assert net._ip(info.src_ip) == src_ip.to_bytes(4, "big")
    assert net._ip(info.dst_ip) == dst_ip.to_bytes(4, "big")
    assert net._mac(info.src_mac) == src_mac and net._mac(info.dst_mac) == dst_mac
    assert (info.udp_checksum != 0) == csum


def frame_with(**kw) -> bytes:
    return net.udp_frame(b"x" * 30, **kw)


def reason(fr) -> str:
    with pytest.raises(FrameError) as e:
        net.parse_frame(fr)
    return e.value.reason


def fix_ip_checksum(fr: bytearray, hlen: int = 20) -> bytearray:
    fr[24:26] = b"\x00\x00"
    fr[24:26] = struct.pack(">H", net.checksum16(bytes(fr[14 : 14 + hlen])))
    return fr


def test_parse_errors():
    good = bytearray(frame_with())
    assert reason(good[:10]) == "truncated"
    assert reason(good[:30]) == "truncated"
    assert reason(good[: 14 + 20 + 4]) == "truncated"
    ipv6 = bytearray(good)
    ipv6[12:14] = b"\x86\xdd"
    assert reason(ipv6) == "not_ipv4"
    v6 = bytearray(good)
    v6[14] = 0x65
    assert reason(fix_ip_checksum(v6)) == "bad_version"
    ihl = bytearray(good)
    ihl[14] = 0x44
    assert reason(ihl) == "bad_ihl"
    short_total = bytearray(good)
    short_total[16:18] = struct.pack(">H", 16)
    assert reason(fix_ip_checksum(short_total)) == "bad_length"
    long_total = bytearray(good)
    long_total[16:18] = struct.pack(">H", 500)
    assert reason(fix_ip_checksum(long_total)) == "truncated"
    ck = bytearray(good)
    ck[22] ^= 1  # TTL changed, checksum not updated
    assert reason(ck) == "bad_checksum"
    tcp = bytearray(good)
    tcp[23] = 6
    assert reason(fix_ip_checksum(tcp)) == "not_udp"
    frag = bytearray(good)
    frag[20:22] = b"\x20\x00"  # more fragments
    assert reason(fix_ip_checksum(frag)) == "fragment"
    ulen = bytearray(good)
    ulen[38:40] = struct.pack(">H", 7)
    assert reason(ulen) == "bad_udp_length"
    ulen[38:40] = struct.pack(">H", 200)
    assert reason(ulen) == "bad_udp_length"
    pay = bytearray(good)
    pay[50] ^= 0xFF
    assert reason(pay) == "bad_udp_checksum"
    assert net.parse_frame(pay, check_udp_checksum=False)[0][8] == ord("x") ^ 0xFF
    nock = bytearray(frame_with(udp_checksum=False))
    nock[50] ^= 0xFF
    assert net.parse_frame(nock)[0][8] == ord("x") ^ 0xFF  # checksum 0 = not checked


def test_options_parsed():
    opts = bytes.fromhex("94040000")  # router alert
    fr = frame_with(ip_options=opts)
    payload, info = net.parse_frame(fr)
    assert info.ihl == 6 and info.ip_options == opts and payload == b"x" * 30
    assert fr[14] == 0x46 and ones_sum(fr[14:38]) == 0xFFFF
    assert net.parse_frame(frame_with(ip_options=b"\x01"))[1].ip_options == b"\x01\x00\x00\x00"
    with pytest.raises(ValueError):
        frame_with(ip_options=bytes(44))


@settings(max_examples=200, deadline=None)
@given(pos=st.integers(0, 14 + 24 + 8 + 30 - 1), bit=st.integers(0, 7))
def test_bit_flips_detected_or_harmless(pos, bit):
    good = frame_with(ip_options=b"\x01\x01\x01\x01")
    fr = bytearray(good)
    fr[pos] ^= 1 << bit
    try:
        payload, _info = net.parse_frame(bytes(fr))
    except FrameError as e:
        assert e.reason in FrameError.REASONS
        assert pos >= 12  # MAC addresses are not checked
    else:
        # a flip is harmless only in the MAC addresses (not covered by any checksum)
        assert payload == b"x" * 30 and pos < 12


# --- pcap --------------------------------------------------------------------------------------


def test_pcap_known_header(tmp_path):
    p = tmp_path / "a.pcap"
    assert net.write_pcap(p, [b"\x01" * 60], ts_ns=[1_700_000_000_123_456_789]) == 1
    raw = p.read_bytes()
    assert raw[:4] == bytes.fromhex("4d3cb2a1")  # 0xa1b23c4d little-endian: ns resolution
    assert struct.unpack("<HHiIII", raw[4:24]) == (2, 4, 0, 0, 65535, 1)
    assert struct.unpack("<IIII", raw[24:40]) == (1_700_000_000, 123_456_789, 60, 60)
    assert raw[40:] == b"\x01" * 60


@settings(max_examples=40, deadline=None)
@given(
    frames=st.lists(st.binary(min_size=14, max_size=200), max_size=20),
    t0=st.integers(0, 2**40),
)
def test_pcap_round_trip(tmp_path_factory, frames, t0):
    p = tmp_path_factory.mktemp("pc") / "r.pcap"
    ts = [t0 + 7 * i for i in range(len(frames))]
    net.write_pcap(p, frames, ts)
    assert list(net.read_pcap(p)) == list(zip(ts, frames, strict=True))


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("magic,scale", [(0xA1B2C3D4, 1000), (0xA1B23C4D, 1)])
def test_read_pcap_variants(tmp_path, endian, magic, scale):
    frames = [b"a" * 60, b"b" * 70]
    raw = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for i, fr in enumerate(frames):
        raw += struct.pack(endian + "IIII", 100 + i, 5 + i, len(fr), len(fr)) + fr
    p = tmp_path / "v.pcap"
    p.write_bytes(raw)
    got = list(net.read_pcap(p))
    assert got == [((100 + i) * 10**9 + (5 + i) * scale, fr) for i, fr in enumerate(frames)]


def test_read_pcap_errors(tmp_path):
    p = tmp_path / "e.pcap"
    net.write_pcap(p, [b"a" * 60, b"b" * 60])
    raw = p.read_bytes()
    for cut, what in [(len(raw) - 1, "record 1 truncated"), (24 + 16 + 60 + 5, "header")]:
        p.write_bytes(raw[:cut])
        with pytest.raises(PcapError, match=what):
            list(net.read_pcap(p))
    p.write_bytes(b"\x0a\x0d\x0d\x0a" + raw[4:])  # pcapng section header
    with pytest.raises(PcapError, match="not a classic pcap"):
        list(net.read_pcap(p))
    p.write_bytes(raw[:10])
    with pytest.raises(PcapError):
        list(net.read_pcap(p))
    p.write_bytes(raw[:20] + struct.pack("<I", 101) + raw[24:])
    with pytest.raises(PcapError, match="linktype"):
        list(net.read_pcap(p))


def test_snaplen_cut(tmp_path):
    p = tmp_path / "s.pcap"
    net.write_pcap(p, [b"z" * 100], snaplen=64)
    st_: dict = {}
    assert list(net.read_pcap(p, stats=st_)) == [(0, b"z" * 64)] and st_["cut_frames"] == 1


# --- ITCH from pcap ----------------------------------------------------------------------------


def itch_stream(n=600, seed=9):
    rng = np.random.default_rng(seed)
    types = "".join(MESSAGES)
    return [t.encode() + rng.bytes(MESSAGES[t].length - 1) for t in rng.choice(list(types), n)]


def write_feed(path, pkts, extra=()):
    frames = [net.udp_frame(p, ip_id=i) for i, p in enumerate(pkts)]
    frames += list(extra)
    net.write_pcap(path, frames, [10**9 * 34200 + 1000 * i for i in range(len(frames))])


def test_itch_from_pcap(tmp_path):
    msgs = itch_stream()
    pkts = moldudp.packetize(msgs, session="0000000001", rng=np.random.default_rng(1))
    p = tmp_path / "feed.pcap"
    write_feed(p, pkts)
    data, stats = net.itch_from_pcap(p)
    assert data == files.frame(msgs)
    assert stats["frames"] == len(pkts) == stats["udp"] and stats["frame_errors"] == 0
    assert stats["mold"]["messages"] == len(msgs) and stats["mold"]["gaps"] == 0
    recs, _ = bulk.parse_records(data)
    assert len(recs) == len(msgs)


def test_itch_from_pcap_with_loss_and_noise(tmp_path):
    msgs = itch_stream()
    pkts = moldudp.packetize(msgs, session="0000000001", max_messages=10)
    seqs = [moldudp.decode_packet(q).sequence_number for q in pkts]
    stream = [pkts[0], pkts[1], pkts[1], *pkts[3:]]
    stream.append(moldudp.encode_packet("0000000001", len(msgs) + 1, []))
    bad = bytearray(net.udp_frame(pkts[2]))
    bad[60] ^= 0xFF  # corrupt payload: UDP checksum -> packet 2 lost
    arp = bytes(12) + b"\x08\x06" + bytes(46)
    other = net.udp_frame(pkts[2], dst_port=9)
    p = tmp_path / "lossy.pcap"
    write_feed(p, stream, extra=[bytes(bad), arp, other])
    data, stats = net.itch_from_pcap(p, dst_port=net.DEFAULTS["dst_port"])
    expect = msgs[: seqs[2] - 1] + msgs[seqs[3] - 1 :]
    assert data == files.frame(expect)
    assert stats["frame_errors"] == 2
    assert stats["frame_error_bad_udp_checksum"] == 1 and stats["frame_error_not_ipv4"] == 1
    assert stats["other_port"] == 1
    m = stats["mold"]
    assert m["duplicates"] == 1 and m["gaps"] == 1 and m["missing"] == 10
    assert m["gap_ranges"] == [(seqs[2], seqs[3] - 1)] and m["heartbeats"] == 1


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_pcap(tmp_path):
    msgs = itch_stream(200)
    pkts = moldudp.packetize(msgs, session="0000000001")
    p = tmp_path / "t.pcap"
    write_feed(p, pkts)
    out = subprocess.run(
        ["tshark", "-r", str(p), "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
         "-T", "fields", "-e", "frame.number", "-e", "ip.checksum.status",
         "-e", "udp.checksum.status"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    lines = [ln.split("\t") for ln in out.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(pkts)
    for ln in lines:  # checksum status: 0 bad, 1 good, 2 unverified: both must be verified good
        assert ln[1] == "1" and ln[2] == "1", ln
    bad = bytearray(p.read_bytes())
    bad[-1] ^= 1  # last byte of the last frame: its UDP checksum no longer matches
    (tmp_path / "bad.pcap").write_bytes(bytes(bad))
    out = subprocess.run(
        ["tshark", "-r", str(tmp_path / "bad.pcap"), "-o", "udp.check_checksum:TRUE",
         "-T", "fields", "-e", "udp.checksum.status"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.split()[-1] == "0"  # tshark does check: a damaged frame is seen as bad
