"""The team: agents by name, the task queue, routing, restarts and status files.

Routing is event-driven: a dispatch runs when a task arrives and when an agent becomes
idle, never on a timer. A task addressed to a name waits for that agent; ``role:NAME``
and ``any`` go to the first idle agent that fits, in submission order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, assert_never

from supervisor.agent.agent import Agent, AgentEvent, AgentSpec, ProcessFactory
from supervisor.agent.delivery import NotTaken
from supervisor.agent.task import Task, typed_text
from supervisor.detect import sessionfiles
from supervisor.detect.rules import Profile, load_profile
from supervisor.events import (
    BackgroundChanged,
    DetailChanged,
    DraftChanged,
    LimitChanged,
    SessionChanged,
    Spawned,
    StallChanged,
    StateChanged,
    TaskMoved,
)
from supervisor.protocol import (
    ERR_AGENT_DOWN,
    ERR_BAD_REQUEST,
    ERR_JOURNAL,
    ERR_UNKNOWN_AGENT,
    ERR_UNKNOWN_TASK,
    ProtocolError,
)
from supervisor.pty.keeperclient import KeeperClient, KeeperError, KeeperPtyProcess
from supervisor.pty.process import PtyProcess
from supervisor.states import DOWN, IDLE
from supervisor.team import routing
from supervisor.team.config import Config
from supervisor.team.inbox import Inbox, InboxItem
from supervisor.team.journal import Journal, JournalError
from supervisor.team.statusfiles import StatusWriter
from supervisor.team.worktrees import attach as attach_worktree
from supervisor.util.atomic import write_json_atomic

log = logging.getLogger("staff")

LIMITS = "limits.json"
"""In the state dir: the agents held by a usage limit, and until when (`_save_limits`)."""
MAX_LIMIT_HOLD = 7 * 86400
"""A kept hold further away than this is not a reset time a program gave (`_restore_limits`)."""

EventSink = Callable[[dict[str, Any]], None]
STOPPED = "interrupted by `staff down`"
"""The start of the error of a task a clean stop took from its agent (retried at the next start)."""
MAX_FINISHED = 10000
RESTART_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)


class Extension:
    """A feature that lives on the team and is told of its life: the pool and the chief.

    The supervisor knows only this interface; the daemon decides which extensions a team
    has (daemon/main.py), so the team's core never imports the features built on it.
    """

    def restore(self, saved: dict[str, Any], kids: dict[str, Any]) -> None:
        """At start, before agents are adopted: `saved` sessions, `kids` the keeper still runs."""

    def start(self) -> None:
        """After the agents are up and the journal's tasks are back."""

    def close(self) -> None:
        """The team is stopping."""

    def after_dispatch(self) -> None:
        """Queued tasks were handed out (runs after every dispatch)."""

    def on_post(self, item: InboxItem) -> None:
        """Something was posted to the inbox."""

    def roles(self) -> set[str]:
        """Roles this extension can serve although no agent has them yet."""
        return set()

    def room(self, role: str) -> int:
        """Agents of `role` this extension may still start here (the router weighs it)."""
        return 0


class Supervisor:
    def __init__(
        self,
        config: Config,
        home: Path,
        *,
        process_factory: ProcessFactory = PtyProcess,
        clock: Callable[[], float] = time.time,
        profile_dirs: tuple[Path, ...] = (),
        keeper: KeeperClient | None = None,
    ) -> None:
        self.config = config
        self.keeper = keeper
        """The process that holds the agents' ptys (None: this daemon is their parent)."""
        self.reconnect_keeper: Callable[[], KeeperClient] | None = None
        self.home = home
        self.clock = clock
        self.process_factory = process_factory
        self.profile_dirs = profile_dirs
        self.agents: dict[str, Agent] = {}
        self.tasks: dict[str, Task] = {}
        self.queue: list[Task] = []
        self.sinks: list[EventSink] = []
        self._task_waiters: dict[str, list[asyncio.Future[Task]]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._draft_noticed: set[str] = set()  # agents whose draft holding tasks was reported
        self._status_dirty: set[str] = set()  # agents whose status file is due this loop turn
        self._restarts: dict[str, int] = {}
        self._restart_timers: dict[str, asyncio.TimerHandle] = {}
        self._stopping = False
        self._killing: set[str] = set()  # agents being stopped on purpose (kill, restart)
        self._restoring_limits = False
        self.status_dir = home / "agents"
        self.status_files = StatusWriter(
            lambda path, data: write_json_atomic(path, data, durable=False)  # rewritten on each change
        )
        self.inbox = Inbox(home / "inbox.jsonl")
        self.journal: Journal | None = None
        self.warnings: list[str] = []
        """What the start found wrong but could live with (a lost journal WAL, a damaged
        inbox line): logged, in the inbox, and printed by `staff up` (ping's `warnings`)."""
        if self.inbox.damaged:
            self.warnings.append(self.inbox.damaged)
        self.max_attempts = int(config.settings.get("max_attempts", 2))
        self.extensions: list[Extension] = []
        """Features built on the team (the pool, the chief), attached by whoever runs it."""

    # -- setup ----------------------------------------------------------------------------
    def _profile(self, name: str) -> Profile:
        return load_profile(name, self.profile_dirs)

    def add_agent(self, spec: AgentSpec) -> Agent:
        if spec.worktree:
            attach_worktree(spec, self.home)  # its own git worktree (worktrees.py)
        profile = self._profile(spec.profile)
        env = dict(os.environ)
        for name in profile.settings.unset_env:  # before the team file's env: that one wins
            env.pop(name, None)
        env.update({"TERM": "xterm-256color", "COLORTERM": "truecolor"})
        env.setdefault("LANG", "C.UTF-8")
        env.update(spec.env)
        env["STAFF_AGENT"] = spec.name
        env["STAFF_SOCKET"] = str(self.home / "staff.sock")
        env["PWD"] = spec.cwd or os.getcwd()
        if spec.profile == "fake" and "CLAUDE_CONFIG_DIR" not in spec.env:
            # the fake writes Claude-shaped transcripts and session files: keep them out of the
            # person's real ~/.claude, where a real Claude Code would list them for --resume
            env["CLAUDE_CONFIG_DIR"] = str(self.home / "fake-claude")
        if spec.role_text and not profile.settings.role_flag:
            said = (f"{spec.role or spec.name}: the {profile.name} profile has no way to give a program "
                    "its role text, so role_text is not given to it (README: Other agents on the team)")
            if said not in self.warnings:  # once, not once per pool clone
                log.warning("%s", said)
                self.warnings.append(said)
        agent = Agent(
            spec,
            profile,
            env=env,
            listener=self._on_agent_event,
            clock=self.clock,
            process_factory=self._keeper_factory(spec.name) if self.keeper else self.process_factory,
        )
        agent.stall_after = float(self.config.settings.get("stall_after", 600))
        reader = sessionfiles.READERS.get(profile.settings.transcript)
        if reader is not None and reader.one_per_directory:
            kind = profile.settings.transcript
            for other in self.agents.values():
                if other.profile.settings.transcript == kind and other.cwd() == agent.cwd():
                    said = (f"{other.name} and {spec.name} run {profile.name} in one directory "
                            f"({agent.cwd()}): it keeps one record there for both, so one may be given "
                            "the other's answer; give each `worktree = true` or a cwd of its own")
                    log.warning("%s", said)
                    self.warnings.append(said)
        agent.session.others = lambda: frozenset(
            a.session_id for a in self.agents.values() if a is not agent and a.session_id
        )
        self.agents[spec.name] = agent
        return agent

    def _keeper_factory(self, name: str) -> ProcessFactory:
        """Spawn through whichever keeper is current (a lost keeper is replaced)."""

        def factory(argv: list[str], **kw: Any) -> PtyProcess:
            assert self.keeper is not None
            return KeeperPtyProcess(argv, client=self.keeper, name=name, **kw)

        return factory

    async def start(self) -> None:
        """Load every profile first (a bad rule file fails the start), then adopt the agents
        the keeper still runs and spawn the others, then bring back the journal's tasks."""
        self.status_dir.mkdir(parents=True, exist_ok=True)
        journal = self.open_journal()
        saved = journal.agents()
        for spec in self.config.agents:
            agent = self.add_agent(spec)
            if spec.name in saved:  # the same conversation as before the restart
                agent.session_id, _pid, agent.starts = saved[spec.name]
        kids = {}
        if self.keeper is not None:
            self.keeper.on_lost = self._keeper_lost
            live, _exits = self.keeper.list_children()
            kids = {k.id: k for k in live}
        for ext in self.extensions:
            ext.restore(saved, kids)  # e.g. a chief the keeper still runs is adopted too
        for agent in self.agents.values():
            kid = kids.pop(agent.name, None)
            if kid is not None and self.keeper is not None:
                log.info("%s: adopting pid %d from the keeper", agent.name, kid.pid)
                agent.adopt(KeeperPtyProcess.adopt(
                    kid.pid, kid.fd, client=self.keeper, name=agent.name, argv=kid.argv,
                    cwd=kid.cwd, env=agent.env, rows=agent.spec.rows, cols=agent.spec.cols,
                ))
            else:
                agent.start()
            self.write_status(agent)
        for kid in kids.values():  # an agent no longer in the team file
            log.info("ending pid %d (%s): not in the team any more", kid.pid, kid.id)
            os.close(kid.fd)
            with contextlib.suppress(Exception):
                assert self.keeper is not None
                self.keeper.signal(kid.pid, signal.SIGHUP)
        self._restore_limits()
        self._recover()
        for ext in self.extensions:
            ext.start()

    def open_journal(self) -> Journal:
        """Open the journal (once); raises JournalError for one that cannot be used. What it
        found lost (its WAL gone after a crash) becomes a warning and an inbox item."""
        if self.journal is None:
            self.journal = Journal(self.home / "journal.db")
            if self.journal.lost:
                log.error("%s", self.journal.lost)
                self.warnings.append(self.journal.lost)
                self.post(InboxItem("tasks lost from the journal", self.journal.lost, to="person"))
        return self.journal

    def _recover(self) -> None:
        """Queued tasks queue again; a task that was in flight is answered from the agent's
        transcript if the agent finished it, else retried (once) or failed."""
        assert self.journal is not None
        for task in self.journal.load():
            self.tasks[task.id] = task
            if task.state == "queued":
                self.queue.append(task)
            elif not task.final:
                agent = self.agents.get(task.agent or "")
                if agent is not None and agent.adopted and agent.alive:
                    # the same process still has it: follow it to its answer, once
                    self._running[agent.name] = asyncio.get_running_loop().create_task(
                        self._resume(agent, task), name=f"resume-{task.id}"
                    )
                    continue
                task.move("interrupted", now=self.clock())
                answer = agent.recover_answer(task) if agent is not None else None
                if answer is not None:
                    task.answer, task.answer_source = answer, "transcript (after a restart)"
                    task.move("done", now=self.clock())
                    self._journal(task)
                elif task.error and task.error.startswith(STOPPED):
                    # a clean stop took it from its agent: no fault of the task, no attempt spent
                    task.error = f"{task.error.partition(';')[0]}; queued again"
                    task.move("queued", now=self.clock())
                    self.queue.append(task)
                    self._journal(task)
                else:
                    self._retry_or_fail(task, "interrupted by a daemon restart", front=True)
        if self.queue:
            log.info("recovered %d queued task(s) from the journal", len(self.queue))

    def _retry_or_fail(self, task: Task, why: str, *, front: bool = False) -> None:
        """An interrupted task: queued again while it has attempts left, else failed."""
        if task.attempts + 1 < self.max_attempts:
            task.attempts += 1
            task.error = f"{why}; retried"
            task.move("queued", now=self.clock())
            self.queue.insert(0, task) if front else self.queue.append(task)
        else:
            task.error = f"{why} (no retries left)"
            task.move("failed", now=self.clock())
            self._task_finished(task)
        self._journal(task)
        self.publish({"type": "task", "task": task.to_json()})

    async def _resume(self, agent: Agent, task: Task) -> None:
        try:
            outcome = await agent.resume_task(task)
            if outcome == "requeue" and not task.final:
                task.move("interrupted", now=self.clock())
                self._retry_or_fail(task, "the agent never received it", front=True)
        except Exception:
            log.exception("resuming %s on %s failed", task.id, agent.name)
        finally:
            self._running.pop(agent.name, None)
            self.write_status(agent)
            self.dispatch()

    def _keeper_lost(self) -> None:
        """The keeper died and took the agents with it: their tasks are interrupted; a new
        keeper is started so the restart policy can bring the team back."""
        if self._stopping:
            return  # `staff down` ends the keeper itself: nothing was lost
        log.error("the keeper is gone: every agent ended with it")
        for agent in self.agents.values():
            agent.keeper_lost = True
        self.post(InboxItem("the pty keeper died; agents are being restarted", source="staff"))
        if self.reconnect_keeper is not None:
            try:
                self.keeper = self.reconnect_keeper()
                self.keeper.on_lost = self._keeper_lost
            except Exception as exc:
                log.error("cannot start a new keeper: %s", exc)

    def _journal(self, task: Task) -> None:
        if self.journal is None:
            return
        try:
            self.journal.update(task)
        except JournalError as exc:
            log.error("%s", exc)

    def running_tasks(self) -> list[Task]:
        """The tasks agents are working on now (what a `staff down` would interrupt)."""
        return [a.current_task for a in self.agents.values() if a.current_task and not a.current_task.final]

    def _keep_running(self) -> list[Task]:
        """Before the agents are stopped: each task one is working on is taken back from it
        and journaled `interrupted`, so the agent's end is not the task's failure; the next
        start retries it (or takes its answer from the transcript if the agent finished)."""
        kept = []
        for runner in list(self._running.values()):
            runner.cancel()  # no delivery carries on into an agent that is being stopped
        for agent in self.agents.values():
            task = agent.current_task
            if task is None or task.final:
                continue
            agent.current_task = None
            task.error = f"{STOPPED} while {task.state} on {agent.name}; it runs again at the next `staff up`"
            task.move("interrupted", now=self.clock())
            self._journal(task)
            self.publish({"type": "task", "task": task.to_json()})
            log.info("%s: %s", task.id, task.error)
            kept.append(task)
        return kept

    async def shutdown(self, grace: float = 2.0, *, keep_agents: bool = False) -> None:
        """Stop. Queued tasks stay in the journal and run at the next start, and so do the
        tasks agents were working on (`interrupted`, retried then). With `keep_agents` (a
        reload) the keeper keeps every agent running, with its task, for the next daemon."""
        self._stopping = True
        for ext in self.extensions:
            ext.close()
        for timer in self._restart_timers.values():
            timer.cancel()
        if not keep_agents:
            self._keep_running()
            for agent in self.agents.values():
                self._keep_draft(agent)
            await asyncio.gather(*(a.stop(grace) for a in self.agents.values()), return_exceptions=True)
        else:
            for agent in self.agents.values():
                agent.detach()
        for runner in list(self._running.values()):
            runner.cancel()
        if self.journal is not None:
            self.journal.close()
        self.status_files.close()

    # -- events ----------------------------------------------------------------------------
    def publish(self, event: dict[str, Any]) -> None:
        for sink in list(self.sinks):
            try:
                sink(event)
            except Exception:  # a broken client must not break the supervisor
                log.exception("event sink failed")

    def _on_agent_event(self, agent: Agent, event: AgentEvent) -> None:
        """What an agent tells the team (supervisor/events.py), one method per kind."""
        match event:
            case StateChanged():
                self._on_state(agent, event)
            case TaskMoved(task=task):
                self._on_task(agent, task)
            case StallChanged(stalled=stalled):
                self._on_stalled(agent, stalled)
            case DraftChanged(draft=draft):
                self._on_draft(agent, draft)
            case Spawned(pid=pid):
                self._on_spawned(agent, pid)
            case SessionChanged():
                self._on_session(agent, event)
            case LimitChanged():
                self._on_limit(agent, event)
            case BackgroundChanged(count=count):
                self.publish({"type": "background", "agent": agent.name, "count": count})
                self.write_status(agent)
            case DetailChanged(detail=detail):
                self.publish({"type": "detail", "agent": agent.name, "detail": detail})
                self.write_status(agent)
            case _:
                assert_never(event)

    def _on_limit(self, agent: Agent, event: LimitChanged) -> None:
        """A limit holds the agent's tasks (dispatch skips it) until its timer lifts it. The
        holds are kept in the state dir, so a restarted daemon keeps them (else it would type
        the held task again, meet the same limit, and put it back once more)."""
        until = event.until
        self.publish({"type": "limit", "agent": agent.name, "until": until, "reason": event.reason})
        self.write_status(agent)
        self._save_limits()
        if self._restoring_limits:
            return
        if until is None:
            log.info("%s: the limit lifted; its queue moves on", agent.name)
            self.dispatch()
            return
        at = time.strftime("%H:%M:%S", time.localtime(until))
        log.warning("%s: limited until %s (%s)", agent.name, at, event.reason)
        self.post(InboxItem(f"{agent.name} is limited until {at}: its tasks wait",
                            f"{event.reason}\nNothing is typed into it before then; its queue "
                            "moves on by itself when the limit resets.", source="staff"))

    def _save_limits(self) -> None:
        holds = {a.name: {"until": a.limited_until, "reason": a.limit_reason or ""}
                 for a in self.agents.values() if a.limited_until is not None}
        try:
            if holds or (self.home / LIMITS).exists():
                write_json_atomic(self.home / LIMITS, holds)
        except OSError as exc:
            log.warning("could not keep the agents' limits in %s: %s", self.home / LIMITS, exc)

    def _restore_limits(self) -> None:
        """Put back the holds a previous daemon kept (`_save_limits`) that have not reset yet.
        The file is checked as untrusted: anything but {name: {until: number, reason: str}}
        is skipped."""
        try:
            saved = json.loads((self.home / LIMITS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        now = time.time()
        self._restoring_limits = True
        try:
            for name, hold in saved.items() if isinstance(saved, dict) else ():
                try:
                    agent = self.agents.get(name)
                    until = hold.get("until") if isinstance(hold, dict) else None
                    reason = hold.get("reason") if isinstance(hold, dict) else None
                    if agent is None or not isinstance(until, (int, float)) or until <= now:
                        continue
                    if not math.isfinite(until) or until >= now + MAX_LIMIT_HOLD:
                        # NaN/Infinity/1e300 (JSON allows them) would break localtime below
                        log.warning("%s: ignoring a kept limit hold until %r (not a time within "
                                    "%d days)", name, until, MAX_LIMIT_HOLD // 86400)
                        continue
                    log.info("%s: still limited until %s (kept across the restart)", name,
                             time.strftime("%H:%M:%S", time.localtime(until)))
                    agent.hold(float(until), reason if isinstance(reason, str) else "")
                except Exception as exc:  # one bad entry never keeps the daemon from starting
                    log.warning("%s: ignoring its kept limit hold: %s", name, exc)
        finally:
            self._restoring_limits = False
        self._save_limits()  # without the ones that reset meanwhile

    def _on_session(self, agent: Agent, event: SessionChanged) -> None:
        """The agent's program moved to another conversation (a /clear typed in its pane):
        the journal keeps the live id, so a restart resumes that one, not the cleared one."""
        log.info("%s: now in session %s (was %s)", agent.name, event.new, event.old)
        self.publish({"type": "session", "agent": agent.name, "session_id": event.new, "old": event.old})
        self.write_status(agent)
        self._save_agent(agent)

    def _on_state(self, agent: Agent, event: StateChanged) -> None:
        old, new = event.old.value, event.new.value
        log.info("%s: %s → %s (%s)", agent.name, old, new, event.reason)
        self.publish({"type": "state", "agent": agent.name, "old": old, "new": new, "reason": event.reason})
        self.write_status(agent)
        if event.new == IDLE:
            self.dispatch()
        elif event.new in DOWN:
            self._after_exit(agent)

    def _on_task(self, agent: Agent, task: Task) -> None:
        if task.state == "interrupted" and agent.limited_until is not None:
            # a limit put it back: first in line again, for when the limit lifts
            task.agent = None
            task.move("queued", now=self.clock())
            self.queue.insert(0, task)
            self._journal(task)
            self.publish({"type": "task", "task": task.to_json()})
            self.write_status(agent)
            return
        if task.state == "interrupted":  # its agent died with the keeper
            self._retry_or_fail(task, f"agent {agent.name} ended with the keeper")
            self.write_status(agent)
            return
        self._journal(task)
        self.publish({"type": "task", "task": task.to_json()})
        if task.final:
            self._task_finished(task)
        self.write_status(agent)

    def _on_stalled(self, agent: Agent, stalled: bool) -> None:
        self.write_status(agent)
        self.publish({"type": "stalled", "agent": agent.name, "stalled": stalled})
        if stalled:
            self._on_stall(agent)

    def _on_draft(self, agent: Agent, draft: str | None) -> None:
        self.publish({"type": "draft", "agent": agent.name, "draft": draft})
        self.write_status(agent)
        if draft is None:
            self._draft_noticed.discard(agent.name)
            self.dispatch()

    def _on_spawned(self, agent: Agent, pid: int | None) -> None:
        self.publish({"type": "spawned", "agent": agent.name, "pid": pid})
        self.write_status(agent)
        self._save_agent(agent)

    def _save_agent(self, agent: Agent) -> None:
        if self.journal is not None:
            try:
                self.journal.save_agent(agent.name, agent.session_id, agent.pid, agent.starts)
            except JournalError as exc:
                log.error("%s", exc)

    def stopping_agent(self, name: str) -> bool:
        """The agent is being stopped on purpose (kill, restart, remove): it takes no task."""
        return name in self._killing

    def write_status(self, agent: Agent) -> None:
        if self.agents.get(agent.name) is not agent:
            return  # removed (or renamed away): its file is gone and stays gone
        # At once when the agent is free again or gone, so a client told "done" finds the
        # file up to date; else once at the end of this loop turn (a task's state change
        # asks several times in one turn) and off the loop (statusfiles.py).
        if agent.current_task is None or not agent.alive:
            self._status_dirty.discard(agent.name)
            self._status_now(agent, urgent=True)
            return
        if not self._status_dirty:
            asyncio.get_running_loop().call_soon(self._flush_status)
        self._status_dirty.add(agent.name)

    def _flush_status(self) -> None:
        dirty, self._status_dirty = self._status_dirty, set()
        for name in dirty:
            agent = self.agents.get(name)
            if agent is not None:
                self._status_now(agent, urgent=False)

    def _status_now(self, agent: Agent, *, urgent: bool) -> None:
        data = agent.status()
        data["queue"] = self.queue_length(agent.name)
        self.status_files.write(self.status_dir / f"{agent.name}.json", data, urgent=urgent)

    # -- tasks ------------------------------------------------------------------------------
    def resolve_target(self, to: str) -> None:
        """Check that a task's target can ever be served; raise a clear error if not."""
        if to == "any":
            return
        if to.startswith("role:"):
            role = to[5:]
            known = {r for ext in self.extensions for r in ext.roles()}
            if role not in known and not any(a.spec.role == role for a in self.agents.values()):
                roles = sorted({a.spec.role for a in self.agents.values() if a.spec.role})
                raise ProtocolError(
                    ERR_UNKNOWN_AGENT, f"no agent has role {role!r} (roles: {', '.join(roles) or 'none'})"
                )
            return
        self.agent(to)

    def agent(self, name: str) -> Agent:
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(self.agents) or "none"
            raise ProtocolError(ERR_UNKNOWN_AGENT, f"unknown agent {name!r} (agents: {known})") from None

    def submit(self, to: str, text: str, *, key: str | None = None, notify: bool = False) -> Task:
        """Queue a task; it is in the journal before this returns. A repeated `key` returns
        the task that key made, so a client's retried submit never runs twice."""
        if key is not None:
            existing = self.journal.by_key(key) if self.journal is not None else None
            existing = existing or next((t.id for t in self.tasks.values() if t.key == key), None)
            if existing is not None:
                return self.task(existing)
        self.resolve_target(to)
        if not text.strip():
            raise ProtocolError(ERR_BAD_REQUEST, "the task text is empty")
        if not typed_text(text).strip():
            raise ProtocolError(
                ERR_BAD_REQUEST,
                "the task text has nothing to type (only control characters or escape sequences)",
            )
        if to in self.agents:
            agent = self.agents[to]
            if agent.state in DOWN and agent.name not in self._restart_timers:
                raise ProtocolError(
                    ERR_AGENT_DOWN,
                    f"agent {to!r} is not running ({agent.error or agent.state}); "
                    f"start it with `staff spawn {to}`",
                )
        task = Task(to=to, text=text, created=self.clock(), key=key, notify=notify)
        if self.journal is not None:
            try:
                self.journal.add(task)
            except JournalError as exc:
                raise ProtocolError(ERR_JOURNAL, f"the task was not accepted: {exc}") from None
        self.tasks[task.id] = task
        self.queue.append(task)
        self.publish({"type": "task", "task": task.to_json()})
        self._trim_finished()
        self.dispatch()
        if task.state == "queued" and to in self.agents:
            self.write_status(self.agents[to])  # its queue length changed
        return task

    def task(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None and self.journal is not None:
            task = self.journal.get(task_id)  # an old answer, trimmed from memory
        if task is None:
            raise ProtocolError(ERR_UNKNOWN_TASK, f"unknown task {task_id!r}")
        return task

    def queue_length(self, name: str) -> int:
        agent = self.agents.get(name)
        return sum(1 for t in self.queue if agent is not None and self.fits(t, agent))

    @property
    def stopping(self) -> bool:
        return self._stopping

    def delivering(self, name: str) -> bool:
        """A task is on its way into (or being answered by) this agent right now."""
        return name in self._running

    @staticmethod
    def fits(task: Task, agent: Agent) -> bool:
        return routing.fits(task.to, agent.name, agent.spec.role, agent.spec.by_name_only)

    def dispatch(self) -> None:
        """Hand queued tasks to idle agents, oldest task first."""
        if self._stopping:
            return
        drafting = []
        for agent in self.agents.values():
            if agent.state != "idle" or agent.current_task is not None or agent.name in self._running:
                continue
            if agent.name in self._killing:  # still idle while it quits: nothing goes in now
                continue
            if agent.limited_until is not None:  # a usage limit: its timer dispatches again
                continue
            if agent.draft is not None:  # a person's unsent text: never type a task onto it
                drafting.append(agent)
                continue
            task = next((t for t in self.queue if self.fits(t, agent)), None)
            if task is None:
                continue
            self.queue.remove(task)
            self._running[agent.name] = asyncio.get_running_loop().create_task(
                self._deliver(agent, task), name=f"deliver-{task.id}"
            )
        for agent in drafting:
            self._notice_draft(agent)
        for ext in self.extensions:
            ext.after_dispatch()  # e.g. inbox items waiting for the chief go in when it is free

    def _notice_draft(self, agent: Agent) -> None:
        """Tell the person, once per draft, that their unsent text holds tasks back."""
        waiting = [t for t in self.queue if self.fits(t, agent)]
        if not waiting or agent.name in self._draft_noticed or agent.spec.by_name_only:
            # (the chief's draft is the person at their own prompt: its inbox waits, unannounced)
            return
        self._draft_noticed.add(agent.name)
        draft = (agent.draft or "")[:60]
        self.post(InboxItem(
            f"{agent.name}: {len(waiting)} task(s) wait for the draft in its input box",
            f"the box holds unsent text ({draft!r}); send it or clear it (Ctrl-C in the console, "
            f"or `staff send {agent.name} C-c`) and the queue moves on",
            source="staff", task=waiting[0].id))

    async def _deliver(self, agent: Agent, task: Task) -> None:
        try:
            if agent.state != "idle":  # a person took the agent over since dispatch: wait again
                self.queue.insert(0, task)
                return
            await agent.run_task(task)
        except NotTaken as exc:
            if task.final:  # it was refused too often: failed, with the reason
                log.info("%s: %s: %s", agent.name, task.id, exc)
            else:
                log.info("%s: %s; %s goes back to the queue", agent.name, exc, task.id)
                self.queue.insert(0, task)
        except Exception as exc:  # never let one delivery take the daemon down
            log.exception("delivery of %s to %s failed", task.id, agent.name)
            if not task.final:
                task.error = f"delivery failed: {exc}"
                task.move("failed", now=self.clock())
                self._journal(task)
                self._task_finished(task)
        finally:
            self._running.pop(agent.name, None)
            self.write_status(agent)
            self.dispatch()

    def _finish_queued(self, task: Task, state: str, error: str) -> None:
        if task in self.queue:
            self.queue.remove(task)
        task.error = error
        task.move(state, now=self.clock())
        self._journal(task)
        self.publish({"type": "task", "task": task.to_json()})
        self._task_finished(task)

    def cancel(self, task_id: str) -> Task:
        task = self.task(task_id)
        if task.final:
            return task
        if task.state == "queued":
            self._finish_queued(task, "cancelled", "cancelled before delivery")
        elif task.agent and task.agent in self.agents:
            self.agents[task.agent].cancel_task()
        return task

    def _task_finished(self, task: Task) -> None:
        if task.notify:
            who = task.agent or task.to
            body = task.answer if task.state == "done" else (task.error or task.state)
            self.post(InboxItem(f"{task.id} {task.state} ({who}): {task.title()}", body or "",
                                source="task", task=task.id))
        for fut in self._task_waiters.pop(task.id, []):
            if not fut.done():
                fut.set_result(task)

    async def wait(self, task_id: str, timeout: float | None = None) -> Task:
        task = self.task(task_id)
        if task.final:
            return task
        fut: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        self._task_waiters.setdefault(task_id, []).append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return task

    def _trim_finished(self) -> None:
        if len(self.tasks) <= MAX_FINISHED:
            return
        for tid in [t.id for t in self.tasks.values() if t.final][: len(self.tasks) - MAX_FINISHED]:
            del self.tasks[tid]

    def _on_stall(self, agent: Agent) -> None:
        """An agent working with no output for `stall_after` s: report, interrupt or restart."""
        policy = str(self.config.settings.get("stall_policy", "report"))
        task = agent.current_task
        what = f"task {task.id} ({task.title()})" if task else "no task"
        log.warning("%s: stalled (%s); policy %s", agent.name, what, policy)
        self.post(InboxItem(f"{agent.name} stalled: no output for {agent.stall_after:.0f}s",
                            f"working on {what}; policy: {policy}", source="monitor",
                            task=task.id if task else None))
        if policy == "interrupt":
            agent.write(agent.profile.settings.interrupt)
        elif policy == "restart":
            asyncio.get_running_loop().create_task(self._restart_stalled(agent))

    async def _restart_stalled(self, agent: Agent) -> None:
        await agent.stop()  # the task fails as `crashed`; the restart policy brings it back
        if not agent.alive and agent.name not in self._restart_timers:
            self.spawn(agent.name)

    # -- agent lifecycle --------------------------------------------------------------------------
    def _after_exit(self, agent: Agent) -> None:
        if self._stopping:
            return
        policy = agent.spec.restart
        failed = agent.state == "crashed" or (agent.exit_status is not None and not agent.exit_status.ok)
        spawn_failed = agent.exit_status is None  # never started: restarting will not help
        if spawn_failed or policy == "never" or (policy == "on-failure" and not failed):
            if not spawn_failed and agent.name not in self._killing:
                self._not_restarted(agent, policy)
            self._fail_orphans(agent)
            return
        n = self._restarts.get(agent.name, 0)
        if n >= len(RESTART_BACKOFF):
            agent.error = f"fatal: exited {n + 1} times ({agent.error or agent.state}); not restarting"
            log.error("%s: %s", agent.name, agent.error)
            self.write_status(agent)
            self._fail_orphans(agent)
            return
        self._restarts[agent.name] = n + 1
        delay = RESTART_BACKOFF[n]
        log.info("%s: restarting in %.0fs (%s)", agent.name, delay, agent.error or agent.state)
        self._restart_timers[agent.name] = asyncio.get_running_loop().call_later(
            delay, self._restart_now, agent
        )

    def _not_restarted(self, agent: Agent, policy: str) -> None:
        """An agent left the team by itself (a person quit it with Ctrl-C twice, `/exit`):
        the team is one short until someone starts it, so the inbox says how."""
        why = agent.exit_status.describe() if agent.exit_status else agent.state
        self.post(InboxItem(
            f"{agent.name} exited ({why}) and was not restarted",
            f"restart = {policy!r} does not restart a clean exit (a person quitting it, e.g. "
            f"Ctrl-C twice). Start it again, its conversation resumed: `staff spawn {agent.name}` "
            f"(in the console: Enter in its pane, or `C-b :spawn {agent.name}`).",
            source="staff",
        ))

    def _restart_now(self, agent: Agent) -> None:
        self._restart_timers.pop(agent.name, None)
        if not self._stopping and not agent.alive:
            agent.start()

    def _fail_orphans(self, agent: Agent) -> None:
        """Tasks that only this agent could take fail now instead of waiting forever."""
        for task in [t for t in self.queue if t.to == agent.name]:
            self._finish_queued(
                task,
                "failed",
                f"agent {agent.name!r} is not running ({agent.error or agent.state}); "
                f"start it with `staff spawn {agent.name}`",
            )

    def place(self, spec: AgentSpec) -> tuple[Agent, bool]:
        """An agent a hub placed on this host (daemon/hosts.py): started once, and left as it
        is when the hub places it again after a reconnect (its pty and its tasks are ours).
        Returns the agent and whether it is new."""
        if spec.name in self.agents:
            return self.agents[spec.name], False
        agent = self.add_agent(spec)
        agent.start()
        self.write_status(agent)
        self.dispatch()
        return agent, True

    def _unqueue(self, name: str, why: str) -> None:
        """Tasks queued for `name` only fail with `why` (it is leaving the team)."""
        for task in [t for t in self.queue if t.to == name]:
            self._finish_queued(task, "failed", why)

    async def remove(self, name: str) -> Agent:
        """Stop an agent and drop it from the team (its status file too); tasks queued for it
        alone fail. The caller says whether it may (`daemon/server.py`: only agents added at
        run time; a team-file agent is removed by editing the file)."""
        agent = self.agent(name)
        await self.kill(name)  # while it quits, dispatch and routing pass it over (`_killing`)
        if self.agents.get(name) is not agent:
            return agent  # renamed or removed meanwhile
        del self.agents[name]
        agent.listener = None  # a late event of the old program (its limit timer) reports nothing
        agent.lift()  # its limit timer goes, and its hold leaves limits.json
        self._save_limits()
        self._restarts.pop(name, None)
        self._draft_noticed.discard(name)
        self._unqueue(name, f"agent {name!r} was removed from the team")
        self.status_files.remove(self.status_dir / f"{name}.json")
        if self.journal is not None:  # a later agent of this name starts a new conversation
            self.journal.forget_agent(name)
        self.publish({"type": "removed", "agent": name})
        return agent

    def rename(self, old: str, new: str) -> Agent:
        """Give an agent another name; its program, conversation and screen carry on.

        Refused while it holds a task (the task's answer is filed under the name it was
        given to). Queued tasks for it follow the new name; finished ones keep the old name
        (history). The keeper's child is renamed too, so a daemon restart adopts it."""
        agent = self.agent(old)
        if new in self.agents:
            raise ProtocolError(ERR_BAD_REQUEST, f"there is already an agent {new!r}")
        if (agent.current_task is not None and not agent.current_task.final) or self.delivering(old):
            task = agent.current_task
            raise ProtocolError(
                ERR_BAD_REQUEST,
                f"{old} is working on {task.id if task else 'a task'}: rename it when it is idle",
            )
        if self.keeper is not None and agent.alive:
            try:
                self.keeper.rename(old, new)
            except KeeperError as exc:
                raise ProtocolError(ERR_BAD_REQUEST, f"cannot rename {old}: {exc}") from None
        del self.agents[old]
        agent.name = agent.spec.name = new
        agent.env["STAFF_AGENT"] = new  # from its next start (the running one keeps its env)
        if isinstance(agent.proc, KeeperPtyProcess):
            agent.proc.name = new
        agent.process_factory = self._keeper_factory(new) if self.keeper else self.process_factory
        self.agents[new] = agent
        for task in self.queue:
            if task.to == old:
                task.to = new
                if self.journal is not None:
                    self.journal.update(task)
        timer = self._restart_timers.pop(old, None)
        if timer is not None:
            self._restart_timers[new] = timer
        self.status_files.remove(self.status_dir / f"{old}.json")
        if self.journal is not None:
            self.journal.rename_agent(old, new)
        self._save_limits()  # a hold goes with the name, or a restart would forget it
        self.write_status(agent)
        self.publish({"type": "renamed", "agent": old, "new": new})
        return agent

    def spawn(self, name: str) -> Agent:
        agent = self.agent(name)
        if agent.alive:
            return agent
        timer = self._restart_timers.pop(name, None)
        if timer:
            timer.cancel()
        self._restarts.pop(name, None)
        agent.start()
        return agent

    async def kill(self, name: str) -> Agent:
        agent = self.agent(name)
        timer = self._restart_timers.pop(name, None)
        if timer:
            timer.cancel()
        saved = agent.spec.restart
        agent.spec.restart = "never"  # a kill is deliberate: no automatic restart
        self._killing.add(name)  # and nothing to report: whoever killed it knows
        self._keep_draft(agent)
        try:
            await agent.stop()
        finally:
            agent.spec.restart = saved
            self._killing.discard(name)
        return agent

    async def restart(self, name: str) -> Agent:
        await self.kill(name)
        return self.spawn(name)

    def _keep_draft(self, agent: Agent) -> None:
        """An agent about to be stopped holds a person's unsent text: keep it in the inbox."""
        if agent.draft and agent.alive:
            log.info("%s: keeping its unsent draft in the inbox", agent.name)
            self.post(InboxItem(f"{agent.name}: the draft left in its input box when it stopped",
                                agent.draft, source="staff", to="person"))

    # -- inbox ------------------------------------------------------------------------------
    def post(self, item: InboxItem) -> InboxItem:
        """Put a message in the inbox (durably) and tell every subscriber."""
        self.inbox.post(item)
        self.publish({"type": "inbox", "item": item.to_json()})
        for ext in self.extensions:
            ext.on_post(item)
        return item

    def ack(self, ids: list[str] | None = None) -> list[InboxItem]:
        """Mark inbox items read and tell every subscriber (an open web page drops them)."""
        acked = self.inbox.ack(ids)
        if acked:
            self.publish({"type": "inbox_ack", "ids": [i.id for i in acked]})
        return acked

    # -- views --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        agents = []
        for agent in self.agents.values():
            data = agent.status()
            data["queue"] = self.queue_length(agent.name)
            agents.append(data)
        return {
            "agents": agents,
            "queued": len(self.queue),
            "config": self.config.source,
            "pid": os.getpid(),
        }
