"""The daemon's Unix socket: JSON lines in, JSON lines out (see protocol.py).

Each request is validated against the protocol table before it reaches the supervisor,
and any error becomes an error reply: a client's mistake never takes the daemon down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

from supervisor.agent.agent import AnswerError
from supervisor.daemon import hosts as hostsmod
from supervisor.daemon.streams import Hub
from supervisor.detect import answers
from supervisor.protocol import (
    ERR_AGENT_DOWN,
    ERR_BAD_REQUEST,
    ERR_INTERNAL,
    ERR_NOT_ANSWERED,
    MAX_FRAME,
    PROTOCOL_VERSION,
    ProtocolError,
    encode,
    release,
    validate,
)
from supervisor.team import config as configmod
from supervisor.team.chief import Chief
from supervisor.team.config import TableError, parse_listen
from supervisor.team.inbox import InboxItem
from supervisor.team.monitors import Monitor, Monitors
from supervisor.team.pool import Pool
from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


DEFAULT_WEB_LISTEN = "127.0.0.1:8765"
"""Where `staff web` listens when no HTTP API is open and neither --http nor [http] says."""
LISTEN_BACKLOG = 4096
"""Pending connections the socket holds before the loop accepts them."""


class Server:
    def __init__(self, sup: Supervisor, path: Path, *, chief: Chief | None = None) -> None:
        self.sup = sup
        self.chief = chief
        self.path = path
        self._server: asyncio.base_events.Server | None = None
        self.stopped = asyncio.Event()
        self.reload = False  # stopping for `staff reload`: leave the agents to the next daemon
        self.started = time.time()
        self.clients = 0
        self.hub = Hub(sup)  # streams, sizes, holds, recordings (streams.py)
        self.monitors = Monitors(sup)  # staff watch (monitors.py)
        self.http: Any = None  # the HTTP API when one listens (httpapi.py)
        self.notifier: Any = None  # pushes to [notify] url (notify.py)
        self.hosts: hostsmod.Hosts | None = None  # links to other hosts' daemons (hosts.py)
        self._viewers: dict[asyncio.StreamWriter, dict[str, hostsmod.Link]] = {}
        """Per client: its own link to each host whose panes it views (hosts.VIEW_CMDS)."""

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            # asyncio's default backlog of 100 overflows when a hundred clients connect at
            # once (a burst of hooks, a test's silent clients): the kernel then refuses
            # with EAGAIN. The kernel caps this at net.core.somaxconn.
            self._server = await asyncio.start_unix_server(
                self._client, path=str(self.path), limit=MAX_FRAME, backlog=LISTEN_BACKLOG
            )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.hub.start()
        damaged = self.monitors.load()
        if damaged:
            self.sup.warnings.append(damaged)

    async def close(self) -> None:
        if self.notifier is not None:
            await self.notifier.close()
        if self.http is not None:
            await self.http.close()
        self.hub.close()
        self.monitors.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = peer_uid(writer)
        if uid is not None and uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            writer.close()
            return
        self.clients += 1
        pending: set[asyncio.Task[None]] = set()
        try:
            await self._serve_client(reader, writer, pending)
        except asyncio.CancelledError:
            pass  # the daemon is stopping; the client sees EOF
        finally:
            self.clients -= 1
            for t in pending:
                t.cancel()
            writer.close()
            viewers = self._viewers.pop(writer, None)
            if viewers:
                await hostsmod.Hosts.close_viewers(viewers)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: set[asyncio.Task[None]]
    ) -> None:
        while True:
            try:
                line = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                await self._send(
                    writer,
                    {
                        "id": None,
                        "ok": False,
                        "error": {
                            "code": ERR_BAD_REQUEST,
                            "message": f"request too large (limit {MAX_FRAME} bytes)",
                        },
                    },
                )
                break
            except ConnectionError:
                break
            if not line:
                break
            if not line.strip():
                continue
            t = asyncio.create_task(self._handle(line, writer))
            pending.add(t)
            t.add_done_callback(pending.discard)

    async def _send(self, writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
        if writer.is_closing():
            return
        writer.write(encode(obj))
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def _handle(self, line: bytes, writer: asyncio.StreamWriter) -> None:
        rid: Any = None
        try:
            try:
                req = json.loads(line)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ProtocolError(ERR_BAD_REQUEST, f"malformed JSON: {exc}") from None
            if isinstance(req, dict):
                rid = req.get("id")
            problem = validate(req)
            if problem:
                raise ProtocolError(ERR_BAD_REQUEST, problem)
            remote = self._route(req) if self.hosts is not None else None
            if remote is not None:
                result = await self._forward(req, writer, rid, *remote)
            else:
                result = await getattr(self, "cmd_" + req["cmd"])(req, writer, rid)
            await self._send(writer, {"id": rid, "ok": True, "result": result})
        except ProtocolError as exc:
            await self._send(
                writer, {"id": rid, "ok": False, "error": {"code": exc.code, "message": exc.message}}
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("request failed")
            await self._send(
                writer,
                {
                    "id": rid,
                    "ok": False,
                    "error": {
                        "code": ERR_INTERNAL,
                        "message": f"internal error: {type(exc).__name__}: {exc}",
                    },
                },
            )

    # -- commands ---------------------------------------------------------------------------
    async def cmd_ping(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return {
            "pid": os.getpid(),
            "version": PROTOCOL_VERSION,
            "release": release(),
            "uptime": time.time() - self.started,
            "agents": list(self.sup.agents),
            "config": self.sup.config.source,
            "note": self.sup.config.note,
            "warnings": self.sup.warnings,
        }

    async def cmd_status(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        st = self.sup.status()
        if req.get("tasks"):  # a hub (hosts.py) learns what waits here again after a reconnect
            st["waiting"] = [{"id": t.id, "to": t.to} for t in self.sup.queue]
        if self.hosts is not None:
            for row in st["agents"]:
                row["host"] = ""
            st["agents"] += await self.hosts.status_rows()
            st["hosts"] = self.hosts.info()
        return st

    def _route(self, req: dict[str, Any]) -> tuple[Any, ...] | None:
        """Where a request goes when it is for another host (hosts.py): ``NAME/agent``,
        ``NAME/T-…``, or a submit to ``any``/``role:X`` that the router places there
        (`Hosts.resolve`, the one rule: team/routing.py)."""
        assert self.hosts is not None
        route = self.hosts.remote(req)
        to = req.get("to")
        if route is None and req["cmd"] == "submit" and isinstance(to, str):
            return self.hosts.resolve(self.sup, to, req.get("key"))
        return route

    def remote(self, req: dict[str, Any]) -> tuple[Any, ...] | None:
        """For the HTTP API and the web app: the route (link, field, name there) of a request
        for another host's agent or task, as the socket routes it; None for this host's."""
        return self._route(req) if self.hosts is not None else None

    async def _forward(
        self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any, *route: Any) -> Any:
        """A request for `NAME/agent` or `NAME/T-…`, carried out by that host's daemon (hosts.py);
        a `wait` with progress gets the host's relayed events for its task and agent."""
        assert self.hosts is not None
        link: hostsmod.Link = route[0]
        there: str = route[2]
        if req["cmd"] in hostsmod.VIEW_CMDS:
            viewers = self._viewers.setdefault(w, {})
            return await self.hosts.view(
                req, link, there, viewers, lambda e: w.write(encode({"id": rid, "event": e}))
            )
        if req["cmd"] != "wait" or not req.get("progress"):
            return await self.hosts.forward(req, *route)
        host = link.spec.name
        hub_id = f"{host}/{there}"
        agents: set[str] = set()

        def sink(event: dict[str, Any]) -> None:
            t = event.get("task") or {}
            if t.get("id") == hub_id and isinstance(t.get("agent"), str):
                agents.add(t["agent"])
            if t.get("id") == hub_id or event.get("agent") in agents:
                w.write(encode({"id": rid, "event": event}))

        self.sup.sinks.append(sink)
        try:
            if link.up.is_set():
                with contextlib.suppress(ProtocolError):
                    now = await self.hosts.forward({"cmd": "task", "task": req["task"]}, *route)
                    sink({"type": "task", "task": now})
            return await self.hosts.forward(req, *route)
        finally:
            self.sup.sinks.remove(sink)

    async def cmd_submit(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return self.sup.submit(
            req["to"], req["text"], key=req.get("key"), notify=bool(req.get("notify"))
        ).to_json()

    async def cmd_task(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return self.sup.task(req["task"]).to_json()

    async def cmd_wait(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        task = self.sup.task(req["task"])
        if req.get("progress") and not task.final:

            def sink(event: dict[str, Any]) -> None:
                agent = event.get("agent")
                t = event.get("task") or {}
                item = event.get("item") or {}
                if (
                    t.get("id") == task.id
                    or item.get("task") == task.id
                    or (agent and agent in (task.agent, task.to))
                ):
                    w.write(encode({"id": rid, "event": event}))

            self.sup.sinks.append(sink)
            # progress starts from where the task is now (it may have moved since the submit)
            w.write(encode({"id": rid, "event": {"type": "task", "task": task.to_json()}}))
            try:
                task = await self.sup.wait(task.id, req.get("timeout"))
            finally:
                self.sup.sinks.remove(sink)
        else:
            task = await self.sup.wait(task.id, req.get("timeout"))
        return task.to_json()

    async def cmd_cancel(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return self.sup.cancel(req["task"]).to_json()

    async def cmd_send(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        agent = self.sup.agent(req["agent"])
        if not agent.alive:
            raise ProtocolError(ERR_AGENT_DOWN, f"agent {agent.name!r} is not running ({agent.state})")
        agent.note_person_input()
        agent.write(req["keys"])
        return {"agent": agent.name, "bytes": len(req["keys"].encode())}

    async def cmd_answer(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        agent = self.sup.agent(req["agent"])
        try:
            tries = await agent.answer(req["keys"], float(req.get("timeout", 10.0)), req.get("question"))
        except AnswerError as exc:
            raise ProtocolError(ERR_NOT_ANSWERED, str(exc)) from None
        return {"agent": agent.name, "state": agent.state, "tries": tries}

    async def cmd_screen(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        agent = self.sup.agent(req["agent"])
        return {
            "agent": agent.name,
            "state": agent.state,
            "title": agent.term.title,
            "lines": agent.term.lines(),
            "cursor": agent.term.cursor,
            "history": agent.term.history_text(200) if req.get("scrollback") else [],
        }

    async def cmd_explain(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        agent = self.sup.agent(req["agent"])
        det = agent.detection
        view = agent.view()
        live = agent.profile.detect(view)
        rules = []
        for rule in agent.profile.rules:
            hit = rule.match(view)
            rules.append(
                {
                    "id": rule.id,
                    "state": rule.state,
                    "priority": rule.priority,
                    "region": rule.region,
                    "matched": hit,
                }
            )
        return {
            "agent": agent.name,
            "state": agent.state,
            "profile": agent.profile.name,
            "profile_source": agent.profile.source,
            "profile_version": agent.profile.version,
            "rule": det.rule if det else None,
            "matched": det.matched if det else None,
            "region": det.region if det else None,
            "explain": det.explain() if det else None,
            "live": live.explain(),
            "rules": rules,
            "fallback": agent.profile.fallback,
            "user_hold": agent.user_hold,
            "error": agent.error,
            "rule_hits": dict(agent.rule_hits),
            "up_since": agent.up_since,
        }

    async def cmd_logs(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        agent = self.sup.agent(req["agent"])
        # A program on the alternate screen (Claude Code) keeps no scrollback there: what
        # scrolled out of its view is in its transcript, read as the conversation instead.
        transcript = agent.transcript() if agent.term.alternate or not agent.alive else None
        if transcript is not None:
            lines, source = answers.conversation_lines(transcript), "transcript"
        else:
            lines, source = [*agent.term.history_text(), *agent.term.lines()], "screen"
        while lines and not lines[-1].strip():
            lines.pop()
        n = req.get("lines")
        return {"agent": agent.name, "lines": lines[-n:] if n else lines, "source": source}

    async def cmd_spawn(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        agent = self.sup.spawn(req["agent"])
        if agent.error and not agent.alive:
            raise ProtocolError(ERR_AGENT_DOWN, f"cannot start {agent.name}: {agent.error}")
        return agent.status()

    async def cmd_kill(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return (await self.sup.kill(req["agent"])).status()

    async def cmd_restart(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        agent = await self.sup.restart(req["agent"])
        if agent.error and not agent.alive:
            raise ProtocolError(ERR_AGENT_DOWN, f"cannot start {agent.name}: {agent.error}")
        return agent.status()

    async def cmd_subscribe(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        done = asyncio.get_running_loop().create_future()
        early: list[dict[str, Any]] | None = []  # events while the hello is made: sent after it

        def sink(event: dict[str, Any]) -> None:
            if w.is_closing():
                if not done.done():
                    done.set_result(None)
                return
            if early is not None:
                early.append(event)
                return
            w.write(encode({"id": rid, "event": event}))

        self.sup.sinks.append(sink)
        try:
            # the hello names other hosts' agents too (their rows are asked for): an event that
            # comes meanwhile follows it, never lost (one already counted in it may come again)
            hello = await self.cmd_status(req, w, rid)
            w.write(encode({"id": rid, "event": {"type": "hello", **hello}}))
            for event in early or ():
                w.write(encode({"id": rid, "event": event}))
            early = None
            await done
        finally:
            self.sup.sinks.remove(sink)
        return None

    async def cmd_inbox(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        items = self.sup.inbox.list(unread=not req.get("all"), to=req.get("to"))
        since = req.get("since")
        if since is not None:  # a hub's catch-up (hosts.py): only what came after its watermark
            items = [i for i in items if i.time >= since]
        return {"items": [i.to_json() for i in items]}

    async def cmd_inbox_ack(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        ids = req.get("ids")
        if ids is not None and not all(isinstance(i, str) for i in ids):
            raise ProtocolError(ERR_BAD_REQUEST, "inbox_ack: 'ids' must be a list of strings")
        return {"acked": [i.id for i in self.sup.ack(ids)]}

    async def cmd_inbox_post(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        item = InboxItem(
            title=req["title"],
            body=req.get("body") or "",
            source=req.get("source") or "external",
            to=req.get("to") or "chief",
            task=req.get("task"),
        )
        return self.sup.post(item).to_json()

    async def cmd_chief(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        resume = bool(req.get("continue"))
        if self.chief is None:
            raise ProtocolError(ERR_BAD_REQUEST, "this daemon runs no chief")
        return self.chief.open(req.get("args") or [], resume=resume, cwd=req["cwd"])

    async def cmd_http_serve(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return await self.open_http(req["listen"], allow_remote=bool(req.get("allow_remote")))

    async def open_http(self, listen: str, *, allow_remote: bool = False) -> dict[str, Any]:
        """Open the HTTP API on this loop (`staff serve --http`, `[http] listen`); one at a time."""
        from supervisor.daemon import httpapi

        try:
            if self.http is None:
                self.http = await httpapi.start(
                    self.sup, listen, allow_remote=allow_remote, hub=self.hub, server=self
                )
            elif parse_listen(listen) not in ((self.http.host, self.http.port), (self.http.host, 0)):
                raise ProtocolError(ERR_BAD_REQUEST, f"the HTTP API already listens on {self.http.url}")
        except (TableError, OSError) as exc:
            raise ProtocolError(ERR_BAD_REQUEST, f"HTTP API: {exc}") from None
        info: dict[str, Any] = self.http.info()
        return info

    async def cmd_web(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        """`staff web`: the HTTP API (the one open, else `listen`) and a one-time login code."""
        listen = req.get("listen")
        if self.http is None or listen:
            await self.open_http(listen or DEFAULT_WEB_LISTEN, allow_remote=bool(req.get("allow_remote")))
        code = self.http.web.auth.new_code()
        info: dict[str, Any] = self.http.info()
        return {**info, "code": code, "login": f"{info['url']}/login?code={code}"}

    async def cmd_watch(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        m = Monitor(
            agent=req["agent"],
            until=req["until"],
            then=req.get("then"),
            notify=req.get("notify"),
            task=req.get("task"),
            title=req.get("title"),
            repeat=bool(req.get("repeat")),
        )
        return self.monitors.add(m).to_json()

    async def cmd_monitors(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        remote = await self.hosts.monitors() if self.hosts is not None else []
        return {"monitors": [m.to_json() for m in self.monitors.list()] + remote}

    @staticmethod
    def _monitor_id(req: dict[str, Any]) -> str:
        mid = req.get("monitor", req.get("id"))
        if not isinstance(mid, str):
            raise ProtocolError(ERR_BAD_REQUEST, f"{req['cmd']} needs the monitor's id (`monitor`: W-…)")
        return mid

    async def cmd_unwatch(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return self.monitors.remove(self._monitor_id(req)).to_json()

    async def cmd_monitor_wait(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return (await self.monitors.wait_fired(self._monitor_id(req), req.get("timeout"))).to_json()

    # -- streaming and taking over agents (streams.py) ---------------------------------------------
    async def cmd_stream(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return await self.hub.stream(self.sup.agent(req["agent"]), w, rid)

    async def cmd_resize(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return self.hub.resize(self.sup.agent(req["agent"]), req["rows"], req["cols"], req["viewer"], w)

    async def cmd_hold(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return self.hub.hold(self.sup.agent(req["agent"]), req["on"], w, req.get("grace"))

    async def cmd_input(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        """Keys a person typed: they hold the agent (no task is delivered) until they leave."""
        agent = self.sup.agent(req["agent"])
        if not agent.alive:
            raise ProtocolError(ERR_AGENT_DOWN, f"agent {agent.name!r} is not running ({agent.state})")
        held = self.hub.hold(agent, True, w, req.get("grace"))
        agent.note_person_input()
        agent.write(req["keys"])
        return held

    async def cmd_hosts(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        return {"hosts": await self.hosts.measure() if self.hosts is not None else []}

    async def cmd_place(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        if "pool" in req:  # a pool role: this host's pool grows and reaps its clones here
            return self._place_role(req)
        try:
            spec = configmod.agent_from_table(req["agent"], req["table"], "placed by a hub")
        except configmod.ConfigError as exc:
            raise ProtocolError(ERR_BAD_REQUEST, str(exc)) from None
        agent, new = self.sup.place(spec)
        if new:  # this host's team now: a restart (`staff reload`) adopts it from the keeper
            configmod.save_placed(self.sup.home / configmod.PLACED, req["agent"], req["table"], by_hub=True)
        return {**agent.status(), "placed": new}

    def _place_role(self, req: dict[str, Any]) -> Any:
        try:
            spec = configmod.role_from_table(req["agent"], req["table"], req["pool"], "placed by a hub")
        except configmod.ConfigError as exc:
            raise ProtocolError(ERR_BAD_REQUEST, str(exc)) from None
        pool = next((e for e in self.sup.extensions if isinstance(e, Pool)), None)
        if pool is None:
            raise ProtocolError(ERR_BAD_REQUEST, "this daemon has no pool")
        new = pool.add_role(spec)
        configmod.save_placed(
            self.sup.home / configmod.PLACED_ROLES, req["agent"], {"table": req["table"], "pool": req["pool"]}
        )
        return {"role": spec.name, "placed": new, "min": spec.min, "max": spec.max}

    async def cmd_new(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        """A new agent made like `like` (its command, profile, role, cwd, env), named `agent` or
        `like-2`, `like-3`…; started now and kept in the state dir's placed.json, so it is part
        of this team across restarts, as a hub's placed agents are."""
        like = self.sup.agent(req["like"]).spec
        name = req.get("agent")
        if name is None:
            n = 2
            while f"{like.name}-{n}" in self.sup.agents:
                n += 1
            name = f"{like.name}-{n}"
        elif name in self.sup.agents:
            raise ProtocolError(ERR_BAD_REQUEST, f"there is already an agent {name!r}")
        table: dict[str, Any] = {"command": list(like.command), "profile": like.profile,
                                 "restart": like.restart, "env": dict(like.env)}
        for key in ("role", "role_text", "cwd"):
            if getattr(like, key):
                table[key] = getattr(like, key)
        if like.worktree:
            table["worktree"] = True
        try:
            spec = configmod.agent_from_table(name, table, "new")
        except configmod.ConfigError as exc:
            raise ProtocolError(ERR_BAD_REQUEST, str(exc)) from None
        agent, _ = self.sup.place(spec)
        configmod.save_placed(self.sup.home / configmod.PLACED, name, table)
        return agent.status()

    def _added(self, name: str, what: str) -> None:
        """Only an agent added at run time with `new` may be renamed or removed here: a
        team-file agent would come back from the file at the next start, and a hub places its
        agents again on every reconnect (the old name back, or a duplicate beside the new)."""
        agent = self.sup.agent(name)  # unknown → its own clear error
        placed = configmod.read_placed(self.sup.home / configmod.PLACED)
        if configmod.placed_by_hub(placed.get(name)):
            raise ProtocolError(ERR_BAD_REQUEST, f"{name} was placed by a hub: edit the hub's team file")
        if name in placed:
            return
        if any(isinstance(e, Pool) and name in e.spawned for e in self.sup.extensions):
            raise ProtocolError(
                ERR_BAD_REQUEST, f"{name} is a member of the pool {agent.spec.role!r}: it starts and stops it"
            )
        raise ProtocolError(
            ERR_BAD_REQUEST,
            f"{name} comes from the team file ({self.sup.config.source}): {what} its [agents.{name}] "
            "table there, then `staff reload`",
        )

    async def cmd_remove(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        """Stop an agent added at run time and drop it from the team for good."""
        name = req["agent"]
        self._added(name, "delete")
        busy = [t for t in [*self.sup.queue, *self.sup.running_tasks()] if t.to == name or t.agent == name]
        if busy and not req.get("force"):
            ids = ", ".join(t.id for t in busy[:5])
            raise ProtocolError(ERR_BAD_REQUEST, f"{name} has {len(busy)} unfinished task(s) ({ids}): "
                                                 "cancel them, or remove it with --force")
        for task in busy:
            self.sup.cancel(task.id)
        agent = await self.sup.remove(name)
        self.monitors.forget_agent(name)
        configmod.forget_placed(self.sup.home / configmod.PLACED, name)
        return {**agent.status(), "removed": True}

    async def cmd_rename(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        old, new = req["agent"], req["new"]
        self._added(old, "rename")
        if (why := configmod.bad_name(new)) is not None:
            raise ProtocolError(ERR_BAD_REQUEST, why)
        agent = self.sup.rename(old, new)
        self.monitors.rename_agent(old, new)
        configmod.forget_placed(self.sup.home / configmod.PLACED, old, new)
        return {**agent.status(), "old": old}

    async def cmd_shutdown(self, req: dict[str, Any], w: asyncio.StreamWriter, rid: Any) -> Any:
        self.reload = bool(req.get("reload"))
        running = [
            {"id": t.id, "agent": t.agent, "title": t.title(), "state": t.state}
            for t in self.sup.running_tasks()
        ]
        asyncio.get_running_loop().call_soon(self.stopped.set)
        return {"stopping": True, "reload": self.reload, "running": running}
