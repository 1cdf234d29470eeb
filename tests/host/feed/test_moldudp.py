"""host.feed.moldudp: packet codec, packetizer and sequencing receiver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.feed import moldudp as mold
from host.feed.moldudp import MoldError, MoldReceiver

sessions = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=10)
seqs = st.integers(0, (1 << 64) - 1)
message_lists = st.lists(st.binary(max_size=80), max_size=20)


def test_known_packet():
    pkt = mold.encode_packet("ABCDEFGHIJ", 0x0102030405060708, [b"xyz", b""])
    assert pkt == (b"ABCDEFGHIJ" + bytes.fromhex("0102030405060708") + b"\x00\x02"
                   + b"\x00\x03xyz" + b"\x00\x00")  # fmt: skip
    assert mold.decode_packet(pkt) == ("ABCDEFGHIJ", 0x0102030405060708, [b"xyz", b""], "data")


def test_known_heartbeat_and_end():
    hb = mold.encode_packet("S1", 42, [])
    assert hb == b"S1        " + (42).to_bytes(8, "big") + b"\x00\x00"
    assert mold.decode_packet(hb) == ("S1", 42, [], mold.HEARTBEAT)
    eos = mold.encode_packet("S1", 42, [], end_of_session=True)
    assert eos[-2:] == b"\xff\xff" and len(eos) == 20
    assert mold.decode_packet(eos).kind == mold.END_OF_SESSION


@settings(max_examples=150, deadline=None)
@given(session=sessions, seq=seqs, msgs=message_lists)
def test_round_trip(session, seq, msgs):
    session = session.rstrip(" ")
    pkt = mold.encode_packet(session, seq, msgs)
    assert len(pkt) == 20 + sum(2 + len(m) for m in msgs)
    kind = mold.DATA if msgs else mold.HEARTBEAT
    assert mold.decode_packet(pkt) == (session, seq, msgs, kind)
    assert mold.decode_packet(bytearray(pkt)) == (session, seq, msgs, kind)


@pytest.mark.parametrize(
    "payload,reason",
    [
        (b"", "short_header"),
        (b"S" * 19, "short_header"),
        (b"S" * 10 + bytes(8) + b"\x00\x01" + b"\x00\x05abc", "block_overrun"),
        (b"S" * 10 + bytes(8) + b"\x00\x01" + b"\x00", "count_mismatch"),
        (b"S" * 10 + bytes(8) + b"\x00\x02" + b"\x00\x01a", "count_mismatch"),
        (b"S" * 10 + bytes(8) + b"\x00\x01" + b"\x00\x01ab", "count_mismatch"),
        (b"S" * 10 + bytes(8) + b"\x00\x00" + b"x", "count_mismatch"),
        (b"S" * 10 + bytes(8) + b"\xff\xff" + b"\x00\x01a", "count_mismatch"),
    ],
)
def test_bad_packets(payload, reason):
    with pytest.raises(MoldError) as e:
        mold.decode_packet(payload)
    assert e.value.reason == reason
    rx = MoldReceiver()
    assert rx.feed(payload) == [] and rx.bad_packets == 1 and rx.bad_reasons == {reason: 1}
    with pytest.raises(MoldError):
        MoldReceiver(strict=True).feed(payload)


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(max_size=120))
def test_garbage_decodes_or_raises_mold_error(payload):
    try:
        p = mold.decode_packet(payload)
    except MoldError:
        return
    eos = p.kind == mold.END_OF_SESSION
    again = mold.encode_packet(p.session, p.sequence_number, p.messages, end_of_session=eos)
    assert again[10:] == payload[10:] and p.session == payload[:10].decode("latin-1").rstrip(" ")


def test_encode_errors():
    with pytest.raises(MoldError):
        mold.encode_packet("ELEVENCHARS", 1, [b"a"])
    with pytest.raises(MoldError):
        mold.encode_packet("S", 1 << 64, [b"a"])
    with pytest.raises(MoldError):
        mold.encode_packet("S", 1, [bytes(0x10000)])
    with pytest.raises(MoldError):
        mold.encode_packet("S", 1, [b"a"], end_of_session=True)
    with pytest.raises(MoldError):
        mold.packetize([bytes(1451)], session="S")  # 20 + 2 + 1451 > 1472


def check_packets(pkts, msgs, first_seq, max_payload, max_messages=None):
    seq = first_seq
    out = []
    for p in pkts:
        assert len(p) <= max_payload
        d = mold.decode_packet(p)
        assert d.sequence_number == seq and d.kind == mold.DATA and d.session == "SESS"
        assert 1 <= len(d.messages) <= (max_messages or 65534)
        seq += len(d.messages)
        out += d.messages
    assert out == list(msgs)


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 60), max_size=200),
    max_payload=st.integers(82, 1500),
    first_seq=st.integers(0, 1 << 40),
    max_messages=st.none() | st.integers(1, 50),
    seed=st.none() | st.integers(0, 2**32),
)
def test_packetize_property(sizes, max_payload, first_seq, max_messages, seed):
    msgs = [bytes([i % 256]) * s for i, s in enumerate(sizes)]
    rng = None if seed is None else np.random.default_rng(seed)
    pkts = mold.packetize(msgs, session="SESS", first_seq=first_seq, max_payload=max_payload,
                          rng=rng, max_messages=max_messages)  # fmt: skip
    check_packets(pkts, msgs, first_seq, max_payload, max_messages)
    if rng is None:  # greedy: no packet could have taken the next message
        pos = 0
        for p in pkts[:-1]:
            n = len(mold.decode_packet(p).messages)
            pos += n
            full = n == max_messages or len(p) + 2 + len(msgs[pos]) > max_payload
            assert full


def test_packetize_default_mtu_and_random():
    msgs = [bytes(36)] * 1000
    greedy = mold.packetize(msgs, session="SESS")
    assert all(len(p) <= 1472 for p in greedy)
    assert len(mold.decode_packet(greedy[0]).messages) == (1472 - 20) // 38
    r1 = mold.packetize(msgs, session="SESS", rng=np.random.default_rng(5))
    r2 = mold.packetize(msgs, session="SESS", rng=np.random.default_rng(5))
    assert r1 == r2 and len(r1) > len(greedy)
    check_packets(r1, msgs, 1, 1472)


# --- receiver ----------------------------------------------------------------------------------


def packets(n_msgs=30, per=3, session="SESS", first=1):
    msgs = [f"m{i}".encode() for i in range(n_msgs)]
    return msgs, mold.packetize(msgs, session=session, first_seq=first, max_messages=per)


def test_in_order():
    msgs, pk = packets()
    rx = MoldReceiver()
    out = rx.feed_all(pk)
    assert [m for _s, m, _g in out] == msgs
    assert [s for s, _m, _g in out] == list(range(1, 31))
    assert not any(g for _s, _m, g in out)
    assert rx.gaps == rx.missing == rx.duplicates == 0 and rx.next_seq == 31
    assert rx.messages == 30 and rx.data_packets == 10 and rx.session == "SESS"


def test_gap_reported_with_range():
    msgs, pk = packets()
    rx = MoldReceiver()
    out = rx.feed_all(pk[:2] + pk[4:])
    assert rx.gaps == 1 and rx.missing == 6 and rx.gap_ranges == [(7, 12)]
    flagged = [s for s, _m, g in out if g]
    assert flagged == [13]
    assert len(out) == 24


def test_expected_first_seq():
    _msgs, pk = packets()
    rx = MoldReceiver(next_seq=1)
    rx.feed(pk[1])
    assert rx.gap_ranges == [(1, 3)]


def test_duplicates_and_overlap():
    msgs, pk = packets()
    rx = MoldReceiver()
    rx.feed_all(pk[:3])
    assert rx.feed(pk[1]) == [] and rx.duplicates == 1 and rx.duplicate_messages == 3
    overlap = mold.encode_packet("SESS", 8, msgs[7:12])  # seqs 8..12, 8 and 9 already seen
    out = rx.feed(overlap)
    assert [s for s, _m, _g in out] == [10, 11, 12] and rx.duplicate_messages == 5
    assert rx.gaps == 0 and rx.next_seq == 13


def test_late_packet_after_gap_is_old():
    _msgs, pk = packets()
    rx = MoldReceiver()
    rx.feed_all([pk[0], pk[2], pk[1]])
    assert rx.gaps == 1 and rx.duplicates == 1 and rx.messages == 6


def test_heartbeat_and_end_of_session():
    _msgs, pk = packets()
    rx = MoldReceiver()
    rx.feed_all(pk[:2])
    assert rx.feed(mold.encode_packet("SESS", 7, [])) == []
    assert rx.heartbeats == 1 and rx.gaps == 0
    rx.feed(mold.encode_packet("SESS", 10, []))  # heartbeat says 7..9 were sent
    assert rx.gaps == 1 and rx.gap_ranges == [(7, 9)] and rx.next_seq == 10
    out = rx.feed(pk[3])  # 10..12: first message after the gap carries the flag
    assert out[0][2] and out[0][0] == 10
    rx.feed(mold.encode_packet("SESS", 13, [], end_of_session=True))
    assert rx.end_of_session == 1 and rx.ended and rx.gaps == 1


def test_session_change():
    _m, pk1 = packets(session="A")
    _m, pk2 = packets(session="B", first=1)
    rx = MoldReceiver()
    rx.feed_all(pk1[:4])
    out = rx.feed_all(pk2)
    assert rx.session_changes == 1 and rx.session == "B" and rx.gaps == 0 and rx.duplicates == 0
    assert len(out) == 30
    st_ = rx.stats()
    assert st_["session_changes"] == 1 and st_["messages"] == 42


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 80),
    per=st.integers(1, 7),
    ops=st.lists(st.sampled_from(["keep", "drop", "dup"]), min_size=80, max_size=80),
)
def test_receiver_property(n, per, ops):
    msgs, pk = packets(n, per)
    stream = []
    for p, op in zip(pk, ops, strict=False):
        if op != "drop":
            stream.append(p)
        if op == "dup":
            stream.append(p)
    stream.append(mold.encode_packet("SESS", n + 1, [], end_of_session=True))
    rx = MoldReceiver(next_seq=1)
    out = rx.feed_all(stream)
    got = [s for s, _m, _g in out]
    assert got == sorted(set(got))
    assert all(msgs[s - 1] == m for s, m, _g in out)
    assert len(got) + rx.missing == n
    assert sum(b - a + 1 for a, b in rx.gap_ranges) == rx.missing
    assert set(got).isdisjoint(s for a, b in rx.gap_ranges for s in range(a, b + 1))
    dropped = sum(1 for _p, op in zip(pk, ops, strict=False) if op == "drop")
    assert rx.duplicates == sum(1 for _p, op in zip(pk, ops, strict=False) if op == "dup")
    assert (rx.missing == 0) == (dropped == 0)
