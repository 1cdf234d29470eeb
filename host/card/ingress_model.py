"""Reference model of the gateware ingress chain (:mod:`hw.ingress`): frames in, records out.

It implements the *policy* of the cut-through hardware, beat for beat where it matters, so the
cocotb benches can compare every record and every counter of the gateware with it. The rules
(also in ``docs/ingress.md``):

Frame checks (Ethernet II, one optional 802.1Q tag, IPv4, UDP), in this order:

1. frame shorter than 14 bytes (18 with a VLAN tag) -> ``drop_short``;
2. EtherType (after the tag) is not IPv4 -> ``drop_ethertype``;
3. frame ends before the end of the UDP header (runt) -> ``drop_short``;
4. IPv4 version != 4, IHL < 5, total length < header, header checksum wrong, fragment
   (MF or offset) -> ``drop_ip``;
5. protocol != UDP -> ``drop_proto``;
6. UDP length < 8 + 20 (no room for a MoldUDP64 header) or longer than the IPv4 payload ->
   ``drop_short``;
7. the IPv4 datagram ends past :data:`hw.ethernet.MAX_FRAME_BYTES` (Ethernet + VLAN + IPv4
   total length > 16384) -> ``drop_long``: the frame is dropped whole, nothing of it is parsed;
8. IPv4 destination != ``ip_dst`` -> ``drop_addr``; UDP destination port != ``udp_port`` ->
   ``drop_port``.

The UDP checksum is not checked (cut-through: the payload is forwarded before the checksum is
known). The UDP payload is bounded by the UDP length (Ethernet padding is ignored). Every frame
counts in ``frames`` and in at most one ``drop_*`` counter, decided when its last beat arrives:
``drop_error`` when the MAC flagged it (whatever else was wrong), else the header reason, else
``drop_short`` when the frame is shorter than its IPv4 total length.

Cut-through and errors: records leave as soon as their last byte arrives. An *event* -- the
end of the MoldUDP64 header, the end of a message block, the end-of-packet truncation check --
happens in the beat (``data_width // 8`` bytes of the frame) holding its last byte. When the MAC
flags the frame, every event of its final beat is dropped; earlier events stand. So the
sequence tracker only advances past blocks that were actually handed on, and the next good
packet reports a gap for the rest.

MoldUDP64 (per accepted packet whose header completed): session filter (configured, or learned
from the first packet; other sessions -> ``session_mismatch``, packet ignored); ``packets``,
``heartbeats`` (count 0), ``end_of_session`` (count 0xFFFF); the first packet sets the expected
sequence number; a packet (data, heartbeat or end of session) starting after it counts a gap
(``gaps``, ``missing``, last gap range) and sets the gap flag of the next record; blocks below
the expected number are skipped and counted in ``duplicates`` (at the header, ``min(count,
expected - seq)``). Bytes after ``count`` blocks are ignored. A packet that ends before
``count`` complete blocks counts one ``truncated``.

Messages: unknown type -> ``unknown_type``; length 0 or shorter than the type's length ->
``bad_length``; longer is accepted (extra bytes ignored, as :mod:`host.feed.bulk`); all of these
still take their sequence number. A gap flag on a message that yields no record moves to the next
record.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from host.feed import itch
from host.feed.net import DEFAULTS, checksum16, parse_frame
from host.feed.record_map import expected_record
from host.feed.spec import (
    MESSAGES,
    MOLD_BLOCK_LENGTH_WIDTH,
    MOLD_END_OF_SESSION,
    MOLD_HEADER,
    MOLD_HEADER_LENGTH,
    MOLD_SESSION_WIDTH,
)
from hw.ethernet import MAX_FRAME_BYTES

__all__ = [
    "COUNTER_NAMES",
    "IngressModel",
    "ModelRecord",
    "type_counter",
    "walk_blocks",
    "ip_to_int",
    "session_to_int",
]

ETH = 14
VLAN = 4
UDP = 8
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_VLAN = 0x8100
UDP_MIN_LENGTH = UDP + MOLD_HEADER_LENGTH
SEQ_MASK = (1 << 64) - 1
_F = {f.name: f for f in MOLD_HEADER}


def type_counter(t: str) -> str:
    """Counter name of message type ``t`` (``A`` -> ``msg_a``, ``h`` -> ``msg_hh``)."""
    return f"msg_{t.lower()}" if t.isupper() else f"msg_{t.lower() * 2}"


def _counter_names() -> tuple[str, ...]:
    from hw.regs import INGRESS_COUNTERS

    names = tuple(n for n, _ in INGRESS_COUNTERS)
    missing = [type_counter(t) for t in MESSAGES if type_counter(t) not in names]
    if missing:
        raise ImportError(f"hw.regs.INGRESS_COUNTERS lacks {missing}")
    return names


COUNTER_NAMES: tuple[str, ...] = _counter_names()
"""The ingress counters, in register order (:data:`hw.regs.INGRESS_COUNTERS`)."""


def ip_to_int(ip) -> int:
    """``"a.b.c.d"`` -> ``a<<24|b<<16|c<<8|d`` (the ``ip_dst`` config value)."""
    if isinstance(ip, int):
        return ip
    import ipaddress

    return int(ipaddress.IPv4Address(ip))


def session_to_int(session) -> int:
    """Session (str/bytes, space padded to 10) -> int with byte 0 in bits 7:0."""
    b = session.encode("latin-1") if isinstance(session, str) else bytes(session)
    return int.from_bytes(b.ljust(MOLD_SESSION_WIDTH, b" "), "little")


def walk_blocks(area: bytes, count: int) -> list[tuple[int, bytes]]:
    """The complete message blocks of a MoldUDP64 block area (the payload after the header).

    Returns ``(end, message)`` for blocks ``0..`` up to ``count`` or the first block cut by the
    end of ``area``; ``end`` is the offset just past the block in ``area``.
    """
    out = []
    o = 0
    n = len(area)
    while len(out) < count and o + MOLD_BLOCK_LENGTH_WIDTH <= n:
        ln = int.from_bytes(area[o : o + MOLD_BLOCK_LENGTH_WIDTH], "big")
        end = o + MOLD_BLOCK_LENGTH_WIDTH + ln
        if end > n:
            break
        out.append((end, area[o + MOLD_BLOCK_LENGTH_WIDTH : end]))
        o = end
    return out


@dataclass
class ModelRecord:
    """One expected record and where it comes from (for latency measurements)."""

    fields: dict
    frame: int  # index of the frame fed
    beat: int  # beat of that frame holding the message's last byte
    message: bytes = b""  # the raw message block (for benches with an independent decoder)


@dataclass
class _Tracker:
    session: bytes | None = None
    locked: bool = False
    seq_locked: bool = False
    expected: int = 0
    gap_pending: bool = False
    carry_gap: bool = False
    last_gap_first: int = 0
    last_gap_count: int = 0
    counters: dict = field(default_factory=dict)


class IngressModel:
    """Feed frames, get the records and counters the gateware must produce.

    Parameters
    ----------
    udp_port : int
        UDP destination port to accept.
    ip_dst : str or int
        IPv4 destination address to accept.
    session : str, bytes or None
        Session to accept; None learns it from the first MoldUDP64 packet.
    data_width : int
        MAC data width in bits (beat size for the cut-through error rule).
    mold_only : bool
        Stop after the MoldUDP64 header (no blocks walked, nothing committed): the model of
        the header/tracker block alone, as its bench drives it (no framer feedback).

    Attributes
    ----------
    records : list of ModelRecord
        Every expected record so far, with the frame and beat of its last byte.
    packet_log : list of dict
        One entry per processed MoldUDP64 header: ``match`` (session), ``seq``, ``count`` and,
        when matched, ``active`` (data packet), ``skip``, ``gap``.
    messages_log : list of (int, bytes, bool)
        Every message handed from the framer to the decoder: ``(seq, bytes, gap)``.
    counters : dict
        Every counter of :data:`COUNTER_NAMES`.
    """

    def __init__(
        self,
        *,
        udp_port: int = DEFAULTS["dst_port"],
        ip_dst=DEFAULTS["dst_ip"],
        session=None,
        data_width: int = 64,
        mold_only: bool = False,
    ):
        if data_width % 8 or data_width < 16:
            raise ValueError(f"bad data_width {data_width}")
        self.udp_port = int(udp_port)
        self.ip_dst = ip_to_int(ip_dst)
        self.nb = data_width // 8
        self.fixed_session = (
            None
            if session is None
            else (session.encode("latin-1") if isinstance(session, str) else bytes(session)).ljust(
                MOLD_SESSION_WIDTH, b" "
            )
        )
        self.t = _Tracker(session=self.fixed_session)
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        self.records: list[ModelRecord] = []
        self.n_frames = 0
        self.mold_only = mold_only
        self.packet_log: list[dict] = []
        self.messages_log: list[tuple[int, bytes, bool]] = []
        self._gap_now = False

    # --- status ---------------------------------------------------------------------------
    @property
    def expected_seq(self) -> int:
        return self.t.expected

    def register_counters(self, width: int) -> dict[str, int]:
        """The counters as the card's registers read them: ``width`` bits, wrapping.

        The model counts without bound; the gateware's counters are ``counter_width`` bits
        (48 in the card build). A damaged sequence number can make ``missing`` jump by up to
        2**64, so the two agree only modulo the register width.
        """
        mask = (1 << width) - 1
        return {k: v & mask for k, v in self.counters.items()}

    @property
    def session_locked(self) -> bool:
        return self.t.locked

    @property
    def last_gap(self) -> tuple[int, int]:
        """(first missing sequence number, count) of the last gap."""
        return self.t.last_gap_first, self.t.last_gap_count

    def status(self) -> dict:
        return {
            "expected_seq": self.t.expected,
            "session_locked": int(self.t.locked),
            "last_gap_first": self.t.last_gap_first,
            "last_gap_count": self.t.last_gap_count,
        }

    # --- frames ---------------------------------------------------------------------------
    def classify(self, frame: bytes) -> tuple[str | None, dict]:
        """Header check in gateware order: ``(drop counter or None, header info)``."""
        n = len(frame)
        if n < ETH:
            return "drop_short", {}
        (et,) = struct.unpack_from(">H", frame, 12)
        ip = ETH
        if et == ETHERTYPE_VLAN:
            if n < ETH + VLAN:
                return "drop_short", {}
            (et,) = struct.unpack_from(">H", frame, 16)
            ip += VLAN
        if et != ETHERTYPE_IPV4:
            return "drop_ethertype", {}
        ihl = frame[ip] & 0xF if n > ip else 5
        hlen = 4 * max(ihl, 5)
        udp = ip + hlen
        start = udp + UDP
        if n < start:
            return "drop_short", {}
        vihl, _tos, total, _id, frag, _ttl, proto = struct.unpack_from(">BBHHHBB", frame, ip)
        (dst_ip,) = struct.unpack_from(">I", frame, ip + 16)
        _sport, dport, ulen = struct.unpack_from(">HHH", frame, udp)
        info = {"ip": ip, "total": total, "start": start, "end": udp + ulen}
        if vihl >> 4 != 4 or ihl < 5 or total < hlen:
            return "drop_ip", info
        if checksum16(frame[ip : ip + hlen]) != 0 or frag & 0x3FFF:
            return "drop_ip", info
        if proto != 17:
            return "drop_proto", info
        if ulen < UDP_MIN_LENGTH or ulen > total - hlen:
            return "drop_short", info
        if ip + total > MAX_FRAME_BYTES:
            return "drop_long", info
        if dst_ip != self.ip_dst:
            return "drop_addr", info
        if dport != self.udp_port:
            return "drop_port", info
        return None, info

    def frame_payload(self, frame: bytes) -> tuple[str | None, bytes, bool]:
        """``(header drop reason or None, forwarded UDP payload bytes, truncated)``."""
        reason, info = self.classify(frame)
        if reason is not None:
            return reason, b"", False
        start, end = info["start"], info["end"]
        return None, frame[start : min(end, len(frame))], len(frame) < end

    def feed(self, frame: bytes, mac_error: bool = False) -> list[dict]:
        """Process one frame (no FCS); returns the records it produces (dicts)."""
        frame = bytes(frame)
        c = self.counters
        n = len(frame)
        fidx = self.n_frames
        self.n_frames += 1
        c["frames"] += 1
        if n == 0:  # the MAC can end a frame with no byte (one beat, keep = 0): a runt
            c["drop_error" if mac_error else "drop_short"] += 1
            return []
        final_beat = (n - 1) // self.nb

        def suppressed(b: int) -> bool:
            return mac_error and b // self.nb == final_beat

        reason, info = self.classify(frame)
        out: list[dict] = []
        if reason is None:
            start, end = info["start"], info["end"]
            trunc = n < end
            payload = frame[start : min(end, n)]
            if not trunc and not mac_error and n >= info["ip"] + info["total"]:
                # the fast path of the host parser must agree (UDP checksum not checked); a
                # frame shorter than its IPv4 total length but holding the whole UDP datagram
                # is forwarded cut-through and counted drop_short below, where the host
                # parser (store-and-forward) refuses it as truncated
                p2, _ = parse_frame(frame, check_udp_checksum=False)
                assert p2 == payload, "ingress model and host.feed.net.parse_frame disagree"
            out = self._packet(payload, start, suppressed, fidx, mac_error)
        if mac_error:
            c["drop_error"] += 1
        elif reason is not None:
            c[reason] += 1
        elif n < info["ip"] + info["total"]:
            c["drop_short"] += 1
        return out

    def feed_all(self, frames) -> list[dict]:
        """Feed ``frames`` (bytes, or ``(bytes, mac_error)`` pairs); all the records."""
        out = []
        for fr in frames:
            if isinstance(fr, tuple):
                out.extend(self.feed(*fr))
            else:
                out.extend(self.feed(fr))
        return out

    # --- MoldUDP64 + framer + decoder ----------------------------------------------------------
    def _packet(self, p: bytes, start: int, suppressed, fidx: int, mac_error: bool) -> list[dict]:
        c, t = self.counters, self.t
        n = len(p)
        if n < MOLD_HEADER_LENGTH or suppressed(start + MOLD_HEADER_LENGTH - 1):
            return []
        sess = p[_F["session"].offset : _F["session"].end]
        seq = int.from_bytes(p[_F["sequence_number"].offset : _F["sequence_number"].end], "big")
        count = int.from_bytes(p[_F["message_count"].offset : _F["message_count"].end], "big")
        if t.session is None:
            t.session = sess
        if sess != t.session:
            c["session_mismatch"] += 1
            self.packet_log.append({"match": 0, "seq": seq, "count": count})
            return []
        t.locked = True
        c["packets"] += 1
        if count == 0:
            c["heartbeats"] += 1
        elif count == MOLD_END_OF_SESSION:
            c["end_of_session"] += 1
        if not t.seq_locked:
            t.seq_locked = True
            t.expected = seq
        self._gap_now = seq > t.expected
        if seq > t.expected:
            c["gaps"] += 1
            c["missing"] += seq - t.expected
            t.last_gap_first, t.last_gap_count = t.expected, seq - t.expected
            t.gap_pending = True
            t.expected = seq
        skip = min(t.expected - seq, count) if count not in (0, MOLD_END_OF_SESSION) else 0
        self.packet_log.append(
            {
                "match": 1,
                "seq": seq,
                "count": count,
                "active": int(count not in (0, MOLD_END_OF_SESSION)),
                "skip": skip,
                "gap": int(self._gap_now),
            }
        )
        if count in (0, MOLD_END_OF_SESSION):
            return []
        c["duplicates"] += skip
        out = []
        if self.mold_only:
            return out
        blocks = walk_blocks(p[MOLD_HEADER_LENGTH:], count)
        k = 0
        for k, (end, msg) in enumerate(blocks):
            last = start + MOLD_HEADER_LENGTH + end - 1
            if suppressed(last):
                break
            if k >= skip:
                s = (seq + k) & SEQ_MASK
                t.expected = (s + 1) & SEQ_MASK
                gap = t.gap_pending
                t.gap_pending = False
                self.messages_log.append((s, msg, gap))
                rec = self.decode_message(msg, s, gap)
                if rec is not None:
                    out.append(rec)
                    self.records.append(ModelRecord(rec, fidx, last // self.nb, msg))
        else:
            k = len(blocks)
        if k < count and not mac_error:
            # the truncation check happens on the frame's last beat: dropped on a MAC error
            c["truncated"] += 1
        return out

    def decode_message(self, msg: bytes, seq: int, gap: bool) -> dict | None:
        """The decoder stage alone: one message block -> record (or None), counting."""
        c, t = self.counters, self.t
        gap = gap or t.carry_gap
        spec = MESSAGES.get(chr(msg[0])) if msg else None
        if not msg:
            c["bad_length"] += 1
        elif spec is None:
            c["unknown_type"] += 1
        elif len(msg) < spec.length:
            c["bad_length"] += 1
        else:
            t.carry_gap = False
            c["messages"] += 1
            c[type_counter(spec.type)] += 1
            return expected_record(itch.decode(msg, 0, len(msg)), seq=seq, gap=gap)
        t.carry_gap = gap
        return None
