"""host.feed.bulk: numba bulk parse checked against the per-message codec and the record map."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.feed import bulk, itch
from host.feed.record_map import RECORD_WIDTHS, expected_record
from host.feed.spec import MESSAGES

TYPES = "".join(MESSAGES)


def random_raw(rng: np.random.Generator, n: int) -> list[bytes]:
    """n random valid messages: a type byte then random bytes of the type's length."""
    out = []
    for t in rng.choice(list(TYPES), n):
        out.append(t.encode() + rng.bytes(MESSAGES[t].length - 1))
    return out


def framed(raws) -> bytes:
    return b"".join(len(r).to_bytes(2, "big") + r for r in raws)


def reference(buf, base_index=0):
    """(msg_index, message) pairs and iter_messages stats, with the pure-Python codec."""
    stats: dict = {}
    msgs = list(itch.iter_messages(buf, stats=stats))
    # msg_index: position among all length-prefixed messages, walked independently
    idx, pos, out = 0, 0, []
    mv = memoryview(buf)
    while pos + 2 <= len(mv):
        ln = int.from_bytes(mv[pos : pos + 2], "big")
        if ln == 0 or pos + 2 + ln > len(mv):
            break
        t = chr(mv[pos + 2])
        if t in MESSAGES and ln >= MESSAGES[t].length:
            out.append(base_index + idx)
        idx += 1
        pos += 2 + ln
    assert len(out) == len(msgs)
    return list(zip(out, msgs, strict=True)), stats, idx, pos


def check_records(buf, base_index=0):
    recs, stats = bulk.parse_records(buf, base_index=base_index)
    ref, ref_stats, framed_n, consumed = reference(buf, base_index)
    assert recs.dtype == bulk.RECORD_DTYPE
    assert len(recs) == len(ref) == stats["messages"]
    for k, v in ref_stats.items():
        assert stats[k] == v, k
    assert stats["framed"] == framed_n and stats["consumed"] == consumed
    for row, (idx, msg) in zip(recs, ref, strict=True):
        assert int(row["msg_index"]) == idx
        exp = expected_record(msg)
        for name in RECORD_WIDTHS:
            assert int(row[name]) == exp[name], (msg.message_type, name)
    return recs, stats


def test_dtype_matches_itch_record():
    from hw.layouts import ItchRecord

    names = [n for n, _f in ItchRecord if n not in ("seq", "gap", "rx_ns")]  # META_FIELDS
    assert list(bulk.RECORD_DTYPE.names) == ["msg_index", *names]
    for n, f in ItchRecord:
        if n in names:
            assert bulk.RECORD_DTYPE[n].itemsize * 8 >= f.shape.width, n
            assert bulk.RECORD_DTYPE[n].kind == "u"
    assert bulk.RECORD_DTYPE["msg_index"] == np.dtype("<i8")


def test_no_amaranth_import():
    code = "import sys, host.feed.bulk; assert 'amaranth' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_table_dtypes_from_spec():
    for t, m in MESSAGES.items():
        dt = bulk.TABLE_DTYPES[t]
        assert dt.names == m.names
        for f in m.fields:
            if f.kind == "alpha":
                assert dt[f.name] == np.dtype(f"S{f.width}")
            else:
                assert dt[f.name].itemsize >= f.width


def test_all_types_random():
    rng = np.random.default_rng(7)
    raws = random_raw(rng, 4000) + [t.encode() + rng.bytes(MESSAGES[t].length - 1) for t in TYPES]
    recs, stats = check_records(framed(raws))
    assert stats["messages"] == len(raws) and set(recs["msg_type"].tobytes().decode()) == set(TYPES)


def test_known_record():
    raw = itch.encode("A", stock_locate=3, tracking_number=4, timestamp=5,
                      order_reference_number=6, buy_sell_indicator="B", shares=7,
                      stock="AAPL", price=8)  # fmt: skip
    (r,), _ = bulk.parse_records(framed([raw]), base_index=41)
    assert r["msg_index"] == 41 and r["msg_type"] == ord("A") and r["order_ref"] == 6
    assert r["side"] == ord("B") and r["shares"] == 7 and r["price"] == 8
    assert r["stock"] == int.from_bytes(b"AAPL    ", "little")
    assert r["new_order_ref"] == 0 and r["match_number"] == 0 and r["code"] == 0


def test_input_kinds_and_empty():
    raw = framed([itch.encode("D", order_reference_number=1)])
    for b in (raw, bytearray(raw), memoryview(raw), np.frombuffer(raw, np.uint8)):
        recs, _ = bulk.parse_records(b)
        assert len(recs) == 1 and recs[0]["order_ref"] == 1
    recs, stats = bulk.parse_records(b"")
    assert len(recs) == 0 and stats["framed"] == 0 and stats["consumed"] == 0
    bp = bulk.parse_tables(b"")
    assert len(bp.types) == 0 and all(len(t) == 0 for t in bp.tables.values())


chunk = st.one_of(
    st.sampled_from(TYPES).flatmap(
        lambda t: st.binary(min_size=MESSAGES[t].length - 1, max_size=MESSAGES[t].length + 3).map(
            lambda b, t=t: t.encode() + b  # valid, possibly longer than the type
        )
    ),
    st.sampled_from(TYPES).flatmap(
        lambda t: st.binary(min_size=0, max_size=MESSAGES[t].length - 2).map(
            lambda b, t=t: t.encode() + b  # shorter than the type: bad_length
        )
    ),
    st.binary(min_size=1, max_size=60).filter(lambda b: chr(b[0]) not in MESSAGES),
)


@settings(max_examples=120, deadline=None)
@given(parts=st.lists(chunk, max_size=25), tail=st.binary(max_size=6), base=st.integers(0, 10**12))
def test_against_codec_with_bad_input(parts, tail, base):
    check_records(framed(parts) + tail, base)


@settings(max_examples=100, deadline=None)
@given(buf=st.binary(max_size=300))
def test_garbage(buf):
    check_records(buf)


def check_tables(buf):
    bp = bulk.parse_tables(buf)
    ref, ref_stats, _n, _c = reference(buf)
    for k, v in ref_stats.items():
        assert bp.stats[k] == v
    assert len(bp.types) == len(ref)
    counts = {t: 0 for t in MESSAGES}
    for i, (idx, msg) in enumerate(ref):
        t = chr(bp.types[i])
        assert t == msg.message_type and bp.msg_index[i] == idx
        assert bp.rows[i] == counts[t]
        counts[t] += 1
        assert buf[bp.offsets[i]] == ord(t)
        row = bp.tables[t][bp.rows[i]]
        for f in MESSAGES[t].fields:
            v = row[f.name]
            if f.kind == "alpha":
                # numpy S fields drop trailing NULs on access; the stored bytes are the wire's
                off = bp.offsets[i] + f.offset
                assert v.ljust(f.width, b"\0") == bytes(buf[off : off + f.width])
            else:
                assert int(v) == getattr(msg, f.name), (t, f.name)
    for t, n in counts.items():
        assert len(bp.tables[t]) == n and bp.tables[t].dtype == bulk.TABLE_DTYPES[t]


def test_tables_all_types():
    rng = np.random.default_rng(11)
    check_tables(framed(random_raw(rng, 3000)))


@settings(max_examples=80, deadline=None)
@given(parts=st.lists(chunk, max_size=25), tail=st.binary(max_size=6))
def test_tables_with_bad_input(parts, tail):
    check_tables(framed(parts) + tail)


def test_alpha_bytes_kept_raw():
    raw = itch.encode("A", stock="AB C", buy_sell_indicator="S")
    bp = bulk.parse_tables(framed([raw]))
    assert bp.tables["A"]["stock"][0] == b"AB C    "
    assert bp.tables["A"]["buy_sell_indicator"][0] == b"S"


@pytest.mark.parametrize("pos", [1, 2, 3])
def test_frame_end(pos):
    raws = random_raw(np.random.default_rng(pos), 10)
    buf = framed(raws)
    cut = buf[:-pos]
    end, n, zero = bulk.frame_end(cut)
    assert end == len(framed(raws[:-1])) and n == 9 and not zero
    end, n, zero = bulk.frame_end(framed(raws[:3]) + b"\x00\x00" + buf)
    assert end == len(framed(raws[:3])) and n == 3 and zero
