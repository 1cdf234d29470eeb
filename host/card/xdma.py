"""Transport for a card behind the Xilinx XDMA Linux driver (``dma_ip_drivers/XDMA``).

Device files (driver instance ``N``, default 0)
-----------------------------------------------
``/dev/xdmaN_user``
    The user BAR: the card's AXI4-Lite register slave. The driver supports ``mmap`` of the BAR
    and ``pread``/``pwrite`` at a byte offset; this transport uses ``mmap`` with 32-bit
    aligned accesses when it can and falls back to ``pread``/``pwrite`` of 4 bytes.
``/dev/xdmaN_c2h_C``
    Card-to-host AXI4-Stream DMA channel ``C``. A ``read(fd, buf, n)`` returns when ``n`` bytes
    have arrived or when the card ends a packet (``TLAST``), so a read may return fewer bytes
    than asked and not a multiple of 64 if the card's packets are not; partial records are
    kept and completed by the next read. A read with no data blocks until the driver's C2H
    timeout (module parameter, 10 s by default) and then fails; that is reported as
    :class:`~host.card.transport.CardTimeout`.

Frames
------
On hardware, market-data frames reach the card through its Ethernet port, not through PCIe.
:meth:`XdmaTransport.send_frames` therefore needs a *frame sink*: an object with ``send(frame)``
such as :class:`RawSocketSink` (``AF_PACKET`` socket on a NIC cabled to the card; needs
``CAP_NET_RAW``). Without one it raises :class:`~host.card.transport.CardError`.

What is tested without a card: register encoding (offsets, little-endian 32-bit words, alignment
and range checks), record framing and decoding, partial reads, and the error paths (missing
device, permission, timeout). Against a plain file standing in for the device; that file is a
test fixture, not a card. Not tested: the real driver's timing and DMA behaviour.
"""

from __future__ import annotations

import errno
import mmap
import os
import socket
import struct
from pathlib import Path

import numpy as np

from host.card.transport import (
    RECORD_BYTES,
    CardError,
    CardNotFound,
    CardTimeout,
    Transport,
    TransportClosed,
    pack_frames,
)

__all__ = ["XdmaTransport", "RawSocketSink", "device_paths"]


def device_paths(
    instance: int = 0, channel: int = 0, root: str | Path = "/dev"
) -> tuple[Path, Path]:
    """The (user BAR, C2H channel) device paths of XDMA driver ``instance``."""
    root = Path(root)
    return root / f"xdma{instance}_user", root / f"xdma{instance}_c2h_{channel}"


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        raise CardNotFound(
            f"{path} does not exist: no card, or the XDMA driver (xdma.ko from Xilinx "
            "dma_ip_drivers) is not loaded; check `lspci -d 10ee:` and `lsmod | grep xdma`"
        ) from None
    except PermissionError:
        raise CardNotFound(
            f"no permission to open {path}: run as root or add a udev rule for the xdma devices"
        ) from None


class RawSocketSink:
    """Send frames out of a NIC with an ``AF_PACKET`` raw socket (Linux, ``CAP_NET_RAW``)."""

    def __init__(self, ifname: str):
        try:
            self._s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            self._s.bind((ifname, 0))
        except PermissionError:
            raise CardError(f"raw socket on {ifname} needs root or CAP_NET_RAW") from None
        except OSError as e:
            raise CardError(f"cannot open a raw socket on {ifname}: {e}") from None

    def send(self, frame: bytes) -> None:
        self._s.send(frame)

    def close(self) -> None:
        self._s.close()


class XdmaTransport(Transport):
    """Register access through the user BAR, BBO records through a C2H stream channel.

    Parameters
    ----------
    instance, channel : int
        XDMA driver instance (``/dev/xdma<instance>_*``) and C2H channel.
    dev_root : str or Path
        Directory holding the device files (``/dev``); tests point it at a temporary folder.
    reg_base : int
        Byte offset of the card's register block inside the user BAR.
    bar_size : int
        Bytes of the user BAR to map (at least the register map span).
    use_mmap : bool
        Map the BAR (default); ``False`` uses ``pread``/``pwrite``.
    frame_sink : object, optional
        ``send(frame)`` target for :meth:`send_frames` (e.g. :class:`RawSocketSink`).
    """

    name = "xdma"
    has_cycles = False

    def __init__(
        self,
        instance: int = 0,
        channel: int = 0,
        *,
        dev_root: str | Path = "/dev",
        reg_base: int = 0,
        bar_size: int = 1 << 16,
        use_mmap: bool = True,
        frame_sink=None,
        read_chunk: int = 1 << 20,
    ):
        self.user_path, self.c2h_path = device_paths(instance, channel, dev_root)
        self.reg_base = int(reg_base)
        self.bar_size = int(bar_size)
        self.frame_sink = frame_sink
        # bytes asked of one C2H read (a short read keeps a partial record for the next one)
        self.read_chunk = max(RECORD_BYTES, int(read_chunk) // RECORD_BYTES * RECORD_BYTES)
        self.record_bytes = RECORD_BYTES  # Card.identify sets the build's ID_RECORD_BYTES
        self._map = None
        self._user = _open(self.user_path, os.O_RDWR | getattr(os, "O_SYNC", 0))
        self._c2h = None
        try:
            if use_mmap:
                try:
                    self._map = mmap.mmap(
                        self._user, self.bar_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
                    )
                except (OSError, ValueError):
                    self._map = None  # the driver (or file) refuses mmap: use pread/pwrite
            self._c2h = _open(self.c2h_path, os.O_RDONLY)
        except BaseException:
            self.close()
            raise
        self._rest = b""  # bytes of an incomplete record from the last read

    # -- registers
    def _check(self, addr: int) -> int:
        if addr % 4:
            raise ValueError(f"register address 0x{addr:x} is not 4-byte aligned")
        off = self.reg_base + addr
        if not 0 <= off <= self.bar_size - 4:
            raise ValueError(f"register address 0x{addr:x} outside the {self.bar_size}-byte BAR")
        if self._user is None:
            raise TransportClosed("the XDMA transport is closed")
        return off

    def read_reg(self, addr: int) -> int:
        off = self._check(addr)
        if self._map is not None:
            return int.from_bytes(memoryview(self._map)[off : off + 4], "little")
        data = os.pread(self._user, 4, off)
        if len(data) != 4:
            raise CardError(f"short read of register 0x{addr:x} from {self.user_path}")
        return struct.unpack("<I", data)[0]

    def write_reg(self, addr: int, value: int) -> None:
        off = self._check(addr)
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"register value {value} does not fit 32 bits")
        data = struct.pack("<I", value)
        if self._map is not None:
            memoryview(self._map)[off : off + 4] = data  # one 32-bit store
            return
        if os.pwrite(self._user, data, off) != 4:
            raise CardError(f"short write of register 0x{addr:x} to {self.user_path}")

    # -- frames
    def send_frames(self, frames) -> int:
        if self.frame_sink is None:
            raise CardError(
                "an XDMA card receives market data on its Ethernet port, not over PCIe: pass "
                "frame_sink=RawSocketSink('<nic cabled to the card>') to send frames"
            )
        buf, lens = pack_frames(frames)
        mv = memoryview(buf)
        off = 0
        for n in lens.tolist():
            self.frame_sink.send(bytes(mv[off : off + n]))
            off += n
        return int(lens.size)

    # -- records
    def recv_records(self, max_records: int = 1 << 16):
        """Read up to ``max_records`` records with one ``read`` of the C2H device.

        Blocks until the card sends data or the driver's C2H timeout expires
        (:class:`CardTimeout`).
        """
        if self._c2h is None:
            raise TransportClosed("the XDMA transport is closed")
        rb = self.record_bytes
        want = min(self.read_chunk, max_records * rb) - len(self._rest)
        want = max(want, rb - len(self._rest))
        try:
            data = os.read(self._c2h, want)
        except OSError as e:
            if e.errno in (errno.ETIMEDOUT, errno.EINTR, errno.EAGAIN, 512):
                raise CardTimeout(
                    f"no BBO records from {self.c2h_path} before the driver's C2H timeout"
                ) from None
            raise CardError(f"read from {self.c2h_path} failed: {e}") from None
        data = self._rest + data
        n = len(data) // rb
        self._rest = data[n * rb :]
        recs = np.frombuffer(data, np.uint8, count=n * rb).reshape(n, rb)
        return recs.copy(), None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        for attr in ("_user", "_c2h"):
            fd = getattr(self, attr, None)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)
        if self.frame_sink is not None and hasattr(self.frame_sink, "close"):
            self.frame_sink.close()
            self.frame_sink = None
