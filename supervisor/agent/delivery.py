"""The delivery of a task into an agent, and the collection of its answer.

Only the agent knows how its program takes input, so delivery follows the program's
screen step by step: the text (as a bracketed paste when the program asked for it), then
a separate Enter once the box shows the text, then a check that the program left idle,
with one retry of the Enter. A text the program never took goes back to the queue
(`NotTaken`). The answer comes from Claude's transcript when it recorded the turn, else
from the screen (`detect/answers.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.agent.task import Task, typed_text
from supervisor.detect import answers, sessionfiles
from supervisor.detect.rules import View
from supervisor.events import TaskMoved
from supervisor.states import BUSY, DOWN, IDLE, STARTING, USER, AgentState
from supervisor.util.dirwatch import file_events

if TYPE_CHECKING:
    from supervisor.agent.agent import Agent

LIMIT_HOLD = 60.0
"""Seconds a limit holds the agent's tasks when its error names no reset time."""
MAX_LIMIT_HOLDS = 3
"""Times one task is put back for a limit before it fails (a limit that never lifts)."""
TRANSCRIPT_WAIT = 5.0
"""Seconds to wait for Claude to record a turn it has finished on screen (it usually takes
tens of ms; the wait ends at the write that completes the turn, so the bound costs only when
the transcript never records the turn, and then the screen's rendering is the answer)."""


class NotTaken(Exception):
    """The agent did not take the task's text: the task goes back to the queue."""


class Delivery:
    """One agent's task in flight: typing it in, following its turn, collecting its answer.

    The agent tells it of every state change (`progress`); it tells the team of the
    task's every move through the agent's events."""

    def __init__(self, agent: Agent, *, confirm_timeout: float = 2.0) -> None:
        self.agent = agent
        self.confirm_timeout = confirm_timeout
        """Seconds for the program to leave idle after an Enter before it is pressed again."""
        self.echo_timeout = 2.0
        """Seconds for the input box to show the typed text before the Enter."""
        self.task: Task | None = None
        self.left_idle = False
        """The program left idle since the Enter: the next idle ends the turn."""
        self.submitted = False
        """The Enter was sent: state changes from now on are the task's."""
        self._done: asyncio.Future[None] | None = None
        self._transcript: Path | None = None
        self._transcript_offset = 0
        self._finishing = False
        self._finisher: asyncio.Task[None] | None = None
        self._last_text: str | None = None  # the last task's text, to spot it put back in the box
        self._refusals: dict[str, int] = {}  # task id → times the program did not show its text
        self._holds: dict[str, int] = {}  # task id → times a limit put it back

    # -- typing it in -----------------------------------------------------------------------
    def typed(self, text: str) -> str:
        """`text` as it is typed into the program, and so as the program shows and records it:
        only what can be typed (`typed_text`); a text the program would take as a command of
        its own (Claude Code: a leading `!` runs a shell, `/` a slash command, pasted or not,
        after spaces or not) gets the profile's `literal_prefix`, so it reaches the model as a
        prompt. Every match against the box, the screen or a transcript uses this form."""
        text = typed_text(text).strip("\n")
        settings = self.agent.profile.settings
        if settings.command_chars and text.lstrip()[:1] in settings.command_chars:
            text = settings.literal_prefix + text.lstrip()
        return text

    def encode(self, text: str) -> str:
        """The keys that put `text` into the input box (not the Enter)."""
        text = self.typed(text)
        agent = self.agent
        paste = agent.profile.settings.paste
        multi = "\n" in text or len(text) >= 64
        if agent.term.bracketed_paste and (paste == "always" or (paste == "bracketed" and multi)):
            return f"\x1b[200~{text}\x1b[201~"
        return text

    async def run(self, task: Task) -> None:
        """Type `task` into the program and return when it is answered, failed or cancelled.

        The Enter goes only after the program showed the text in its box: text never seen
        there was never taken, and an Enter then would tie this task to whatever the screen
        shows (the previous turn's answer). A program that draws nothing at all (stopped,
        swapped out) is waited for as long as it takes; its keys wait in the pty."""
        agent = self.agent
        if agent.state != IDLE:
            raise RuntimeError(f"agent {agent.name} is {agent.state}, not idle")
        loop = asyncio.get_running_loop()
        self.task = task
        task.agent = agent.name
        task.move("delivered", now=agent.clock())
        self.left_idle = False
        self.submitted = False
        self._done = loop.create_future()
        agent.session.refresh()  # a /clear since the last idle: the turn goes to the new transcript
        self._mark_transcript()
        agent.emit(TaskMoved(task))

        await self._clear_residue()
        agent.drafts.person_typed = False  # the box was empty at dispatch: what appears in it is ours
        self._last_text = text = self.typed(task.text)
        has_box = agent.input_box() is not None
        gen = agent.term.generation
        agent.write(self.encode(task.text))
        if has_box:
            shown = await self._until_drawn(lambda: self.text_in_box(text), gen, self.echo_timeout)
            if self._done.done():
                return
            if not shown:
                await self._not_taken(task)
        else:
            await agent.until(lambda: agent.term.generation != gen or not agent.alive, 1.0)
        await self._quiet(agent.profile.settings.enter_quiet_ms / 1000.0)
        enter = agent.profile.settings.enter
        for attempt in range(2):
            if self._done.done() or not agent.alive:
                break
            self.submitted = True
            gen = agent.term.generation
            agent.write(enter)
            if await self._until_drawn(
                lambda: self.left_idle or self._done is None or self._done.done(), gen, self.confirm_timeout
            ):
                break
            if not self.text_in_box(text):
                # The text left the box but we saw no busy frame: the program finished
                # within one read (an instant reply). Settle it from what it recorded.
                self.finish()
                break
            if attempt == 1:
                await self._clear_box()
                self.fail("the agent did not take the task: its text stayed in the input box "
                          "after Enter twice (the box was cleared)")
        await asyncio.shield(self._done)

    async def _quiet(self, quiet: float, bound: float = 1.0) -> None:
        """Wait until the program has drawn nothing for `quiet` seconds, `bound` at most."""
        agent = self.agent
        end = time.monotonic() + bound
        while quiet > 0 and (left := end - time.monotonic()) > 0 and agent.alive:
            def drew(gen: int = agent.term.generation) -> bool:
                return agent.term.generation != gen or not agent.alive

            if not await agent.until(drew, min(quiet, left)):
                return

    async def _until_drawn(self, pred: Callable[[], bool], gen: int, window: float = 2.0) -> bool:
        """Wait for `pred`, `window` seconds after each time the program draws something.
        A stopped program (SIGSTOP, a debugger) is waited for as long as it stays stopped:
        its input waits in the pty, and its silence says nothing of it. A running program
        that drew nothing in `window` dropped it (False)."""
        agent = self.agent

        def over() -> bool:
            return pred() or not agent.alive or self._done is None or self._done.done()

        while True:
            if await agent.until(over, window):
                return pred()
            if agent.term.generation != gen or agent.proc is None or not agent.proc.stopped():
                return False  # it drew something else, or it runs and ignored us
            while agent.proc is not None and agent.proc.stopped() and not over():
                # No event says a process was continued (only its parent could wait for it):
                # look again each second, and at once when it draws.
                seen = agent.term.generation

                def drew(seen: int = seen) -> bool:
                    return agent.term.generation != seen or over()

                if await agent.until(drew, 1.0):
                    break
            gen = agent.term.generation

    async def _not_taken(self, task: Task) -> None:
        """The program never showed the text: hand the task back (the third time, fail it),
        after clearing any part of our text from the box, so nothing is left half-typed."""
        agent = self.agent
        if not agent.drafts.person_typed:
            await self._clear_box()
        self.task = None
        self._refusals[task.id] = self._refusals.get(task.id, 0) + 1
        if self._refusals[task.id] >= 3:
            self._refusals.pop(task.id)
            task.error = "the agent never showed the task's text in its input box (3 tries)"
            task.move("failed", now=agent.clock())
            self._end(task)
            raise NotTaken(task.error)
        task.move("queued", now=agent.clock())
        task.agent = None
        agent.emit(TaskMoved(task))
        raise NotTaken(f"{agent.name} was not ready ({agent.state})")

    async def _clear_box(self) -> None:
        """Empty the input box if it holds text (its clear key on an empty box may arm exit)."""
        agent = self.agent
        if agent.box_text():
            agent.write(agent.profile.settings.clear_input)
            await agent.until(lambda: not agent.box_text() or not agent.alive, 1.0)

    async def _clear_residue(self) -> None:
        """An interrupted turn (Esc, a cancel, a stall policy) puts its prompt back in the
        box, and the next task would be appended to it: clear our own text first. The
        clear key only goes to a box that holds text (Ctrl-C on an empty one arms exit)."""
        agent = self.agent
        box = agent.box_text()
        if self._last_text is None or not box or " ".join(box.split()) != " ".join(self._last_text.split()):
            return  # empty, or not (only) our text: a person's words are never cleared away
        agent.write(agent.profile.settings.clear_input)
        await agent.until(lambda: not agent.box_text() or not agent.alive, 1.0)

    async def resume(self, task: Task) -> str:
        """Carry on with a task this (adopted) agent had when the previous daemon died.

        Returns "done" / "failed" when it ended here, or "requeue" when the agent never
        got it (the text is neither answered nor waiting in its input box)."""
        agent = self.agent
        await agent.until(lambda: agent.state != STARTING or not agent.alive, 15.0)
        if not agent.alive:
            return "requeue"
        loop = asyncio.get_running_loop()
        self.task = task
        task.agent = agent.name
        self._done = loop.create_future()
        self.submitted = True
        self._transcript = None
        if agent.profile.settings.transcript == "claude":
            self._transcript = answers.transcript_path(agent.env, agent.cwd(), agent.session_id)
            self._transcript_offset = 0
        if agent.state in BUSY:
            self.left_idle = True  # it is still at it: completion comes with the next idle
            if task.state == "delivered" and agent.state != USER:
                task.move(agent.state.value, now=agent.clock())
        elif self.recover_answer(task) is not None:
            self.finish()  # it finished while no daemon watched
        elif self.text_in_box(self.typed(task.text)):
            agent.write(agent.profile.settings.enter)  # typed, never submitted
        else:
            self.task = None
            self.submitted = False
            return "requeue"
        await asyncio.shield(self._done)
        return task.state

    def text_in_box(self, text: str) -> bool:
        box = self.agent.box_text()  # without prompt marks (Aider repeats "> " on each line)
        if box is None:
            return False
        first = " ".join(text.split())[:20]
        flat = " ".join(box.split())
        # a long paste shows as Claude's "[Pasted text …]" or Codex's "[Pasted Content …]"
        return bool(first) and (first in flat or "[Pasted" in flat)

    # -- following its turn -----------------------------------------------------------------
    def progress(self, old: AgentState, new: AgentState) -> None:
        """The agent moved from `old` to `new`: the task follows (working, blocked, done)."""
        task = self.task
        if task is None or task.final:
            return
        if new in DOWN:
            return  # handled in Agent._on_exit
        if not self.submitted:
            return  # typing the text is not the task starting
        if new in BUSY and old in (IDLE, *BUSY):
            if new != USER:
                self.left_idle = True
                task.move(new.value, now=self.agent.clock())
                self.agent.emit(TaskMoved(task))
        elif new == IDLE and self.left_idle:
            self.finish()

    # -- its answer -------------------------------------------------------------------------
    def _mark_transcript(self) -> None:
        agent = self.agent
        self._transcript = None
        if agent.profile.settings.transcript == "claude":
            path = answers.transcript_path(agent.env, agent.cwd(), agent.session_id)
            self._transcript = path
            try:
                self._transcript_offset = path.stat().st_size
            except OSError:
                self._transcript_offset = 0

    def recover_answer(self, task: Task) -> str | None:
        """After a daemon restart: the answer to `task` if the transcript shows it finished."""
        agent = self.agent
        if agent.profile.settings.transcript != "claude":
            return None
        path = answers.transcript_path(agent.env, agent.cwd(), agent.session_id)
        got = answers.from_transcript(path, 0, self.typed(task.text), after=task.delivered or task.created)
        return got.text if got.complete else None

    async def extract_answer(self, task: Task) -> tuple[str | None, str, answers.TranscriptAnswer | None]:
        """The answer (None: none can be read), where it came from, and the turn as the
        transcript recorded it.

        For a profile with a transcript, the answer is the text Claude recorded for the turn,
        exactly. Claude may write the turn a moment after its screen shows the prompt again
        (a quick reply is on screen tens of ms earlier): we wait for the write that completes
        it (inotify, dirwatch.py), TRANSCRIPT_WAIT at most. Only a turn the transcript never
        recorded is read from the screen, a rendering: markdown marks dropped, lines wrapped.
        """
        got = await self._transcript_answer(task) if self._transcript is not None else None
        reader = sessionfiles.READERS.get(self.agent.profile.settings.transcript)
        if reader is not None:
            got = await self._session_file_answer(task, reader)
        if got is not None and got.complete:
            return got.text or "", "transcript", got
        if got is not None and got.text is not None:
            return got.text, "transcript (turn end not recorded)", got
        text = self.screen_answer(task)
        if text is None:  # never the newest answer block instead: it may be another turn's
            return None, "its prompt is not on the screen and the program keeps no transcript of it", got
        return text, "screen", got

    async def _transcript_answer(self, task: Task) -> answers.TranscriptAnswer:
        """Wait (bounded) until the transcript holds the whole turn. The transcript may
        change under us (a /clear, /resume or compaction): the live session's is read too."""
        assert self._transcript is not None
        path, offset = self._transcript, self._transcript_offset
        events = file_events()
        deadline = time.monotonic() + TRANSCRIPT_WAIT
        while True:
            if path.exists():
                events.armed(path)  # before the read: a write in between still wakes us
            got = answers.from_transcript(path, offset, self.typed(task.text))
            if got.complete:
                return got
            if not got.seen_prompt:
                self.agent.session.refresh()
                live = self.agent.session.transcript()
                if live is not None and live != path:
                    path, offset = live, 0
                    self._transcript, self._transcript_offset = path, offset
                    continue
                if not path.exists() and not self.agent.session.registered():
                    return got  # nothing keeps a transcript here: no record will come
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            await events.changed(path, left)

    async def _session_file_answer(
        self, task: Task, reader: sessionfiles.SessionFiles
    ) -> answers.TranscriptAnswer:
        """The turn as the program recorded it in its own session files (Codex's rollout):
        wait (bounded) for the record of its end, which such a program writes about when its
        screen shows the box again. The file that holds the turn names the session, which
        the agent adopts: a restart resumes it."""
        agent = self.agent
        since = task.delivered or task.created
        events = file_events()
        deadline = time.monotonic() + TRANSCRIPT_WAIT
        got = answers.TranscriptAnswer(None, False, False)
        while True:
            path = None
            # another agent's session is never ours, even for the same text in the same
            # directory (a fan-out to pool clones): its turn would be the wrong answer
            skip = agent.session.others()
            for candidate in reader.files(agent.env, agent.cwd(), since):
                events.armed(candidate)  # before the read: a write in between still wakes us
                # off the event loop: a read may be a whole rollout or an sqlite query that
                # waits on the program's lock, and every agent's pty is served by this loop
                typed = self.typed(task.text)
                got = await asyncio.to_thread(reader.read, candidate, typed, agent.cwd(), skip)
                if got.seen_prompt:
                    path = candidate
                    break
            if path is not None:
                agent.session.adopt(reader.session_id(path))
            if got.complete:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            if path is None:
                await asyncio.sleep(min(left, 0.05))  # no file holds the turn yet
            else:
                await events.changed(path, left)

    def screen_answer(self, task: Task) -> str | None:
        p = self.agent.profile.settings
        term = self.agent.term
        lines = term.lines()
        region, _, arg = p.input_region.partition(":")
        # no rules to stop at (Codex's paragraph, opencode's bar): the answer ends above the box
        view = View(lines)
        rows = (view.paragraph_rows(int(arg or 1)) if region == "paragraph"
                else view.bar_box_rows() if region == "bar_box" else None)
        lines = lines[: rows[0]] if rows is not None else lines
        text = answers.from_screen(
            term.history_text(),
            lines,
            self.typed(task.text),
            prompt_prefix=p.prompt_prefix,
            answer_prefix=p.answer_prefix,
            drop=list(p.answer_drop),
            prompt_regex=p.prompt_regex,
            framed=region != "paragraph",
        )
        return text

    # -- its end ----------------------------------------------------------------------------
    def finish(self) -> None:
        """The turn is over on screen: collect the answer, then mark the task done."""
        task = self.task
        if task is None or task.final or self._finishing:
            return
        self._finishing = True
        self._finisher = asyncio.get_running_loop().create_task(self._complete(task))

    async def _complete(self, task: Task) -> None:
        try:
            answer, source, got = await self.extract_answer(task)
        finally:
            self._finishing = False
        if task.final:
            return
        if answer is None:
            self.fail(f"the answer could not be read: {source}")
            return
        settings = self.agent.profile.settings
        if got is not None and got.usage.responses:
            task.usage = got.usage.to_json(settings.context_window or None)
        self.agent.session.count()
        error = got.error if got is not None and source == "transcript" else None
        if error is None and source.startswith("screen"):
            error = answers.screen_error(answer, settings.api_error)
        if error is not None:  # the API failed the turn: Claude's line is no answer
            task.answer_source = source
            kind, status = (got.error_kind, got.error_status) if got is not None else (None, None)
            if answers.is_limit(error, kind, status) and self._limit_holds(task) < MAX_LIMIT_HOLDS:
                self._limited(task, error)
            else:
                self.fail(error)
            return
        task.answer, task.answer_source = answer, source
        if task.state == "delivered":
            task.move("working", now=self.agent.clock())
        task.move("done", now=self.agent.clock())
        self._end(task)

    def _limit_holds(self, task: Task) -> int:
        return self._holds.get(task.id, 0)

    def _limited(self, task: Task, error: str) -> None:
        """The turn hit a usage or rate limit: not the task's fault, and no answer. The
        agent is held until the reset time its error names (else LIMIT_HOLD s) and the task
        is put back (`interrupted`, then queued at the front by the team): it runs when the
        limit lifts, or on a teammate at once if it was not addressed to this agent."""
        agent = self.agent
        now = agent.clock()
        until = answers.limit_reset(error, now) or now + LIMIT_HOLD
        self._holds[task.id] = self._holds.get(task.id, 0) + 1
        agent.hold(until, error)
        at = time.strftime("%H:%M:%S", time.localtime(until))
        self.fail(f"{error} (limited until {at}: put back in the queue)", "interrupted")

    def fail(self, error: str, state: str = "failed") -> None:
        task = self.task
        if task is None or task.final:
            return
        task.error = error
        task.move(state, now=self.agent.clock())
        self._end(task)

    def cancel(self) -> None:
        """Interrupt the running task (the profile's interrupt key) and mark it cancelled."""
        if self.task is None:
            return
        self.fail("cancelled", "cancelled")
        self.agent.write(self.agent.profile.settings.interrupt)

    def _end(self, task: Task) -> None:
        agent = self.agent
        agent.done_titles.append(task.title())
        self.task = None
        self.left_idle = False
        self.submitted = False
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        # What a person typed while the task was on (its answer still being read) is a draft
        # now: known before the team hears the task ended and hands out the next one.
        agent.check_draft()
        agent.emit(TaskMoved(task))
        agent.wake()
