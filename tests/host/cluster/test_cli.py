"""``python -m host cluster up|status|session|publish|down`` end to end, and its errors."""

from __future__ import annotations

import json
import re

import pytest

from host.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_errors_are_one_line(capsys, tmp_path, itch_day):
    code, out, err = _run(capsys, "cluster", "status", "--dir", str(tmp_path))
    assert code == 1 and err.count("\n") == 1 and "no cluster" in err
    code, _, err = _run(capsys, "cluster", "down", "--dir", str(tmp_path))
    assert code == 1 and "cluster up" in err
    code, _, err = _run(capsys, "cluster", "up", "--shards", "0", "--dir", str(tmp_path))
    assert code == 1 and "--shards" in err and err.count("\n") == 1
    code, _, err = _run(capsys, "cluster", "session", str(tmp_path / "missing.itch"),
                        "--local")
    assert code == 1 and err.count("\n") == 1
    from host.cluster.server import free_port

    nowhere = f"nats://127.0.0.1:{free_port()}"  # nothing listens there: fails, never hangs
    for argv in (("session", str(itch_day), "--nats", nowhere),
                 ("publish", str(itch_day), "--nats", nowhere),
                 ("up", "--nats", nowhere, "--dir", str(tmp_path / "u"))):
        code, _, err = _run(capsys, "cluster", *argv)
        assert code == 1 and err.count("\n") == 1 and "cannot reach NATS" in err, err
    assert not (tmp_path / "u" / "cluster.json").exists()
    (tmp_path / "cluster.json").write_text("{nope")
    code, _, err = _run(capsys, "cluster", "status", "--dir", str(tmp_path))
    assert code == 1 and "not a cluster state file" in err


def test_up_status_session_publish_down(capsys, tmp_path, itch_day, warm_kernels):
    d = str(tmp_path / "c")
    code, out, _ = _run(capsys, "cluster", "up", "--shards", "2", "--dir", d)
    try:
        assert code == 0, out
        state = json.loads((tmp_path / "c" / "cluster.json").read_text())
        assert [r["role"] for r in state["replicas"]] == ["primary", "primary"]
        code, out, _ = _run(capsys, "cluster", "status", "--dir", d)
        assert code == 0 and "running" in out and out.count(": primary, requests applied") == 2
        assert "supervisor: pid" in out and "running" in out
        code, out, _ = _run(capsys, "cluster", "up", "--shards", "1", "--dir", d)
        assert code == 1  # already up
        code, sharded, _ = _run(capsys, "cluster", "session", str(itch_day), "--dir", d)
        assert code == 0, sharded
        code, local, _ = _run(capsys, "cluster", "session", str(itch_day), "--local",
                              "--dir", str(tmp_path / "l"))
        assert code == 0

        def digests(text):
            return re.findall(r"journal ([0-9a-f]{32})", text)

        assert len(digests(sharded)) == 4 and digests(sharded) == digests(local)
        assert re.search(r"trades ([0-9,]+)", sharded).group(1) == \
            re.search(r"trades ([0-9,]+)", local).group(1)
        code, out, _ = _run(capsys, "cluster", "publish", str(itch_day), "--dir", d,
                            "--verify")
        assert code == 0 and "subjects differing 0" in out, out
        code, out, _ = _run(capsys, "cluster", "publish", str(itch_day), "--dir", d,
                            "--verify", "--symbols", "1")
        assert code == 0 and "subjects differing 0" in out, out  # the stream grew, still ok
    finally:
        code, out, _ = _run(capsys, "cluster", "down", "--dir", d)
    assert code == 0 and out.count("stopped") == 4, out  # supervisor, 2 replicas, nats
    code, _, err = _run(capsys, "cluster", "status", "--dir", d)
    assert code == 1
    with pytest.raises(SystemExit):
        main(["cluster", "nope"])
