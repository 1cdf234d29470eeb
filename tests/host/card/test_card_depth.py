"""host.card.depth (the host's model of the card's ladder rules and flags) against the
ladder's reference model (sim/ladder via sim/book's expected_deep) and the reference trace."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from host.card.depth import expected_card_trace
from host.card.model import reference_trace
from host.card.ticks import tick_codes
from host.feed.book import iter_indexed
from host.feed.generator import generate

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def deep():
    buf = generate(6_000, 6, 5, profile="realistic")
    msgs = [m for _, m in iter_indexed(buf)]
    locs = sorted({m.stock_locate for m in msgs if m.message_type == "R"})
    return buf, msgs, locs


def test_matches_ladder_model_on_a_small_window(deep):
    sys.path.insert(0, str(ROOT / "sim" / "book"))
    from book_model import expected_deep

    buf, msgs, locs = deep
    ticks = tick_codes(buf, locs)
    sub = {loc: i for i, loc in enumerate(locs)}
    exp, lm = expected_deep(msgs, sub, ticks, depth=64, k=4, depth_n=3)
    tr, valid = expected_card_trace(buf, locs, ticks, levels=64, depth_n=3)
    assert lm.stats["far_visible"] > 0 and 0 < int((valid == 0).sum()) < len(valid)
    assert len(tr) == len(exp)
    for row, v, e in zip(tr, valid, exp, strict=True):
        assert (int(row["locate"]), int(row["msg_index"]) + 1, int(v)) == (
            e["locate"], e["seq"], e["valid"])
        assert int(row["bid_px"]) == e["bid_px"] and int(row["ask_sz"]) == e["ask_sz"]


def test_wide_window_is_the_reference_trace(deep):
    buf, _msgs, locs = deep
    tr, valid = expected_card_trace(buf, locs, tick_codes(buf, locs), levels=4096, depth_n=1)
    ref = reference_trace(buf, locs)
    assert valid.all() and len(tr) == len(ref)
    for c in ref.dtype.names:
        assert np.array_equal(tr[c].astype(np.int64), ref[c].astype(np.int64)), c


def test_off_grid_price_is_not_valid_until_restart(deep):
    buf, _msgs, locs = deep
    ticks = {loc: 2 for loc in locs}  # $1 ticks: cent prices are off the grid
    tr, valid = expected_card_trace(buf, locs, ticks, levels=4096, depth_n=1)
    assert len(tr) and not valid[-1]
