"""host.feed.fastbook's C backend: the same book as the numba backend and the reference L3Book.

The C kernels (``host/feed/fastbook.c``) are compared with the numba kernels
(``host/feed/fastbook_jit.py``) and with :class:`host.feed.book.L3Book` on the same inputs:
traces, anomaly counts, live orders, full depth and the raw table contents, on random
operation sequences, classic and realistic generator streams, and hostile bytes (the fuzz
corpus of test_fuzz_readers). The C parser (:meth:`FastBook.feed_bytes`, :func:`scan`,
:func:`stock_directory`) is compared with :func:`host.feed.bulk.parse_records`, and the
whole ``bbo`` / ``stats`` run of the C path with the numba path (CSV bytes and summary).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.feed import fastbook
from host.feed.book import BBO_DTYPE, L3Book, bbo_trace, write_bbo_csv
from host.feed.bulk import parse_records
from host.feed.capture import buffer_chunks
from host.feed.fastbook import FastBook, bbo_csv_bytes, scan, stock_directory
from host.feed.generator import generate
from tests.host.feed.test_book import add, frame, op_sequences
from tests.host.feed.test_fastbook import assert_same_state
from tests.host.feed.test_fuzz_readers import SEED_STREAM, mutated

REPO = Path(__file__).resolve().parents[3]
HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def c_backend():
    """The C backend must build wherever a C compiler exists (CI has one: make apt-deps)."""
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler: only the numba backend exists here")
    assert fastbook.c_library() is not None, fastbook.c_library_error()
    assert fastbook.backend() in ("c", "numba")


TABLES = ("okey", "odat", "boff", "blen", "bcap", "lkey", "lsz", "lct", "anom")


def run_both(rec, **kw):
    out = {}
    for be in ("numba", "c"):
        fb = FastBook(backend=be, **kw)
        out[be] = (fb, fb.feed(rec))
    return out


def assert_same_tables(a: FastBook, b: FastBook) -> None:
    """Step-for-step the same code: every array of the two books is equal, slot for slot."""
    for name in TABLES:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.state[:2], b.state[:2])  # live orders, pool used (not rows)


def test_numba_kernels_use_the_same_constants():
    from host.feed import fastbook_jit

    for name in ("INIT_LEVELS", "ASK_FLIP", "_MUL", "_BAD_SIDE", "_REPL_DUP", "_GROW_OUT"):
        assert getattr(fastbook_jit, name) == getattr(fastbook, name), name


@settings(max_examples=80, deadline=None)
@given(op_sequences())
def test_random_sequences_c_equals_numba_and_reference(ops):
    buf = frame(ops)
    rec, _ = parse_records(buf)
    r = run_both(rec, order_capacity=16, pool_levels=16)  # every growth path
    ref_book = L3Book()
    ref = bbo_trace(buf, book=ref_book)
    (fn, tn), (fc, tc) = r["numba"], r["c"]
    assert tc.dtype == BBO_DTYPE and len(tc) == len(ref) and (tc == ref).all()
    assert (tn == tc).all()
    assert_same_state(fc, ref_book)
    assert_same_tables(fn, fc)
    fb = FastBook(backend="c", order_capacity=16, pool_levels=16)
    assert (fb.feed_bytes(buf) == ref).all()
    assert_same_tables(fb, fc)


@pytest.mark.parametrize("profile, n, symbols", [("classic", 80_000, 12),
                                                 ("realistic", 80_000, 8)])  # fmt: skip
def test_generator_streams_c_equals_numba_and_reference(profile, n, symbols):
    buf = generate(n, symbols, 5, profile=profile)
    rec, _ = parse_records(buf)
    ref_book = L3Book()
    ref = bbo_trace(buf, book=ref_book)
    keep = sorted(ref_book.symbols)[::2]
    for locates in (None, keep):
        r = run_both(rec, locates=locates, order_capacity=64, pool_levels=64)
        want = ref if locates is None else ref[np.isin(ref["locate"], keep)]
        (fn, tn), (fc, tc) = r["numba"], r["c"]
        assert len(tc) == len(want) > 100 and (tc == want).all() and (tn == tc).all()
        assert_same_tables(fn, fc)
        # chunked raw bytes, with the running message index, as python -m host bbo does
        fb = FastBook(locates, backend="c", order_capacity=64, pool_levels=64)
        base, parts = 0, []
        for ch in buffer_chunks(buf, 100_003):
            parts.append(fb.feed_bytes(ch, base_index=base, copy=False).copy())
            base += scan(ch)[0]["framed"]
        assert (np.concatenate(parts) == want).all()
        assert_same_tables(fb, fc)
    assert_same_state(fc, ref_book)


def _check_hostile(buf: bytes) -> None:
    rec, st = parse_records(buf)
    cst, per_type = scan(buf)
    assert cst == st
    types, counts = np.unique(rec["msg_type"], return_counts=True)
    assert dict(zip(types.tolist(), counts.tolist(), strict=True)) == {
        int(t): int(per_type[t]) for t in np.flatnonzero(per_type)
    }
    r = rec[rec["msg_type"] == ord("R")]
    from host.cli.feed import _symbol_of

    want = list(zip(r["stock_locate"].tolist(), _symbol_of(r["stock"]), strict=True))
    assert stock_directory(buf, int(per_type[ord("R")])) == want
    (fn, tn), (fc, tc) = run_both(rec, order_capacity=16, pool_levels=16).values()
    assert (tn == tc).all() and fn.anomalies == fc.anomalies
    assert_same_tables(fn, fc)
    fb = FastBook(backend="c")
    assert np.array_equal(fb.feed_bytes(buf, base_index=7)["msg_index"], tc["msg_index"] + 7)
    fb = FastBook(backend="c", order_capacity=16, pool_levels=16)
    tb = fb.feed_bytes(buf)
    assert (tb == tc).all() and fb.anomalies == fc.anomalies
    assert_same_tables(fb, fc)


@HOSTILE
@given(mutated(SEED_STREAM[:4000]))
def test_mutated_streams_c_parser_and_book(buf):
    _check_hostile(buf)


@HOSTILE
@given(st.binary(max_size=600))
def test_random_bytes_c_parser_and_book(buf):
    _check_hostile(buf)


def test_hostile_cases_by_name():
    """Truncation, zero length, bad lengths, unknown types and refs, each counted the same."""
    good = frame([add(1), add(2, "S", 101_0000), add(3, px=99_0000)])
    unknown = frame([add(5), bytes([ord("D")]) + bytes(18)])  # D of an unknown ref (0)
    for buf in (
        good[:-3],  # truncated message
        good[:1],  # truncated length prefix
        good + b"\x00\x00" + good,  # zero length: the walk stops
        b"\x00\x05Zabcd" + good,  # unknown type, skipped by its length
        b"\x00\x03A\x00\x01" + good,  # an A shorter than the spec: bad_length
        unknown,
        good + frame([add(1)]),  # duplicate add
    ):
        _check_hostile(buf)
    fb = FastBook(backend="c")
    fb.feed_bytes(unknown)
    assert fb.anomalies["unknown_ref"] == 1


def test_csv_c_equals_numba_and_reference(tmp_path, monkeypatch):
    buf = generate(20_000, 4, 2)
    ref = bbo_trace(buf)
    with open(tmp_path / "ref.csv", "w", newline="") as fh:
        write_bbo_csv(fh, ref)
    extra = {"valid": np.arange(len(ref)) % 2, "stale": np.zeros(len(ref), np.int64)}
    got = {}
    for be in ("numba", "c"):
        monkeypatch.setenv(fastbook.BACKEND_ENV, be)
        got[be] = (bbo_csv_bytes(ref, header=True), bbo_csv_bytes(ref, header=True, extra=extra),
                   bbo_csv_bytes(ref[:0], header=True))  # fmt: skip
    assert got["c"] == got["numba"]
    assert got["c"][0] == (tmp_path / "ref.csv").read_bytes()
    # a plain (non-structured-dtype) source of the same columns gives the same text
    loose = {c: ref[c].astype(np.int64) for c in BBO_DTYPE.names}
    monkeypatch.setenv(fastbook.BACKEND_ENV, "c")
    assert bbo_csv_bytes(np.rec.fromarrays(list(loose.values()), names=list(loose)),
                         header=True) == got["c"][0]  # fmt: skip


def test_backend_choice(monkeypatch):
    monkeypatch.setenv(fastbook.BACKEND_ENV, "numba")
    assert FastBook().backend == "numba"
    monkeypatch.setenv(fastbook.BACKEND_ENV, "c")
    assert FastBook().backend == "c"
    assert FastBook(backend="numba").backend == "numba"
    monkeypatch.setenv(fastbook.BACKEND_ENV, "gpu")
    with pytest.raises(ValueError):
        FastBook()


def _run(argv, env=None, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, *argv], capture_output=True, env=e, cwd=REPO,
                          timeout=300, **kw)  # fmt: skip


_NO_NUMBA = """
import sys
from host.cli import main
code = main(sys.argv[1:])
print("numba imported" if "numba" in sys.modules else "no numba", file=sys.stderr)
sys.exit(code)
"""


def test_bbo_on_a_plain_file_does_not_import_numba(tmp_path):
    """The whole point: start-up of ``python -m host bbo FILE`` without numba."""
    f = tmp_path / "s.itch"
    f.write_bytes(generate(5000, 3, 1))
    r = _run(["-c", _NO_NUMBA, "bbo", str(f), "--out", str(tmp_path / "o.csv")])
    assert r.returncode == 0 and r.stderr.decode().strip().endswith("no numba"), r.stderr
    r = _run(["-c", _NO_NUMBA, "stats", str(f)])
    assert r.returncode == 0 and r.stderr.decode().strip().endswith("no numba"), r.stderr
    help_code = (
        "import sys\nfrom host.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\nprint('numba' in sys.modules)"
    )
    for argv in (["--help"], ["bbo", "--help"]):
        r = _run(["-c", help_code, *argv])
        assert r.returncode == 0 and r.stdout.strip().endswith(b"False"), r


def test_no_compiler_or_a_broken_one_falls_back_to_numba(tmp_path):
    """Without a compiler the numba backend runs, silently; a failing compiler is one warning
    line on stderr. Either way the CSV is byte-identical."""
    f = tmp_path / "s.itch"
    f.write_bytes(generate(8000, 3, 4))
    outs = {}
    for name, env in (("c", {}), ("none", {"CC": str(tmp_path / "no-such-cc")}),
                      ("broken", {"CC": "false"})):  # fmt: skip
        out = tmp_path / f"{name}.csv"
        r = _run(["-m", "host", "bbo", str(f), "--out", str(out)], env)
        assert r.returncode == 0, r.stderr
        outs[name] = out.read_bytes()
        err = r.stderr.decode()
        if name == "broken":
            assert err.startswith("warning: fast book:") and err.count("\n") == 1, err
        else:
            assert err == "", err
    assert outs["none"] == outs["c"] == outs["broken"]


# --- the command line: python -m host bbo|stats on the C path against the numba path ---------


def _hostile_files(d: Path) -> dict[str, Path]:
    classic = generate(40_000, 6, 3)
    realistic = generate(40_000, 6, 3, profile="realistic")
    junk = np.random.default_rng(1).bytes(5000)
    cases = {
        "classic": classic,
        "realistic": realistic,
        "truncated": realistic[: len(realistic) // 2 + 7],
        "zero_length": classic[:300_000] + b"\x00\x00" + classic[300_000:],
        # garbage after a clean head: unknown types, bad lengths, whatever it frames as
        "garbage": realistic[:200_000] + junk + realistic[200_000:],
        # the book's references scrambled: unknown refs, oversize executions, duplicates
        "unknown_refs": _scramble_refs(classic),
    }
    out = {}
    for name, data in cases.items():
        p = d / f"{name}.itch"
        p.write_bytes(data)
        out[name] = p
    return out


def _scramble_refs(buf: bytes) -> bytes:
    from host.feed.spec import MESSAGES

    b = bytearray(buf)
    rng = np.random.default_rng(7)
    pos = 0
    while pos + 2 <= len(b):
        ln = int.from_bytes(b[pos : pos + 2], "big")
        t = chr(b[pos + 2])
        if t in "EXD" and rng.random() < 0.3:
            f = MESSAGES[t].field("order_reference_number")
            o = pos + 2 + f.offset
            b[o : o + 8] = int(rng.integers(1, 50)).to_bytes(8, "big")
        pos += 2 + ln
    return bytes(b)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return _hostile_files(tmp_path_factory.mktemp("fastcli"))


def _run_book(path, backend, monkeypatch, **kw):
    from host.cli.feed import run_book

    monkeypatch.setenv(fastbook.BACKEND_ENV, backend)
    parts = []
    s = run_book(str(path), sink=lambda r: parts.append(bbo_csv_bytes(r)), progress=False, **kw)
    s.pop("seconds")
    return s, b"".join(parts)


@pytest.mark.parametrize("name", ["classic", "realistic", "truncated", "zero_length", "garbage",
                                  "unknown_refs"])  # fmt: skip
@pytest.mark.parametrize("chunk", [16 << 20, 50_001])
def test_run_book_c_path_equals_numba_path(hostile, name, chunk, monkeypatch):
    """Same CSV bytes, same summary (framing, file counters, by type, anomalies, symbols)."""
    path = hostile[name]
    c, c_csv = _run_book(path, "c", monkeypatch, chunk_bytes=chunk)
    n, n_csv = _run_book(path, "numba", monkeypatch, chunk_bytes=chunk)
    assert c == n and c_csv == n_csv
    assert json.dumps(c) == json.dumps(n)  # stats --json: the same keys in the same order
    if name in ("classic", "realistic"):
        ref = bbo_trace(path.read_bytes())
        assert c_csv == bbo_csv_bytes(ref) and len(ref) > 1000
        assert sum(c["anomalies"].values()) == 0
    else:
        from host.cli.feed import input_anomalies

        assert input_anomalies(c), name  # every hostile case shows up as an anomaly
    # a symbol filter, resolved through R messages chunk by chunk, on both paths
    syms = {"symbols": ["NOSUCH", *sorted(_symbols(path))[:2]]}
    c, c_csv = _run_book(path, "c", monkeypatch, chunk_bytes=chunk, **syms)
    n, n_csv = _run_book(path, "numba", monkeypatch, chunk_bytes=chunk, **syms)
    assert c == n and c_csv == n_csv and c["missing_symbols"] == ["NOSUCH"]


def _symbols(path) -> list[str]:
    b = L3Book()
    bbo_trace(path.read_bytes()[:100_000], book=b)
    return list(b.symbols.values())


def test_cli_text_identical_on_both_paths(hostile, tmp_path):
    """``python -m host bbo`` and ``stats``: the same bytes on stdout and in the CSV."""
    for name in ("realistic", "garbage"):  # (truncated: test_run_book_c_path_equals_numba_path)
        got = {}
        for be in ("c", "numba"):
            out = tmp_path / f"{name}.csv"  # one name: the "wrote" line is compared too
            env = {fastbook.BACKEND_ENV: be}
            r1 = _run(["-m", "host", "bbo", str(hostile[name]), "--out", str(out)], env)
            r2 = _run(["-m", "host", "stats", str(hostile[name])], env)
            assert r1.returncode == r2.returncode == 0 and r1.stderr == r2.stderr == b""
            keep = [
                ln
                for ln in r1.stdout.splitlines() + r2.stdout.splitlines()
                if not ln.startswith(b"input:")
            ]  # input: has the run time
            got[be] = (keep, out.read_bytes())
        assert got["c"] == got["numba"], name


@HOSTILE
@given(st.sampled_from([SEED_STREAM[:6000], generate(300, 2, 9, profile="realistic")])
       .flatmap(mutated), st.integers(1, 3000))  # fmt: skip
def test_plain_reader_equals_iter_file_chunks(tmp_path_factory, data, chunk):
    """The numba-free reader of the C path yields the chunks and counters of
    host.feed.files.iter_file_chunks, and its format check accepts only what detect_format
    calls a plain ITCH file (anything else goes to detect_format itself)."""
    from host.cli.feed import _detect_format, _input_chunks
    from host.errors import UserError
    from host.feed.capture import detect_format
    from host.feed.files import iter_file_chunks

    p = tmp_path_factory.mktemp("reader") / "f.itch"
    p.write_bytes(data)
    try:
        want_fmt = detect_format(str(p))
    except UserError as e:
        with pytest.raises(UserError, match=str(e).replace("(", r"\(").replace(")", r"\)")
                           .replace("?", r"\?")):  # fmt: skip
            _detect_format(str(p))
        return
    assert _detect_format(str(p)) == want_fmt
    if want_fmt != "itch":
        return
    info: dict = {}
    got = list(_input_chunks(str(p), "itch", info, chunk, fused=True))
    stats: dict = {}
    want = list(iter_file_chunks(str(p), chunk, stats))
    assert got == want and info["file"] == stats and info["total_bytes"] == len(data)


def test_format_check_constants_and_magics(tmp_path):
    """The numba-free check reads what detect_format reads, and never takes a pcap, pcapng or
    gzip file for a plain one (their magic's third byte is no ITCH 5.0 type)."""
    from host.cli import feed as cli_feed
    from host.feed import capture

    assert cli_feed.HEAD_BYTES == capture.PLAUSIBLE_BYTES
    assert cli_feed.HEAD_MESSAGES == capture.PLAUSIBLE_MESSAGES
    for magic in [*capture.PCAP_MAGICS, capture.PCAPNG_MAGIC, capture.GZIP_MAGIC]:
        p = tmp_path / "m"
        p.write_bytes(magic + SEED_STREAM[:3000])
        try:
            want = capture.detect_format(str(p))
        except Exception as e:  # noqa: BLE001 - whatever it raises, the fast check must too
            with pytest.raises(type(e)):
                cli_feed._detect_format(str(p))
        else:
            assert cli_feed._detect_format(str(p)) == want != "itch"
