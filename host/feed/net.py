"""Ethernet II / IPv4 / UDP frames and classic pcap files, and ITCH out of a pcap.

Frames here are what a MAC hands over: destination MAC first, no preamble, no FCS. Frames built
by :func:`udp_frame` are padded to the 60-byte Ethernet minimum; the parser uses the IPv4 total
length, so padding is ignored.

pcap files are written in the classic format with nanosecond timestamps (magic ``0xa1b23c4d``
written little-endian, version 2.4, linktype 1 = Ethernet). :func:`read_pcap` reads microsecond
and nanosecond files in either byte order.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from host.feed.files import frame
from host.feed.moldudp import MoldReceiver

__all__ = [
    "DEFAULTS",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_VLAN",
    "FrameError",
    "FrameInfo",
    "PcapError",
    "checksum16",
    "ipv4_header",
    "itch_from_pcap",
    "parse_frame",
    "read_pcap",
    "udp_frame",
    "write_pcap",
]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_VLAN = 0x8100
IPPROTO_UDP = 17
ETH_HEADER = 14
ETH_MIN_FRAME = 60  # without FCS
UDP_HEADER = 8

DEFAULTS: dict = {
    "src_mac": "02:00:00:00:00:01",
    "dst_mac": "01:00:5e:36:0c:01",  # the multicast MAC of dst_ip
    "src_ip": "10.0.0.1",
    "dst_ip": "233.54.12.1",
    "src_port": 18000,
    "dst_port": 26477,
    "session": "0000000001",
}
"""Addresses, ports and MoldUDP64 session used by the generator and as :func:`udp_frame`
defaults."""

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1


class FrameError(ValueError):
    """A frame that is not a well-formed Ethernet II / IPv4 / UDP datagram.

    Attributes
    ----------
    reason : str
        One of ``truncated``, ``not_ipv4`` (EtherType), ``bad_version``, ``bad_ihl``,
        ``bad_length`` (IPv4 total length), ``bad_checksum`` (IPv4 header), ``fragment``,
        ``not_udp``, ``bad_udp_length``, ``bad_udp_checksum``.
    """

    REASONS = (
        "truncated",
        "not_ipv4",
        "bad_version",
        "bad_ihl",
        "bad_length",
        "bad_checksum",
        "fragment",
        "not_udp",
        "bad_udp_length",
        "bad_udp_checksum",
    )

    def __init__(self, reason: str, detail: str = ""):
        assert reason in self.REASONS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class PcapError(ValueError):
    """A malformed or unsupported pcap file."""


class FrameInfo(NamedTuple):
    """Header fields of a parsed frame (addresses as text, ``vlan`` None when untagged)."""

    dst_mac: str
    src_mac: str
    vlan: int | None
    src_ip: str
    dst_ip: str
    ihl: int
    ip_options: bytes
    ip_id: int
    ttl: int
    src_port: int
    dst_port: int
    udp_checksum: int


def checksum16(data: bytes) -> int:
    """RFC 1071 Internet checksum (ones' complement of the ones' complement sum)."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _mac(v: str | bytes) -> bytes:
    if isinstance(v, bytes | bytearray):
        b = bytes(v)
    else:
        b = bytes(int(x, 16) for x in v.replace("-", ":").split(":"))
    if len(b) != 6:
        raise ValueError(f"bad MAC address {v!r}")
    return b


def _mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _ip(v: str | bytes | int) -> bytes:
    if isinstance(v, bytes | bytearray):
        if len(v) != 4:
            raise ValueError(f"bad IPv4 address {v!r}")
        return bytes(v)
    return ipaddress.IPv4Address(v).packed


def ipv4_header(
    payload_len: int,
    *,
    src_ip,
    dst_ip,
    ip_id: int = 0,
    ttl: int = 64,
    proto: int = IPPROTO_UDP,
    options: bytes = b"",
) -> bytes:
    """An IPv4 header (don't-fragment set) with a correct header checksum.

    ``options`` is padded with zeros (end-of-options) to a multiple of 4 bytes.
    """
    if len(options) % 4:
        options = bytes(options) + b"\x00" * (4 - len(options) % 4)
    ihl = 5 + len(options) // 4
    if ihl > 15:
        raise ValueError("IPv4 options longer than 40 bytes")
    total = 4 * ihl + payload_len
    if total > 0xFFFF:
        raise ValueError(f"IPv4 datagram of {total} bytes")
    hdr = struct.pack(
        ">BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        total,
        ip_id & 0xFFFF,
        0x4000,
        ttl,
        proto,
        0,
        _ip(src_ip),
        _ip(dst_ip),
    ) + bytes(options)
    return hdr[:10] + struct.pack(">H", checksum16(hdr)) + hdr[12:]


def _udp_checksum(src: bytes, dst: bytes, udp: bytes) -> int:
    pseudo = src + dst + struct.pack(">BBH", 0, IPPROTO_UDP, len(udp))
    c = checksum16(pseudo + udp)
    return c or 0xFFFF  # 0 means "no checksum" on the wire


def udp_frame(
    payload: bytes,
    *,
    src_mac=DEFAULTS["src_mac"],
    dst_mac=DEFAULTS["dst_mac"],
    src_ip=DEFAULTS["src_ip"],
    dst_ip=DEFAULTS["dst_ip"],
    src_port: int = DEFAULTS["src_port"],
    dst_port: int = DEFAULTS["dst_port"],
    ip_id: int = 0,
    ttl: int = 64,
    ip_options: bytes = b"",
    udp_checksum: bool = True,
    vlan: int | None = None,
    pad: bool = True,
) -> bytes:
    """Build an Ethernet II + IPv4 + UDP frame (no FCS).

    Parameters
    ----------
    payload : bytes
        UDP payload (a MoldUDP64 packet).
    src_mac, dst_mac : str or bytes
        ``"aa:bb:cc:dd:ee:ff"`` or 6 bytes.
    src_ip, dst_ip : str, int or bytes
        IPv4 addresses.
    src_port, dst_port : int
        UDP ports.
    ip_id : int, optional
        IPv4 identification field.
    ttl : int, optional
        IPv4 time to live.
    ip_options : bytes, optional
        IPv4 options (IHL > 5), zero padded to a multiple of 4 bytes.
    udp_checksum : bool, optional
        Compute the UDP checksum over the pseudo-header (True) or send 0 (no checksum).
    vlan : int, optional
        Insert an 802.1Q tag with this VLAN id.
    pad : bool, optional
        Pad the frame to the 60-byte Ethernet minimum.

    Returns
    -------
    bytes
        The frame, destination MAC first.
    """
    s_ip, d_ip = _ip(src_ip), _ip(dst_ip)
    ulen = UDP_HEADER + len(payload)
    if ulen > 0xFFFF:
        raise ValueError(f"UDP payload of {len(payload)} bytes")
    udp = struct.pack(">HHHH", src_port, dst_port, ulen, 0) + bytes(payload)
    if udp_checksum:
        udp = udp[:6] + struct.pack(">H", _udp_checksum(s_ip, d_ip, udp)) + udp[8:]
    ip = ipv4_header(ulen, src_ip=s_ip, dst_ip=d_ip, ip_id=ip_id, ttl=ttl, options=ip_options)
    eth = _mac(dst_mac) + _mac(src_mac)
    if vlan is not None:
        eth += struct.pack(">HH", ETHERTYPE_VLAN, vlan & 0x0FFF)
    out = eth + struct.pack(">H", ETHERTYPE_IPV4) + ip + udp
    if pad and len(out) < ETH_MIN_FRAME:
        out += b"\x00" * (ETH_MIN_FRAME - len(out))
    return out


def parse_frame(frame: bytes, *, check_udp_checksum: bool = True) -> tuple[bytes, FrameInfo]:
    """Check and strip the Ethernet II / IPv4 / UDP headers of a frame.

    One 802.1Q tag is accepted. IPv4 options are parsed (returned in
    :attr:`FrameInfo.ip_options`); padding after the IPv4 total length is ignored.

    Parameters
    ----------
    frame : bytes
        Frame without FCS.
    check_udp_checksum : bool, optional
        Verify a non-zero UDP checksum.

    Returns
    -------
    payload : bytes
        UDP payload.
    info : FrameInfo
        Header fields.

    Raises
    ------
    FrameError
        With ``reason`` as listed in :class:`FrameError`.
    """
    mv = memoryview(frame)
    n = len(mv)
    if n < ETH_HEADER:
        raise FrameError("truncated", f"{n}-byte frame has no Ethernet header")
    dst, src = bytes(mv[0:6]), bytes(mv[6:12])
    (etype,) = struct.unpack_from(">H", mv, 12)
    pos = ETH_HEADER
    vlan = None
    if etype == ETHERTYPE_VLAN:
        if n < pos + 4:
            raise FrameError("truncated", "802.1Q tag cut off")
        tci, etype = struct.unpack_from(">HH", mv, 12 + 2)
        vlan = tci & 0x0FFF
        pos += 4
    if etype != ETHERTYPE_IPV4:
        raise FrameError("not_ipv4", f"EtherType 0x{etype:04x}")
    if n < pos + 20:
        raise FrameError("truncated", f"IPv4 header needs 20 bytes, {n - pos} left")
    vihl, _tos, total, ip_id, frag, ttl, proto, _ck, s_ip, d_ip = struct.unpack_from(
        ">BBHHHBBH4s4s", mv, pos
    )
    if vihl >> 4 != 4:
        raise FrameError("bad_version", f"IP version {vihl >> 4}")
    ihl = vihl & 0xF
    if ihl < 5:
        raise FrameError("bad_ihl", f"IHL {ihl} < 5")
    hlen = 4 * ihl
    if n < pos + hlen:
        raise FrameError("truncated", f"IPv4 header of {hlen} bytes cut off")
    if total < hlen:
        raise FrameError("bad_length", f"total length {total} < header {hlen}")
    if n < pos + total:
        raise FrameError("truncated", f"IPv4 total length {total}, {n - pos} bytes in frame")
    if checksum16(bytes(mv[pos : pos + hlen])) != 0:
        raise FrameError("bad_checksum", "IPv4 header checksum")
    if frag & 0x3FFF:
        raise FrameError("fragment", f"flags/offset 0x{frag:04x}")
    if proto != IPPROTO_UDP:
        raise FrameError("not_udp", f"IP protocol {proto}")
    options = bytes(mv[pos + 20 : pos + hlen])
    upos = pos + hlen
    uend = pos + total
    if uend - upos < UDP_HEADER:
        raise FrameError("truncated", "UDP header cut off")
    sport, dport, ulen, uck = struct.unpack_from(">HHHH", mv, upos)
    if ulen < UDP_HEADER or ulen > uend - upos:
        raise FrameError("bad_udp_length", f"UDP length {ulen}, {uend - upos} bytes in datagram")
    udp = bytes(mv[upos : upos + ulen])
    if check_udp_checksum and uck != 0:
        pseudo = s_ip + d_ip + struct.pack(">BBH", 0, IPPROTO_UDP, ulen)
        if checksum16(pseudo + udp) != 0:
            raise FrameError("bad_udp_checksum", f"UDP checksum 0x{uck:04x}")
    info = FrameInfo(
        _mac_str(dst),
        _mac_str(src),
        vlan,
        str(ipaddress.IPv4Address(s_ip)),
        str(ipaddress.IPv4Address(d_ip)),
        ihl,
        options,
        ip_id,
        ttl,
        sport,
        dport,
        uck,
    )
    return udp[UDP_HEADER:], info


# --- classic pcap ----------------------------------------------------------------------------


def write_pcap(
    path: str | os.PathLike,
    frames: Iterable[bytes],
    ts_ns: Iterable[int] | None = None,
    *,
    snaplen: int = 0xFFFF,
) -> int:
    """Write frames to a classic nanosecond pcap file (little-endian, linktype 1).

    Parameters
    ----------
    path : path-like
        Output file.
    frames : iterable of bytes
        Ethernet frames without FCS.
    ts_ns : iterable of int, optional
        Capture time of each frame in ns since the epoch; default frame ``i`` at ``i`` us.
    snaplen : int, optional
        Snapshot length written in the header; longer frames are stored cut to it (with their
        original length recorded).

    Returns
    -------
    int
        Number of frames written.
    """
    ts_iter = iter(ts_ns) if ts_ns is not None else None
    count = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
        for i, fr in enumerate(frames):
            ts = next(ts_iter) if ts_iter is not None else i * 1000
            sec, ns = divmod(int(ts), 1_000_000_000)
            cap = bytes(fr[:snaplen])
            f.write(struct.pack("<IIII", sec, ns, len(cap), len(fr)))
            f.write(cap)
            count += 1
    return count


def read_pcap(path: str | os.PathLike, *, stats: dict | None = None) -> Iterator[tuple[int, bytes]]:
    """Iterate ``(ts_ns, frame)`` over a classic pcap file.

    Microsecond (``0xa1b2c3d4``) and nanosecond (``0xa1b23c4d``) files, either byte order.
    ``stats['cut_frames']`` counts records stored shorter than on the wire (snaplen).

    Raises
    ------
    PcapError
        Not a classic pcap file, a linktype other than Ethernet, or a truncated record.
    """
    if stats is None:
        stats = {}
    stats.setdefault("cut_frames", 0)
    with open(path, "rb") as f:
        gh = f.read(24)
        if len(gh) < 24:
            raise PcapError(f"{path}: {len(gh)} bytes, shorter than a pcap global header")
        for endian in "<>":
            (magic,) = struct.unpack(endian + "I", gh[:4])
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                break
        else:
            raise PcapError(f"{path}: not a classic pcap file (magic {gh[:4].hex()})")
        scale = 1000 if magic == PCAP_MAGIC_US else 1
        _vmaj, _vmin, _tz, _sig, _snap, linktype = struct.unpack(endian + "HHiIII", gh[4:])
        if linktype & 0xFFFF != LINKTYPE_ETHERNET:
            raise PcapError(f"{path}: linktype {linktype}, only Ethernet (1) is supported")
        rec = struct.Struct(endian + "IIII")
        k = 0
        while True:
            rh = f.read(16)
            if not rh:
                return
            if len(rh) < 16:
                raise PcapError(f"{path}: record {k} header truncated ({len(rh)} of 16 bytes)")
            sec, frac, incl, orig = rec.unpack(rh)
            data = f.read(incl)
            if len(data) < incl:
                raise PcapError(f"{path}: record {k} truncated ({len(data)} of {incl} bytes)")
            if incl < orig:
                stats["cut_frames"] += 1
            yield sec * 1_000_000_000 + frac * scale, data
            k += 1


def itch_from_pcap(
    path: str | os.PathLike,
    *,
    dst_port: int | None = None,
    receiver: MoldReceiver | None = None,
) -> tuple[bytes, dict]:
    """Extract the ITCH messages of a pcap of MoldUDP64 over UDP.

    Frames -> :func:`parse_frame` -> MoldUDP64 through a :class:`host.feed.moldudp.MoldReceiver`
    (duplicates dropped, gaps counted) -> messages joined in NASDAQ file framing.

    Parameters
    ----------
    path : path-like
        pcap file.
    dst_port : int, optional
        Only UDP datagrams to this port (others counted in ``other_port``).
    receiver : MoldReceiver, optional
        Receiver to use (fresh one by default).

    Returns
    -------
    data : bytes
        The messages, each with its 2-byte big-endian length.
    stats : dict
        ``frames``, ``udp``, ``other_port``, ``frame_errors`` (total) and
        ``frame_error_<reason>`` per :class:`FrameError` reason, ``cut_frames``, and
        ``mold`` = the receiver's :meth:`~host.feed.moldudp.MoldReceiver.stats`.
    """
    rx = receiver if receiver is not None else MoldReceiver()
    stats: dict = {"frames": 0, "udp": 0, "other_port": 0, "frame_errors": 0}
    pstats: dict = {}
    msgs = []
    for _ts, fr in read_pcap(path, stats=pstats):
        stats["frames"] += 1
        try:
            payload, info = parse_frame(fr)
        except FrameError as e:
            stats["frame_errors"] += 1
            key = f"frame_error_{e.reason}"
            stats[key] = stats.get(key, 0) + 1
            continue
        if dst_port is not None and info.dst_port != dst_port:
            stats["other_port"] += 1
            continue
        stats["udp"] += 1
        msgs.extend(m for _seq, m, _gap in rx.feed(payload))
    stats["cut_frames"] = pstats["cut_frames"]
    stats["mold"] = rx.stats()
    stats["messages"] = len(msgs)
    return frame(msgs), stats
