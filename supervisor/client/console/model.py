"""The console's model: which agents are shown where and which one has the keyboard.

No UI here (the view, app.py, reads it), so the arrangement rules are tested directly:
one agent full size, or a split of 2–4 panes; zoom shows the focused pane alone; switching
to an agent that is not shown puts it in the focused pane's place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supervisor.client.statusline import state_text, usage_text
from supervisor.states import AgentState

MAX_PANES = 4
STATES = tuple(AgentState)  # in the order the counts line shows them


@dataclass
class AgentInfo:
    """What the sidebar shows of an agent (from the daemon's status and events)."""

    name: str
    state: str = "starting"
    task: str | None = None
    task_title: str | None = None
    queue: int = 0
    error: str | None = None
    draft: str | None = None
    """Unsent text a person left in the agent's input box (its tasks wait for it)."""
    notes: list[str] = field(default_factory=list)
    """What the state alone does not say (``limited until 11:15``, ``background: 1``), then the
    usage (``48.2k 24% $0.31``): one sidebar line each."""

    def update(self, status: dict[str, Any]) -> None:
        self.state = status.get("status", self.state)
        self.task = status.get("current_task")
        self.task_title = status.get("current_task_title")
        self.queue = int(status.get("queue") or 0)
        self.error = status.get("error") or status.get("exit")
        self.draft = status.get("draft")
        extra = state_text(status).split(" · ")[1:]  # the state itself has its badge
        self.notes = [n for n in (*extra, usage_text(status.get("usage"))) if n]


@dataclass
class Arrangement:
    agents: dict[str, AgentInfo] = field(default_factory=dict)
    focus: str | None = None
    panes: list[str] = field(default_factory=list)
    """The agents in the main area, in order (one when not split)."""
    zoom: bool = False

    # -- the team --------------------------------------------------------------------------
    def rename(self, old: str, new: str) -> None:
        """An agent got another name: same place in the list, the panes and the focus."""
        if old not in self.agents or new in self.agents:
            return
        self.agents = {(new if k == old else k): v for k, v in self.agents.items()}
        self.agents[new].name = new
        self.panes = [new if p == old else p for p in self.panes]
        if self.focus == old:
            self.focus = new

    def set_team(self, statuses: list[dict[str, Any]]) -> None:
        seen = []
        for st in statuses:
            name = st["agent_id"]
            info = self.agents.get(name) or AgentInfo(name)
            info.update(st)
            self.agents[name] = info
            seen.append(name)
        for name in list(self.agents):
            if name not in seen:
                del self.agents[name]
        self.panes = [p for p in self.panes if p in self.agents]
        if self.focus not in self.agents:
            self.focus = None
        if self.focus is None and seen:
            self.focus = seen[0]
        if not self.panes and self.focus is not None:
            self.panes = [self.focus]

    @property
    def names(self) -> list[str]:
        return list(self.agents)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in STATES}
        for info in self.agents.values():
            out[info.state] = out.get(info.state, 0) + 1
        return out

    # -- what is shown -------------------------------------------------------------------------
    def visible(self) -> list[str]:
        if self.focus is None:
            return []
        if self.zoom or len(self.panes) <= 1:
            return [self.focus]
        return list(self.panes)

    @property
    def split(self) -> bool:
        return len(self.panes) > 1

    # -- moving focus ---------------------------------------------------------------------------
    def select(self, name: str) -> None:
        """Give `name` the keyboard; if it is not shown, it takes the focused pane's place."""
        if name not in self.agents:
            raise KeyError(name)
        if name not in self.panes:
            if self.focus in self.panes:
                self.panes[self.panes.index(self.focus)] = name
            else:
                self.panes = [name]
        self.focus = name

    def select_index(self, n: int) -> bool:
        """1-based, as the sidebar numbers them."""
        names = self.names
        if not 1 <= n <= len(names):
            return False
        self.select(names[n - 1])
        return True

    def step(self, delta: int) -> None:
        names = self.names
        if not names:
            return
        i = names.index(self.focus) if self.focus in names else 0
        self.select(names[(i + delta) % len(names)])

    def next_pane(self) -> None:
        """Cycle the keyboard among the panes shown (no change of what is shown)."""
        vis = self.visible()
        if len(vis) > 1 and self.focus in vis:
            self.focus = vis[(vis.index(self.focus) + 1) % len(vis)]

    # -- splitting -------------------------------------------------------------------------------
    def split_add(self) -> str | None:
        """Show one more agent next to the others (the next one not shown); returns it."""
        self.zoom = False
        if len(self.panes) >= MAX_PANES:
            return None
        names = self.names
        start = names.index(self.focus) if self.focus in names else 0
        for k in range(1, len(names) + 1):
            cand = names[(start + k) % len(names)]
            if cand not in self.panes:
                self.panes.append(cand)
                return cand
        return None

    def unsplit(self) -> None:
        self.zoom = False
        self.panes = [self.focus] if self.focus is not None else []

    def toggle_zoom(self) -> None:
        self.zoom = not self.zoom and self.split

    # -- kept across re-attach --------------------------------------------------------------------
    def layout(self) -> dict[str, Any]:
        """What is shown where, to be put back by the next console (`restore`)."""
        return {"panes": list(self.panes), "focus": self.focus, "zoom": self.zoom}

    def restore(self, saved: Any) -> None:
        """Put back a `layout()`, leaving out agents no longer in the team."""
        if not isinstance(saved, dict):
            return
        panes = [p for p in saved.get("panes") or [] if isinstance(p, str) and p in self.agents]
        panes = list(dict.fromkeys(panes))[:MAX_PANES]
        focus = saved.get("focus")
        if not panes:
            return
        self.panes = panes
        self.focus = focus if focus in panes else panes[0]
        self.zoom = bool(saved.get("zoom")) and len(panes) > 1
