"""``python -m host replay FILE --lines a,b``: the capture on two damaged lines, A/B arbitrated.

:func:`add_ab_arguments` adds the A/B options to ``replay``; :func:`run_ab_replay` parses them
(bad values: one line, exit 1), runs :func:`host.card.ab_replay.ab_replay` on the card model,
prints the per-line counters and the gaps, writes the merged BBO trace and compares it with
the clean single-line run (exit 1 when a rule of :func:`host.card.ab_replay.check` fails, or
when the BBO differs although no gap was flagged).
"""

from __future__ import annotations

from pathlib import Path

from host.errors import UserError

__all__ = ["add_ab_arguments", "parse_line_values", "run_ab_replay"]

LINES = ("a", "b")


def add_ab_arguments(p) -> None:
    """Add ``--lines``, ``--drop``, ``--dup``, ``--reorder``, ``--dead-after``,
    ``--line-seed``, ``--ab-timeout`` to the ``replay`` parser (values parsed later, so a bad
    one is a one-line error with exit status 1)."""
    g = p.add_argument_group(
        "A/B lines (--card model)",
        "Send the capture on two lines with independent damage and merge them with the "
        "arbiter model. A rate or count is one value for both lines or LINE=VALUE pairs, "
        "e.g. --drop 0.05 or --drop a=0.05,b=0.1.",
    )
    g.add_argument("--lines", help="a,b: feed both lines from the capture")
    g.add_argument("--drop", default="0", help="probability a packet is lost on a line")
    g.add_argument("--dup", default="0", help="probability a packet is sent twice on a line")
    g.add_argument("--reorder", default="0",
                   help="probability a packet is swapped with the next one on a line")
    g.add_argument("--dead-after", default=None,
                   help="a line carries only its first N packets of the capture")
    g.add_argument("--line-seed", default="0", help="seed of the damage (line B uses seed + 1)")
    g.add_argument("--ab-timeout", default=None,
                   help="CONFIG_AB_TIMEOUT: cycles a packet past a gap waits for the other "
                   "line (default 65536; 0: never waits)")


def _number(text: str, what: str, kind):
    try:
        v = kind(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not {'an integer' if kind is int else 'a number'}"
                        ) from None
    if kind is float and not v == v:  # NaN
        raise UserError(f"{what}: {text!r} is not a number")
    return v


def parse_line_values(text: str | None, what: str, kind, default):
    """``"X"`` -> ``{a: X, b: X}``; ``"a=X,b=Y"`` -> per line (missing lines get
    ``default``). Raises :class:`host.errors.UserError` for anything else."""
    if text is None:
        return dict.fromkeys(LINES, default)
    text = text.strip()
    if "=" not in text:
        v = _number(text, what, kind)
        return dict.fromkeys(LINES, v)
    out = dict.fromkeys(LINES, default)
    seen = set()
    for part in text.split(","):
        name, sep, val = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in LINES:
            raise UserError(f"{what}: {part!r} is not LINE=VALUE with LINE a or b")
        if name in seen:
            raise UserError(f"{what}: line {name} given twice")
        seen.add(name)
        out[name] = _number(val.strip(), what, kind)
    return out


def _parse(args):
    from host.card.ab_replay import LineDamage
    from hw.arbiter import DEFAULT_TIMEOUT

    lines = [x.strip().lower() for x in args.lines.split(",")]
    if sorted(lines) != list(LINES):
        raise UserError(f"--lines {args.lines!r}: the arbiter merges two lines, give --lines a,b")
    if args.card != "model":
        raise UserError("--lines needs --card model: the simulated card is built with one MAC "
                        "input (ID_LINES = 1)")
    rates = {n: parse_line_values(getattr(args, n), f"--{n}", float, 0.0)
             for n in ("drop", "dup", "reorder")}
    dead = parse_line_values(args.dead_after, "--dead-after", int, None)
    seed = _number(args.line_seed, "--line-seed", int)
    timeout = DEFAULT_TIMEOUT if args.ab_timeout is None else _number(
        args.ab_timeout, "--ab-timeout", int)
    if not 0 <= timeout < 1 << 32:
        raise UserError(f"--ab-timeout {timeout}: must be 0 .. 2**32-1 cycles")
    damages = []
    for x in LINES:
        try:
            damages.append(LineDamage(rates["drop"][x], rates["dup"][x], rates["reorder"][x],
                                      dead[x]))
        except ValueError as e:
            raise UserError(f"line {x}: {e}") from None
    return damages, seed, timeout


def run_ab_replay(args, feed, locates, out: Path) -> int:
    """The A/B part of ``python -m host replay`` (``--lines`` given); exit status."""
    import time

    import numpy as np

    from host.card.ab_replay import ab_replay, check, edge_losses, line_table, merged_trace
    from host.card.model import first_difference, format_difference, reference_trace
    from host.feed.book import write_bbo_csv

    damages, seed, timeout = _parse(args)
    t0 = time.perf_counter()
    r = ab_replay(feed, damages, seed=seed, timeout=timeout)
    wall = time.perf_counter() - t0
    desc = "; ".join(
        f"{x}: drop {d.drop:g} dup {d.dup:g} reorder {d.reorder:g}"
        + ("" if d.dead_after is None else f" dead after {d.dead_after}")
        for x, d in zip(LINES, damages, strict=True)
    )
    print(f"card: model, A/B lines (arbiter model, timeout {timeout} cycles, seed {seed}); "
          f"{feed.n_messages:,} messages in {feed.n_frames:,} packets; {desc}")
    print(f"run: {wall:.2f} s wall; messages forwarded: {r.seq.size:,}")
    print(line_table(r))
    for first, count in r.gaps[:10]:
        print(f"gap flagged: sequence numbers {first}..{first + count - 1} ({count}), on "
              "neither line in time")
    if len(r.gaps) > 10:
        print(f"gap: ... {len(r.gaps) - 10} more")
    head, tail = edge_losses(feed, r)
    if head or tail:
        print(f"note: {head} message(s) before the first and {tail} after the last forwarded "
              "packet were on neither line (no later packet shows such a loss as a gap)")
    status = 0
    for v in check(feed, r):
        print(f"check failed: {v}")
        status = 1
    trace = merged_trace(feed, r, locates)
    path = out / "bbo.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        write_bbo_csv(fh, trace)
    print(f"BBO trace: {path}")
    complete = r.seq.size == feed.n_messages and np.array_equal(r.seq, feed.seq)
    clean = reference_trace(feed.itch, locates)
    i = first_difference(trace, clean)
    if complete:
        if i is None:
            print(f"BBO: equal to the clean single-line run ({len(clean):,} rows): every "
                  "message reached at least one line")
        else:
            print("BBO: differs from the clean single-line run although every message was "
                  "forwarded")
            print(format_difference(trace, clean, i))
            status = 1
    else:
        lost = feed.n_messages - r.seq.size
        where = "no difference" if i is None else f"first difference at row {i}"
        print(f"BBO: {lost} message(s) on neither line in time; against the clean run: {where}")
    return status
