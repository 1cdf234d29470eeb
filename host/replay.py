"""Replay market data through the card: packetize, drive, verify, report, plot.

``python -m host replay INPUT [--card sim|model] [--symbols ...]`` (see :func:`register`).

Input is a NASDAQ ITCH 5.0 file (plain or .gz, 2-byte length framing), packetized here into
MoldUDP64 packets in Ethernet/IPv4/UDP frames, or a pcap of such frames sent as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host.feed.capture import Feed, load_feed, symbol_directory

U32_MAX = (1 << 32) - 1

# ---------------------------------------------------------------------------------------------
# Driving the card


@dataclass
class RunResult:
    """What came out of one replay through a card.

    Attributes
    ----------
    raw : numpy.ndarray
        ``(n, 64)`` ``uint8`` BBO records in output order.
    rec_cycles : numpy.ndarray or None
        Card cycle at which each record was accepted (simulated card).
    beat_cycles : numpy.ndarray or None
        Card cycle at which each MAC beat was accepted, in send order (simulated card).
    wall_s : float
        Wall-clock seconds of the run (sending, simulating, receiving).
    cycles : int or None
        Card cycles the run took (simulated card).
    epoch : int or None
        Shim cycle at which the card's ``STATUS_CYCLES`` counter was 0 (simulated card): a
        record's ``card_cycles`` stamp is shim cycle ``card_cycles + epoch``.
    """

    raw: np.ndarray
    rec_cycles: np.ndarray | None
    beat_cycles: np.ndarray | None
    wall_s: float
    cycles: int | None
    epoch: int | None = None


def drive(
    card,
    feed: Feed,
    *,
    batch_frames: int = 1024,
    progress=None,
    latency=True,
    after_batch=None,
):
    """Send ``feed`` through ``card`` in batches of frames, collecting every record.

    Parameters
    ----------
    card : host.card.Card
    feed : Feed
    batch_frames : int
        Frames queued per batch (each batch is one ``send`` + one C++ ``run``).
    progress : callable, optional
        Called with the number of messages of each batch once it has been processed.
    latency : bool
        Record the accept cycle of every MAC beat (simulated card) for latency.
    after_batch : callable, optional
        Called with the end frame index after each batch has been processed (the card is
        idle then: register accesses see the state after exactly those frames).
    """
    import time

    t = card.t
    sim = t.has_cycles
    if sim and latency:
        t.record_beat_cycles(True)
    bb = getattr(t, "beat_bytes", 8)
    raws, cycs, beats = [], [], []
    c0 = t.cycle if sim else None
    msg_per_frame = np.bincount(feed.frame, minlength=feed.n_frames) if progress else None
    t0 = time.perf_counter()

    def drain():
        while True:
            r, c = t.recv_records(1 << 16)
            if len(r) == 0:
                return
            raws.append(r)
            if c is not None:
                cycs.append(c)

    for lo in range(0, feed.n_frames, batch_frames):
        hi = min(feed.n_frames, lo + batch_frames)
        card.send(feed.slice_frames(lo, hi))
        while card.run(max_records=1 << 20) == 1:
            drain()
        drain()
        if sim and latency:
            nb = np.maximum(1, (feed.lens[lo:hi].astype(np.int64) + bb - 1) // bb).sum()
            beats.append(t.take_beat_cycles(int(nb) + 1))
        if after_batch is not None:
            after_batch(hi)
            drain()
        if progress is not None:
            progress(int(msg_per_frame[lo:hi].sum()))
    wall = time.perf_counter() - t0
    empty = np.zeros((0, 64), np.uint8)
    return RunResult(
        raw=np.concatenate(raws) if raws else empty,
        rec_cycles=np.concatenate(cycs) if cycs else (np.zeros(0, np.uint64) if sim else None),
        beat_cycles=np.concatenate(beats) if beats else None,
        wall_s=wall,
        cycles=(t.cycle - c0) if sim else None,
        epoch=getattr(t, "epoch", None) if sim else None,
    )


def message_in_cycles(feed: Feed, beat_cycles: np.ndarray, beat_bytes: int = 8) -> np.ndarray:
    """Cycle at which the last byte of every message of ``feed`` entered the card.

    ``beat_cycles`` holds the accept cycle of every MAC beat in send order (one beat per
    ``beat_bytes`` of a frame, at least one per frame).
    """
    nb = np.maximum(1, (feed.lens.astype(np.int64) + beat_bytes - 1) // beat_bytes)
    base = np.zeros(nb.size + 1, np.int64)
    np.cumsum(nb, out=base[1:])
    if beat_cycles.size != base[-1]:
        raise ValueError(f"{beat_cycles.size} beat cycles for {base[-1]} beats")
    return beat_cycles[base[feed.frame] + (feed.end - 1) // beat_bytes]


# ---------------------------------------------------------------------------------------------
# Replay: card setup, verification, report, plots


def resolve_locates(feed: Feed, symbols=None, slots: int | None = None) -> list[int]:
    """Locates to subscribe: ``symbols`` (names or locate numbers) or every symbol of the feed.

    Raises ``ValueError`` for an unknown symbol, or when there are more than ``slots``.
    """
    directory = symbol_directory(feed.itch)
    if symbols:
        out = []
        for s in symbols:
            s = str(s).strip()
            if s.isdigit():
                out.append(int(s))
            elif s.upper() in directory:
                out.append(directory[s.upper()])
            else:
                raise ValueError(f"symbol {s!r} is not in the feed's stock directory")
        locs = sorted(set(out))
    elif directory:
        locs = sorted(set(directory.values()))
    else:
        from host.feed.bulk import parse_records

        recs, _ = parse_records(feed.itch)
        locs = sorted(set(recs["stock_locate"][np.isin(recs["msg_type"], list(b"AF"))].tolist()))
    if slots is not None and len(locs) > slots:
        raise ValueError(
            f"{len(locs)} symbols but the card has {slots} book slots: choose with --symbols"
        )
    return locs


def open_sim_card(*, allow_build: bool = True, params: dict | None = None, **kw):
    """A :class:`host.card.Card` on the simulated card (builds the model if needed)."""
    from host.card import Card
    from host.card.sim import SimTransport

    return Card(SimTransport(params=params, allow_build=allow_build, **kw))


def setup_card(card, feed: Feed, locates) -> None:
    """Filters from the feed's destination and session, subscriptions, counters cleared."""
    card.configure(udp_port=feed.dst_port, ip_dst=feed.dst_ip, session=feed.session)
    card.subscribe(locates)
    card.clear_counters()
    card.clear_sticky()


@dataclass
class Replay:
    """Everything :func:`replay_through_card` measured."""

    feed: Feed
    locates: list[int]
    run: RunResult
    recs: np.ndarray
    trace: np.ndarray
    counters: dict
    status: dict
    restarts: list[int]
    clk_hz: int


def replay_through_card(
    card,
    feed: Feed,
    locates,
    *,
    batch_frames: int = 1024,
    progress: bool = False,
    clear_on_gap: bool = True,
    latency: bool = True,
) -> Replay:
    """Configure ``card``, send ``feed`` through it, and collect records, counters and status.

    With ``clear_on_gap``, after every batch the host reads ``STATUS_STICKY.seen_gap``; when set
    it empties every book (``clear_stale``) and clears the sticky bit, and the message index is
    kept in :attr:`Replay.restarts` (the reference restarts from empty books there).
    """
    from host.card.model import card_trace, decode

    setup_card(card, feed, locates)
    frame_msgs = np.bincount(feed.frame, minlength=feed.n_frames)
    done = np.concatenate([[0], np.cumsum(frame_msgs)])
    restarts: list[int] = []

    def after(hi):
        if clear_on_gap and card.field("STATUS_STICKY", "seen_gap"):
            card.clear_stale()
            card.clear_sticky("seen_gap")
            restarts.append(int(done[hi]))

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=feed.n_messages, unit="msg", unit_scale=True, desc="replay")
    try:
        run = drive(
            card,
            feed,
            batch_frames=batch_frames,
            progress=bar.update if bar else None,
            latency=latency,
            after_batch=after,
        )
    finally:
        if bar is not None:
            bar.close()
    recs = decode(run.raw)
    return Replay(
        feed=feed,
        locates=list(locates),
        run=run,
        recs=recs,
        trace=card_trace(recs, feed.seq),
        counters=card.counters(),
        status=card.status(),
        restarts=restarts,
        clk_hz=card.info.params.clk_hz if card.info else 0,
    )


def latency_by_type(rp: Replay, *, out: bool = False) -> dict[str, np.ndarray]:
    """Per-message latency in card clock cycles, by ITCH message type.

    Measured, for every message that produced a BBO record, from the clock edge at which the
    MAC beat holding the message's last byte is accepted (``mac.valid & mac.ready``) to the
    clock edge at which the record is loaded into the top's ``bbo`` output register, whose
    ``card_cycles`` stamp is ``STATUS_CYCLES`` just before that edge. The record is valid on
    ``bbo`` from the next cycle on. Both ends are in the card's own clock: the beat's accept
    cycle is counted by the shim, converted with :attr:`RunResult.epoch` (``STATUS_CYCLES`` is
    0 in the first cycle after the hard reset). So this is the card's processing latency
    (ingress + book + record packer); it does not include MAC/PHY, DMA or host time.

    With ``out=True``: to the cycle the record is taken from ``bbo`` (``bbo.valid &
    bbo.ready``), which adds the output register and any ``bbo.ready`` back-pressure.

    Only messages that changed a BBO produce a record, so only their types appear.
    """
    from hw import bbo_record

    run = rp.run
    if run.beat_cycles is None or run.rec_cycles is None or run.epoch is None:
        return {}
    t_in = message_in_cycles(rp.feed, run.beat_cycles)
    keep = (rp.recs["flags"] & bbo_record.FLAG_CLEARED) == 0
    idx = rp.trace["msg_index"]
    ok = idx >= 0
    if out:
        t_out = run.rec_cycles[keep][ok].astype(np.int64)
    else:
        t_out = rp.recs["card_cycles"][keep][ok].astype(np.int64) + run.epoch
    lat = t_out - t_in[idx[ok]].astype(np.int64)
    types = rp.feed.mtype[idx[ok]]
    return {chr(t): lat[types == t] for t in sorted(set(types.tolist()))}


def report(rp: Replay, *, label: str = "sim") -> str:
    """Text report: run figures, counters, latency per message type."""
    run = rp.run
    n = rp.feed.n_messages
    lines = [
        f"card: {label}; {n:,} messages in {rp.feed.n_frames:,} frames; "
        f"{len(rp.locates)} symbols subscribed",
        f"run: {run.wall_s:.2f} s wall, {n / run.wall_s / 1e6:.3f} M msgs/s"
        + (
            f"; {run.cycles:,} card cycles = {run.cycles / run.wall_s / 1e6:.2f} M cycles/s "
            f"simulated, {run.cycles / max(n, 1):.2f} cycles/msg"
            if run.cycles
            else ""
        ),
    ]
    if run.cycles and rp.clk_hz:
        lines.append(
            f"at the card clock ({rp.clk_hz / 1e6:.2f} MHz) this feed takes "
            f"{run.cycles / rp.clk_hz * 1e3:.3f} ms = {n / (run.cycles / rp.clk_hz) / 1e6:.1f} "
            "M msgs/s (frames back to back)"
        )
    n_clear = int((rp.recs["flags"] & 8 != 0).sum()) if len(rp.recs) else 0
    n_stale = int((rp.recs["flags"] & 1 != 0).sum()) if len(rp.recs) else 0
    lines.append(
        f"BBO updates: {len(rp.trace):,} (+{n_clear} from clears); "
        f"flagged stale (after a gap, until cleared): {n_stale:,}; "
        f"book clears after gaps: {len(rp.restarts)}"
    )
    n_bad = int((rp.recs["flags"] & 16 != 0).sum()) if len(rp.recs) else 0
    if n_bad:
        lines.append(
            f"records flagged book_invalid (level overflow / table full / size overflow): "
            f"{n_bad:,}: those BBOs are not exact"
        )
    c = rp.counters
    nonzero = {k: v for k, v in c.items() if v}
    lines.append("counters (non-zero):")
    items = list(nonzero.items())
    for i in range(0, len(items), 4):
        lines.append("  " + "  ".join(f"{k}={v:,}" for k, v in items[i : i + 4]))
    lat = latency_by_type(rp)
    if lat:
        lines.append(
            "latency in card cycles, from the MAC beat with the message's last byte to its BBO "
            "record in the output register (card_cycles stamp):"
        )
        ns = f"{'ns @clk':>8}" if rp.clk_hz else ""
        lines.append(
            f"  {'type':>4} {'count':>9} {'min':>6} {'median':>7} {'p99':>6} {'max':>6} {ns}"
        )
        for t, v in lat.items():
            if v.size:
                med = float(np.median(v))
                ns = f"{med / rp.clk_hz * 1e9:>8.1f}" if rp.clk_hz else ""
                lines.append(
                    f"  {t!r:>4} {v.size:>9,} {v.min():>6} {int(med):>7} "
                    f"{int(np.percentile(v, 99)):>6} {v.max():>6} {ns}"
                )
    return "\n".join(lines)


def plot(trace: np.ndarray, lat: dict, out_dir: Path, *, locate: int | None = None, names=None):
    """Write ``bbo_<symbol>.png`` (bid/ask over time) and ``latency.png``; return the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if len(trace):
        if locate is None:
            locs, counts = np.unique(trace["locate"], return_counts=True)
            locate = int(locs[np.argmax(counts)])
        t = trace[trace["locate"] == locate]
        name = (names or {}).get(locate, str(locate))
        fig, ax = plt.subplots(figsize=(10, 4.5))
        secs = t["ts_event"] / 1e9
        for side, color in (("bid", "tab:green"), ("ask", "tab:red")):
            px = t[f"{side}_px"].astype(float) / 1e4
            px[t[f"{side}_ct"] == 0] = np.nan
            ax.step(secs, px, where="post", color=color, lw=0.8, label=side)
        ax.set_xlabel("ITCH timestamp, seconds after midnight")
        ax.set_ylabel("price")
        ax.set_title(f"{name} (locate {locate}): best bid / ask from the card, {len(t):,} updates")
        ax.legend()
        fig.tight_layout()
        p = out_dir / f"bbo_{name}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    if lat:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        items = [(t, v) for t, v in lat.items() if v.size]
        allv = np.concatenate([v for _, v in items])
        lo, hi = int(allv.min()), int(allv.max())
        if hi - lo <= 40:  # few distinct values: one bar per type and latency
            xs = np.arange(lo, hi + 1)
            w = 0.8 / len(items)
            for k, (t, v) in enumerate(items):
                counts = np.bincount(v - lo, minlength=xs.size)
                ax.bar(xs - 0.4 + (k + 0.5) * w, counts, width=w, label=f"'{t}' ({v.size:,})")
            ax.set_xticks(xs)
            ax.set_xlim(lo - 1, hi + 1)
        else:
            for t, v in items:
                ax.hist(v, bins=100, histtype="step", label=f"'{t}' ({v.size:,})")
        ax.set_xlabel("card cycles: beat with the message's last byte in -> record stamped")
        ax.set_ylabel("messages")
        ax.set_yscale("log")
        ax.set_title("Simulated card latency per ITCH message type (BBO-changing messages)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out_dir / "latency.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------------------------
# Command line (hooked into host/cli.py)


def add_card_arguments(p, *, symbols: bool = True, choices=("model", "sim")) -> None:
    """Add ``--card``, ``--verify``, ``--no-build`` (and ``--symbols``) to an argparse parser.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser (``replay``, ``bbo``).
    symbols : bool
        Also add ``--symbols SYM [SYM ...]`` (``bbo`` has its own comma-separated one).
    choices : sequence of str or None
        Allowed ``--card`` values; ``None`` leaves the check to the command (``bbo`` also
        accepts cards registered with :func:`host.cli.register_card`).
    """
    p.add_argument(
        "--card",
        choices=None if choices is None else list(choices),
        default="model",
        help="model: the reference book in Python; sim: the Verilated top level (default: model)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare the card's BBO trace with the reference model; exit 1 at the first "
        "difference and show it",
    )
    if symbols:
        p.add_argument("--symbols", nargs="+", help="symbols (or locate numbers) to subscribe")
    p.add_argument(
        "--no-build", action="store_true", help="fail instead of building the simulated card"
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
    p.add_argument("--batch-frames", type=int, default=1024, help="frames per batch")
    p.add_argument(
        "--drop-packets",
        type=int,
        nargs="*",
        default=[],
        help="packet indices to leave out (makes sequence gaps; ITCH input only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_replay)


def _run_model(feed: Feed, locates, out: Path, plot_name, names) -> int:
    import time

    from host.card.model import reference_trace

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


def verify(rp: Replay) -> int:
    """Compare the card's trace with the reference; print the first difference. 0 if equal."""
    from host.card.model import first_difference, format_difference, reference_trace

    ref = reference_trace(rp.feed.itch, rp.locates, restarts=rp.restarts)
    i = first_difference(rp.trace, ref)
    if i is None:
        print(f"verify: OK, {len(ref):,} BBO updates identical to the reference model")
        return 0
    print("verify: FAILED\n" + format_difference(rp.trace, ref, i))
    return 1


def _cli_error(msg: str):
    from host.errors import UserError

    return UserError(msg)


def _load_for_cli(path, **kw) -> Feed:
    """:func:`load_feed` with the CLI's input checks (one-line errors)."""
    from host.feed.capture import detect_format

    fmt = detect_format(str(path))  # UserError for a missing / empty / foreign file
    if fmt == "pcap" and kw.get("drop_packets"):
        raise _cli_error("--drop-packets applies to ITCH files, not to pcaps")
    try:
        feed = load_feed(path, **kw)
    except (OSError, EOFError, ValueError) as e:
        raise _cli_error(f"{path}: {e}") from None
    if feed.n_messages == 0:
        raise _cli_error(f"{path}: no ITCH message to replay")
    return feed


def _open_card_for_cli(allow_build: bool):
    from host.card.transport import CardError

    try:
        return open_sim_card(allow_build=allow_build)
    except CardError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _cli_error(f"simulated card: {first}") from None


def _replay_sim(feed: Feed, symbols, *, allow_build: bool, progress: bool, **kw) -> Replay:
    """Open the simulated card, replay ``feed`` through it, close it (CLI errors)."""
    from host.card.transport import CardError

    card = _open_card_for_cli(allow_build)
    try:
        try:
            locates = resolve_locates(feed, symbols, card.slots)
        except ValueError as e:
            raise _cli_error(str(e)) from None
        try:
            return replay_through_card(card, feed, locates, progress=progress, **kw)
        except CardError as e:
            raise _cli_error(f"simulated card: {e}") from None
    finally:
        card.close()


def run_replay(args) -> int:
    """Handler of ``python -m host replay``: exit status (1 when ``--verify`` finds a difference).

    Raises
    ------
    host.errors.UserError
        Unreadable input, unknown symbol, simulated card not available.
    """
    out = Path(args.out)
    kw = {}
    if getattr(args, "drop_packets", None):
        kw["drop_packets"] = args.drop_packets
    if getattr(args, "batch_frames", 1024) < 1:
        raise _cli_error("--batch-frames must be positive")
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
        raise _cli_error(str(e)) from None
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
    )
    print(report(rp))
    _write_csv(rp.trace, out / "bbo.csv")
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
) -> int:
    """``python -m host bbo INPUT --card sim [--verify]``: the card's BBO trace as CSV.

    Parameters
    ----------
    path : str or Path
        NASDAQ ITCH file (plain or gzip) or MoldUDP64 pcap.
    out_fh : binary file
        Receives the same CSV bytes as ``bbo --card model`` (header, then
        :func:`host.feed.fastbook.bbo_csv_bytes` rows).
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

    Returns
    -------
    int
        0, or 1 when ``verify_trace`` found a difference.
    """
    import contextlib
    import sys

    from host.feed.book import BBO_COLUMNS
    from host.feed.fastbook import bbo_csv_bytes

    log = sys.stdout if log is None else log
    feed = _load_for_cli(path)
    rp = _replay_sim(feed, symbols, allow_build=allow_build, progress=progress, latency=False)
    out_fh.write((",".join(BBO_COLUMNS) + "\n").encode())
    out_fh.write(bbo_csv_bytes(rp.trace))
    run = rp.run
    n = feed.n_messages
    print(
        f"card: sim; {n:,} messages in {feed.n_frames:,} frames, {len(rp.locates)} symbols; "
        f"{run.wall_s:.2f} s ({n / max(run.wall_s, 1e-9) / 1e6:.2f} M msg/s)",
        file=log,
    )
    print(f"bbo rows: {len(rp.trace)}; book clears after gaps: {len(rp.restarts)}", file=log)
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
        return verify(rp)
