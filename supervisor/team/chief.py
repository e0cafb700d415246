"""The chief: the top-level Claude Code run as the agent `chief`, and pushed delivery to it.

`staff chief` asks the daemon (command `chief`) to add and start the agent `chief`: Claude
Code (or the bundled fake when no `claude` is on PATH, or with STAFF_FAKE=1) with
EDITOR/VISUAL set to `staff-hook` (Ctrl-G delegation with no settings change) and our MCP
server attached through `--mcp-config`. Its spec is kept in `chief.json` in the state dir, so a
daemon that restarts adopts the running chief again (the keeper keeps it alive).

Pushed delivery (`[chief] deliver = "push"`, the default): inbox items addressed to the chief
are typed into it as one labelled message when it is idle, has no task on the way, and its
input box holds no draft. Nothing polls: `kick()` runs when the supervisor dispatches (a state
change to idle, a task finished or queued), when something is posted to the inbox, and on the
chief's output while items wait (a draft deleted without being sent). The message goes in as a
task submitted with an idempotency key made of the items' ids, and the items are then marked
delivered (journaled in inbox.jsonl): a daemon killed between the two finds the task by its
key after the restart and marks them, so each item reaches the chief once.
With `deliver = "hook"` nothing is pushed: the items come with the next Ctrl-G.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.agent.agent import AgentSpec
from supervisor.protocol import ERR_BAD_REQUEST, ProtocolError, inert, quote_attr
from supervisor.team.inbox import InboxItem
from supervisor.team.supervisor import Extension
from supervisor.util.atomic import write_json_atomic

if TYPE_CHECKING:
    from supervisor.agent.agent import Agent
    from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")

CHIEF = "chief"
SPEC_FILE = "chief.json"
_RULE = re.compile(r"[─━═]{8,}")
MAX_ITEMS = 5
"""Items in one pushed message (a backlog goes in over several turns, one per idle)."""
BODY_LIMIT, BODY_LINES = 2000, 12
"""Of one item's body typed into the chief (all of it: `staff inbox --all`)."""


def _tool(name: str) -> str:
    """`staff` / `staff-hook`: beside this interpreter (a venv or pipx install), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name) or name


def mcp_config(home: Path) -> str:
    """The `--mcp-config` JSON that attaches `staff mcp` (for this state dir) to Claude Code."""
    server = {"type": "stdio", "command": _tool("staff"), "args": ["mcp"], "env": {"STAFF_HOME": str(home)}}
    return json.dumps({"mcpServers": {"staff": server}})


def chief_spec(home: Path, args: list[str], *, cwd: str | None = None) -> AgentSpec:
    """The chief's agent spec: Claude Code (else the fake) with the hook and the MCP server."""
    from supervisor.team.config import FAKE_AGENT

    claude = None if os.environ.get("STAFF_FAKE") == "1" else shutil.which("claude")
    if claude:
        command, profile = [claude], "claude"
    else:
        command, profile = [sys.executable, str(FAKE_AGENT), "--name", CHIEF], "fake"
    hook = _tool("staff-hook")
    return AgentSpec(
        name=CHIEF,
        command=[*command, "--mcp-config", mcp_config(home), *args],
        profile=profile,
        cwd=cwd,
        env={"EDITOR": hook, "VISUAL": hook, "STAFF_HOME": str(home)},
        restart="on-failure",
        source="(staff chief)",
        by_name_only=True,
    )


def message(items: list[InboxItem]) -> str:
    """One labelled message for the chief, one `<staff-inbox>` block per item. What an item
    says is quoted inert (`protocol.inert`): the message can come back in a prompt file on
    Ctrl-G, and nothing in it may end its quote or read as a task there."""
    n = len(items)
    head = f"[staff] {n} message{'s' if n != 1 else ''} from your team (pushed while you were idle):"
    blocks = [head]
    for item in items:
        stamp = time.strftime("%H:%M:%S", time.localtime(item.time))
        attrs = f'id="{quote_attr(item.id)}" from="{quote_attr(item.source)}" at="{stamp}"'
        if item.task:
            attrs += f' task="{quote_attr(item.task)}"'
        body = _RULE.sub("───", inert(item.body.strip("\n")))  # a screen tail's rules are not an input box
        lines = body.splitlines()
        if len(body) > BODY_LIMIT or len(lines) > BODY_LINES:
            body = "\n".join(lines[-BODY_LINES:])[-BODY_LIMIT:]  # the end: where a failure shows
            body = f"… (the end; `staff inbox --all` has all of {item.id})\n{body}"
        blocks.append(
            "\n".join(
                x
                for x in (f"<staff-inbox {attrs}>", inert(" ".join(item.title.split())), body,
                          "</staff-inbox>")
                if x
            )
        )
    return "\n".join(blocks)


class Chief(Extension):
    """Starts the chief and pushes its inbox items into it (see the module docstring)."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.mode = sup.config.chief.deliver
        self.path = sup.home / SPEC_FILE
        self._pending: set[str] = set()
        self._loaded = False
        self._kicking = False
        self._watched: Agent | None = None

    # -- starting ---------------------------------------------------------------------------
    def _load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _save(self, agent: Agent) -> None:
        s = agent.spec
        write_json_atomic(
            self.path,
            {
                "command": s.command,
                "profile": s.profile,
                "cwd": s.cwd,
                "env": s.env,
                "session_id": agent.session_id,
            },
        )

    def _spec_from(self, data: dict[str, Any]) -> AgentSpec | None:
        command = data.get("command")
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command) or not command:
            return None
        env = data.get("env") if isinstance(data.get("env"), dict) else {}
        return AgentSpec(
            name=CHIEF,
            command=command,
            profile=str(data.get("profile", "claude")),
            cwd=data.get("cwd") if isinstance(data.get("cwd"), str) else None,
            env={str(k): str(v) for k, v in (env or {}).items()},
            restart="on-failure",
            source="(staff chief)",
            by_name_only=True,
        )

    def restore(self, saved: dict[str, Any], live: dict[str, Any]) -> None:
        """At daemon start: a chief the keeper still runs joins the team again (to be adopted)."""
        if CHIEF in self.sup.agents or CHIEF not in live:
            return
        data = self._load()
        spec = self._spec_from(data) if data else None
        if spec is None:
            return
        agent = self.sup.add_agent(spec)
        if CHIEF in saved:
            agent.session_id, _pid, agent.starts = saved[CHIEF]
        self._watch(agent)

    def open(self, args: list[str], *, resume: bool = False, cwd: str | None = None) -> dict[str, Any]:
        """`staff chief`: add the chief if it is not in the team, start it if it is not running.
        `resume`: continue its last conversation (the session kept in chief.json)."""
        if not all(isinstance(a, str) for a in args):
            raise ProtocolError(ERR_BAD_REQUEST, "chief: 'args' must be a list of strings")
        agent = self.sup.agents.get(CHIEF)
        if agent is not None and agent.alive:
            self._watch(agent)
            return {"agent": agent.status(), "started": False}
        saved = self._load() or {}
        if agent is None:
            agent = self.sup.add_agent(chief_spec(self.sup.home, args, cwd=cwd))
        elif args:
            agent.spec.command = chief_spec(self.sup.home, args, cwd=cwd).command
        session = saved.get("session_id")
        if resume and isinstance(session, str) and session:
            agent.session_id = session
            agent.starts = max(agent.starts, 1)  # → --resume <session> when its transcript exists
        elif not resume:  # a new conversation
            agent.session_id, agent.starts = str(uuid.uuid4()), 0
        self._watch(agent)
        self.sup.spawn(CHIEF)
        self._save(agent)
        self.sup.write_status(agent)
        return {"agent": agent.status(), "started": True}

    # -- pushed delivery --------------------------------------------------------------------------
    def _watch(self, agent: Agent) -> None:
        """Wake on the chief's output while items wait (a draft deleted without being sent)."""
        if self._watched is agent:
            return
        self._watched = agent
        agent.output_listeners.append(lambda _data, _text: self.kick() if self._pending else None)

    def on_post(self, item: InboxItem) -> None:
        if item.to == CHIEF and not item.delivered and not item.acked:
            self._pending.add(item.id)
            self.kick()

    def ready(self, agent: Agent) -> bool:
        """Idle, nothing on its way in, no one typing, and an empty input box."""
        sup = self.sup
        if agent.state != "idle" or agent.current_task is not None or agent.user_hold:
            return False
        if agent.limited_until is not None:  # a usage limit: nothing goes in before its reset
            return False
        if sup.delivering(agent.name) or any(sup.fits(t, agent) for t in sup.queue):
            return False
        return agent.box_text() == ""

    def after_dispatch(self) -> None:
        self.kick()

    def kick(self) -> None:
        if self.mode != "push" or self._kicking:
            return
        if not self._loaded:  # items a previous daemon had not delivered yet
            self._loaded = True
            self._pending.update(i.id for i in self.sup.inbox.list(to=CHIEF) if not i.delivered)
        agent = self.sup.agents.get(CHIEF)
        if agent is None or not self._pending or not self.ready(agent):
            return
        self._watch(agent)
        items = [
            self.sup.inbox.items[i]
            for i in sorted(self._pending, key=self._order)
            if i in self.sup.inbox.items
        ]
        items = [i for i in items if not i.delivered and not i.acked]
        self._pending = {i.id for i in items[MAX_ITEMS:]}  # the rest: the next time it is idle
        items = items[:MAX_ITEMS]
        if not items:
            return
        ids = [i.id for i in items]
        self._kicking = True
        try:
            task = self.sup.submit(CHIEF, message(items), key="chief-inbox:" + ",".join(ids))
        except ProtocolError as exc:
            log.error("pushing %s to the chief failed: %s", ", ".join(ids), exc.message)
            self._pending.update(ids)
            return
        finally:
            self._kicking = False
        for item_id in ids:
            self.sup.inbox.mark_delivered(item_id)
        log.info("chief: pushed %s as %s", ", ".join(ids), task.id)
        self.sup.publish({"type": "chief", "delivered": ids, "task": task.id})

    def _order(self, item_id: str) -> tuple[float, str]:
        item = self.sup.inbox.items.get(item_id)
        return (item.time if item else 0.0, item_id)
