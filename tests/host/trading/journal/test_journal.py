"""Journal writer / reader: record layout, policies, torn tails, corruption in the middle."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from host.trading.journal import (
    AcknowledgedDataLostError,
    DurabilityPolicy,
    JournalConfig,
    JournalCorruptError,
    JournalWriter,
    ack_path,
    crc32c,
    read_journal,
)
from host.trading.journal import format as fmt
from host.trading.matching import COMMAND_DTYPE, MatchingEngine
from host.trading.matching.workload import WorkloadSpec, mixed_workload, workload_config

SPEC = WorkloadSpec(n_resting=300, n_instruments=2)


def _batch(seed: int = 1, n: int = 400):
    pre, ops = mixed_workload(n, SPEC, seed=seed)
    cmds = np.concatenate([pre, ops])
    return cmds, MatchingEngine(workload_config(SPEC)).process(cmds)


def _write(path, cmds, evs, batches: int = 4, policy=DurabilityPolicy.FSYNC_EACH_BATCH,
           acked: int | None = None):
    """Journal ``batches`` groups; ``acked`` < batches simulates a writer killed after writing
    group ``acked + 1`` and before acknowledging it (the sidecar stays as after ``acked``)."""
    w = JournalWriter(path, JournalConfig(policy))
    side = None
    for b, (c, e) in enumerate(zip(np.array_split(cmds, batches), np.array_split(evs, batches),
                                   strict=True)):
        if b == acked:
            side = open(ack_path(path), "rb").read()
        w.append_commands(c)
        w.append_events(e)
        w.commit()
    w.close()
    if side is not None:
        open(ack_path(path), "wb").write(side)
    return w


def test_round_trip_and_record_layout(tmp_path) -> None:
    p = tmp_path / "j.bin"
    cmds, evs = _batch()
    t0 = time.time_ns()
    _write(p, cmds, evs)
    t1 = time.time_ns()
    j = read_journal(p)
    assert np.array_equal(j.commands, cmds) and np.array_equal(j.events, evs)
    assert j.torn_bytes == 0 and j.valid_end == os.path.getsize(p)
    n_rec = len(cmds) + len(evs) + 4  # + one COMMIT mark per commit
    assert np.array_equal(j.record_seq, np.arange(1, n_rec + 1))
    assert (j.marks["kind"] == fmt.MARK_COMMIT).all() and len(j.marks) == 4
    assert j.marks["cmd_seq"][-1] == len(cmds) and j.marks["event_seq"][-1] == evs["seq"][-1]
    assert (j.wall_ns >= t0).all() and (j.wall_ns <= t1).all()
    assert (np.diff(j.mono_ns) >= 0).all()
    raw = p.read_bytes()
    assert raw[:8] == b"HMJRNL01"
    assert len(raw) == 64 + 104 * len(cmds) + 160 * len(evs) + 64 * 4
    # first record, byte by byte
    r = raw[64:64 + 104]
    assert int.from_bytes(r[0:4], "little") == 104
    assert int.from_bytes(r[8:16], "little") == 1
    assert int.from_bytes(r[32:34], "little") == fmt.REC_COMMAND
    assert r[40:104] == cmds[:1].tobytes()
    assert int.from_bytes(r[4:8], "little") == crc32c(r[0:4], crc32c(r[8:104]))


def test_policies(tmp_path) -> None:
    cmds, evs = _batch(n=50)
    w = JournalWriter(tmp_path / "a", JournalConfig(DurabilityPolicy.FSYNC_EACH_BATCH))
    w.append_commands(cmds)
    assert w.durable_seq == 0 and w.commit() == len(cmds) + 1 and w.fsyncs == 1
    w.close()
    w = JournalWriter(tmp_path / "b", JournalConfig(DurabilityPolicy.NONE))
    w.append_commands(cmds)
    assert w.commit() == 0 and w.written_seq == len(cmds) + 1 and w.fsyncs == 0
    w.close()
    assert w.fsyncs == 0
    w = JournalWriter(tmp_path / "c", JournalConfig(DurabilityPolicy.FSYNC_INTERVAL,
                                                    fsync_interval_ns=10**12))
    w.append_commands(cmds)
    assert w.commit() == 0  # interval not reached
    w.close()  # close makes it durable
    assert w.durable_seq == len(cmds) + 1 and w.fsyncs == 1
    w = JournalWriter(tmp_path / "d", JournalConfig(DurabilityPolicy.FSYNC_INTERVAL,
                                                    fsync_interval_ns=0))
    w.append_events(evs)
    assert w.commit() == len(evs) + 1
    w.close()
    with pytest.raises(TypeError):
        w.append_commands(evs)


@pytest.mark.parametrize("cut", [1, 7, 39, 40, 41, 63, -100, -5000])
def test_torn_last_group_is_dropped_whole(tmp_path, cut) -> None:
    p = tmp_path / "j.bin"
    cmds, evs = _batch(n=100)
    _write(p, cmds, evs, batches=2, acked=1)  # the second group was never acknowledged
    clean = read_journal(p)
    marks = clean.record_offset[clean.record_type == fmt.REC_MARK]
    size = os.path.getsize(p)
    new_size = size - 64 + cut if cut > 0 else size + cut  # into the last mark / the group
    with open(p, "r+b") as f:
        f.truncate(new_size)
    j = read_journal(p)
    first_end = int(marks[0]) + 64
    assert j.valid_end == first_end and j.torn_bytes == new_size - first_end
    assert j.clean_shutdown is False and j.salvage is None
    c1, e1 = np.array_split(cmds, 2)[0], np.array_split(evs, 2)[0]
    assert np.array_equal(j.commands, c1) and np.array_equal(j.events, e1)
    # reopening for append truncates the torn group and continues the sequence
    w = JournalWriter(p)
    assert w.written_seq == len(c1) + len(e1) + 1
    w.append_commands(cmds[len(c1):])
    w.append_events(evs[len(e1):])
    w.close()
    j2 = read_journal(p)
    assert j2.torn_bytes == 0 and np.array_equal(j2.events, evs)
    assert np.array_equal(j2.commands, cmds)


def test_garbage_tail_and_bad_last_crc_are_torn(tmp_path) -> None:
    p = tmp_path / "j.bin"
    cmds, evs = _batch(n=40)
    _write(p, cmds, evs)
    size = os.path.getsize(p)
    with open(p, "ab") as f:
        f.write(np.random.default_rng(1).integers(0, 256, 333, dtype=np.uint8).tobytes())
    assert read_journal(p).torn_bytes == 333
    with open(p, "r+b") as f:
        f.truncate(size)
        f.seek(size - 20)
        f.write(b"\xff\xff")  # corrupt the last record (the last COMMIT mark)
    # that group was acknowledged: losing it is not a torn tail
    with pytest.raises(AcknowledgedDataLostError, match="CRC"):
        read_journal(p)
    j = read_journal(p, salvage=True)
    assert len(j.events) == len(evs) - len(np.array_split(evs, 4)[-1])
    assert "CRC" in j.torn_reason and j.salvage.lost_commands == len(np.array_split(cmds, 4)[-1])


@pytest.mark.parametrize("what", ["payload", "length", "seq"])
def test_corruption_in_the_middle_reports_offset(tmp_path, what) -> None:
    p = tmp_path / "j.bin"
    cmds, evs = _batch(n=40)
    _write(p, cmds, evs, batches=1)
    k = len(cmds) // 2
    off = 64 + 104 * k  # the k-th command record
    with open(p, "r+b") as f:
        if what == "payload":
            f.seek(off + 60)
            f.write(b"\x55")
        elif what == "length":
            f.seek(off)
            f.write((99).to_bytes(4, "little"))
        else:  # a valid-CRC record with a wrong sequence number
            raw = bytearray(p.read_bytes()[off:off + 104])
            raw[8:16] = (10**6).to_bytes(8, "little")
            c = crc32c(bytes(raw[0:4]), crc32c(bytes(raw[8:104])))
            raw[4:8] = c.to_bytes(4, "little")
            f.seek(off)
            f.write(raw)
    with pytest.raises(JournalCorruptError) as ei:
        read_journal(p)
    assert ei.value.offset == off
    assert str(off) in str(ei.value)
    with pytest.raises(JournalCorruptError):
        JournalWriter(p)  # never appends after silently skipping


def test_bad_file_header(tmp_path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"NOTAJRNL" + bytes(100))
    with pytest.raises(ValueError, match="magic"):
        read_journal(p)
    raw = bytearray(fmt.file_header(123))
    raw[30] ^= 1
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="CRC"):
        read_journal(p)
    assert fmt.parse_file_header(fmt.file_header(123))["created_ns"] == 123


def test_empty_journal(tmp_path) -> None:
    p = tmp_path / "e.bin"
    JournalWriter(p).close()
    j = read_journal(p)
    assert len(j.commands) == 0 and j.last_seq == 0 and j.commands.dtype == COMMAND_DTYPE


def test_on_commit_hands_on_each_written_group_once(tmp_path):
    """``on_commit`` gets the events of every written group, in order, exactly once; a
    consumer that raises does not cut the journal."""
    cmds, evs = _batch(seed=3)
    p = tmp_path / "j.journal"
    w = JournalWriter(p, JournalConfig(DurabilityPolicy.NONE))
    got = []
    w.on_commit = got.append
    parts = np.array_split(evs, 3)
    w.append_events(parts[0])
    assert got == []  # appended, not committed: not handed on
    w.commit()
    w.commit()  # nothing new: no call
    w.append_events(parts[1])

    def boom(ev):
        raise RuntimeError("consumer down")

    w.on_commit = boom
    with pytest.raises(RuntimeError):
        w.commit()
    w.on_commit = got.append
    w.append_events(parts[2])
    w.close()
    assert len(got) == 2 and (got[0] == parts[0]).all() and (got[1] == parts[2]).all()
    c = read_journal(p)
    assert (c.events == evs).all() and c.clean_shutdown  # the failed hand-over cut nothing
