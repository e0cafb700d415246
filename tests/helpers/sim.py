"""A simulated agent program for routing tests: Claude-like screens, no pty, no timing.

It implements `ProcessLike` (supervisor/pty/process.py), so the agent and the team are
tested by replaying input against it (the honcho pattern), and each test decides when a
turn ends (`finish()`), or lets it end on the next loop iteration (`auto=True`).

For the delivery protocol (tests/unit/test_agent.py) an instance can misbehave the ways real
programs do: ask for bracketed paste (`paste_mode`), echo typed text a loop turn late
(`echo_later`), ignore Enters (`ignore_enters`), answer within the same read with no busy
frame (`instant`), or open a question instead of taking the text (`dialog_on_text`). Every
write is logged with the input box as the program showed it at that moment (`writes`).
"""

from __future__ import annotations

import asyncio
import itertools

from supervisor.pty.process import ExitCallback, ExitStatus, OutputCallback, SpawnError

RULE = "─" * 60
_pids = itertools.count(50000)


class SimProcess:
    auto = True
    instances: list[SimProcess] = []

    def __init__(
        self, argv: list[str], *, cwd: str | None, env: dict[str, str], rows: int, cols: int
    ) -> None:
        self.argv, self.env = argv, env
        self.pid: int | None = None
        self.is_stopped = False  # as if SIGSTOPped: reads and draws nothing until `cont()`
        self.pending: list[bytes] = []
        self.exit_status: ExitStatus | None = None
        self.on_output: OutputCallback | None = None
        self.on_exit: ExitCallback | None = None
        self.history: list[str] = []
        self.box = ""
        self.received: list[str] = []
        self.working = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.writes: list[tuple[bytes, str]] = []
        """Each write, with the box as last drawn (what the agent could have seen)."""
        self.shown_box = ""
        self.paste_mode = False
        self.echo_later = False
        self.ignore_enters = 0
        self.instant = False
        self.dialog_on_text = False
        self.dialog = False
        SimProcess.instances.append(self)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self.argv[0] == "missing-program":
            raise SpawnError("command not found: missing-program")
        self.loop = loop or asyncio.get_running_loop()
        self.pid = next(_pids)
        self.loop.call_soon(self.draw)

    @property
    def alive(self) -> bool:
        return self.pid is not None and self.exit_status is None

    def draw(self) -> None:
        footer = "  esc to interrupt" if self.working else "  ? for shortcuts"
        lines = [*self.history[-20:], RULE, f"❯ {self.box}", RULE, footer]
        if self.dialog:
            question = [" Do you want to proceed?", " ❯ 1. Yes", "   2. No", " Esc to cancel"]
            lines = [*self.history[-20:], RULE, *question]
        data = ("\x1b[?2004h" if self.paste_mode else "") + "\x1b[2J\x1b[H" + "\r\n".join(lines)
        self.shown_box = "" if self.dialog else self.box
        if self.on_output and self.alive:
            self.on_output(data.encode(), data)

    def write(self, data: bytes) -> None:
        self.writes.append((data, self.shown_box))
        if self.is_stopped:  # the keys wait in the pty until it runs again (`cont`)
            self.pending.append(data)
            return
        self._take(data)

    def cont(self) -> None:
        """SIGCONT: it runs again and reads what was typed meanwhile."""
        self.is_stopped = False
        pending, self.pending = self.pending, []
        for data in pending:
            self._take(data)

    def _take(self, data: bytes) -> None:
        text = data.decode()
        if text == "\r":
            if self.ignore_enters > 0:
                self.ignore_enters -= 1
                return
            if self.box and not self.working:
                self.received.append(self.box)
                self.history += [f"❯ {self.box}", ""]
                self.box = ""
                if self.instant:  # the whole turn within one read: no busy frame ever shows
                    self.history += [f"● SIM: {self.received[-1]}", ""]
                    self.draw()
                    return
                self.working = True
                self.draw()
                if SimProcess.auto and self.loop:
                    self.loop.call_soon(self.finish)
            return
        if text == "\x1b":
            self.working = False
            self.draw()
            return
        if self.dialog_on_text:  # a question opened as the text arrived: it never reached the box
            self.dialog = True
            self.draw()
            return
        self.box += text.replace("\x1b[200~", "").replace("\x1b[201~", "")
        if self.echo_later and self.loop:
            self.loop.call_soon(self.draw)
        else:
            self.draw()

    def finish(self, answer: str | None = None) -> None:
        if not self.working:
            return
        task = self.received[-1]
        self.history += [f"● {answer or 'SIM: ' + task}", ""]
        self.working = False
        self.draw()

    def crash(self, code: int = 3) -> None:
        self.exit_status = ExitStatus(code, None)
        if self.on_exit:
            self.on_exit(self.exit_status)

    def resize(self, rows: int, cols: int) -> None:
        pass

    def pause_reading(self) -> None:
        pass  # it draws synchronously: nothing to hold back

    def resume_reading(self) -> None:
        pass

    def stopped(self) -> bool:
        return self.is_stopped

    def signal(self, sig: int) -> None:
        if self.alive:
            self.exit_status = ExitStatus(None, sig)
            if self.on_exit:
                self.on_exit(self.exit_status)

    def detach(self) -> None:
        self.on_output = self.on_exit = None

    async def wait(self) -> ExitStatus:
        assert self.loop is not None
        if self.exit_status is not None:
            return self.exit_status
        fut: asyncio.Future[ExitStatus] = self.loop.create_future()
        previous = self.on_exit

        def done(status: ExitStatus) -> None:
            if previous is not None:
                previous(status)
            if not fut.done():
                fut.set_result(status)

        self.on_exit = done
        return await fut

    async def terminate(self, grace: float = 2.0) -> ExitStatus | None:
        self.signal(1)  # SIGHUP ends it at once
        return self.exit_status
