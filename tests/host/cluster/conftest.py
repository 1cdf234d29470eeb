"""A real ``nats-server -js`` on a free loopback port, store in a tmp dir (no mocks)."""

from __future__ import annotations

import pytest

from host.cluster.server import NatsServer


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory):
    """Started for the test module, stopped (SIGTERM) after it."""
    srv = NatsServer(tmp_path_factory.mktemp("nats") / "store").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def itch_day(tmp_path_factory):
    """A small generated ITCH day (40k messages, 6 symbols)."""
    from host.feed.files import write_file
    from host.feed.generator import generate

    p = tmp_path_factory.mktemp("day") / "day.itch"
    write_file(str(p), generate(40_000, 6, 1))
    return p


@pytest.fixture(scope="session")
def warm_kernels():
    """Compile (or load) every kernel a shard replica uses, in this process, before tests
    start replica processes: on a fresh clone they would otherwise all compile at once."""
    from host.cluster.shard import warm_up

    warm_up()
