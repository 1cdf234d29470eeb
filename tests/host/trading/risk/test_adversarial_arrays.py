"""Issue 15, item 7: array arguments of ``RiskEngine.process`` are validated before numba.

A short ``strategies`` array used to be read past its end by the compiled kernel (448 of
2000 orders of a killed strategy passed).
"""

from __future__ import annotations

import numpy as np
import pytest

from host.trading.matching import Side, SubmitOrder, encode_commands
from host.trading.risk import KillScope
from host.trading.risk.testing import BID, INST, Harness, acct


def _batch(n, account=1):
    return encode_commands([SubmitOrder(100 + k, INST, account, Side.BUY, 1, BID - k, ts=10 + k)
                            for k in range(n)])


@pytest.fixture
def h():
    hh = Harness(accounts=(acct(1, strategy=3),))
    hh.bbo()
    hh.risk.engage_kill_switch(KillScope.STRATEGY, 3)
    return hh


def test_short_strategies_array_is_refused(h):
    cmds = _batch(2000)
    with pytest.raises(ValueError, match="strategies"):
        h.risk.process(cmds, np.full(10, 3, np.int64))
    assert h.venue.live_orders == 0 and h.risk.open_orders == 0
    # the right length: every order of the killed strategy is denied
    res = h.risk.process(cmds, np.full(2000, 3, np.int64))
    assert res.denied == 2000


@pytest.mark.parametrize("bad", [
    np.full(5, 3.0),                       # float
    np.full((5, 1), 3, np.int64),          # 2-D
    np.full(6, 3, np.int64),               # too long
    np.array(["3"] * 5),                   # strings
    np.full(5, 2**40, np.uint64),          # unsigned, out of int64 meaning
])
def test_bad_strategies_arrays(h, bad):
    with pytest.raises(ValueError, match="strategies"):
        h.risk.process(_batch(5), bad)


def test_strided_and_narrow_int_strategies_are_accepted(h):
    s = np.full(10, 3, np.int32)[::2]      # non-contiguous, int32
    assert h.risk.process(_batch(5), s).denied == 5


def test_bad_commands_arrays(h):
    with pytest.raises(ValueError, match="commands"):
        h.risk.process(np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="commands"):
        h.risk.process(_batch(4).reshape(2, 2))
    cmds = _batch(6)[::2]                  # non-contiguous rows are copied, not misread
    assert h.risk.process(cmds).denied == 3
