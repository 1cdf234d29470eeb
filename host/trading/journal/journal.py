"""Append-only audit journal: group-commit writer and validating reader.

Writer
    :class:`JournalWriter` encodes command and event arrays into records (vectorised numpy
    plus a compiled CRC pass), buffers them, and on :meth:`JournalWriter.commit` writes the
    buffer with one ``writev`` and applies the :class:`DurabilityPolicy`. What
    :attr:`JournalWriter.durable_seq` reports has reached the disk (``fsync``).
Reader
    :func:`read_journal` validates every record (length, type, CRC-32C, consecutive sequence
    numbers). A bad record after which no valid record follows is a torn tail (a crash in the
    middle of a write) and is dropped; a bad record *followed by valid records* is corruption
    in the middle and raises :class:`JournalCorruptError` with its byte offset -- nothing is
    ever skipped silently. Each commit ends with a COMMIT mark; valid records after the last
    COMMIT mark belong to a group whose write did not complete and are dropped with the tail,
    so a group commit is all or nothing.
"""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass, field

import numpy as np

from host.trading.journal import format as fmt
from host.trading.matching.types import COMMAND_DTYPE, EVENT_DTYPE

__all__ = [
    "DurabilityPolicy",
    "JournalConfig",
    "JournalWriter",
    "JournalContents",
    "JournalCorruptError",
    "read_journal",
]


class DurabilityPolicy(enum.Enum):
    """When :meth:`JournalWriter.commit` calls ``fsync``."""

    FSYNC_EACH_BATCH = "batch"
    """Every commit is durable when it returns."""
    FSYNC_INTERVAL = "interval"
    """At a commit when ``fsync_interval_ns`` has passed since the last fsync (and at close)."""
    NONE = "none"
    """Never: the OS writes back when it likes (survives a process crash, not a power cut)."""


@dataclass(frozen=True)
class JournalConfig:
    """Journal writer settings.

    Parameters
    ----------
    policy : DurabilityPolicy
        Default ``FSYNC_EACH_BATCH``.
    fsync_interval_ns : int
        For ``FSYNC_INTERVAL``; default 5 ms.
    write_chunk_bytes : int
        Largest single ``write`` of a commit (default 1 MiB); a bigger commit is written in
        several syscalls, so a crash can leave a torn record that recovery drops.
    """

    policy: DurabilityPolicy = DurabilityPolicy.FSYNC_EACH_BATCH
    fsync_interval_ns: int = 5_000_000
    write_chunk_bytes: int = 1 << 20


class JournalCorruptError(Exception):
    """A record in the middle of the journal is invalid.

    Attributes
    ----------
    offset : int
        Byte offset of the first invalid record.
    reason : str
    path : str
    """

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"{path}: corrupt journal record at byte offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


@dataclass
class JournalContents:
    """Validated contents of a journal file.

    Attributes
    ----------
    commands : numpy.ndarray
        ``COMMAND_DTYPE`` payloads in journal order.
    events : numpy.ndarray
        ``EVENT_DTYPE`` payloads in journal order.
    marks : numpy.ndarray
        ``MARK_DTYPE`` payloads (commit and snapshot marks).
    record_seq, record_type, record_offset, wall_ns, mono_ns : numpy.ndarray
        Per valid record.
    valid_end : int
        Byte offset just after the last valid record.
    torn_bytes : int
        Bytes after ``valid_end`` dropped as a torn tail (0 for a clean file): invalid bytes
        and any complete records of an unfinished group (after the last COMMIT mark).
    torn_reason : str
    """

    commands: np.ndarray
    events: np.ndarray
    marks: np.ndarray
    record_seq: np.ndarray
    record_type: np.ndarray
    record_offset: np.ndarray
    wall_ns: np.ndarray
    mono_ns: np.ndarray
    valid_end: int
    torn_bytes: int
    torn_reason: str = ""
    command_wall_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def last_seq(self) -> int:
        """Sequence number of the last valid record (0 if none)."""
        return int(self.record_seq[-1]) if len(self.record_seq) else 0


def read_journal(path: str | os.PathLike) -> JournalContents:
    """Read and validate a journal file.

    Raises
    ------
    JournalCorruptError
        If an invalid record is followed by a valid one (corruption in the middle).
    ValueError
        If the file header is invalid.
    """
    path = os.fspath(path)
    buf = np.fromfile(path, np.uint8)
    fmt.parse_file_header(buf)
    n = buf.shape[0]
    cap = (n - fmt.FILE_HEADER_SIZE) // 64 + 1
    offs = np.empty(cap, np.int64)
    types = np.empty(cap, np.int64)
    k, end, status = fmt.scan(buf, fmt.FILE_HEADER_SIZE, 1, offs, types)
    torn = 0
    reason = ""
    if status != fmt.SCAN_OK:
        nxt = fmt.resync(buf, end) if status != fmt.SCAN_TRUNCATED else -1
        if nxt >= 0:
            raise JournalCorruptError(path, int(end), fmt.SCAN_REASONS[status]
                                      + f" (valid record follows at offset {nxt})")
        torn = n - end
        reason = fmt.SCAN_REASONS[status]
    if k:  # cut back to the last COMMIT mark: a group commit is all or nothing
        mk = offs[:k][types[:k] == fmt.REC_MARK]
        kinds = np.empty((len(mk), 8), np.uint8)
        fmt.gather(buf, mk + 16, 8, kinds)
        commits = mk[kinds.view("<u8").reshape(-1) == fmt.MARK_COMMIT]
        last = int(commits[-1]) if len(commits) else -1
        keep = int(np.searchsorted(offs[:k], last)) + 1 if last >= 0 else 0
        if keep < k:
            end = int(offs[keep])
            torn = n - end
            reason = reason or "uncommitted group (no COMMIT mark)"
            k = keep
    offs = offs[:k]
    types = types[:k]
    # header fields of the valid records
    hdr = np.empty((k, 40), np.uint8)
    fmt.gather(buf, offs - fmt.RECORD_HEADER_SIZE, 40, hdr)
    seq = hdr[:, 8:16].copy().view("<u8").reshape(-1)
    wall = hdr[:, 16:24].copy().view("<i8").reshape(-1)
    mono = hdr[:, 24:32].copy().view("<i8").reshape(-1)

    def payloads(rtype: int, dtype: np.dtype) -> np.ndarray:
        o = offs[types == rtype]
        out = np.empty((len(o), dtype.itemsize), np.uint8)
        fmt.gather(buf, o, dtype.itemsize, out)
        return out.view(dtype).reshape(-1)

    return JournalContents(
        commands=payloads(fmt.REC_COMMAND, COMMAND_DTYPE),
        events=payloads(fmt.REC_EVENT, EVENT_DTYPE),
        marks=payloads(fmt.REC_MARK, fmt.MARK_DTYPE),
        record_seq=seq,
        record_type=types,
        record_offset=offs,
        wall_ns=wall,
        mono_ns=mono,
        valid_end=int(end),
        torn_bytes=int(torn),
        torn_reason=reason,
        command_wall_ns=wall[types == fmt.REC_COMMAND],
    )


class JournalWriter:
    """Group-commit writer of one journal file.

    Parameters
    ----------
    path : str or os.PathLike
        Created with a file header if missing or empty. An existing journal is validated,
        a torn tail is truncated away, and appending continues after its last record
        (a corrupt middle raises :class:`JournalCorruptError`).
    config : JournalConfig, optional

    Notes
    -----
    Records appended since the last :meth:`commit` live in memory only. Each record gets the
    wall-clock (UTC) and monotonic time of the ``append_*`` call that encoded it.
    """

    def __init__(self, path: str | os.PathLike, config: JournalConfig | None = None) -> None:
        self.path = os.fspath(path)
        self.config = config or JournalConfig()
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self.recovered: JournalContents | None = None
        if exists:
            contents = read_journal(self.path)
            self.recovered = contents
            if contents.torn_bytes:
                with open(self.path, "r+b") as f:
                    f.truncate(contents.valid_end)
                    os.fsync(f.fileno())
            self._seq = contents.last_seq
        else:
            self._seq = 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if not exists:
            os.write(self._fd, fmt.file_header(time.time_ns()))
            os.fsync(self._fd)
            self._fsync_dir()
        self._pending: list[np.ndarray] = []
        self._n_cmds = 0 if self.recovered is None else len(self.recovered.commands)
        self._last_ev = 0
        if self.recovered is not None and len(self.recovered.events):
            self._last_ev = int(self.recovered.events["seq"][-1])
        self.written_seq = self._seq
        self.durable_seq = self._seq
        self._last_fsync = time.monotonic_ns()
        self.bytes_written = 0
        self.fsyncs = 0

    def _fsync_dir(self) -> None:
        d = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(d)
        finally:
            os.close(d)

    def _encode(self, payload: np.ndarray, rec_dtype: np.dtype, rtype: int) -> None:
        m = len(payload)
        if m == 0:
            return
        rec = np.empty(m, rec_dtype)
        rec["length"] = rec_dtype.itemsize
        rec["seq"] = np.arange(self._seq + 1, self._seq + 1 + m, dtype=np.uint64)
        rec["wall_ns"] = time.time_ns()
        rec["mono_ns"] = time.monotonic_ns()
        rec["type"] = rtype
        rec["version"] = fmt.VERSION
        rec["reserved"] = 0
        rec["payload"] = payload
        fmt.fill_crcs(rec.view(np.uint8), rec_dtype.itemsize, m)
        self._seq += m
        self._pending.append(rec)

    def append_commands(self, commands: np.ndarray) -> None:
        """Append ``COMMAND_DTYPE`` records (buffered until :meth:`commit`)."""
        if commands.dtype != COMMAND_DTYPE:
            raise TypeError("expected a COMMAND_DTYPE array")
        self._encode(commands, fmt.COMMAND_RECORD_DTYPE, fmt.REC_COMMAND)
        self._n_cmds += len(commands)

    def append_events(self, events: np.ndarray) -> None:
        """Append ``EVENT_DTYPE`` records (buffered until :meth:`commit`)."""
        if events.dtype != EVENT_DTYPE:
            raise TypeError("expected an EVENT_DTYPE array")
        self._encode(events, fmt.EVENT_RECORD_DTYPE, fmt.REC_EVENT)
        if len(events):
            self._last_ev = int(events["seq"][-1])

    def append_mark(self, cmd_seq: int, event_seq: int, kind: int = fmt.MARK_SNAPSHOT) -> None:
        """Append a MARK record (e.g. where a snapshot was taken)."""
        m = np.zeros(1, fmt.MARK_DTYPE)
        m[0] = (cmd_seq, event_seq, kind)
        self._encode(m, fmt.MARK_RECORD_DTYPE, fmt.REC_MARK)

    def commit(self, *, force_fsync: bool = False) -> int:
        """Write everything appended so far; fsync according to the policy.

        Returns
        -------
        int
            :attr:`durable_seq`, the last record sequence number known to be on disk.
        """
        if self._pending:
            self.append_mark(self._n_cmds, self._last_ev, fmt.MARK_COMMIT)
            bufs = [memoryview(r).cast("B") for r in self._pending]
            total = sum(len(b) for b in bufs)
            chunk = self.config.write_chunk_bytes
            if total <= chunk and len(bufs) < 1024:
                done = os.writev(self._fd, bufs)
            else:
                done = 0
            if done < total:  # large commit or short write: chunks of at most `chunk` bytes
                data = memoryview(b"".join(bufs))
                while done < total:
                    done += os.write(self._fd, data[done:done + chunk])
            self.bytes_written += total
            self._pending.clear()
            self.written_seq = self._seq
        pol = self.config.policy
        now = time.monotonic_ns()
        if self.durable_seq < self.written_seq and (
                force_fsync or pol is DurabilityPolicy.FSYNC_EACH_BATCH
                or (pol is DurabilityPolicy.FSYNC_INTERVAL
                    and now - self._last_fsync >= self.config.fsync_interval_ns)):
            os.fsync(self._fd)
            self.fsyncs += 1
            self._last_fsync = now
            self.durable_seq = self.written_seq
        return self.durable_seq

    def close(self) -> None:
        """Commit; fsync unless the policy is NONE; close the file."""
        if self._fd < 0:
            return
        self.commit(force_fsync=self.config.policy is not DurabilityPolicy.NONE)
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
