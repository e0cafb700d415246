"""Getting an agent's answer out: from Claude's transcript when there is one, else the screen."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def flat(text: str) -> str:
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


PRICES: dict[str, tuple[float, float, float, float]] = {
    "opus": (5.0, 25.0, 0.5, 6.25),
    "sonnet": (3.0, 15.0, 0.3, 3.75),
    "haiku": (1.0, 5.0, 0.1, 1.25),
}
"""List prices in USD per million tokens (input, output, cache read, cache write), by the
first part found in the model's name: `Usage.cost` is an estimate, not a bill."""


@dataclass(frozen=True)
class Usage:
    """Token counts from Claude's ``usage`` records (one per API response, not per block).

    ``context_tokens`` is the prompt size of the latest response (input + cache read +
    cache write): how much of the model's context window the conversation fills now."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    context_tokens: int = 0
    model: str | None = None
    responses: int = 0

    def __add__(self, other: Usage) -> Usage:
        """Sums; the context and model of `other` (the later one) when it has any."""
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            other.context_tokens if other.responses else self.context_tokens,
            other.model if other.responses else self.model,
            self.responses + other.responses,
        )

    def cost(self, prices: dict[str, tuple[float, float, float, float]] | None = None) -> float | None:
        """An estimate in USD at `prices` (default `PRICES`); None when no price fits the model."""
        if not self.model:
            return None
        for part, rate in (PRICES if prices is None else prices).items():
            if part in self.model:
                tokens = (self.input_tokens, self.output_tokens, self.cache_read_tokens,
                          self.cache_write_tokens)
                return round(sum(r * t for r, t in zip(rate, tokens, strict=True)) / 1e6, 6)
        return None

    def to_json(self, window: float | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "context_tokens": self.context_tokens,
            "model": self.model,
            "cost_usd": self.cost(),
        }
        if window:
            data["context_pct"] = round(100.0 * self.context_tokens / window, 1)
        return data


def entry_usage(entry: dict[str, Any]) -> tuple[str, Usage] | None:
    """(message id, usage) of an assistant entry from the API; None for anything else.

    Claude writes one entry per content block, each repeating its response's ``usage``:
    a caller counts each message id once. Its own error entries (model ``<synthetic>``)
    carry zeros and are not responses."""
    if entry.get("type") != "assistant" or entry.get("isApiErrorMessage"):
        return None
    msg = entry.get("message")
    if not isinstance(msg, dict) or msg.get("model") == "<synthetic>":
        return None
    raw = msg.get("usage")
    if not isinstance(raw, dict):
        return None

    def num(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and value > 0 else 0

    fresh, read = num("input_tokens"), num("cache_read_input_tokens")
    write = num("cache_creation_input_tokens")
    usage = Usage(fresh, num("output_tokens"), read, write, fresh + read + write,
                  str(msg.get("model")) if msg.get("model") else None, 1)
    return str(msg.get("id") or entry.get("uuid") or id(entry)), usage


def _is_prompt(entry: dict[str, Any]) -> bool:
    """A user entry that starts a turn (typed text, a slash command), not a tool result,
    a meta line or a compaction summary Claude adds itself."""
    return (entry.get("type") == "user" and not entry.get("isMeta")
            and not entry.get("isCompactSummary") and _user_text(entry) is not None)


@dataclass(frozen=True)
class TranscriptAnswer:
    """One turn as Claude recorded it."""

    text: str | None
    complete: bool  # the turn's closing entry is there (turn_duration, or an API error)
    seen_prompt: bool  # our prompt is in the transcript: an answer is coming
    error: str | None = None
    """The turn ended in an API error: Claude's own line (``API Error: 400 …``)."""
    error_status: int | None = None
    usage: Usage = Usage()
    error_kind: str | None = None
    """Claude's class of the error (its ``error`` field: ``rate_limit``, ``overloaded``…)."""


def _epoch(stamp: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def read_entries(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The complete JSON lines of a transcript from `offset` on, and the offset after the
    last complete line (a line still being written is left for the next read)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            raw = f.read()
    except OSError:
        return [], offset
    end = raw.rfind(b"\n") + 1
    entries: list[dict[str, Any]] = []
    for line in raw[:end].splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            entries.append(obj)
    return entries, offset + end


def join_text(parts: Sequence[str]) -> str | None:
    """The text blocks of one turn as one answer: a single block exactly as recorded,
    several separated by a blank line (as Claude shows them)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return "\n\n".join(p.strip("\n") for p in parts)


def from_transcript(path: Path, offset: int, prompt: str, *, after: float | None = None) -> TranscriptAnswer:
    """The turn Claude recorded for the prompt we typed, read from `offset` on.

    Claude writes one entry per content block and tool results as user entries, so the
    answer is every assistant text block after the last typed prompt that matches ours,
    up to the next typed prompt (never text of two turns). Claude ends a turn with a
    ``system`` entry of subtype ``turn_duration`` (which can land just after its screen
    already shows the prompt again), or with an entry flagged ``isApiErrorMessage`` when
    the API failed it for good (no ``turn_duration`` then): either makes it `complete`.
    With `after` (epoch seconds), prompts recorded before then are not ours.
    """
    entries, _end = read_entries(path, offset)
    want = flat(prompt)[-200:]
    start = None
    for i, entry in enumerate(entries):
        if entry.get("type") == "user":
            text = _user_text(entry)
            if text is not None and want in flat(text):
                when = _epoch(entry.get("timestamp")) if after is not None else None
                if after is None or when is None or when >= after - 1.0:
                    start = i
    if start is None:
        return TranscriptAnswer(None, False, False)
    parts: list[str] = []
    complete = False
    error: str | None = None
    status: int | None = None
    kind: str | None = None
    usage = Usage()
    counted: set[str] = set()
    for entry in entries[start + 1 :]:
        if _is_prompt(entry):
            break  # the next turn
        if entry.get("type") == "system" and entry.get("subtype") == "turn_duration":
            complete = True
            break
        if entry.get("type") != "assistant":
            continue
        content = (entry.get("message") or {}).get("content")
        texts: list[str] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                b["text"] for b in content
                if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
                and b["text"]
            )
        if entry.get("isApiErrorMessage"):
            error = " ".join(" ".join(texts).split()) or "API Error"
            raw_status = entry.get("apiErrorStatus")
            status = raw_status if isinstance(raw_status, int) else None
            kind = entry.get("error") if isinstance(entry.get("error"), str) else None
            complete = True
            break
        parts.extend(texts)
        got = entry_usage(entry)
        if got is not None and got[0] not in counted:
            counted.add(got[0])
            usage = usage + got[1]
    return TranscriptAnswer(join_text(parts), complete, True, error, status, usage, kind)


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [b["text"] for b in content
                if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)]
    return []


def conversation_lines(path: Path) -> list[str]:
    """A transcript as a person reads the conversation: each typed prompt as `❯ text`, each
    text Claude wrote as `● text`, continuation lines indented, a blank line between.

    Why: Claude Code draws on the alternate screen, which keeps no scrollback, so a long
    reply's first lines are on no screen the daemon saw; the transcript has them all."""
    entries, _end = read_entries(path)
    out: list[str] = []
    for entry in entries:
        if _is_prompt(entry):
            mark, texts = "❯", [_PASTE_TAGS.sub("", _user_text(entry) or "").strip("\n")]
        elif entry.get("type") == "assistant":
            mark, texts = "●", _texts((entry.get("message") or {}).get("content"))
        else:
            continue
        for text in texts:
            if not text.strip():
                continue
            first, *rest = text.split("\n")
            out += [f"{mark} {first}", *(f"  {r}" if r else "" for r in rest), ""]
    while out and not out[-1]:
        out.pop()
    return out


class UsageMeter:
    """An agent's usage over its whole life: every response in every transcript it had
    (a ``/clear`` starts a new one), each read once, incrementally."""

    def __init__(self) -> None:
        self.total = Usage()
        self._offsets: dict[Path, int] = {}
        self._counted: dict[Path, set[str]] = {}

    def read(self, path: Path) -> Usage:
        """Count what was appended to `path` since the last read; the running total."""
        entries, end = read_entries(path, self._offsets.get(path, 0))
        self._offsets[path] = end
        counted = self._counted.setdefault(path, set())
        for entry in entries:
            got = entry_usage(entry)
            if got is not None and got[0] not in counted:
                counted.add(got[0])
                self.total = self.total + got[1]
        return self.total

    def reset_context(self) -> None:
        """A new, empty conversation (``/clear``): nothing of the window is used yet."""
        self.total = Usage(
            self.total.input_tokens, self.total.output_tokens, self.total.cache_read_tokens,
            self.total.cache_write_tokens, 0, self.total.model, self.total.responses,
        )


# -- the session Claude is in now ----------------------------------------------------------
def registry_path(env: dict[str, str], pid: int) -> Path:
    """Claude's per-process status file (``sessions/<pid>.json``), there while it runs."""
    return claude_config_dir(env) / "sessions" / f"{pid}.json"


def read_registry(path: Path, attempts: int = 3) -> dict[str, Any] | None:
    """The registry's content, or None when it is missing or never reads whole.

    Claude rewrites it in place, not atomically: a read can catch it empty or with a new
    head on an old tail. Such a read is never used: read again (a rewrite takes well under
    a millisecond), up to `attempts` times."""
    for _ in range(attempts):
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return None


def live_session_id(env: dict[str, str], pid: int) -> str | None:
    """The session the Claude process `pid` is in now (``/clear`` and ``/resume`` change
    it), from its registry; None when it cannot be read whole."""
    data = read_registry(registry_path(env, pid))
    sid = data.get("sessionId") if data else None
    return sid if isinstance(sid, str) and re.fullmatch(r"[0-9a-fA-F-]{8,64}", sid) else None


# -- failures ---------------------------------------------------------------------------------
def screen_error(answer: str | None, patterns: Sequence[str]) -> str | None:
    """The answer read from a screen is the program's error line (the profile's
    `api_error` patterns, e.g. ``^API Error: ``): that line, joined, else None."""
    if not answer:
        return None
    for pat in patterns:
        if re.search(pat, answer, re.MULTILINE):
            return " ".join(answer.split())
    return None


LIMIT_TEXT = re.compile(
    r"(?i)usage limit|rate limit|limit reached|hit your \S+(?: \S+)? limit|regain access|\(429\)|\b429\b"
)
"""An API error that is a usage or rate limit (Claude's line, its message from the API)."""

_RESET_EPOCH = re.compile(r"limit reached\|(\d{9,11})\b")
_RESET_CLOCK = re.compile(
    r"(?i)\bresets?(?: at)? (\d{1,2})(?::(\d{2}))?\s*(am|pm)?(?:\s*\(([A-Za-z_]+(?:/[A-Za-z_+-]+)*)\))?"
)
_RESET_DATE = re.compile(r"(?i)regain access on (\d{4}-\d{2}-\d{2}) at (\d{1,2}:\d{2}) UTC")
_RESET_IN = re.compile(
    r"(?i)(?:try again|retry|resets?) (?:in|after) (\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?)\b"
)


def is_limit(error: str, kind: str | None = None, status: int | None = None) -> bool:
    """The turn ended on a usage or rate limit (not a fault of the task): Claude classes
    it ``rate_limit`` (a 429), or its line says so."""
    return kind == "rate_limit" or status == 429 or bool(LIMIT_TEXT.search(error))


def limit_reset(text: str, now: float) -> float | None:
    """When a limit an API error names resets (epoch seconds), or None when it names none.

    The forms seen from Claude and the API: ``usage limit reached|1795864536`` (epoch
    seconds), ``resets 5pm`` / ``resets 11:15am (Europe/Berlin)`` (the next such time, in
    that zone or the local one), ``regain access on 2026-12-01 at 00:00 UTC`` and
    ``try again in 30s``."""
    m = _RESET_EPOCH.search(text)
    if m:
        return float(m.group(1))
    m = _RESET_DATE.search(text)
    if m:
        try:
            return datetime.fromisoformat(f"{m.group(1)}T{m.group(2).zfill(5)}+00:00").timestamp()
        except ValueError:
            return None
    m = _RESET_IN.search(text)
    if m:
        unit = m.group(2)[0].lower()
        return now + int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[unit]
    m = _RESET_CLOCK.search(text)
    return _next_clock(m, now) if m else None


def _next_clock(m: re.Match[str], now: float) -> float | None:
    """The next time after `now` that a ``resets 5pm (Europe/Berlin)`` match names."""
    hour, minute, half, zone = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or "").lower(), m.group(4)
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    tz = None
    if zone:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
    here = datetime.fromtimestamp(now, tz) if tz else datetime.fromtimestamp(now).astimezone()
    at = here.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at.timestamp() <= now:  # tomorrow's (a naive local time keeps a DST change right)
        at = at + timedelta(days=1) if tz else (at.replace(tzinfo=None) + timedelta(days=1)).astimezone()
    return at.timestamp()


def retry_detail(lines: Sequence[str], pattern: str | None) -> str | None:
    """What the program says while it retries a failed API call by itself (Claude:
    ``✻ API error · retrying in 1s · attempt 2/10``), as a state detail."""
    if not pattern:
        return None
    rx = re.compile(pattern)
    for line in reversed(lines):
        m = rx.search(line)
        if m:
            groups = m.groupdict()
            what = (groups.get("what") or "API error").strip()
            attempt = groups.get("attempt")
            return f"retrying after {what}" + (f" (attempt {attempt})" if attempt else "")
    return None


def from_screen(
    history: Sequence[str],
    lines: Sequence[str],
    prompt: str,
    *,
    prompt_prefix: str,
    answer_prefix: str = "",
    drop: Sequence[str] = (),
    prompt_regex: str | None = None,
    framed: bool = True,
) -> str | None:
    """The text between the submitted prompt and the input box (or the next prompt).

    Only a prompt line showing our text counts (the start of its first line: a multi-line
    prompt is drawn over several rows); never merely the newest prompt, which may be
    another turn's. With an `answer_prefix`, the answer starts at its first marked row,
    so the rest of a multi-line prompt is not part of it. `framed`: the box is the one
    between the last two full rules (Claude's), so the screen ends at the first of them;
    else `lines` end above the box already (Aider draws a rule before every prompt)."""
    view = View(lines)
    rules = view.rule_rows() if framed else []
    visible = list(lines[: rules[-2]]) if len(rules) >= 2 else list(lines)
    allrows = [*history, *visible]
    first_line = next((ln for ln in prompt.splitlines() if ln.strip()), "")
    first = " ".join(first_line.split())[:10]
    start = None
    for i in range(len(allrows) - 1, -1, -1):
        row = " ".join(allrows[i].split())
        if first and row.startswith(prompt_prefix) and (first in row or "[Pasted text" in row):
            start = i
            break
    if start is None:
        return None
    body = allrows[start + 1 :]
    if prompt_regex:  # a shell: stop at the next prompt line
        pat = re.compile(prompt_regex)
        while body and (not body[-1].strip() or pat.search(body[-1].rstrip())):
            body.pop()
    # skip the rest of a multi-line prompt: up to the answer's mark, or its indented lines
    marked = next((j for j, r in enumerate(body) if answer_prefix and r.startswith(answer_prefix)), None)
    if marked is not None:
        body = body[marked:]
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
