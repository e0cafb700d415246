"""One agent: its pty, its screen, its detected state, and the task it is working on.

The state machine has one door, `change_state()`, which checks the transition and
publishes an event; everything that moves an agent (screen detection, the child's exit,
a person taking over) goes through it. Delivery of a task is here too, because only the
agent knows how its program takes input: text (as a bracketed paste when the program
asked for it), then a separate Enter once the text was echoed, then a check that the
program left idle, with one retry.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from supervisor.agent.task import Task
from supervisor.detect import answers
from supervisor.detect.rules import Detection, Profile, View
from supervisor.pty.process import ExitStatus, PtyProcess, SpawnError
from supervisor.screen.emulator import Terminal
from supervisor.util.dirwatch import file_events

TRANSITIONS: dict[str, frozenset[str]] = {
    "starting": frozenset({"idle", "blocked", "working", "user", "exited", "crashed"}),
    "idle": frozenset({"working", "blocked", "user", "exited", "crashed"}),
    "working": frozenset({"idle", "blocked", "user", "exited", "crashed"}),
    "blocked": frozenset({"idle", "working", "user", "exited", "crashed"}),
    "user": frozenset({"idle", "working", "blocked", "exited", "crashed"}),
    "exited": frozenset({"starting"}),
    "crashed": frozenset({"starting"}),
}

PUMP_DETECT_EVERY = 0.02
"""While a burst is fed slice by slice (`Agent._pump`), how often detection runs on it."""
ANSWER_CONFIRM = 1.0
"""Seconds for a permission answer to show before it is sent again (`Agent.answer`)."""
TRANSCRIPT_WAIT = 1.5
"""Seconds to wait for Claude to record a turn it has finished on screen."""

class AnswerError(Exception):
    """A question could not be answered: the agent is not blocked, or ignored the key."""


class NotTaken(Exception):
    """The agent did not take the task's text: the task goes back to the queue."""


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def box_text(box: str | None, prefix: str) -> str | None:
    """The text in an input box region: its lines stripped, the prompt mark and blank lines
    dropped ('' for an empty box, None when no box is shown)."""
    if box is None:
        return None
    lines = [ln.strip() for ln in box.splitlines()]
    if lines and prefix and lines[0].startswith(prefix):
        lines[0] = lines[0][len(prefix) :].strip()
    return "\n".join(ln for ln in lines if ln)


@dataclass
class AgentSpec:
    """An agent as the config file describes it."""

    name: str
    command: list[str]
    profile: str = "claude"
    role: str | None = None
    role_text: str | None = None
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    restart: str = "on-failure"
    rows: int = 40
    cols: int = 120
    source: str = ""
    worktree: bool = False  # run in its own git worktree (worktrees.py)
    by_name_only: bool = False
    """Takes only tasks addressed to it by name (the chief): never `any`, and its draft is the
    person at their own prompt, not unsent text to report."""


Listener = Callable[["Agent", str, dict[str, Any]], None]
ProcessFactory = Callable[..., PtyProcess]


class Agent:
    def __init__(
        self,
        spec: AgentSpec,
        profile: Profile,
        *,
        env: dict[str, str],
        listener: Listener | None = None,
        clock: Callable[[], float] = time.time,
        process_factory: ProcessFactory = PtyProcess,
        confirm_timeout: float = 2.0,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.profile = profile
        self.env = env
        self.listener = listener
        self.clock = clock
        self.process_factory = process_factory
        self.confirm_timeout = confirm_timeout
        self.state = "starting"
        self.screen_state = "starting"
        self.detection: Detection | None = None
        self.proc: PtyProcess | None = None
        self.term = Terminal(spec.cols, spec.rows)
        self.current_task: Task | None = None
        self.last_active = clock()
        self.error: str | None = None
        self.exit_status: ExitStatus | None = None
        self.done_titles: list[str] = []
        self.session_id = str(uuid.uuid4())
        self.starts = 0
        self.user_hold = False
        self.stopping = False
        self.adopted = False
        self.keeper_lost = False
        self.output_listeners: list[Callable[[bytes, str], None]] = []
        """Called with each output chunk after the screen took it (console streams, recordings)."""
        self.stall_after = 0.0  # seconds of silence while working before `stalled`; 0: never
        self.stalled = False
        self._stall_timer: asyncio.TimerHandle | None = None
        self._last_output = time.monotonic()
        self._pending: tuple[str, float] | None = None
        self._pending_timer: asyncio.TimerHandle | None = None
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[bool]]] = []
        self._left_idle = False
        self._submitted = False
        self._task_done: asyncio.Future[None] | None = None
        self._transcript: Path | None = None
        self._transcript_offset = 0
        self._finishing = False
        self._finisher: asyncio.Task[None] | None = None
        self._pump_handle: asyncio.Handle | None = None
        self._pump_detected = 0.0
        self.person_typed = False
        """A person (console, `staff send`) typed since the input box was last empty."""
        self.draft: str | None = None
        """What a person left in the input box unsent: no task is typed on top of it."""
        self._last_text: str | None = None  # the last task's text, to spot it put back in the box

    # -- lifecycle ---------------------------------------------------------------------
    def argv(self) -> list[str]:
        argv = list(self.spec.command)
        p = self.profile
        if p.get("session_flag"):
            if self.starts > 0 and p.get("resume_flag") and self._has_transcript():
                argv += [p.get("resume_flag"), self.session_id]
            else:
                argv += [p.get("session_flag"), self.session_id]
        if self.spec.role_text and p.get("role_flag"):
            argv += [p.get("role_flag"), self.spec.role_text]
        return argv

    def _cwd(self) -> str:
        return self.spec.cwd or os.getcwd()  # the child inherits ours when none is set

    def _has_transcript(self) -> bool:
        """Resume only a conversation that exists (Claude refuses an unknown --resume id)."""
        return answers.transcript_path(self.env, self._cwd(), self.session_id).exists()

    def recover_answer(self, task: Task) -> str | None:
        """After a daemon restart: the answer to `task` if the transcript shows it finished."""
        if self.profile.get("transcript") != "claude":
            return None
        path = answers.transcript_path(self.env, self._cwd(), self.session_id)
        got = answers.from_transcript(path, 0, task.text, after=task.delivered or task.created)
        return got.text if got.complete else None

    def _fresh(self) -> None:
        self.term = Terminal(self.spec.cols, self.spec.rows)
        self.term.reply = self._reply
        self.detection = None
        self.screen_state = "starting"
        self.exit_status = None
        self.error = None
        self.draft, self.person_typed = None, False  # a new process has an empty box
        if self.state in ("exited", "crashed"):
            self.change_state("starting", "restart")

    def adopt(self, proc: PtyProcess) -> None:
        """Take over a program a previous daemon started (kept alive by the keeper): same
        pid, same conversation; its screen comes back with the repaint it is nudged into."""
        self._fresh()
        proc.on_output = self._on_output
        proc.on_exit = self._on_exit
        self.proc = proc
        self.adopted = True
        self._emit("spawned", pid=proc.pid, adopted=True)

    def detach(self) -> None:
        """Let go of the program without ending it (a reload: the next daemon adopts it)."""
        if self.proc is not None:
            self.proc.on_output = None
            self.proc.on_exit = None
            self.proc.detach()

    def start(self) -> None:
        """Spawn the program. A spawn failure leaves the agent `exited` with the reason."""
        self._fresh()
        self.adopted = False
        self.keeper_lost = False
        proc = self.process_factory(
            self.argv(), cwd=self.spec.cwd, env=self.env, rows=self.spec.rows, cols=self.spec.cols
        )
        proc.on_output = self._on_output
        proc.on_exit = self._on_exit
        try:
            proc.start()
        except SpawnError as exc:
            self.error = str(exc)
            self.proc = None
            self.change_state("exited", self.error)
            return
        self.proc = proc
        self.starts += 1
        self._emit("spawned", pid=proc.pid)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def stop(self, grace: float = 2.0) -> None:
        """End the program; what it draws while it quits is not a state change."""
        if self.proc is not None and self.proc.alive:
            self.stopping = True
            try:
                if not await self._exit_by_keys(grace):
                    await self.proc.terminate(grace)
            finally:
                self.stopping = False

    async def answer(self, keys: str, timeout: float = 10.0) -> int:
        """Answer the question the agent is blocked on; returns the tries it took.

        Claude Code sometimes ignores a key sent the instant its dialog appears. So the
        key is sent, and if within ANSWER_CONFIRM s the agent is still blocked on the very
        same question (the text below the last rule unchanged), sent again, three times
        at most. A different question showing up counts as taken: it is never answered
        with the same key by mistake."""
        if not await self.until(lambda: self.state == "blocked" or not self.alive, timeout):
            raise AnswerError(f"{self.name} is {self.state}, not blocked on a question")
        for attempt in range(1, 4):
            if not self.alive:
                raise AnswerError(f"{self.name} ended ({self.state})")
            question = self.view().region("after_last_rule")
            self.write(keys)
            if await self.until(partial(self._question_changed, question), ANSWER_CONFIRM):
                return attempt
        raise AnswerError(f"{self.name} did not take {keys!r}: still the same question after 3 tries")

    def _question_changed(self, question: str | None) -> bool:
        return self.state != "blocked" or not self.alive or self.view().region("after_last_rule") != question

    def _moved_on(self, generation: int) -> bool:
        return self.term.generation != generation or not self.alive

    async def _exit_by_keys(self, grace: float) -> bool:
        """Quit the way a person would (the profile's `exit_keys`: Claude Code's Ctrl-C
        twice, a shell's `exit`), so the program saves its session as it does for them.
        Only at an idle prompt with an empty input box: the keys would otherwise interrupt
        a turn or wipe a draft. False if it did not end within `grace`: signals follow."""
        keys = self.profile.get("exit_keys")
        if not isinstance(keys, list) or not keys or self.proc is None:
            return False
        if self.state != "idle" or self.current_task is not None or self.box_text():  # (a draft too)
            return False
        for key in keys:
            gen = self.term.generation
            self.write(str(key))
            # the next key only once this one showed (a second Ctrl-C must not race the first)
            await self.until(partial(self._moved_on, gen), 1.0)
            if not self.alive:
                break
        if self.alive:
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
            except TimeoutError:
                return False
        return True

    # -- output and detection ---------------------------------------------------------
    def _reply(self, data: str) -> None:
        """The emulator answers a terminal query (cursor position, device attributes)."""
        if self.proc is not None:
            self.proc.write(data.encode())

    def _on_output(self, data: bytes, text: str) -> None:
        self._last_output = time.monotonic()
        if self.stalled:
            self._set_stalled(False)
        if self.term.feed_output(data, text):
            self._hold_output()
        self.last_active = self.clock()
        for listener in self.output_listeners:
            listener(data, text)
        self._evaluate()
        self._wake()

    def _hold_output(self) -> None:
        """Part of a burst is held back by the screen: stop reading and feed it one slice per
        loop turn (`_pump`), so a flood on one agent never stalls the others for long."""
        if self._pump_handle is None:
            pause = getattr(self.proc, "pause_reading", None)
            if pause is not None:
                pause()
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_handle = None
        if self.term.drain():
            self._pump_handle = asyncio.get_running_loop().call_soon(self._pump)
            # Mid-burst, detection runs at most every PUMP_DETECT_EVERY seconds: the screen
            # is scrolling past, and its last slice is always evaluated.
            now = time.monotonic()
            if now - self._pump_detected < PUMP_DETECT_EVERY:
                return
            self._pump_detected = now
        else:
            resume = getattr(self.proc, "resume_reading", None)
            if resume is not None:
                resume()
        self._evaluate()
        self._wake()

    def view(self) -> View:
        return View(self.term.lines(), self.term.title)

    def _evaluate(self) -> None:
        det = self.profile.detect(self.view())
        delay = det.debounce
        if det.state == "idle" and self.screen_state == "blocked":
            delay = max(delay, float(self.profile.get("settle_after_blocked_ms", 300)) / 1000)
        if det.state != self.screen_state and delay > 0:
            now = time.monotonic()
            if self._pending is None or self._pending[0] != det.state:
                self._pending = (det.state, now + delay)
                self._arm_timer(delay)
                return
            if now < self._pending[1]:
                return
        self._clear_pending()
        self._apply(det)

    def _arm_timer(self, delay: float) -> None:
        if self._pending_timer is not None:
            self._pending_timer.cancel()
        loop = asyncio.get_running_loop()
        self._pending_timer = loop.call_later(delay + 0.001, self._evaluate)

    def _clear_pending(self) -> None:
        self._pending = None
        if self._pending_timer is not None:
            self._pending_timer.cancel()
            self._pending_timer = None

    def _apply(self, det: Detection) -> None:
        self.detection = det
        if not self.alive or self.stopping:
            return
        old_screen, self.screen_state = self.screen_state, det.state
        new = det.state
        if self.state == "starting" and new not in ("idle", "blocked"):
            return
        if self.user_hold:
            # A person holds the agent: it shows `user`, but a delegated task in flight
            # still follows the screen, so its turn ends where the screen says it ended and
            # a prompt the person types afterwards is never taken for the task's answer.
            if old_screen != det.state:
                self._task_progress(old_screen, det.state)
            new = "user"
        self.change_state(new, det.rule)
        self._check_draft()

    # -- a person's unsent draft --------------------------------------------------------------
    def note_person_input(self) -> None:
        """Keys from a person: text they leave in the input box is theirs, not ours to send."""
        self.person_typed = True

    def box_text(self) -> str | None:
        """The input box's text without its prompt mark ('' when empty, None with no box)."""
        return box_text(self.input_box(), str(self.profile.get("prompt_prefix", "")))

    def _check_draft(self) -> None:
        """Keep `draft` current. Only text a person typed counts: a program's own ghost
        suggestion, or a task's text put back after an interrupt, is not a draft."""
        if self.current_task is not None:
            return
        if self.screen_state == "working":
            self.person_typed = False  # they sent what they typed
        if not self.person_typed:
            text = ""
        elif self.state in ("idle", "user"):
            text = self.box_text() or ""
        else:
            return  # a dialog or a restart: the draft stays as it was
        if not text and self.draft is not None:
            self.person_typed = False  # they sent it or cleared it
        draft = text or None
        if draft != self.draft:
            had = self.draft is not None
            self.draft = draft
            if had != (draft is not None):
                self._emit("draft", draft=draft)

    def set_user_hold(self, hold: bool) -> None:
        """A person is typing into this agent (console): report `user`, deliver nothing."""
        self.user_hold = hold
        if not self.alive or self.state == "starting":
            return
        self.change_state("user" if hold else self.screen_state, "person")

    # -- hangs ------------------------------------------------------------------------------
    def _arm_stall_timer(self, delay: float) -> None:
        """One timer per working spell, re-armed from the last output when it fires (never
        on each output burst), so watching for hangs costs nothing while output flows."""
        if self.stall_after <= 0 or self._stall_timer is not None:
            return
        self._stall_timer = asyncio.get_running_loop().call_later(delay, self._check_stall)

    def _check_stall(self) -> None:
        self._stall_timer = None
        if self.state != "working" or not self.alive:
            return
        quiet = time.monotonic() - self._last_output
        if quiet >= self.stall_after:
            if not self.stalled:
                self._set_stalled(True)
            return
        self._arm_stall_timer(self.stall_after - quiet)

    def _set_stalled(self, stalled: bool) -> None:
        self.stalled = stalled
        if not stalled and self.state == "working":
            self._arm_stall_timer(self.stall_after)
        self._emit("stalled", stalled=stalled, quiet=self.stall_after)

    # -- the state machine ------------------------------------------------------------------
    def change_state(self, new: str, reason: str = "") -> None:
        old = self.state
        if new == old:
            return
        if new not in TRANSITIONS[old]:
            raise ValueError(f"agent {self.name}: {old} → {new} is not allowed")
        self.state = new
        self.last_active = self.clock()
        if new == "working":
            self._arm_stall_timer(self.stall_after)
        elif self.stalled:
            self._set_stalled(False)
        self._emit("state", old=old, new=new, reason=reason)
        self._task_progress(old, new)
        self._wake()

    def _emit(self, kind: str, **data: Any) -> None:
        if self.listener is not None:
            self.listener(self, kind, data)

    # -- waiting on conditions, without polling ----------------------------------------------
    def _wake(self) -> None:
        if not self._waiters:
            return
        keep = []
        for pred, fut in self._waiters:
            if fut.done():
                continue
            if pred():
                fut.set_result(True)
            else:
                keep.append((pred, fut))
        self._waiters = keep

    async def until(self, pred: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until `pred()` holds, re-checked on every output and state change."""
        if pred():
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False

    # -- writing ------------------------------------------------------------------------
    def write(self, data: str | bytes) -> None:
        if self.proc is None:
            return
        self.proc.write(data.encode() if isinstance(data, str) else data)

    def resize(self, rows: int, cols: int) -> None:
        self.spec.rows, self.spec.cols = rows, cols
        self.term.resize(rows, cols)
        if self.proc is not None:
            self.proc.resize(rows, cols)
        self._evaluate()

    def encode_task(self, text: str) -> str:
        """The keys that put `text` into the input box (not the Enter)."""
        text = _CONTROL.sub("", text.replace("\r\n", "\n")).strip("\n")
        multi = "\n" in text or len(text) >= 64
        if self.profile.get("paste") == "bracketed" and multi and self.term.screen.bracketed_paste:
            return f"\x1b[200~{text}\x1b[201~"
        return text

    def input_box(self) -> str | None:
        return self.view().region("prompt_box")

    # -- tasks ------------------------------------------------------------------------------
    async def run_task(self, task: Task) -> None:
        """Type `task` into the program and return when it is answered, failed or cancelled."""
        if self.state != "idle":
            raise RuntimeError(f"agent {self.name} is {self.state}, not idle")
        loop = asyncio.get_running_loop()
        self.current_task = task
        task.agent = self.name
        task.move("delivered", now=self.clock())
        self._left_idle = False
        self._submitted = False
        self._task_done = loop.create_future()
        self._mark_transcript()
        self._emit("task", task=task)

        await self._clear_residue()
        self.person_typed = False  # the box was empty at dispatch: what appears in it is ours
        self._last_text = task.text
        keys = self.encode_task(task.text)
        gen = self.term.generation
        has_box = self.input_box() is not None
        self.write(keys)
        # The Enter must be a separate write, after the program took the text (else a
        # long text plus Enter reads as one paste and the Enter becomes a newline):
        # wait until the input box shows it, or, with no box, for the echo.
        if has_box:
            shown = await self.until(lambda: self._text_in_box(task.text) or not self.alive, 2.0)
            if not shown and self.alive and (self.state != "idle" or self.input_box() is None):
                # The program was not ready after all (a person's prompt had just started,
                # a dialog opened): it never took the text, so pressing Enter now would
                # tie this task to someone else's turn. Hand it back to the queue.
                self.current_task = None
                task.move("queued", now=self.clock())
                task.agent = None
                self._emit("task", task=task)
                raise NotTaken(f"{self.name} was not ready ({self.state})")
        else:
            await self.until(lambda: self.term.generation != gen or not self.alive, 1.0)
        enter = str(self.profile.get("enter", "\r"))
        for attempt in range(2):
            if self._task_done.done():
                break
            self._submitted = True
            self.write(enter)
            if await self.until(
                lambda: (
                    self._left_idle or not self.alive or self._task_done is None or self._task_done.done()
                ),
                self.confirm_timeout,
            ):
                break
            if not self._text_in_box(task.text):
                # The text left the box but we saw no busy frame: the program finished
                # within one read (an instant reply). Settle it from the screen.
                self._finish_task()
                break
            if attempt == 1:
                self._fail_task("the agent did not accept the input (still idle after Enter twice)")
        await asyncio.shield(self._task_done)

    async def _clear_residue(self) -> None:
        """An interrupted turn (Esc, a cancel, a stall policy) puts its prompt back in the
        box, and the next task would be appended to it: clear our own text first. The
        clear key only goes to a box that holds text (Ctrl-C on an empty one arms exit)."""
        if self._last_text is None or not self.box_text() or not self._text_in_box(self._last_text):
            return
        self.write(str(self.profile.get("clear_input", "\x03")))
        await self.until(lambda: not self.box_text() or not self.alive, 1.0)

    async def resume_task(self, task: Task) -> str:
        """Carry on with a task this (adopted) agent had when the previous daemon died.

        Returns "done" / "failed" when it ended here, or "requeue" when the agent never
        got it (the text is neither answered nor waiting in its input box)."""
        await self.until(lambda: self.state != "starting" or not self.alive, 15.0)
        if not self.alive:
            return "requeue"
        loop = asyncio.get_running_loop()
        self.current_task = task
        task.agent = self.name
        self._task_done = loop.create_future()
        self._submitted = True
        self._transcript = None
        if self.profile.get("transcript") == "claude":
            self._transcript = answers.transcript_path(self.env, self._cwd(), self.session_id)
            self._transcript_offset = 0
        if self.state in ("working", "blocked", "user"):
            self._left_idle = True  # it is still at it: completion comes with the next idle
            if task.state == "delivered" and self.state != "user":
                task.move(self.state, now=self.clock())
        elif self.recover_answer(task) is not None:
            self._finish_task()  # it finished while no daemon watched
        elif self._text_in_box(task.text):
            self.write(str(self.profile.get("enter", "\r")))  # typed, never submitted
        else:
            self.current_task = None
            self._submitted = False
            return "requeue"
        await asyncio.shield(self._task_done)
        return task.state

    def _text_in_box(self, text: str) -> bool:
        box = self.input_box()
        if box is None:
            return False
        first = " ".join(text.split())[:20]
        flat = " ".join(box.split())
        return bool(first) and (first in flat or "[Pasted text" in flat)

    def _task_progress(self, old: str, new: str) -> None:
        task = self.current_task
        if task is None or task.final:
            return
        if new in ("exited", "crashed"):
            return  # handled in _on_exit
        if not self._submitted:
            return  # typing the text is not the task starting
        if new in ("working", "blocked", "user") and old in ("idle", "user", "working", "blocked"):
            if new != "user":
                self._left_idle = True
                task.move(new, now=self.clock())
                self._emit("task", task=task)
        elif new == "idle" and self._left_idle:
            self._finish_task()

    def _mark_transcript(self) -> None:
        self._transcript = None
        if self.profile.get("transcript") == "claude":
            path = answers.transcript_path(self.env, self._cwd(), self.session_id)
            self._transcript = path
            try:
                self._transcript_offset = path.stat().st_size
            except OSError:
                self._transcript_offset = 0

    async def extract_answer(self, task: Task) -> tuple[str, str]:
        """The answer: the transcript's once the turn is recorded as complete, else the screen.

        Claude may finish writing the turn to its transcript a moment after the screen
        shows the prompt again: then we wait for the file to be written to (inotify,
        dirwatch.py; timed re-reads where it is missing), 1.5 s at most.
        """
        if self._transcript is not None:
            got = await self._transcript_answer(task)
            if got.text is not None:
                return got.text, "transcript" if got.complete else "transcript (turn end not recorded)"
        text = self.screen_answer(task)
        if text is None:  # our prompt scrolled away: the newest answer block is the best guess
            return self.screen_answer(task, loose=True) or "", "screen (prompt not found)"
        return text, "screen"

    async def _transcript_answer(self, task: Task) -> answers.TranscriptAnswer:
        assert self._transcript is not None
        path, offset = self._transcript, self._transcript_offset
        events = file_events()
        if path.exists():
            events.armed(path)  # before the first read: a write in between still wakes us
        deadline = time.monotonic() + TRANSCRIPT_WAIT
        while True:
            got = answers.from_transcript(path, offset, task.text)
            if not got.seen_prompt or (got.complete and got.text is not None):
                return got  # no transcript of this turn at all, or the whole turn is there
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            await events.changed(path, left)

    def screen_answer(self, task: Task, *, loose: bool = False) -> str | None:
        p = self.profile
        text = answers.from_screen(
            self.term.history_text(),
            self.term.lines(),
            task.text,
            prompt_prefix=str(p.get("prompt_prefix", "")),
            answer_prefix=str(p.get("answer_prefix", "")),
            drop=list(p.get("answer_drop", [])),
            prompt_regex=p.get("prompt_regex"),
            loose=loose,
        )
        return text

    def _finish_task(self) -> None:
        """The turn is over on screen: collect the answer, then mark the task done."""
        task = self.current_task
        if task is None or task.final or self._finishing:
            return
        self._finishing = True
        self._finisher = asyncio.get_running_loop().create_task(self._complete(task))

    async def _complete(self, task: Task) -> None:
        try:
            answer, source = await self.extract_answer(task)
        finally:
            self._finishing = False
        if task.final:
            return
        task.answer, task.answer_source = answer, source
        if task.state == "delivered":
            task.move("working", now=self.clock())
        task.move("done", now=self.clock())
        self._end_task(task)

    def _fail_task(self, error: str, state: str = "failed") -> None:
        task = self.current_task
        if task is None or task.final:
            return
        task.error = error
        task.move(state, now=self.clock())
        self._end_task(task)

    def cancel_task(self) -> None:
        """Interrupt the running task (the profile's interrupt key) and mark it cancelled."""
        if self.current_task is None:
            return
        self._fail_task("cancelled", "cancelled")
        self.write(str(self.profile.get("interrupt", "\x1b")))

    def _end_task(self, task: Task) -> None:
        self.done_titles.append(task.title())
        self.current_task = None
        self._left_idle = False
        self._submitted = False
        if self._task_done is not None and not self._task_done.done():
            self._task_done.set_result(None)
        self._emit("task", task=task)
        self._wake()

    def _on_exit(self, status: ExitStatus) -> None:
        self.exit_status = status
        self._clear_pending()
        crashed = self.current_task is not None and not self.current_task.final
        if crashed and self.keeper_lost:
            self._fail_task(f"agent {self.name} ended with the keeper", "interrupted")
        elif crashed:
            self._fail_task(f"agent {self.name} crashed ({status.describe()}) while working on it")
        self.error = self.error or (None if status.ok else status.describe())
        self.change_state("crashed" if crashed else "exited", status.describe())
        self._emit("exit", status=status.describe(), ok=status.ok)

    # -- reporting ------------------------------------------------------------------------------
    def context_summary(self) -> str:
        n = len(self.done_titles)
        if not n:
            return "no tasks yet"
        recent = ", ".join(self.done_titles[-3:])
        return f"{n} task{'s' if n != 1 else ''}: {recent}"

    def status(self) -> dict[str, Any]:
        det = self.detection
        return {
            "agent_id": self.name,
            "status": self.state,
            "current_task": self.current_task.id if self.current_task else None,
            "current_task_title": self.current_task.title() if self.current_task else None,
            "context_summary": self.context_summary(),
            "last_active": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_active)),
            "pid": self.pid,
            "window_id": self.name,
            "profile": self.profile.name,
            "role": self.spec.role,
            "session_id": self.session_id,
            "rule": det.rule if det else None,
            "stalled": self.stalled,
            "draft": self.draft,
            "exit": self.exit_status.describe() if self.exit_status else None,
            "error": self.error,
            "command": self.spec.command,
            "cwd": self.spec.cwd,
            "worktree": self.spec.cwd if self.spec.worktree else None,
        }
