"""``python -m host replay`` and the card options of ``bbo``: the command line of the card floor.

:func:`add_card_arguments` gives ``replay`` and ``bbo`` the same ``--card``/``--verify``/
``--no-build`` options; :func:`run_replay` and :func:`run_bbo_card` load the input with one-line
errors (:class:`host.errors.UserError`), drive the card through :mod:`host.card.replay` and
print what :mod:`host.card.report` makes of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from host.cli.args import add_symbols_argument
from host.errors import UserError

if TYPE_CHECKING:  # the command line starts fast: the card floor loads when a command runs
    from host.card.replay import Replay
    from host.feed.capture import Feed

__all__ = ["add_card_arguments", "register", "run_replay", "run_bbo_card"]

U32_MAX = (1 << 32) - 1


def add_card_arguments(p, *, symbols: bool = True, choices=("model", "sim")) -> None:
    """Add ``--card``, ``--verify``, ``--no-build`` (and ``--symbols``) to an argparse parser.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser (``replay``, ``bbo``).
    symbols : bool
        Also add ``--symbols`` (:func:`host.cli.args.add_symbols_argument`; ``bbo`` adds its
        own, with the same grammar).
    choices : sequence of str or None
        Allowed ``--card`` values; ``None`` leaves the check to the command (``bbo`` also
        accepts cards registered with :func:`host.cli.feed.register_card`).
    """
    p.add_argument(
        "--card",
        choices=None if choices is None else list(choices),
        default="model",
        help="model: the reference book (numba, host.feed.fastbook); sim: the simulated card, "
        "the Verilated hw/top.py at the U250 parameters (default: model)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare the card's BBO trace with the reference model; exit 1 at the first "
        "difference and show it",
    )
    if symbols:
        add_symbols_argument(p, default_help="every symbol of the feed")
    p.add_argument(
        "--no-build", action="store_true", help="fail instead of building the simulated card"
    )
    p.add_argument(
        "--no-recover",
        action="store_true",
        help="--card sim: do not re-seed a stale or not-valid symbol from the reference book "
        "(after a gap every book is cleared instead; not-valid symbols stay not valid)",
    )


def register(subparsers) -> None:
    """Add the ``replay`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "replay",
        help="replay an ITCH file or a MoldUDP64 pcap through the card",
        description="Packetize a NASDAQ ITCH 5.0 file (or read a MoldUDP64 pcap), run it "
        "through the card, report counters, BBO updates, messages/s and latency per message "
        "type, and write plots.",
    )
    p.add_argument("input", help="NASDAQ ITCH 5.0 file (.gz ok) or pcap")
    add_card_arguments(p)
    p.add_argument("--out", default="out/replay", help="output folder (plots, bbo.csv)")
    p.add_argument("--plot-symbol", help="symbol for the bid/ask plot (default: most updates)")
    p.add_argument("--clock-mhz", type=float, help="--card sim: also give times in ns at this "
                   "core clock, one your build closes (default: cycles only; the nominal 322 MHz "
                   "is not timing-closed, see docs/synthesis.md)")
    p.add_argument("--batch-frames", type=int, default=32, help="frames per batch: the host looks "
                   "at the card's records and recovers symbols between batches (default 32)")
    p.add_argument(
        "--drop-packets",
        type=int,
        nargs="*",
        default=[],
        help="packet indices to leave out (makes sequence gaps; ITCH input only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from host.cli.card_ab import add_ab_arguments

    add_ab_arguments(p)
    p.set_defaults(func=run_replay)


def _run_model(feed: Feed, locates, out: Path, plot_name, names) -> int:
    import time

    from host.card.model import reference_trace
    from host.card.report import plot

    t0 = time.perf_counter()
    trace = reference_trace(feed.itch, locates)
    wall = time.perf_counter() - t0
    n = feed.n_messages
    print(f"card: model (reference book); {n:,} messages; {len(locates)} symbols")
    print(f"run: {wall:.2f} s wall, {n / wall / 1e6:.3f} M msgs/s; BBO updates: {len(trace):,}")
    _write_csv(trace, out / "bbo.csv")
    for p in plot(trace, {}, out, locate=plot_name, names=names):
        print(f"plot: {p}")
    return 0


def _write_csv(trace, path: Path) -> None:
    from host.feed.book import write_bbo_csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        write_bbo_csv(fh, trace)
    print(f"BBO trace: {path}")


def _load_for_cli(path, **kw) -> Feed:
    """:func:`host.feed.capture.load_feed` with the CLI's input checks (one-line errors)."""
    from host.feed.capture import detect_format, load_feed

    fmt = detect_format(str(path))  # UserError for a missing / empty / foreign file
    if fmt == "pcap" and kw.get("drop_packets"):
        raise UserError("--drop-packets applies to ITCH files, not to pcaps")
    try:
        feed = load_feed(path, **kw)
    except (OSError, EOFError, ValueError) as e:
        raise UserError(f"{path}: {e}") from None
    if feed.n_messages == 0:
        raise UserError(f"{path}: no ITCH message to replay")
    return feed


def check_clock_mhz(clock_mhz: float | None) -> float | None:
    """``--clock-mhz``: None (cycles only) or a clock in (0, 2000] MHz, else a UserError."""
    if clock_mhz is not None and not 0 < clock_mhz <= 2000:  # NaN fails too
        raise UserError("--clock-mhz must be in (0, 2000]")
    return clock_mhz


def _open_card_for_cli(allow_build: bool, depth: int = 1):
    from host.card.replay import open_sim_card
    from host.card.transport import CardError

    # depth > 1: the U250 card built with depth_n = depth (its own cached library)
    params = {"depth_n": depth} if depth != 1 else None
    try:
        return open_sim_card(allow_build=allow_build, params=params)
    except CardError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"simulated card: {first}") from None


def _replay_sim(feed: Feed, symbols, *, allow_build: bool, progress: bool, depth: int = 1,
                **kw) -> Replay:
    """Open the simulated card (built with ``depth_n = depth``), replay ``feed`` through it,
    close it (CLI errors)."""
    from host.card.replay import replay_through_card, resolve_locates
    from host.card.transport import CardError

    card = _open_card_for_cli(allow_build, depth)
    try:
        try:
            locates = resolve_locates(feed, symbols, card.slots)
        except ValueError as e:
            raise UserError(str(e)) from None
        try:
            return replay_through_card(card, feed, locates, progress=progress, **kw)
        except CardError as e:
            raise UserError(f"simulated card: {e}") from None
    finally:
        card.close()


def run_replay(args) -> int:
    """Handler of ``python -m host replay``: exit status (1 when ``--verify`` finds a difference).

    Raises
    ------
    host.errors.UserError
        Unreadable input, unknown symbol, simulated card not available.
    """
    from host.card.replay import resolve_locates
    from host.card.report import latency_by_type, plot, report, verify, write_card_csv
    from host.feed.capture import symbol_directory

    out = Path(args.out)
    kw = {}
    if getattr(args, "drop_packets", None):
        kw["drop_packets"] = args.drop_packets
    if getattr(args, "batch_frames", 1024) < 1:
        raise UserError("--batch-frames must be positive")
    clock_mhz = check_clock_mhz(getattr(args, "clock_mhz", None))
    feed = _load_for_cli(args.input, **kw)
    directory = symbol_directory(feed.itch)
    names = {v: k for k, v in directory.items()}
    plot_loc = None
    try:
        if getattr(args, "plot_symbol", None):
            plot_loc = resolve_locates(feed, [args.plot_symbol])[0]
        if args.card == "model":
            locates = resolve_locates(feed, args.symbols)
    except ValueError as e:
        raise UserError(str(e)) from None
    if getattr(args, "lines", None) is not None:
        from host.cli.card_ab import run_ab_replay

        if args.card != "model":
            locates = None  # run_ab_replay refuses a card other than the model
        return run_ab_replay(args, feed, locates, out)
    if args.card == "model":
        if args.verify:
            print("verify: --card model is the reference itself; nothing to compare")
        return _run_model(feed, locates, out, plot_loc, names)
    rp = _replay_sim(
        feed,
        args.symbols,
        allow_build=not args.no_build,
        progress=not args.no_progress,
        batch_frames=args.batch_frames,
        recover=not getattr(args, "no_recover", False),
    )
    print(report(rp, clock_hz=clock_mhz * 1e6 if clock_mhz else None))
    write_card_csv(rp, out / "bbo.csv")
    print(f"BBO trace: {out / 'bbo.csv'} (with the card's valid, stale and recovered flags)")
    for p in plot(rp.trace, latency_by_type(rp), out, locate=plot_loc, names=names):
        print(f"plot: {p}")
    return verify(rp) if args.verify else 0


def run_bbo_card(
    path,
    out_fh,
    *,
    symbols=None,
    verify_trace: bool = False,
    allow_build: bool = True,
    progress: bool = False,
    log=None,
    recover: bool = True,
    depth: int = 1,
) -> int:
    """``python -m host bbo INPUT --card sim [--verify]``: the card's BBO trace as CSV.

    Parameters
    ----------
    path : str or Path
        NASDAQ ITCH file (plain or gzip) or MoldUDP64 pcap.
    out_fh : binary file
        Receives the CSV of ``bbo --card model`` (the same columns and rows, from
        :func:`host.feed.fastbook.bbo_csv_bytes`) with three more columns: the card's
        ``valid``, ``stale`` and ``recovered`` flags of each row.
    symbols : list of str, optional
        Symbols or locate numbers to subscribe (default: every symbol of the feed).
    verify_trace : bool
        Compare with the reference model; the result (and the first difference) goes to
        ``log``.
    allow_build : bool
        Build the simulated card if it is not cached.
    progress : bool
        Progress bar on stderr.
    log : text file, optional
        Where the summary and the verification go (default stdout).
    recover : bool
        Re-seed stale and not-valid symbols from the reference book
        (:func:`host.card.replay.replay_through_card`).
    depth : int
        1 (default): the BBO trace above. 2..16: a simulated card built with ``depth_n =
        depth``; one row per record (``depth_only`` rows too: a change at levels 2..N alone),
        columns :func:`host.card.model.depth_columns` (the BBO columns, ``valid,stale,
        recovered``, ``bid2_px ... askN_ct``, ``depth_only``). ``verify_trace`` then checks
        the rows without ``depth_only`` against the BBO reference, as for ``depth = 1``, and
        every row against the top-N reference (:func:`host.card.report.verify_depth`).

    Returns
    -------
    int
        0, or 1 when ``verify_trace`` found a difference.
    """
    import contextlib
    import sys

    from host.card.report import flag_counts, recovery_summary, verify
    from host.feed.fastbook import bbo_csv_bytes

    log = sys.stdout if log is None else log
    feed = _load_for_cli(path)
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 16:
        raise UserError(f"--depth must be in 1..16, not {depth!r}")
    rp = _replay_sim(feed, symbols, allow_build=allow_build, progress=progress, latency=False,
                     recover=recover, depth=depth)
    if depth == 1:
        out_fh.write(bbo_csv_bytes(rp.trace, header=True, extra=rp.flags))
    else:
        from host.card.model import depth_columns, depth_table

        tab = depth_table(rp.recs, feed.seq)
        out_fh.write((",".join(depth_columns(depth)) + "\n").encode())
        if len(tab):
            lines = "\n".join(",".join(map(str, row)) for row in tab.tolist())
            out_fh.write((lines + "\n").encode())
    run = rp.run
    n = feed.n_messages
    print(
        f"card: sim; {n:,} messages in {feed.n_frames:,} frames, {len(rp.locates)} symbols; "
        f"{run.wall_s:.2f} s ({n / max(run.wall_s, 1e-9) / 1e6:.2f} M msg/s)",
        file=log,
    )
    not_valid, stale = flag_counts(rp)
    print(
        f"bbo rows: {len(rp.trace)}; not valid: {not_valid}; stale: {stale}; "
        f"book clears after gaps: {len(rp.restarts)}; {recovery_summary(rp)}",
        file=log,
    )
    if depth > 1:
        from hw import bbo_record

        n_only = int(((rp.recs["flags"] & bbo_record.FLAG_DEPTH_ONLY) != 0).sum())
        print(f"depth {depth}: {len(tab)} rows written, {n_only} of them depth_only (levels "
              f"2..{depth} changed alone)", file=log)
    if not_valid:
        print(
            f"warning: {not_valid} rows flagged not valid (valid=0 in the CSV): the card's book "
            "could not hold the symbol's book; those BBOs are not exact",
            file=log,
        )
    sat = int(((rp.trace["bid_sz"] == U32_MAX) | (rp.trace["ask_sz"] == U32_MAX)).sum())
    if sat:
        print(
            f"note: sizes saturated at 2**32-1 in {sat} rows (the record's size fields are 32 "
            "bits; --card model writes the exact sizes there)",
            file=log,
        )
    if not verify_trace:
        return 0
    with contextlib.redirect_stdout(log):
        status = verify(rp)
        if depth > 1:
            from host.card.report import verify_depth

            status |= verify_depth(rp)
        return status
