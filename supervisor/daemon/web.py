"""The web app: the team in a browser, served by the HTTP API's server (httpapi.py).

`staff web` opens the HTTP API and prints one URL with a one-time login code (as Jupyter
does); the browser trades the code for a session cookie (HttpOnly, SameSite=Strict), and the
API's bearer token keeps working for scripts. The pages are static files shipped in the
package (`static/`, xterm.js vendored with its licence): no build step for a user.

- The team page reads one server-sent event stream (`/web/events`): the whole team as one
  `team` event whenever something changed (coalesced: a client that is slow to read gets the
  newest team, never a backlog), plus the discrete `state`/`task`/`inbox`/`monitor` events
  the page raises notifications from (bounded per client; the oldest go first).
- The agent page streams the agent's terminal (`/web/agents/NAME/stream`, which also carries
  the agent's state and question, and the events to notify of: one stream per page, since a
  browser opens at most six connections to a host over HTTP/1.1): the same watch as the
  console's (streams.py: a snapshot, then the raw output; a reader that falls behind gets a
  fresh snapshot instead of a backlog). Keys typed there hold the agent as the console's do.
  The browser shows the agent at the agent's own size: it never resizes the pty (a phone
  would squeeze every other viewer's screen to 40 columns); it scrolls instead.

Other hosts' agents (``HOST/agent``, daemon/hosts.py) are on the team page like this host's
(greyed `unreachable` while their host's link is down) and have an agent page: its terminal
is that host's stream relayed through the hub (`Hosts.view`: a viewer link per page, so the
far daemon ties the page's hold to it), started again with a fresh snapshot when the link
comes back; keys and answers go through the hub's forwarding, and are refused with 503
(``host_down``) while the link is down.

Security: only the session cookie or the bearer token lets anything in (pages without them
redirect to /login, calls get 401); a request made with the cookie that changes anything, and
every event stream, must come from this origin (the Origin header); a Content-Security-Policy
allows scripts from this server only.

The handlers are thin: the state (codes, sessions, feeds, terminal streams) lives in plain
classes here, so the pages follow whichever HTTP server the API runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import logging
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from supervisor.agent.agent import AnswerError
from supervisor.daemon import hosts as hostsmod
from supervisor.detect.question import Question, parse_question
from supervisor.detect.rules import View
from supervisor.protocol import (
    ERR_AGENT_DOWN,
    ERR_BAD_REQUEST,
    ERR_HOST_DOWN,
    ERR_NOT_ANSWERED,
    ProtocolError,
    encode,
)
from supervisor.states import AgentState

if TYPE_CHECKING:
    from supervisor.agent.agent import Agent
    from supervisor.daemon.server import Server
    from supervisor.daemon.streams import Hub
    from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")

COOKIE = "staff_session"
CODE_TTL = 600.0
"""Seconds a printed login code stays good (it is also spent by its first use)."""
MAX_CODES = 8
MAX_SESSIONS = 64
"""Sessions kept at once (in the daemon's memory only: a new daemon asks for a new login)."""
SESSION_IDLE = 30 * 86400.0
FEED_EVENTS = 256
"""Discrete events queued per team-page client; past this the oldest are dropped."""
HEARTBEAT = 15.0
"""Seconds between comments on an idle event stream: a closed tab is noticed by the write."""
MAX_KEYS = 4096
SCREEN_WAIT = 5.0
"""How long the team view waits for another host's blocked agent's screen (its question)."""
FEED_TYPES = frozenset({"state", "task", "inbox", "monitor"})
REFRESH_TYPES = FEED_TYPES | {"inbox_ack", "spawned", "detail", "stalled", "draft", "pool", "session", "host"}
NAME = r"[^/]+(?:/[^/]+)?"
"""An agent or a task in a route: this host's (``coding``), or another's (``build1/coding``)."""
MAX_BEHIND = 1 << 20
"""Bytes of a remote pane's output waiting for a slow page before its stream starts afresh."""
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Scripts only from this server (no inline script); xterm.js sets inline styles, so styles may be."""
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
PUBLIC = ("/login", "/static/", "/manifest.webmanifest")
"""What needs no login: the login page and the shipped files (nothing in them is the team's)."""


def static_bytes(name: str) -> bytes | None:
    """A file shipped in supervisor/daemon/static, or None (names are checked: no `..`)."""
    if not _STATIC_NAME.fullmatch(name) or ".." in name:
        return None
    try:
        return resources.files("supervisor.daemon").joinpath("static", *name.split("/")).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


# -- login ---------------------------------------------------------------------------------------
class WebAuth:
    """One-time login codes and the sessions they open."""

    def __init__(self) -> None:
        self.codes: dict[str, float] = {}  # code → when it expires
        self.sessions: dict[str, float] = {}  # session id → last seen

    def new_code(self) -> str:
        now = time.monotonic()
        self.codes = {c: t for c, t in self.codes.items() if t > now}
        while len(self.codes) >= MAX_CODES:  # the oldest printed code goes
            del self.codes[min(self.codes, key=self.codes.__getitem__)]
        code = secrets.token_urlsafe(18)
        self.codes[code] = now + CODE_TTL
        return code

    def redeem(self, code: str) -> str | None:
        """A new session id for a good code (which is spent), else None."""
        now = time.monotonic()
        given = code.encode("utf-8", "replace")
        found = None
        for known, expires in list(self.codes.items()):
            if hmac.compare_digest(given, known.encode()) and expires > now:
                found = known
        if found is None:
            return None
        del self.codes[found]
        while len(self.sessions) >= MAX_SESSIONS:
            del self.sessions[min(self.sessions, key=self.sessions.__getitem__)]
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = now
        return sid

    def check(self, sid: str | None) -> bool:
        if not sid:
            return False
        now = time.monotonic()
        given = sid.encode("utf-8", "replace")
        for known, seen in list(self.sessions.items()):
            if hmac.compare_digest(given, known.encode()):
                if now - seen > SESSION_IDLE:
                    del self.sessions[known]
                    return False
                self.sessions[known] = now
                return True
        return False


# -- the team as the page shows it ---------------------------------------------------------------
def question_of(agent: Agent) -> Question | None:
    """What a blocked agent asks (its screen below the last rule), else None."""
    if agent.state != AgentState.BLOCKED:
        return None
    return parse_question(agent.view().region("after_last_rule"))


def question_on(screen: dict[str, Any]) -> Question | None:
    """What an agent asks, read off a `screen` reply (another host's agent)."""
    view = View(lines=[str(line) for line in screen.get("lines") or []], title=str(screen.get("title") or ""))
    return parse_question(view.region("after_last_rule"))


def agent_row(st: dict[str, Any], q: Question | None) -> dict[str, Any]:
    """An agent as the pages show it, from its status row."""
    return {
        "name": st["agent_id"],
        "state": str(st.get("status")),
        "host": st.get("host") or "",
        "role": st.get("role"),
        "task": st.get("current_task"),
        "task_title": st.get("current_task_title"),
        "queue": st.get("queue", 0),
        "last_active": st.get("last_active"),
        "detail": st.get("detail"),
        "stalled": st.get("stalled"),
        "draft": st.get("draft"),
        "error": st.get("error"),
        "question": q.to_json() if q else None,
    }


def team_view(sup: Supervisor, remote: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every agent (blocked first; `remote`: other hosts' rows from `agent_row`) and the unread
    inbox: one JSON document for the team page."""
    agents = []
    status = {a["agent_id"]: a for a in sup.status()["agents"]}
    for name, agent in sup.agents.items():
        st = {**status.get(name, {}), "agent_id": name, "status": str(agent.state)}
        agents.append(agent_row(st, question_of(agent)))
    agents += remote or []
    agents.sort(key=lambda a: (a["state"] != AgentState.BLOCKED, a["name"]))
    inbox = [i.to_json() for i in sup.inbox.list(unread=True)][-50:]
    return {"agents": agents, "inbox": inbox, "queued": len(sup.queue), "time": time.time()}


@dataclass(eq=False)
class FeedClient:
    """One team page: a flag (the team changed) and a bounded queue of discrete events."""

    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=FEED_EVENTS))
    dirty: bool = True
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind in FEED_TYPES:
            self.events.append(event)
        if kind in REFRESH_TYPES:
            self.dirty = True
            self.wake.set()


class TermStream:
    """What streams.Watch writes to, over an event stream: each frame one `data:` line.

    It has the surface of the Unix socket's StreamWriter that Watch and the Hub's holds use
    (write, drain, is_closing, wait_closed), so a browser tab is one more viewer."""

    def __init__(self, resp: web.StreamResponse, agent: str, owner: str, *, read_only: bool) -> None:
        self.resp = resp
        self.agent = agent
        self.owner = owner  # the session (or "token") that opened it: only it may type here
        self.read_only = read_only
        self.id = secrets.token_urlsafe(12)
        self.viewers: dict[str, hostsmod.Link] = {}
        """Another host's pane: this page's viewer link to it (its stream and its keys)."""
        self._buf: list[bytes] = []
        self._closed = asyncio.Event()
        self.lock = asyncio.Lock()

    def write(self, data: bytes) -> None:
        self._buf.append(data)

    async def drain(self) -> None:
        if self._closed.is_set():
            raise ConnectionResetError("the browser went away")
        data, self._buf = b"".join(self._buf), []
        frames = [f for f in data.split(b"\n") if f]
        if frames:
            await self.send(b"".join(b"data: " + f + b"\n\n" for f in frames))

    async def send(self, data: bytes) -> None:
        try:
            async with self.lock:
                await self.resp.write(data)
        except (ConnectionError, RuntimeError):
            self.close()
            raise ConnectionResetError("the browser went away") from None

    def is_closing(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()


def _sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()


def _sse_response() -> web.StreamResponse:
    return web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


class WebApp:
    """The pages and their calls; `register` adds them to the HTTP API's app."""

    def __init__(self, sup: Supervisor, hub: Hub | None, server: Server | None = None) -> None:
        self.sup = sup
        self.hub = hub
        self.server = server  # its routes to other hosts' agents (hosts.py)
        self._team_lock = asyncio.Lock()
        self.auth = WebAuth()
        self.feeds: set[FeedClient] = set()
        self.terms: dict[str, TermStream] = {}
        self._team: tuple[int, dict[str, Any]] | None = None
        self._building: tuple[int, asyncio.Future[dict[str, Any]]] | None = None
        self.version = 0
        sup.sinks.append(self._on_event)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.sup.sinks.remove(self._on_event)
        for feed in self.feeds:
            feed.wake.set()
        for term in self.terms.values():
            term.close()

    def register(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self.page_team)
        r.add_get("/agents/{name}", self.page_agent)  # another host's: /agents/build1%2Fcoding
        r.add_get("/login", self.login)
        r.add_post("/login", self.login)
        r.add_get("/logout", self.logout)
        r.add_get("/manifest.webmanifest", self.manifest)
        r.add_get("/static/{path:.+}", self.static)
        r.add_get("/web/team", self.team)
        r.add_get("/web/events", self.events)
        r.add_get("/web/agents/{name}/stream", self.term_stream)
        r.add_post("/web/agents/{name}/keys", self.keys)
        r.add_post("/web/agents/{name}/answer", self.answer)
        r.add_post("/web/inbox/ack", self.inbox_ack)

    # -- who is asking ----------------------------------------------------------------------
    @staticmethod
    def is_public(path: str) -> bool:
        return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)

    @staticmethod
    def is_page(path: str) -> bool:
        """A page a person opens (sent to /login without a session), not a call (401)."""
        return path == "/" or (path.startswith("/agents/") and path.count("/") in (2, 3))

    def session(self, request: web.Request) -> str | None:
        sid = request.cookies.get(COOKIE)
        return sid if self.auth.check(sid) else None

    @staticmethod
    def same_origin(request: web.Request) -> bool:
        """The Origin header, when the browser sent one, names this server."""
        origin = request.headers.get("Origin")
        if origin is None:
            return request.method in ("GET", "HEAD")  # browsers send Origin with every POST
        # the host only: behind a TLS proxy (tailscale serve, nginx) the page is https while
        # this server sees http; the host is what another site cannot fake in a browser
        return origin.partition("://")[2] == request.host

    # -- pages ------------------------------------------------------------------------------
    def _file(self, name: str, *, cache: bool = False) -> web.Response:
        body = static_bytes(name)
        if body is None:
            raise web.HTTPNotFound()
        suffix = name[name.rfind(".") :]
        headers = {"Content-Type": STATIC_TYPES.get(suffix, "application/octet-stream")}
        headers["Cache-Control"] = "max-age=3600" if cache else "no-cache"
        return web.Response(body=body, headers=headers)

    async def page_team(self, request: web.Request) -> web.Response:
        return self._file("team.html")

    async def page_agent(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self._route("screen", name) is None:
            self.sup.agent(name)  # unknown_agent → 404
        return self._file("agent.html")

    async def static(self, request: web.Request) -> web.Response:
        return self._file(request.match_info["path"], cache=True)

    async def manifest(self, request: web.Request) -> web.Response:
        return self._file("manifest.webmanifest")

    def login_page(self, message: str = "", status: int = 200) -> web.Response:
        body = (static_bytes("login.html") or b"").decode()
        note = f'<p class="error">{html.escape(message)}</p>' if message else ""
        return web.Response(
            text=body.replace("<!--message-->", note), status=status, content_type="text/html"
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        """GET /login?code=…, or the form's POST: a good code → the cookie and the team page."""
        if request.method == "POST":
            if not self.same_origin(request):
                return self.login_page("refused: the form came from another site", 403)
            form = await request.post()
            code = str(form.get("code") or "").strip()
        else:
            code = request.query.get("code", "").strip()
        if not code:
            if self.session(request):
                raise web.HTTPSeeOther("/")
            return self.login_page()
        sid = self.auth.redeem(code)
        if sid is None:
            log.warning("web: a login with a wrong or spent code from %s", request.remote)
            return self.login_page(
                "That code is wrong, spent or expired. Run `staff web` for a new one.", 403
            )
        resp = web.HTTPSeeOther("/")  # the code leaves the address bar and the history
        resp.set_cookie(
            COOKIE, sid, httponly=True, samesite="Strict", path="/", max_age=int(SESSION_IDLE),
            secure=request.secure,
        )
        log.info("web: a browser logged in from %s", request.remote)
        raise resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        sid = request.cookies.get(COOKIE)
        if sid:
            self.auth.sessions.pop(sid, None)
        resp = web.HTTPSeeOther("/login")
        resp.del_cookie(COOKIE, path="/")
        raise resp

    # -- the team -----------------------------------------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") in REFRESH_TYPES:
            self.version += 1
        for feed in self.feeds:
            feed.push(event)

    async def team_now(self) -> dict[str, Any]:
        """The team view, made once per change however many pages read it. The lock only
        hands out the one build of a version; the build (other hosts' screens, each bounded)
        runs outside it, so a slow host never holds every page's reader in line."""
        async with self._team_lock:
            if self._team is not None and self._team[0] == self.version:
                return self._team[1]
            if self._building is None or self._building[0] != self.version or self._building[1].done():
                self._building = (self.version, asyncio.ensure_future(self._build(self.version)))
            build = self._building[1]
        return await asyncio.shield(build)

    async def _build(self, version: int) -> dict[str, Any]:
        hosts = self.server.hosts if self.server is not None else None
        remote = await self._remote_agents(hosts) if hosts is not None else None
        view = team_view(self.sup, remote)
        if hosts is not None:
            view["hosts"] = hosts.info()
        if self._team is None or self._team[0] <= version:  # an event meanwhile makes the next one
            self._team = (version, view)
        return view

    # -- other hosts' agents ------------------------------------------------------------------
    def _route(self, cmd: str, name: str) -> tuple[hostsmod.Link, str, str] | None:
        """The route of `cmd` for another host's agent `name`, as the socket's; None for ours."""
        route = self.server.remote({"cmd": cmd, "agent": name}) if self.server is not None else None
        return None if route is None else (route[0], route[1], route[2])

    async def _forward(self, route: tuple[hostsmod.Link, str, str], req: dict[str, Any]) -> Any:
        assert self.server is not None and self.server.hosts is not None
        return await self.server.hosts.forward(req, *route)

    async def _remote_agents(self, hosts: hostsmod.Hosts) -> list[dict[str, Any]]:
        """Other hosts' rows; a blocked agent's question read off its screen, all asked at
        once, each for at most SCREEN_WAIT s (a host that does not answer shows no question)."""

        async def question(st: dict[str, Any]) -> Question | None:
            name = st["agent_id"]
            route = self._route("screen", name) if st.get("status") == AgentState.BLOCKED else None
            if route is None:
                return None
            with contextlib.suppress(ProtocolError, TimeoutError):
                asked = self._forward(route, {"cmd": "screen", "agent": name})
                screen = await asyncio.wait_for(asked, SCREEN_WAIT)
                return question_on(screen) if isinstance(screen, dict) else None
            return None

        rows = await hosts.status_rows()
        questions = await asyncio.gather(*(question(st) for st in rows))
        return [agent_row(st, q) for st, q in zip(rows, questions, strict=True)]

    async def team(self, request: web.Request) -> web.Response:
        return web.json_response(await self.team_now())

    async def events(self, request: web.Request) -> web.StreamResponse:
        resp = _sse_response()
        await resp.prepare(request)
        feed = FeedClient()
        feed.wake.set()  # the team as it is now, first
        self.feeds.add(feed)
        try:
            await resp.write(b": staff team\nretry: 2000\n\n")
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(feed.wake.wait(), HEARTBEAT)
                if feed not in self.feeds or not self.sup.sinks.count(self._on_event):
                    break
                feed.wake.clear()
                out = [_sse(e.get("type", "event"), e) for e in feed.events]
                feed.events.clear()
                if feed.dirty:
                    feed.dirty = False
                    out.append(_sse("team", await self.team_now()))
                await resp.write(b"".join(out) or b": ping\n\n")
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.feeds.discard(feed)
        return resp

    async def inbox_ack(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        ids = body.get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise ProtocolError(ERR_BAD_REQUEST, "'ids' must be a list of inbox item ids")
        return web.json_response({"acked": [i.id for i in self.sup.ack(ids)]})

    async def answer(self, request: web.Request) -> web.Response:
        """A tap on a choice: the same checked answer as `staff answer`, refused when the
        question on the screen is no longer the one the person saw."""
        name = request.match_info["name"]
        route = self._route("answer", name)
        body = await _json_body(request)
        key, seen = body.get("key"), body.get("question")  # the question's id as the page showed it
        if not isinstance(key, str) or not re.fullmatch(r"[1-9]", key):
            raise ProtocolError(ERR_BAD_REQUEST, "'key' must be a choice's number, 1 to 9")
        if route is not None:  # another host's agent: its screen, then its answer, through the hub
            screen = await self._forward(route, {"cmd": "screen", "agent": name})
            state = screen.get("state")
            q = question_on(screen) if state == AgentState.BLOCKED else None
        else:
            agent = self.sup.agent(name)
            state, q = agent.state, question_of(agent)
        if q is None:
            raise ProtocolError(ERR_NOT_ANSWERED, f"{name} is {state}, not asking anything")
        if isinstance(seen, str) and seen != q.id:
            raise ProtocolError(ERR_NOT_ANSWERED, f"{name} now asks something else: {q.text}")
        if q.choices and key not in {k for k, _ in q.choices}:
            raise ProtocolError(ERR_BAD_REQUEST, f"{key} is not one of the choices")
        if route is not None:
            # the far daemon checks the id again right before the key: the screen may change
            # between this check and the answer's round trip
            got = await self._forward(
                route, {"cmd": "answer", "agent": name, "keys": key, "timeout": 10.0, "question": q.id}
            )
            return web.json_response(got)
        try:
            tries = await agent.answer(key, 10.0, q.id)
        except AnswerError as exc:
            raise ProtocolError(ERR_NOT_ANSWERED, str(exc)) from None
        return web.json_response({"agent": agent.name, "state": str(agent.state), "tries": tries})

    # -- an agent's terminal ------------------------------------------------------------------
    def owner(self, request: web.Request) -> str:
        return self.session(request) or "token"

    async def term_stream(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        route = self._route("stream", name)
        agent = self.sup.agent(name) if route is None else None
        if self.hub is None:
            raise ProtocolError(ERR_BAD_REQUEST, "this server streams no terminals")
        history: list[str] = []
        if agent is not None:
            history = agent.term.history_text(2000)
        elif route is not None and route[0].up.is_set():  # another host's scrollback, if reachable
            with contextlib.suppress(ProtocolError):
                screen = await self._forward(route, {"cmd": "screen", "agent": name, "scrollback": True})
                history = screen["history"]
        resp = _sse_response()
        await resp.prepare(request)
        term = TermStream(resp, name, self.owner(request), read_only=request.query.get("ro") == "1")
        self.terms[term.id] = term
        hello = {"stream": term.id, "agent": name, "read_only": term.read_only}
        try:
            await term.send(_sse("hello", {**hello, "history": history}))
        except ConnectionError:
            self.terms.pop(term.id, None)
            return resp
        task: asyncio.Future[Any]
        if agent is not None:
            task = asyncio.ensure_future(self.hub.stream(agent, term, None))
        else:
            assert route is not None
            task = asyncio.ensure_future(self._remote_term(term, route[0], route[2]))
        feed = FeedClient()  # the agent's state and question, and the events to notify of
        self.feeds.add(feed)
        try:
            while not task.done():
                woken = asyncio.ensure_future(feed.wake.wait())
                await asyncio.wait({task, woken}, timeout=HEARTBEAT, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if task.done():
                    break
                out = [_sse(e.get("type", "event"), e) for e in feed.events]
                feed.events.clear()
                if feed.dirty:
                    feed.dirty = False
                    mine = [a for a in (await self.team_now())["agents"] if a["name"] == name]
                    out += [_sse("agent", a) for a in mine]
                feed.wake.clear()
                await term.send(b"".join(out) or b": ping\n\n")
        except ConnectionError:
            pass
        finally:
            self.feeds.discard(feed)
            term.close()
            self.terms.pop(term.id, None)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
            await hostsmod.Hosts.close_viewers(term.viewers)
        return resp

    async def _remote_term(self, term: TermStream, link: hostsmod.Link, there: str) -> None:
        """Another host's pane on this page: its daemon's stream (a snapshot, then the raw
        output) over a viewer link of the page's own, relayed as it comes. The link down: the
        page keeps the last screen (its agent greyed by the team events) and the stream starts
        again, with a fresh snapshot, when it is back. A page that falls MAX_BEHIND bytes behind
        gets a fresh stream, not a backlog the hub would hold for it."""
        closed = asyncio.ensure_future(term.wait_closed())
        try:
            while not term.is_closing():
                up = asyncio.ensure_future(link.up.wait())
                await asyncio.wait({up, closed}, return_when=asyncio.FIRST_COMPLETED)
                up.cancel()
                if term.is_closing():
                    return
                why = await self._remote_stream(term, link, there, closed)
                if why == "end":
                    return  # the page went, or the agent is not there: the page says so
                if why == "down" and link.up.is_set():  # the viewer link failed on its own
                    await asyncio.sleep(hostsmod.BACKOFF[1])  # not in a tight loop
        finally:
            closed.cancel()

    async def _remote_stream(
        self, term: TermStream, link: hostsmod.Link, there: str, closed: asyncio.Future[None]
    ) -> str:
        """One stream of a remote pane: "behind" (start afresh), "down" (the link dropped) or "end"."""
        assert self.server is not None and self.server.hosts is not None
        pending: list[bytes] = []
        behind = asyncio.Event()
        wake = asyncio.Event()

        def emit(event: dict[str, Any]) -> None:
            if behind.is_set():
                return
            pending.append(encode({"id": None, "event": event}))
            if sum(map(len, pending)) > MAX_BEHIND:
                pending.clear()
                behind.set()
            wake.set()

        await hostsmod.Hosts.close_viewers(term.viewers)
        term.viewers = {}
        call = asyncio.ensure_future(
            self.server.hosts.view({"cmd": "stream", "agent": there}, link, there, term.viewers, emit)
        )
        try:
            while not (call.done() or behind.is_set() or term.is_closing()):
                woken = asyncio.ensure_future(wake.wait())
                await asyncio.wait({call, woken, closed}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                wake.clear()
                if pending and not behind.is_set():
                    data = b"".join(pending)
                    pending.clear()
                    term.write(data)
                    await term.drain()
        finally:
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError, ProtocolError):
                await call
        if behind.is_set():
            return "behind"
        exc = None if call.cancelled() else call.exception()
        return "down" if isinstance(exc, ProtocolError) and exc.code == ERR_HOST_DOWN else "end"

    async def keys(self, request: web.Request) -> web.Response:
        """Keys typed in the page: they hold the agent (`user`) as the console's do."""
        name = request.match_info["name"]
        route = self._route("input", name)
        body = await _json_body(request)
        keys, sid = body.get("keys"), body.get("stream")
        if not isinstance(keys, str) or not keys or len(keys) > MAX_KEYS or "\x00" in keys:
            raise ProtocolError(ERR_BAD_REQUEST, f"'keys' must be 1 to {MAX_KEYS} characters, no NUL")
        term = self.terms.get(sid) if isinstance(sid, str) else None
        if term is None or term.agent != name or term.owner != self.owner(request):
            raise ProtocolError(ERR_BAD_REQUEST, "'stream' must be this page's open terminal stream")
        if term.read_only:
            raise ProtocolError(ERR_BAD_REQUEST, "this terminal is read-only")
        if route is not None:  # on the page's own viewer link: the far daemon ties the hold to it
            assert self.server is not None and self.server.hosts is not None
            link, _, there = route
            got = await self.server.hosts.view(
                {"cmd": "input", "agent": there, "keys": keys}, link, there, term.viewers, lambda e: None
            )
            return web.json_response(got)
        agent = self.sup.agent(name)
        if not agent.alive:
            raise ProtocolError(ERR_AGENT_DOWN, f"agent {agent.name!r} is not running ({agent.state})")
        assert self.hub is not None
        held = self.hub.hold(agent, True, term)
        agent.note_person_input()
        agent.write(keys)
        return web.json_response(held)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await asyncio.wait_for(request.read(), 30.0))
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(ERR_BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ProtocolError(ERR_BAD_REQUEST, "the body must be a JSON object")
    return body

