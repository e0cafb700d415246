"""Run records: the durable state of a workflow run, one JSON file per run.

The runner rewrites ``<state dir>/runs/<RUN>.json`` atomically after every step change, so a
run whose daemon (or runner) died is continued with ``staff run --resume RUN`` from its last
finished step: finished steps are never redone, a step whose task the daemon still knows is
re-attached, any other unfinished step is submitted again. A run's saved answers go to its
own folder, ``<state dir>/runs/<RUN>/``, unless ``staff run --out DIR`` names another.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from supervisor.client.workflows.model import WorkflowError
from supervisor.util.atomic import write_json_atomic


def runs_dir(home: Path) -> Path:
    return home / "runs"


def new_run_id() -> str:
    return time.strftime("R-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def save_record(home: Path, rec: dict[str, Any]) -> None:
    d = runs_dir(home)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_json_atomic(d / f"{rec['id']}.json", rec)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_record(home: Path, run_id: str) -> dict[str, Any]:
    path = runs_dir(home) / f"{run_id}.json"
    try:
        rec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"unknown run {run_id!r} (`staff runs` lists them)") from None
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"{path}: unreadable run record: {exc}") from None
    if rec.get("state") == "running" and not _pid_alive(rec.get("pid")):
        rec["state"] = "interrupted"
    return rec


def list_runs(home: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(runs_dir(home).glob("R-*.json")):
        with contextlib.suppress(WorkflowError):
            out.append(load_record(home, path.stem))
    out.sort(key=lambda r: r.get("started") or 0)
    return out


def default_out(home: Path, run_id: str) -> Path:
    """Where a run's `save` files go when no --out is given: its own folder in the state dir."""
    return runs_dir(home) / run_id
