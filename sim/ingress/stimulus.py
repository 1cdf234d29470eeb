"""Stimulus shared by the ingress benches: realistic messages, packets and frames.

Everything is built with the host codecs (:mod:`host.feed.generator`, :mod:`host.feed.itch`,
:mod:`host.feed.moldudp`, :mod:`host.feed.net`); nothing here computes an expected value.
"""

from __future__ import annotations

import numpy as np

from host.feed import generator, itch, moldudp, net
from host.feed.spec import MAX_MESSAGE_LENGTH, MESSAGES

__all__ = [
    "realistic_messages",
    "odd_messages",
    "message_payload",
    "packets",
    "frames_for",
    "every_type_messages",
    "SESSION",
]

SESSION = "ITCHFPGA01"


def realistic_messages(n: int, seed: int = 1, n_symbols: int = 8) -> list[bytes]:
    """``n`` messages of a generated trading day (every type appears for n >~ 2000)."""
    n_symbols = max(1, min(n_symbols, (n - 7) // 2))
    return generator.split_messages(generator.generate(n, n_symbols, seed))


def every_type_messages(rng: np.random.Generator, per_type: int = 1) -> list[bytes]:
    """``per_type`` messages of each of the 23 types with random field values (every field
    non-trivial, so a swapped or misplaced field shows), in random order."""
    out = []
    for t, spec in MESSAGES.items():
        for _ in range(per_type):
            kw = {}
            for f in spec.fields[1:]:
                if f.kind == "alpha":
                    kw[f.name] = bytes(rng.integers(65, 91, f.width, np.uint8)).decode()
                else:
                    kw[f.name] = int(rng.integers(1, 1 << min(8 * f.width, 63), dtype=np.int64))
            out.append(itch.encode(t, **kw))
    rng.shuffle(out)
    return out


def odd_messages(rng: np.random.Generator, n: int) -> list[bytes]:
    """Messages the decoder must reject or trim: unknown types, short, long, empty."""
    out = []
    types = list(MESSAGES)
    for _ in range(n):
        kind = rng.integers(0, 4)
        t = types[rng.integers(0, len(types))]
        good = itch.encode(t, stock_locate=int(rng.integers(0, 65536)))
        if kind == 0:  # unknown type
            u = int(rng.choice([c for c in range(256) if chr(c) not in MESSAGES]))
            out.append(bytes([u]) + bytes(rng.integers(0, 256, int(rng.integers(0, 60)), np.uint8)))
        elif kind == 1:  # short
            out.append(good[: int(rng.integers(1, len(good)))])
        elif kind == 2:  # longer: accepted, extra ignored
            out.append(good + bytes(rng.integers(0, 256, int(rng.integers(1, 20)), np.uint8)))
        else:
            out.append(b"")
    return out


def message_payload(msg: bytes, seq: int, gap: bool, rx_ns: int = 0) -> dict:
    """A ``hw.decoder.message_layout()`` payload dict for ``msg``."""
    head = msg[:MAX_MESSAGE_LENGTH].ljust(MAX_MESSAGE_LENGTH, b"\0")
    return {
        "data": int.from_bytes(head, "little"),
        "length": len(msg),
        "seq": seq,
        "gap": int(gap),
        "rx_ns": rx_ns,
    }


def packets(msgs, *, seed: int, first_seq: int = 1, max_payload: int = 1472, session=SESSION):
    """MoldUDP64 packets with random packing."""
    return moldudp.packetize(
        msgs,
        session=session,
        first_seq=first_seq,
        max_payload=max_payload,
        rng=np.random.default_rng(seed),
    )


def frames_for(payloads, **kw) -> list[bytes]:
    """UDP frames (``host.feed.net.udp_frame``, defaults from ``host.feed.net.DEFAULTS``)."""
    return [net.udp_frame(p, **kw) for p in payloads]


def payload_beats(frame: bytes, start: int, end: int, nb: int, error: bool) -> list[dict]:
    """The beats ``hw.ethernet.FrameParser`` forwards for an accepted frame
    (``payload_beat_layout`` dicts): from the beat holding byte ``start - 1`` to the last one,
    payload lanes ``[start, min(end, len(frame)))`` marked."""
    n = len(frame)
    stop = min(end, n)
    out = []
    for b in range((start - 1) // nb, (n - 1) // nb + 1):
        base = b * nb
        chunk = frame[base : base + nb]
        keep = 0
        for j in range(len(chunk)):
            if start <= base + j < stop:
                keep |= 1 << j
        last = base + nb >= n
        out.append(
            {
                "data": int.from_bytes(chunk, "little"),
                "keep": keep,
                "offset": (base - start) & 0xFFFF,
                "first": int(not out),
                "last": int(last),
                "error": int(last and error),
                "trunc": int(last and n < end),
            }
        )
    return out
