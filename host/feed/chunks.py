"""Whole-message chunks of a length-prefixed ITCH stream, without numba.

One loop serves both readers of plain files: :func:`host.feed.files.iter_file_chunks` (numba
frame scanner, plain and gzip) and the numba-free fast path of ``python -m host bbo`` (the C
book's scanner), so the chunking and the counters described in :mod:`host.feed.files` are
written once. The frame scanner is passed in; this module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = ["CHUNK_STATS", "STAT_KEYS", "framed_chunks"]

STAT_KEYS = (
    "framed",
    "messages",
    "unknown_type",
    "bad_length",
    "zero_length",
    "truncated",
    "consumed",
)
"""Keys of the framing ``stats`` dict of a frame scan: :func:`host.feed.bulk.parse_records`,
:func:`host.feed.bulk.parse_tables` and the C book's ``scan`` (here, beside the chunk loop, so
the numba-free path needs no numba module to name them)."""

CHUNK_STATS = ("chunks", "bytes", "framed", "truncated", "truncated_bytes", "zero_length")
"""Counters :func:`framed_chunks` keeps (set to 0 when missing)."""


def framed_chunks(f: BinaryIO, chunk_bytes: int, stats: dict,
                  frame_end: Callable[[bytes], tuple[int, int, bool]],
                  read: Callable[[BinaryIO, int], bytes] | None = None) -> Iterator[bytes]:
    """Yield chunks of whole messages read from ``f``.

    Parameters
    ----------
    f : binary file
    chunk_bytes : int
        Bytes read per step; a chunk holds at most that plus the partial message carried
        from the previous read (a message never straddles two chunks).
    stats : dict
        Updated in place: :data:`CHUNK_STATS`.
    frame_end : callable
        ``frame_end(buf) -> (end, framed, zero_length)``: bytes of whole messages at the
        start of ``buf``, their number, and whether a zero length prefix stopped the scan.
    read : callable, optional
        ``read(f, n)`` instead of ``f.read(n)`` (to translate a reader's own errors).

    Yields
    ------
    bytes
        A non-empty chunk that starts and ends on a message boundary. Reading stops at a
        zero length prefix (counted) and at end of file; a partial message at the end is
        counted as truncated.
    """
    for k in CHUNK_STATS:
        stats.setdefault(k, 0)
    carry = b""
    while True:
        need = chunk_bytes
        if len(carry) >= 2:  # the carried partial message tells how much it still needs
            need = max(need, 2 + int.from_bytes(carry[:2], "big") - len(carry))
        data = read(f, need) if read is not None else f.read(need)
        eof = not data
        buf = carry + data if carry else data
        if not buf:
            return
        end, framed, zero = frame_end(buf)
        if end:
            stats["chunks"] += 1
            stats["bytes"] += end
            stats["framed"] += framed
            yield buf[:end] if end < len(buf) else buf
        if zero:
            stats["zero_length"] += 1
            return
        carry = buf[end:]
        if eof:
            if carry:
                stats["truncated"] += 1
                stats["truncated_bytes"] += len(carry)
            return
