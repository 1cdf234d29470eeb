"""Packetizing for replay: frames parse back to the same messages, positions are exact."""

from __future__ import annotations

import numpy as np
import pytest

from host.feed.capture import feed_from_pcap, load_feed, packetize_itch, symbol_directory
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
