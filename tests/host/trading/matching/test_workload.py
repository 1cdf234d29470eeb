"""The seeded workload generator (host.trading.matching.workload)."""

from __future__ import annotations

import numpy as np

from host.trading.matching import MatchingEngine
from host.trading.matching.workload import WorkloadSpec, mixed_workload, workload_config


def test_deterministic_and_mixed() -> None:
    spec = WorkloadSpec(n_resting=5000, n_instruments=3)
    a = mixed_workload(20000, spec, seed=4)
    b = mixed_workload(20000, spec, seed=4)
    c = mixed_workload(20000, spec, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])
    pre, ops = a
    assert len(pre) == 5000 and (pre["kind"] == 1).all() and (pre["tif"] == 1).all()
    share = np.bincount(ops["kind"], minlength=4)[1:] / len(ops)
    assert abs(share[1] - 0.35) < 0.03 and abs(share[2] - 0.15) < 0.03  # cancels, replaces
    assert ((ops["order_type"] == 2) & (ops["kind"] == 1)).mean() > 0.02  # market orders
    assert set(np.unique(pre["instrument"])) == {1, 2, 3}
    assert (np.diff(np.concatenate([pre, ops])["ts"]) > 0).all()


def test_book_stays_large_and_uncrossed() -> None:
    spec = WorkloadSpec(n_resting=20000, n_instruments=2)
    pre, ops = mixed_workload(40000, spec, seed=1)
    eng = MatchingEngine(workload_config(spec))
    eng.process(pre)
    assert eng.live_orders == 20000  # the preload never crosses
    ev = eng.process(ops)
    assert eng.live_orders >= 20000 and eng.check() == 0
    rejected = (ev["kind"] == 2).mean()
    assert rejected < 0.1  # a few cancels/replaces of orders filled meanwhile
