"""The NATS client connection every part of the cluster uses (router, replicas, tools)."""

from __future__ import annotations

__all__ = ["connect"]


async def _quiet(exc: Exception) -> None:
    """nats-py's default error callback logs a traceback per failed (re)connection attempt;
    callers here report failures themselves, in one line."""


async def connect(url: str, *, keep_trying: bool = False, timeout: float = 3.0):
    """A nats-py client of ``url``; :class:`ConnectionError` if the server does not answer
    (two attempts), never a hang.

    With ``keep_trying`` a connection that was up reconnects without limit afterwards (a
    replica or a router riding through a server restart).
    """
    import nats

    try:
        nc = await nats.connect(url, connect_timeout=timeout, max_reconnect_attempts=2,
                                reconnect_time_wait=0.1, error_cb=_quiet)
    except Exception as e:
        raise ConnectionError(f"cannot reach NATS at {url}: {type(e).__name__}") from None
    if keep_trying:
        nc.options["max_reconnect_attempts"] = -1
    return nc
