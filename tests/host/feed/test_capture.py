"""Packetizing for replay: frames parse back to the same messages, positions are exact."""

from __future__ import annotations

import numpy as np
import pytest

from host.feed.capture import (
    PLAUSIBLE_MESSAGES,
    check_itch_head,
    feed_from_pcap,
    load_feed,
    packetize_itch,
    symbol_directory,
)
from host.feed.generator import generate, write_pcap_from_itch
from host.feed.moldudp import decode_packet
from host.feed.net import itch_from_pcap, parse_frame


@pytest.fixture(scope="module")
def itch():
    return generate(6000, 6, 11)


def _frames(feed):
    off = feed.frame_offsets()
    return [bytes(feed.buf[off[i] : off[i + 1]]) for i in range(feed.n_frames)]


def _check_positions(feed):
    frames = _frames(feed)
    walk = np.frombuffer(feed.itch, np.uint8)
    p = 0
    for k in range(feed.n_messages):
        n = int(walk[p]) << 8 | int(walk[p + 1])
        msg = feed.itch[p + 2 : p + 2 + n]
        f = frames[feed.frame[k]]
        assert f[feed.end[k] - n : feed.end[k]] == msg
        assert feed.mtype[k] == msg[0]
        p += 2 + n
    assert p == len(feed.itch)


def test_packetize_round_trip(itch):
    feed = packetize_itch(itch, session="ABCDEFGHIJ", first_seq=100)
    assert feed.itch == itch
    assert feed.seq[0] == 100 and np.all(np.diff(feed.seq) == 1)
    seq = 100
    for f in _frames(feed):
        assert len(f) <= 14 + 20 + 8 + 1472
        payload, info = parse_frame(f)  # checksums verified
        pkt = decode_packet(payload)
        assert pkt.session in ("ABCDEFGHIJ", b"ABCDEFGHIJ")
        assert pkt.sequence_number == seq
        seq += len(pkt.messages)
    assert seq == 100 + feed.n_messages
    _check_positions(feed)


def test_dropped_packets_make_gaps(itch):
    full = packetize_itch(itch)
    feed = packetize_itch(itch, drop_packets=[1, 4])
    assert feed.n_frames == full.n_frames - 2
    missing = np.setdiff1d(full.seq, feed.seq)
    assert missing.size == (full.frame == 1).sum() + (full.frame == 4).sum()
    _check_positions(feed)


def test_pcap_feed_matches_itch_from_pcap(itch, tmp_path):
    path = tmp_path / "x.pcap"
    write_pcap_from_itch(itch, path, seed=3)
    feed = load_feed(path)
    ref, _ = itch_from_pcap(path)
    assert feed.itch == ref
    assert feed.n_messages == 6000
    _check_positions(feed)
    assert feed_from_pcap(path).session == feed.session


def test_symbol_directory(itch):
    d = symbol_directory(itch)
    assert len(d) == 6 and all(isinstance(v, int) for v in d.values())


def _widen_timestamps(buf: bytes, n: int = 3000) -> bytes:
    """The same messages with an 8-byte timestamp (a vendor variant): each 2 bytes longer, so
    the 2-byte length framing still walks cleanly."""
    out, pos = bytearray(), 0
    while pos + 2 <= len(buf) and n:
        ln = int.from_bytes(buf[pos : pos + 2], "big")
        m = buf[pos + 2 : pos + 2 + ln]
        m = m[:5] + b"\0\0" + m[5:]
        out += len(m).to_bytes(2, "big") + m
        pos += 2 + ln
        n -= 1
    return bytes(out)


def test_check_itch_head_accepts_itch_5_0(itch):
    assert check_itch_head(itch, "x") == PLAUSIBLE_MESSAGES
    assert check_itch_head(itch[:1000], "x") > 10  # a cut at the end of the head is fine


def test_other_formats_are_refused_plain_gzip_and_pcap(itch, tmp_path):
    import gzip

    from host.errors import UserError
    from host.feed.capture import detect_format
    from host.feed.generator import split_messages as msgs_of
    from host.feed.moldudp import packetize
    from host.feed.net import udp_frame, write_pcap

    wide = _widen_timestamps(itch)
    (tmp_path / "w.itch").write_bytes(wide)
    (tmp_path / "w.itch.gz").write_bytes(gzip.compress(wide))
    for name in ("w.itch", "w.itch.gz"):
        with pytest.raises(UserError, match="not NASDAQ ITCH 5.0: message 0 .*12"):
            detect_format(str(tmp_path / name))
    msgs, pos = [], 0
    while pos < len(wide):
        ln = int.from_bytes(wide[pos : pos + 2], "big")
        msgs.append(wide[pos + 2 : pos + 2 + ln])
        pos += 2 + ln
    frames = [udp_frame(p) for p in packetize(msgs, session="ABCDEFGHIJ")]
    write_pcap(tmp_path / "w.pcap", frames)
    with pytest.raises(UserError, match="not NASDAQ ITCH 5.0: message 0 .*12"):
        detect_format(str(tmp_path / "w.pcap"))  # so bbo, stats, replay and session refuse it
    good = [udp_frame(p) for p in packetize(msgs_of(itch)[:300], session="ABCDEFGHIJ")]
    write_pcap(tmp_path / "g.pcap", good)
    assert detect_format(str(tmp_path / "g.pcap")) == "pcap"


def test_unknown_type_in_the_head_is_refused(itch):
    from host.errors import UserError

    bad = bytearray(itch)
    bad[2] = ord("Z")  # first message's type byte
    with pytest.raises(UserError, match="0x5a is not an ITCH 5.0 message type"):
        check_itch_head(bytes(bad), "x")
