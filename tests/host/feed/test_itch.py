"""host.feed.itch: round trips for all 23 types, known answers from the spec layout, bad input,
and a cross-check against the independent PyPI decoder ``itchfeed``."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.feed import itch
from host.feed.spec import MESSAGES

ALPHA_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


def field_strategy(f):
    if f.kind == "alpha":
        # decode strips the right padding, so a round-trippable value has no trailing space
        return st.text(ALPHA_CHARS, max_size=f.width).map(lambda s: s.rstrip(" "))
    return st.integers(0, (1 << (8 * f.width)) - 1)


def message_strategy(mtype: str):
    fields = {f.name: field_strategy(f) for f in MESSAGES[mtype].fields[1:]}
    return st.fixed_dictionaries(fields).map(lambda d: itch.make(mtype, **d))


any_message = st.sampled_from(list(MESSAGES)).flatmap(message_strategy)


def random_messages(rng: np.random.Generator, n: int, types: str = "".join(MESSAGES)) -> list:
    """n random messages (tuples) of the given types, every field drawn from its full range."""
    out = []
    letters = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", np.uint8)
    for t in rng.choice(list(types), n):
        vals = {}
        for f in MESSAGES[t].fields[1:]:
            if f.kind == "alpha":
                k = int(rng.integers(0, f.width + 1))
                vals[f.name] = rng.choice(letters, k).tobytes().decode()
            else:
                vals[f.name] = int.from_bytes(rng.bytes(f.width), "big")
        out.append(itch.make(str(t), **vals))
    return out


def framed(raws) -> bytes:
    return b"".join(len(r).to_bytes(2, "big") + r for r in raws)


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("mtype", list(MESSAGES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip_each_type(mtype, data):
    msg = data.draw(message_strategy(mtype))
    raw = itch.encode_message(msg)
    assert len(raw) == MESSAGES[mtype].length
    assert raw[0] == ord(mtype)
    assert itch.decode(raw) == msg
    assert itch.decode(raw, 0, len(raw)) == msg


@pytest.mark.parametrize("mtype", list(MESSAGES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_bytes_round_trip_each_type(mtype, data):
    """Any bytes after the type byte decode and re-encode to themselves."""
    body = data.draw(st.binary(min_size=MESSAGES[mtype].length - 1,
                               max_size=MESSAGES[mtype].length - 1))  # fmt: skip
    raw = mtype.encode() + body
    assert itch.encode_message(itch.decode(raw)) == raw


@settings(max_examples=60, deadline=None)
@given(msgs=st.lists(any_message, max_size=30))
def test_stream_round_trip(msgs):
    buf = framed(itch.encode_message(m) for m in msgs)
    stats: dict = {}
    assert list(itch.iter_messages(buf, stats=stats)) == msgs
    assert stats == {"unknown_type": 0, "bad_length": 0, "truncated": 0, "zero_length": 0}


# --- known answers written from the spec byte layout -------------------------------------------


def test_known_add_order():
    raw = bytes.fromhex(
        "41"  # 0 Message Type "A"
        "1234"  # 1 Stock Locate
        "0007"  # 3 Tracking Number
        "0102030405 06"  # 5 Timestamp (6)
        "00000000DEADBEEF"  # 11 Order Reference Number (8)
        "53"  # 19 Buy/Sell "S"
        "000186A0"  # 20 Shares = 100000
        "4141504C20202020"  # 24 Stock "AAPL    "
        "0012D687"  # 32 Price = 1234567 -> 123.4567
    )
    assert len(raw) == 36
    m = itch.decode(raw)
    assert m == itch.make("A", stock_locate=0x1234, tracking_number=7, timestamp=0x010203040506,
                          order_reference_number=0xDEADBEEF, buy_sell_indicator="S",
                          shares=100000, stock="AAPL", price=1234567)  # fmt: skip
    assert itch.encode_message(m) == raw


def test_known_system_event_and_delete():
    raw = b"S" + struct.pack(">HH", 0, 1) + (34200 * 10**9).to_bytes(6, "big") + b"Q"
    m = itch.decode(raw)
    assert (m.message_type, m.stock_locate, m.tracking_number, m.timestamp, m.event_code) == (
        "S", 0, 1, 34200 * 10**9, "Q")  # fmt: skip
    raw = b"D" + bytes.fromhex("0005 0000 00000000ffff 7fffffffffffffff")
    m = itch.decode(raw)
    assert (m.stock_locate, m.timestamp, m.order_reference_number) == (5, 0xFFFF, 2**63 - 1)


def test_known_replace_and_mwcb():
    raw = b"U" + bytes.fromhex("0001 0002 000000000003 0000000000000010 0000000000000011"
                                "000000c8 00018704")  # fmt: skip
    m = itch.decode(raw)
    assert m.original_order_reference_number == 16 and m.new_order_reference_number == 17
    assert m.shares == 200 and m.price == 100100
    # V: three Price(8) fields at 11, 19, 27
    levels = [3_000_000_000_000, 2_000_000_000_000, 1_000_000_000_000]
    raw = b"V" + bytes(10) + b"".join(v.to_bytes(8, "big") for v in levels)
    m = itch.decode(raw)
    assert [m.level_1, m.level_2, m.level_3] == levels
    assert itch.encode("V", level_1=levels[0], level_2=levels[1], level_3=levels[2]) == raw


def test_known_stock_directory():
    raw = (b"R" + bytes.fromhex("0002 0000 000000000001") + b"MSFT    " + b"Q" + b"N"
           + (100).to_bytes(4, "big") + b"N" + b"C" + b"Z " + b"P" + b"N" + b"N" + b"1" + b"N"
           + (3).to_bytes(4, "big") + b"Y")  # fmt: skip
    m = itch.decode(raw)
    assert m.stock == "MSFT" and m.round_lot_size == 100 and m.issue_sub_type == "Z"
    assert m.luld_reference_price_tier == "1" and m.etp_leverage_factor == 3
    assert m.inverse_indicator == "Y"
    assert itch.encode_message(m) == raw


def test_make_defaults_and_padding():
    raw = itch.encode("A", stock="AB")
    assert raw[24:32] == b"AB      "
    assert raw[0:1] == b"A" and raw[1:24] == bytes(18) + b" " + bytes(4)


# --- bad input ---------------------------------------------------------------------------------


def test_encode_rejects_bad_values():
    with pytest.raises(itch.ItchError):
        itch.encode("A", shares=1 << 32)
    with pytest.raises(itch.ItchError):
        itch.encode("A", timestamp=1 << 48)
    with pytest.raises(itch.ItchError):
        itch.encode("A", stock="TOOLONGSYM")
    with pytest.raises(itch.ItchError):
        itch.encode("A", shares=-1)
    with pytest.raises(TypeError):
        itch.make("A", nonsense=1)
    with pytest.raises(itch.UnknownMessageType):
        itch.make("Z")


def test_decode_errors():
    raw = itch.encode("E", executed_shares=5)
    with pytest.raises(itch.TruncatedMessage):
        itch.decode(raw[:-1])
    with pytest.raises(itch.TruncatedMessage):
        itch.decode(raw, 0, len(raw) - 1)
    with pytest.raises(itch.TruncatedMessage):
        itch.decode(b"")
    with pytest.raises(itch.UnknownMessageType):
        itch.decode(b"Z" + raw[1:])
    # longer framing is accepted, extra bytes ignored
    assert itch.decode(raw + b"xyz", 0, len(raw) + 3).executed_shares == 5


def walk(buf, strict=False):
    stats: dict = {}
    return list(itch.iter_messages(buf, stats=stats, strict=strict)), stats


def test_unknown_type_skipped_and_counted():
    a, d = itch.encode("A", shares=1), itch.encode("D", order_reference_number=9)
    buf = framed([a, b"Z" + bytes(30), b"\x00\x01", d])
    msgs, stats = walk(buf)
    assert [m.message_type for m in msgs] == ["A", "D"]
    assert stats["unknown_type"] == 2
    with pytest.raises(itch.UnknownMessageType):
        walk(buf, strict=True)


def test_short_length_prefix_skipped_and_counted():
    a = itch.encode("A", shares=1)
    buf = framed([a[:30], itch.encode("B", match_number=3)])
    msgs, stats = walk(buf)
    assert [m.message_type for m in msgs] == ["B"] and stats["bad_length"] == 1
    with pytest.raises(itch.TruncatedMessage):
        walk(buf, strict=True)


def test_long_length_prefix_accepted():
    a = itch.encode("A", shares=1)
    msgs, stats = walk(framed([a + b"\x00" * 4, a]))
    assert len(msgs) == 2 and msgs[0] == msgs[1] and stats["bad_length"] == 0


def test_zero_length_stops():
    a = itch.encode("A", shares=1)
    msgs, stats = walk(framed([a]) + b"\x00\x00" + framed([a]))
    assert len(msgs) == 1 and stats["zero_length"] == 1
    with pytest.raises(itch.ItchError):
        walk(framed([a]) + b"\x00\x00", strict=True)


@pytest.mark.parametrize("cut", [1, 2, 5, 37])
def test_truncated_tail(cut):
    a = itch.encode("A", shares=1)
    buf = framed([a, a])
    msgs, stats = walk(buf[: len(buf) - cut])
    assert len(msgs) == 1 and stats["truncated"] == 1
    with pytest.raises(itch.TruncatedMessage):
        walk(buf[: len(buf) - cut], strict=True)


@settings(max_examples=150, deadline=None)
@given(buf=st.binary(max_size=400))
def test_garbage_never_crashes(buf):
    msgs, stats = walk(buf)
    for m in msgs:
        assert m.message_type in MESSAGES
    # with strict, garbage either parses completely or raises ItchError
    try:
        strict_msgs, _ = walk(buf, strict=True)
    except itch.ItchError:
        pass
    else:
        assert strict_msgs == msgs and not any(stats.values())


# --- cross-check against itchfeed --------------------------------------------------------------


def test_cross_check_itchfeed():
    parser_mod = pytest.importorskip("itch.parser")
    rng = np.random.default_rng(20240501)
    msgs = random_messages(rng, 3000)
    for t in MESSAGES:  # every type at least once
        msgs += random_messages(rng, 2, t)
    # itchfeed stops at an "End of Messages" system event: keep it out of the body
    msgs = [m for m in msgs if not (m.message_type == "S" and m.event_code == "C")]
    buf = framed(itch.encode_message(m) for m in msgs)
    theirs = list(parser_mod.MessageParser().parse_stream(buf))
    ours = list(itch.iter_messages(buf))
    assert ours == msgs
    assert len(theirs) == len(ours)
    for m, o in zip(ours, theirs, strict=True):
        assert o.message_type == m.message_type.encode()
        assert o.to_bytes() == itch.encode_message(m)
        # itchfeed attributes follow the spec field order (timestamp rebuilt separately)
        attrs = [a for a in vars(o) if a != "timestamp"]
        spec_fields = [f for f in MESSAGES[m.message_type].fields[1:] if f.name != "timestamp"]
        assert len(attrs) == len(spec_fields), (m.message_type, attrs)
        assert o.timestamp == m.timestamp
        for a, f in zip(attrs, spec_fields, strict=True):
            theirs_v = getattr(o, a)
            ours_v = getattr(m, f.name)
            if f.kind == "alpha":
                assert theirs_v.rstrip(b" ").decode("latin-1") == ours_v, (m.message_type, a)
            else:
                assert theirs_v == ours_v, (m.message_type, a, f.name)
