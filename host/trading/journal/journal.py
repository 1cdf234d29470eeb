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
    "JournalWriteError",
    "AcknowledgedDataLostError",
    "AckState",
    "SalvageReport",
    "ACK_SUFFIX",
    "ack_path",
    "read_ack",
    "read_journal",
]

ACK_SUFFIX = ".ack"
"""Suffix of the acknowledgement sidecar file written next to each journal."""


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


class JournalWriteError(Exception):
    """A commit of this writer failed earlier; it refuses to write more (reopen the journal)."""


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
    journal_id : int
        Creation time in the file header (ties the sidecar to this journal).
    ack : AckState or None
        The acknowledgement sidecar's newest slot (None when missing).
    salvage : SalvageReport or None
        What a ``salvage=True`` read cut (None otherwise, or when nothing was cut).
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
    journal_id: int = 0
    ack: AckState | None = None
    salvage: SalvageReport | None = None

    @property
    def ack_known(self) -> bool:
        """Whether the acknowledgement sidecar was found (else a cut at a group boundary
        cannot be detected)."""
        return self.ack is not None

    @property
    def clean_shutdown(self) -> bool | None:
        """Whether the last writer closed the journal (None: no sidecar to tell)."""
        return None if self.ack is None else self.ack.closed

    @property
    def last_seq(self) -> int:
        """Sequence number of the last valid record (0 if none)."""
        return int(self.record_seq[-1]) if len(self.record_seq) else 0


@dataclass(frozen=True)
class AckState:
    """Last acknowledgement recorded in the sidecar file ``<journal>.ack``.

    Attributes
    ----------
    written_seq : int
        Last record sequence number of the last group handed to the OS and acknowledged
        (returned to the caller of ``commit``).
    written_end : int
        File size after that group.
    written_commands : int
        Command records up to that group.
    durable_seq : int
        Last record sequence number known to be on disk (``fsync``) when the sidecar was
        written.
    closed : bool
        The writer closed the journal cleanly (False: it was open when the process ended).
    generation : int
        Number of sidecar updates (the newer of the two slots wins).
    """

    written_seq: int
    written_end: int
    written_commands: int
    durable_seq: int
    closed: bool
    generation: int


def ack_path(path: str | os.PathLike) -> str:
    """Path of the acknowledgement sidecar of journal ``path``."""
    return os.fspath(path) + ACK_SUFFIX


def read_ack(path: str | os.PathLike, journal_id: int) -> AckState | None:
    """Newest valid acknowledgement slot of journal ``path`` (None if there is none).

    A slot of another journal (``journal_id`` = the journal header's creation time differs,
    e.g. a sidecar left behind when the journal was deleted and created again) is ignored.
    """
    try:
        raw = np.fromfile(ack_path(path), np.uint8)
    except OSError:
        return None
    best = None
    for off in range(0, 2 * fmt.ACK_SLOT_SIZE, fmt.ACK_SLOT_SIZE):
        d = fmt.parse_ack_slot(raw[off:off + fmt.ACK_SLOT_SIZE], journal_id)
        if d is not None and (best is None or d["generation"] > best.generation):
            best = AckState(**d)
    return best


@dataclass(frozen=True)
class SalvageReport:
    """What :func:`read_journal` (``salvage=True``) cut, and what was lost with it.

    Attributes
    ----------
    cut_offset : int
        Byte offset where the kept journal ends (a COMMIT mark) and the cut starts.
    cut_bytes : int
        Bytes cut (from ``cut_offset`` to the end of the file).
    cut_commands, cut_events, cut_marks : int
        CRC-valid records found in the cut bytes (their contents are not kept).
    recovered_seq, recovered_commands : int
        Last record sequence number and number of command records kept.
    acknowledged_seq, acknowledged_commands : int or None
        What the sidecar says was acknowledged (None when the sidecar is missing).
    durable_seq : int or None
        Last record sequence number the sidecar says was fsynced.
    lost_records, lost_commands : int or None
        Acknowledged records / commands that are not kept (0 when the cut only held a torn,
        never acknowledged group; None when unknown).
    reason : str
    """

    cut_offset: int
    cut_bytes: int
    cut_commands: int
    cut_events: int
    cut_marks: int
    recovered_seq: int
    recovered_commands: int
    acknowledged_seq: int | None
    acknowledged_commands: int | None
    durable_seq: int | None
    lost_records: int | None
    lost_commands: int | None
    reason: str

    def describe(self) -> str:
        """One-paragraph human summary."""
        lost = ("unknown (no acknowledgement sidecar)" if self.lost_records is None
                else f"{self.lost_records} acknowledged records ({self.lost_commands} commands)")
        return (f"salvage cut {self.cut_bytes} bytes at offset {self.cut_offset} "
                f"({self.reason}): {self.cut_commands} command, {self.cut_events} event and "
                f"{self.cut_marks} mark records were CRC-valid in the cut; lost: {lost}; kept "
                f"records 1..{self.recovered_seq} ({self.recovered_commands} commands)")


class AcknowledgedDataLostError(JournalCorruptError):
    """Acknowledged records are missing or damaged at the end of the journal.

    Raised instead of dropping them as a torn tail: a bit flip in the last COMMIT mark, a
    zeroed or cut tail, or a cut exactly at a group boundary all lose groups whose commit was
    acknowledged. Reading with ``salvage=True`` keeps the valid prefix and reports what it
    cut (:class:`SalvageReport`).

    Attributes
    ----------
    acknowledged_seq, acknowledged_commands : int or None
        From the sidecar (None when it is missing or unreadable).
    recovered_seq, recovered_commands : int
        What the valid prefix holds.
    """

    def __init__(self, path: str, offset: int, reason: str, *, acknowledged_seq: int | None,
                 acknowledged_commands: int | None, recovered_seq: int,
                 recovered_commands: int) -> None:
        super().__init__(path, offset, reason)
        Exception.__init__(self, f"{path}: acknowledged journal data lost at byte offset "
                           f"{offset}: {reason}; refusing to drop it (salvage=True cuts the "
                           "journal there and reports what it cut)")
        self.acknowledged_seq = acknowledged_seq
        self.acknowledged_commands = acknowledged_commands
        self.recovered_seq = recovered_seq
        self.recovered_commands = recovered_commands


def _count_records(buf: np.ndarray, start: int) -> tuple[int, int, int]:
    """CRC-valid (command, event, mark) records in ``buf[start:]``, skipping bad bytes."""
    counts = [0, 0, 0]
    p = start
    n = buf.shape[0]
    while 0 <= p < n:
        if fmt.check_at(buf, p, n) == fmt.SCAN_OK:
            t = int(buf[p + 32]) | (int(buf[p + 33]) << 8)
            counts[t - 1] += 1
            p += int(np.frombuffer(buf[p:p + 4].tobytes(), "<u4")[0])
        else:
            p = fmt.resync(buf, p)
    return counts[0], counts[1], counts[2]


def read_journal(path: str | os.PathLike, *, salvage: bool = False) -> JournalContents:
    """Read and validate a journal file.

    Parameters
    ----------
    path : path
    salvage : bool
        Keep the valid prefix (up to the last good COMMIT mark) even when what follows holds
        acknowledged records or valid records after a bad one, and report exactly what is
        cut in :attr:`JournalContents.salvage`. The file is not modified.

    Raises
    ------
    JournalCorruptError
        If an invalid record is followed by a valid one (corruption in the middle).
    AcknowledgedDataLostError
        If the acknowledgement sidecar says records were acknowledged beyond the valid prefix
        (lost acknowledged groups), or a torn tail cannot be checked against it because the
        sidecar is missing.
    ValueError
        If the file header is invalid.
    """
    path = os.fspath(path)
    buf = np.fromfile(path, np.uint8)
    header = fmt.parse_file_header(buf)
    n = buf.shape[0]
    cap = (n - fmt.FILE_HEADER_SIZE) // 64 + 1
    offs = np.empty(cap, np.int64)
    types = np.empty(cap, np.int64)
    k, end, status = fmt.scan(buf, fmt.FILE_HEADER_SIZE, 1, offs, types)
    reason = ""
    if status != fmt.SCAN_OK:
        nxt = fmt.resync(buf, end) if status != fmt.SCAN_TRUNCATED else -1
        if nxt >= 0:
            why = fmt.SCAN_REASONS[status] + f" (valid record follows at offset {nxt})"
            if not salvage:
                raise JournalCorruptError(path, int(end), why)
            reason = "corrupt record in the middle: " + why
        else:
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
            reason = reason or "uncommitted group (no COMMIT mark)"
            k = keep
    torn = n - int(end)
    offs = offs[:k]
    types = types[:k]
    n_cmds = int(np.count_nonzero(types == fmt.REC_COMMAND))
    # what was acknowledged (sidecar): a torn tail may only hold a never-acknowledged group
    ack = read_ack(path, header["created_ns"])
    lost_rec = lost_cmd = None
    if ack is not None:
        lost_rec = max(0, ack.written_seq - k)
        lost_cmd = max(0, ack.written_commands - n_cmds)
        if lost_rec and not salvage:
            raise AcknowledgedDataLostError(
                path, int(end),
                f"records {k + 1}..{ack.written_seq} ({lost_cmd} commands) were acknowledged "
                f"(fsynced up to record {ack.durable_seq}) but the valid journal ends at record "
                f"{k}" + (f" ({reason})" if reason else " (cut at a group boundary)"),
                acknowledged_seq=ack.written_seq, acknowledged_commands=ack.written_commands,
                recovered_seq=k, recovered_commands=n_cmds)
    elif torn and not salvage:
        raise AcknowledgedDataLostError(
            path, int(end), f"{torn} bytes after the last COMMIT mark ({reason}) and no "
            f"acknowledgement sidecar {ack_path(path)} to tell a torn, never acknowledged "
            "group from lost acknowledged records", acknowledged_seq=None,
            acknowledged_commands=None, recovered_seq=k, recovered_commands=n_cmds)
    report = None
    if salvage and (torn or lost_rec):
        cc, ce, cm = _count_records(buf, int(end))
        report = SalvageReport(
            cut_offset=int(end), cut_bytes=torn, cut_commands=cc, cut_events=ce, cut_marks=cm,
            recovered_seq=k, recovered_commands=n_cmds,
            acknowledged_seq=None if ack is None else ack.written_seq,
            acknowledged_commands=None if ack is None else ack.written_commands,
            durable_seq=None if ack is None else ack.durable_seq,
            lost_records=lost_rec, lost_commands=lost_cmd,
            reason=reason or "cut at a group boundary")
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
        journal_id=header["created_ns"],
        ack=ack,
        salvage=report,
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

    ``on_commit`` (default None) may be set to a callable: after each commit that wrote a
    group, it gets the ``EVENT_DTYPE`` events of that group (a copy), so a consumer (the store
    writer of ``python -m host session --store``) sees every acknowledged event exactly once
    and never an unacknowledged one. An exception it raises propagates from :meth:`commit`;
    the journal itself is intact.
    """

    def __init__(self, path: str | os.PathLike, config: JournalConfig | None = None, *,
                 salvage: bool = False) -> None:
        self.path = os.fspath(path)
        self.config = config or JournalConfig()
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self.recovered: JournalContents | None = None
        if exists:
            # raises on corruption in the middle or lost acknowledged records (unless salvage)
            contents = read_journal(self.path, salvage=salvage)
            self.recovered = contents
            if contents.torn_bytes:
                with open(self.path, "r+b") as f:
                    f.truncate(contents.valid_end)
                    os.fsync(f.fileno())
            self._seq = contents.last_seq
            self.journal_id = contents.journal_id
            size = contents.valid_end
        else:
            self._seq = 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if not exists:
            self.journal_id = time.time_ns()
            os.write(self._fd, fmt.file_header(self.journal_id))
            os.fsync(self._fd)
            size = fmt.FILE_HEADER_SIZE
        self._pending: list[np.ndarray] = []
        self._n_cmds = 0 if self.recovered is None else len(self.recovered.commands)
        self._last_ev = 0
        if self.recovered is not None and len(self.recovered.events):
            self._last_ev = int(self.recovered.events["seq"][-1])
        self.written_seq = self._seq
        self.durable_seq = self._seq
        self._size = size
        self._last_fsync = time.monotonic_ns()
        self.bytes_written = 0
        self.fsyncs = 0
        self._broken: BaseException | None = None
        self.on_commit = None
        self._tapped: list[np.ndarray] = []
        # the sidecar now describes this file as it is (a new journal, or the kept prefix),
        # marked open: a crash before close() shows as an unclean shutdown
        self._ack_gen = 0 if self.recovered is None or self.recovered.ack is None else (
            self.recovered.ack.generation)
        self._ack_fd = os.open(ack_path(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        if self.recovered is None or self.recovered.ack is None or contents.torn_bytes:
            os.ftruncate(self._ack_fd, 0)
            self._write_ack(closed=False)
            self._write_ack(closed=False)  # both slots: nothing stale survives
            os.fsync(self._ack_fd)
            self._fsync_dir()
        else:
            self._write_ack(closed=False)

    def _write_ack(self, *, closed: bool) -> None:
        """Record the acknowledged state in the older sidecar slot (no fsync: a lagging
        sidecar only weakens the check, it never makes recovery drop acknowledged data)."""
        self._ack_gen += 1
        slot = fmt.ack_slot(self.journal_id, self._ack_gen, self.written_seq, self._size,
                            self._n_cmds, self.durable_seq, closed)
        os.pwrite(self._ack_fd, slot, (self._ack_gen & 1) * fmt.ACK_SLOT_SIZE)

    def _fsync_dir(self) -> None:
        d = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(d)
        finally:
            os.close(d)

    def _encode(self, payload: np.ndarray, rec_dtype: np.dtype, rtype: int) -> None:
        self._check_usable()
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
            if self.on_commit is not None:
                self._tapped.append(events.copy())

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
        self._check_usable()
        base = self._size
        try:
            durable = self._commit(force_fsync)
        except BaseException as exc:
            # the group may be partly written: cut it off (best effort; if that fails too, the
            # next open drops it as a torn, never acknowledged group) and refuse further use,
            # since the caller's state is now ahead of the journal
            self._broken = exc
            self._pending.clear()
            try:
                os.ftruncate(self._fd, base)
                self._size = base
            except OSError:
                pass
            self._tapped.clear()  # never acknowledged: not handed on
            raise
        if self._tapped:
            # outside the try: a failing consumer (a store) does not cut the journal, whose
            # group is written; its error propagates to the caller
            ev = np.concatenate(self._tapped) if len(self._tapped) > 1 else self._tapped[0]
            self._tapped = []
            self.on_commit(ev)
        return durable

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise JournalWriteError(f"{self.path}: a commit failed ({self._broken!r}); the "
                                    "journal no longer matches its writer: reopen it")

    def _commit(self, force_fsync: bool) -> int:
        acked = False
        if self._pending:
            acked = True
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
            self._size += total
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
            acked = True
        if acked:
            self._write_ack(closed=False)
        return self.durable_seq

    def close(self) -> None:
        """Commit; fsync unless the policy is NONE; close the file."""
        if self._fd < 0:
            return
        if self._broken is not None:  # nothing more is written: the next open recovers
            os.close(self._fd)
            os.close(self._ack_fd)
            self._fd = self._ack_fd = -1
            return
        self.commit(force_fsync=self.config.policy is not DurabilityPolicy.NONE)
        os.close(self._fd)
        self._fd = -1
        self._write_ack(closed=True)
        if self.config.policy is not DurabilityPolicy.NONE:
            os.fsync(self._ack_fd)
        os.close(self._ack_fd)
        self._ack_fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
