"""`staff logs AGENT -f`: an agent's output as plain text, followed as it grows.

The agent's screen is redrawn in place (a prompt box, a spinner), so only the lines that have
scrolled off it are final text: `follow` prints the current logs, then each line as it enters
the scrollback. It is woken by the agent's output (the daemon's `stream`), and reads the
scrollback at most a few times a second however fast the output comes; nothing polls.

A program on the alternate screen (Claude Code) keeps no scrollback: its logs are its
transcript, read as the conversation (`logs` says `source: transcript`). Then each new entry
is printed as the transcript records it: woken by the output too, and by the end of each of
the agent's tasks (the daemon ends a task only once its transcript holds the turn).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from supervisor.client.connection import Connection
from supervisor.protocol import ERR_NO_DAEMON, ProtocolError, socket_path

COALESCE = 0.2
"""Seconds between an output burst's first chunk and the scrollback read it causes."""


def follow(home: Path, agent: str, lines: int | None) -> int:
    """Print the logs, then follow; returns when the agent's daemon goes away (Ctrl-C ends it)."""
    return asyncio.run(_follow(home, agent, lines))


def new_lines(before: list[str], now: list[str], tail: int = 20) -> list[str]:
    """The lines of scrollback `now` that came after `before`. The scrollback has a size
    limit, so once full it shifts instead of growing: the end of `before` is looked for in
    `now`, and what follows it is new."""
    if now[: len(before)] == before:
        return now[len(before) :]
    end = before[-tail:]
    for i in range(len(now) - len(end), -1, -1):
        if now[i : i + len(end)] == end:
            return now[i + len(end) :]
    return now  # nothing in common: all of it is new


async def _follow(home: Path, agent: str, lines: int | None) -> int:
    conn = await Connection.open(socket_path(home))
    try:
        logs = await conn.call("logs", agent=agent, lines=lines)
        print("\n".join(logs["lines"]), flush=True)
        conversation = logs.get("source") == "transcript"

        async def read() -> list[str]:
            if conversation:
                got: list[str] = (await conn.call("logs", agent=agent))["lines"]
                return got
            history: list[str] = (await conn.call("screen", agent=agent, scrollback=True))["history"]
            return history

        history = await read()
        woken = asyncio.Event()

        def on_output(ev: dict[str, Any]) -> None:
            if ev.get("type") == "output":
                woken.set()

        def on_event(ev: dict[str, Any]) -> None:
            task = ev.get("task") or {}
            if ev.get("type") == "task" and task.get("agent") == agent and task.get("state") == "done":
                woken.set()

        stream = conn.stream("stream", on_output, agent=agent)
        events = conn.stream("subscribe", on_event) if conversation else None
        while not stream.done():
            waiter = asyncio.ensure_future(woken.wait())
            await asyncio.wait({waiter, stream}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if stream.done():
                break
            await asyncio.sleep(COALESCE)  # let the burst finish: one read for many chunks
            woken.clear()
            now = await read()
            for line in new_lines(history, now):
                sys.stdout.write(line.rstrip() + "\n")
            sys.stdout.flush()
            history = now
        if events is not None:
            events.cancel()
        exc = stream.exception()
        if isinstance(exc, ProtocolError) and exc.code != ERR_NO_DAEMON:
            raise exc
        print(f"staff: the daemon went away; stopped following {agent}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
