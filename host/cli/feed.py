"""``python -m host generate|bbo|stats``: the command line of the feed floor.

``generate``
    Write a seeded sample stream (:func:`host.feed.generator.generate`) as a NASDAQ binary file
    (gzip when the name ends in ``.gz``) and optionally as a MoldUDP64 pcap.
``bbo``
    Run the reference book over a NASDAQ binary file (plain or gzip) or a MoldUDP64 pcap
    (detected by magic bytes) and write one CSV row each time a message changes a symbol's BBO:
    ``msg_index,ts_event,locate,bid_px,bid_sz,bid_ct,ask_px,ask_sz,ask_ct``. With
    ``--card sim`` the simulated FPGA card computes the trace instead
    (:func:`host.cli.card.run_bbo_card`). ``--depth N`` (2..16): one row whenever any of the
    top N levels of a side moves, the columns of :func:`host.feed.depth.depth_columns`
    (``bid2_px ... askN_ct, depth_only``), from :class:`host.feed.depth.DepthBook` (or the
    card's top-N records with ``--card sim``).
``stats``
    Message counts by type, framing counters and book anomalies (``--json`` for one JSON
    object on stdout).

``--card`` selects the book implementation behind ``bbo``/``stats``: :data:`CARDS` maps a name
to a factory ``f(locates) -> book`` whose book has ``feed(records, copy=False) -> BBO rows``,
``anomalies`` (dict) and ``set_locates(locates)``. ``model`` is
:class:`host.feed.fastbook.FastBook`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from host.cli.args import LOCATE_MAX, add_symbols_argument, split_symbols
from host.errors import UserError

__all__ = ["CARDS", "register", "register_card", "run_book"]

PROGRESS_MIN_BYTES = 32 << 20
CHUNK_BYTES = 16 << 20
DEPTH_CHUNK_BYTES = 1 << 20


def _model_card(locates):
    from host.feed.fastbook import FastBook

    return FastBook(locates)


CARDS: dict[str, Callable] = {"model": _model_card}
"""Book implementations selectable with ``--card``."""


def register_card(name: str, factory: Callable) -> None:
    """Make ``--card name`` available; ``factory(locates)`` returns a book (see module doc)."""
    CARDS[name] = factory


def _card(name: str):
    if name not in CARDS:
        hint = " (the simulated card runs `bbo` and `replay`)" if name == "sim" else ""
        raise UserError(f"unknown card {name!r}{hint}; choose from: {', '.join(sorted(CARDS))}")
    return CARDS[name]


# --- the run ---------------------------------------------------------------------------------


def _symbol_of(packed: np.ndarray) -> list[str]:
    b = packed.astype("<u8").view("S8")
    return [s.decode("latin-1").rstrip(" \x00") for s in b]


def _detect_format(path: str) -> str:
    """:func:`host.feed.capture.detect_format`, without importing it for a plain ITCH file.

    ``host.feed.capture`` (and the file reader) import numba, about a second of start-up. A
    file whose first :data:`HEAD_MESSAGES` messages (in its first :data:`HEAD_BYTES`) all have
    an ITCH 5.0 type and exactly that type's length is what ``detect_format`` calls
    ``"itch"`` (the same check, at least as strict); anything else goes to ``detect_format``,
    which returns the format or raises the error.
    """
    from host.feed.spec import MESSAGES

    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        head = b""
    lengths = {s.code: s.length for s in MESSAGES.values()}
    pos = n = 0
    while n < HEAD_MESSAGES and pos + 2 <= len(head):
        ln = int.from_bytes(head[pos : pos + 2], "big")
        if ln == 0 or pos + 2 + ln > len(head):
            break
        if lengths.get(head[pos + 2]) != ln:
            n = 0
            break
        pos += 2 + ln
        n += 1
    if n:
        return "itch"
    from host.feed.capture import detect_format

    return detect_format(path)


HEAD_BYTES = 64 << 10
"""Bytes :func:`_detect_format` reads (``host.feed.capture.PLAUSIBLE_BYTES``, test-checked)."""
HEAD_MESSAGES = 256
"""Messages it checks (``host.feed.capture.PLAUSIBLE_MESSAGES``, test-checked)."""


def _input_chunks(path: str, fmt: str, info: dict, chunk_bytes: int, fused: bool):
    """:func:`host.feed.capture.input_chunks`; for a plain file read by the C backend, the
    same chunks and counters as :func:`host.feed.files.iter_file_chunks` (tested) from a
    reader that does not import numba."""
    if not (fused and fmt == "itch"):
        from host.feed.capture import input_chunks

        yield from input_chunks(path, fmt, info, chunk_bytes)
        return
    from host.feed.chunks import CHUNK_STATS, framed_chunks
    from host.feed.fastbook import scan

    def frame_end(buf):
        st, _ = scan(buf)
        return st["consumed"], st["framed"], bool(st["zero_length"])

    info["total_bytes"] = os.path.getsize(path)
    stats = info.setdefault("file", {})
    for k in CHUNK_STATS:  # the key order of iter_file_chunks' stats (stats --json)
        stats.setdefault(k, 0)
    stats["gzip"] = False
    try:
        with open(path, "rb") as f:
            yield from framed_chunks(f, chunk_bytes, stats, frame_end)
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e}") from None


def run_book(
    path: str,
    *,
    card: str = "model",
    locates: Iterable[int] | None = None,
    symbols: Iterable[str] | None = None,
    sink: Callable[[np.ndarray], None] | None = None,
    progress: bool | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    depth: int = 1,
) -> dict:
    """Stream ``path`` through the parser and a book; return a summary dict.

    Parameters
    ----------
    path : str
        NASDAQ binary ITCH (plain/gzip) or MoldUDP64 pcap.
    card : str
        Key of :data:`CARDS`.
    locates, symbols : iterable, optional
        Only emit rows for these locates and symbols (symbols are resolved through the ``R``
        messages as they arrive).
    sink : callable, optional
        Called with each chunk's BBO rows (a view that is reused: consume it at once).
    progress : bool, optional
        tqdm bar on stderr; default: when the input is larger than 32 MB.
    chunk_bytes : int
        Bytes per chunk.
    depth : int
        Levels per side: 1 gives BBO rows (:data:`host.feed.book.BBO_DTYPE`); more gives the
        top-``depth`` rows of :class:`host.feed.depth.DepthBook` (``card`` must be ``model``:
        the reference book; the registered fast books give the BBO only).

    Returns
    -------
    dict
        ``format``, ``messages``, ``by_type``, ``framing``, ``anomalies``, ``symbols``,
        ``bbo_rows``, ``seconds`` (and ``pcap`` counters for a pcap, ``missing_symbols``;
        with ``depth`` > 1: ``depth``, ``depth_rows``, ``bbo_rows`` then counting the rows
        that are not ``depth_only``).
    """
    fmt = _detect_format(path)
    if depth != 1:
        depth = check_depth(depth)
        if card != "model":
            raise UserError(f"--depth {depth}: card {card!r} gives the BBO only; top-N comes "
                            "from --card model (the reference book) or a card built with it")
        from host.feed.depth import DepthBook

        def factory(locs):
            return DepthBook(locs, depth)

        # the pure-Python book holds a chunk's rows as tuples (~1 KB each): smaller chunks
        # keep the memory bounded, and cost nothing next to the book's per-message time
        chunk_bytes = min(chunk_bytes, DEPTH_CHUNK_BYTES)
    else:
        factory = _card(card)
    want_syms = None if symbols is None else {s.strip() for s in symbols}
    fixed = [] if locates is None else [int(x) for x in locates]
    if want_syms is not None:
        book = factory(sorted(set(fixed)))
    else:
        book = factory(None if locates is None else fixed)
    # a FastBook on the C backend parses the bytes itself: no record array, and for a plain
    # file no numba import at all (reader below); any other book gets host.feed.bulk records
    fused = getattr(book, "backend", None) == "c" and hasattr(book, "feed_bytes")
    if depth > 1:  # DepthBook parses the bytes itself; the C scan counts types when it can
        from host.feed.fastbook import backend

        fused = backend() == "c"
    if fused:
        from host.feed.fastbook import scan, stock_directory
    else:
        from host.feed.bulk import parse_records
    info: dict = {"format": fmt}
    by_type: Counter = Counter()
    framing: Counter = Counter()
    symtab: dict[int, str] = {}
    rows = 0
    depth_only = 0
    base = 0
    t0 = time.perf_counter()
    size = os.path.getsize(path)
    show = progress if progress is not None else size > PROGRESS_MIN_BYTES
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=None, unit="B", unit_scale=True, file=sys.stderr, desc="book")
    try:
        for chunk in _input_chunks(path, fmt, info, chunk_bytes, fused):
            if bar is not None and bar.total is None and info.get("total_bytes"):
                bar.total = info["total_bytes"]
            if fused:
                st, per_type = scan(chunk)
                new = {}
                if per_type[ord("R")]:
                    new = dict(stock_directory(chunk, int(per_type[ord("R")])))
                by_count = [(chr(t), int(per_type[t])) for t in np.flatnonzero(per_type)]
            else:
                rec, st = parse_records(chunk, base_index=base)
                types, counts = np.unique(rec["msg_type"], return_counts=True)
                by_count = [(chr(t), int(c)) for t, c in zip(types, counts, strict=True)]
                r = rec[rec["msg_type"] == ord("R")]
                new = dict(zip(r["stock_locate"].tolist(), _symbol_of(r["stock"]), strict=True))
            for k, v in st.items():
                if k != "consumed":
                    framing[k] += v
            for t, c in by_count:
                by_type[t] += c
            if new:
                symtab.update(new)
                if want_syms is not None:
                    named = [loc for loc, s in symtab.items() if s in want_syms]
                    book.set_locates(sorted(set(fixed) | set(named)))
            if fused or depth > 1:
                out = book.feed_bytes(chunk, base_index=base, copy=False)
            else:
                out = book.feed(rec, copy=False)
            base += st["framed"]
            rows += len(out)
            if depth > 1:
                depth_only += int(np.count_nonzero(out["depth_only"]))
            if sink is not None and len(out):
                sink(out)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    info.update(
        messages=sum(by_type.values()),
        by_type=dict(sorted(by_type.items())),
        framing=dict(framing),
        anomalies=dict(book.anomalies),
        symbols=len(symtab),
        bbo_rows=rows - depth_only,
        seconds=round(time.perf_counter() - t0, 3),
    )
    if depth > 1:
        info.update(depth=depth, depth_rows=rows)
    if want_syms is not None:
        info["missing_symbols"] = sorted(want_syms - set(symtab.values()))
    return info


# --- commands --------------------------------------------------------------------------------


def check_depth(depth) -> int:
    """``--depth``: an int in 1..16 (:data:`host.feed.depth.MAX_DEPTH`), else a UserError."""
    from host.feed.depth import MAX_DEPTH

    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise UserError(f"--depth must be an integer in 1..{MAX_DEPTH}, not {depth!r}")
    return depth


def _card_depth_keyword() -> bool:
    """Whether :func:`host.cli.card.run_bbo_card` takes ``depth=`` (a card build with top-N)."""
    import inspect

    from host.cli.card import run_bbo_card

    return "depth" in inspect.signature(run_bbo_card).parameters


def _csv_list(s: str) -> list[str]:
    return [x for x in (p.strip() for p in s.split(",")) if x]


def _cmd_generate(a) -> int:
    from host.feed.files import write_file
    from host.feed.generator import PROFILES, generate, write_pcap_from_itch

    if a.messages < 1 or a.symbols < 1:
        raise UserError("--messages and --symbols must be positive")
    t0 = time.perf_counter()
    profile = a.profile
    if a.depth is not None:
        if a.profile != "realistic":
            raise UserError("--depth applies to --profile realistic")
        if a.depth < 1:
            raise UserError("--depth must be positive")
        profile = dataclasses.replace(PROFILES["realistic"], depth=a.depth)
    try:
        buf = generate(a.messages, a.symbols, a.seed, profile=profile)
    except ValueError as e:
        raise UserError(str(e)) from None
    try:
        write_file(a.out, buf)
        line = f"wrote {a.messages} messages, {a.symbols} symbols, {len(buf)} bytes to {a.out}"
        if a.pcap:
            p = write_pcap_from_itch(buf, a.pcap, seed=a.seed)
            line += f"; {p['packets']} MoldUDP64 packets to {a.pcap}"
    except OSError as e:
        raise UserError(f"cannot write: {e}") from None
    print(f"{line} ({time.perf_counter() - t0:.2f} s)")
    return 0


_PROBLEMS = {
    "framing": ("unknown_type", "bad_length", "zero_length", "truncated"),
    "file": ("truncated", "truncated_bytes", "zero_length"),
    "pcap": ("other_port", "frame_errors", "cut_frames"),
    "pcap.mold": ("gaps", "missing", "duplicates", "duplicate_messages", "session_changes",
                  "bad_packets"),
}  # fmt: skip
"""The counters of a :func:`run_book` summary that count something wrong with the input."""


def input_anomalies(s: dict) -> dict[str, int]:
    """Every non-zero problem counter of a :func:`run_book` summary, in one flat dict.

    Framing (unknown types, bad lengths, zero lengths, truncation), file reading (a truncated
    tail), pcap reading (bad frames, MoldUDP64 gaps / missing / duplicate / malformed packets,
    by reason) and book anomalies (unknown references, oversize executions, ...): the text
    output shows the same problems as ``--json``, never "none" while one of them is counted.
    """
    out: dict[str, int] = {}
    for where, keys in _PROBLEMS.items():
        d = s
        for part in where.split("."):
            d = d.get(part) or {}
        for k in keys:
            if d.get(k):
                out[f"{where}.{k}"] = int(d[k])
    for k, v in (s.get("pcap") or {}).items():
        if k.startswith("frame_error_") and isinstance(v, int) and v:
            out[f"pcap.{k}"] = v  # frame errors by reason (bad checksum, short, ...)
    bad = ((s.get("pcap") or {}).get("mold") or {}).get("bad_reasons") or {}
    for k, v in bad.items():
        if v:
            out[f"pcap.mold.bad.{k}"] = int(v)
    for k, v in s.get("anomalies", {}).items():
        if v:
            out[k] = v
    return out


def _summary_lines(s: dict) -> list[str]:
    lines = [
        f"input: {s['format']}, {s['messages']} messages, {s['symbols']} symbols, "
        f"{s['seconds']} s ({s['messages'] / max(s['seconds'], 1e-9) / 1e6:.2f} M msg/s)",
        "by type: " + " ".join(f"{k}={v}" for k, v in s["by_type"].items()),
    ]
    if "pcap" in s:
        m = s["pcap"].get("mold", {})
        lines.append(
            f"pcap: frames={s['pcap'].get('frames')} gaps={m.get('gaps')} "
            f"missing={m.get('missing')} duplicates={m.get('duplicates')}"
        )
    an = input_anomalies(s)
    lines.append(
        "anomalies: " + (" ".join(f"{k}={v}" for k, v in an.items()) if an else "none")
    )
    lines.append(f"bbo rows: {s['bbo_rows']}")
    if s.get("depth"):
        lines.append(f"depth rows (top {s['depth']}): {s['depth_rows']} "
                     f"({s['depth_rows'] - s['bbo_rows']} depth only)")
    return lines


def _cmd_bbo(a) -> int:
    from host.feed.book import BBO_COLUMNS
    from host.feed.fastbook import bbo_csv_bytes

    depth = check_depth(a.depth)
    if a.symbols and a.locates:
        raise UserError("give --symbols or --locates, not both")
    locates = None
    if a.locates:
        try:
            locates = [int(x) for x in _csv_list(a.locates)]
        except ValueError:
            raise UserError(f"--locates: not a list of integers: {a.locates!r}") from None
        if any(not 0 <= x <= LOCATE_MAX for x in locates):
            raise UserError(f"--locates: locate codes are 0..{LOCATE_MAX}")
    symbols = None
    if a.symbols:
        nums, names = split_symbols(a.symbols)
        locates = nums or None
        symbols = names or None
    _detect_format(a.input)  # fail before creating the output
    sim = a.card == "sim" and "sim" not in CARDS
    if not sim:
        _card(a.card)
        if depth > 1 and a.card != "model":
            raise UserError(f"--depth {depth}: card {a.card!r} gives the BBO only; top-N comes "
                            "from --card model or --card sim")
    elif depth > 1 and not _card_depth_keyword():
        raise UserError(f"--depth {depth}: this simulated card gives the BBO only (no top-N "
                        "records in host.cli.card.run_bbo_card)")
    to_stdout = a.out == "-"
    try:
        fh = sys.stdout.buffer if to_stdout else open(a.out, "wb")
    except OSError as e:
        raise UserError(f"cannot write {a.out}: {e}") from None
    out = sys.stderr if to_stdout else sys.stdout
    if sim:
        from host.cli.card import run_bbo_card

        show = a.progress if a.progress is not None else sys.stderr.isatty()
        # depth= only when asked: a card without top-N keeps today's call
        extra = {"depth": depth} if depth > 1 else {}
        try:
            status = run_bbo_card(
                a.input, fh, symbols=a.symbols or ([str(x) for x in locates] if locates else None),
                verify_trace=a.verify, allow_build=not a.no_build, progress=show, log=out,
                recover=not getattr(a, "no_recover", False), **extra,
            )  # fmt: skip
        finally:
            if not to_stdout:
                fh.close()
        if not to_stdout:
            print(f"wrote {a.out}", file=out)
        return status
    if depth > 1:
        from host.feed.depth import depth_columns, depth_csv_bytes

        columns, to_csv = depth_columns(depth), depth_csv_bytes
    else:
        columns, to_csv = BBO_COLUMNS, bbo_csv_bytes
    try:
        fh.write((",".join(columns) + "\n").encode())
        s = run_book(
            a.input, card=a.card, locates=locates, symbols=symbols,
            sink=lambda rows: fh.write(to_csv(rows)), progress=a.progress, depth=depth,
        )  # fmt: skip
    finally:
        if not to_stdout:
            fh.close()
    for line in _summary_lines(s):
        print(line, file=out)
    if a.verify:
        print("verify: --card model is the reference itself; nothing to compare", file=out)
    if not to_stdout:
        print(f"wrote {a.out}", file=out)
    if s.get("missing_symbols"):  # as replay, session and --card sim: an unknown symbol fails
        raise UserError(
            "not in the feed's stock directory: " + ",".join(s["missing_symbols"])
        )
    return 0


def _cmd_stats(a) -> int:
    _card(a.card)
    s = run_book(a.input, card=a.card, progress=a.progress)
    if a.json:
        json.dump(s, sys.stdout)
        sys.stdout.write("\n")
    else:
        for line in _summary_lines(s):
            print(line)
    return 0


def _int_arg(text: str):
    """argparse type: an int, or the text itself (``check_depth`` then names it)."""
    try:
        return int(text)
    except ValueError:
        return text


def register(sub) -> None:
    """Add ``generate``, ``bbo`` and ``stats`` to an ``argparse`` subparsers object."""
    from host.cli.card import add_card_arguments

    g = sub.add_parser("generate", help="write a seeded sample ITCH 5.0 stream")
    g.add_argument("--messages", type=int, required=True)
    g.add_argument("--symbols", type=int, default=16)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", required=True, help="NASDAQ binary file (.gz to compress)")
    g.add_argument("--pcap", help="also write a MoldUDP64/UDP/IPv4/Ethernet pcap")
    g.add_argument("--profile", choices=["classic", "realistic"], default="classic",
                   help="classic: small books that visit every edge case of the format; "
                   "realistic: deep books (hundreds to thousands of levels per side, heavy-"
                   "tailed offsets, stub quotes, sweeps, cancel bursts); default: classic")
    g.add_argument("--depth", type=int, help="realistic profile: live orders per side on the "
                   "most liquid symbol (default 7000)")
    g.set_defaults(func=_cmd_generate)

    def common(q, card=True):
        q.add_argument("input", help="NASDAQ binary ITCH file (plain or .gz) or MoldUDP64 pcap")
        if card:
            q.add_argument("--card", default="model", help="book implementation (default: model)")
        q.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar on stderr (default: inputs over 32 MB)")  # fmt: skip

    b = sub.add_parser("bbo", help="write the BBO trace as CSV")
    common(b, card=False)
    add_card_arguments(b, symbols=False, choices=None)
    b.add_argument("--out", required=True, help="CSV file ('-' for stdout)")
    add_symbols_argument(b, default_help="every symbol (names resolved via the R messages)")
    b.add_argument("--locates", help="comma-separated stock locate codes (same as numbers in "
                   "--symbols)")
    b.add_argument("--depth", type=_int_arg, default=1, help="levels per side, 1..16: more "
                   "than 1 writes a row whenever any of the top N levels moves, with columns "
                   "bid2_px..bidN_ct, ask2_px..askN_ct and depth_only (default 1: the BBO)")
    b.set_defaults(func=_cmd_bbo)

    s = sub.add_parser("stats", help="message counts by type and book anomalies")
    common(s)
    s.add_argument("--json", action="store_true", help="one JSON object on stdout")
    s.set_defaults(func=_cmd_stats)
