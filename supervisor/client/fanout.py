"""Fan-out: one task to several agents at once, answers gathered side by side.

Standard library + protocol only, so the editor hook can use it too::

    from supervisor.client.fanout import fan_out, resolve_targets, side_by_side
    with Client(socket_path()) as c:
        results = fan_out(c, resolve_targets(c, "planning,coding"), "Review the auth plan")
    print(side_by_side(results, 120))
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import Any

from supervisor.protocol import ERR_BAD_REQUEST, ERR_UNKNOWN_AGENT, TASK_FINAL, Client, ProtocolError


def resolve_targets(c: Client, spec: str, *, all_of_role: bool = False) -> list[str]:
    """Agent names for ``A,B,C`` (each an agent, ``role:R`` or ``any``) or for every agent of a role."""
    if all_of_role:
        role = spec[5:] if spec.startswith("role:") else spec
        agents = c.call("status")["agents"]
        names = [a["agent_id"] for a in agents if a.get("role") == role and a["status"] not in ("exited",)]
        if not names:
            roles = sorted({a.get("role") for a in agents if a.get("role")})
            raise ProtocolError(
                ERR_UNKNOWN_AGENT, f"no running agent has role {role!r} (roles: {', '.join(roles) or 'none'})"
            )
        return names
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ProtocolError(ERR_BAD_REQUEST, "no agents named")
    return names


def fan_out(
    c: Client,
    targets: list[str],
    text: str,
    timeout: float | None = None,
    *,
    submitted: Callable[[list[dict[str, Any]]], None] | None = None,
    finished: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Submit `text` to every target at once, then wait for all; tasks in target order.

    All tasks are queued before the first wait, so the agents work in parallel; a task
    still running at `timeout` is returned as it is (not final). `submitted` gets the tasks
    once all are queued, `finished` each one as its wait returns (progress for a person)."""
    tasks = [c.call("submit", to=t, text=text) for t in targets]
    if submitted is not None:
        submitted(tasks)
    deadline = None if timeout is None else time.monotonic() + timeout
    out = []
    for task in tasks:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        out.append(
            c.call("wait", task=task["id"], timeout=left, read_timeout=None if left is None else left + 10)
        )
        if finished is not None:
            finished(out[-1])
    return out


def label(task: dict[str, Any]) -> str:
    return str(task.get("agent") or task.get("to") or "?")


def body(task: dict[str, Any]) -> str:
    if task["state"] == "done":
        return str(task.get("answer") or "")
    if task["state"] in TASK_FINAL:
        return f"[{task['state']}: {task.get('error')}]"
    return f"[still {task['state']}: `staff wait {task['id']}`]"


def side_by_side(tasks: list[dict[str, Any]], width: int = 120, min_col: int = 28) -> str:
    """Answers in columns (agent names on top); stacked sections when the width is too small."""
    n = len(tasks)
    if n == 0:
        return ""
    col = (width - 3 * (n - 1)) // n
    if n == 1 or col < min_col:
        parts = []
        for t in tasks:
            parts.append(f"── {label(t)} {'─' * max(3, min(width, 60) - len(label(t)) - 4)}\n{body(t)}")
        return "\n\n".join(parts)
    columns = []
    for t in tasks:
        lines: list[str] = []
        for para in body(t).splitlines() or [""]:
            lines += textwrap.wrap(para, col) or [""]
        columns.append([label(t)[:col], "─" * col, *lines])
    height = max(len(c) for c in columns)
    rows = []
    for i in range(height):
        cells = [(c[i] if i < len(c) else "").ljust(col) for c in columns]
        rows.append(" │ ".join(cells).rstrip())
    return "\n".join(rows)
