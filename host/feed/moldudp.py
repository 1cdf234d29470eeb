"""MoldUDP64 downstream packets: encode, decode, packetize, and a sequencing receiver.

Layout (``shared/specs/moldudp64-1.0``, from :mod:`host.feed.spec`): a 20-byte header -- session (10
bytes alpha), sequence number of the first message (8 bytes), message count (2 bytes) -- then
``count`` message blocks, each a 2-byte big-endian length and that many bytes of data. All
numbers are big-endian. A count of 0 is a heartbeat, a count of ``0xFFFF`` is end of session;
both carry the next expected sequence number and no blocks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from host.feed.spec import (
    MOLD_BLOCK_LENGTH_WIDTH,
    MOLD_END_OF_SESSION,
    MOLD_HEADER,
    MOLD_HEADER_LENGTH,
    MOLD_SESSION_WIDTH,
)

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "MoldError",
    "MoldPacket",
    "MoldReceiver",
    "decode_packet",
    "encode_packet",
    "packetize",
    "DATA",
    "HEARTBEAT",
    "END_OF_SESSION",
]

DEFAULT_MAX_PAYLOAD = 1500 - 20 - 8
"""UDP payload that fits a 1500-byte MTU with a 20-byte IPv4 header and the 8-byte UDP header."""

DATA, HEARTBEAT, END_OF_SESSION = "data", "heartbeat", "end_of_session"
_MAX_COUNT = MOLD_END_OF_SESSION - 1  # 0xFFFF is reserved for end of session

_HDR = struct.Struct(
    ">"
    + "".join(
        f"{f.width}s" if f.kind == "alpha" else {2: "H", 8: "Q"}[f.width] for f in MOLD_HEADER
    )
)
assert _HDR.size == MOLD_HEADER_LENGTH
_LEN = struct.Struct(">H")
assert _LEN.size == MOLD_BLOCK_LENGTH_WIDTH


class MoldError(ValueError):
    """A malformed MoldUDP64 packet (or an unencodable one).

    Attributes
    ----------
    reason : str
        ``short_header``, ``block_overrun`` (a block length runs past the end of the packet),
        ``count_mismatch`` (fewer blocks than the count, or bytes left after the last block),
        ``too_large`` or ``bad_value`` (encode side).
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"MoldUDP64 {reason}: {detail}")
        self.reason = reason


class MoldPacket(NamedTuple):
    """A decoded downstream packet.

    ``session`` has its right padding removed; ``messages`` is a list of ``bytes``; ``kind``
    is :data:`DATA`, :data:`HEARTBEAT` or :data:`END_OF_SESSION`.
    """

    session: str
    sequence_number: int
    messages: list
    kind: str


def _session_bytes(session: str | bytes) -> bytes:
    b = session.encode("latin-1") if isinstance(session, str) else bytes(session)
    if len(b) > MOLD_SESSION_WIDTH:
        raise MoldError("bad_value", f"session {session!r} longer than {MOLD_SESSION_WIDTH}")
    return b.ljust(MOLD_SESSION_WIDTH, b" ")


def encode_packet(
    session: str | bytes, seq: int, messages: Sequence[bytes], *, end_of_session: bool = False
) -> bytes:
    """Encode one downstream packet.

    Parameters
    ----------
    session : str or bytes
        Up to 10 characters, right padded with spaces.
    seq : int
        Sequence number of the first message (for a heartbeat / end of session: the next
        expected sequence number).
    messages : sequence of bytes
        Message blocks; empty gives a heartbeat.
    end_of_session : bool, optional
        Encode an end-of-session packet (count ``0xFFFF``, ``messages`` must be empty).

    Raises
    ------
    MoldError
        Bad session, sequence number, message length or count.
    """
    if not 0 <= seq < 1 << 64:
        raise MoldError("bad_value", f"sequence number {seq} does not fit 8 bytes")
    if end_of_session:
        if messages:
            raise MoldError("bad_value", "an end-of-session packet carries no messages")
        return _HDR.pack(_session_bytes(session), seq, MOLD_END_OF_SESSION)
    if len(messages) > _MAX_COUNT:
        raise MoldError("too_large", f"{len(messages)} messages > {_MAX_COUNT}")
    parts = [_HDR.pack(_session_bytes(session), seq, len(messages))]
    for m in messages:
        if len(m) > 0xFFFF:
            raise MoldError("too_large", f"message of {len(m)} bytes")
        parts.append(_LEN.pack(len(m)))
        parts.append(bytes(m))
    return b"".join(parts)


def decode_packet(payload) -> MoldPacket:
    """Decode one downstream packet (a UDP payload).

    Raises
    ------
    MoldError
        ``short_header``, ``block_overrun`` or ``count_mismatch`` (see :class:`MoldError`).
    """
    mv = memoryview(payload).cast("B") if not isinstance(payload, bytes) else payload
    n = len(mv)
    if n < MOLD_HEADER_LENGTH:
        raise MoldError("short_header", f"{n} bytes < {MOLD_HEADER_LENGTH}-byte header")
    sess, seq, count = _HDR.unpack_from(mv, 0)
    session = bytes(sess).decode("latin-1").rstrip(" ")
    if count in (0, MOLD_END_OF_SESSION):
        if n != MOLD_HEADER_LENGTH:
            raise MoldError(
                "count_mismatch",
                f"{n - MOLD_HEADER_LENGTH} bytes after a header with message count {count}",
            )
        kind = HEARTBEAT if count == 0 else END_OF_SESSION
        return MoldPacket(session, seq, [], kind)
    msgs = []
    pos = MOLD_HEADER_LENGTH
    for i in range(count):
        if pos + MOLD_BLOCK_LENGTH_WIDTH > n:
            raise MoldError("count_mismatch", f"count {count} but only {i} blocks in {n} bytes")
        (ln,) = _LEN.unpack_from(mv, pos)
        pos += MOLD_BLOCK_LENGTH_WIDTH
        if pos + ln > n:
            raise MoldError(
                "block_overrun", f"block {i} at offset {pos - 2} length {ln} runs past {n} bytes"
            )
        msgs.append(bytes(mv[pos : pos + ln]))
        pos += ln
    if pos != n:
        raise MoldError("count_mismatch", f"{n - pos} bytes left after {count} blocks")
    return MoldPacket(session, seq, msgs, DATA)


def packetize(
    messages: Sequence[bytes],
    *,
    session: str | bytes,
    first_seq: int = 1,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    rng: np.random.Generator | None = None,
    max_messages: int | None = None,
) -> list[bytes]:
    """Pack messages into consecutive downstream packets.

    Parameters
    ----------
    messages : sequence of bytes
        Raw messages (no length prefix), in sequence order.
    session : str or bytes
        Session of every packet.
    first_seq : int, optional
        Sequence number of ``messages[0]``.
    max_payload : int, optional
        Largest packet (UDP payload) in bytes; default 1472 (1500 MTU - IPv4 - UDP).
    rng : numpy.random.Generator, optional
        When given, each packet holds a uniformly random number of messages between 1 and the
        most that fit (random packing); otherwise packets are filled greedily.
    max_messages : int, optional
        At most this many messages per packet.

    Returns
    -------
    list of bytes
        Packets; their sequence numbers follow on from ``first_seq`` without gaps.

    Raises
    ------
    MoldError
        A message that cannot fit ``max_payload`` on its own (``too_large``).
    """
    limit = _MAX_COUNT if max_messages is None else min(int(max_messages), _MAX_COUNT)
    if limit < 1:
        raise MoldError("bad_value", "max_messages must be >= 1")
    room = max_payload - MOLD_HEADER_LENGTH
    out = []
    seq = first_seq
    i = 0
    n = len(messages)
    while i < n:
        used = 0
        j = i
        while j < n and j - i < limit:
            blk = MOLD_BLOCK_LENGTH_WIDTH + len(messages[j])
            if used + blk > room:
                break
            used += blk
            j += 1
        if j == i:
            raise MoldError(
                "too_large",
                f"message {i} ({len(messages[i])} bytes) does not fit max_payload {max_payload}",
            )
        if rng is not None:
            j = i + int(rng.integers(1, j - i + 1))
        out.append(encode_packet(session, seq, messages[i:j]))
        seq += j - i
        i = j
    return out


_COUNTERS = (
    "packets",
    "data_packets",
    "messages",
    "gaps",
    "missing",
    "duplicates",
    "duplicate_messages",
    "session_changes",
    "heartbeats",
    "end_of_session",
    "bad_packets",
)


class MoldReceiver:
    """Track MoldUDP64 sequencing for one stream and hand out messages in order.

    Parameters
    ----------
    session : str, optional
        Expected session; None adopts the session of the first packet.
    next_seq : int, optional
        Expected sequence number of the next message; None synchronises on the first packet
        (so loss before the first received packet is not reported).
    strict : bool, optional
        Raise :class:`MoldError` on a malformed packet instead of counting it.

    Attributes
    ----------
    packets, data_packets, messages : int
        Packets fed, packets carrying messages, messages delivered.
    gaps : int
        Times the stream jumped ahead of the expected sequence number (by a data packet, a
        heartbeat or an end-of-session packet).
    missing : int
        Messages never received because of those jumps.
    gap_ranges : list of (int, int)
        First and last missing sequence number of every gap.
    duplicates, duplicate_messages : int
        Packets that were entirely old (already delivered sequence numbers) and messages dropped
        as already delivered (including the old head of a partially new packet).
    session_changes : int
        Packets whose session differs from the current one; the receiver re-synchronises on
        such a packet (new session, no gap reported).
    heartbeats, end_of_session : int
        Heartbeat and end-of-session packets.
    ended : bool
        An end-of-session packet was seen for the current session.
    bad_packets : int
        Malformed packets (``bad_reasons`` counts them by :attr:`MoldError.reason`).
    """

    def __init__(
        self, session: str | None = None, next_seq: int | None = None, *, strict: bool = False
    ):
        self.session = session
        self.next_seq = next_seq
        self.strict = strict
        for k in _COUNTERS:
            setattr(self, k, 0)
        self.gap_ranges: list[tuple[int, int]] = []
        self.bad_reasons: dict[str, int] = {}
        self.ended = False
        self._gap_pending = False

    def stats(self) -> dict:
        """All counters as a dict (plus ``gap_ranges`` and ``bad_reasons``)."""
        d = {k: getattr(self, k) for k in _COUNTERS}
        d["gap_ranges"] = list(self.gap_ranges)
        d["bad_reasons"] = dict(self.bad_reasons)
        d["next_seq"] = self.next_seq
        d["session"] = self.session
        return d

    def _advance_to(self, seq: int) -> None:
        if self.next_seq is not None and seq > self.next_seq:
            self.gaps += 1
            self.missing += seq - self.next_seq
            self.gap_ranges.append((self.next_seq, seq - 1))
            self._gap_pending = True

    def feed(self, payload) -> list[tuple[int, bytes, bool]]:
        """Process one packet (UDP payload).

        Returns
        -------
        list of (int, bytes, bool)
            ``(sequence number, message, gap_before)`` for each new message, in order;
            ``gap_before`` is True on the first message delivered after a gap.
        """
        self.packets += 1
        try:
            pkt = decode_packet(payload)
        except MoldError as e:
            if self.strict:
                raise
            self.bad_packets += 1
            self.bad_reasons[e.reason] = self.bad_reasons.get(e.reason, 0) + 1
            return []
        if self.session is None:
            self.session = pkt.session
        elif pkt.session != self.session:
            self.session_changes += 1
            self.session = pkt.session
            self.next_seq = None
            self.ended = False
            self._gap_pending = False
        seq = pkt.sequence_number
        if pkt.kind != DATA:
            if pkt.kind == HEARTBEAT:
                self.heartbeats += 1
            else:
                self.end_of_session += 1
                self.ended = True
            self._advance_to(seq)
            if self.next_seq is None or seq > self.next_seq:
                self.next_seq = seq
            return []
        self.data_packets += 1
        count = len(pkt.messages)
        if self.next_seq is None:
            self.next_seq = seq
        end = seq + count
        if end <= self.next_seq:
            self.duplicates += 1
            self.duplicate_messages += count
            return []
        self._advance_to(seq)
        skip = max(0, self.next_seq - seq)
        self.duplicate_messages += skip
        out = []
        for k in range(skip, count):
            out.append((seq + k, pkt.messages[k], self._gap_pending))
            self._gap_pending = False
        self.messages += count - skip
        self.next_seq = end
        return out

    def feed_all(self, payloads: Iterable) -> list[tuple[int, bytes, bool]]:
        """Feed every packet of ``payloads``; the concatenated :meth:`feed` results."""
        out = []
        for p in payloads:
            out.extend(self.feed(p))
        return out
