"""Tasks: what was asked, of whom, and what came of it."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from supervisor.protocol import TASK_FINAL

TASK_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"delivered", "cancelled", "failed"}),
    "delivered": frozenset({"working", "done", "failed", "cancelled", "queued", "interrupted"}),
    "working": frozenset({"blocked", "done", "failed", "cancelled", "interrupted"}),
    "blocked": frozenset({"working", "done", "failed", "cancelled", "interrupted"}),
    # The daemon restarted and the agent that had the task is gone: retried or failed.
    "interrupted": frozenset({"queued", "done", "failed", "cancelled"}),
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}


_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"            # CSI (colours, cursor keys, bracketed-paste markers)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, ended by BEL or ST
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"      # DCS, SOS, PM, APC
    r"|\x1b[@-Z\\-_]"                     # two-byte escapes
    r"|[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]"   # every other control character (C0 but \t \n, DEL, C1)
)


def typed_text(text: str) -> str:
    """What of a task's text reaches the program: escape sequences and control characters
    are not a prompt (a pasted colour code would be typed as keys), so they are dropped;
    line ends become newlines and tabs spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return _ESCAPES.sub("", text)


def new_task_id() -> str:
    return "T-" + secrets.token_hex(4)


@dataclass
class Task:
    """One request to an agent. `to` is an agent name, ``role:NAME`` or ``any``."""

    to: str
    text: str
    id: str = field(default_factory=new_task_id)
    state: str = "queued"
    agent: str | None = None
    created: float = field(default_factory=time.time)
    delivered: float | None = None
    finished: float | None = None
    answer: str | None = None
    error: str | None = None
    answer_source: str | None = None
    key: str | None = None  # a client's idempotency key: the same key never makes two tasks
    attempts: int = 0
    notify: bool = False  # post an inbox item when it finishes (answers in the background)
    usage: dict[str, Any] | None = None
    """Tokens the task's turn used (answers.Usage.to_json), for agents with a transcript."""

    @property
    def final(self) -> bool:
        return self.state in TASK_FINAL

    def move(self, state: str, *, now: float | None = None) -> None:
        if state == self.state:
            return
        if state not in TASK_TRANSITIONS[self.state]:
            raise ValueError(f"task {self.id}: {self.state} → {state} is not allowed")
        self.state = state
        now = time.time() if now is None else now
        if state == "delivered":
            self.delivered = now
        if state in TASK_FINAL:
            self.finished = now

    def title(self, width: int = 40) -> str:
        line = " ".join(self.text.split())
        return line if len(line) <= width else line[: width - 1] + "…"

    def to_json(self) -> dict[str, Any]:
        # a shallow copy: every field is a scalar (dataclasses.asdict deep-copies, and this
        # runs several times per task on the event loop)
        data = dict(self.__dict__)
        data["elapsed"] = round((self.finished or time.time()) - self.created, 3)
        return data
