"""``python -m host journal check|repair`` (issue 15, item 2): damage to acknowledged data is
reported and refused without ``--salvage``; ``--salvage`` cuts, reports and keeps the original;
a never-acknowledged torn tail is dropped; no traceback on any input."""

from __future__ import annotations

import os

import numpy as np
import pytest

from host.cli import main
from host.trading.journal import JournaledEngine, read_journal
from host.trading.matching.workload import WorkloadSpec, mixed_workload, workload_config

SPEC = WorkloadSpec(n_resting=100, n_instruments=2)


@pytest.fixture
def journal(tmp_path):
    p = tmp_path / "venue.journal"
    je, _ = JournaledEngine.open(p, config=workload_config(SPEC))
    pre, ops = mixed_workload(400, SPEC, seed=5)
    for part in np.array_split(np.concatenate([pre, ops]), 4):
        je.process(part)
    je.close()
    return p


def _flip_last_commit(p) -> None:
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.seek(size - 30)
        b = f.read(1)
        f.seek(size - 30)
        f.write(bytes([b[0] ^ 0x10]))


def test_check_intact(journal, capsys) -> None:
    assert main(["journal", "check", str(journal)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "clean shutdown" in out


def test_check_and_repair_refuse_lost_acknowledged_data(journal, capsys) -> None:
    _flip_last_commit(journal)
    before = journal.read_bytes()
    assert main(["journal", "check", str(journal)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "--salvage" in out
    assert main(["journal", "repair", str(journal)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing changed" in err and "Traceback" not in err
    assert journal.read_bytes() == before  # refused: not one byte changed


def test_repair_salvage_cuts_reports_and_keeps_original(journal, capsys) -> None:
    good = read_journal(journal)
    _flip_last_commit(journal)
    damaged = journal.read_bytes()
    assert main(["journal", "repair", str(journal), "--salvage"]) == 0
    out = capsys.readouterr().out
    assert "salvage cut" in out and "acknowledged records" in out
    backups = [f for f in os.listdir(journal.parent) if ".damaged-" in f]
    assert len(backups) == 1
    assert (journal.parent / backups[0]).read_bytes() == damaged
    # the journal now reads cleanly: a prefix of what was there, last group gone
    assert main(["journal", "check", str(journal)]) == 0
    j = read_journal(journal)
    assert 0 < len(j.commands) < len(good.commands)
    assert np.array_equal(j.commands, good.commands[: len(j.commands)])


def test_repair_drops_never_acknowledged_torn_tail(journal, capsys) -> None:
    n = read_journal(journal).last_seq
    with open(journal, "ab") as f:
        f.write(b"\x17" * 100)  # a torn write after the last acknowledged group
    assert main(["journal", "check", str(journal)]) == 0
    assert "torn tail 100 bytes" in capsys.readouterr().out
    assert main(["journal", "repair", str(journal)]) == 0
    assert "dropped a torn tail of 100 bytes" in capsys.readouterr().out
    assert read_journal(journal).last_seq == n
    assert read_journal(journal).torn_bytes == 0
    assert not [f for f in os.listdir(journal.parent) if ".damaged-" in f]


@pytest.mark.parametrize("content", [b"", b"not a journal at all" * 10, b"\0" * 64])
def test_foreign_files_are_one_line_errors(tmp_path, capsys, content) -> None:
    p = tmp_path / "x.journal"
    p.write_bytes(content)
    rc = main(["journal", "check", str(p)])
    out = capsys.readouterr()
    assert rc in (0, 1) and "Traceback" not in out.out + out.err
    if content:
        assert rc == 1
    rc = main(["journal", "repair", str(p)])
    assert rc in (0, 1) and "Traceback" not in capsys.readouterr().err


def test_missing_and_directory(tmp_path, capsys) -> None:
    assert main(["journal", "check", str(tmp_path / "nope")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["journal", "repair", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err


def test_session_risk_journal_reads(tmp_path, capsys) -> None:
    """The risk journal `session` writes is the same format: `check` validates it."""
    from host.trading.risk.journal import RiskJournal

    p = tmp_path / "risk.journal"
    RiskJournal(p).close()
    assert main(["journal", "check", str(p)]) == 0
