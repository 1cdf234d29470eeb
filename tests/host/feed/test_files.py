"""host.feed.files: chunked reading of plain and gzip NASDAQ binary files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.feed import bulk, files
from host.feed.spec import MESSAGES

TYPES = "".join(MESSAGES)


def random_raw(rng: np.random.Generator, n: int) -> list[bytes]:
    return [t.encode() + rng.bytes(MESSAGES[t].length - 1) for t in rng.choice(list(TYPES), n)]


@pytest.fixture(scope="module")
def raws():
    return random_raw(np.random.default_rng(3), 5000)


def test_frame():
    assert files.frame([b"ab", b""]) == b"\x00\x02ab\x00\x00"
    with pytest.raises(ValueError):
        files.frame([bytes(70000)])


FILES = [("day.bin", False), ("day.gz", True), ("gz_without_ext.bin", True), ("plain.gz", False)]


@pytest.mark.parametrize("name,compress", FILES)
@pytest.mark.parametrize("chunk_bytes", [1, 100, 4096, 1 << 20])
def test_chunks_whole_messages(tmp_path, raws, name, compress, chunk_bytes):
    path = tmp_path / name
    files.write_file(path, raws, compress=compress)
    assert files.is_gzip(path) == compress
    stats: dict = {}
    chunks = list(files.iter_file_chunks(path, chunk_bytes=chunk_bytes, stats=stats))
    assert b"".join(chunks) == files.frame(raws)
    for c in chunks:  # every chunk starts and ends on a message boundary
        end, _n, _z = bulk.frame_end(c)
        assert end == len(c) > 0
    assert stats["gzip"] == compress and stats["framed"] == len(raws)
    assert stats["truncated"] == 0 and stats["chunks"] == len(chunks)
    if chunk_bytes >= 4096:
        assert max(len(c) for c in chunks) <= chunk_bytes + 2 + max(map(len, raws))


def test_write_file_compress_by_extension(tmp_path, raws):
    files.write_file(tmp_path / "a.gz", raws[:10])
    with gzip.open(tmp_path / "a.gz", "rb") as f:
        assert f.read() == files.frame(raws[:10])
    files.write_file(tmp_path / "a.bin", files.frame(raws[:10]))
    assert (tmp_path / "a.bin").read_bytes() == files.frame(raws[:10])


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("cut", [1, 2, 3, 20])
def test_truncated_tail_reported(tmp_path, raws, compress, cut):
    data = files.frame(raws[:100])
    path = tmp_path / "t.bin"
    files.write_file(path, data[:-cut], compress=compress)
    stats: dict = {}
    chunks = list(files.iter_file_chunks(path, chunk_bytes=500, stats=stats))
    assert b"".join(chunks) == files.frame(raws[:99])
    assert stats["truncated"] == 1
    assert stats["truncated_bytes"] == len(files.frame(raws[99:100])) - cut


def test_zero_length_stops(tmp_path, raws):
    path = tmp_path / "z.bin"
    files.write_file(path, files.frame(raws[:50]) + b"\x00\x00" + files.frame(raws[50:60]))
    stats: dict = {}
    chunks = list(files.iter_file_chunks(path, chunk_bytes=64, stats=stats))
    assert b"".join(chunks) == files.frame(raws[:50]) and stats["zero_length"] == 1


def test_empty_file(tmp_path):
    path = tmp_path / "e.bin"
    path.write_bytes(b"")
    stats: dict = {}
    assert list(files.iter_file_chunks(path, stats=stats)) == []
    assert stats["truncated"] == 0 and stats["framed"] == 0


@pytest.mark.parametrize("compress", [False, True])
def test_read_records_running_index(tmp_path, raws, compress):
    # an unknown type after message 999 still takes an index
    head = files.frame(raws[:1000])
    data = head + b"\x00\x05Z1234" + files.frame(raws[1000:])
    path = tmp_path / ("r.gz" if compress else "r.bin")
    files.write_file(path, data)
    stats: dict = {}
    parts = list(files.read_records(path, chunk_bytes=3000, stats=stats))
    assert len(parts) > 5
    recs = np.concatenate(parts)
    whole, wstats = bulk.parse_records(data)
    assert np.array_equal(recs, whole)
    assert recs["msg_index"][999] == 999 and recs["msg_index"][1000] == 1001
    assert stats["messages"] == len(raws) and stats["unknown_type"] == 1
    assert stats["framed"] == len(raws) + 1 == wstats["framed"]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(0, 60), chunk=st.integers(1, 400), cut=st.integers(0, 3), gz=st.booleans())
def test_chunking_property(tmp_path_factory, n, chunk, cut, gz):
    raws = random_raw(np.random.default_rng(n), n)
    data = files.frame(raws)
    data = data[: len(data) - cut] if n else data
    path = tmp_path_factory.mktemp("p") / "f.bin"
    files.write_file(path, data, compress=gz)
    stats: dict = {}
    out = b"".join(files.iter_file_chunks(path, chunk_bytes=chunk, stats=stats))
    end, framed_n, _z = bulk.frame_end(data)
    assert out == data[:end] and stats["framed"] == framed_n
    assert stats["truncated"] == (1 if end < len(data) else 0)
