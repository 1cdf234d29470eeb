"""PGO training run of the simulated card (``python -m host.card.pgo LIB``).

:func:`host.card.sim.build_library` runs it in a subprocess on the instrumented library: it
replays generated streams so GCC records a profile. It lives here, not in :mod:`host.card.sim`,
because it needs :mod:`host.card.replay`, which imports :mod:`host.card.sim`.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["train"]


def train(lib_path: Path) -> None:
    """The PGO training run: replay generated streams through the instrumented model.

    Classic and realistic (deep books) profiles, so the profile sees adds, executions,
    replaces, deletes, window slides and refills; the records are not checked here (the
    card tests check the built model).
    """
    from host.card.replay import open_sim_card, replay_through_card, resolve_locates
    from host.card.sim import PGO_TRAIN_MESSAGES
    from host.feed.capture import packetize_itch
    from host.feed.generator import generate

    card = open_sim_card(lib_path=lib_path)
    for n, profile in zip(PGO_TRAIN_MESSAGES, ("classic", "realistic"), strict=True):
        feed = packetize_itch(generate(n, 16, 7, profile=profile))
        card.reset(hard=True)
        replay_through_card(card, feed, resolve_locates(feed, None, card.slots), latency=False)
    card.close()


def main(argv=None) -> int:
    """``python -m host.card.pgo LIB``: train the instrumented library ``LIB``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m host.card.pgo LIB (the instrumented libcard)", file=sys.stderr)
        return 1
    train(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
