"""The nats-server fixture: a real server with JetStream answers, and stops."""

from __future__ import annotations

import asyncio

import pytest

from host.cluster.server import NatsServer, find_nats_server
from host.errors import UserError


def test_binary_from_wheel():
    assert find_nats_server().endswith("nats-server")


def test_jetstream_round_trip(nats_server):
    import nats

    async def go():
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        ack = await js.publish("t.x", b"hello")
        m = await js.get_msg("T", ack.seq)
        await nc.close()
        return ack.seq, m.data

    assert asyncio.run(go()) == (1, b"hello")


def test_stop_and_port_in_use(tmp_path, nats_server):
    s = NatsServer(tmp_path / "s").start()
    p = s.proc
    s.stop()
    assert p.poll() is not None
    with pytest.raises(UserError, match="exited|did not answer"):  # the port is taken
        NatsServer(tmp_path / "t", port=nats_server.port).start(timeout=3)
