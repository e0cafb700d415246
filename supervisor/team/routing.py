"""Where a task for ``any`` or ``role:NAME`` goes when the team spans hosts: the one rule.

A hub (daemon/hosts.py) sees its own agents and each host's, and places such a task, when it
is submitted, on one *location*: here, or one host (whose daemon then picks the agent among
its own, as this one does). Every way in — `staff ask`/`submit`, fan-out, workflows, the hook,
MCP — submits through the daemon, so this is the only place the choice is made. The rule:

1. a reachable location before one whose link is down (a host that is down is chosen only
   when no other location has the role; the task is then held for it);
2. a location with an idle agent (nothing queued for it) before one without;
3. then one whose pool may still start an agent for the role (its `max` not reached there);
4. then the fewest tasks waiting per agent;
5. ties: here (no ssh hop), then the host with more idle agents, then the team file's order.

A task is placed once: it does not move to another host if an agent elsewhere frees first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.states import DOWN

if TYPE_CHECKING:
    from supervisor.team.supervisor import Supervisor

LOCAL = ""
"""The location of this daemon's own agents (a host's name otherwise)."""
FREE_STATES = frozenset({"idle", "starting"})
"""An agent in these, with no task of its own, is free (the pool's count too: team/pool.py)."""


def fits(to: str, name: str, role: str | None, by_name_only: bool = False) -> bool:
    """Whether a task addressed `to` may be given to the agent `name` (of `role`)."""
    if to == name:
        return True
    if by_name_only:
        return False
    return to == "any" or (to.startswith("role:") and role == to[5:])


@dataclass
class Candidate:
    """One location that could take a task for the target, as the hub sees it now."""

    where: str  # LOCAL, or a host's name
    reachable: bool
    agents: int  # agents there that fit the target and are not down
    free: int  # of those, idle (or starting) with nothing claimed on them
    waiting: int  # tasks queued there that those agents could take
    room: int = 0  # agents a pool there may still start for the role
    order: int = 0  # the host's place in the team file (here: 0)

    @property
    def idle(self) -> int:
        """Idle agents left once the tasks already waiting there have taken theirs."""
        return self.free - self.waiting

    def rank(self) -> tuple[Any, ...]:
        """Higher is better (see the module's rule)."""
        spare = self.idle
        per_agent = (self.waiting - self.free - self.room + 1) / max(1, self.agents + self.room)
        return (
            self.reachable,
            spare > 0,
            spare + self.room > 0,
            -max(0.0, per_agent) if spare + self.room <= 0 else 0.0,
            self.where == LOCAL,
            spare,
            -self.order,
        )


def choose(candidates: Iterable[Candidate]) -> Candidate | None:
    """The location a task goes to, or None when no location has an agent (or room) for it."""
    best: Candidate | None = None
    for c in candidates:
        if c.agents <= 0 and c.room <= 0:
            continue
        if best is None or c.rank() > best.rank():
            best = c
    return best


def waiting_for(queued: Iterable[str], rows: list[tuple[str, str | None, bool]]) -> int:
    """How many of the targets in `queued` fit one of the agents (name, role, by_name_only)."""
    return sum(1 for to in queued if any(fits(to, *row) for row in rows))


def local(sup: Supervisor, to: str) -> Candidate:
    """This daemon's own agents as a candidate for a task addressed `to` (``any``/``role:X``)."""
    fitting = [
        a for a in sup.agents.values()
        if fits(to, a.name, a.spec.role, a.spec.by_name_only) and a.state not in DOWN
        and not sup.stopping_agent(a.name)
    ]
    free = sum(
        1 for a in fitting
        if a.state in FREE_STATES and a.current_task is None and not sup.delivering(a.name)
        and a.limited_until is None and a.draft is None
    )
    rows = [(a.name, a.spec.role, a.spec.by_name_only) for a in fitting]
    waiting = waiting_for((t.to for t in sup.queue), rows) if rows else 0
    room = 0
    if to.startswith("role:"):
        room = sum(ext.room(to[5:]) for ext in sup.extensions)
    return Candidate(LOCAL, True, len(fitting), free, waiting, room)
