"""How often consecutive ops of the bench's realistic stream hit the same (slot, side).

``python sim/ladder/hazards.py``: for both bench parameter sets, the fraction of ops whose
(slot, side) equals the previous op's, or one of the previous ``w`` ops' (the side-state
hazard of a pipeline whose state loop is ``w`` cycles long), and whose level equals the
previous op's (the ladder entry hazard). A clear counts as its own class (it touches both
sides). Used for the design choice in docs/ladder.md ("Hazards and forwarding").
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ladder_model import stream_random  # noqa: E402


def hazard_rates(ops, windows=(1, 2, 3, 4, 5, 8)) -> dict:
    ks = [(o["slot"], o["bid"] if o["kind"] != 2 else 2) for o in ops]
    n = len(ops) - 1
    out = {f"same_side_w{w}": sum(any(ks[i] == ks[j] for j in range(max(0, i - w), i))
                                  for i in range(1, len(ops))) / n for w in windows}
    out["same_slot"] = sum(ops[i]["slot"] == ops[i - 1]["slot"] for i in range(1, len(ops))) / n
    out["same_level"] = sum(ks[i] == ks[i - 1] and ops[i]["px"] == ops[i - 1]["px"]
                            for i in range(1, len(ops))) / n
    return out


def main() -> None:
    for depth, slots, n in ((64, 4, 3), (4096, 2, 5)):
        ops = stream_random(depth, 20000, slots=slots, seed=4, n=n,
                            codes=[(s + 1) % 2 for s in range(slots)])
        r = hazard_rates(ops)
        print(f"depth {depth}, {slots} slots, {len(ops)} ops: "
              + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))


if __name__ == "__main__":
    main()
