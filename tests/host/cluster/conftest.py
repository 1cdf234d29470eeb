"""A real ``nats-server -js`` on a free loopback port, store in a tmp dir (no mocks)."""

from __future__ import annotations

import asyncio

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


@pytest.fixture(scope="module")
def reference(itch_day, tmp_path_factory):
    """The day through 2 in-process shards: ``(prepared input, result)``."""
    from host.cluster.session import prepare, run_sharded_session

    prep = prepare(itch_day)
    r = asyncio.run(run_sharded_session(itch_day, shards=2, prepared=prep,
                                        out_dir=tmp_path_factory.mktemp("ref")))
    return prep, r


@pytest.fixture(scope="module")
def single(itch_day, tmp_path_factory):
    """The single-process session (host.trading.session.run_session): its fills."""
    from host.cluster.session import fills
    from host.trading.session import run_session

    out = tmp_path_factory.mktemp("single")
    rep = run_session(itch_day, out_dir=out, export=False)
    return rep, fills([out / "venue.journal"])
