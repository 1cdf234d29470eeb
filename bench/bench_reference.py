"""Reference-path throughput: bulk parse, parse+book (numba), pure-Python book, third parties.

Run: ``.venv/bin/python bench/bench_reference.py [--messages N] [--symbols S] [--seed K]``

One generated stream (host.feed.generator) is measured in one run:

* ``host.feed.bulk.parse_records`` over the whole buffer (msgs/s);
* parse + ``host.feed.fastbook`` BBO trace, chunked 16 MB at a time as ``python -m host bbo`` does
  (rows are produced but not written), and the same one-shot over the whole buffer;
* the pure-Python path ``host.feed.book.bbo_trace`` (decode with host.feed.itch + L3Book) on a
  prefix;
* the whole ``python -m host bbo`` process (start-up, JIT cache load, run, CSV) against a
  whole process of itch-book's Python API;
* ``itchfeed`` (PyPI ``itch``) parse, pure Python (``ITCH_NO_CPP=1``) and, when ``itchcpp`` is
  installed, with its C++ backend; ``itch-book`` (C++ BBO tables) when installed. Third-party
  runs happen in subprocesses so that the backend choice is clean.

Each figure is the best of ``--repeat`` runs after a warm-up (numba JIT caches loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from host.feed.book import L3Book, bbo_trace  # noqa: E402
from host.feed.bulk import parse_records  # noqa: E402
from host.feed.capture import buffer_chunks  # noqa: E402
from host.feed.fastbook import FastBook, bbo_trace_records  # noqa: E402
from host.feed.generator import generate  # noqa: E402


def machine() -> str:
    model = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba

    return (
        f"CPU {model}, {os.cpu_count()} logical cores; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"numba {numba.__version__}"
    )


def best(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def prefix(buf: bytes, n: int) -> tuple[bytes, int]:
    """The first ``n`` framed messages of ``buf``."""
    pos = 0
    k = 0
    while k < n and pos < len(buf):
        pos += 2 + int.from_bytes(buf[pos : pos + 2], "big")
        k += 1
    return buf[:pos], k


_ITCHFEED = """
import os, sys, time, json
from itch.parser import MessageParser
import itch
buf = open(sys.argv[1], "rb").read()
best = 1e9
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    n = sum(1 for _ in MessageParser().parse_stream(buf))
    best = min(best, time.perf_counter() - t)
print(json.dumps({"n": n, "s": best, "cpp": bool(getattr(itch, "USING_CPP_BACKEND", False))}))
"""

_ITCHBOOK = """
import sys, time, json
from itch_book._core import Session
import itch_book
buf = open(sys.argv[1], "rb").read()
best = 1e9
for _ in range(int(sys.argv[2])):
    s = Session(["bbo"], 0, [])
    t = time.perf_counter()
    s.feed(buf)
    rows = len(s.take_bbo()["seq"])
    best = min(best, time.perf_counter() - t)
st = s.stats()
print(json.dumps({"n": st["messages"], "s": best, "rows": rows, "version": itch_book.__version__,
                  "rejected": st.get("rejected"), "missing_ref": st.get("missing_ref")}))
"""


def third_party(code: str, path: str, repeat: int, env: dict | None = None) -> dict | None:
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([sys.executable, "-c", code, path, str(repeat)], capture_output=True,
                       text=True, env=e, timeout=1800)  # fmt: skip
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout)


_ITCHBOOK_PROCESS = """
import sys
import numpy as np
from itch_book._core import Session
s = Session(["bbo"], 0, [])
s.feed(np.frombuffer(open(sys.argv[1], "rb").read(), np.uint8))
print(len(s.take_bbo()["seq"]))
"""


def _wall(argv: list[str], repeat: int) -> tuple[float, str]:
    """Best wall time of a whole process (start-up, imports, JIT cache load, run, exit)."""
    out, ts = "", []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd=ROOT)
        ts.append(time.perf_counter() - t)
        if r.returncode != 0:
            return float("nan"), (r.stderr.strip().splitlines() or ["failed"])[-1]
        out = r.stdout
    return min(ts), out


def whole_process(path: str, repeat: int) -> None:
    """``python -m host bbo FILE --out CSV`` as a user runs it, against itch-book's Python API
    in a process of its own that only builds its BBO table (no CSV written: in its favour)."""
    csv = path + ".csv"
    s_host, _ = _wall([sys.executable, "-m", "host", "bbo", path, "--out", csv, "--no-progress"],
                      repeat)  # fmt: skip
    s_start, _ = _wall([sys.executable, "-m", "host", "--help"], repeat)
    print(f"  whole process: python -m host bbo FILE --out CSV   {s_host:6.2f} s "
          f"(of which start-up, python -m host --help: {s_start:.2f} s)")  # fmt: skip
    if version("itch-book"):
        s_ib, out = _wall([sys.executable, "-c", _ITCHBOOK_PROCESS, path], repeat)
        print(f"  whole process: itch-book {version('itch-book')} Python API, BBO table only  "
              f"{s_ib:6.2f} s  ({out.strip()} rows); host / itch-book = {s_host / s_ib:.2f}")


def version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    try:
        return v(dist)
    except PackageNotFoundError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2_000_000)
    ap.add_argument("--symbols", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", choices=["classic", "realistic"], default="realistic",
                    help="generator profile (itch-book rejects the classic profile's edge "
                    "cases, so only realistic compares like with like)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--python-messages", type=int, default=300_000,
                    help="prefix measured with the pure-Python paths")  # fmt: skip
    a = ap.parse_args()

    print(machine())
    t = time.perf_counter()
    buf = generate(a.messages, a.symbols, a.seed, profile=a.profile)
    gen_s = time.perf_counter() - t
    n = a.messages
    print(
        f"stream: {n} messages, {a.symbols} symbols, seed {a.seed}, profile {a.profile}, "
        f"{len(buf) / 1e6:.1f} MB "
        f"(generated in {gen_s:.2f} s, {n / gen_s / 1e6:.2f} M msg/s incl. JIT load)"
    )

    # warm-up (JIT cache load)
    r0, _ = parse_records(buf[:100_000])
    bbo_trace_records(r0)

    def rate(s: float, m: int = n) -> str:
        return f"{m / s / 1e6:8.2f} M msg/s  ({s:.3f} s)"

    s_parse = best(lambda: parse_records(buf), a.repeat)
    rec, _ = parse_records(buf)
    s_book = best(lambda: bbo_trace_records(rec), a.repeat)
    rows = len(bbo_trace_records(rec)[0])

    def chunked():
        fb = FastBook()
        base = 0
        for ch in buffer_chunks(buf, 16 << 20):
            r, st = parse_records(ch, base_index=base)
            base += st["framed"]
            fb.feed(r, copy=False)

    s_chunked = best(chunked, a.repeat)
    print("host (this project)")
    print(f"  bulk parse (host.feed.bulk.parse_records)        {rate(s_parse)}")
    print(f"  book only (host.feed.fastbook, records given)    {rate(s_book)}  {rows} BBO rows")
    print(f"  parse+book, one shot                        {rate(s_parse + s_book)}")
    print(f"  parse+book, chunked 16 MB (CLI pipeline)    {rate(s_chunked)}")

    pbuf, pn = prefix(buf, a.python_messages)
    s_py = best(lambda: bbo_trace(pbuf, book=L3Book()), 1)
    print(f"  pure-Python decode+book (host.feed.book), {pn} msgs {rate(s_py, pn)}")

    print("third party (same stream)")
    with tempfile.TemporaryDirectory() as d:
        full = os.path.join(d, "full.itch")
        part = os.path.join(d, "part.itch")
        Path(full).write_bytes(buf)
        Path(part).write_bytes(pbuf)
        if version("itchfeed"):
            r = third_party(_ITCHFEED, part, 1, {"ITCH_NO_CPP": "1"})
            line = rate(r["s"], r["n"]) if "s" in r else r["error"]
            print(f"  itchfeed {version('itchfeed')} parse, pure Python, {pn} msgs {line}")
            if version("itchcpp"):
                r = third_party(_ITCHFEED, full, a.repeat)
                line = rate(r["s"], r["n"]) if "s" in r else r["error"]
                print(f"  itchfeed + itchcpp {version('itchcpp')} parse (C++ backend, Python "
                      f"message objects) {line}")  # fmt: skip
            print("  itchfeed has no order book: book figures n/a")
        else:
            print("  itchfeed not installed")
        whole_process(full, a.repeat)
        if version("itch-book"):
            r = third_party(_ITCHBOOK, full, a.repeat)
            if "s" in r:
                print(f"  itch-book {r['version']} parse+BBO (C++)                 "
                      f"{rate(r['s'], r['n'])}  {r['rows']} BBO rows, rejected adds "
                      f"{r['rejected']}, missing refs {r['missing_ref']}")  # fmt: skip
            else:
                print(f"  itch-book: {r['error']}")
        else:
            print("  itch-book not installed (pip install itch-book)")


if __name__ == "__main__":
    main()
