"""Property-based fuzzing of every reader of the feed floor: ITCH framing (bulk parser and
per-message codec), MoldUDP64 packets and the receiver, pcap, gzip, and the command line on top.

The property everywhere: damaged or random input never raises anything but the reader's own
documented error, never hangs, and whatever it counts adds up. ``make test`` runs a short
campaign; ``make test-long`` (marker ``long``) the same properties with many more examples.
"""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.feed import bulk, itch, moldudp, net
from host.feed.generator import generate, split_messages

SEED_STREAM = generate(600, 3, 7)
MESSAGES = split_messages(SEED_STREAM)
SHORT = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw, base: bytes):
    """``base`` with a few byte flips, a cut, an insertion or a duplicated span."""
    b = bytearray(base)
    for _ in range(draw(st.integers(0, 6))):
        if not b:
            break
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        i = draw(st.integers(0, len(b) - 1))
        if op == "flip":
            b[i] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del b[i : i + draw(st.integers(1, 64))]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            b[i:i] = b[i : i + draw(st.integers(1, 64))]
    return bytes(b)


def _check_itch(buf: bytes) -> None:
    recs, stats = bulk.parse_records(buf)
    assert len(recs) <= stats["framed"] <= len(buf) // 3 + 1
    assert 0 <= stats["consumed"] <= len(buf)
    # the per-message codec walks the same framing and decodes the same messages
    assert sum(1 for _ in itch.iter_messages(buf)) == len(recs)
    from host.feed.fastbook import bbo_trace_records

    bbo_trace_records(recs)  # the book takes any record stream (anomalies are counted)


@pytest.mark.parametrize("cfg", [SHORT, pytest.param(LONG, marks=pytest.mark.long)])
def test_itch_framing_and_book_never_crash(cfg):
    @cfg
    @given(mutated(SEED_STREAM[:4000]))
    def run(buf):
        _check_itch(buf)

    run()


@pytest.mark.parametrize("cfg", [SHORT, pytest.param(LONG, marks=pytest.mark.long)])
def test_random_bytes_as_itch(cfg):
    @cfg
    @given(st.binary(max_size=600))
    def run(buf):
        _check_itch(buf)

    run()


def _packets() -> list[bytes]:
    return moldudp.packetize(MESSAGES[:200], session="FUZZ000001")


@pytest.mark.parametrize("cfg", [SHORT, pytest.param(LONG, marks=pytest.mark.long)])
def test_moldudp64_decoder_and_receiver(cfg):
    pkts = _packets()

    @cfg
    @given(st.lists(st.one_of(st.sampled_from(pkts).flatmap(mutated), st.binary(max_size=80)),
                    max_size=20))  # fmt: skip
    def run(payloads):
        rx = moldudp.MoldReceiver()
        delivered = 0
        for p in payloads:
            try:
                moldudp.decode_packet(p)
            except moldudp.MoldError as e:
                assert e.reason in ("short_header", "block_overrun", "count_mismatch")
            delivered += len(rx.feed(p))  # non-strict: never raises, counts instead
        d = rx.counters() if callable(getattr(rx, "counters", None)) else vars(rx)
        assert d["packets"] == len(payloads)
        assert delivered <= sum(len(p) for p in payloads)

    run()


def _pcap_bytes(frames) -> bytes:
    f = io.BytesIO()
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.pcap")
        net.write_pcap(path, frames)
        with open(path, "rb") as fh:
            f.write(fh.read())
    return f.getvalue()


PCAP = _pcap_bytes([net.udp_frame(p) for p in _packets()[:12]])


@pytest.mark.parametrize("cfg", [SHORT, pytest.param(LONG, marks=pytest.mark.long)])
def test_pcap_reader(cfg, tmp_path_factory):
    d = tmp_path_factory.mktemp("pcapfuzz")

    @cfg
    @given(mutated(PCAP))
    def run(data):
        p = d / "f.pcap"
        p.write_bytes(data)
        try:
            itch_buf, stats = net.itch_from_pcap(p)
        except (net.PcapError, ValueError):
            return  # a broken file header or record header: a documented refusal
        assert stats["frames"] >= stats["udp"] >= 0
        bulk.parse_records(itch_buf)

    run()


@pytest.mark.parametrize("cfg", [SHORT, pytest.param(LONG, marks=pytest.mark.long)])
def test_command_line_on_damaged_files(cfg, tmp_path_factory, capsys):
    """Whatever the bytes, ``stats`` and ``bbo`` exit 0 or 1 with one error line: no
    traceback, no hang (plain, gzip and pcap inputs)."""
    from host.cli import main

    d = tmp_path_factory.mktemp("clifuzz")
    gz = gzip.compress(SEED_STREAM[:6000])

    @cfg
    @given(st.sampled_from(["itch", "gz", "pcap"]).flatmap(
        lambda k: st.tuples(st.just(k), mutated({"itch": SEED_STREAM[:6000], "gz": gz,
                                                 "pcap": PCAP}[k]))))  # fmt: skip
    def run(case):
        kind, data = case
        p = d / f"in.{kind}"
        p.write_bytes(data)
        for argv in (["stats", str(p)], ["bbo", str(p), "--out", str(d / "o.csv")]):
            code = main(argv)
            err = capsys.readouterr().err.strip()
            assert code in (0, 1), (argv, code)
            if code == 1:
                assert err.startswith("error:") and "\n" not in err, err

    run()


def test_fuzz_inputs_are_valid_to_start_with():
    """The campaigns start from inputs the readers accept whole (else they test nothing)."""
    recs, stats = bulk.parse_records(SEED_STREAM)
    assert stats["framed"] == len(MESSAGES) == 600
    data, stats = _pcap_stats()
    assert stats["mold"]["messages"] > 0 and stats["frame_errors"] == 0
    assert np.all(recs["msg_type"] > 0)


def _pcap_stats():
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(PCAP)
        f.flush()
        return net.itch_from_pcap(f.name)
