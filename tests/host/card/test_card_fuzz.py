"""Hostile frames through the simulated card (the Verilated hw/top.py), checked against the
ingress reference model after every batch.

Frames: valid MoldUDP64 packets of a generated feed, the same with random damage (byte flips in
every header, cuts, insertions, duplicated spans, wrong lengths), pure junk, runts and empty
frames, some flagged with a MAC error. Properties: the card never hangs (every ``run`` returns
idle within its cycle budget), and every counter of the ingress (:data:`COUNTER_NAMES`) equals
the model's after every batch, so every anomaly is counted exactly where the model says.
``make test`` runs 6,000 frames; ``make test-long`` 10^6.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hw.top", reason="hw/top.py has not landed")

from host.card.ingress_model import COUNTER_NAMES, IngressModel  # noqa: E402
from host.card.replay import open_sim_card  # noqa: E402
from host.card.sim import card_params  # noqa: E402
from host.feed import moldudp, net  # noqa: E402
from host.feed.generator import generate, split_messages  # noqa: E402

SESSION = "FUZZ000001"
BATCH = 500


def hostile_frames(n: int, seed: int):
    """``n`` frames and MAC error flags: a third good packets, the rest damaged or junk."""
    rng = np.random.default_rng(seed)
    msgs = split_messages(generate(max(2000, n), 4, seed))
    pkts = moldudp.packetize(msgs, session=SESSION, rng=rng, max_messages=12)
    good = [net.udp_frame(p) for p in pkts]
    frames, errs = [], []
    k = 0
    for _ in range(n):
        base = good[k % len(good)]
        k += 1
        r = rng.random()
        if r < 0.35:
            f = base
        elif r < 0.75:
            b = bytearray(base)
            for _ in range(int(rng.integers(1, 4))):
                op = rng.integers(0, 4)
                i = int(rng.integers(0, max(1, min(len(b), 80) if rng.random() < 0.7 else len(b))))
                if op == 0 and b:
                    b[min(i, len(b) - 1)] ^= int(rng.integers(1, 256))
                elif op == 1:
                    del b[i:]
                elif op == 2:
                    b[i:i] = rng.bytes(int(rng.integers(1, 9)))
                else:
                    b[i:i] = b[i : i + int(rng.integers(1, 40))]
            f = bytes(b)
        elif r < 0.85:
            f = rng.bytes(int(rng.integers(0, 120)))
        elif r < 0.9:
            f = base[: int(rng.integers(0, 43))]  # runts, the empty frame included
        else:
            f = good[int(rng.integers(0, len(good)))]  # an old packet again: duplicates, gaps
        frames.append(f)
        errs.append(rng.random() < 0.05)
    return frames, np.array(errs, np.uint8)


@pytest.fixture(scope="module")
def card():
    c = open_sim_card()
    yield c
    c.close()


def run_campaign(card, n: int, seed: int) -> dict:
    card.reset(hard=True)
    card.configure(udp_port=net.DEFAULTS["dst_port"], ip_dst=net.DEFAULTS["dst_ip"])
    card.subscribe(list(range(1, 9)))
    card.clear_counters()
    model = IngressModel()
    frames, errs = hostile_frames(n, seed)
    names = [c for c in COUNTER_NAMES if c in card.counters()]
    for lo in range(0, n, BATCH):
        fr, er = frames[lo : lo + BATCH], errs[lo : lo + BATCH]
        card.send(fr, errors=er)
        budget = 64 * sum(len(f) // 8 + 4 for f in fr) + 10_000
        status = card.run(max_cycles=budget, max_records=1 << 20)
        while status == 1:  # records pending: drain and go on
            card.read_raw(1 << 20)
            status = card.run(max_cycles=budget, max_records=1 << 20)
        assert status == 0, f"the card did not go idle within {budget} cycles (batch {lo})"
        card.read_raw(1 << 20)
        for f, e in zip(fr, er, strict=True):
            model.feed(f, bool(e))
        got = card.counters(names)
        reg = model.register_counters(card_params()["counter_width"])
        want = {k: reg[k] for k in names}
        assert got == want, {k: (got[k], want[k]) for k in names if got[k] != want[k]}
    return dict(model.counters)


def test_hostile_frames_short(card):
    c = run_campaign(card, 6_000, seed=3)
    assert c["frames"] == 6_000
    # the campaign reaches every kind of drop and MoldUDP64 anomaly it is meant to
    for k in ("drop_short", "drop_ethertype", "drop_ip", "drop_error", "gaps", "duplicates"):
        assert c.get(k, 0) > 0, k


@pytest.mark.long
def test_hostile_frames_million(card):
    c = run_campaign(card, 1_000_000, seed=11)
    assert c["frames"] == 1_000_000
