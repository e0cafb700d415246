"""The delivery of a task into an agent, step by step, against the simulated program.

Each test breaks one step of the protocol in the program (an echo that comes late, an
Enter that is ignored, a reply with no busy frame, a question that takes the text's place)
and checks what the agent did about it from the program's own log of writes, each with the
input box as it was shown at that moment (tests/helpers/sim.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from supervisor.agent.agent import Agent, AgentEvent, AgentSpec
from supervisor.agent.delivery import NotTaken
from supervisor.agent.task import Task
from supervisor.detect.rules import load_profile
from supervisor.events import TaskMoved
from supervisor.pty.process import ProcessLike
from supervisor.states import IDLE
from tests.helpers.sim import SimProcess


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    SimProcess.auto = True
    a = Agent(
        AgentSpec(name="a", command=["sim"]),
        load_profile("claude"),
        env={"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")},
        process_factory=SimProcess,
        confirm_timeout=0.3,  # the retry's wait; nothing here asserts a duration
    )
    a.delivery.echo_timeout = 0.3
    a.start()
    assert await a.until(lambda: a.state == IDLE, 5), a.state
    yield a
    await a.stop(0.1)


def sim(agent: Agent) -> SimProcess:
    assert isinstance(agent.proc, SimProcess)
    return agent.proc


def keys(p: SimProcess) -> list[bytes]:
    return [data for data, _box in p.writes]


def test_the_sim_is_a_process() -> None:
    assert isinstance(SimProcess(["sim"], cwd=None, env={}, rows=40, cols=120), ProcessLike)


async def test_short_text_then_a_separate_enter(agent: Agent) -> None:
    task = Task(to="a", text="hello there")
    await agent.run_task(task)
    assert keys(sim(agent)) == [b"hello there", b"\r"]  # two writes: the Enter is not part of the text
    assert (task.state, task.answer, task.answer_source) == ("done", "SIM: hello there", "screen")


async def test_multiline_text_goes_as_one_bracketed_paste_when_asked_for(agent: Agent) -> None:
    p = sim(agent)
    p.paste_mode = True
    p.draw()  # the program enables mode 2004
    task = Task(to="a", text="line one\nline two")
    await agent.run_task(task)
    assert keys(p) == [b"\x1b[200~line one\nline two\x1b[201~", b"\r"]
    assert task.state == "done"


async def test_paste_always_sends_a_short_task_as_a_paste_too(agent: Agent) -> None:
    """Gemini CLI's profile: typed in a burst, its '?' is a shortcuts key and is lost."""
    import dataclasses

    settings = dataclasses.replace(agent.profile.settings, paste="always", enter_quiet_ms=20)
    agent.profile = dataclasses.replace(agent.profile, settings=settings)
    p = sim(agent)
    p.paste_mode = True
    p.draw()
    task = Task(to="a", text="which word?")
    await agent.run_task(task)
    assert keys(p) == [b"\x1b[200~which word?\x1b[201~", b"\r"]
    assert task.state == "done" and p.received == ["which word?"]


async def test_multiline_text_is_typed_plain_when_paste_was_not_asked_for(agent: Agent) -> None:
    await agent.run_task(Task(to="a", text="line one\nline two"))
    assert keys(sim(agent)) == [b"line one\nline two", b"\r"]


async def test_the_enter_waits_for_the_echo(agent: Agent) -> None:
    p = sim(agent)
    p.echo_later = True  # the box shows the text a loop turn after it was written
    task = Task(to="a", text="echo me")
    await agent.run_task(task)
    assert p.writes == [(b"echo me", ""), (b"\r", "echo me")]  # Enter only once the box showed it
    assert task.state == "done" and p.received == ["echo me"]


async def test_leaving_idle_confirms_the_enter(agent: Agent) -> None:
    moves: list[str] = []

    def listen(_agent: Agent, event: AgentEvent) -> None:
        if isinstance(event, TaskMoved):
            moves.append(event.task.state)

    agent.listener = listen
    agent.delivery.confirm_timeout = 0  # only the busy frame the Enter brought can confirm it
    SimProcess.auto = False
    p = sim(agent)
    task = Task(to="a", text="think hard")
    run = asyncio.get_running_loop().create_task(agent.run_task(task))
    assert await agent.until(lambda: task.state == "working", 5)  # confirmed by the busy screen
    for _ in range(20):  # loop turns for a wrong conclusion to land (nothing to await: none should)
        await asyncio.sleep(0)
    assert task.state == "working" and keys(p) == [b"think hard", b"\r"]
    p.finish("thought")
    await run
    assert keys(p) == [b"think hard", b"\r"]  # no second Enter once it left idle
    assert moves == ["delivered", "working", "done"] and task.answer == "thought"


async def test_an_ignored_enter_is_pressed_once_more(agent: Agent) -> None:
    p = sim(agent)
    p.ignore_enters = 1  # the program was busy redrawing and dropped the key
    task = Task(to="a", text="try again")
    await agent.run_task(task)
    assert keys(p) == [b"try again", b"\r", b"\r"]
    assert task.state == "done" and p.received == ["try again"]


async def test_two_ignored_enters_fail_the_task(agent: Agent) -> None:
    p = sim(agent)
    p.ignore_enters = 2
    task = Task(to="a", text="never sent")
    await agent.run_task(task)
    assert keys(p) == [b"never sent", b"\r", b"\r", b"\x03"]  # one retry, not more; box cleared
    assert task.state == "failed" and "stayed in the input box after Enter twice" in (task.error or "")
    assert agent.current_task is None


async def test_an_instant_reply_is_settled_from_the_screen(agent: Agent) -> None:
    p = sim(agent)
    p.instant = True  # idle again, with the answer, before any busy frame was drawn
    task = Task(to="a", text="quick one")
    await agent.run_task(task)
    assert keys(p) == [b"quick one", b"\r"]  # not pressed again: the text left the box
    assert (task.state, task.answer) == ("done", "SIM: quick one")


async def test_text_the_program_never_took_goes_back(agent: Agent) -> None:
    p = sim(agent)
    p.dialog_on_text = True  # a question opened instead: the text never reached the box
    task = Task(to="a", text="not now")
    with pytest.raises(NotTaken, match="was not ready"):
        await agent.run_task(task)
    assert keys(p) == [b"not now"]  # and no Enter, which would answer the question
    assert (task.state, task.agent, agent.current_task) == ("queued", None, None)


async def test_a_stopped_program_is_waited_for_never_answered_from_an_old_screen(agent: Agent) -> None:
    """Issue 15, item 1: the program is stopped as the text is typed; past every window the
    task still waits (no Enter on text never shown, no old answer), and ends with its own."""
    p = sim(agent)
    await agent.run_task(Task(to="a", text="alpha"))
    agent.delivery.echo_timeout = agent.delivery.confirm_timeout = 0.01
    p.is_stopped = True
    task = Task(to="a", text="beta")
    run = asyncio.ensure_future(agent.run_task(task))
    for _ in range(20):  # many windows pass while it is stopped
        await asyncio.sleep(0.01)
    assert not run.done() and task.state == "delivered"
    assert keys(p)[-1] == b"beta"  # typed, and no Enter pressed on it
    p.cont()
    await run
    assert (task.state, task.answer) == ("done", "SIM: beta")


async def test_what_a_person_typed_during_a_task_is_a_draft_when_it_ends(agent: Agent) -> None:
    """A person types into the box while the task's answer is still being read: when the task
    ends, that text is already a draft, so no task is typed onto it (and it is never cleared)."""
    p = sim(agent)
    SimProcess.auto = False
    task = Task(to="a", text="delegated work")
    run = asyncio.ensure_future(agent.run_task(task))
    assert await agent.until(lambda: p.working, 5)
    agent.note_person_input()
    p.working = False  # the person's Esc: the turn ends and they type a prompt of their own
    p.box = "my own prompt"
    p.draw()
    await run
    assert agent.draft == "my own prompt"
    assert b"\x03" not in keys(p)  # their words were not cleared away


async def test_a_start_reads_idle_only_once_the_box_has_held(tmp_path: Path) -> None:
    """settle_after_start_ms (Gemini CLI draws its box, then its banner and history: a task
    typed in between was lost): a redraw within it puts the first idle off."""
    import dataclasses

    from supervisor.events import StateChanged

    profile = load_profile("claude")
    profile = dataclasses.replace(
        profile, settings=dataclasses.replace(profile.settings, settle_after_start_ms=300))
    SimProcess.auto = True
    a = Agent(AgentSpec(name="s", command=["sim"]), profile, env={"HOME": str(tmp_path)},
              process_factory=SimProcess)
    states: list[str] = []

    def listen(_agent: Agent, event: AgentEvent) -> None:
        if isinstance(event, StateChanged):
            states.append(event.new.value)

    a.listener = listen
    a.start()
    p = sim(a)
    await a.until(lambda: a.term.generation > 0, 5)  # the idle box is drawn
    assert a.state.value == "starting"  # it has not held yet
    p.working = True
    p.draw()  # a redraw that is not the idle box (its banner coming)
    p.working = False
    p.draw()
    assert await a.until(lambda: a.state == IDLE, 5), a.state
    assert states == ["idle"], states
    await a.stop(0.1)


async def test_an_answer_for_a_question_no_longer_shown_is_refused_before_any_key(agent: Agent) -> None:
    """The question's id (as the web page and `staff answer` see it) is checked right before
    the key is written: a tap relayed through a hub never answers a question that showed
    after its screen was read."""
    from supervisor.agent.agent import AnswerError
    from supervisor.daemon.web import question_of

    p = sim(agent)
    p.dialog = True
    p.draw()
    assert await agent.until(lambda: agent.state == "blocked", 5), agent.state
    seen = question_of(agent)
    assert seen is not None and seen.choices
    with pytest.raises(AnswerError, match="now asks something else: Do you want to proceed"):
        await agent.answer("1", 1.0, question="0123456789abcdef")  # another question's id
    assert keys(p) == []
    with pytest.raises(AnswerError, match="still the same question"):  # the sim never closes it
        await agent.answer("1", 1.0, question=seen.id)
    assert keys(p)[0] == b"1"  # the id the page saw lets the key through
