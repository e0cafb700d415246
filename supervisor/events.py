"""What an agent tells its team: one frozen dataclass per kind of change.

The team (`team/supervisor.py`) dispatches on the type; what it publishes to clients is
its own JSON, built from these. The task an event carries is generic here (`TaskMoved[T]`):
this module sits below the agent layer, which defines the task record, and imports only
the states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from supervisor.states import AgentState

T = TypeVar("T")


@dataclass(frozen=True)
class Spawned:
    """The program runs: started by us, or adopted from the keeper after a daemon restart."""

    pid: int | None
    adopted: bool = False


@dataclass(frozen=True)
class StateChanged:
    """The one door, `Agent.change_state()`, let the agent move."""

    old: AgentState
    new: AgentState
    reason: str


@dataclass(frozen=True)
class TaskMoved(Generic[T]):
    """The task in flight changed: delivered, working, blocked, put back, or ended."""

    task: T


@dataclass(frozen=True)
class StallChanged:
    """A working agent went quiet for `quiet` seconds, or spoke again."""

    stalled: bool
    quiet: float


@dataclass(frozen=True)
class DraftChanged:
    """A person's unsent text appeared in the input box, or left it (None)."""

    draft: str | None


@dataclass(frozen=True)
class SessionChanged:
    """The program moved to another conversation by itself (Claude's `/clear`, `/resume`):
    `new` is the live session id from now on (status, journal, a restart's `--resume`)."""

    old: str
    new: str


@dataclass(frozen=True)
class BackgroundChanged:
    """How much work the program still runs in the background after its turn (Claude's
    footer: `· 1 shell ·`) changed; 0 when the last of it ended."""

    count: int


@dataclass(frozen=True)
class LimitChanged:
    """The program hit a usage or rate limit: no task goes in before `until` (epoch
    seconds), when the hold lifts by itself; None when it lifted. `reason` is the
    program's own line (``API Error: … usage limit reached…``)."""

    until: float | None
    reason: str | None = None


@dataclass(frozen=True)
class DetailChanged:
    """What the state alone does not say, e.g. `retrying after API error (attempt 2/10)`
    while working; None when there is nothing to add."""

    detail: str | None
