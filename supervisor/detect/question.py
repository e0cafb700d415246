"""The question a blocked agent asks, read off its screen: what it asks and its numbered choices.

Why: a person answering from a phone (the web app, an ntfy push) needs the question and its
choices as text and buttons, not a screenshot. Claude Code draws a permission dialog below its
last full rule: a title, the command, `Do you want to proceed?`, then `❯ 1. Yes`, `2. …`; the
key that picks a choice is its number. Anything else (no numbered choices) gives no choices and
the last lines as the question, so the person still sees what is asked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

_CHOICE = re.compile(r"^\s*(?:[❯›>]\s*)?(\d{1,2})[.)]\s+(\S.*?)\s*$")
_SEPARATOR = re.compile(r"^[\s╌─━┄┈-]*$")
MAX_CONTEXT = 8


@dataclass(frozen=True)
class Question:
    """`text`: the line asked (`Do you want to proceed?`); `context`: the lines above it (the
    tool and its command); `choices`: (key, label) pairs in screen order."""

    text: str
    context: tuple[str, ...] = ()
    choices: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        """Names this question as shown (context, text, choices): an answer given to one
        question is refused when the screen has moved on to another, even one worded alike."""
        return hashlib.sha256(self.summary().encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "context": list(self.context),
            "choices": [{"key": k, "label": label} for k, label in self.choices],
        }

    def summary(self) -> str:
        """One text for a push message: the context, the question, the choices."""
        lines = [*self.context, self.text, *(f"{k}. {label}" for k, label in self.choices)]
        return "\n".join(line for line in lines if line)


def parse_question(region: str | None) -> Question | None:
    """The question in `region` (the text below the last rule), or None when there is none."""
    if not region or not region.strip():
        return None
    lines = [line.rstrip() for line in region.splitlines()]
    first = next((i for i, line in enumerate(lines) if _CHOICE.match(line)), None)
    if first is None:
        body = [line.strip() for line in lines if line.strip() and not _SEPARATOR.match(line)]
        return Question(text=body[-1], context=tuple(body[-MAX_CONTEXT - 1 : -1])) if body else None
    choices: list[tuple[str, str]] = []
    expect = 1
    for line in lines[first:]:
        m = _CHOICE.match(line)
        if m and int(m.group(1)) == expect:
            choices.append((m.group(1), m.group(2)))
            expect += 1
        elif line.strip() and choices and not m and line.startswith("     "):
            key, label = choices[-1]  # a long label wrapped onto the next row
            choices[-1] = (key, f"{label} {line.strip()}")
        else:
            break
    above = [line.strip() for line in lines[:first] if line.strip() and not _SEPARATOR.match(line)]
    text = above[-1] if above else ""
    return Question(text=text, context=tuple(above[-MAX_CONTEXT - 1 : -1]), choices=tuple(choices))
