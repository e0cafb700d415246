"""Git worktrees: an agent that edits code gets its own checkout on its own branch.

Opt-in per agent (``worktree = true`` under ``[agents.NAME]``) or per pool role. At spawn
the agent's ``cwd`` (which must be inside a git repository) is replaced by a worktree of
that repository at ``<state dir>/worktrees/<repo>-<hash>/<agent>`` on branch
``staff/<agent>`` (created from the repository's HEAD, or reused if it exists), so two
coding agents never edit the same files. ``worktrees.json`` in the state dir records
them; ``staff worktree clean`` removes the ones whose agents are gone, and never one with
uncommitted changes unless ``--force``. Branches are kept: they may hold commits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from supervisor.agent.agent import AgentSpec
from supervisor.util.atomic import write_json_atomic

BRANCH_PREFIX = "staff/"


class WorktreeError(Exception):
    pass


def git(*args: str, cwd: str | Path) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise WorktreeError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise WorktreeError(f"git {' '.join(args)} took too long") from None
    if proc.returncode != 0:
        raise WorktreeError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def registry_path(home: Path) -> Path:
    return home / "worktrees.json"


def load_registry(home: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(registry_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_registry(home: Path, reg: dict[str, dict[str, Any]]) -> None:
    write_json_atomic(registry_path(home), reg)


def attach(spec: AgentSpec, home: Path) -> str:
    """Create (or reuse) the agent's worktree and point `spec.cwd` into it; returns its path."""
    base = spec.cwd or os.getcwd()
    try:
        top = git("rev-parse", "--show-toplevel", cwd=base).strip()
    except WorktreeError as exc:
        raise WorktreeError(
            f"agent {spec.name}: worktree = true, but {base} is not in a git repository ({exc})"
        ) from None
    repo = Path(top).resolve()
    rel = Path(base).resolve().relative_to(repo)
    digest = hashlib.sha1(str(repo).encode()).hexdigest()[:8]
    path = home / "worktrees" / f"{repo.name}-{digest}" / spec.name
    branch = BRANCH_PREFIX + spec.name
    if not (path / ".git").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "prune", cwd=repo)
        exists = (
            subprocess.run(
                ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                cwd=repo,
                capture_output=True,
            ).returncode
            == 0
        )
        if exists:
            git("worktree", "add", str(path), branch, cwd=repo)
        else:
            git("worktree", "add", "-b", branch, str(path), "HEAD", cwd=repo)
    reg = load_registry(home)
    reg[spec.name] = {"path": str(path), "repo": str(repo), "branch": branch}
    save_registry(home, reg)
    spec.cwd = str(path / rel)
    return str(path)


def dirty(path: str | Path) -> list[str]:
    """Uncommitted changes (and untracked files) in a worktree, as `git status` lines."""
    return [ln for ln in git("status", "--porcelain", cwd=path).splitlines() if ln.strip()]


def clean(
    home: Path, live: set[str], *, force: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Remove the worktrees of agents not in `live`; returns (removed, refused)."""
    reg = load_registry(home)
    removed, refused = [], []
    for agent, wt in sorted(reg.items()):
        if agent in live:
            continue
        entry = {"agent": agent, **wt}
        path = Path(wt["path"])
        if not path.exists():
            with contextlib.suppress(WorktreeError):
                git("worktree", "prune", cwd=wt["repo"])
            del reg[agent]
            removed.append({**entry, "note": "already gone"})
            continue
        changes = dirty(path)
        if changes and not force:
            refused.append({**entry, "changes": changes})
            continue
        args = ["worktree", "remove", *(["--force"] if force else []), str(path)]
        try:
            git(*args, cwd=wt["repo"])
        except WorktreeError as exc:
            refused.append({**entry, "error": str(exc)})
            continue
        del reg[agent]
        removed.append(entry)
    save_registry(home, reg)
    return removed, refused
