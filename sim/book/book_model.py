"""Stimulus and expected output for the book benches, from the host reference book.

Expected values always come from :class:`host.feed.book.L3Book` (never computed by hand): the
bench feeds the same messages to the reference, restricted to the subscribed locates, and
turns every ``apply() -> True`` into the BBO record the gateware must emit.
"""

from __future__ import annotations

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
