"""CRC-32C against the RFC 3720 (iSCSI) test vectors."""

from __future__ import annotations

import numpy as np
import pytest

from host.trading.journal import crc32c


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0xE3069283),
        (bytes(32), 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
        (b"", 0),
    ],
)
def test_vectors(data, expected) -> None:
    assert crc32c(data) == expected


def test_incremental_and_unaligned() -> None:
    data = np.random.default_rng(3).integers(0, 256, 1001, dtype=np.uint8).tobytes()
    whole = crc32c(data)
    for cut in (0, 1, 7, 8, 9, 500, 1000, 1001):
        assert crc32c(data[cut:], crc32c(data[:cut])) == whole
    assert crc32c(np.frombuffer(data, np.uint8)) == whole
    assert crc32c(data[:-1] + bytes([data[-1] ^ 1])) != whole
