"""`staff mcp`: the team as Model Context Protocol tools, served over stdio.

Ctrl-G needs a person's key press; a chief that can call tools delegates on its own::

    claude mcp add staff -- staff mcp

Tools: ``list_agents``, ``delegate(agent, task, wait, timeout)``, ``task_status(id)``,
``task_result(id, wait)``, ``agent_screen(agent)``, ``inbox()``. They are thin: each is
one or two requests to the same daemon the CLI and the hook use (the same tasks, the
same queues); the blocking protocol client runs in a worker thread so a long ``wait``
never stalls the MCP session. If no daemon runs, the first tool call starts one with the
person's team file (as `staff up` would) and says so.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from supervisor.protocol import ERR_NO_DAEMON, TASK_FINAL, Client, ProtocolError, socket_path

INSTRUCTIONS = (
    "A team of persistent coding agents (Claude Code sessions and others) supervised by agentstaff. "
    "list_agents shows who is idle; delegate(agent, task) hands one a task and, with wait=true, returns "
    "its answer. agent is a name, 'role:NAME' or 'any'. Tasks that outlast the wait keep running: "
    "poll task_status(id) and fetch task_result(id)."
)


def _task_view(task: dict[str, Any], *, answer: bool = True) -> dict[str, Any]:
    out = {
        "id": task["id"],
        "state": task["state"],
        "agent": task.get("agent") or task.get("to"),
        "elapsed_s": task.get("elapsed"),
        "error": task.get("error"),
    }
    if answer:
        out["answer"] = task.get("answer")
    if task["state"] not in TASK_FINAL:
        out["note"] = f"still {task['state']}; call task_result('{task['id']}') later"
    return out


def _answered(task: dict[str, Any]) -> dict[str, Any]:
    """The task's view; a task that failed or was cancelled is the tool's error (``isError``,
    with the reason in one line), so the chief cannot take the failure for an answer."""
    if task["state"] in ("failed", "cancelled"):
        who = task.get("agent") or task.get("to")
        raise ToolError(f"task {task['id']} {task['state']} on {who}: {task.get('error') or task['state']}")
    return _task_view(task)


def build(home: Path) -> MCPServer:
    server: MCPServer = MCPServer("agentstaff", instructions=INSTRUCTIONS)
    started: list[str] = []

    def call(cmd: str, *, sock_timeout: float | None = 30.0, **fields: Any) -> Any:
        try:
            with Client(socket_path(home), timeout=sock_timeout) as c:
                return c.call(cmd, **fields)
        except ProtocolError as exc:
            if exc.code != ERR_NO_DAEMON or started:
                raise
        from supervisor.client.cli.common import start_daemon

        info = start_daemon(home, None, quiet=True)
        started.append(f"no daemon was running; started one (pid {info['pid']})")
        with Client(socket_path(home), timeout=sock_timeout) as c:
            return c.call(cmd, **fields)

    async def acall(cmd: str, *, sock_timeout: float | None = 30.0, **fields: Any) -> Any:
        try:
            return await asyncio.to_thread(call, cmd, sock_timeout=sock_timeout, **fields)
        except ProtocolError as exc:  # the daemon's one-line message reaches the chief as is
            raise ToolError(exc.message) from None

    @server.tool()
    async def list_agents() -> dict[str, Any]:
        """The team: each agent's name, role, state (idle, working, blocked, …), current task and queue."""
        st = await acall("status")
        agents = [
            {
                "name": a["agent_id"],
                "role": a.get("role"),
                "state": a["status"],
                "current_task": a.get("current_task"),
                "current_task_title": a.get("current_task_title"),
                "queue": a.get("queue", 0),
                "context": a.get("context_summary", ""),
            }
            for a in st["agents"]
        ]
        return {"agents": agents, "notes": started}

    @server.tool()
    async def delegate(agent: str, task: str, wait: bool = True, timeout: float = 600) -> dict[str, Any]:
        """Give an agent a task. agent: a name, 'role:NAME' or 'any'. With wait (the default) return
        its answer, or, after `timeout` seconds, the task id to fetch it later with task_result."""
        t = await acall("submit", to=agent, text=task)
        if wait and t["state"] not in TASK_FINAL:
            t = await acall("wait", task=t["id"], timeout=timeout, sock_timeout=None)
        return _answered(t)

    @server.tool()
    async def task_status(id: str) -> dict[str, Any]:
        """A task's state (queued, working, blocked, done, failed, cancelled), agent and elapsed time."""
        return _task_view(await acall("task", task=id), answer=False)

    @server.tool()
    async def task_result(id: str, wait: float = 0) -> dict[str, Any]:
        """A task's answer; waits up to `wait` seconds for it to finish first. A failed task is
        an error with its reason."""
        if wait > 0:
            return _answered(await acall("wait", task=id, timeout=wait, sock_timeout=None))
        return _answered(await acall("task", task=id))

    @server.tool()
    async def agent_screen(agent: str) -> str:
        """What the agent's terminal shows now, as text (e.g. to read a question it is asking)."""
        scr = await acall("screen", agent=agent)
        lines = list(scr["lines"])
        while lines and not lines[-1].strip():
            lines.pop()
        return f"[{scr['agent']}: {scr['state']}]\n" + "\n".join(lines)

    @server.tool()
    async def inbox() -> dict[str, Any]:
        """Unread messages for the chief (background answers, monitor alerts); marks them read."""
        items = (await acall("inbox", to="chief"))["items"]
        if items:
            await acall("inbox_ack", ids=[i["id"] for i in items])
        return {"items": [{k: i.get(k) for k in ("id", "title", "body", "source", "task")} for i in items]}

    return server


def serve(home: Path) -> int:
    build(home).run("stdio")
    return 0
