"""Getting an agent's answer out: from Claude's transcript when there is one, else the screen."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from supervisor.detect.rules import View


def claude_config_dir(env: dict[str, str]) -> Path:
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"])
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude"


def transcript_path(env: dict[str, str], cwd: str, session_id: str) -> Path:
    """Where Claude Code keeps a session's JSONL: the cwd with non-alphanumerics as '-'."""
    munged = re.sub(r"[^A-Za-z0-9]", "-", cwd)
    return claude_config_dir(env) / "projects" / munged / f"{session_id}.jsonl"


_PASTE_TAGS = re.compile(r"</?pasted_content[^>]*>")


def _flat(text: str) -> str:
    """Whitespace-normalised, without the tags Claude wraps a multi-line paste in."""
    return " ".join(_PASTE_TAGS.sub(" ", text).split())


def _user_text(entry: dict[str, Any]) -> str | None:
    """The text of a typed prompt (not a tool result), or None."""
    msg = entry.get("message") or {}
    content = msg.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if texts and not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return "\n".join(texts)
    return None


@dataclass(frozen=True)
class TranscriptAnswer:
    text: str | None
    complete: bool  # the turn's closing entry is there
    seen_prompt: bool  # our prompt is in the transcript: an answer is coming


def _epoch(stamp: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def from_transcript(path: Path, offset: int, prompt: str, *, after: float | None = None) -> TranscriptAnswer:
    """The assistant's text after the prompt we typed, read from `offset` on.

    Claude writes one entry per content block and tool results as user entries, so the
    answer is every assistant text block after the last typed prompt that matches ours.
    Claude ends each turn with a ``system`` entry of subtype ``turn_duration``, which can
    land just after its screen already shows the prompt again: `complete` says it is there.
    With `after` (epoch seconds), prompts recorded before then are not ours.
    """
    try:
        with path.open("rb") as f:
            f.seek(offset)
            raw = f.read()
    except OSError:
        return TranscriptAnswer(None, False, False)
    entries: list[dict[str, Any]] = []
    for line in raw.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if isinstance(obj, dict):
            entries.append(obj)
    want = _flat(prompt)[-200:]
    start = None
    for i, entry in enumerate(entries):
        if entry.get("type") == "user":
            text = _user_text(entry)
            if text is not None and want in _flat(text):
                when = _epoch(entry.get("timestamp")) if after is not None else None
                if after is None or when is None or when >= after - 1.0:
                    start = i
    if start is None:
        return TranscriptAnswer(None, False, False)
    parts: list[str] = []
    complete = False
    for entry in entries[start + 1 :]:
        if entry.get("type") == "system" and entry.get("subtype") == "turn_duration":
            complete = True
        if entry.get("type") != "assistant":
            continue
        content = (entry.get("message") or {}).get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                b["text"]
                for b in content
                if isinstance(b, dict) and b.get("type") == "text" and b.get("text")
            )
    text = "\n\n".join(p.strip("\n") for p in parts) if parts else None
    return TranscriptAnswer(text, complete, True)


def from_screen(
    history: Sequence[str],
    lines: Sequence[str],
    prompt: str,
    *,
    prompt_prefix: str,
    answer_prefix: str = "",
    drop: Sequence[str] = (),
    prompt_regex: str | None = None,
    loose: bool = False,
) -> str | None:
    """The text between the submitted prompt and the input box (or the next prompt).

    Only a prompt line showing our text counts, unless `loose` (then the newest prompt)."""
    view = View(lines)
    rules = view.rule_rows()
    visible = list(lines[: rules[-2]]) if len(rules) >= 2 else list(lines)
    allrows = [*history, *visible]
    first = " ".join(prompt.split())[:30]
    start = None
    for i in range(len(allrows) - 1, -1, -1):
        row = allrows[i].strip()
        if row.startswith(prompt_prefix) and (loose or first[:10] in row or "[Pasted text" in row):
            start = i
            break
    if start is None:
        return None
    body = allrows[start + 1 :]
    if prompt_regex:  # a shell: stop at the next prompt line
        pat = re.compile(prompt_regex)
        while body and (not body[-1].strip() or pat.search(body[-1].rstrip())):
            body.pop()
    # skip the rest of a multi-line prompt (continuation lines are indented)
    while body and body[0].startswith("  ") and not answer_prefix:
        body.pop(0)
    drops = [re.compile(d) for d in drop]
    out: list[str] = []
    for row in body:
        if any(d.search(row) for d in drops):
            continue
        s = row
        if answer_prefix and s.startswith(answer_prefix):
            s = s[len(answer_prefix) :].lstrip(" ")
        elif s.startswith("  "):
            s = s[2:]
        out.append(s.rstrip())
    text = "\n".join(out).strip("\n")
    return text or None
