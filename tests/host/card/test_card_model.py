"""Reference trace and the --verify comparison, on records synthesized from the reference."""

from __future__ import annotations

import numpy as np
import pytest

from host.card.model import (
    card_trace,
    decode,
    first_difference,
    format_difference,
    reference_trace,
)
from host.feed.book import BBO_COLUMNS, bbo_trace
from host.feed.generator import generate
from hw import bbo_record


@pytest.fixture(scope="module")
def itch():
    return generate(4000, 5, 7)


def as_card_records(trace, seq0=1):
    recs = np.zeros(len(trace), bbo_record.DTYPE)
    recs["seq"] = trace["msg_index"] + seq0
    for c in BBO_COLUMNS[1:]:
        recs[c] = trace[c]
    recs["flags"] = (trace["bid_ct"] > 0) * bbo_record.FLAG_BID_VALID
    recs["msg_type"] = ord("A")
    recs["record_seq"] = np.arange(len(trace))
    return recs.view(np.uint8).reshape(-1, 64)


def test_reference_is_the_reference_book(itch):
    ref = reference_trace(itch)
    slow = bbo_trace(itch)
    assert first_difference(ref, slow) is None
    locs = sorted(set(ref["locate"].tolist()))[:2]
    sub = reference_trace(itch, locs)
    assert set(sub["locate"].tolist()) == set(locs)
    assert first_difference(sub, slow[np.isin(slow["locate"], locs)]) is None


def test_card_trace_round_trip(itch):
    ref = reference_trace(itch)
    seq = np.arange(1, 4001, dtype=np.int64)
    raw = as_card_records(ref)
    got = card_trace(decode(raw), seq)
    assert first_difference(got, ref) is None


def test_cleared_records_are_left_out(itch):
    ref = reference_trace(itch)
    recs = decode(as_card_records(ref)).copy()
    recs["flags"][5] |= bbo_record.FLAG_CLEARED
    got = card_trace(recs, np.arange(1, 4001))
    assert len(got) == len(ref) - 1


def test_differences_are_found_and_shown(itch):
    ref = reference_trace(itch)
    seq = np.arange(1, 4001, dtype=np.int64)
    recs = decode(as_card_records(ref)).copy()
    recs["ask_sz"][17] += 1
    got = card_trace(recs, seq)
    assert first_difference(got, ref) == 17
    text = format_difference(got, ref, 17)
    assert "row 17" in text and f"ask_sz={int(ref['ask_sz'][17]) + 1}" in text
    # a missing row at the end, and an unknown sequence number
    assert first_difference(got[:-1], ref[:-1]) == 17
    assert first_difference(card_trace(decode(as_card_records(ref[:-1])), seq), ref) == len(ref) - 1
    recs2 = decode(as_card_records(ref)).copy()
    recs2["seq"][3] = 99999
    assert card_trace(recs2, seq)["msg_index"][3] == -1
    assert first_difference(card_trace(recs2, seq), ref) == 3


def test_restarts_start_from_empty_books(itch):
    full = reference_trace(itch)
    cut = 2000
    split = reference_trace(itch, restarts=[cut])
    assert first_difference(split[split["msg_index"] < cut], full[full["msg_index"] < cut]) is None
    after = split[split["msg_index"] >= cut]
    assert len(after) and not np.array_equal(after, full[full["msg_index"] >= cut])
