"""The answer-source figure: over 60 real Claude Code turns of mixed length and pace, where
each answer came from (target: every one from the transcript, byte for byte).

Slow (a few minutes): run with `pytest -m soak -s tests/e2e/test_claude_answer_source.py`;
it prints `answer_source over N turns: {...}`.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from fixtures.mock_anthropic import reply_text
from tests.conftest import staff
from tests.e2e.test_claude_answers import claude_team

pytestmark = [pytest.mark.claude, pytest.mark.soak, pytest.mark.timeout(1800)]


def turns() -> list[tuple[str, str | None]]:
    """(prompt, expected answer or None for a tool turn) in a mixed order: one-liners,
    instant replies, 2-60 lines, markdown, a stall mid-reply, a slow start, a tool."""
    out: list[tuple[str, str | None]] = []
    for i in range(60):
        kind = i % 10
        text = {
            0: f"t{i} short",
            1: f"t{i} quick [instant]",
            2: f"t{i} lines [lines={2 + i % 7}]",
            3: f"t{i} markdown [md]",
            4: f"t{i} long [lines={30 + i % 31}]",
            5: f"t{i} instant lines [lines=12] [instant]",
            6: f"t{i} stalls [lines=5] [middelay=0.7]",
            7: f"t{i} slow start [delay=1]",
            8: f"t{i} markdown now [md] [instant]",
            9: f"t{i} tool [bash=echo t{i}]",
        }[kind]
        out.append((text, None if kind == 9 else reply_text(text)))
    return out


def test_answer_source_over_sixty_real_turns(home: Path, tmp_path: Path) -> None:
    sources: collections.Counter[str] = collections.Counter()
    wrong: list[str] = []
    with claude_team(tmp_path):
        for text, want in turns():
            r = staff("ask", "cc", text, "--json", "--timeout", "90", timeout=120)
            assert r.returncode == 0, r.stderr
            task = json.loads(r.stdout)
            sources[task["answer_source"]] += 1
            if want is None:
                want = f"I will run a command.\n\nMOCK-REPLY: tool result: {text.split()[0]}"
            if task["answer"] != want:
                wrong.append(text)
    total = sum(sources.values())
    print(f"\nanswer_source over {total} turns: {dict(sources)}; not byte-exact: {wrong}")
    assert sources["transcript"] == total, dict(sources)
    assert not wrong
