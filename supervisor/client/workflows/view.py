"""The live view of a workflow run on a terminal: the DAG as a table (state, agent, time)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from supervisor.client.workflows.model import Workflow
from supervisor.client.workflows.report import first_line

STYLE = {
    "pending": "dim",
    "queued": "blue",
    "delivered": "blue",
    "working": "yellow",
    "blocked": "bold red",
    "done": "green",
    "failed": "bold red",
    "skipped": "dim",
    "cancelled": "magenta",
    "interrupted": "magenta",
    "retry": "yellow",
}


class LiveView:
    """A rich Live table, updated on each runner event (and its clock column each second)."""

    def __init__(self, wf: Workflow, console: Console | None = None) -> None:
        self.wf = wf
        self.console = console or Console(stderr=True)
        self.rows: dict[str, dict[str, Any]] = {n: {"state": "pending"} for n in wf.order()}
        self.header = f"{wf.name}"
        self.footer = ""
        self.live = Live(self, console=self.console, refresh_per_second=2, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def __rich__(self) -> Group:
        table = Table(title=self.header, title_justify="left", expand=False)
        widths = {"step": (4, 20), "needs": (0, 20), "state": (9, 11), "agent": (5, 14), "task": (10, 10)}
        for col in ("step", "needs", "state", "agent", "task", "time", "note"):
            lo, hi = widths.get(col, (4, 60))
            table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=lo, max_width=hi)
        now = time.time()
        for name, row in self.rows.items():
            start, end = row.get("started"), row.get("finished")
            elapsed = f"{(end or now) - start:.0f}s" if start else ""
            state = row["state"]
            table.add_row(
                escape(name),
                escape(",".join(self.wf.steps[name].needs)),
                f"[{STYLE.get(state, '')}]{state}[/]",
                escape(row.get("agent") or ""),
                row.get("task") or "",
                elapsed,
                escape(row.get("note") or ""),
            )
        return Group(table, Text(self.footer))

    def __call__(self, ev: dict[str, Any]) -> None:
        kind = ev["kind"]
        if kind == "run_start":
            self.header = f"{ev['workflow']} — {ev['run']}"
            for n in ev.get("done", []):
                self.rows[n].update(state="done", note="(earlier)")
        elif kind == "run_end":
            self.footer = f"{ev['state']} in {ev['elapsed']:.1f}s" + (
                f": {ev['message']}" if ev.get("message") else ""
            )
        elif kind == "step":
            row = self.rows[ev["step"]]
            state = ev["state"]
            if state == "queued":
                row.update(started=row.get("started") or ev["time"], finished=None, task=ev["task"], note="")
                if ev.get("round", 1) > 1:
                    row["note"] = f"round {ev['round']}"
            if ev.get("agent"):
                row["agent"] = ev["agent"]
            if state in ("done", "failed", "skipped", "cancelled"):
                row["finished"] = ev["time"]
            if state == "done":
                row["note"] = first_line(ev.get("answer", ""), 50)
            elif ev.get("message"):
                row["note"] = first_line(ev["message"], 50)
            if state in ("loop", "loop_end", "stop", "reattached"):
                state = "done" if state != "reattached" else "working"
            if state == "on_failure":  # it failed; the run goes on as the step says
                state, row["note"] = "failed", first_line(f"on_failure: {ev.get('message', '')}", 50)
            if state == "retry":
                row["started"] = None
            row["state"] = state
        self.live.refresh()
