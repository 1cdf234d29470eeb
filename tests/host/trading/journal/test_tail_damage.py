"""Damage at the end of a journal (issue 15): a torn, never acknowledged group is dropped;
lost acknowledged groups raise a typed error, never a silent truncation; ``salvage=True``
cuts and reports exactly what it cut."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from host.trading.journal import (
    AcknowledgedDataLostError,
    JournalConfig,
    JournalCorruptError,
    JournaledEngine,
    JournalWriter,
    ack_path,
    read_journal,
    recover,
)
from host.trading.journal import format as fmt
from host.trading.matching import MatchingEngine
from host.trading.matching.workload import WorkloadSpec, mixed_workload, workload_config

SPEC = WorkloadSpec(n_resting=200, n_instruments=2)
BATCHES = 4


def _cmds(n: int = 600) -> np.ndarray:
    pre, ops = mixed_workload(n, SPEC, seed=3)
    return np.concatenate([pre, ops])


@pytest.fixture
def journal(tmp_path):
    """A cleanly closed journal of BATCHES acknowledged groups; returns (path, groups)."""
    p = tmp_path / "j"
    je, _ = JournaledEngine.open(p, config=workload_config(SPEC))
    parts = np.array_split(_cmds(), BATCHES)
    for part in parts:
        je.process(part)
    je.close()
    return p, parts


def _group_ends(p) -> list[int]:
    j = read_journal(p)
    return [int(o) + 64 for o in j.record_offset[j.record_type == fmt.REC_MARK]]


def _damage(p, how: str) -> None:
    size = os.path.getsize(p)
    ends = _group_ends(p)
    with open(p, "r+b") as f:
        if how == "flip_last_commit":
            f.seek(size - 30)
            b = f.read(1)
            f.seek(size - 30)
            f.write(bytes([b[0] ^ 0x10]))
        elif how == "zero_last_4k":
            f.seek(size - 4096)
            f.write(bytes(4096))
        elif how == "cut_half":
            f.truncate(size // 2)
        elif how == "cut_at_group_boundary":
            f.truncate(ends[1])  # exactly after the second group: nothing torn to see
        else:
            raise AssertionError(how)


def _lost(parts, p_damaged_ok_groups: int) -> int:
    return sum(len(x) for x in parts[p_damaged_ok_groups:])


@pytest.mark.parametrize("how", ["flip_last_commit", "zero_last_4k", "cut_half",
                                 "cut_at_group_boundary"])
def test_lost_acknowledged_groups_raise_and_salvage_reports(journal, how) -> None:
    p, parts = journal
    full = read_journal(p)
    _damage(p, how)
    before = p.read_bytes()
    cfg = workload_config(SPEC)
    for attempt in (lambda: read_journal(p), lambda: recover(p, config=cfg),
                    lambda: JournaledEngine.open(p, config=cfg), lambda: JournalWriter(p)):
        with pytest.raises(AcknowledgedDataLostError) as ei:
            attempt()
        assert isinstance(ei.value, JournalCorruptError)  # old handlers still catch it
        assert ei.value.acknowledged_commands == sum(len(x) for x in parts)
        assert ei.value.recovered_commands < ei.value.acknowledged_commands
    assert p.read_bytes() == before, "a refused open must not touch the file"

    # salvage: keeps the valid prefix, reports exactly what it cuts
    j = read_journal(p, salvage=True)
    s = j.salvage
    assert s is not None and s.cut_offset == j.valid_end
    assert s.cut_bytes == len(before) - j.valid_end
    kept = len(j.commands)
    assert s.recovered_commands == kept and s.recovered_seq == j.last_seq
    assert s.acknowledged_commands == len(full.commands)
    assert s.lost_commands == len(full.commands) - kept > 0
    assert s.lost_records == full.last_seq - j.last_seq
    assert np.array_equal(j.commands, full.commands[:kept])
    # the CRC-valid records found in the cut are counted, never kept
    cut = (full.record_offset >= s.cut_offset) & (full.record_offset + 64 <= len(before))
    if how == "flip_last_commit":
        assert s.cut_commands == len(parts[-1]) and s.cut_marks == 0
        assert s.cut_events == int(np.count_nonzero(
            full.record_type[cut] == fmt.REC_EVENT))
    if how == "cut_at_group_boundary":
        assert s.cut_bytes == 0 and kept == len(parts[0]) + len(parts[1])
        assert "group boundary" in s.reason
    assert str(s.lost_commands) in s.describe()

    eng, rep = recover(p, config=cfg, salvage=True)
    assert rep.salvage == s and eng.command_seq == kept
    ref = MatchingEngine(cfg)
    ref.process(full.commands[:kept])
    assert eng.state_hash() == ref.state_hash()

    # an open with salvage cuts the file there, and the journal is usable again
    je, rep = JournaledEngine.open(p, config=cfg, salvage=True)
    assert rep.salvage.lost_commands == s.lost_commands
    assert os.path.getsize(p) == s.cut_offset
    je.process(full.commands[kept:])
    je.close()
    eng2, rep2 = recover(p, config=cfg)
    ref.process(full.commands[kept:])
    assert eng2.state_hash() == ref.state_hash() and rep2.salvage is None
    assert rep2.clean_shutdown is True


def test_torn_never_acknowledged_group_is_dropped(tmp_path) -> None:
    p = tmp_path / "j"
    cfg = workload_config(SPEC)
    cmds = _cmds()
    je, _ = JournaledEngine.open(p, config=cfg)
    je.process(cmds[:300])
    side = open(ack_path(p), "rb").read()
    je.process(cmds[300:])
    je.close()
    # killed while writing the second group: half of it reached the file, no acknowledgement
    end1 = _group_ends(p)[0]
    with open(p, "r+b") as f:
        f.truncate(end1 + (os.path.getsize(p) - end1) // 2)
    open(ack_path(p), "wb").write(side)
    eng, rep = recover(p, config=cfg)
    assert eng.command_seq == 300 and rep.torn_bytes > 0 and rep.salvage is None
    assert rep.clean_shutdown is False and rep.ack_known
    je, rep = JournaledEngine.open(p, config=cfg)  # truncates the torn group, no salvage
    assert os.path.getsize(p) == end1
    je.close()


def test_clean_and_unclean_shutdown_reported(tmp_path) -> None:
    p = tmp_path / "j"
    cfg = workload_config(SPEC)
    je, _ = JournaledEngine.open(p, config=cfg)
    je.process(_cmds(50))
    assert read_journal(p).clean_shutdown is False  # open: a crash now is unclean
    je.close()
    assert read_journal(p).clean_shutdown is True


def test_missing_sidecar(journal, tmp_path) -> None:
    p, parts = journal
    os.unlink(ack_path(p))
    j = read_journal(p)  # intact file: readable, but the check could not be made
    assert not j.ack_known and j.clean_shutdown is None
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 10)
    with pytest.raises(AcknowledgedDataLostError, match="sidecar"):
        read_journal(p)
    j = read_journal(p, salvage=True)
    assert j.salvage.lost_commands is None and j.salvage.cut_commands == len(parts[-1])
    assert "unknown" in j.salvage.describe()


def test_stale_sidecar_of_a_deleted_journal_is_ignored(journal, tmp_path) -> None:
    p, parts = journal
    stale = tmp_path / "stale.ack"
    shutil.copy(ack_path(p), stale)
    os.unlink(p)  # a session deletes its old journal but leaves the sidecar
    je, rep = JournaledEngine.open(p, config=workload_config(SPEC))
    assert rep is None
    je.process(parts[0])
    je.close()
    assert len(read_journal(p).commands) == len(parts[0])
    # the old sidecar (another journal id) next to the new journal is not trusted either
    shutil.copy(stale, ack_path(p))
    assert not read_journal(p).ack_known


def test_corruption_in_the_middle_salvage(journal) -> None:
    p, parts = journal
    full = read_journal(p)
    off = int(full.record_offset[5])  # a command record of the first group
    with open(p, "r+b") as f:
        f.seek(off + 50)
        f.write(b"\x00\x01")
    with pytest.raises(JournalCorruptError):
        read_journal(p)
    j = read_journal(p, salvage=True)
    assert len(j.commands) == 0 and j.salvage.cut_offset == 64
    assert j.salvage.cut_commands == len(full.commands) - 1  # all but the damaged record
    assert j.salvage.lost_commands == len(full.commands)


def test_interval_and_none_policies_record_acknowledgements(tmp_path) -> None:
    from host.trading.journal import DurabilityPolicy, read_ack

    for pol in (DurabilityPolicy.FSYNC_INTERVAL, DurabilityPolicy.NONE):
        p = tmp_path / pol.value
        je, _ = JournaledEngine.open(p, config=workload_config(SPEC),
                                     journal_config=JournalConfig(pol, fsync_interval_ns=10**12))
        je.process(_cmds(50))
        hdr = fmt.parse_file_header(p.read_bytes())
        a = read_ack(p, hdr["created_ns"])
        # written and acknowledged (survives a process crash), not yet fsynced
        assert a.written_seq == je.writer.written_seq and a.durable_seq == 0
        je.close()
        _damage(p, "cut_half")
        with pytest.raises(AcknowledgedDataLostError):
            recover(p, config=workload_config(SPEC))
