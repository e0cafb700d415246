"""The HTTP API: JSON over HTTP on the daemon's own event loop (aiohttp).

`staff serve --http [HOST:]PORT` (a running daemon opens the listener) or `[http] listen =
"HOST:PORT"` in staff.toml (opened at start). Every request needs `Authorization: Bearer
TOKEN`; the token is made on first use and kept 0600 in the state dir (`http.token`, written
atomically; one that is empty or short is replaced, never accepted). Loopback only unless
`allow_remote`. Endpoints: GET /agents, POST /tasks, GET /tasks/{id}, DELETE /tasks/{id},
GET /events (server-sent events), GET /openapi.json. Every error is a 4xx (or 5xx) JSON body
`{"error": {"code": …, "message": …}}`; nothing a client sends reaches the supervisor unchecked.

Other hosts' agents (``HOST/agent``, tasks ``HOST/T-…``; daemon/hosts.py) are listed and
reached exactly like this host's: a request for one takes the socket's own route and the hub's
forwarding (`Server.remote`, `Hosts.forward`), never a second copy of it; a host that is down
refuses what cannot be held with 503 and the error code ``host_down``.

Anyone who can reach the port can open connections, token or not, so they are bounded: at
most `max_connections` open at once (a quarter of the daemon's descriptors: the rest stay for
the Unix socket, the agents and the journal), the request head within HEADER_TIMEOUT, a body
within BODY_TIMEOUT, an idle keep-alive closed after IDLE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import resource
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from supervisor.daemon.web import CSP, NAME, WebApp
from supervisor.protocol import (
    ERR_AGENT_DOWN,
    ERR_BAD_REQUEST,
    ERR_HOST_DOWN,
    ERR_INTERNAL,
    ERR_JOURNAL,
    ERR_NOT_ANSWERED,
    ERR_TIMEOUT,
    ERR_UNKNOWN_AGENT,
    ERR_UNKNOWN_TASK,
    TASK_FINAL,
    ProtocolError,
    has_surrogate,
)
from supervisor.team.config import TableError as HttpConfigError
from supervisor.team.config import is_loopback, parse_listen
from supervisor.util.atomic import write_atomic
from supervisor.util.trust import open_private

if TYPE_CHECKING:
    from supervisor.daemon.server import Server
    from supervisor.daemon.streams import Hub
    from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")

TOKEN_FILE = "http.token"
MAX_BODY = 1 << 20
MAX_WAIT = 3600.0
SSE_BACKLOG = 1000


MIN_TOKEN = 32
"""The shortest token accepted from `http.token` (ours are 43 characters)."""
HEADER_TIMEOUT = 10.0
"""Seconds a new connection has to send its request head (slowloris)."""
BODY_TIMEOUT = 30.0
"""Seconds a request has to send its body (1 MiB at most)."""
IDLE_TIMEOUT = 15.0
"""Seconds a keep-alive connection may sit idle between requests."""
REFUSED_LOG_INTERVAL = 60.0


def token(home: Path) -> str:
    """The bearer token: the one in `http.token`, or a new one when there is none or it is
    empty or short (a write cut short by a full disk must not let `Bearer ` in). Written
    atomically, 0600; read never through a symlink."""
    path = home / TOKEN_FILE
    try:
        with os.fdopen(open_private(path, os.O_RDONLY), "rb") as f:
            value = f.read(4096).decode("ascii", "replace").strip()
    except FileNotFoundError:
        value = ""
    if len(value) >= MIN_TOKEN and value.isprintable() and " " not in value:
        return value
    if value or path.exists():
        log.warning("%s: not a usable token (%d characters); a new one was made", path, len(value))
    value = secrets.token_urlsafe(32)
    write_atomic(path, (value + "\n").encode(), mode=0o600)
    return value


def max_connections() -> int:
    """HTTP connections open at once: a quarter of the descriptors (8 to 1024)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(8, min(1024, soft // 4))


class _Refused(asyncio.Protocol):
    """A connection over the limit: one 503 and closed, so it holds no descriptor."""

    BODY = b'{"error": {"code": "busy", "message": "too many HTTP connections open; try again"}}'

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(self.BODY), self.BODY)
        )
        transport.close()


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


_STATUS = {
    ERR_UNKNOWN_AGENT: 404,
    ERR_UNKNOWN_TASK: 404,
    ERR_AGENT_DOWN: 409,
    ERR_NOT_ANSWERED: 409,
    ERR_JOURNAL: 503,
    ERR_HOST_DOWN: 503,
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, event streams included: scripts only from here, no framing, no
    sniffing, no referrer (a login code in an address must not leak)."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")


class HttpApi:
    def __init__(
        self, sup: Supervisor, host: str, port: int, *, allow_remote: bool = False, hub: Hub | None = None,
        server: Server | None = None,
    ) -> None:
        if not is_loopback(host) and not allow_remote:
            raise HttpConfigError(
                f"refusing to listen on {host}: not a loopback address (pass --allow-remote, "
                f"or allow_remote = true under [http], to expose the team to the network)"
            )
        self.sup = sup
        self.host, self.port = host, port
        self.allow_remote = allow_remote
        self.token = token(sup.home)
        self.server = server  # the Unix socket's server: its routes to other hosts (hosts.py)
        self.web = WebApp(sup, hub, server)  # the web app's pages and calls (web.py)
        self.runner: web.AppRunner | None = None
        self._streams: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._listener: asyncio.base_events.Server | None = None
        self.max_connections = max_connections()
        self._pending = 0  # connections accepted this loop turn, not yet counted by aiohttp
        self._waiting_head: set[Any] = set()  # connections that have not sent a request head yet
        self._refused = 0
        self._refused_logged = 0.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.router.add_get("/agents", self.agents)
        app.router.add_post("/tasks", self.submit)
        app.router.add_get("/tasks/{id:" + NAME + "}", self.get_task)  # T-… or HOST/T-…
        app.router.add_delete("/tasks/{id:" + NAME + "}", self.cancel)
        app.router.add_get("/events", self.events)
        app.router.add_get("/openapi.json", self.openapi)
        self.web.register(app)
        app.on_response_prepare.append(_security_headers)
        self.runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0, keepalive_timeout=IDLE_TIMEOUT
        )
        await self.runner.setup()
        handlers = self.runner.server
        assert handlers is not None
        loop = asyncio.get_running_loop()
        # our own listener (not a TCPSite): each connection passes `_accept` (the limit, the
        # head's deadline) before aiohttp's protocol gets it
        self._listener = await loop.create_server(
            lambda: self._accept(handlers, loop), self.host, self.port, reuse_address=True, backlog=64
        )
        sockets: list[Any] = list(self._listener.sockets or [])
        if sockets and self.port == 0:
            self.port = int(sockets[0].getsockname()[1])
        if not is_loopback(self.host):
            log.warning("HTTP API listening on %s, reachable from the network (--allow-remote)", self.url)
        else:
            log.info("HTTP API listening on %s", self.url)

    def _accept(self, handlers: web.Server, loop: asyncio.AbstractEventLoop) -> asyncio.BaseProtocol:
        """A new connection: refused over the limit, else aiohttp's, closed if its request
        head has not come within HEADER_TIMEOUT."""
        if len(handlers.connections) + self._pending >= self.max_connections:
            self._refused += 1
            now = time.monotonic()
            if now - self._refused_logged >= REFUSED_LOG_INTERVAL:  # once per interval, with a count
                log.warning(
                    "HTTP API: refused %d connection(s): %d open is the limit",
                    self._refused, self.max_connections,
                )
                self._refused_logged, self._refused = now, 0
            return _Refused()
        self._pending += 1
        loop.call_soon(self._counted)
        proto = handlers()
        self._waiting_head.add(proto)
        loop.call_later(HEADER_TIMEOUT, self._head_deadline, proto)
        return proto

    def _counted(self) -> None:
        self._pending -= 1

    def _head_deadline(self, proto: Any) -> None:
        if proto in self._waiting_head:
            self._waiting_head.discard(proto)
            if proto.transport is not None:
                proto.force_close()

    async def close(self) -> None:
        self.web.close()
        for queue in self._streams:  # end every event stream, so the shutdown does not wait on it
            queue.put_nowait(None)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def info(self) -> dict[str, Any]:
        return {"url": self.url, "token_file": str(self.sup.home / TOKEN_FILE), "remote": self.allow_remote}

    # -- guard: the token, and every failure as JSON ------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self._waiting_head.discard(request.protocol)
        auth = request.headers.get("Authorization", "")
        scheme, _, given = auth.partition(" ")
        try:
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode("utf-8"), self.token.encode()
            )
        except UnicodeError:  # bytes that are not text (aiohttp keeps them as surrogates)
            ok = False
        ok = ok and len(self.token) >= MIN_TOKEN
        if not ok and self.web.session(request):  # the web app's cookie (web.py)
            if not self.web.same_origin(request):
                return _error(403, "forbidden", "a request with the session cookie from another origin")
            ok = True
        if not ok and self.web.is_public(request.path):
            ok = True
        if not ok and self.web.is_page(request.path) and request.method == "GET":
            raise web.HTTPSeeOther("/login")
        if not ok:
            resp = _error(
                401,
                "unauthorized",
                f"a bearer token is needed: Authorization: Bearer $(cat {self.sup.home / TOKEN_FILE})",
            )
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = "too_large" if exc.status == 413 else "not_found" if exc.status == 404 else "http"
            return _error(
                exc.status, code, exc.reason if exc.status != 413 else f"body over {MAX_BODY} bytes"
            )
        except ProtocolError as exc:
            return _error(_STATUS.get(exc.code, 400), exc.code, exc.message)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:  # a bug of ours: still JSON, one line, and logged
            log.exception("HTTP %s %s failed", request.method, request.path)
            return _error(500, ERR_INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

    # -- endpoints ------------------------------------------------------------------------------
    async def agents(self, request: web.Request) -> web.Response:
        """This host's agents, then other hosts' (``HOST/agent``, with `host` and, while the
        link is down, state `unreachable`) and each host's link."""
        agents = self.sup.status()["agents"]
        hosts = self.server.hosts if self.server is not None else None
        if hosts is None:
            return web.json_response({"agents": agents})
        for row in agents:
            row["host"] = ""
        agents += await hosts.status_rows()
        return web.json_response({"agents": agents, "hosts": hosts.info()})

    async def _remote(self, req: dict[str, Any]) -> tuple[bool, Any]:
        """(True, the result) when `req` is for another host's agent or task, carried out by
        that host through the hub; (False, None) for this host's."""
        route = self.server.remote(req) if self.server is not None else None
        if route is None or self.server is None or self.server.hosts is None:
            return False, None
        return True, await self.server.hosts.forward(req, *route)

    async def submit(self, request: web.Request) -> web.Response:
        try:
            raw = await asyncio.wait_for(request.read(), BODY_TIMEOUT)
        except TimeoutError:
            resp = _error(408, ERR_TIMEOUT, f"the body did not arrive within {BODY_TIMEOUT:.0f} s")
            resp.force_close()
            return resp
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, "bad_json", f"the body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, ERR_BAD_REQUEST, 'the body must be a JSON object: {"to": …, "text": …}')
        if has_surrogate(body):
            why = "the body holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text"
            return _error(400, ERR_BAD_REQUEST, why)
        unknown = sorted(set(body) - {"to", "text", "wait", "key"})
        if unknown:
            return _error(400, ERR_BAD_REQUEST, f"unknown field {unknown[0]!r}; known: key, text, to, wait")
        to, text, wait, key = body.get("to"), body.get("text"), body.get("wait", 0), body.get("key")
        if not isinstance(to, str) or not to:
            return _error(400, ERR_BAD_REQUEST, "'to' must be an agent name, role:NAME or any")
        if not isinstance(text, str) or not text.strip():
            return _error(400, ERR_BAD_REQUEST, "'text' must be a non-empty string")
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT:
            return _error(
                400, ERR_BAD_REQUEST, f"'wait' must be a number of seconds from 0 to {MAX_WAIT:.0f}"
            )
        if key is not None and not isinstance(key, str):
            return _error(400, ERR_BAD_REQUEST, "'key' must be a string")
        if "\x00" in text or "\x00" in to:
            return _error(400, ERR_BAD_REQUEST, "NUL bytes are not allowed")
        req = {"cmd": "submit", "to": to, "text": text, **({"key": key} if key is not None else {})}
        there, got = await self._remote(req)
        if there:
            return await self._remote_wait(got, float(wait))
        task = self.sup.submit(to, text, key=key)
        if wait and not task.final:
            task = await self.sup.wait(task.id, float(wait))
        return web.json_response(task.to_json(), status=200 if task.final else 202)

    async def _remote_wait(self, task: dict[str, Any], wait: float) -> web.Response:
        """A task on another host (or held for it): its answer within `wait` seconds, else the
        task as it is (202), as for this host's; a host that stays down meanwhile is a wait
        that ran out, not an error (the task is still there, or held here)."""
        if wait and task.get("state") not in TASK_FINAL:
            try:
                _, task = await self._remote({"cmd": "wait", "task": task["id"], "timeout": wait})
            except ProtocolError as exc:
                if exc.code != ERR_TIMEOUT:
                    raise
        return web.json_response(task, status=200 if task.get("state") in TASK_FINAL else 202)

    async def get_task(self, request: web.Request) -> web.Response:
        there, got = await self._remote({"cmd": "task", "task": request.match_info["id"]})
        return web.json_response(got if there else self.sup.task(request.match_info["id"]).to_json())

    async def cancel(self, request: web.Request) -> web.Response:
        there, got = await self._remote({"cmd": "cancel", "task": request.match_info["id"]})
        return web.json_response(got if there else self.sup.cancel(request.match_info["id"]).to_json())

    async def events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def sink(event: dict[str, Any]) -> None:
            if queue.qsize() >= SSE_BACKLOG:  # a reader that cannot keep up is let go
                queue.put_nowait(None)
                with contextlib.suppress(ValueError):
                    self.sup.sinks.remove(sink)
                return
            queue.put_nowait(event)

        self.sup.sinks.append(sink)
        self._streams.add(queue)
        try:
            await resp.write(b": staff events\n\n")
            while True:
                event = await queue.get()
                if event is None:
                    break
                data = json.dumps(event, ensure_ascii=False, default=str)
                await resp.write(f"event: {event.get('type', 'event')}\ndata: {data}\n\n".encode())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(queue)
            with contextlib.suppress(ValueError):
                self.sup.sinks.remove(sink)
        return resp

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)


def _task_schema() -> dict[str, Any]:
    props = {k: {"type": "string"} for k in ("id", "to", "text", "state", "agent", "answer", "error")}
    return {"type": "object", "properties": props}


_ERR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_TASK = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "agentstaff", "version": "1", "description": "The team of agents over HTTP."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Task": _task_schema(),
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/agents": {
            "get": {
                "summary": "every agent: state, task, queue",
                "responses": {"200": {"description": "the agents"}, "401": _ERR},
            }
        },
        "/tasks": {
            "post": {
                "summary": "queue a task; with wait, the answer when it finishes within wait seconds",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["to", "text"],
                                "properties": {
                                    "to": {
                                        "type": "string",
                                        "description": "agent, HOST/agent, role:NAME, any, chief",
                                    },
                                    "text": {"type": "string"},
                                    "wait": {"type": "number", "minimum": 0, "maximum": MAX_WAIT},
                                    "key": {"type": "string", "description": "idempotency key"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "finished", **_TASK},
                    "202": {"description": "queued or running", **_TASK},
                    "400": _ERR,
                    "401": _ERR,
                    "404": _ERR,
                    "409": _ERR,
                    "413": _ERR,
                },
            }
        },
        "/tasks/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {
                "summary": "a task (HOST/T-…: one on another host)",
                "responses": {"200": {"description": "the task", **_TASK}, "404": _ERR, "503": _ERR},
            },
            "delete": {
                "summary": "cancel a task",
                "responses": {"200": {"description": "the task", **_TASK}, "404": _ERR, "503": _ERR},
            },
        },
        "/events": {
            "get": {
                "summary": "server-sent events: state, task, inbox, …",
                "responses": {"200": {"description": "text/event-stream"}},
            }
        },
        "/openapi.json": {
            "get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI"}}}
        },
    },
}


async def start(
    sup: Supervisor, listen: str, *, allow_remote: bool = False, hub: Hub | None = None,
    server: Server | None = None,
) -> HttpApi:
    """Open the listener on the running loop (the daemon keeps it in `sup.http`)."""
    host, port = parse_listen(listen)
    api = HttpApi(sup, host, port, allow_remote=allow_remote, hub=hub, server=server)
    try:
        await api.start()
    except BaseException:
        await api.close()  # the port was taken: nothing of it stays subscribed
        raise
    return api
