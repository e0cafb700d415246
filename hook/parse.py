"""Reading a Claude Code prompt file: which lines delegate, to whom, with what context.

The syntax (README, "Delegating from Claude Code"):

- a line ``@NAME text…`` (an agent), ``@role:NAME text…`` or ``@any text…`` begins a task
  that runs to the next such line; the name may be followed by ``:`` or ``,``;
- text before the first task line, Claude Code's ``#`` comment lines (its "last response"
  block) included, is shared context, sent along with every task;
- ``@@`` at a line start is the escape for a literal ``@``: the line is text, sent with
  one ``@`` removed (``@@media print`` → ``@media print``);
- a ``@word`` that names no agent stays text (``@property`` in pasted code is no task);
- ``<staff-answer …>`` / ``<staff-inbox …>`` blocks the hook wrote earlier are quoted
  text, never tasks, and the hook's own ``[staff] …`` note lines are dropped.

Standard library only: this runs on every Ctrl-G.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PROMPT_FILE = re.compile(r"claude-prompt-.*\.md\Z")
NOTE = "[staff] "
"""The prefix of the hook's own one-line notes; such lines are never part of a task."""

_NAME = r"[A-Za-z][A-Za-z0-9_-]{0,31}"
_CANDIDATE = re.compile(rf"@(role:{_NAME}|{_NAME})[:,]?(?:[ \t]+(.*))?\Z")
_CANDIDATE_BYTES = re.compile(rb"(?m)^@[A-Za-z]")
_BLOCK_OPEN = re.compile(r"<(staff-answer|staff-inbox)[\s>]")
MAX_TASK_BYTES = 512 * 1024
"""The most one delegated task may carry (the daemon reads requests of up to 1 MiB)."""


def is_prompt_file(path: str) -> bool:
    return bool(PROMPT_FILE.match(path.rsplit("/", 1)[-1]))


def may_delegate(raw: bytes) -> bool:
    """A cheap first look at the raw bytes: could any line be a task line?"""
    return bool(_CANDIDATE_BYTES.search(raw))


@dataclass
class TaskSpec:
    target: str  # an agent name, role:NAME or any
    body: str
    line: int  # 1-based line of the @ line

    def text(self, context: str) -> str:
        return f"{context}\n\n{self.body}" if context else self.body


@dataclass
class Plan:
    context: str
    tasks: list[TaskSpec] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # @words that name no agent
    head: str = ""  # the text before the first task line as written (escapes kept), notes dropped

    def task_texts(self) -> list[str]:
        return [t.text(self.context) for t in self.tasks]


def target_of(line: str, known: set[str] | None) -> tuple[str, str] | None:
    """(target, rest of the line) when `line` begins a task, else None.

    `known` is the team's agent names; None accepts any name (the syntax alone).
    """
    if not line.startswith("@") or line.startswith("@@"):
        return None
    m = _CANDIDATE.match(line.rstrip("\r"))
    if m is None:
        return None
    name, rest = m.group(1), (m.group(2) or "").strip()
    if name == "any" or name.startswith("role:") or known is None or name in known:
        return name, rest
    return None


def _unescape(line: str) -> str:
    return line[1:] if line.startswith("@@") else line


def parse(text: str, known: set[str] | None = None) -> Plan:
    """Split a draft into shared context and tasks, in the order written."""
    context: list[str] = []
    tasks: list[tuple[str, list[str], int]] = []
    unknown: list[str] = []
    in_block: str | None = None
    for n, line in enumerate(text.split("\n"), 1):
        if in_block is not None:
            if line.strip() == f"</{in_block}>":
                in_block = None
            (tasks[-1][1] if tasks else context).append(line)
            continue
        m = _BLOCK_OPEN.match(line)
        if m is not None:
            in_block = m.group(1)
            (tasks[-1][1] if tasks else context).append(line)
            continue
        if line.startswith(NOTE):
            continue
        hit = target_of(line, known)
        if hit is not None:
            tasks.append((hit[0], [hit[1]] if hit[1] else [], n))
            continue
        if known is not None and target_of(line, None) is not None:
            unknown.append(line.split()[0].rstrip(":,"))
        (tasks[-1][1] if tasks else context).append(_unescape(line))
    lines = text.split("\n")[: tasks[0][2] - 1] if tasks else []
    return Plan(
        head="\n".join(x for x in lines if not x.startswith(NOTE)).strip("\n"),
        context="\n".join(context).strip("\n"),
        tasks=[TaskSpec(t, "\n".join(body).strip("\n"), n) for t, body, n in tasks],
        unknown=unknown,
    )
