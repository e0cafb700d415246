"""Codex CLI's rollout files: ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``,
one per session, a JSON line per event; the first is ``session_meta`` with the session's id
and directory."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from supervisor.detect.answers import TranscriptAnswer, flat, read_entries
from supervisor.detect.sessionfiles.recent import written_since


def home(env: dict[str, str]) -> Path:
    if env.get("CODEX_HOME"):
        return Path(env["CODEX_HOME"])
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".codex"


def rollouts(env: dict[str, str], _cwd: str, since: float) -> list[Path]:
    """Codex's session files (``sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``) written to
    since `since` (epoch seconds), newest first: a turn is recorded in one of them."""
    return written_since((home(env) / "sessions").glob("*/*/*/rollout-*.jsonl"), since)


def read_turn(path: Path, prompt: str, cwd: str, skip: frozenset[str] = frozenset()) -> TranscriptAnswer:
    """The turn Codex recorded for the prompt we typed, in the rollout at `path`.

    Codex records the prompt as a user ``response_item`` and ends the turn with an
    ``event_msg`` of type ``task_complete`` whose ``last_agent_message`` is the answer
    exactly as the model sent it (``turn_aborted`` when it was interrupted: no answer). A
    rollout of another directory is not ours, nor one of a session in `skip` (another
    agent's: two agents in one directory given the same text)."""
    if skip and session_id(path) in skip:
        return TranscriptAnswer(None, False, False)
    entries, _end = read_entries(path, 0)
    want = flat(prompt)[-200:]
    start = None
    for i, entry in enumerate(entries):
        payload = entry.get("payload") or {}
        if entry.get("type") == "session_meta" and payload.get("cwd") not in (None, cwd):
            return TranscriptAnswer(None, False, False)
        item = entry.get("type") == "response_item" and payload.get("type") == "message"
        if item and payload.get("role") == "user":
            content = payload.get("content")
            text = "".join(
                str(c.get("text", "")) for c in content if isinstance(c, dict)
            ) if isinstance(content, list) else ""
            if want and want in flat(text):
                start = i
    if start is None:
        return TranscriptAnswer(None, False, False)
    for entry in entries[start + 1 :]:
        payload = entry.get("payload") or {}
        kind = payload.get("type") if entry.get("type") == "event_msg" else None
        if kind == "task_complete":
            message = payload.get("last_agent_message")
            return TranscriptAnswer(message if isinstance(message, str) else "", True, True)
        if kind == "turn_aborted":
            return TranscriptAnswer(None, False, True)
    return TranscriptAnswer(None, False, True)


def session_id(path: Path) -> str | None:
    """The id in the rollout's ``session_meta`` (what ``codex resume <id>`` takes)."""
    entries, _end = read_entries(path, 0)
    for entry in entries[:3]:
        payload = entry.get("payload") or {}
        if entry.get("type") == "session_meta" and isinstance(payload.get("id"), str):
            return str(payload["id"])
    return None


def has_session(env: dict[str, str], cwd: str, session: str) -> bool:
    """Codex can resume the session here without asking: its rollout is there (``codex resume
    <id>`` of one it lost prints ``No saved session found with ID …`` and exits), and the last
    directory it recorded is `cwd` (else it first asks which directory to use, a dialog of its
    own: 0.171.0)."""
    pattern = f"*/*/*/rollout-*-{glob.escape(session)}.jsonl"
    for path in (home(env) / "sessions").glob(pattern):
        last = None
        for entry in read_entries(path, 0)[0]:
            if entry.get("type") in ("session_meta", "turn_context"):
                last = (entry.get("payload") or {}).get("cwd", last)
        return last is None or os.path.realpath(str(last)) == os.path.realpath(cwd)
    return False
