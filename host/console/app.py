"""The console's web server: one page, a WebSocket push, two operator actions, ``/metrics``.

Routes
------
``GET /``, ``GET /static/{console.js,console.css}``
    The page (plain HTML and JavaScript, no build step).
``GET /api/state``
    The current :meth:`host.console.live.LiveSession.snapshot` as JSON (read-only).
``WS /ws``
    Snapshots pushed at ``hz`` per second. Each client has one pending slot: a snapshot that
    is still waiting when the next is ready is replaced (coalesced) and counted in the message's
    ``dropped`` field and in ``itchfpga_console_ws_dropped_total``, so a slow page never falls
    behind, it skips.
``GET /api/auth``
    ``{"actions": bool}``: whether the request's token is accepted (the page asks it).
``POST /api/kill`` ``{"scope": "all|account|strategy|instrument", "value": int, "engage": bool}``
``POST /api/clear-stale`` ``{"instrument": int | null}``
    Operator actions: need the token (``X-Console-Token`` header or ``Authorization: Bearer``);
    401 without it, 400 for a body that is not exactly the schema, 403 for a cross-origin
    request.
``GET /metrics``
    Prometheus text exposition (:mod:`host.console.metrics`).

Security: the CLI binds 127.0.0.1 unless told otherwise, and then accepts only loopback names
in the ``Host`` header (DNS rebinding); no CORS headers are ever sent (the
page and the API are one origin); requests whose ``Origin`` is not this server are refused
(403) for actions and for the WebSocket; every response carries a Content-Security-Policy
that allows only this origin's scripts and connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from importlib import resources
from urllib.parse import urlsplit

from host.console.live import KILL_SCOPES

__all__ = ["create_app", "Mailbox", "MAX_BODY"]

MAX_BODY = 1024
"""Largest action body accepted (bytes)."""

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_STATIC = {"console.js": "text/javascript; charset=utf-8",
           "console.css": "text/css; charset=utf-8"}


def _asset(name: str) -> bytes:
    return resources.files("host.console").joinpath("static", name).read_bytes()


class Mailbox:
    """One WebSocket client's single pending slot (coalescing).

    :meth:`offer` puts the newest snapshot in the slot; one that was still there (not yet
    taken by the client's sender) is replaced and counted in :attr:`dropped`. :meth:`take`
    empties the slot and stamps the message with the client's drop count.
    """

    __slots__ = ("pending", "event", "dropped", "sent")

    def __init__(self) -> None:
        self.pending: str | None = None
        self.event = asyncio.Event()
        self.dropped = 0
        self.sent = 0

    def offer(self, msg: str) -> bool:
        """Put ``msg`` in the slot; True when it replaced an unsent one."""
        replaced = self.pending is not None
        if replaced:
            self.dropped += 1
        self.pending = msg
        self.event.set()
        return replaced

    def take(self) -> str | None:
        """The pending message (its ``"dropped":0`` stamped with the count), or None."""
        msg, self.pending = self.pending, None
        self.event.clear()
        if msg is None:
            return None
        self.sent += 1
        return msg.replace('"dropped":0', f'"dropped":{self.dropped}', 1)


def _origin_ok(headers) -> bool:
    """No Origin (same-origin GET, curl) or an Origin whose host:port is this server's."""
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host", "")
    try:
        return urlsplit(origin).netloc == host and urlsplit(origin).scheme in ("http", "https")
    except ValueError:
        return False


def _body_error(body, keys: dict) -> str | None:
    """Check a JSON object against ``{key: (types, required)}``; None when it fits."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    extra = set(body) - set(keys)
    if extra:
        return f"unknown field(s): {', '.join(sorted(map(str, extra)))}"
    for k, (types, required) in keys.items():
        if k not in body:
            if required:
                return f"missing field {k!r}"
            continue
        v = body[k]
        if isinstance(v, bool) and bool not in types:  # JSON true is not a number here
            return f"{k!r} must be {' or '.join(t.__name__ for t in types)}"
        if not isinstance(v, types):
            return f"{k!r} must be {' or '.join(t.__name__ for t in types)}"
        if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v < 1 << 32:
            return f"{k!r} is out of range"
    return None


def create_app(session, *, token: str, metrics=None, hz: float = 20.0, start: bool = True,
               on_shutdown=None, allowed_hosts=("127.0.0.1", "localhost", "::1")):
    """The Starlette application around a :class:`host.console.live.LiveSession`.

    Parameters
    ----------
    session : LiveSession
    token : str
        Actions need it; at least 16 characters.
    metrics : ConsoleMetrics, optional
    hz : float
        WebSocket pushes per second (1..100).
    start : bool
        Start the session's replay thread when the server starts (stopped when it stops).
    allowed_hosts : sequence of str or None
        Host names the ``Host`` header may carry (400 otherwise): a web page that rebinds its
        own name to 127.0.0.1 (DNS rebinding) cannot read the console. None: any.
    on_shutdown : callable, optional
        Called after the session stopped, when the server shuts down (uvicorn re-raises
        SIGTERM/SIGINT once it is down, so code after ``uvicorn.run`` may never run).
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    if len(token) < 16:
        raise ValueError("the console token must have at least 16 characters")
    if not 1 <= hz <= 100:
        raise ValueError("hz must be between 1 and 100")
    clients: set[Mailbox] = set()
    page = _asset("index.html")

    def secure(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = _CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def authorized(request) -> bool:
        got = request.headers.get("x-console-token")
        if got is None:
            auth = request.headers.get("authorization", "")
            got = auth[7:] if auth.lower().startswith("bearer ") else None
        return got is not None and secrets.compare_digest(got.encode(), token.encode())

    async def index(request):
        return secure(Response(page, media_type="text/html; charset=utf-8"))

    async def static(request):
        name = request.path_params["name"]
        if name not in _STATIC:
            return secure(Response("not found", status_code=404))
        return secure(Response(_asset(name), media_type=_STATIC[name]))

    async def state(request):
        snap = await asyncio.to_thread(session.snapshot)
        return secure(JSONResponse(snap))

    async def auth(request):
        return secure(JSONResponse({"actions": authorized(request)}))

    async def action(request, keys: dict, fn):
        if not _origin_ok(request.headers):
            return secure(JSONResponse({"error": "cross-origin request refused"}, 403))
        if not authorized(request):
            return secure(JSONResponse({"error": "an action needs the console token"}, 401))
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return secure(JSONResponse({"error": "the body must be application/json"}, 415))
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return secure(JSONResponse({"error": "body too large"}, 413))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return secure(JSONResponse({"error": "the body is not JSON"}, 400))
        err = _body_error(body, keys)
        if err is None:
            try:
                return secure(JSONResponse(await asyncio.to_thread(fn, body)))
            except ValueError as e:
                err = str(e)
        return secure(JSONResponse({"error": err}, 400))

    async def kill(request):
        def do(b):
            if b["scope"] not in KILL_SCOPES:
                raise ValueError(f"scope must be one of {', '.join(KILL_SCOPES)}")
            return session.kill(b["scope"], b.get("value", 0), b["engage"])

        return await action(request, {"scope": ((str,), True), "value": ((int,), False),
                                       "engage": ((bool,), True)}, do)

    async def clear_stale(request):
        return await action(request, {"instrument": ((int, type(None)), False)},
                            lambda b: session.clear_stale(b.get("instrument")))

    async def prom(request):
        if metrics is None:
            return Response("no metrics\n", status_code=404, media_type="text/plain")
        body, ctype = metrics.exposition()
        return Response(body, media_type=ctype)

    async def ws_endpoint(ws):
        if not _origin_ok(ws.headers):
            await ws.close(code=1008)
            return
        await ws.accept()
        c = Mailbox()
        clients.add(c)
        if metrics is not None:
            metrics.clients.set(len(clients))

        async def reader():  # notice a close from the page
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                while True:
                    await ws.receive_text()

        rd = asyncio.create_task(reader())
        try:
            while not rd.done():
                waiter = asyncio.create_task(c.event.wait())
                await asyncio.wait({waiter, rd}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                msg = c.take()
                if msg is None:
                    continue
                await ws.send_text(msg)
                if metrics is not None:
                    metrics.ws_sent.inc()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            rd.cancel()
            clients.discard(c)
            if metrics is not None:
                metrics.clients.set(len(clients))

    async def pusher():
        n = 0
        period = 1.0 / hz
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            if clients:
                snap = await asyncio.to_thread(session.snapshot)
                n += 1
                state = json.dumps(snap, separators=(",", ":"))
                msg = f'{{"dropped":0,"seq":{n},"hz":{json.dumps(hz)},"state":{state}}}'
                for c in list(clients):
                    if c.offer(msg) and metrics is not None:
                        metrics.ws_dropped.inc()
            # at most hz snapshots per second: a late period is not made up with a burst
            await asyncio.sleep(max(0.0, period - (loop.time() - t0)))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(pusher())
        if start:
            session.start()
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for c in list(clients):
                c.event.set()
            await asyncio.to_thread(session.stop)
            if on_shutdown is not None:
                await asyncio.to_thread(on_shutdown)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/state", state),
        Route("/api/auth", auth),
        Route("/api/kill", kill, methods=["POST"]),
        Route("/api/clear-stale", clear_stale, methods=["POST"]),
        Route("/metrics", prom),
        WebSocketRoute("/ws", ws_endpoint),
    ]
    mw = [] if allowed_hosts is None else [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts),
                   www_redirect=False)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=mw)
    app.state.clients = clients
    return app
