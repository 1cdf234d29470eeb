"""What a replay through the card measured: latency per message type, the text report, plots,
and the comparison with the reference model.

Everything here reads a :class:`host.card.replay.Replay`; nothing drives the card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from host.card.replay import Replay, message_in_cycles

__all__ = [
    "latency_by_type", "record_latency", "report", "plot", "flag_counts", "recovery_summary",
    "recovered_view", "write_card_csv", "verify",
]


def record_latency(rp: Replay, *, out: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-record latency in card clock cycles, aligned with ``rp.recs``.

    Returns ``(cycles, mtype)``: for every record of ``rp.recs``, the latency of the message
    that produced it (as :func:`latency_by_type` measures it) and that message's ITCH type
    (``uint8``); ``-1`` and ``0`` for records that have none (re-seed commit records, or a run
    without beat timing).
    """
    from hw import bbo_record

    n = len(rp.recs)
    cycles = np.full(n, -1, np.int64)
    mtype = np.zeros(n, np.uint8)
    run = rp.run
    if run.beat_cycles is None or run.rec_cycles is None or run.epoch is None:
        return cycles, mtype
    t_in = message_in_cycles(rp.feed, run.beat_cycles)
    # the records of the trace (host.card.model.bbo_records): not cleared, not depth_only
    keep = (rp.recs["flags"] & (bbo_record.FLAG_CLEARED | bbo_record.FLAG_DEPTH_ONLY)) == 0
    idx = rp.trace["msg_index"]
    ok = idx >= 0
    pos = np.flatnonzero(keep)[ok]  # the records of the trace rows with a message
    t0 = t_in[idx[ok]].astype(np.int64)
    if out:
        t_out = run.rec_cycles[pos].astype(np.int64)
    else:
        # card_cycles is STATUS_CYCLES mod 2**32: unwrapped against the message's input
        # cycle (the record comes after it, by far less than 2**32 cycles)
        stamp = rp.recs["card_cycles"][pos].astype(np.int64) + run.epoch
        t_out = t0 + ((stamp - t0) & 0xFFFFFFFF)
    cycles[pos] = t_out - t0
    mtype[pos] = rp.feed.mtype[idx[ok]]
    return cycles, mtype


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
    Per record: :func:`record_latency`.
    """
    cycles, mtype = record_latency(rp, out=out)
    has = cycles >= 0
    lat, types = cycles[has], mtype[has]
    return {chr(t): lat[types == t] for t in sorted(set(types.tolist()))}


NOT_CLOSED = (
    "ns not shown: the card's nominal clock ({mhz:.2f} MHz, ID_CLK_HZ) is not timing-closed (the "
    "synthesis report, docs/synthesis.md, has paths of 15-46 logic levels against ~6 for it); "
    "--clock-mhz F converts cycles at a clock your build closes"
)


def report(rp: Replay, *, label: str = "sim", clock_hz: float | None = None) -> str:
    """Text report: run figures, counters, latency per message type.

    Cycles are the card's own measure. Nanoseconds are printed only at ``clock_hz``, a clock
    the caller's build is known to close (``replay --clock-mhz``): the nominal ``ID_CLK_HZ``
    (322 MHz) is a target the synthesis report does not support yet, so it is not used to
    turn cycles into time.
    """
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
    clk = float(clock_hz) if clock_hz else 0.0
    if run.cycles and clk:
        lines.append(
            f"at {clk / 1e6:.2f} MHz (--clock-mhz) this feed takes "
            f"{run.cycles / clk * 1e3:.3f} ms = {n / (run.cycles / clk) / 1e6:.1f} "
            "M msgs/s (frames back to back)"
        )
    elif run.cycles and rp.clk_hz:
        lines.append(NOT_CLOSED.format(mhz=rp.clk_hz / 1e6))
    from hw import bbo_record

    n_clear = int((rp.recs["flags"] & bbo_record.FLAG_CLEARED != 0).sum()) if len(rp.recs) else 0
    not_valid, stale = flag_counts(rp)
    lines.append(
        f"BBO updates: {len(rp.trace):,} (+{n_clear} re-seed commit records); "
        f"not valid: {not_valid:,}; stale (after a gap, until cleared or re-seeded): {stale:,}; "
        f"book clears after gaps: {len(rp.restarts)}; {recovery_summary(rp)}"
    )
    if not_valid:
        lines.append(
            f"warning: {not_valid:,} rows flagged not valid (a level, order or size the card's "
            "book cannot hold): those BBOs are not exact; the CSV's valid column marks them"
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
        ns = f"{'ns':>8}" if clk else ""
        lines.append(
            f"  {'type':>4} {'count':>9} {'min':>6} {'median':>7} {'p99':>6} {'max':>6} {ns}"
        )
        for t, v in lat.items():
            if v.size:
                med = float(np.median(v))
                ns = f"{med / clk * 1e9:>8.1f}" if clk else ""
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


def flag_counts(rp: Replay) -> tuple[int, int]:
    """``(not_valid, stale)``: rows of the card's trace flagged not valid, and stale."""
    f = rp.flags
    return int((f["valid"] == 0).sum()), int(f["stale"].sum())


def recovery_summary(rp: Replay) -> str:
    """``recoveries: N (S after gaps, I not valid; K orders re-seeded); recovered rows: R``."""
    rec = rp.recoveries or []
    st = sum(1 for r in rec if r.cause == "stale")
    rows = int(rp.flags["recovered"].sum()) if "recovered" in rp.flags else 0
    return (f"recoveries: {len(rec)} ({st} after gaps, {len(rec) - st} not valid; "
            f"{sum(r.orders for r in rec):,} orders re-seeded); recovered rows: {rows:,}")


def recovered_view(rp: Replay, ref: np.ndarray):
    """The rows of the card trace and of the reference that must be equal after recoveries.

    For each re-seed of a locate at message ``r`` (:class:`host.card.replay.Recovery`), the
    *window* runs from the locate's first flagged row (not valid or stale) since its previous
    re-seed up to ``r``: those card rows are flagged (the card said they are not exact) and
    are left out, with the reference rows of that locate in the same message range. Every
    other row must be equal; the re-seed put the reference book into the slot, so the card
    and the reference emit the same rows after it.

    Returns
    -------
    (card_keep, ref_keep, problems)
        Boolean masks over ``rp.trace`` and ``ref``, and a list of messages: an unflagged card
        row inside a window, a card row after a re-seed without the ``recovered`` flag, or a
        commit record (flags ``cleared | recovered``) that is missing, not valid, or differs
        from the reference BBO at its re-seed.
    """
    from hw import bbo_record

    tr, fl = rp.trace, rp.flags
    ck = np.ones(len(tr), bool)
    rk = np.ones(len(ref), bool)
    problems: list[str] = []
    idx, loc = tr["msg_index"], tr["locate"]
    flagged = (fl["valid"] == 0) | (fl["stale"] == 1)
    by_loc: dict[int, list] = {}
    for r in rp.recoveries or []:
        by_loc.setdefault(r.locate, []).append(r)
    for L, recs in by_loc.items():
        mine = loc == L
        prev = 0
        for r in sorted(recs, key=lambda x: x.msg_index):
            span = mine & (idx >= prev) & (idx < r.msg_index)
            hit = np.flatnonzero(span & flagged)
            start = int(idx[hit[0]]) if hit.size else r.msg_index
            win = mine & (idx >= start) & (idx < r.msg_index)
            if (win & ~flagged).any():
                k = int(np.flatnonzero(win & ~flagged)[0])
                problems.append(f"locate {L}: row {k} (message {int(idx[k])}) before the re-seed "
                                f"at message {r.msg_index} is neither flagged nor compared")
            ck &= ~win
            rk &= ~((ref["locate"] == L) & (ref["msg_index"] >= start)
                    & (ref["msg_index"] < r.msg_index))
            prev = r.msg_index
        first = min(r.msg_index for r in recs)
        after = mine & (idx >= first)
        if "recovered" in fl and (after & (fl["recovered"] == 0)).any():
            k = int(np.flatnonzero(after & (fl["recovered"] == 0))[0])
            problems.append(f"locate {L}: row {k} after its re-seed is not flagged recovered")
    commits = rp.recs[(rp.recs["flags"] & bbo_record.FLAG_CLEARED) != 0]
    want = rp.recoveries or []
    if len(commits) != len(want):
        problems.append(f"{len(commits)} re-seed commit records for {len(want)} re-seeds")
    for c, r in zip(commits, want, strict=False):
        f = int(c["flags"])
        got = tuple(int(c[k]) for k in ("bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz",
                                         "ask_ct"))
        exp = tuple(min(int(v), (1 << 32) - 1) for v in r.bbo)
        if (int(c["locate"]), int(c["seq"])) != (r.locate, r.seq) or got != exp \
                or f & bbo_record.FLAG_BOOK_INVALID or not f & bbo_record.FLAG_RECOVERED:
            problems.append(f"re-seed of locate {r.locate} at message {r.msg_index}: commit "
                            f"record locate {int(c['locate'])} seq {int(c['seq'])} flags "
                            f"{f:#04x} BBO {got}, reference {exp}")
    return ck, rk, problems


def write_card_csv(rp: Replay, path: Path) -> None:
    """The card's BBO trace as CSV: the reference columns, then ``valid``, ``stale`` and
    ``recovered``."""
    from host.feed.fastbook import bbo_csv_bytes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bbo_csv_bytes(rp.trace, header=True, extra=rp.flags))


def verify(rp: Replay) -> int:
    """Compare the card's trace with the reference, flags included; print the first difference.

    The reference book is exact on every message, so a card row flagged not valid is a
    difference even where its prices happen to match. Returns 0 when every row is equal and
    valid, 1 otherwise.

    After re-seeds (:attr:`Replay.recoveries`) the reference runs on without a restart, the
    flagged rows of each symbol before its re-seed are left out (:func:`recovered_view`: they
    said they were not exact) and counted; every other row must be equal and valid, each
    commit record must show the reference BBO, and every row after a re-seed must carry the
    ``recovered`` flag.
    """
    from host.card.model import first_difference, format_difference, reference_trace

    ref = reference_trace(rp.feed.itch, rp.locates, restarts=rp.restarts)
    problems: list[str] = []
    left_out = 0
    tr = rp.trace
    if rp.recoveries:
        ck, rk, problems = recovered_view(rp, ref)
        left_out = int((~ck).sum())
        tr, ref = tr[ck], ref[rk]
        not_valid = int((rp.flags["valid"][ck] == 0).sum())
    else:
        not_valid, _ = flag_counts(rp)
    i = first_difference(tr, ref)
    if i is None and not not_valid and not problems:
        extra = ""
        if rp.recoveries:
            extra = (f"; {left_out:,} flagged card rows before {len(rp.recoveries)} re-seeds "
                     "left out (not exact, and flagged so), every row after them compared")
        print(f"verify: OK, {len(ref):,} BBO updates identical to the reference model{extra}")
        return 0
    lines = ["verify: FAILED", *problems]
    if not_valid:
        lines.append(
            f"{not_valid:,} of {len(rp.trace):,} card rows are flagged not valid (the card's "
            "book could not hold the symbol's book)"
        )
    if i is not None:
        lines.append(format_difference(tr, ref, i))
    if not_valid and not rp.recoveries and getattr(rp, "params", None) is not None:
        lines.append(_explain_not_valid(rp))
    print("\n".join(lines))
    return 1


def _explain_not_valid(rp: Replay) -> str:
    """Check the card's rows and ``valid`` flags against the host's model of its ladder rules
    (:func:`host.card.depth.expected_card_trace`): are the not-valid rows the predicted ones?"""
    import numpy as np

    from host.card.depth import expected_card_trace
    from host.card.model import first_difference, format_difference
    from host.card.ticks import tick_codes

    itch = rp.feed.itch
    tr, valid = expected_card_trace(itch, rp.locates, tick_codes(itch, rp.locates),
                                    levels=rp.params.levels, depth_n=rp.params.depth_n,
                                    restarts=rp.restarts)
    j = first_difference(rp.trace, tr)
    if j is None and np.array_equal(valid, rp.flags["valid"]):
        return (f"the card's rows and flags are exactly what its depth rules predict "
                f"(host.card.depth: {int((valid == 0).sum()):,} rows not valid: levels beyond "
                f"the {rp.params.levels}-tick ladder window, off-grid prices, overflows)")
    if j is None:
        j = int(np.flatnonzero(valid != rp.flags["valid"])[0])
        return (f"the card's valid flag differs from its depth rules (host.card.depth) at row "
                f"{j:,}: card {int(rp.flags['valid'][j])}, predicted {int(valid[j])}")
    return ("the card differs from its depth rules (host.card.depth):\n"
            + format_difference(rp.trace, tr, j))


def verify_depth(rp: Replay) -> int:
    """Compare every record of a ``depth_n > 1`` card (``depth_only`` ones too, levels 2..N
    included) with the reference top-N trace (:func:`host.feed.depth.depth_trace`); print the
    result. Returns 0 when equal, 1 otherwise.

    The reference sizes are clipped to 2**32-1 as the card's u32 fields saturate. Runs with
    re-seeds or book restarts are not compared here (their rows before a re-seed are flagged,
    not exact): :func:`verify` still checks their BBO rows.
    """
    from host.card.model import depth_table
    from host.feed.book import BBO_COLUMNS
    from host.feed.depth import depth_columns as ref_columns
    from host.feed.depth import depth_table as ref_table
    from host.feed.depth import depth_trace

    n = rp.depth_n
    if rp.recoveries or rp.restarts:
        print(f"verify depth: not compared ({len(rp.recoveries)} re-seeds, {len(rp.restarts)} "
              "restarts: rows before them are flagged, not exact)")
        return 0
    card = depth_table(rp.recs, rp.feed.seq)
    # the card's table without its flag columns: the reference's column order
    from host.card.model import CARD_FLAG_COLUMNS

    nb = len(BBO_COLUMNS)
    card = np.delete(card, np.arange(nb, nb + len(CARD_FLAG_COLUMNS)), axis=1)
    ref = ref_table(depth_trace(rp.feed.itch, rp.locates, n))
    cols = ref_columns(n)
    for j, c in enumerate(cols):
        if c.endswith("_sz"):
            ref[:, j] = np.minimum(ref[:, j], (1 << 32) - 1)
    m = min(len(card), len(ref))
    diff = np.flatnonzero((card[:m] != ref[:m]).any(axis=1))
    if not diff.size and len(card) == len(ref):
        k = int(card[:, -1].sum()) if len(card) else 0
        print(f"verify depth: OK, {len(ref):,} top-{n} rows ({k:,} depth_only) identical to "
              "the reference (host.feed.depth.depth_trace)")
        return 0
    i = int(diff[0]) if diff.size else m
    lines = [f"verify depth: FAILED at row {i} (card {len(card):,} rows, reference "
             f"{len(ref):,})"]
    for name, t in (("card", card), ("ref ", ref)):
        if i < len(t):
            lines.append(f"  {name} " + " ".join(f"{c}={v}" for c, v in zip(cols, t[i].tolist(),
                                                                             strict=True)))
    print("\n".join(lines))
    return 1
