"""Agent pools: roles that grow and shrink with the work queued for them.

A ``[roles.NAME]`` table in ``staff.toml`` is a template agent plus ``min``, ``max`` and
``idle_timeout``. The pool listens to the supervisor's events (no timers but the idle
ones): when a task for ``role:NAME`` is queued and no agent of the role is free, and
fewer than ``max`` exist, it spawns a clone named ``NAME-1``, ``NAME-2``…; a clone that
stays idle for ``idle_timeout`` seconds while more than ``min`` agents have the role is
stopped and removed. Agents declared under ``[agents]`` with the role count towards
``min``/``max`` but are never removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from supervisor.team.config import RoleSpec
from supervisor.team.supervisor import Extension

if TYPE_CHECKING:
    from supervisor.agent.agent import Agent, AgentSpec
    from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")


class Pool(Extension):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        # a role whose `hosts` leave this machine out grows only there (their daemons' pools)
        self.roles_by_name: dict[str, RoleSpec] = {n: r for n, r in sup.config.roles.items() if r.local}
        self.spawned: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._reaping: set[asyncio.Task[None]] = set()
        self._leaving: set[str] = set()  # being stopped: no longer counted
        self._listening = False
        if self.roles_by_name:
            self._listen()

    def _listen(self) -> None:
        if not self._listening:
            self._listening = True
            self.sup.sinks.append(self.on_event)

    def add_role(self, spec: RoleSpec) -> bool:
        """A pool role a hub placed on this host (its template and this host's limits): grown
        and reaped here like the team file's own. Placed again (a reconnect), only its limits
        change. Returns whether it is new."""
        old = self.roles_by_name.get(spec.name)
        if old is not None:
            old.min, old.max, old.idle_timeout = spec.min, spec.max, spec.idle_timeout
        else:
            self.roles_by_name[spec.name] = spec
            self._listen()
        if not self.sup.stopping:  # placed on a running team: up to its min now
            for _ in range(spec.min - len(self._staying(spec.name))):
                self._spawn(spec)
            self.grow(spec.name)
        return old is None

    # -- queries ------------------------------------------------------------------------------
    def roles(self) -> set[str]:
        return set(self.roles_by_name)

    def members(self, role: str) -> list[Agent]:
        return [a for a in self.sup.agents.values() if a.spec.role == role]

    def _staying(self, role: str) -> list[Agent]:
        return [a for a in self.members(role) if a.state != "exited" and a.name not in self._leaving]

    def room(self, role: str) -> int:
        """Clones of `role` this pool may still start (what the router weighs: team/routing.py)."""
        spec = self.roles_by_name.get(role)
        return 0 if spec is None else max(0, spec.max - len(self._staying(role)))

    def _free(self, agent: Agent) -> bool:
        return (
            agent.state in ("idle", "starting")
            and agent.current_task is None
            and not self.sup.delivering(agent.name)
        )

    # -- growing -------------------------------------------------------------------------------
    def start(self) -> None:
        """Bring every role up to its `min`."""
        for role, spec in self.roles_by_name.items():
            for _ in range(spec.min - len(self.members(role))):
                self._spawn(spec)
            self.grow(role)  # tasks recovered from the journal

    def grow(self, role: str) -> None:
        spec = self.roles_by_name.get(role)
        if spec is None or self.sup.stopping:
            return
        members = self._staying(role)
        pending = sum(1 for t in self.sup.queue if t.to == f"role:{role}")
        need = pending - sum(1 for a in members if self._free(a))
        for _ in range(min(need, spec.max - len(members))):
            self._spawn(spec)

    def _spawn(self, spec: RoleSpec) -> Agent | None:
        n = 1
        while f"{spec.name}-{n}" in self.sup.agents:
            n += 1
        name = f"{spec.name}-{n}"
        try:
            agent = self.sup.add_agent(self._clone(spec, name))
        except Exception as exc:
            log.error("pool %s: cannot add %s: %s", spec.name, name, exc)
            return None
        self.spawned.add(name)
        log.info("pool %s: spawning %s", spec.name, name)
        agent.start()
        self.sup.publish({"type": "pool", "role": spec.name, "agent": name, "action": "spawn"})
        return agent

    @staticmethod
    def _clone(spec: RoleSpec, name: str) -> AgentSpec:
        return dataclasses.replace(
            spec.template, name=name, role=spec.name, env=dict(spec.template.env),
            command=list(spec.template.command),
        )

    def restore(self, saved: dict[str, Any], kids: dict[str, Any]) -> None:
        """At daemon start (a reload, an upgrade): the clones the keeper still runs join the
        pool again, to be adopted with their tasks instead of ended as strangers; they are
        reaped after their idle timeout as before."""
        for name in kids:
            role, _, n = name.rpartition("-")
            spec = self.roles_by_name.get(role)
            if spec is None or not n.isdigit() or name in self.sup.agents:
                continue
            try:
                agent = self.sup.add_agent(self._clone(spec, name))
            except Exception as exc:
                log.error("pool %s: cannot take %s back: %s", role, name, exc)
                continue
            if name in saved:
                agent.session_id, _pid, agent.starts = saved[name]
            self.spawned.add(name)

    # -- shrinking ------------------------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "task":
            task = event["task"]
            if task["state"] == "queued" and str(task["to"]).startswith("role:"):
                self.grow(task["to"][5:])
        elif kind == "state" and event.get("agent") in self.spawned:
            name = event["agent"]
            timer = self._timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            if event["new"] == "idle":
                agent = self.sup.agents.get(name)
                spec = self.roles_by_name.get(agent.spec.role or "") if agent else None
                if spec is not None:
                    self._timers[name] = asyncio.get_running_loop().call_later(
                        spec.idle_timeout, self._maybe_reap, name
                    )

    def _maybe_reap(self, name: str) -> None:
        self._timers.pop(name, None)
        agent = self.sup.agents.get(name)
        if agent is None or self.sup.stopping:
            return
        spec = self.roles_by_name.get(agent.spec.role or "")
        if spec is None or not self._free(agent) or agent.state != "idle":
            return
        if any(t.to == f"role:{spec.name}" or t.to in (name, "any") for t in self.sup.queue):
            return
        if len(self._staying(spec.name)) <= spec.min:
            return
        self._leaving.add(name)
        t = asyncio.get_running_loop().create_task(self._reap(agent))
        self._reaping.add(t)
        t.add_done_callback(self._reaping.discard)

    async def _reap(self, agent: Agent) -> None:
        log.info("pool %s: %s idle for its timeout; stopping it", agent.spec.role, agent.name)
        agent.set_user_hold(True)  # state `user`: nothing is routed to it while it stops
        try:
            await self.sup.kill(agent.name)
        finally:
            self._leaving.discard(agent.name)
        if agent.current_task is not None or self.sup.agents.get(agent.name) is not agent:
            return
        del self.sup.agents[agent.name]
        self.spawned.discard(agent.name)
        with contextlib.suppress(OSError):
            (self.sup.status_dir / f"{agent.name}.json").unlink()
        self.sup.publish({"type": "pool", "role": agent.spec.role, "agent": agent.name, "action": "stop"})

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
