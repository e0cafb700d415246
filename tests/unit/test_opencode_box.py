"""opencode's input box read from its real 1.18.33 screens (tests/data/opencode-1.18.33): the
text a person left in it is a draft, its empty box and its start hint are not, and a dialog
drawn in the box is no box at all (nothing is typed into an approval). And an answer read from
its screen, the fallback when its database has no record of a turn."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supervisor.agent.agent import box_text
from supervisor.detect import answers
from supervisor.detect.rules import View, load_profile

DATA = Path(__file__).parents[1] / "data" / "opencode-1.18.33"


def box_of(capture: str) -> str | None:
    """What the agent reads as the box's text (Agent.input_box and Agent.box_text)."""
    settings = load_profile("opencode").settings
    box = View((DATA / f"{capture}.txt").read_text().split("\n")).region(settings.input_region)
    if box is not None and settings.input_regex and not re.search(settings.input_regex, box, re.M):
        return None
    text = box_text(box, settings.prompt_prefix)
    if text and any(re.fullmatch(p, text) for p in settings.placeholder):
        return ""
    return text


@pytest.mark.parametrize(("capture", "text"), [
    ("idle_start", ""),                                  # the hint 'Ask anything… "…"'
    ("idle_draft", "half a thought"),
    ("idle_multiline_draft", "[Pasted ~3 lines]"),
    ("idle_after_reply", ""),
    ("working_midstream", ""),
    ("idle_resumed", ""),
    ("approval_bash", None),
    ("question_ask", None),
    ("exit_after_ctrlc", None),
])
def test_box_text(capture: str, text: str | None) -> None:
    assert box_of(capture) == text


@pytest.mark.parametrize(("capture", "prompt", "answer"), [
    ("idle_after_multiline", "first line\nsecond line\nthird line",
     "MOCK-REPLY: first line\nsecond line\nthird line"),
    ("approval_bash_after_enter", "run it [bash=echo hi > made.txt]", "MOCK-REPLY: tool result: (no output)"),
    # its markdown drops a [ ] pair once the turn is over: the screen is a rendering
    ("idle_after_reply", "slow one [delay=3]", "MOCK-REPLY: slow one delay=3"),
])
def test_screen_answer(capture: str, prompt: str, answer: str) -> None:
    settings = load_profile("opencode").settings
    lines = (DATA / f"{capture}.txt").read_text().split("\n")
    box = View(lines).bar_box_rows()
    assert box is not None
    got = answers.from_screen([], lines[: box[0]], prompt, prompt_prefix=settings.prompt_prefix,
                              answer_prefix=settings.answer_prefix, drop=list(settings.answer_drop))
    assert got == answer
