"""Random task texts of the kinds that once broke delivery (issue 15), for property tests.

Any Unicode (no surrogates), control characters, box drawing and pasted tables, lines that look
like Claude's spinner, leading `!` `/` `#` `@`, from 1 to 500 lines. Each text ends in a marker
unique to it, so that an answer can be told to be the task's own.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from hypothesis import strategies as st

from supervisor.agent.task import typed_text

FAKE_DIRECTIVE = re.compile(r"\[(delay|stream|ask|crash|hang|flood|exit)\b|^\s*recall\s*$", re.I | re.M)
"""Words the fake agent obeys (fixtures/fake_claude.py): not what this test is about."""

_line = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),      # any Unicode
    st.text(st.characters(max_codepoint=0x9F), max_size=40),                 # C0/C1 controls
    st.integers(8, 140).map(lambda n: "─" * n),                              # a rule
    st.integers(1, 6).map(lambda n: "| cell " * n + "|"),                    # a table row
    st.sampled_from(["* Thinking…", "✶ Forming… (3s · ↓ 12 tokens)", "· Cogitating…",
                     "✻ Worked for 6s · done 6:38 AM", "● done", "❯ ", "esc to interrupt",
                     "Do you want to proceed?", " ❯ 1. Yes", "[Pasted text #1 +11 lines]"]),
)
_lead = st.sampled_from(["", "", "!", "/", "#", "@", " !", "  /clear ", "!ls -la "])


@st.composite
def task_texts(draw: Any) -> str:
    n = draw(st.one_of(st.integers(1, 8), st.integers(9, 60), st.integers(61, 500)))
    lines = draw(st.lists(_line, min_size=1, max_size=min(n, 40)))
    if n > len(lines):  # a long paste: the drawn lines, repeated
        lines = (lines * (n // len(lines) + 1))[:n]
    text = draw(_lead) + "\n".join(lines)
    return f"{text} [id:{secrets.token_hex(4)}]"


def marker(text: str) -> str:
    m = re.search(r"\[id:[0-9a-f]{8}\]$", text)
    assert m is not None
    return m.group(0)


def typeable(text: str) -> bool:
    """The text types as something: it is not refused at submit."""
    return bool(typed_text(text).strip())
