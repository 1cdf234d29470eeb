"""The one interface every card transport implements, and the driver's error types.

A transport moves three things between the host and a card: 32-bit register reads and writes
(byte addresses from :mod:`hw.regs`), Ethernet frames *into* the card's MAC receive port, and
raw 64-byte BBO records *out of* the card. :class:`host.card.Card` is written against this
interface only, so the same driver code runs on the simulated card (:mod:`host.card.sim`), on a
card behind the Xilinx XDMA driver (:mod:`host.card.xdma`), or on the software model card
(:mod:`host.card.model`).

Everything is batched: frames go in as a list (or a packed buffer), records come out as a
``(n, 64)`` ``uint8`` array, so no per-message Python call is needed on the data path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

__all__ = [
    "RECORD_BYTES",
    "CardError",
    "CardNotFound",
    "CardMismatch",
    "CardTimeout",
    "ModelNotBuilt",
    "TransportClosed",
    "Transport",
    "pack_frames",
]

RECORD_BYTES = 64
"""Size of one ``depth_n = 1`` BBO record on the wire (the 512-bit ``bbo`` stream payload); a
build with more levels sends ``hw.bbo_record.record_bytes(depth_n)`` (``ID_RECORD_BYTES``)."""


class CardError(RuntimeError):
    """Base class of every driver error."""


class CardNotFound(CardError):
    """No card at the given device path (or no permission to open it)."""


class CardMismatch(CardError):
    """The card answered, but its magic, version or build parameters are not the driver's."""


class CardTimeout(CardError):
    """A register access or a DMA read did not complete in time."""


class ModelNotBuilt(CardError):
    """The simulated card's shared library is missing and could not (or may not) be built."""


class TransportClosed(CardError):
    """The transport was used after :meth:`Transport.close`."""


def pack_frames(frames) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate frames into one ``uint8`` buffer plus a ``uint32`` length array.

    Parameters
    ----------
    frames : sequence of bytes-like, or tuple ``(buf, lens)``
        The frames; an already packed ``(buf, lens)`` pair is returned unchanged (as arrays).

    Returns
    -------
    buf : numpy.ndarray
        ``uint8``, every frame back to back.
    lens : numpy.ndarray
        ``uint32`` frame lengths, ``lens.sum() == buf.size``.
    """
    if isinstance(frames, tuple) and len(frames) == 2 and isinstance(frames[1], np.ndarray):
        buf = np.ascontiguousarray(frames[0], dtype=np.uint8).reshape(-1)
        lens = np.ascontiguousarray(frames[1], dtype=np.uint32).reshape(-1)
        if int(lens.sum()) != buf.size:
            raise ValueError(f"frame lengths sum to {int(lens.sum())}, buffer has {buf.size}")
        return buf, lens
    lens = np.fromiter((len(f) for f in frames), dtype=np.uint32, count=len(frames))
    buf = np.frombuffer(b"".join(frames), dtype=np.uint8)
    return buf, lens


class Transport(ABC):
    """Abstract card transport.

    Subclasses implement register access, frame injection and record reception. Transports are
    context managers; :meth:`close` is idempotent.
    """

    #: Short name used in messages ("sim", "xdma", "model").
    name = "abstract"
    #: Bytes of one record: what :meth:`recv_records` returns per row. A transport that cannot
    #: know it (XDMA) is told by :class:`host.card.Card` from ``ID_RECORD_BYTES``.
    record_bytes = RECORD_BYTES
    #: True when :meth:`run` measures time in card clock cycles (record cycles are meaningful).
    has_cycles = False

    @abstractmethod
    def read_reg(self, addr: int) -> int:
        """Read the 32-bit register at byte address ``addr``."""

    @abstractmethod
    def write_reg(self, addr: int, value: int) -> None:
        """Write the 32-bit ``value`` to the register at byte address ``addr``."""

    @abstractmethod
    def send_frames(self, frames: Sequence[bytes] | tuple[np.ndarray, np.ndarray]) -> int:
        """Queue Ethernet frames (no FCS) for the card's MAC receive port.

        Returns the number of frames queued.
        """

    @abstractmethod
    def recv_records(self, max_records: int = 1 << 16) -> tuple[np.ndarray, np.ndarray | None]:
        """Take up to ``max_records`` BBO records that the card has produced.

        Returns
        -------
        records : numpy.ndarray
            ``(n, record_bytes)`` ``uint8``, one raw record per row, in card output order.
        cycles : numpy.ndarray or None
            ``uint64`` card clock cycle at which each record left the card, when the transport
            knows it (simulated card), else ``None``.
        """

    def run(self, max_cycles: int | None = None, *, max_records: int | None = None) -> int:
        """Let the card process what has been queued.

        On a simulated card this runs the clock until the input is consumed and the output has
        gone quiet (or a limit is hit); on hardware the card runs by itself and this is a no-op.
        Returns a transport-specific status (0 = idle).
        """
        return 0

    def reset(self) -> None:
        """Hard reset, if the transport can do one (simulation); else a no-op."""
        return None

    @property
    def cycle(self) -> int | None:
        """Current card clock cycle, if known."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Release the device or model."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
