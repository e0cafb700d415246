"""The hub's links to other hosts' daemons: agents on many machines, one team.

The host that runs an agent owns its pty (its own daemon, keeper and journal); this daemon,
the hub, keeps one link per `[hosts.NAME]`: a child process running the transport (`ssh …
staff bridge`, or any argv whose stdin/stdout is the bridge), speaking the ordinary protocol.
Nothing listens on the network; authentication is the transport's.

Over a link the hub places the host's agents (`place`: their `[agents.X]` tables), mirrors
them as ``NAME/agent`` (status rows, relayed events) and forwards requests for them. A task
on a host is ``NAME/T-…``: the host's own id behind the host's name, so the hub keeps no
table that a restart could lose — the host's journal is the truth. A dropped link loses
nothing: the agents keep running there, a `wait` in flight is asked again by task id once the
link is back, and a `submit` in flight is sent again with its idempotency key (the host
returns the task that key made instead of making a second one). A task submitted while the
host is down is held by the hub (``NAME/Q-…``, in ``hosts/NAME.json`` in the state dir) and
handed over once, in order, when the link is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.protocol import (
    ERR_BAD_REQUEST,
    ERR_HOST_DOWN,
    ERR_INTERNAL,
    ERR_TIMEOUT,
    ERR_UNKNOWN_AGENT,
    ERR_UNKNOWN_TASK,
    MAX_FRAME,
    PROTOCOL_VERSION,
    ProtocolError,
    encode,
    release,
)
from supervisor.states import DOWN
from supervisor.team import routing
from supervisor.team.config import HostSpec, RoleSpec
from supervisor.team.inbox import InboxItem
from supervisor.util.atomic import write_atomic, write_json_atomic

if TYPE_CHECKING:
    from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")

BACKOFF = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Seconds between reconnect attempts; the last one repeats (bounded, never a busy loop)."""
UNREACHABLE_AFTER = 10.0
"""A link down this long (or never up after its first attempts) is shown `unreachable`."""
HELLO_TIMEOUT = 30.0
"""How long the far side has to answer its first ping (ssh's handshake, a daemon's start)."""
RESEND_WITHIN = 60.0
"""A submit cut by a drop is sent again (same key) if the link is back within this long."""
MAX_HELD = 10000
"""Tasks the hub keeps for a host: those not handed over yet, then the newest handed ones
(their id's mapping to the host's own); the oldest handed ones are forgotten first."""

AGENT_CMDS = frozenset({"send", "answer", "screen", "explain", "logs", "spawn", "kill", "restart", "watch"})
MONITOR_CMDS = frozenset({"unwatch", "monitor_wait"})
"""A remote agent's monitor runs on its host (it keeps watching while the link is down); its
id is ``NAME/W-…`` here."""
VIEW_CMDS = frozenset({"stream", "resize", "hold", "input"})
"""A person's view of a pane: the far daemon ties sizes and holds to the connection they come
on, and ends a stream when it closes, so each hub client gets its own link (a viewer) for them."""
TASK_CMDS = frozenset({"wait", "task", "cancel"})


class LinkDown(Exception):
    """The link dropped while a request was in flight (it may have been carried out)."""


def split(name: str) -> tuple[str, str] | None:
    """``host/rest`` → (host, rest); a plain name → None."""
    host, sep, rest = name.partition("/")
    return (host, rest) if sep and host and rest else None


def _behind(host: str, record: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `record` with the names under `keys` behind the host name, and `host` set."""
    out = dict(record)
    for key in keys:
        if isinstance(out.get(key), str):
            out[key] = f"{host}/{out[key]}"
    out["host"] = host
    return out


def task_out(host: str, task: dict[str, Any]) -> dict[str, Any]:
    """A host's task record as the hub shows it: its id, target and agent behind the host name."""
    return _behind(host, task, ("id", "to", "agent"))


def monitor_out(host: str, monitor: dict[str, Any]) -> dict[str, Any]:
    """A host's monitor as the hub shows it: its id, agent and task behind the host name."""
    return _behind(host, monitor, ("id", "agent", "task"))


def event_out(host: str, event: dict[str, Any]) -> dict[str, Any] | None:
    """A host's event as the hub relays it, or None for one that is the host's own business."""
    if event.get("type") in ("hello", "inbox", "stopping"):  # the host's own daemon's business
        return None
    ev = dict(event)
    if isinstance(ev.get("agent"), str):
        ev["agent"] = f"{host}/{ev['agent']}"
    if isinstance(ev.get("task"), dict):
        ev["task"] = task_out(host, ev["task"])
    ev["host"] = host
    return ev


class Held:
    """Tasks for one host submitted while its link was down: kept in a file (0600, replaced
    atomically) until each is handed over, once, by its idempotency key; then the entry maps
    the hub's id (``Q-…``) to the host's (``T-…``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.handed = asyncio.Event()  # set (then cleared) whenever entries were handed over
        with contextlib.suppress(FileNotFoundError, ValueError, TypeError):
            loaded = json.loads(path.read_text(encoding="utf-8"))
            self.entries = {e["id"]: e for e in loaded if isinstance(e, dict) and "id" in e}

    def save(self) -> None:
        if len(self.entries) > MAX_HELD:
            done = [k for k, e in self.entries.items() if e.get("remote") or e.get("cancelled")]
            for k in done[: len(self.entries) - MAX_HELD]:
                del self.entries[k]
        write_json_atomic(self.path, list(self.entries.values()))

    def add(self, agent: str, text: str, key: str, notify: bool) -> dict[str, Any]:
        for e in self.entries.values():
            if e["key"] == key:
                return e  # the same key never makes two tasks, here either
        entry: dict[str, Any] = {
            "id": "Q-" + uuid.uuid4().hex[:8], "agent": agent, "text": text, "key": key,
            "notify": notify, "created": time.time(), "remote": None, "cancelled": False,
        }
        self.entries[entry["id"]] = entry
        self.save()
        return entry

    def waiting(self) -> list[dict[str, Any]]:
        return [e for e in self.entries.values() if not e["remote"] and not e["cancelled"]]

    @staticmethod
    def task_json(host: str, e: dict[str, Any]) -> dict[str, Any]:
        """A held task as a task record: queued at the hub (or cancelled there)."""
        state = ("failed" if e.get("error") else "cancelled") if e["cancelled"] else "queued"
        return {
            "id": f"{host}/{e['id']}", "to": f"{host}/{e['agent']}", "text": e["text"], "state": state,
            "agent": None, "created": e["created"], "delivered": None, "finished": None, "answer": None,
            "error": (e.get("error") or "cancelled while held at the hub") if e["cancelled"] else None,
            "key": e["key"],
            "host": host, "held": True, "elapsed": round(time.time() - e["created"], 3),
        }


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _timed(item: Any) -> bool:
    """An inbox item the hub can order and date: an object with a finite numeric `time`."""
    return _number(item.get("time") if isinstance(item, dict) else None)


class Keyed:
    """Which host each client-keyed task for ``any``/``role:`` went to, so a submit retried with
    its key (a workflow resumed after the hub died mid-submit) goes there again, where the key
    returns the task it made. One JSON line appended per entry (no rewrite per submit), the
    file rewritten with the newest `MAX_HELD` once it holds twice that."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hosts: dict[str, str] = {}
        self._lines = 0
        with contextlib.suppress(OSError):
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    e = json.loads(line)
                    self.hosts[str(e["key"])] = str(e["host"])
                    self._lines += 1

    def add(self, key: str, host: str) -> None:
        self.hosts[key] = host
        self._lines += 1
        if self._lines > 2 * MAX_HELD:
            self.hosts = dict(list(self.hosts.items())[-MAX_HELD:])
            text = "".join(json.dumps({"key": k, "host": h}) + "\n" for k, h in self.hosts.items())
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.path, text.encode("utf-8"), mode=0o600)  # never through a planted link
            self._lines = len(self.hosts)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "host": host}) + "\n")


class Relayed:
    """The host's inbox items already put into the hub's inbox (their ids, in a file: 0600,
    replaced atomically), so each is relayed once across reconnects and hub restarts; since
    when (items from before the hub first reached the host are the host's history); and the
    watermark `last`, the host's time of the newest item its catch-up relayed: the next
    catch-up asks only for items of that time or later (the ids settle ties), so a host's
    long inbox is neither sent whole on every connect nor relayed again past `KEEP` ids."""

    KEEP = 2000

    def __init__(self, path: Path) -> None:
        self.path = path
        self.since = time.time()
        self.last = 0.0
        self.ids: list[str] = []
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = None
        if isinstance(saved, dict) and _number(saved.get("since")):
            self.since = float(saved["since"])
            self.last = float(saved["last"]) if _number(saved.get("last")) else 0.0
            self.ids = [i for i in saved.get("ids") or [] if isinstance(i, str)][-self.KEEP :]
        else:  # kept now: a hub restarted before any relay still knows since when
            with contextlib.suppress(OSError):
                self.save()

    def floor(self) -> float:
        """The time the next catch-up asks from."""
        return max(self.last, self.since - 1.0)

    def fresh(self, item: dict[str, Any]) -> bool:
        """Not relayed yet, and not from before the hub knew the host."""
        when = item.get("time")
        new = isinstance(when, (int, float)) and when >= self.since - 1.0
        return new and isinstance(item.get("id"), str) and item["id"] not in self.ids

    def add(self, item_id: str, when: float | None = None) -> None:
        """`when`: the item's time, from a catch-up (which relays in time order): the new
        watermark. Live events leave it: an older item may still wait in a catch-up's reply."""
        self.ids = [*self.ids, item_id][-self.KEEP :]
        if when is not None:
            self.last = max(self.last, when)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json_atomic(self.path, {"since": self.since, "last": self.last, "ids": self.ids})


class Link:
    """One host: the transport's child process, requests by id, reconnects with backoff."""

    def __init__(
        self, spec: HostSpec, publish: Callable[[dict[str, Any]], None], cwd: Path, *, viewer: bool = False,
        post: Callable[[InboxItem], object] | None = None,
    ) -> None:
        self.spec = spec
        self.post = post
        """Puts a host's inbox item into the hub's inbox (the daemon's; None: not relayed)."""
        self.relayed = Relayed(cwd / "hosts" / f"{spec.name}.inbox.json")
        self.cwd = cwd
        self.viewer = viewer
        """One client's view of panes (VIEW_CMDS): one session, no placing, no events, no retry."""
        self.held = Held(cwd / "hosts" / f"{spec.name}.json")
        self.publish = publish
        self.state = "connecting"
        self.since = time.time()
        self.error = ""
        self.version: Any = None
        self.release: str | None = None
        """The far side's agentstaff version (its daemon's ping)."""
        self.pid: int | None = None
        self.connects = 0
        self.agents: list[dict[str, Any]] = []  # the last status rows seen, for when it is down
        self.queued: dict[str, str] = {}
        """The host's tasks not yet given to an agent (its id → target), from its events: what
        the router (`Hosts.resolve`) counts as waiting there."""
        self.sending: list[str] = []
        """Targets of submits sent and not answered yet (their `queued` event may not be in)."""
        self.up = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._next = 0
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._closed = False
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._reaping: set[asyncio.Future[int]] = set()
        self._said: set[str] = set()

    def start(self) -> None:
        self._runner = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._end_proc()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner

    def info(self) -> dict[str, Any]:
        return {
            "host": self.spec.name,
            "transport": self.spec.transport,
            "state": self.state,
            "since": self.since,
            "error": self.error,
            "pid": self.pid,
            "version": self.version,
            "release": self.release,
            "agents": len(self.agents),
            "connects": self.connects,
            "held": len(self.held.waiting()),
        }

    def _set(self, state: str, error: str = "") -> None:
        if state != self.state:
            self.state, self.since = state, time.time()
            log.info("host %s: %s%s", self.spec.name, state, f" ({error})" if error else "")
            self.publish({"type": "host", **self.info(), "error": error or self.error})
        if error:
            self.error = error

    # -- the loop: connect, serve, drop, back off ------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._closed:
            began = time.monotonic()
            try:
                await self._session()
            except Exception as exc:  # never let one host's trouble end the loop
                log.exception("host %s: link failed", self.spec.name)
                self.error = f"{type(exc).__name__}: {exc}"
            finally:
                self._drop()
            if self._closed or self.viewer:
                self._closed = True
                break
            was_up = self.state == "connected"
            failures = 0 if was_up and time.monotonic() - began > 5 else failures + 1
            down_for = time.time() - self.since
            if was_up:
                self._set("reconnecting")
            elif self.state != "unreachable" and (down_for >= UNREACHABLE_AFTER or failures >= 3):
                self._set("unreachable")
            delay = BACKOFF[min(failures, len(BACKOFF) - 1)] if failures else 0.0
            if self.state == "reconnecting" and delay:
                delay = min(delay, max(0.1, UNREACHABLE_AFTER - down_for))  # say unreachable on time
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if self.state == "reconnecting" and time.time() - self.since >= UNREACHABLE_AFTER:
                self._set("unreachable")

    async def _session(self) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C at the hub's terminal is not the link's
                # not the hub's team file: a local transport (docker exec, env) must not find
                # ./staff.toml or $STAFF_CONFIG and hand the far side the hub's own team
                cwd=self.cwd,
                env={k: v for k, v in os.environ.items() if k != "STAFF_CONFIG"},
                limit=MAX_FRAME * 16,
            )
        except OSError as exc:
            self.error = f"cannot run {self.spec.argv[0]}: {exc.strerror or exc}"
            return
        self._proc, self.pid = proc, proc.pid
        reader = asyncio.ensure_future(self._read(proc))
        errors = asyncio.ensure_future(self._stderr(proc))
        try:
            try:
                hello = await asyncio.wait_for(self.call("ping"), HELLO_TIMEOUT)
            except (LinkDown, TimeoutError, ProtocolError) as exc:
                if isinstance(exc, ProtocolError):
                    self.error = exc.message
                elif isinstance(exc, TimeoutError):
                    self.error = f"no answer from the bridge in {HELLO_TIMEOUT:.0f} s"
                return
            self.version = hello.get("version")
            there = hello.get("release")
            self.release = there if isinstance(there, str) else None
            if self.version != PROTOCOL_VERSION:
                side = "this hub" if (self.version or 0) > PROTOCOL_VERSION else f"host {self.spec.name}"
                self.error = (
                    f"protocol version {self.version} there (agentstaff {self.release or 'unknown'}), "
                    f"{PROTOCOL_VERSION} here (agentstaff {release()}): upgrade agentstaff on {side}"
                )
                return
            if self.viewer:
                self.state = "connected"
                self.up.set()
                await reader
                return
            for name, table in self.spec.agents.items():
                try:
                    await self.call("place", agent=name, table=table)
                except ProtocolError as exc:
                    log.warning("host %s: cannot place %s: %s", self.spec.name, name, exc.message)
            for role, entry in self.spec.roles.items():  # pool roles: that host's pool grows them
                try:
                    await self.call("place", agent=role, table=entry["table"], pool=entry["pool"])
                except ProtocolError as exc:
                    log.warning("host %s: cannot place role %s: %s", self.spec.name, role, exc.message)
            self.queued.clear()  # known again from its status (`took_status`) and events
            self._subscribe()
            await self._catch_up_inbox()
            await self._hand_over()
            self.took_status(await self.call("status", tasks=True))
            self.connects += 1
            self.error = ""
            self._set("connected")
            self.up.set()
            await reader
        except LinkDown:
            pass
        finally:
            self.up.clear()
            reader.cancel()
            await asyncio.gather(errors, return_exceptions=True)

    async def _hand_over(self) -> None:
        """The tasks held while the host was down, in order, each once (its key); a submit
        arriving meanwhile is held too (the link is not up yet), so none overtakes them."""
        while waiting := self.held.waiting():
            e = waiting[0]
            try:
                task = await self.call(
                    "submit", to=e["agent"], text=e["text"], key=e["key"], notify=e["notify"] or None
                )
            except ProtocolError as exc:  # the agent is gone there, the text refused: say so
                e["cancelled"], e["error"] = True, exc.message  # the task's error, said once
                log.warning("host %s: held task %s not taken: %s", self.spec.name, e["id"], exc.message)
            else:
                e["remote"] = task["id"]
            self.held.save()
            self.held.handed.set()
            self.held.handed.clear()

    def _subscribe(self) -> None:
        name = self.spec.name

        def relay(event: dict[str, Any]) -> None:
            self._track(event)
            if event.get("type") == "inbox" and isinstance(event.get("item"), dict):
                self._relay_item(event["item"])
            out = event_out(name, event)
            if out is not None:
                self.publish(out)

        fut = self._request("subscribe", relay, {})
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _relay_item(self, item: dict[str, Any], *, caught_up: bool = False) -> None:
        """A host's inbox message (a stall, an exit, a monitor that fired there) goes to the
        hub's inbox once, its agent and task named as the hub names them. `caught_up`: from
        the catch-up, in time order (moves the watermark)."""
        if self.post is None or not self.relayed.fresh(item):
            return
        self.relayed.add(item["id"], float(item["time"]) if caught_up else None)
        host, task = self.spec.name, item.get("task")
        self.post(InboxItem(
            title=f"{host}: {str(item.get('title') or '')[:500]}",
            body=str(item.get("body") or "")[:20000],
            source=str(item.get("source") or "staff")[:40],
            to=str(item.get("to") or "chief")[:40],
            task=f"{host}/{task}" if isinstance(task, str) else None,
        ))

    async def _catch_up_inbox(self) -> None:
        """What the host's inbox got while the link was down: the items it keeps from the
        watermark on (an older agentstaff there sends them all: the same filter here)."""
        if self.post is None:
            return
        floor = self.relayed.floor()
        got = await self.call("inbox", all=True, since=floor)
        items = got.get("items") if isinstance(got, dict) else None
        good = [i for i in items if _timed(i)] if isinstance(items, list) else []
        if not isinstance(items, list) or len(good) != len(items):
            self._odd("inbox", "inbox items that are not objects with a numeric time")
        for item in sorted(good, key=lambda i: float(i["time"])):
            if float(item["time"]) >= floor:
                self._relay_item(item, caught_up=True)

    def _track(self, event: dict[str, Any]) -> None:
        """Keep the rows and the queue the router weighs (`Hosts.resolve`) as the host's events
        say: agents' states, pool clones started and stopped, tasks queued and given out."""
        kind, agent = event.get("type"), event.get("agent")
        task = event.get("task")
        if isinstance(task, dict) and isinstance(task.get("id"), str):
            if task.get("state") == "queued":
                self.queued[task["id"]] = str(task.get("to"))
            else:
                self.queued.pop(task["id"], None)
                if task.get("state") == "delivered":  # its agent is taken, whatever its row says yet
                    agent, kind, event = task.get("agent"), "state", {"new": "working"}
        if kind == "state" and isinstance(agent, str) and isinstance(event.get("new"), str):
            for row in self.agents:
                if row.get("agent_id") == agent:
                    row["status"] = event["new"]
        elif kind == "pool" and isinstance(agent, str):
            self.agents = [r for r in self.agents if r.get("agent_id") != agent]
            if event.get("action") == "spawn":
                role = event.get("role") if isinstance(event.get("role"), str) else None
                row = {"agent_id": agent, "status": "starting", "role": role, "queue": 0}
                self.agents.append(row)

    def took_status(self, got: Any) -> None:
        """The rows and the tasks queued there, asked once subscribed: the queue the router
        weighs is known again after a reconnect, not only from the tasks queued after it. The
        reply comes after every event sent before it, so it replaces what they said; a host
        that lists no tasks (an older agentstaff) leaves the queue to its events."""
        self.agents = self.status_of(got)
        waiting = got.get("waiting") if isinstance(got, dict) else None
        if isinstance(waiting, list):
            self.queued = {
                t["id"]: t["to"] for t in waiting
                if isinstance(t, dict) and isinstance(t.get("id"), str) and isinstance(t.get("to"), str)
            }

    def status_of(self, got: Any) -> list[dict[str, Any]]:
        """The rows of a host's `status` reply the hub can use (a host is not trusted to be
        well formed: one bad row must not crash `staff status`, the router or the reader):
        objects naming their agent by a string, `status` and `role` strings or absent."""
        rows = got.get("agents") if isinstance(got, dict) else None
        good = []
        for r in rows if isinstance(rows, list) else []:
            if isinstance(r, dict) and isinstance(r.get("agent_id"), str):
                good.append({
                    **r,
                    "status": r["status"] if isinstance(r.get("status"), str) else "unknown",
                    "role": r["role"] if isinstance(r.get("role"), str) else None,
                })
        if not isinstance(rows, list) or len(good) != len(rows):
            self._odd("status", "status rows that are not objects with a string agent_id")
        return good

    def _odd(self, what: str, said: str) -> None:
        """Malformed data from the host: dropped, and said once per link and kind."""
        if what not in self._said:
            self._said.add(what)
            log.warning("host %s: dropped %s", self.spec.name, said)

    def _drop(self) -> None:
        """The link is gone: every request in flight learns it (callers ask again)."""
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(LinkDown(self.spec.name))
        self._replies.clear()
        self._streams.clear()
        self._end_proc()
        self.up.clear()

    def _end_proc(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            self._reaping.add(asyncio.ensure_future(proc.wait()))  # reaped, never a zombie
            for t in [t for t in self._reaping if t.done()]:
                self._reaping.discard(t)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError, ConnectionError):
                break
            if not line:
                break
            try:
                frame = json.loads(line)
            except ValueError:
                continue  # a login banner or a shell's noise: not ours
            if not isinstance(frame, dict):
                continue
            rid: Any = frame.get("id")
            if "event" in frame:
                cb = self._streams.get(rid)
                if cb is not None and isinstance(frame["event"], dict):
                    try:
                        cb(frame["event"])
                    except Exception:  # one odd event is dropped; the link stays up
                        log.exception("host %s: event not understood", self.spec.name)
                continue
            fut = self._replies.pop(rid, None) if isinstance(rid, int) else None
            self._streams.pop(rid, None)
            if fut is None:
                err = frame.get("error") or {}
                if rid is None and isinstance(err, dict) and err.get("message"):
                    self.error = str(err["message"])  # the bridge could not reach its daemon
                continue
            if fut.done():
                continue
            if frame.get("ok"):
                fut.set_result(frame.get("result"))
            else:
                err = frame.get("error") or {}
                fut.set_exception(
                    ProtocolError(str(err.get("code", ERR_INTERNAL)), str(err.get("message", "error")))
                )
        self._drop()

    async def _stderr(self, proc: asyncio.subprocess.Process) -> None:
        """The transport's complaints (ssh: "Connection refused", "Permission denied"): the last
        one is the host's error line in `staff status`."""
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").strip()
            if line:
                self.error = line.removeprefix("staff: ")[:300]
                log.info("host %s: %s", self.spec.name, line)

    def _request(
        self, cmd: str, on_event: Callable[[dict[str, Any]], None] | None, fields: dict[str, Any]
    ) -> asyncio.Future[Any]:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            raise LinkDown(self.spec.name)
        self._next += 1
        rid = self._next
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        if on_event is not None:
            self._streams[rid] = on_event
        sent = {k: v for k, v in fields.items() if v is not None}
        proc.stdin.write(encode({"id": rid, "cmd": cmd, **sent}))
        return fut

    async def call(
        self, cmd: str, on_event: Callable[[dict[str, Any]], None] | None = None, **fields: Any
    ) -> Any:
        """One request over the link (its event frames to `on_event`); LinkDown if it drops
        first, ProtocolError as the host said."""
        return await self._request(cmd, on_event, fields)

    async def connected(self, deadline: float | None) -> None:
        """Wait for the link to be up, until `deadline` (loop time; None: for ever)."""
        if self.up.is_set():
            return
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait_for(self.up.wait(), timeout)
        except TimeoutError:
            raise ProtocolError(ERR_HOST_DOWN, self.down_line()) from None

    def down_line(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.since))
        why = f": {self.error}" if self.error else ""
        return f"host {self.spec.name} is {self.state} (since {since}){why}"


class Hosts:
    """Every link of the hub, and the forwarding of requests for ``NAME/agent`` and ``NAME/T-…``."""

    def __init__(
        self, specs: dict[str, HostSpec], publish: Callable[[dict[str, Any]], None], home: Path,
        post: Callable[[InboxItem], object] | None = None,
    ) -> None:
        self.links = {name: Link(spec, publish, home, post=post) for name, spec in specs.items()}
        self.publish = publish
        self._keyed = Keyed(home / "hosts" / "keyed.jsonl")
        self._viewers: set[Link] = set()
        """Every viewer link open (a console's, a web page's): ended with the hub, so none of
        their transports outlives it (an ssh still connecting would start a bridge later)."""

    def start(self) -> None:
        for link in self.links.values():
            link.start()

    async def close(self) -> None:
        every = [*self.links.values(), *self._viewers]
        await asyncio.gather(*(link.close() for link in every))

    def _link(self, host: str, what: str) -> Link:
        link = self.links.get(host)
        if link is None:
            known = ", ".join(self.links) or "none"
            raise ProtocolError(ERR_UNKNOWN_AGENT, f"unknown host {host!r} in {what!r} (hosts: {known})")
        return link

    def remote(self, req: dict[str, Any]) -> tuple[Link, str, str] | None:
        """(link, field, name there) when `req` is for a host's agent or task, else None."""
        cmd = req["cmd"]
        field = "to" if cmd == "submit" else "agent" if cmd in AGENT_CMDS | VIEW_CMDS else ""
        field = field or ("task" if cmd in TASK_CMDS else "monitor" if cmd in MONITOR_CMDS else "")
        if not field or not isinstance(req.get(field), str):
            return None
        parts = split(req[field])
        if parts is None:
            return None
        return self._link(parts[0], req[field]), field, parts[1]

    async def forward(self, req: dict[str, Any], link: Link, field: str, there: str) -> Any:
        cmd = req["cmd"]
        fields = {k: v for k, v in req.items() if k not in ("id", "cmd", "progress")}
        fields[field] = there
        host = link.spec.name
        if field == "task" and there.startswith("Q-"):
            return await self._held(req, link, there)
        if cmd == "wait":
            return task_out(host, await self._wait(link, there, req.get("timeout")))
        if cmd == "submit":
            return await self._submit(link, fields)
        if cmd == "watch" and isinstance(fields.get("task"), str):  # `--task`: the host's own id
            fields["task"] = str(fields["task"]).removeprefix(f"{host}/")
        if cmd == "watch" and fields.get("notify"):
            raise ProtocolError(
                ERR_BAD_REQUEST,
                f"--notify would run on host {host}, where the monitor runs: watch {host}/{there} without "
                "it (what it finds comes to this inbox), or set the monitor up on that host",
            )
        if not link.up.is_set():
            raise ProtocolError(ERR_HOST_DOWN, link.down_line() + "; nothing was sent")
        try:
            result = await link.call(cmd, **fields)
        except LinkDown:
            raise ProtocolError(ERR_HOST_DOWN, f"the link to host {host} dropped during {cmd}") from None
        if cmd in TASK_CMDS and isinstance(result, dict):
            return task_out(host, result)
        if cmd in MONITOR_CMDS | {"watch"} and isinstance(result, dict):
            return monitor_out(host, result)
        if isinstance(result, dict) and isinstance(result.get("agent"), str):
            result = {**result, "agent": f"{host}/{result['agent']}"}
        return result

    async def _submit(self, link: Link, fields: dict[str, Any]) -> Any:
        """Sent once: a drop mid-request is retried with the same idempotency key; a host that
        is down gets the task later, from the hub's held tasks (`Held`)."""
        host = link.spec.name
        fields.setdefault("key", "hub-" + uuid.uuid4().hex)
        to = str(fields["to"])
        if not link.up.is_set():
            if not fields["text"].strip():
                raise ProtocolError(ERR_BAD_REQUEST, "the task text is empty")
            entry = link.held.add(fields["to"], fields["text"], fields["key"], bool(fields.get("notify")))
            held = Held.task_json(host, entry)
            self.publish({"type": "task", "task": held, "host": host})
            return held
        deadline = asyncio.get_running_loop().time() + RESEND_WITHIN
        link.sending.append(to)  # before the first await: the next routing decision sees it
        try:
            while True:
                await link.connected(deadline)
                try:
                    task = await link.call("submit", **fields)
                except LinkDown:
                    continue
                return task_out(host, task)
        finally:
            link.sending.remove(to)

    async def _held(self, req: dict[str, Any], link: Link, qid: str) -> Any:
        """wait/task/cancel on a task the hub held: answered here until it is handed over,
        then by the host, under the same id."""
        host, cmd = link.spec.name, req["cmd"]
        e = link.held.entries.get(qid)
        if e is None:
            raise ProtocolError(ERR_UNKNOWN_TASK, f"unknown task {host}/{qid!r}")
        loop = asyncio.get_running_loop()
        timeout = req.get("timeout") if cmd == "wait" else 0
        deadline = None if timeout is None else loop.time() + float(timeout)
        if cmd == "cancel" and not e["remote"] and not e["cancelled"]:
            e["cancelled"] = True
            link.held.save()
            self.publish({"type": "task", "task": Held.task_json(host, e), "host": host})
        while not e["remote"] and not e["cancelled"]:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.held.handed.wait(), left)
        if not e["remote"]:
            return Held.task_json(host, e)
        left = None if deadline is None else max(0.0, deadline - loop.time())
        there = {**req, "task": f"{host}/{e['remote']}"}
        if cmd == "wait":
            there["timeout"] = left
        result = await self.forward(there, link, "task", e["remote"])
        return {**result, "id": f"{host}/{qid}", "host_task": result["id"]}

    async def _wait(self, link: Link, task: str, timeout: Any) -> Any:
        """Ask the host; when the link drops, ask again (by the host's task id) once it is back,
        within the client's timeout: the answer lives in the host's journal meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + float(timeout)
        while True:
            try:
                await link.connected(deadline)
            except ProtocolError:
                if deadline is None:
                    raise
                raise ProtocolError(ERR_TIMEOUT, link.down_line()) from None
            left = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                return await link.call("wait", task=task, timeout=left)
            except LinkDown:
                continue

    async def status_rows(self) -> list[dict[str, Any]]:
        """Every host's agents as status rows named ``NAME/agent``; a link that is down shows
        its last known rows as `unreachable`."""

        async def one(link: Link) -> list[dict[str, Any]]:
            if link.up.is_set():
                with contextlib.suppress(LinkDown, ProtocolError, TimeoutError):
                    link.agents = link.status_of(await asyncio.wait_for(link.call("status"), 5.0))
            rows = []
            for row in link.agents:
                r = {**row, "agent_id": f"{link.spec.name}/{row['agent_id']}", "host": link.spec.name}
                if not link.up.is_set():
                    r["status"] = "unreachable"
                rows.append(r)
            return rows

        every = await asyncio.gather(*(one(link) for link in self.links.values()))
        return [r for rows in every for r in rows]

    def info(self) -> list[dict[str, Any]]:
        return [link.info() for link in self.links.values()]

    async def monitors(self) -> list[dict[str, Any]]:
        """The monitors running on the hosts that answer now (a host that is down keeps
        its monitors; they show again when it is back)."""

        async def one(link: Link) -> list[dict[str, Any]]:
            if not link.up.is_set():
                return []
            try:
                got = await asyncio.wait_for(link.call("monitors"), 5.0)
            except (LinkDown, ProtocolError, TimeoutError):
                return []
            return [monitor_out(link.spec.name, m) for m in got.get("monitors") or [] if isinstance(m, dict)]

        every = await asyncio.gather(*(one(link) for link in self.links.values()))
        return [m for ms in every for m in ms]

    def candidates(self, to: str, roles: dict[str, RoleSpec]) -> list[tuple[routing.Candidate, Link]]:
        """Each host that has agents for `to` (``any``, ``role:X``), or a pool there that may
        start one, as the router sees it: the last known rows (kept by the host's events),
        the tasks queued there and the submits on their way."""
        role = roles.get(to[5:]) if to.startswith("role:") else None
        out = []
        for order, link in enumerate(self.links.values(), 1):
            rows = [
                r for r in link.agents
                if r.get("status") not in DOWN
                and routing.fits(to, str(r.get("agent_id")), r.get("role"), bool(r.get("by_name_only")))
            ]
            limits = role.hosts.get(link.spec.name) if role is not None else None
            room = 0 if limits is None else max(0, limits[1] - len(rows))
            if not rows and not room:
                continue
            free = sum(1 for r in rows if r.get("status") in routing.FREE_STATES)
            fit = [(str(r.get("agent_id")), r.get("role"), bool(r.get("by_name_only"))) for r in rows]
            if to.startswith("role:"):
                fit.append(("", to[5:], False))  # a clone the pool there may start takes it too
            waiting = routing.waiting_for([*link.queued.values(), *link.sending], fit)
            c = routing.Candidate(link.spec.name, link.up.is_set(), len(rows), free, waiting, room, order)
            out.append((c, link))
        return out

    def resolve(self, sup: Supervisor, to: str, key: str | None = None) -> tuple[Link, str, str] | None:
        """Where a submit to ``any`` or ``role:X`` goes (team/routing.py has the rule): a host's
        link, or None for this daemon's own team. The one resolver: every way a task comes in
        (ask, submit, fan-out, workflows, the hook, MCP) submits through `Server._route`; the
        HTTP API may call this too. A retried submit (its `key` seen before) goes where the
        first went, so the key never makes two tasks."""
        if to != "any" and not to.startswith("role:"):
            return None
        if key is not None:
            if key in self._keyed.hosts:
                link = self.links.get(self._keyed.hosts[key])
                return None if link is None else (link, "to", to)
            if (sup.journal is not None and sup.journal.by_key(key)) or any(
                t.key == key for t in sup.tasks.values()
            ):
                return None
        here = routing.local(sup, to)
        there = self.candidates(to, sup.config.roles)
        best = routing.choose([here, *(c for c, _ in there)])
        if best is None and to.startswith("role:"):
            try:
                sup.resolve_target(to)  # a role known here (its agents down): queued here, as before
            except ProtocolError as exc:
                far = sorted({f"{n}/{r['role']}" for n, link in self.links.items() for r in link.agents
                              if r.get("role")})
                said = f"{exc.message}; on hosts: {', '.join(far) or 'none'}"
                raise ProtocolError(exc.code, said) from None
        if best is None or best is here:
            return None
        link = next(link for c, link in there if c is best)
        if key is not None:
            self._keyed.add(key, link.spec.name)
        return link, "to", to

    async def view(
        self, req: dict[str, Any], link: Link, there: str, viewers: dict[str, Link],
        emit: Callable[[dict[str, Any]], None],
    ) -> Any:
        """stream/resize/hold/input for a host's pane, on this client's own viewer link to that
        host (opened on first use, closed with the client: `close_viewers`)."""
        host = link.spec.name
        if not link.up.is_set():
            raise ProtocolError(ERR_HOST_DOWN, link.down_line() + "; nothing was sent")
        viewer = viewers.get(host)
        if viewer is None or viewer._closed:
            viewer = viewers[host] = Link(link.spec, lambda e: None, link.cwd, viewer=True)
            self._viewers = {v for v in self._viewers if not v._closed}
            self._viewers.add(viewer)
            viewer.start()
        await viewer.connected(asyncio.get_running_loop().time() + HELLO_TIMEOUT)
        fields = {k: v for k, v in req.items() if k not in ("id", "cmd")}
        fields["agent"] = there

        def relay(event: dict[str, Any]) -> None:
            if isinstance(event.get("agent"), str):
                event = {**event, "agent": f"{host}/{event['agent']}"}
            emit(event)

        try:
            result = await viewer.call(req["cmd"], relay, **fields)
        except LinkDown:
            raise ProtocolError(ERR_HOST_DOWN, f"the link to host {host} dropped ({req['cmd']})") from None
        if isinstance(result, dict) and isinstance(result.get("agent"), str):
            result = {**result, "agent": f"{host}/{result['agent']}"}
        return result

    @staticmethod
    async def close_viewers(viewers: dict[str, Link]) -> None:
        await asyncio.gather(*(v.close() for v in viewers.values()))

    async def measure(self) -> list[dict[str, Any]]:
        """`info` with each connected link's round trip now (a ping through the transport)."""

        async def one(link: Link) -> dict[str, Any]:
            rtt = None
            if link.up.is_set():
                began = time.monotonic()
                with contextlib.suppress(LinkDown, ProtocolError, TimeoutError):
                    await asyncio.wait_for(link.call("ping"), 5.0)
                    rtt = round((time.monotonic() - began) * 1000, 2)
            return {**link.info(), "rtt_ms": rtt}

        return list(await asyncio.gather(*(one(link) for link in self.links.values())))


def forgotten(home: Path, hosts: dict[str, HostSpec]) -> list[str]:
    """Hosts the last start had that the team file no longer names, each said once (the hub
    leaves their agents running there: it is that host's team now), with any tasks still held
    for them. Remembers this start's hosts in ``hosts/known.json``."""
    known_file = home / "hosts" / "known.json"
    try:
        known = json.loads(known_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = []
    lines = []
    for name in known if isinstance(known, list) else []:
        if not isinstance(name, str) or name in hosts:
            continue
        held = Held(home / "hosts" / f"{name}.json").waiting()
        left = f"; {len(held)} task(s) held for it were not handed over (hosts/{name}.json)" if held else ""
        lines.append(
            f"host {name} is no longer in the team file: its agents keep running there "
            f"(`staff down` on it stops them){left}"
        )
    if sorted(hosts) != known:
        write_json_atomic(known_file, sorted(hosts))
    return lines
