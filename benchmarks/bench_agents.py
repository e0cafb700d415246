"""(i) Each real agent program under the daemon, against its mock API (issue #19): how soon
after the reply's last byte the daemon says `idle`, and how often it said `idle` while a reply
was still streaming or paused (a false idle), over ≥ 20 turns, Claude Code's row beside each.

The turns alternate a reply of 12 lines that comes after ``DELAY`` s of silence and then
streams straight through, and one that stops half-way for ``PAUSE`` s (``[middelay=…]``): the
case where a screen without a "turn in progress" sign reads idle. Times are
``time.monotonic()`` (one clock for every process on the machine): the mock notes the moment it
wrote a reply's last byte (``reply-end``), the event tap the moment the `idle` event reached a
client. So a figure is the program's own time to draw its prompt again plus ours to see it.

Per turn: the turn is the span from the submit to the task's end; its final `idle` is the one
the task ended on; the reply's last byte is the last ``reply-end`` the mock wrote before that
(a side request of the program's, e.g. for a title, that ended after the answer would make the
figure low; none did in the runs here). A false idle is any other `idle` event inside the turn after its
first `working`, or a final `idle` written before the reply ended (then the task ended early).
The first turn warms the program up (first request, side requests) and is not counted.

A program is benched when its profile ships and its binary is installed (``make claude`` /
``make agents``); ``PROGRAMS`` is the table: one entry per program. Bounded: each turn waits at
most ``TURN_TIMEOUT`` s and each program ``PROGRAM_BUDGET`` s in all; what was measured by then
is reported.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from fixtures import aider_env, claude_env, codex_env, gemini_env, opencode_env
from fixtures.mockhttp import MockServer

from .harness import Context, Daemon, EventTap, pcts, row

PAUSE = 3.0
"""Seconds a paused reply stops half-way (long enough to outlast any redraw or debounce)."""
DELAY = 0.5
"""Seconds the other replies wait before their first byte (the program is 'thinking')."""
TURN_TIMEOUT = 60.0
PROGRAM_BUDGET = 300.0


# -- the programs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Program:
    """One agent program: how to find it, which mock it speaks to, and its agent's team entry
    (command, profile, cwd, env) for a root dir to keep its files in and the mock's port."""

    name: str
    title: str
    find: Callable[[], str | None]
    mock: Callable[[Path], MockServer]
    agent: Callable[[str, Path, int], dict[str, Any]]


def _anthropic(log: Path) -> MockServer:
    from fixtures.mock_anthropic import start_mock

    return start_mock(log_path=log)[0]


def _openai(log: Path) -> MockServer:
    from fixtures.mock_openai import start_mock

    return start_mock(log_path=log)[0]


def _gemini_mock(log: Path) -> MockServer:
    from fixtures.mock_gemini import start_mock

    return start_mock(log_path=log)[0]


def _claude(binary: str, root: Path, port: int) -> dict[str, Any]:
    work, home = root / "work", root / "claude-home"
    work.mkdir(parents=True)
    claude_env.prepare_home(home, work)
    return {"command": [binary], "profile": "claude", "cwd": str(work),
            "env": claude_env.claude_env(home, port)}


def _codex(binary: str, root: Path, port: int) -> dict[str, Any]:
    work, home = root / "work", root / "codex-user"
    work.mkdir(parents=True)
    codex_env.prepare_home(home / ".codex", work, port)
    return {"command": [binary, *codex_env.ARGS], "profile": "codex", "cwd": str(work),
            "env": codex_env.codex_env(home, home / ".codex")}


def _opencode(binary: str, root: Path, port: int) -> dict[str, Any]:
    work, home = root / "work", root / "opencode-user"
    work.mkdir(parents=True)
    opencode_env.prepare_home(home, port)
    return {"command": [binary], "profile": "opencode", "cwd": str(work),
            "env": opencode_env.opencode_env(home)}


def _aider(binary: str, root: Path, port: int) -> dict[str, Any]:
    work, home = root / "work", root / "aider-user"
    aider_env.prepare_repo(work)
    aider_env.prepare_home(home)
    return {"command": [binary, *aider_env.args(port, home)], "profile": "aider", "cwd": str(work),
            "env": aider_env.aider_env(home)}


def _gemini(binary: str, root: Path, port: int) -> dict[str, Any]:
    work, home = root / "work", root / "gemini-user"
    work.mkdir(parents=True)
    gemini_env.prepare_home(home)
    return {"command": [binary, *gemini_env.ARGS], "profile": "gemini", "cwd": str(work),
            "env": gemini_env.gemini_env(home, port)}


PROGRAMS: list[Program] = [
    Program("claude", "Claude Code", claude_env.find_claude, _anthropic, _claude),  # the baseline: first
    Program("codex", "Codex CLI", codex_env.find_codex, _openai, _codex),
    Program("opencode", "opencode", opencode_env.find_opencode, _openai, _opencode),
    Program("aider", "Aider", aider_env.find_aider, _openai, _aider),
    Program("gemini", "Gemini CLI", gemini_env.find_gemini, _gemini_mock, _gemini),
]


# -- one program -------------------------------------------------------------------------------
@dataclass
class Result:
    label: str
    turns: int = 0
    latencies: list[float] = field(default_factory=list)
    """ms from the reply's last byte to the `idle` event, per counted turn."""
    false_idle: int = 0
    false_turns: int = 0
    failed: int = 0
    error: str = ""


def turn_text(i: int) -> str:
    return f"bench turn {i} [middelay={PAUSE:g}]" if i % 2 else f"bench turn {i} [delay={DELAY:g}] [lines=12]"


def bench_program(ctx: Context, prog: Program, binary: str, turns: int) -> Result:
    root = Path(ctx.tmp) / f"agents-{prog.name}"
    mock = prog.mock(root.with_suffix(".mock.log"))
    res = Result(prog.name)
    try:
        spec = prog.agent(binary, root, mock.port)
        with Daemon(ctx, {"a": spec}, f"i-{prog.name}") as d:
            d.wait_state("idle", 90)
            res.label = f"{prog.title} {_version(d, binary)}"
            tap = EventTap(d)
            deadline = time.monotonic() + PROGRAM_BUDGET
            with d.client(timeout=TURN_TIMEOUT + 10) as c:
                for i in range(turns + 1):  # turn 0 warms up
                    if time.monotonic() > deadline:
                        res.error = f"stopped after {PROGRAM_BUDGET:.0f} s"
                        break
                    t0 = time.monotonic()
                    task = c.call("submit", to="a", text=turn_text(i))
                    done = c.call("wait", task=task["id"], timeout=TURN_TIMEOUT)
                    tap.until(partial(_turn_over, task["id"], done["state"]), TURN_TIMEOUT)
                    t1 = time.monotonic()
                    if i == 0:
                        continue
                    ok = done.get("state") == "done"
                    lat, false = _score(tap.events, mock.events, t0, t1)
                    res.turns += 1
                    res.failed += 0 if ok else 1
                    res.false_idle += false
                    res.false_turns += 1 if false else 0
                    if lat is not None:
                        res.latencies.append(lat)
            tap.close()
    except Exception as exc:  # one program that fails must not lose the others
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        mock.stop()
    return res


def _turn_over(tid: str, final: str, events: list[tuple[float, dict[str, Any]]]) -> bool:
    """The tap has the task's last event and the agent idle after it (the tap's thread can
    lag behind the reply to `wait`)."""
    states = [e["new"] for _t, e in events if e.get("type") == "state" and e.get("agent") == "a"]
    return bool(states) and states[-1] == "idle" and any(
        e.get("type") == "task" and e["task"]["id"] == tid and e["task"]["state"] == final
        for _t, e in events
    )


def _score(
    events: list[tuple[float, dict[str, Any]]], notes: list[tuple[float, str]], t0: float, t1: float
) -> tuple[float | None, int]:
    """(ms from the reply's last byte to the final idle, false idles) for the turn in [t0, t1]."""
    states = [(t, e["new"]) for t, e in list(events)
              if e.get("type") == "state" and e.get("agent") == "a" and t0 <= t <= t1]
    ends = [t for t, name in list(notes) if name == "reply-end" and t0 <= t <= t1]
    first_work = next((t for t, s in states if s == "working"), None)
    idles = [t for t, s in states if s == "idle" and first_work is not None and t > first_work]
    if not idles or not ends:
        return None, len(idles)
    final = idles[-1]
    before = [t for t in ends if t <= final]
    false = len(idles) - 1 + (1 if max(ends) > final else 0)
    if not before:
        return None, false
    return (final - max(before)) * 1000, false


def _version(d: Daemon, binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30,
                             env=d.env).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    found = re.search(r"\d+\.\d+[\w.+-]*", out)
    return found.group(0) if found else "(version unknown)"


NOTE = (
    "(i) is each real agent program under the daemon against its mock API (no network): idle "
    "measured from the mock's last byte of the reply to the `idle` event at a client, so it "
    "includes the program's own time to draw its prompt; a false idle is an `idle` while a reply "
    "still streamed or was paused mid-way. Claude Code is the baseline column. Add a program: "
    "one entry in `PROGRAMS` (benchmarks/bench_agents.py)."
)


# -- the rows -----------------------------------------------------------------------------------
def run(ctx: Context) -> list[dict[str, Any]]:
    if ctx.only and "i" not in ctx.only:
        return []
    turns = ctx.n(20, 6)
    results: list[tuple[Program, Result]] = []
    for prog in PROGRAMS:
        binary = prog.find()
        if binary is None:
            ctx.notes.append(f"(i) {prog.name}: not installed (make claude / make agents): not benched")
            continue
        ctx.log(f"(i) {prog.name}: {turns} turns against its mock")
        t = time.monotonic()
        res = bench_program(ctx, prog, binary, turns)
        ctx.log(f"(i) {prog.name}: {res.turns} turns, {pcts(res.latencies)}, "
                f"{res.false_idle} false idle, {time.monotonic() - t:.0f} s {res.error}")
        results.append((prog, res))
    if not results:
        return []
    ctx.notes.append(NOTE)
    base = results[0][1] if results[0][0].name == "claude" else None
    rows: list[dict[str, Any]] = []
    for _prog, res in results:
        p = pcts(res.latencies)
        bp = pcts(base.latencies) if base is not None else None
        bl = base.label if base is not None and base is not res else ""
        name = f"(i) {res.label}: idle after the reply's last byte"
        note = (f"{len(res.latencies)} of {res.turns} turns measured (every other one paused "
                f"{PAUSE:g} s mid-reply)" + (f"; {res.failed} failed" if res.failed else "")
                + (f"; {res.error}" if res.error else ""))
        rows.append(row(name, "p50", p["p50"], "ms", baseline=bl,
                        baseline_value=bp["p50"] if bl and bp else None, note=note))
        rows.append(row(name, "p99", p["p99"], "ms", baseline=bl,
                        baseline_value=bp["p99"] if bl and bp else None))
        rows.append(row(f"(i) {res.label}: false idle", "count", res.false_idle, "", baseline=bl,
                        baseline_value=base.false_idle if bl and base else None,
                        target="0", ok=res.false_idle == 0 and res.turns >= turns,
                        note=f"idle while a reply streamed or paused, over {res.turns} turns"
                             f" ({res.false_turns} turns had one)"))
    return rows
