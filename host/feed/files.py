"""NASDAQ daily binary ITCH files: streamed, chunked reading and writing.

NASDAQ publishes TotalView-ITCH days as files in which every message is preceded by its 2-byte
big-endian length (the same framing as a MoldUDP64 message block), usually gzip compressed.
The reader detects gzip by its magic bytes (``1f 8b``), not by the file name, and streams the
file in chunks, so multi-GB files never have to fit in memory. Every chunk it yields ends on a
message boundary.

What is counted (``stats`` dict passed in by the caller)
-------------------------------------------------------
``chunks``, ``bytes``
    Chunks yielded and the bytes they hold.
``framed``
    Length-prefixed messages in the yielded chunks.
``truncated``, ``truncated_bytes``
    1 (and the byte count) when the file ends in the middle of a length prefix or message: the
    partial tail is not yielded.
``zero_length``
    1 when a zero length prefix was met: reading stops there, the rest of the file is ignored
    (as in :func:`host.feed.itch.iter_messages`).
``gzip``
    True when the file was gzip compressed.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np

from host.feed.bulk import STAT_KEYS, frame_end, parse_records
from host.feed.chunks import CHUNK_STATS, framed_chunks

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "GZIP_MAGIC",
    "frame",
    "is_gzip",
    "iter_file_chunks",
    "open_itch",
    "read_records",
    "write_file",
]

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_CHUNK_BYTES = 16 << 20


def is_gzip(path: str | os.PathLike) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_itch(path: str | os.PathLike) -> BinaryIO:
    """Open a NASDAQ binary file for reading, transparently decompressing gzip (by magic)."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def frame(messages: Iterable[bytes]) -> bytes:
    """Join raw messages in NASDAQ file framing (2-byte big-endian length before each).

    Raises
    ------
    ValueError
        A message longer than 65535 bytes.
    """
    parts = []
    for m in messages:
        if len(m) > 0xFFFF:
            raise ValueError(f"message of {len(m)} bytes does not fit a 2-byte length")
        parts.append(len(m).to_bytes(2, "big"))
        parts.append(bytes(m))
    return b"".join(parts)


def write_file(path: str | os.PathLike, data: bytes | Iterable[bytes], *, compress=None) -> None:
    """Write a NASDAQ binary file.

    Parameters
    ----------
    path : path-like
        Output file.
    data : bytes or iterable of bytes
        Already framed bytes, or raw messages (framed with :func:`frame`).
    compress : bool, optional
        Gzip the output; by default when ``path`` ends in ``.gz``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        data = frame(data)
    if compress is None:
        compress = str(path).endswith(".gz")
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(data)


def iter_file_chunks(
    path: str | os.PathLike, chunk_bytes: int = DEFAULT_CHUNK_BYTES, stats: dict | None = None
) -> Iterator[bytes]:
    """Yield chunks of whole framed messages from a plain or gzip NASDAQ binary file.

    Parameters
    ----------
    path : path-like
        The file (gzip detected by magic).
    chunk_bytes : int, optional
        Bytes read per step; a yielded chunk holds at most ``chunk_bytes`` plus the partial
        message carried over from the previous read (a message never straddles two chunks).
    stats : dict, optional
        Filled with the counters described in the module docstring.

    Yields
    ------
    bytes
        A non-empty chunk that starts and ends on a message boundary.

    Raises
    ------
    OSError
        The file cannot be read, or its gzip data is damaged (``gzip.BadGzipFile``, or a
        ``zlib.error`` turned into ``OSError`` here); ``EOFError`` for a gzip stream cut short.
    """
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    if stats is None:
        stats = {}
    for k in CHUNK_STATS:
        stats.setdefault(k, 0)
    stats["gzip"] = is_gzip(path)
    with open_itch(path) as f:
        yield from framed_chunks(f, chunk_bytes, stats, frame_end, read=_read)


def _read(f, n: int) -> bytes:
    try:
        return f.read(n)
    except zlib.error as e:  # damaged deflate data: gzip raises zlib.error, not OSError
        raise OSError(f"damaged gzip data: {e}") from None


def read_records(
    path: str | os.PathLike, chunk_bytes: int = DEFAULT_CHUNK_BYTES, stats: dict | None = None
) -> Iterator[np.ndarray]:
    """Yield :data:`host.feed.bulk.RECORD_DTYPE` arrays for a NASDAQ binary file, chunk by chunk.

    ``msg_index`` runs across chunks (index among all length-prefixed messages of the file).
    ``stats`` receives the :func:`iter_file_chunks` counters plus the summed
    :func:`host.feed.bulk.parse_records` counters (``messages``, ``unknown_type``,
    ``bad_length``...).
    """
    if stats is None:
        stats = {}
    for k in STAT_KEYS:
        stats.setdefault(k, 0)
    file_stats: dict = {}
    index = 0
    consumed = 0
    for chunk in iter_file_chunks(path, chunk_bytes, file_stats):
        recs, st = parse_records(chunk, base_index=index)
        index += st["framed"]
        consumed += st["consumed"]
        for k in ("messages", "unknown_type", "bad_length"):
            stats[k] += st[k]
        yield recs
    stats.update(file_stats)
    stats["consumed"] = consumed
