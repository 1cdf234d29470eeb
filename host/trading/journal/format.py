"""Binary layout of the audit journal and its compiled encode / scan kernels.

File = 64-byte file header, then records back to back, each a multiple of 8 bytes::

    file header (64 B): magic "HMJRNL01" | u32 version | u32 header size (64)
                        | u32 command payload size (64) | u32 event payload size (120)
                        | i64 created (UTC ns) | 28 reserved bytes | u32 CRC-32C of bytes 0..59
    record header (40 B): u32 length (whole record) | u32 CRC-32C | u64 seq | i64 wall_ns (UTC)
                          | i64 mono_ns | u16 type | u16 version | u32 reserved
    payload: COMMAND_DTYPE (64 B, type 1) | EVENT_DTYPE (120 B, type 2) | MARK (24 B, type 3)

Every commit ends with a COMMIT mark, so a group commit is atomic: records after the last
COMMIT mark (a group whose write was cut short) are not part of the journal.

The record CRC covers bytes 8..length (seq to the end of the payload) and then bytes 0..4 (the
length). Record sequence numbers start at 1 and increase by one; a record whose length, type,
CRC or sequence number is wrong ends the valid part of the file.
"""

from __future__ import annotations

import struct

import numpy as np
from numba import njit

from host.trading.journal.crc32c import crc32c_update
from host.trading.matching.types import COMMAND_DTYPE, EVENT_DTYPE

__all__ = [
    "FILE_MAGIC", "FILE_HEADER_SIZE", "RECORD_HEADER_SIZE", "REC_COMMAND", "REC_EVENT",
    "REC_MARK", "MARK_DTYPE", "MARK_COMMIT", "MARK_SNAPSHOT", "COMMAND_RECORD_DTYPE",
    "EVENT_RECORD_DTYPE", "MARK_RECORD_DTYPE",
    "VERSION", "file_header", "parse_file_header", "ACK_MAGIC", "ACK_SLOT_SIZE", "ack_slot",
    "parse_ack_slot", "check_at",
]

FILE_MAGIC = b"HMJRNL01"
VERSION = 1
FILE_HEADER_SIZE = 64
RECORD_HEADER_SIZE = 40
REC_COMMAND, REC_EVENT, REC_MARK = 1, 2, 3

MARK_DTYPE = np.dtype([("cmd_seq", "<u8"), ("event_seq", "<u8"), ("kind", "<u8")])
"""Payload of a MARK record: command records and last event sequence number so far, kind."""
MARK_COMMIT, MARK_SNAPSHOT = 1, 2
"""MARK kinds: end of a group commit; an engine snapshot was taken here."""

_HDR = [("length", "<u4"), ("crc", "<u4"), ("seq", "<u8"), ("wall_ns", "<i8"),
        ("mono_ns", "<i8"), ("type", "<u2"), ("version", "<u2"), ("reserved", "<u4")]
COMMAND_RECORD_DTYPE = np.dtype(_HDR + [("payload", COMMAND_DTYPE)])
EVENT_RECORD_DTYPE = np.dtype(_HDR + [("payload", EVENT_DTYPE)])
MARK_RECORD_DTYPE = np.dtype(_HDR + [("payload", MARK_DTYPE)])
assert COMMAND_RECORD_DTYPE.itemsize == 104 and EVENT_RECORD_DTYPE.itemsize == 160
assert MARK_RECORD_DTYPE.itemsize == 64

_LEN_CMD = COMMAND_RECORD_DTYPE.itemsize
_LEN_EV = EVENT_RECORD_DTYPE.itemsize
_LEN_MARK = MARK_RECORD_DTYPE.itemsize

# scan status
SCAN_OK, SCAN_TRUNCATED, SCAN_BAD_HEADER, SCAN_BAD_CRC, SCAN_BAD_SEQ = 0, 1, 2, 3, 4
SCAN_REASONS = {
    SCAN_TRUNCATED: "record runs past the end of the file",
    SCAN_BAD_HEADER: "invalid record length/type",
    SCAN_BAD_CRC: "CRC-32C mismatch",
    SCAN_BAD_SEQ: "record sequence number out of order",
}


def file_header(created_ns: int) -> bytes:
    """The 64-byte file header."""
    h = bytearray(FILE_HEADER_SIZE)
    h[0:8] = FILE_MAGIC
    np.frombuffer(h, "<u4", 4, 8)[:] = [VERSION, FILE_HEADER_SIZE, COMMAND_DTYPE.itemsize,
                                        EVENT_DTYPE.itemsize]
    np.frombuffer(h, "<i8", 1, 24)[0] = created_ns
    from host.trading.journal.crc32c import crc32c

    np.frombuffer(h, "<u4", 1, 60)[0] = crc32c(bytes(h[:60]))
    return bytes(h)


def parse_file_header(buf: bytes | np.ndarray) -> dict:
    """Validate and decode a file header; raise ``ValueError`` if it is not a journal."""
    from host.trading.journal.crc32c import crc32c

    b = bytes(buf[:FILE_HEADER_SIZE])
    if len(b) < FILE_HEADER_SIZE or b[:8] != FILE_MAGIC:
        raise ValueError("not a matching journal (bad magic)")
    if int(np.frombuffer(b, "<u4", 1, 60)[0]) != crc32c(b[:60]):
        raise ValueError("journal file header CRC mismatch")
    version, hsize, cmd, ev = (int(x) for x in np.frombuffer(b, "<u4", 4, 8))
    if version != VERSION or hsize != FILE_HEADER_SIZE or cmd != COMMAND_DTYPE.itemsize or (
            ev != EVENT_DTYPE.itemsize):
        raise ValueError(f"unsupported journal layout (version {version})")
    return {"version": version, "created_ns": int(np.frombuffer(b, "<i8", 1, 24)[0])}


ACK_MAGIC = b"HMJACK01"
ACK_SLOT_SIZE = 64
ACK_CLOSED = 1
"""Acknowledgement sidecar ``<journal>.ack``: two 64-byte slots, written alternately::

    magic "HMJACK01" | u64 journal id (file header's created ns) | u64 generation
    | u64 written_seq | u64 written_end | u64 written_commands | u64 durable_seq
    | u32 flags (bit0 closed cleanly) | u32 CRC-32C of bytes 0..59

The writer rewrites the older slot after every commit (after the write, and after the fsync
when the policy makes one), so a torn slot write leaves the other slot valid.
"""


_ACK_BODY = struct.Struct("<8sqQQQQQI")


def ack_slot(journal_id: int, generation: int, written_seq: int, written_end: int,
             written_commands: int, durable_seq: int, closed: bool) -> bytes:
    """One encoded acknowledgement slot (struct + one CRC call: it runs once per commit)."""
    body = _ACK_BODY.pack(ACK_MAGIC, journal_id, generation, written_seq, written_end,
                          written_commands, durable_seq, ACK_CLOSED if closed else 0)
    return body + crc32c_update(0, np.frombuffer(body, np.uint8), 0, 60).to_bytes(4, "little")


def parse_ack_slot(raw, journal_id: int) -> dict | None:
    """Decode a slot; None if it is damaged, empty or belongs to another journal."""
    from host.trading.journal.crc32c import crc32c

    b = bytes(raw)
    if len(b) < ACK_SLOT_SIZE or b[:8] != ACK_MAGIC:
        return None
    if int(np.frombuffer(b, "<u4", 1, 60)[0]) != crc32c(b[:60]):
        return None
    if int(np.frombuffer(b, "<i8", 1, 8)[0]) != journal_id:
        return None
    gen, wseq, wend, wcmds, dseq = (int(x) for x in np.frombuffer(b, "<u8", 5, 16))
    return {"generation": gen, "written_seq": wseq, "written_end": wend,
            "written_commands": wcmds, "durable_seq": dseq,
            "closed": bool(int(np.frombuffer(b, "<u4", 1, 56)[0]) & ACK_CLOSED)}


@njit(cache=True, nogil=True, _nrt=False)
def fill_crcs(buf, rlen, m):
    """Compute the CRC field of ``m`` consecutive records of length ``rlen`` in ``buf``."""
    for r in range(m):
        p = r * rlen
        c = crc32c_update(0, buf, p + 8, p + rlen)
        c = crc32c_update(c, buf, p, p + 4)
        buf[p + 4] = c & 0xFF
        buf[p + 5] = (c >> 8) & 0xFF
        buf[p + 6] = (c >> 16) & 0xFF
        buf[p + 7] = (c >> 24) & 0xFF


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _u32(buf, p):
    return (np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8) | (np.int64(buf[p + 2]) << 16)
            | (np.int64(buf[p + 3]) << 24))


@njit(cache=True, nogil=True, _nrt=False, inline="always")
def _i64(buf, p):
    return _u32(buf, p) | (_u32(buf, p + 4) << 32)


@njit(cache=True, nogil=True, _nrt=False)
def _check_at(buf, p, n):
    """Status of the record at ``p`` (ignoring its sequence number)."""
    if p + RECORD_HEADER_SIZE > n:
        return SCAN_TRUNCATED
    length = _u32(buf, p)
    rtype = np.int64(buf[p + 32]) | (np.int64(buf[p + 33]) << 8)
    ok = ((rtype == REC_COMMAND and length == _LEN_CMD)
          or (rtype == REC_EVENT and length == _LEN_EV)
          or (rtype == REC_MARK and length == _LEN_MARK))
    if not ok:
        return SCAN_BAD_HEADER
    if p + length > n:
        return SCAN_TRUNCATED
    c = crc32c_update(0, buf, p + 8, p + length)
    c = crc32c_update(c, buf, p, p + 4)
    if c != _u32(buf, p + 4):
        return SCAN_BAD_CRC
    return SCAN_OK


check_at = _check_at
"""Status of the record at byte ``p`` of ``buf[:n]`` (public name of the compiled check)."""


@njit(cache=True, nogil=True, _nrt=False)
def scan(buf, start, seq0, offs, types):
    """Validate records from byte ``start``; fill ``offs``/``types`` of the valid prefix.

    Returns ``(count, end, status)``: number of valid records, byte offset just after the last
    valid one (= where a bad or truncated record starts), and the status there.
    """
    n = buf.shape[0]
    p = start
    k = 0
    expect = seq0
    while p < n:
        st = _check_at(buf, p, n)
        if st != SCAN_OK:
            return k, p, st
        if _i64(buf, p + 8) != expect:
            return k, p, SCAN_BAD_SEQ
        offs[k] = p
        types[k] = np.int64(buf[p + 32]) | (np.int64(buf[p + 33]) << 8)
        k += 1
        expect += 1
        p += _u32(buf, p)
    return k, p, SCAN_OK


@njit(cache=True, nogil=True, _nrt=False)
def resync(buf, start):
    """First 8-aligned offset after ``start`` holding a complete, CRC-valid record, or -1."""
    n = buf.shape[0]
    q = start + 8
    while q + RECORD_HEADER_SIZE <= n:
        if _check_at(buf, q, n) == SCAN_OK:
            return q
        q += 8
    return -1


@njit(cache=True, nogil=True, _nrt=False)
def gather(buf, offs, plen, out):
    """Copy the payloads (``plen`` bytes after each record header at ``offs``) into ``out``."""
    for k in range(offs.shape[0]):
        p = offs[k] + RECORD_HEADER_SIZE
        for j in range(plen):
            out[k, j] = buf[p + j]
