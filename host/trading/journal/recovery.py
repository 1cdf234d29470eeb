"""Journaled engine, snapshots and crash recovery.

:class:`JournaledEngine` puts the journal on the engine's command path: for every batch it
journals the commands, applies them, journals the events, and group-commits. Recovery loads
the newest snapshot (if any) and replays the journaled commands after it through the batch
path; the replayed events are checked against the journaled ones.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from host.trading.journal.journal import (
    JournalConfig,
    JournalContents,
    JournalWriteError,
    JournalWriter,
    SalvageReport,
    read_journal,
)
from host.trading.matching.engine import EngineConfig, MatchingEngine, encode_one
from host.trading.matching.types import COMMAND_DTYPE, Command, Event, decode_events

_REPLAY_CHUNK = 1 << 16

__all__ = ["JournaledEngine", "RecoveryReport", "recover", "save_snapshot", "load_snapshot",
           "ReplayMismatchError"]


class ReplayMismatchError(Exception):
    """Replaying the journaled commands did not reproduce the journaled events."""


def save_snapshot(engine: MatchingEngine, path: str | os.PathLike) -> None:
    """Write ``engine.snapshot()`` atomically (temp file, fsync, rename, fsync dir)."""
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **engine.snapshot())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    d = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(d)
    finally:
        os.close(d)


def load_snapshot(path: str | os.PathLike, config: EngineConfig | None = None) -> MatchingEngine:
    """Engine from a snapshot file written by :func:`save_snapshot`."""
    with np.load(os.fspath(path)) as z:
        return MatchingEngine.from_snapshot({k: z[k] for k in z.files}, config)


@dataclass(frozen=True)
class RecoveryReport:
    """What :func:`recover` did.

    Attributes
    ----------
    commands_replayed : int
        Journaled commands applied after the snapshot.
    command_seq : int
        Commands applied in total (snapshot + replay).
    events_checked : int
        Replayed events compared with journaled ones (all equal, else an error was raised).
    torn_bytes : int
        Bytes of a torn tail dropped from the journal.
    snapshot : str or None
    seconds : float
        Wall time of the recovery (read, validate, replay, check).
    unjournaled : numpy.ndarray
        Events the replay produced that the journal lacks (their records were in the torn
        tail); :meth:`JournaledEngine.open` journals them before accepting new commands.
    ack_known : bool
        The acknowledgement sidecar was found, so lost acknowledged groups (including a cut at
        a group boundary) would have been detected; False for a journal without one.
    clean_shutdown : bool or None
        The last writer closed the journal (False: it crashed or was killed; None: unknown).
    salvage : SalvageReport or None
        What ``salvage=True`` cut (None when nothing had to be cut).
    """

    commands_replayed: int
    command_seq: int
    events_checked: int
    torn_bytes: int
    snapshot: str | None
    seconds: float
    unjournaled: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False,
                                    repr=False)
    ack_known: bool = True
    clean_shutdown: bool | None = None
    salvage: SalvageReport | None = None


def recover(journal_path: str | os.PathLike, *, config: EngineConfig | None = None,
            snapshot_path: str | os.PathLike | None = None, verify: bool = True,
            contents: JournalContents | None = None, salvage: bool = False,
            ) -> tuple[MatchingEngine, RecoveryReport]:
    """Rebuild the engine from a snapshot (optional) plus the journal.

    Parameters
    ----------
    journal_path : path
    config : EngineConfig, optional
        Needed without a snapshot (a snapshot carries its config).
    snapshot_path : path, optional
    verify : bool
        Compare every replayed event with the journaled event of the same sequence number.
    contents : JournalContents, optional
        Already read journal (skips reading it again).
    salvage : bool
        Recover from the valid prefix even when acknowledged records at the end are lost or
        damaged (see :func:`read_journal`); ``report.salvage`` says exactly what was cut.
        Without it such damage raises instead of being dropped as a torn tail.

    Returns
    -------
    engine, report

    Raises
    ------
    JournalCorruptError
        Corruption in the middle of the journal.
    AcknowledgedDataLostError
        Acknowledged records at the end are missing or damaged (a ``JournalCorruptError``).
    ReplayMismatchError
        Replayed events differ from the journaled ones.
    """
    t0 = time.perf_counter()
    j = contents if contents is not None else read_journal(journal_path, salvage=salvage)
    if snapshot_path is not None:
        eng = load_snapshot(snapshot_path, config)
    else:
        eng = MatchingEngine(config or EngineConfig())
    start_cmd = eng.command_seq
    start_ev = eng.event_seq
    if start_cmd > len(j.commands):
        raise ReplayMismatchError("snapshot is newer than the journal")
    todo = j.commands[start_cmd:]
    jev = j.events  # journal order = event sequence order
    sel = jev[int(np.searchsorted(jev["seq"], start_ev, side="right")):]
    checked = 0
    pos = 0
    extra = []
    for i in range(0, len(todo), _REPLAY_CHUNK):
        ev = eng.process(todo[i:i + _REPLAY_CHUNK], copy=False)
        m = max(0, min(len(ev), len(sel) - pos))
        if verify and m and not np.array_equal(ev[:m].view(np.uint8),
                                               sel[pos:pos + m].view(np.uint8)):
            diff = (ev[:m].view(np.int64).reshape(m, -1)
                    != sel[pos:pos + m].view(np.int64).reshape(m, -1)).any(1)
            bad = int(np.nonzero(diff)[0][0])
            raise ReplayMismatchError(f"replayed event seq {int(ev[bad]['seq'])} differs from "
                                      "the journal")
        if m < len(ev):
            extra.append(ev[m:].copy())
        checked += m if verify else 0
        pos += len(ev)
    if verify and pos < len(sel):
        raise ReplayMismatchError("journal holds events the replay did not produce")
    unjournaled = np.concatenate(extra) if extra else np.zeros(0, jev.dtype)
    rep = RecoveryReport(
        commands_replayed=len(todo),
        command_seq=eng.command_seq,
        events_checked=checked,
        torn_bytes=j.torn_bytes,
        snapshot=os.fspath(snapshot_path) if snapshot_path is not None else None,
        seconds=time.perf_counter() - t0,
        unjournaled=unjournaled,
        ack_known=j.ack_known,
        clean_shutdown=j.clean_shutdown,
        salvage=j.salvage,
    )
    return eng, rep


class JournaledEngine:
    """A :class:`MatchingEngine` whose every command and event is journaled.

    Parameters
    ----------
    engine : MatchingEngine
        Must be in the state the journal describes (fresh for a new journal; see
        :meth:`open`).
    writer : JournalWriter

    Notes
    -----
    Each :meth:`process` call is one group commit: the engine runs, then the command records
    of what it applied, its event records and a COMMIT mark go out in one write and (per
    policy) one fsync. When :meth:`process` returns the batch is acknowledged: durable with
    ``FSYNC_EACH_BATCH``, handed to the OS otherwise (``writer.durable_seq`` tells).
    """

    def __init__(self, engine: MatchingEngine, writer: JournalWriter) -> None:
        self.engine = engine
        self.writer = writer
        self._one = np.zeros(1, COMMAND_DTYPE)
        self._failed: BaseException | None = None

    @classmethod
    def open(cls, journal_path: str | os.PathLike, *, config: EngineConfig | None = None,
             journal_config: JournalConfig | None = None,
             snapshot_path: str | os.PathLike | None = None, salvage: bool = False,
             ) -> tuple[JournaledEngine, RecoveryReport | None]:
        """Open (recovering if the journal exists) or create a journaled engine.

        A torn tail (the last group, never acknowledged) is truncated away. Damage to
        acknowledged records raises :class:`AcknowledgedDataLostError` and leaves the file
        alone, unless ``salvage=True``: then the journal is cut after its last valid group
        and ``report.salvage`` tells exactly what was cut.
        """
        path = os.fspath(journal_path)
        if os.path.exists(path) and os.path.getsize(path) > 0:
            # validates; drops a torn tail; refuses to drop acknowledged records unless salvage
            writer = JournalWriter(path, journal_config, salvage=salvage)
            eng, rep = recover(path, config=config, snapshot_path=snapshot_path,
                               contents=writer.recovered)
            if len(rep.unjournaled):  # events of a torn last batch: journal them now
                writer.append_events(rep.unjournaled)
                writer.commit(force_fsync=True)
            return cls(eng, writer), rep
        return cls(MatchingEngine(config or EngineConfig()), JournalWriter(path, journal_config)
                   ), None

    def process(self, commands: np.ndarray) -> np.ndarray:
        """Apply a ``COMMAND_DTYPE`` batch, journal it with its events; return the events.

        One group commit per call, journaled after the engine ran: the journal holds exactly
        what the engine applied. If the engine raises part way (e.g. ``MemoryError`` growing
        its event buffer), the commands it did apply (never half of one) are journaled and
        committed with their events before the exception propagates; the rest never reached
        the engine nor the journal. If the commit itself fails, the engine is ahead of the
        journal: this object refuses further commands (reopen the journal to recover).
        """
        if self._failed is not None:
            raise JournalWriteError(f"{self.writer.path}: a commit failed "
                                    f"({self._failed!r}); reopen the journal")
        try:
            events = self.engine.process(commands)
        except BaseException:
            part = self.engine.interrupted
            if part is not None and part.applied:
                self._journal(commands[:part.applied], part.events)
            raise
        self._journal(commands, events)
        return events

    def _journal(self, commands: np.ndarray, events: np.ndarray) -> None:
        try:
            self.writer.append_commands(commands)
            self.writer.append_events(events)
            self.writer.commit()
        except BaseException as exc:
            self._failed = exc
            raise

    def submit(self, cmd: Command) -> list[Event]:
        """Journal and apply one command object (``ts == 0`` is stamped with the clock)."""
        encode_one(self._one, cmd, self.engine.config.clock)
        return decode_events(self.process(self._one))

    def snapshot(self, path: str | os.PathLike) -> None:
        """Commit (durably), write a snapshot, and journal a MARK record pointing at it."""
        self.writer.commit(force_fsync=True)
        save_snapshot(self.engine, path)
        self.writer.append_mark(self.engine.command_seq, self.engine.event_seq)
        self.writer.commit(force_fsync=True)

    def close(self) -> None:
        """Close the journal (final commit and fsync)."""
        self.writer.close()
