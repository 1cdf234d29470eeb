"""host.card.ab_replay: one capture on two damaged lines, merged by the arbiter model.

The expectations are computed here from the lines' contents (which packets each line
carried), not from the arbiter model: what was forwarded, which gaps were flagged, the
per-line counters that follow from the schedule, and the BBO against the clean run.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from host.card.ab_replay import (
    ABResult,
    LineDamage,
    ab_replay,
    check,
    damage,
    merged_trace,
)
from host.card.model import first_difference, reference_trace
from host.feed.capture import packetize_itch
from host.feed.generator import generate


@pytest.fixture(scope="module")
def feed():
    return packetize_itch(generate(3000, 4, 7), max_payload=300)


def _frame_set(feed, frames) -> set[int]:
    return set(feed.seq[np.isin(feed.frame, list(frames))].tolist())


def test_damage_rates_and_dead_line():
    rng = random.Random(1)
    assert damage(50, LineDamage(), rng) == list(range(50))
    assert damage(50, LineDamage(dead_after=20), rng) == list(range(20))
    out = damage(2000, LineDamage(drop=0.1, dup=0.1, reorder=0.1), random.Random(5))
    assert out == damage(2000, LineDamage(drop=0.1, dup=0.1, reorder=0.1), random.Random(5))
    n_dup = sum(1 for a, b in zip(out, out[1:], strict=False) if a == b)
    n_swap = sum(1 for a, b in zip(out, out[1:], strict=False) if a == b + 1)
    missing = 2000 - len(set(out))
    for n in (n_dup, n_swap, missing):  # about 200 each (10 % of about 1800 draws)
        assert 100 < n < 300, (n_dup, n_swap, missing)


@pytest.mark.parametrize("bad", [
    {"drop": -0.1}, {"dup": 1.5}, {"drop": 0.6, "reorder": 0.6}, {"dead_after": -1},
])
def test_bad_damage_is_refused(bad):
    with pytest.raises(ValueError):
        LineDamage(**bad)


def test_clean_lines_a_wins_b_is_all_duplicates(feed):
    r = ab_replay(feed, [LineDamage(), LineDamage()])
    n = feed.n_frames
    c = r.line_counters
    assert (c["line_a_packets"], c["line_b_packets"]) == (n, n)
    assert r.won == [n, 0]  # A is half a slot ahead: first arrival wins
    assert (c["line_a_duplicates"], c["line_b_duplicates"]) == (0, n)
    assert r.gaps == [] and c["line_timeouts"] == 0
    assert np.array_equal(r.seq, feed.seq)
    assert check(feed, r) == []


def test_drops_on_both_lines_gap_exactly_where_both_miss(feed):
    """Several seeds: whenever the two lines together carried every packet, the BBO equals
    the clean run; otherwise exactly the messages on neither line are flagged."""
    clean = reference_trace(feed.itch)
    covered = holes = 0
    for seed in range(0, 40, 2):
        d = LineDamage(drop=0.07, dup=0.05)
        r = ab_replay(feed, [d, d], seed=seed)
        assert check(feed, r) == [], seed
        on = set(r.orders[0]) | set(r.orders[1])
        absent = set(feed.seq.tolist()) - _frame_set(feed, on)
        flagged = {q for f, k in r.gaps for q in range(f, f + k)}
        lo, hi = int(r.seq[0]), int(r.seq[-1])
        assert flagged == {q for q in absent if lo <= q <= hi}, seed
        assert set(r.seq.tolist()) == set(feed.seq.tolist()) - absent, seed
        assert r.ingress["missing"] == len(flagged), seed
        # every distinct packet carried is forwarded once; every other copy is a duplicate
        c = r.line_counters
        assert sum(r.won) == len(on), seed
        received = len(r.orders[0]) + len(r.orders[1])
        assert c["line_a_packets"] + c["line_b_packets"] == received
        assert c["line_a_duplicates"] + c["line_b_duplicates"] == received - len(on), seed
        tr = merged_trace(feed, r)
        if not absent:
            covered += 1
            assert first_difference(tr, clean) is None, seed
        else:
            holes += 1
            assert r.gaps or not flagged
    assert covered and holes, (covered, holes)  # both cases exercised


@pytest.mark.parametrize("lossy", [0, 1])
def test_every_gap_of_one_line_is_filled_by_the_other(feed, lossy):
    """One line clean, the other dropping: no gap flagged, the BBO is the clean run's, and
    every gap of the lossy line (a packet past the end of its previous one) counts as filled
    from the other line."""
    ds = [LineDamage(), LineDamage()]
    ds[lossy] = LineDamage(drop=0.3, dup=0.1)
    r = ab_replay(feed, ds, seed=11)
    order = r.orders[lossy]
    line_gaps = sum(1 for p, q in zip(order, order[1:], strict=False) if q > p + 1)
    line_gaps += order[0] > 0  # a packet before its first was missed too (line seen later)
    x = "ab"[lossy]
    assert line_gaps > 5
    # the first packet of a line has no previous one: a gap before it is not a line gap
    assert r.line_counters[f"line_{x}_filled"] == line_gaps - (order[0] > 0)
    assert r.gaps == [] and np.array_equal(r.seq, feed.seq)
    assert first_difference(merged_trace(feed, r), reference_trace(feed.itch)) is None


@pytest.mark.parametrize("timeout", [0, 50, 1 << 20])
def test_dead_line(feed, timeout):
    """Line A dies after 15 packets; B drops some: the gaps after A died are B's, each
    released after the timeout (B waits for a line that never comes back)."""
    r = ab_replay(feed, [LineDamage(dead_after=15), LineDamage(drop=0.2)], seed=4,
                  timeout=timeout)
    assert check(feed, r) == []
    assert r.line_counters["line_a_packets"] == 15
    b_after = [i for i in range(15, feed.n_frames) if i not in set(r.orders[1])]
    holes = sum(1 for k, i in enumerate(b_after) if k == 0 or b_after[k - 1] != i - 1)
    holes -= bool(b_after and b_after[-1] == feed.n_frames - 1)  # a lost tail shows no gap
    assert holes > 0
    assert len(r.gaps) == holes
    assert r.line_counters["line_timeouts"] == holes  # A never comes back: each wait times out


def test_reorder_late_copy_is_a_duplicate(feed):
    """Swaps on A, drops on B: a message that reached A only after a later packet is
    flagged when B missed it too (no reorder buffer); anything else is forwarded."""
    r = ab_replay(feed, [LineDamage(reorder=0.2), LineDamage(drop=0.3)], seed=2)
    assert check(feed, r) == []
    assert r.line_counters["line_a_duplicates"] > 0


def test_check_catches_a_hidden_gap_and_a_duplicate(feed):
    r = ab_replay(feed, [LineDamage(drop=0.3), LineDamage(drop=0.3)], seed=3)
    assert r.gaps and check(feed, r) == []
    hidden = ABResult(**{**r.__dict__, "gaps": r.gaps[1:]})
    assert any("not flagged" in v for v in check(feed, hidden))
    twice = ABResult(**{**r.__dict__, "seq": np.concatenate([r.seq, r.seq[-1:]])})
    assert any("twice" in v for v in check(feed, twice))
    invented = ABResult(**{**r.__dict__, "gaps": [*r.gaps, (int(r.seq[0]), 1)]})
    assert any("delivered them in order" in v for v in check(feed, invented))
