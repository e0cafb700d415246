"""Gemini CLI's chat files: ``<home>/.gemini/tmp/<project>/chats/session-<time>-<id8>.jsonl``
(0.61), one per session, a JSON line per record. The first names the session
(``sessionId``) and its directory (``projectHash``: the SHA-256 of the working directory);
then each message as ``{"id", "type": "user"|"gemini"|"info"|"error", "content", …}`` (a
model message is written once its stream ended, again with ``toolCalls`` when it asked for
tools), ``{"$set": …}`` metadata updates and ``{"$rewindTo": id}`` after a rewind.
``<home>`` is ``$GEMINI_CLI_HOME``, else ``$HOME``.
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path
from typing import Any

from supervisor.detect.answers import TranscriptAnswer, flat, read_entries
from supervisor.detect.sessionfiles.recent import written_since


def home(env: dict[str, str]) -> Path:
    base = env.get("GEMINI_CLI_HOME") or env.get("HOME") or os.path.expanduser("~")
    return Path(base) / ".gemini"


def chats(env: dict[str, str], _cwd: str, since: float) -> list[Path]:
    """The chat files written to since `since` (epoch seconds), newest first. Every project's
    folder is looked at (its name is a short form of the directory, kept in projects.json);
    `read_turn` tells ours by the hash of the directory."""
    return written_since((home(env) / "tmp").glob("*/chats/session-*.jsonl"), since)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return ""


def read_turn(path: Path, prompt: str, cwd: str, skip: frozenset[str] = frozenset()) -> TranscriptAnswer:
    """The turn Gemini recorded for the prompt we typed, in the chat file at `path`.

    The turn is over when a model message with text asks for no tool (its text is the
    answer, exactly as the model sent it), or an ``info``/``error`` message follows our prompt (a cancel, an
    API error: no answer). A chat of another directory is not ours, nor one of a session in
    `skip` (another agent's)."""
    if skip and session_id(path) in skip:
        return TranscriptAnswer(None, False, False)
    entries, _end = read_entries(path, 0)
    if entries and entries[0].get("projectHash") not in (None, _project_hash(cwd)):
        return TranscriptAnswer(None, False, False)
    messages: dict[str, dict[str, Any]] = {}
    for entry in entries:  # a message written again (with its toolCalls) replaces itself
        if isinstance(entry.get("id"), str) and "type" in entry:
            messages[entry["id"]] = entry
    ordered = list(messages.values())
    want = flat(prompt)[-200:]
    start = None
    for i, entry in enumerate(ordered):
        if entry.get("type") == "user" and want and want in flat(_text(entry.get("content"))):
            start = i
    if start is None:
        return TranscriptAnswer(None, False, False)
    for entry in ordered[start + 1 :]:
        kind, text = entry.get("type"), _text(entry.get("content"))
        if kind == "user" and text:
            break  # the next prompt (a tool's result has no text)
        if kind == "gemini" and text and not entry.get("toolCalls"):
            # (one with no text yet is a tool request whose toolCalls are written next)
            return TranscriptAnswer(text, True, True)
        if kind == "error":
            return TranscriptAnswer(None, True, True, error=_text(entry.get("content")) or "error")
        if kind == "info":
            return TranscriptAnswer(None, False, True)
    return TranscriptAnswer(None, False, True)


def _project_hash(cwd: str) -> str:
    return hashlib.sha256(cwd.encode()).hexdigest()


def session_id(path: Path) -> str | None:
    """The ``sessionId`` of the chat's first record (what ``gemini --resume <id>`` takes)."""
    entries, _end = read_entries(path, 0)
    first = entries[0] if entries else {}
    value = first.get("sessionId")
    return value if isinstance(value, str) else None


def has_session(env: dict[str, str], cwd: str, session: str) -> bool:
    """Gemini keeps the session for this directory: ``gemini --resume <id>`` of one it has not
    prints ``Error resuming session: No previous sessions found for this project.`` and exits
    (0.61.0)."""
    pattern = f"*/chats/session-*-{glob.escape(session[:8])}.jsonl"
    for path in (home(env) / "tmp").glob(pattern):
        entries, _end = read_entries(path, 0)
        first = entries[0] if entries else {}
        if first.get("sessionId") == session and first.get("projectHash") in (None, _project_hash(cwd)):
            return True
    return False
