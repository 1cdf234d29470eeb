"""Stimulus and expected output for the book benches, from the host reference book.

Expected values always come from :class:`host.feed.book.L3Book` (never computed by hand): the
bench feeds the same messages to the reference, restricted to the subscribed locates, and
turns every ``apply() -> True`` into the BBO record the gateware must emit.
"""

from __future__ import annotations

from host.card.depth import level_ops, touched_orders
from host.feed.book import L3Book
from host.feed.record_map import expected_record
from hw.layouts import ItchRecord, pack


def records(msgs, *, first_seq: int = 1, gaps=()) -> list[int]:
    """Packed :data:`hw.layouts.ItchRecord` values, seq counting from ``first_seq``; the
    messages whose index is in ``gaps`` carry the gap flag."""
    gaps = set(gaps)
    return [
        pack(ItchRecord, expected_record(m, seq=first_seq + i, gap=i in gaps))
        for i, m in enumerate(msgs)
    ]


def expected(msgs, locates, depth_n: int, *, first_seq: int = 1, gaps=(), book=None):
    """Expected BBO records (dicts shaped like :func:`hw.book_layouts.decode_bbo`).

    ``stale`` is 1 from the first gap record on (no clears in between). Returns
    ``(records, book)``.
    """
    book = book or L3Book(locates)
    gaps = set(gaps)
    stale = False
    out = []
    for i, m in enumerate(msgs):
        stale = stale or i in gaps
        if book.apply(m):
            loc = book.last_locate
            b = book.bbo(loc)
            out.append(
                {
                    "locate": loc,
                    "timestamp": m.timestamp,
                    "seq": first_seq + i,
                    "msg_type": ord(m.message_type),
                    "bid_px": b.bid_px,
                    "bid_sz": b.bid_sz,
                    "bid_ct": b.bid_ct,
                    "ask_px": b.ask_px,
                    "ask_sz": b.ask_sz,
                    "ask_ct": b.ask_ct,
                    "valid": 1,
                    "stale": int(stale),
                    "bids": [tuple(x) for x in book.depth(loc, "B", depth_n)],
                    "asks": [tuple(x) for x in book.depth(loc, "S", depth_n)],
                }
            )
    return out, book


def compare(got: list[dict], exp: list[dict], *, invalid_ok=()) -> None:
    """Record-by-record comparison; raises ``AssertionError`` with the first difference.

    Locates in ``invalid_ok`` are checked separately: their records must match the reference
    until the first ``valid == 0`` record, which must appear, and every later record of that
    locate must have ``valid == 0``.
    """
    invalid_ok = set(invalid_ok)
    g_main = [r for r in got if r["locate"] not in invalid_ok]
    e_main = [r for r in exp if r["locate"] not in invalid_ok]
    _exact(g_main, e_main)
    for loc in invalid_ok:
        g = [r for r in got if r["locate"] == loc]
        e = [r for r in exp if r["locate"] == loc]
        k = next((i for i, r in enumerate(g) if not r["valid"]), None)
        assert k is not None, f"locate {loc}: no not-valid record"
        _exact(g[:k], e[:k])
        assert all(not r["valid"] for r in g[k:]), f"locate {loc}: valid again after an error"


def _exact(got, exp):
    for i, (g, e) in enumerate(zip(got, exp, strict=False)):
        # no bench injects (``recovered``/``seeded`` 0); ``bad`` is checked with ``valid``
        flags = (g.get("recovered"), g.get("seeded"), g.get("bad"))
        if flags[:2] != (0, 0) or (flags[2] and g.get("valid")):
            raise AssertionError(f"BBO record {i} (seq {e['seq']}): flags recovered, seeded, "
                                 f"bad = {flags} with valid = {g.get('valid')}")
        # the book benches build with depth_records=False: never a depth-only record (the slot
        # is checked by sim/top, which knows the subscription)
        assert not g.get("depth_only"), f"BBO record {i} (seq {e['seq']}): depth_only set"
        # the book benches feed records with rx_ns = 0 (the stamp's path through the book is
        # checked exactly by sim/top): it must come out unchanged
        assert g.get("rx_ns", 0) == e.get("rx_ns", 0), f"BBO record {i}: rx_ns {g.get('rx_ns')}"
        g = {k: v for k, v in g.items()
             if k not in ("recovered", "seeded", "bad", "slot", "depth_only", "rx_ns")}
        if g != e:
            diff = {k: (g.get(k), e[k]) for k in e if g.get(k) != e[k]}
            raise AssertionError(f"BBO record {i} (seq {e['seq']}) differs (got, want): {diff}")
    assert len(got) == len(exp), f"{len(got)} BBO records, reference has {len(exp)}"


def clear_locate(book: L3Book, locate: int) -> None:
    """Empty ``locate``'s book in the reference, as a slot clear does on the card: its orders
    are forgotten (a later ``E/C/X/D/U`` of one is unknown, an ``A`` reusing its reference is a
    new order)."""
    for ref in [r for r, o in book.orders.items() if o[0] == locate]:
        del book.orders[ref]
    for side in ("B", "S"):
        book._sides.pop((locate, side), None)


def expected_deep(msgs, sub: dict[int, int], ticks: dict[int, int], *, depth: int, k: int,
                  depth_n: int, first_seq: int = 1):
    """Expected BBO records of the ladder book (flags included), for streams whose books may
    reach beyond the ladder window.

    :class:`host.feed.book.L3Book` applies every message (the anomaly rules); the level ops
    each message makes (read off the book's orders before and after it, as the order table
    emits them) drive ``sim/ladder``'s :class:`LadderModel`, which gives the validity of the
    slot after every op (``far_visible``, ``off_grid``, ...) and, for a valid record, checks
    that the represented top ``depth_n`` equals the exact one. A record is expected when the
    BBO or the validity changes (a ``U``: before its removal vs after its add). Returns
    ``(records, model)``.
    """
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ladder"))
    from ladder_model import LadderModel

    from hw.ladder import LadderOp

    book = L3Book(set(sub))
    lm = LadderModel(slots=max(sub.values()) + 1, depth=depth, k=k, n=depth_n,
                     check_truth=False)
    for loc, s in sub.items():
        lm.set_tick(s, ticks.get(loc, 0))
    valid = {s: 1 for s in sub.values()}
    out = []

    def levels(loc):
        """The card's view: the top ``depth_n`` of both sides it shows (represented levels,
        then the far cache's)."""
        return [lm.shown(sub[loc], bid) for bid in (True, False)]

    def state(loc):
        bids, asks = levels(loc)
        return (*(bids[0] if bids else (0, 0, 0)), *(asks[0] if asks else (0, 0, 0)),
                valid[sub[loc]])

    for i, m in enumerate(msgs):
        t = m.message_type
        loc = m.stock_locate
        if t not in "AFECXDU" or loc not in sub:
            book.apply(m)
            continue
        pre, touched = touched_orders(book, m, sub)
        before = {x: state(x) for x in touched}
        book.apply(m)
        ops = [(a, b, c, d, e, LadderOp.ADD if add else LadderOp.RED)
               for a, b, c, d, e, add in level_ops(book, pre)]
        for oloc, side, px, q, rem, kind in ops:
            rec = lm.apply(dict(kind=kind, slot=sub[oloc], bid=int(side == "B"), px=px, q=q,
                                remove=rem, tag=0))
            valid[sub[oloc]] = rec["valid"]
        for x in sorted(touched):
            st = state(x)
            if st == before[x]:
                continue
            bids, asks = levels(x)
            if st[6]:  # valid: the card's levels are the exact book's
                assert bids == [tuple(v) for v in book.depth(x, "B", depth_n)], (i, bids)
                assert asks == [tuple(v) for v in book.depth(x, "S", depth_n)], (i, asks)
            out.append({
                "locate": x, "timestamp": m.timestamp, "seq": first_seq + i,
                "msg_type": ord(t),
                "bid_px": st[0], "bid_sz": st[1], "bid_ct": st[2],
                "ask_px": st[3], "ask_sz": st[4], "ask_ct": st[5],
                "valid": st[6], "stale": 0, "bids": bids, "asks": asks,
            })
    return out, lm
