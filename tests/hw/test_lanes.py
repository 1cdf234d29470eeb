"""hw.lanes.LadderLanes: constructor validation and the port shape of one ladder."""

from __future__ import annotations

import pytest

from hw.ladder import Ladder
from hw.lanes import LadderLanes


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(lanes=3, slots=8), ValueError, "power of two"),
    (dict(lanes=8, slots=4), ValueError, r"lanes \(8\) must be <= slots \(4\)"),
    (dict(lanes=0, slots=4), ValueError, "lanes must be >= 1"),
    (dict(lanes=2.0, slots=4), TypeError, "lanes must be an int"),
    (dict(lanes=2, slots=4, lane_fifo=1), ValueError, "lane_fifo must be >= 2"),
])
def test_bad_parameters(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        LadderLanes(depth=64, k=4, n=3, **kw)


@pytest.mark.parametrize("lanes, slots", [(1, 4), (2, 4), (4, 4), (4, 6), (8, 256)])
def test_same_ports_as_one_ladder(lanes, slots):
    """The book swaps one ladder for lanes: the signature must be the ladder's."""
    one = Ladder(slots=slots, depth=64, k=4, n=3)
    many = LadderLanes(lanes=lanes, slots=slots, depth=64, k=4, n=3)
    assert many.signature == one.signature
    assert many.local_slots == -(-slots // lanes)
    assert len(many.ladders) == lanes
