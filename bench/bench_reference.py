"""Reference-path throughput: bulk parse, parse+book (C and numba), pure-Python book, third parties.

Run: ``.venv/bin/python bench/bench_reference.py [--messages N] [--symbols S] [--seed K]``
(``--whole-process-only`` for the start-up comparison alone).

One generated stream (host.feed.generator, ``--profile realistic`` by default) is measured:

* ``host.feed.bulk.parse_records`` over the whole buffer (msgs/s);
* parse + ``host.feed.fastbook`` BBO trace on both backends: numba (records from
  ``parse_records``, chunked 16 MB at a time as ``python -m host bbo`` did) and C (raw bytes,
  ``FastBook.feed_bytes``, chunked as ``python -m host bbo`` does now); rows are produced but
  not written;
* the pure-Python path ``host.feed.book.bbo_trace`` (decode with host.feed.itch + L3Book) on a
  prefix;
* whole processes, as a user runs them: ``python -m host bbo FILE --out CSV`` on the C backend
  and on the numba backend (``ITCHFPGA_FASTBOOK=numba``), ``python -m host --help`` and
  ``python -m host bbo --help`` (start-up), and a process of itch-book's Python API that reads
  the file and builds its BBO table (no CSV written: in its favour). The commands are run in
  turn (round-robin), so a change of load on the machine hits all of them alike; wall time and
  CPU time (user + system of the child) are reported;
* ``itchfeed`` (PyPI ``itch``) parse, pure Python (``ITCH_NO_CPP=1``) and, when ``itchcpp`` is
  installed, with its C++ backend; ``itch-book`` (C++ BBO tables) when installed. Third-party
  runs happen in subprocesses so that the backend choice is clean.

Each figure is the median of ``--repeat`` runs after a warm-up (C library built, numba JIT
caches loaded); the pure-Python prefix is run once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
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
from host.feed.fastbook import (  # noqa: E402
    FastBook,
    bbo_trace_records,
    c_library_error,
    scan,
)
from host.feed.fastbook import backend as fastbook_backend  # noqa: E402
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
    """Median wall time of ``repeat`` calls (the name is historical)."""
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


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
ts = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    n = sum(1 for _ in MessageParser().parse_stream(buf))
    ts.append(time.perf_counter() - t)
print(json.dumps({"n": n, "s": sorted(ts)[len(ts) // 2],
                  "cpp": bool(getattr(itch, "USING_CPP_BACKEND", False))}))
"""

_ITCHBOOK = """
import sys, time, json
from itch_book._core import Session
import itch_book
buf = open(sys.argv[1], "rb").read()
ts = []
for _ in range(int(sys.argv[2])):
    s = Session(["bbo"], 0, [])
    t = time.perf_counter()
    s.feed(buf)
    rows = len(s.take_bbo()["seq"])
    ts.append(time.perf_counter() - t)
st = s.stats()
print(json.dumps({"n": st["messages"], "s": sorted(ts)[len(ts) // 2], "rows": rows,
                  "version": itch_book.__version__,
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


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _once(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall and CPU seconds of one whole process (start-up, imports, run, exit), its stdout."""
    e = dict(os.environ)
    e.update(env or {})
    c = _child_cpu()
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd=ROOT, env=e)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{argv}: {(r.stderr.strip().splitlines() or ['failed'])[-1]}")
    return wall, _child_cpu() - c, r.stdout


def whole_process(path: str, repeat: int) -> dict:
    """``python -m host bbo FILE --out CSV`` as a user runs it (C and numba backends), the CLI
    start-up, and itch-book's Python API in a process of its own that only builds its BBO
    table. Round-robin, ``repeat`` rounds after one warm-up round; medians."""
    csv = path + ".csv"
    bbo = [sys.executable, "-m", "host", "bbo", path, "--out", csv, "--no-progress"]
    runs = {
        "host bbo, C backend": (bbo, {"ITCHFPGA_FASTBOOK": "c"}),
        "host bbo, numba backend": (bbo, {"ITCHFPGA_FASTBOOK": "numba"}),
        "python -m host --help": ([sys.executable, "-m", "host", "--help"], None),
        "python -m host bbo --help": ([sys.executable, "-m", "host", "bbo", "--help"], None),
    }
    if version("itch-book"):
        runs[f"itch-book {version('itch-book')} Python API, BBO table only"] = (
            [sys.executable, "-c", _ITCHBOOK_PROCESS, path], None)  # fmt: skip
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    outs = {}
    for rnd in range(repeat + 1):
        for name, (argv, env) in runs.items():
            wall, cpu, out = _once(argv, env)
            outs[name] = out
            if rnd:  # round 0 is the warm-up (C library built, numba caches written)
                times[name].append((wall, cpu))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in times.items()}  # fmt: skip
    print(f"  whole process, median of {repeat} round-robin rounds: wall s / CPU s (user+sys)")
    for name, (w, c) in med.items():
        print(f"    {name:<52} {w:6.2f} {c:6.2f}")
    ib = [k for k in med if k.startswith("itch-book")]
    if ib:
        rows = outs[ib[0]].strip()
        hw, hc = med["host bbo, C backend"]
        iw, ic = med[ib[0]]
        print(f"    ({rows} itch-book rows); host bbo (C) / itch-book: wall {hw / iw:.2f}, "
              f"CPU {hc / ic:.2f}")  # fmt: skip
    return med


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
    ap.add_argument(
        "--profile",
        choices=["classic", "realistic"],
        default="realistic",
        help="generator profile (itch-book rejects the classic profile's edge "
        "cases, so only realistic compares like with like)",
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--whole-process-only",
        action="store_true",
        help="only the whole-process comparison (python -m host bbo vs itch-book)",
    )
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

    if a.whole_process_only:
        with tempfile.TemporaryDirectory() as d:
            full = os.path.join(d, "full.itch")
            Path(full).write_bytes(buf)
            whole_process(full, a.repeat)
        return

    # warm-up (JIT cache load, C library build)
    r0, _ = parse_records(buf[:100_000])
    bbo_trace_records(r0)
    FastBook(backend="numba").feed(r0)

    def rate(s: float, m: int = n) -> str:
        return f"{m / s / 1e6:8.2f} M msg/s  ({s:.3f} s)"

    s_parse = best(lambda: parse_records(buf), a.repeat)
    rec, _ = parse_records(buf)
    s_book = best(lambda: FastBook(backend="numba").feed(rec), a.repeat)
    rows = len(bbo_trace_records(rec)[0])
    has_c = fastbook_backend() == "c"
    s_book_c = best(lambda: FastBook(backend="c").feed(rec), a.repeat) if has_c else None

    def chunked():
        fb = FastBook(backend="numba")
        base = 0
        for ch in buffer_chunks(buf, 16 << 20):
            r, st = parse_records(ch, base_index=base)
            base += st["framed"]
            fb.feed(r, copy=False)

    def chunked_c():
        fb = FastBook(backend="c")
        base = 0
        for ch in buffer_chunks(buf, 16 << 20):
            fb.feed_bytes(ch, base_index=base, copy=False)
            base += scan(ch)[0]["framed"]

    s_chunked = best(chunked, a.repeat)
    print("host (this project)")
    print(f"  bulk parse (host.feed.bulk.parse_records)        {rate(s_parse)}")
    print(f"  book only, numba (records given)                 {rate(s_book)}  {rows} BBO rows")
    if has_c:
        print(f"  book only, C (records given)                     {rate(s_book_c)}")
    print(f"  parse+book numba, one shot                  {rate(s_parse + s_book)}")
    print(f"  parse+book numba, chunked 16 MB (records)   {rate(s_chunked)}")
    if has_c:
        s_fused = best(chunked_c, a.repeat)
        print(f"  parse+book C, chunked 16 MB (bytes; CLI)    {rate(s_fused)}")
    else:
        print(f"  C backend not available: {c_library_error()}")

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
