"""One agent: its pty, its screen, its detected state, and the task it is working on.

The state machine has one door, `change_state()`, which checks the transition and
publishes an event; everything that moves an agent (screen detection, the child's exit,
a person taking over) goes through it. The delivery of a task into the program is in
`delivery.py`, the watch for hangs and for a person's draft in `watchers.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from supervisor.agent.delivery import Delivery
from supervisor.agent.session import Session
from supervisor.agent.task import Task
from supervisor.agent.watchers import DraftWatch, StallWatch
from supervisor.detect import answers, sessionfiles
from supervisor.detect.question import parse_question
from supervisor.detect.rules import Detection, Profile, View
from supervisor.events import (
    BackgroundChanged,
    DetailChanged,
    DraftChanged,
    LimitChanged,
    SessionChanged,
    Spawned,
    StallChanged,
    StateChanged,
    TaskMoved,
)
from supervisor.pty.process import ExitStatus, ProcessLike, PtyProcess, SpawnError
from supervisor.screen.emulator import Terminal
from supervisor.states import (
    AT_PROMPT,
    BLOCKED,
    CRASHED,
    DOWN,
    EXITED,
    IDLE,
    STARTING,
    TRANSITIONS,
    USER,
    WORKING,
    AgentState,
)

PUMP_DETECT_EVERY = 0.02
"""While a burst is fed slice by slice (`Agent._pump`), how often detection runs on it."""
ANSWER_CONFIRM = 1.0
"""Seconds for a permission answer to show before it is sent again (`Agent.answer`)."""


class AnswerError(Exception):
    """A question could not be answered: the agent is not blocked, or ignored the key."""


def box_text(box: str | None, prefix: str) -> str | None:
    """The text in an input box region: its lines stripped, the prompt mark and blank lines
    dropped ('' for an empty box, None when no box is shown).

    A region that is a paragraph can hold more than the box: Aider draws a rule, then the
    files in the chat, then its prompt, with no blank line between. So what is above the
    first line with the prompt mark is not the box; the mark is dropped from every line
    that has it (Aider's continuation lines repeat it)."""
    if box is None:
        return None
    lines = [ln.strip() for ln in box.splitlines()]
    if prefix:
        first = next((i for i, ln in enumerate(lines) if ln.startswith(prefix)), 0)
        lines = [ln[len(prefix) :].strip() if ln.startswith(prefix) else ln for ln in lines[first:]]
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


AgentEvent = (
    Spawned | StateChanged | TaskMoved[Task] | StallChanged | DraftChanged | SessionChanged | DetailChanged
    | LimitChanged | BackgroundChanged
)
"""What an agent tells its team (supervisor/events.py), with the task record filled in."""
Listener = Callable[["Agent", AgentEvent], None]
ProcessFactory = Callable[..., ProcessLike]
"""Makes an agent's process: `PtyProcess` (the default), a keeper's, or a test's simulation."""


class Agent:
    """One program under a pty: spawn/adopt/stop, its screen, its state machine, and the
    parts that follow it (the delivery of a task, the stall and draft watchers)."""

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
        self.state: AgentState = STARTING
        self.screen_state: AgentState = STARTING
        """What the screen shows (`state` is `user` instead while a person holds the agent)."""
        self.detection: Detection | None = None
        self.rule_hits: dict[str, float] = {}
        """Rule id → when it last decided this agent's state (`staff doctor`: a rule quiet
        for an hour may mean a new release moved its line)."""
        self.up_since: float | None = None
        """When the program was last started (clock time)."""
        self.proc: ProcessLike | None = None
        self.term = Terminal(spec.cols, spec.rows)
        self.last_active = clock()
        self.error: str | None = None
        self.exit_status: ExitStatus | None = None
        self.done_titles: list[str] = []
        self.session_id = str(uuid.uuid4()) if self.profile.settings.session_flag else ""
        """Ours when the profile passes a session flag; else the program's own, once read
        from its session files ("" until then)."""
        self.starts = 0
        self.started_argv: list[str] | None = None
        """The command line the running program was started with (a resume shows in it)."""
        self.user_hold = False
        self.stopping = False
        self.adopted = False
        self.keeper_lost = False
        self.output_listeners: list[Callable[[bytes, str], None]] = []
        """Called with each output chunk after the screen took it (console streams, recordings)."""
        self._pending: tuple[str, float] | None = None
        self._pending_timer: asyncio.TimerHandle | None = None
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[bool]]] = []
        self._pump_handle: asyncio.Handle | None = None
        self._pump_detected = 0.0
        self.delivery = Delivery(self, confirm_timeout=confirm_timeout)
        self.session = Session(self)
        """The live session id (followed through Claude's /clear) and the tokens used."""
        self.detail: str | None = None
        """What the state does not say (Claude retrying an API call, a limit), or None."""
        self.limited_until: float | None = None
        """A usage or rate limit holds the agent's tasks until then (epoch seconds)."""
        self.limit_reason: str | None = None
        self._limit_timer: asyncio.TimerHandle | None = None
        self.background = 0
        """Background work (shells, sub-agents) the program says still runs after its turn."""
        self.stalls = StallWatch(lambda: self.state == WORKING and self.alive, self._stall_changed)
        self.drafts = DraftWatch(self._draft_changed)

    @property
    def current_task(self) -> Task | None:
        """The task being typed in or worked on (None between tasks)."""
        return self.delivery.task

    @current_task.setter
    def current_task(self, task: Task | None) -> None:
        """None takes the task back from the agent (a stop keeps it for the next start)."""
        self.delivery.task = task

    @property
    def stall_after(self) -> float:
        """Seconds of silence while working before `stalled`; 0: never."""
        return self.stalls.after

    @stall_after.setter
    def stall_after(self, seconds: float) -> None:
        self.stalls.after = seconds

    @property
    def stalled(self) -> bool:
        return self.stalls.stalled

    @property
    def draft(self) -> str | None:
        """What a person left in the input box unsent: no task is typed on top of it."""
        return self.drafts.draft

    # -- lifecycle ---------------------------------------------------------------------
    def argv(self) -> list[str]:
        argv = list(self.spec.command)
        p = self.profile.settings
        if p.session_flag:
            if self.starts > 0 and p.resume_flag and self._has_transcript():
                argv += [p.resume_flag, self.session_id]
            else:
                argv += [p.session_flag, self.session_id]
        elif p.resume_argv and self.starts > 0:
            uses_id = any("{session}" in a for a in p.resume_argv)
            if not uses_id or (self.session_id and self._session_kept()):
                argv += [a.replace("{session}", self.session_id) for a in p.resume_argv]
        if self.spec.role_text and p.role_flag:
            role = self.spec.role_text
            # a JSON string is a TOML basic string (but for DEL, which TOML wants escaped)
            toml = json.dumps(role, ensure_ascii=False).replace("\x7f", "\\u007f")
            argv += [p.role_flag, p.role_value.replace("{role_toml}", toml).replace("{role}", role)]
        return argv

    def cwd(self) -> str:
        """Where the program runs (its transcript is filed under this directory)."""
        return self.spec.cwd or os.getcwd()  # the child inherits ours when none is set

    def transcript(self) -> Path | None:
        """The conversation's transcript, when the program keeps one (Claude Code, the fake)."""
        if not self.profile.settings.session_flag:
            return None
        path = answers.transcript_path(self.env, self.cwd(), self.session_id)
        return path if path.exists() else None

    def _has_transcript(self) -> bool:
        """Resume only a conversation that exists (Claude refuses an unknown --resume id)."""
        return answers.transcript_path(self.env, self.cwd(), self.session_id).exists()

    def _session_kept(self) -> bool:
        """Resume only a session the program still keeps (it refuses an unknown id)."""
        reader = sessionfiles.READERS.get(self.profile.settings.transcript)
        return reader is None or reader.kept(self.env, self.cwd(), self.session_id)

    def recover_answer(self, task: Task) -> str | None:
        """After a daemon restart: the answer to `task` if the transcript shows it finished."""
        return self.delivery.recover_answer(task)

    def _fresh(self) -> None:
        self.term = Terminal(self.spec.cols, self.spec.rows)
        self.term.reply = self._reply
        self.detection = None
        self.screen_state = STARTING
        self.exit_status = None
        self.error = None
        self.drafts.reset()  # a new process has an empty box
        if self.state in DOWN:
            self.change_state(STARTING, "restart")

    def adopt(self, proc: ProcessLike) -> None:
        """Take over a program a previous daemon started (kept alive by the keeper): same
        pid, same conversation; its screen comes back with the repaint it is nudged into."""
        self._fresh()
        proc.on_output = self._on_output
        proc.on_exit = self._on_exit
        self.proc = proc
        argv = getattr(proc, "argv", None)  # the keeper's record of how it was started
        self.started_argv = [str(a) for a in argv] if isinstance(argv, list) else None
        self.adopted = True
        self.emit(Spawned(proc.pid, adopted=True))

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
        argv = self.argv()
        proc = self.process_factory(
            argv, cwd=self.spec.cwd, env=self.env, rows=self.spec.rows, cols=self.spec.cols
        )
        proc.on_output = self._on_output
        proc.on_exit = self._on_exit
        try:
            proc.start()
        except SpawnError as exc:
            self.error = str(exc)
            self.proc = None
            self.change_state(EXITED, self.error)
            return
        self.proc = proc
        self.started_argv = argv
        self.starts += 1
        self.up_since = self.clock()
        self.emit(Spawned(proc.pid))

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

    async def answer(self, keys: str, timeout: float = 10.0, question: str | None = None) -> int:
        """Answer the question the agent is blocked on; returns the tries it took.
        `question`: the id (`Question.id`) of the question the person saw; checked right
        before each key is written, so a tap made through a hub (a screen read, then this,
        a round trip later) never answers another question that showed meanwhile.

        Claude Code sometimes ignores a key sent the instant its dialog appears. So the
        key is sent, and if within ANSWER_CONFIRM s the agent is still blocked on the very
        same question (the text below the last rule unchanged), sent again, three times
        at most. A different question showing up counts as taken: it is never answered
        with the same key by mistake."""
        if not await self.until(lambda: self.state == BLOCKED or not self.alive, timeout):
            raise AnswerError(f"{self.name} is {self.state}, not blocked on a question")
        for attempt in range(1, 4):
            if not self.alive:
                raise AnswerError(f"{self.name} ended ({self.state})")
            if question is not None:
                now = parse_question(self.view().region("after_last_rule"))
                if now is None or now.id != question:
                    said = f"now asks something else: {now.text}" if now else "is not asking that any more"
                    raise AnswerError(f"{self.name} {said}")
            shown = self._question()
            self.write(keys)
            if await self.until(partial(self._question_changed, shown), ANSWER_CONFIRM):
                return attempt
        raise AnswerError(f"{self.name} did not take {keys!r}: still the same question after 3 tries")

    def _question_changed(self, question: str | None) -> bool:
        return self.state != BLOCKED or not self.alive or self._question() != question

    def _question(self) -> str | None:
        """The text of the question on screen: below the last rule (Claude), else the
        bottom of the screen (Codex draws no rules): a new question differs from it."""
        view = self.view()
        below = view.region("after_last_rule")
        return below if below is not None else view.region("bottom:12")

    def _moved_on(self, generation: int) -> bool:
        return self.term.generation != generation or not self.alive

    async def _exit_by_keys(self, grace: float) -> bool:
        """Quit the way a person would (the profile's `exit_keys`: Claude Code's Ctrl-C
        twice, a shell's `exit`), so the program saves its session as it does for them.
        Only at an idle prompt with an empty input box: the keys would otherwise interrupt
        a turn or wipe a draft. False if it did not end within `grace`: signals follow."""
        keys = self.profile.settings.exit_keys
        if not keys or self.proc is None:
            return False
        if self.state != IDLE or self.current_task is not None or self.box_text():  # (a draft too)
            return False
        for key in keys:
            gen = self.term.generation
            self.write(key)
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
        self.stalls.output()
        if self.term.feed_output(data, text):
            self._hold_output()
        self.last_active = self.clock()
        for listener in self.output_listeners:
            listener(data, text)
        self._evaluate()
        self.wake()

    def _hold_output(self) -> None:
        """Part of a burst is held back by the screen: stop reading and feed it one slice per
        loop turn (`_pump`), so a flood on one agent never stalls the others for long."""
        if self._pump_handle is None:
            if self.proc is not None:
                self.proc.pause_reading()
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
        elif self.proc is not None:
            self.proc.resume_reading()
        self._evaluate()
        self.wake()

    def view(self) -> View:
        return View(self.term.lines(), self.term.title, self.term.modes)

    def _evaluate(self) -> None:
        det = self.profile.detect(self.view())
        delay = det.debounce
        if det.state == IDLE and self.screen_state == BLOCKED:
            delay = max(delay, self.profile.settings.settle_after_blocked_ms / 1000)
        if det.state == IDLE and self.state == STARTING:
            delay = max(delay, self.profile.settings.settle_after_start_ms / 1000)
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
        self.rule_hits[det.rule] = self.clock()
        if not self.alive or self.stopping:
            return
        old_screen, self.screen_state = self.screen_state, det.state
        new = det.state
        if self.state == STARTING and new not in (IDLE, BLOCKED):
            return
        if self.user_hold:
            # A person holds the agent: it shows `user`, but a delegated task in flight
            # still follows the screen, so its turn ends where the screen says it ended and
            # a prompt the person types afterwards is never taken for the task's answer.
            if old_screen != det.state:
                self.delivery.progress(old_screen, det.state)
            new = USER
        self.change_state(new, det.rule)
        self._check_detail()
        self._check_background()
        self.check_draft()

    def _check_detail(self) -> None:
        """While working: the program's own retry of a failed API call, as a detail; else
        the limit that holds its tasks (`limited until 11:15`)."""
        pattern = self.profile.settings.retry_regex
        detail = None
        if pattern and self.state == WORKING:
            region = self.view().region("above_prompt_box:4") or ""
            detail = answers.retry_detail(region.splitlines(), pattern)
        if detail is None and self.limited_until is not None:
            detail = "limited until " + time.strftime("%H:%M", time.localtime(self.limited_until))
        if detail != self.detail:
            self.detail = detail
            self.emit(DetailChanged(detail))

    def _check_background(self) -> None:
        """The count of background work the footer shows (0 when it shows none)."""
        pattern = self.profile.settings.background_regex
        if not pattern:
            return
        m = re.search(pattern, self.view().region("after_last_rule") or "", re.M)
        count = int(m.group("n")) if m else 0
        if count != self.background:
            self.background = count
            self.emit(BackgroundChanged(count))

    # -- a usage or rate limit ----------------------------------------------------------------
    def hold(self, until: float, reason: str) -> None:
        """The program hit a limit that lasts until `until` (epoch seconds): the team types
        nothing into it before then, and a timer (not a poll) lifts the hold at that time."""
        if self._limit_timer is not None:
            self._limit_timer.cancel()
        self.limited_until, self.limit_reason = until, reason
        delay = max(0.0, until - self.clock())
        self._limit_timer = asyncio.get_running_loop().call_later(delay, self.lift)
        self._check_detail()
        self.emit(LimitChanged(until, reason))

    def lift(self) -> None:
        """The limit's reset time came (or a person lifted it): tasks go in again."""
        if self._limit_timer is not None:
            self._limit_timer.cancel()
            self._limit_timer = None
        if self.limited_until is None:
            return
        self.limited_until = self.limit_reason = None
        self._check_detail()
        self.emit(LimitChanged(None))

    # -- a person's unsent draft --------------------------------------------------------------
    def note_person_input(self) -> None:
        """Keys from a person: text they leave in the input box is theirs, not ours to send."""
        self.drafts.person_typed = True

    def box_text(self) -> str | None:
        """The input box's text without its prompt mark ('' when empty, None with no box)."""
        settings = self.profile.settings
        text = box_text(self.input_box(), settings.prompt_prefix)
        if text and any(re.fullmatch(p, text) for p in settings.placeholder):
            return ""  # the hint an empty box shows
        return text

    def check_draft(self) -> None:
        """Keep `draft` current (between tasks: during one, the box holds the task's text)."""
        if self.current_task is not None:
            return
        self.drafts.check(
            screen_working=self.screen_state == WORKING,
            at_prompt=self.state in AT_PROMPT,
            box_text=self.box_text,
        )

    def _draft_changed(self, draft: str | None) -> None:
        self.emit(DraftChanged(draft))

    def set_user_hold(self, hold: bool) -> None:
        """A person is typing into this agent (console): report `user`, deliver nothing."""
        self.user_hold = hold
        if not self.alive or self.state == STARTING:
            return
        self.change_state(USER if hold else self.screen_state, "person")

    # -- hangs ------------------------------------------------------------------------------
    def _stall_changed(self, stalled: bool) -> None:
        self.emit(StallChanged(stalled, quiet=self.stalls.after))

    # -- the state machine ------------------------------------------------------------------
    def change_state(self, new: AgentState, reason: str = "") -> None:
        old = self.state
        if new == old:
            return
        if new not in TRANSITIONS[old]:
            raise ValueError(f"agent {self.name}: {old} → {new} is not allowed")
        self.state = new
        self.last_active = self.clock()
        self.stalls.state_changed(new == WORKING)
        if new == IDLE:
            self.session.at_idle()  # a /clear since, and what the turn used, before we say idle
        self.emit(StateChanged(old, new, reason))
        self.delivery.progress(old, new)
        self.wake()

    def emit(self, event: AgentEvent) -> None:
        """Tell the team (the listener) of a change."""
        if self.listener is not None:
            self.listener(self, event)

    # -- waiting on conditions, without polling ----------------------------------------------
    def wake(self) -> None:
        """Re-check what `until()` waits on (after output, a state change, a task's end)."""
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
        return self.delivery.encode(text)

    def input_box(self) -> str | None:
        """The input box's text, or None when the screen shows none (a dialog, a turn's
        output where a program without rules draws its box)."""
        settings = self.profile.settings
        box = self.view().region(settings.input_region)
        if box is not None and settings.input_regex and not re.search(settings.input_regex, box, re.M):
            return None
        return box

    # -- tasks (delivery.py) -----------------------------------------------------------------
    async def run_task(self, task: Task) -> None:
        """Type `task` into the program and return when it is answered, failed or cancelled."""
        await self.delivery.run(task)

    async def resume_task(self, task: Task) -> str:
        """Carry on with a task this (adopted) agent had when the previous daemon died."""
        return await self.delivery.resume(task)

    def cancel_task(self) -> None:
        """Interrupt the running task (the profile's interrupt key) and mark it cancelled."""
        self.delivery.cancel()

    def _on_exit(self, status: ExitStatus) -> None:
        self.exit_status = status
        self._clear_pending()
        self.session.stop()
        crashed = self.current_task is not None and not self.current_task.final
        if crashed and self.keeper_lost:
            self.delivery.fail(f"agent {self.name} ended with the keeper", "interrupted")
        elif crashed:
            self.delivery.fail(f"agent {self.name} crashed ({status.describe()}) while working on it")
        self.error = self.error or (None if status.ok else status.describe())
        self.change_state(CRASHED if crashed else EXITED, status.describe())

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
            "by_name_only": self.spec.by_name_only,  # never given `any`/`role:` tasks (the chief)
            "session_id": self.session_id,
            "usage": self.session.usage(),
            "detail": self.detail,
            "limited_until": (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.limited_until))
                if self.limited_until is not None else None
            ),
            "limit_reason": self.limit_reason,
            "background": self.background,
            "rule": det.rule if det else None,
            "stalled": self.stalled,
            "draft": self.draft,
            "exit": self.exit_status.describe() if self.exit_status else None,
            "error": self.error,
            "command": self.spec.command,
            "argv": self.started_argv,
            "cwd": self.spec.cwd,
            "worktree": self.spec.cwd if self.spec.worktree else None,
        }
