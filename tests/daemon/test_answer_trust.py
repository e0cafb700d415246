"""Never a wrong answer, never a wedged agent (issue 15, items 1–4) on the fake team.

Each test here reproduces a way the daemon once handed back an answer that was not the task's
own, or left an agent that no task could reach again.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import staff
from tests.helpers.events import Events


def pid_of(agent: str) -> int:
    st = json.loads(staff("status", "--json", check=True).stdout)
    return int(next(a for a in st["agents"] if a["agent_id"] == agent)["pid"])


def task_json(*args: str) -> dict[str, object]:
    r = staff(*args, "--json")
    return dict(json.loads(r.stdout))


def test_a_stalled_agent_never_answers_with_the_previous_turn(fake_team: Path, home: Path) -> None:
    """Item 1: the agent is stopped while its task is typed; the text shows only when it wakes.
    The task must wait for it, and come back with its own answer, never the previous one."""
    first = task_json("ask", "planning", "alpha")
    assert first["answer"] == "FAKE-REPLY(planning#1): alpha"
    pid = pid_of("planning")
    events = Events(home)
    try:
        os.kill(pid, signal.SIGSTOP)
        try:
            tid = staff("submit", "planning", "beta", check=True).stdout.strip()
            events.wait(lambda e: e.get("type") == "task" and e["task"]["id"] == tid
                        and e["task"]["state"] == "delivered")
            time.sleep(5)  # the stall itself (the scenario): longer than every delivery timeout
        finally:
            os.kill(pid, signal.SIGCONT)
        second = task_json("wait", tid, "--timeout", "30")
    finally:
        events.close()
    assert second["state"] == "done", second
    assert second["answer"] == "FAKE-REPLY(planning#2): beta"


@pytest.mark.parametrize("text", ["\x00\x1b\x07", "\x1b[31m\x1b[0m", "\x7f\x08\t  \n"])
def test_text_with_nothing_to_type_is_refused(fake_team: Path, text: str) -> None:
    """Item 2: text that encodes to nothing is refused at submit with one line, exit 2."""
    r = staff("submit", "planning", "-", input=text)
    assert r.returncode == 2, r
    assert "nothing to type" in r.stderr and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr


def ask_ok(agent: str, text: str, timeout: float = 30) -> dict[str, object]:
    r = staff("ask", agent, "-", "--json", "--timeout", str(timeout), input=text, timeout=timeout + 30)
    return dict(json.loads(r.stdout))


@pytest.mark.parametrize("text", [
    "a table:\n" + "\n".join(f"| row {i} | {'─' * 70} |" for i in range(3)),  # box drawing, pasted
    "a heading then its underline\n" + "─" * 80,                               # a rule inside the box
    "─" * 90 + " one long line of box drawing",                               # wider than half the screen
    "\n".join(f"line {i} of a long paste" for i in range(45)),                 # taller than the screen
])
def test_the_agents_own_input_box_never_hides_its_state(fake_team: Path, text: str) -> None:
    """Item 3: text in the input box (rules of ─, more lines than the screen) is content, not
    the box's frame: the task is taken, answered with its own answer, and the next one runs."""
    task = ask_ok("coding", text)
    assert task["state"] == "done", task
    assert str(task["answer"]).startswith("FAKE-REPLY(coding#1): ")
    assert text.splitlines()[-1] in str(task["answer"])
    after = ask_ok("coding", "and the next one")
    assert after["answer"] == "FAKE-REPLY(coding#2): and the next one"


def test_a_reply_that_ends_like_a_spinner_still_ends_the_turn(fake_team: Path) -> None:
    """Item 4: the reply's last lines look like Claude's spinner; the turn is over all the same."""
    text = "say this back:\n* Thinking…\n✶ Forming… (3s · ↓ 12 tokens)"
    task = ask_ok("testing", text, timeout=20)
    assert task["state"] == "done", task
    assert str(task["answer"]).endswith("✶ Forming… (3s · ↓ 12 tokens)")
    assert ask_ok("testing", "next")["answer"] == "FAKE-REPLY(testing#2): next"
