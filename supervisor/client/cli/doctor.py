"""`staff doctor`: are the agent programs the profiles were written from the ones installed,
and has any rule of a running agent's profile stopped matching (a new release moved a line)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from supervisor.client.cli.common import client, daemon_alive
from supervisor.detect.rules import RuleError, load_profile

PROGRAMS = {name: name for name in ("claude", "codex", "gemini", "opencode", "aider")}
"""Command → the shipped profile made for it."""
QUIET_AFTER = 3600.0
"""A rule that decided nothing for this long while its agent ran is reported."""


def program_report(command: str, profile_name: str) -> dict[str, Any]:
    """Where `command` is, what version it says, and whether the shipped profile is from it."""
    path = shutil.which(command)
    try:
        profile_version: str | None = load_profile(profile_name).version
    except RuleError:
        profile_version = None
    row: dict[str, Any] = {"program": command, "path": path, "version": None,
                           "profile": profile_name if profile_version is not None else None,
                           "profile_version": profile_version, "matches": None}
    if path is None:
        return row
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20, check=False)
        out = (done.stdout or done.stderr).strip().splitlines()
        row["version"] = out[0].strip() if out else None
    except (OSError, subprocess.SubprocessError) as exc:
        row["version"] = None
        row["error"] = f"{command} --version failed: {exc}"
    if row["version"] and profile_version:
        row["matches"] = profile_version in row["version"].split() or row["version"].endswith(profile_version)
    return row


def quiet(rule_ids: list[str], hits: dict[str, float], up_since: Any, now: float) -> list[str] | None:
    """The rules that decided nothing in the last hour, or None while the agent has run
    less than an hour (every rule is quiet for a while after a start)."""
    if not isinstance(up_since, int | float) or now - up_since < QUIET_AFTER:
        return None
    return [r for r in rule_ids if now - hits.get(r, 0.0) > QUIET_AFTER]


def quiet_rules(home: Path, now: float) -> list[dict[str, Any]]:
    """Per agent of the running daemon: the rules of its profile that decided nothing in the
    last hour of its life (all of them while it has run less than that are not reported)."""
    out: list[dict[str, Any]] = []
    with client(home) as c:
        agents = c.call("status")["agents"]
        for a in agents:
            ex = c.call("explain", agent=a["agent_id"])
            ids = [r["id"] for r in ex["rules"]]
            found = quiet(ids, ex.get("rule_hits") or {}, ex.get("up_since"), now)
            if found is not None:
                out.append({"agent": a["agent_id"], "profile": ex["profile"], "quiet_rules": found})
    return out


def cmd_doctor(args: argparse.Namespace, home: Path) -> int:
    rows = [program_report(cmd, prof) for cmd, prof in PROGRAMS.items()]
    quiet = quiet_rules(home, time.time()) if daemon_alive(home) else None
    if args.json:
        print(json.dumps({"programs": rows, "agents": quiet}, indent=1))
        return 0
    for r in rows:
        if r["path"] is None:
            print(f"  {r['program']:<9} not on PATH")
            continue
        made = r["profile_version"]
        verdict = ("profile made from this version" if r["matches"]
                   else f"profile made from {made}: check `staff explain` on its screens" if made
                   else "no shipped profile")
        print(f"  {r['program']:<9} {r['version'] or '(no version)'}  {r['path']}  — {verdict}")
    if quiet is None:
        print("no daemon running: rules are checked against a running team's agents")
    for q in quiet or []:
        if q["quiet_rules"]:
            print(f"  agent {q['agent']} ({q['profile']}): matched nothing in the last hour: "
                  + ", ".join(q["quiet_rules"]))
        else:
            print(f"  agent {q['agent']} ({q['profile']}): every rule matched in the last hour")
    return 0
