"""Capture loading: an ITCH file or a MoldUDP64 pcap as the frames to send to a card.

:func:`detect_format` tells a NASDAQ binary ITCH 5.0 file (plain or gzip) from a MoldUDP64 pcap
by its first bytes, and :func:`input_chunks` reads either one as NASDAQ-framed ITCH in
whole-message chunks (what ``python -m host bbo|stats`` streams through the book).

:func:`load_feed` gives a :class:`Feed`: an ITCH file is packetized here
(:func:`packetize_itch`) into MoldUDP64 packets in Ethernet/IPv4/UDP frames; a pcap of such
frames is sent as it is (:func:`feed_from_pcap`). The :class:`Feed` also says where every
message sits in the frames, which the card floor uses to measure latency.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from host.errors import UserError
from host.feed.spec import MOLD_END_OF_SESSION, MOLD_HEADER_LENGTH

__all__ = [
    "Feed",
    "packetize_itch",
    "feed_from_pcap",
    "is_pcap",
    "load_feed",
    "symbol_directory",
    "detect_format",
    "buffer_chunks",
    "input_chunks",
    "check_itch_head",
]

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"


# --- input format -------------------------------------------------------------------------


def detect_format(path: str) -> str:
    """``"pcap"``, ``"itch.gz"`` or ``"itch"`` from the file's first bytes; UserError otherwise."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory")
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise UserError(f"{path}: empty file")
    if head[:4] in PCAP_MAGICS:
        check_itch_head(_pcap_head(path, PLAUSIBLE_BYTES), path)
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        raise UserError(f"{path}: pcapng is not supported; convert with: editcap -F pcap IN OUT")
    if head[:2] == GZIP_MAGIC:
        check_itch_head(_gzip_head(path, PLAUSIBLE_BYTES), path)
        return "itch.gz"
    from host.feed.spec import MESSAGES

    if len(head) >= 3:
        ln = int.from_bytes(head[:2], "big")
        t = chr(head[2])
        if t in MESSAGES and ln >= MESSAGES[t].length:
            with open(path, "rb") as f:
                check_itch_head(f.read(PLAUSIBLE_BYTES), path)
            return "itch"
    raise UserError(
        f"{path}: not a NASDAQ binary ITCH 5.0 file (plain or gzip) nor a MoldUDP64 pcap"
    )


PLAUSIBLE_MESSAGES = 256
"""How many leading messages :func:`check_itch_head` checks."""
PLAUSIBLE_BYTES = 64 << 10
"""How many leading bytes of the (decompressed) ITCH stream it reads: well over 256 messages."""


def check_itch_head(head: bytes, path) -> int:
    """Refuse a stream whose first messages are not ITCH 5.0; return how many were checked.

    A file in another ITCH version or a vendor variant (8-byte timestamps, other field widths)
    often frames cleanly with the same 2-byte lengths, so the parser alone would read it with
    exit 0 and nonsense rows. Here each of the first :data:`PLAUSIBLE_MESSAGES` complete
    messages must have a type of the ITCH 5.0 table and exactly that type's length from
    :mod:`host.feed.spec`; otherwise :class:`~host.errors.UserError` names the first one that
    does not (a cut at the end of ``head`` is not an error: the file may be longer).
    """
    from host.feed.spec import MESSAGES

    pos = n = 0
    while n < PLAUSIBLE_MESSAGES and pos + 2 <= len(head):
        ln = int.from_bytes(head[pos : pos + 2], "big")
        if ln == 0 or pos + 2 + ln > len(head):
            break  # end of data, or a message cut by the read: the framing counters see it
        t = chr(head[pos + 2])
        if t not in MESSAGES or ln != MESSAGES[t].length:
            what = (
                f"type {t!r} is {ln} bytes where ITCH 5.0 has {MESSAGES[t].length}"
                if t in MESSAGES
                else f"type byte 0x{head[pos + 2]:02x} is not an ITCH 5.0 message type"
            )
            raise UserError(
                f"{path}: not NASDAQ ITCH 5.0: message {n} (byte {pos}): {what} "
                "(another ITCH version or a vendor format?)"
            )
        pos += 2 + ln
        n += 1
    return n


def _pcap_head(path, nbytes: int) -> bytes:
    """About ``nbytes`` of the ITCH carried by the first MoldUDP64 packets of a pcap, in
    NASDAQ framing; frames and packets that do not decode are skipped (reading the capture
    counts them), and a damaged file just gives less."""
    from host.feed.moldudp import MoldError, decode_packet
    from host.feed.net import FrameError, PcapError, parse_frame, read_pcap

    out = bytearray()
    try:
        for _ts, frame in read_pcap(path):
            try:
                payload, _ = parse_frame(frame)
                pkt = decode_packet(payload)
            except (FrameError, MoldError, ValueError):
                continue
            for m in pkt.messages:
                out += len(m).to_bytes(2, "big") + m
            if len(out) >= nbytes:
                break
    except (PcapError, OSError, ValueError):
        pass  # a broken pcap is reported with its own error when it is read
    return bytes(out)


def _gzip_head(path, nbytes: int) -> bytes:
    """Up to ``nbytes`` decompressed from the start of a gzip file, even a truncated one."""
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    with open(path, "rb") as f:
        while len(out) < nbytes:
            block = f.read(1 << 16)
            if not block:
                break
            try:
                out += d.decompress(block, nbytes - len(out))
            except zlib.error:
                break  # damaged data: reading the file reports it with its own error
            if d.eof:
                break
    return bytes(out)


def buffer_chunks(buf, chunk_bytes: int) -> Iterator[memoryview]:
    """Views of ``buf`` of at most ``chunk_bytes`` (more for one longer message), each ending
    on a message boundary; stops at a zero length or a truncated tail."""
    from host.feed.bulk import frame_end

    buf = memoryview(buf)  # slices below are views, not copies
    pos = 0
    n = len(buf)
    while pos < n:
        end, _framed, zero = frame_end(buf[pos : pos + chunk_bytes])
        if end == 0:  # one message longer than a chunk, or a truncated tail
            end, _framed, zero = frame_end(buf[pos:])
            if end == 0:
                return
        yield buf[pos : pos + end]
        pos += end
        if zero:
            return


def input_chunks(path: str, fmt: str, info: dict, chunk_bytes: int) -> Iterator[bytes]:
    """The NASDAQ-framed ITCH of ``path`` (``fmt`` from :func:`detect_format`) in whole-message
    chunks; reading counters go into ``info`` (``pcap`` or ``file``, ``total_bytes``).
    :class:`~host.errors.UserError` for a bad pcap or an unreadable file."""
    if fmt == "pcap":
        from host.feed.net import PcapError, itch_from_pcap

        try:
            data, pstats = itch_from_pcap(path)
        except (PcapError, ValueError) as e:
            raise UserError(f"{path}: bad pcap: {e}") from None
        info["pcap"] = pstats
        info["total_bytes"] = len(data)
        yield from buffer_chunks(data, chunk_bytes)
        return
    from host.feed.files import iter_file_chunks

    info["total_bytes"] = os.path.getsize(path) if fmt == "itch" else None
    fstats = info.setdefault("file", {})
    try:
        yield from iter_file_chunks(path, chunk_bytes, fstats)
    except (OSError, EOFError) as e:  # gzip errors are OSError / EOFError
        raise UserError(f"{path}: cannot read: {e}") from None


# --- feeds for the card --------------------------------------------------------------------


ETH_IP_UDP = 14 + 20 + 8
MAX_PAYLOAD = 1472
U32_MAX = (1 << 32) - 1


@dataclass
class Feed:
    """Frames to send to the card, and where every ITCH message sits in them.

    Attributes
    ----------
    buf, lens : numpy.ndarray
        Frames back to back (``uint8``) and their lengths (``uint32``).
    itch : bytes
        The messages the card is expected to process, in NASDAQ file framing, in sequence
        order (the reference model's input).
    seq : numpy.ndarray
        ``int64`` MoldUDP64 sequence number of every message of ``itch``.
    frame : numpy.ndarray
        ``int64`` index of the frame that carries each message of ``itch``.
    end : numpy.ndarray
        ``int64`` byte offset, inside that frame, one past the message's last byte.
    mtype : numpy.ndarray
        ``uint8`` message type byte.
    session : bytes
        MoldUDP64 session (10 bytes).
    dst_ip, dst_port : str, int
        Destination of the frames (the card's filters are set to these).
    """

    buf: np.ndarray
    lens: np.ndarray
    itch: bytes
    seq: np.ndarray
    frame: np.ndarray
    end: np.ndarray
    mtype: np.ndarray
    session: bytes
    dst_ip: str
    dst_port: int
    stats: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.lens.size)

    @property
    def n_messages(self) -> int:
        return int(self.seq.size)

    def frame_offsets(self) -> np.ndarray:
        """Byte offset of each frame in :attr:`buf` (``n_frames + 1`` entries)."""
        off = np.zeros(self.lens.size + 1, np.int64)
        np.cumsum(self.lens, out=off[1:])
        return off

    def slice_frames(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``lo:hi`` as a packed ``(buf, lens)`` pair (no copy)."""
        off = self.frame_offsets() if not hasattr(self, "_off") else self._off
        self._off = off
        return self.buf[off[lo] : off[hi]], self.lens[lo:hi]


@numba.njit(cache=True)
def _walk(buf):
    """Offsets and lengths of the length-prefixed messages of ``buf`` (stops at bad framing)."""
    n = 0
    p = 0
    size = buf.size
    off = np.empty(size // 3 + 1, np.int64)
    ln = np.empty(size // 3 + 1, np.int64)
    while p + 2 <= size:
        m = (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])
        if m == 0 or p + 2 + m > size:
            break
        off[n] = p
        ln[n] = m
        n += 1
        p += 2 + m
    return off[:n], ln[:n]


@numba.njit(cache=True)
def _group(ln, room, max_count):
    """Greedy packing: first message index of every packet (plus the end)."""
    starts = np.empty(ln.size + 1, np.int64)
    k = 0
    i = 0
    n = ln.size
    while i < n:
        starts[k] = i
        k += 1
        used = 0
        j = i
        while j < n and j - i < max_count and used + 2 + ln[j] <= room:
            used += 2 + ln[j]
            j += 1
        if j == i:
            return starts[:0]  # a message larger than a packet
        i = j
    starts[k] = n
    return starts[: k + 1]


def _session(session) -> bytes:
    s = session.encode("ascii") if isinstance(session, str) else bytes(session)
    if len(s) != 10:
        raise ValueError(f"a MoldUDP64 session is 10 bytes, not {s!r}")
    return s


def packetize_itch(
    itch,
    *,
    session="0000000001",
    first_seq: int = 1,
    max_payload: int = MAX_PAYLOAD,
    drop_packets=(),
    net: dict | None = None,
) -> Feed:
    """Pack a NASDAQ-framed ITCH buffer into MoldUDP64 packets in UDP frames.

    A MoldUDP64 message block is the same 2-byte length + message as the NASDAQ file framing,
    so each packet payload is the 20-byte header followed by a slice of ``itch``.

    Parameters
    ----------
    itch : bytes or numpy.ndarray
        Messages in NASDAQ file framing.
    session : str or bytes
        10-byte MoldUDP64 session.
    first_seq : int
        Sequence number of the first message.
    max_payload : int
        Largest UDP payload (greedy packing).
    drop_packets : iterable of int
        Packet indices not to send (makes sequence gaps; their messages are left out of
        :attr:`Feed.itch`).
    net : dict, optional
        Keyword arguments for :func:`host.feed.net.udp_frame` (default ``host.feed.net.DEFAULTS``).

    Returns
    -------
    Feed
    """
    from host.feed.net import DEFAULTS, udp_frame

    sess = _session(session)
    net = {k: v for k, v in {**DEFAULTS, **(net or {})}.items() if k != "session"}
    u8 = np.frombuffer(itch, np.uint8) if not isinstance(itch, np.ndarray) else itch
    off, ln = _walk(u8)
    room = max_payload - MOLD_HEADER_LENGTH
    starts = _group(ln, room, MOLD_END_OF_SESSION - 1)
    if ln.size and starts.size == 0:
        raise ValueError(f"a message does not fit a {max_payload}-byte MoldUDP64 packet")
    drop = set(int(d) for d in drop_packets)
    raw = u8.tobytes() if isinstance(itch, np.ndarray) else bytes(itch)
    frames, keep_msgs, msg_frame, msg_end = [], [], [], []
    for p in range(starts.size - 1):
        i, j = int(starts[p]), int(starts[p + 1])
        if p in drop:
            continue
        a, b = int(off[i]), int(off[j - 1] + 2 + ln[j - 1])
        hdr = sess + (first_seq + i).to_bytes(8, "big") + (j - i).to_bytes(2, "big")
        frames.append(udp_frame(hdr + raw[a:b], **net))
        keep_msgs.append(np.arange(i, j))
        base = ETH_IP_UDP + MOLD_HEADER_LENGTH - a
        msg_end.append(base + off[i:j] + 2 + ln[i:j])
        msg_frame.append(np.full(j - i, len(frames) - 1, np.int64))
    idx = np.concatenate(keep_msgs) if keep_msgs else np.zeros(0, np.int64)
    if drop:
        kept = b"".join(raw[int(off[k]) : int(off[k] + 2 + ln[k])] for k in idx)
    else:
        kept = raw[: int(off[-1] + 2 + ln[-1])] if ln.size else b""
    lens = np.array([len(f) for f in frames], np.uint32)
    return Feed(
        buf=np.frombuffer(b"".join(frames), np.uint8),
        lens=lens,
        itch=kept,
        seq=first_seq + idx,
        frame=np.concatenate(msg_frame) if msg_frame else np.zeros(0, np.int64),
        end=np.concatenate(msg_end) if msg_end else np.zeros(0, np.int64),
        mtype=u8[off[idx] + 2] if idx.size else np.zeros(0, np.uint8),
        session=sess,
        dst_ip=str(net["dst_ip"]),
        dst_port=int(net["dst_port"]),
        stats={"packets": int(starts.size - 1), "dropped_packets": len(drop)},
    )


def feed_from_pcap(path) -> Feed:
    """Frames of a pcap of MoldUDP64/UDP/IPv4/Ethernet, sent as they are.

    Messages are located in the frames with the same rules as
    :func:`host.feed.net.itch_from_pcap`: frames that do not parse are still sent (the card must
    drop them) but carry no message; MoldUDP64 duplicates are skipped by sequence number;
    sequence gaps leave the missing messages out.
    """
    from host.feed.moldudp import decode_packet
    from host.feed.net import FrameError, parse_frame, read_pcap

    frames, itch, seqs, fr, ends, types = [], [], [], [], [], []
    session = None
    dst = None
    expected = None
    stats = {"frames": 0, "frame_errors": 0, "duplicates": 0, "gaps": 0, "heartbeats": 0}
    for _ts, f in read_pcap(path):
        fi = len(frames)
        frames.append(f)
        stats["frames"] += 1
        try:
            payload, info = parse_frame(f)
            pkt = decode_packet(payload)
        except (FrameError, ValueError):
            stats["frame_errors"] += 1
            continue
        if dst is None:
            dst = (info.dst_ip, info.dst_port)
            session = pkt.session
        pay_off = bytes(f).find(bytes(payload), ETH_IP_UDP)
        if pay_off < 0:
            stats["frame_errors"] += 1
            continue
        if not pkt.messages:
            stats["heartbeats"] += 1
            continue
        seq = pkt.sequence_number
        if expected is not None and seq > expected:
            stats["gaps"] += 1
        p = pay_off + MOLD_HEADER_LENGTH
        for m in pkt.messages:
            p += 2 + len(m)
            if expected is None or seq >= expected:
                itch.append(len(m).to_bytes(2, "big") + bytes(m))
                seqs.append(seq)
                fr.append(fi)
                ends.append(p)
                types.append(m[0])
                expected = seq + 1
            else:
                stats["duplicates"] += 1
            seq += 1
    if dst is None:
        raise ValueError(f"{path}: no MoldUDP64 packet in the capture")
    if isinstance(session, str):
        session = session.encode("ascii")
    return Feed(
        buf=np.frombuffer(b"".join(frames), np.uint8),
        lens=np.array([len(f) for f in frames], np.uint32),
        itch=b"".join(itch),
        seq=np.array(seqs, np.int64),
        frame=np.array(fr, np.int64),
        end=np.array(ends, np.int64),
        mtype=np.array(types, np.uint8),
        session=bytes(session),
        dst_ip=str(dst[0]),
        dst_port=int(dst[1]),
        stats=stats,
    )


def is_pcap(path) -> bool:
    """Whether ``path`` starts with a classic pcap magic (either byte order, us or ns)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head in PCAP_MAGICS


def load_feed(path, *, stats: dict | None = None, **kw) -> Feed:
    """A :class:`Feed` from a pcap or a (plain or gzipped) NASDAQ ITCH file.

    ``stats``, for an ITCH file, receives :func:`host.feed.files.iter_file_chunks`' counters
    (``truncated``/``truncated_bytes``: a partial message at the end, not in the feed;
    ``zero_length``: the stream stopped at a zero length prefix).
    """
    path = Path(path)
    if is_pcap(path):
        return feed_from_pcap(path)
    from host.feed.files import iter_file_chunks

    buf = b"".join(iter_file_chunks(path, stats=stats))
    return packetize_itch(buf, **kw)


def symbol_directory(itch) -> dict[str, int]:
    """``{symbol: locate}`` from the stock directory (``R``) messages of ``itch``."""
    from host.feed.bulk import parse_tables

    t = parse_tables(itch).tables.get("R")
    if t is None or len(t) == 0:
        return {}
    return {
        bytes(s).decode("ascii", "replace").strip(): int(loc)
        for s, loc in zip(t["stock"], t["stock_locate"], strict=True)
    }
