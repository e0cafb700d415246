"""`staff-hook`: the editor Claude Code runs on Ctrl-G, turned into a delegation.

Claude Code runs ``$VISUAL``/``$EDITOR`` on ``$TMPDIR/claude-<uid>/claude-prompt-<uuid>.md``
and puts the file's text back in its input box when the editor exits 0. This hook:

- hands any other file (a commit message, /memory) straight to the real editor (exec);
- for a prompt file with ``@agent …`` task lines (see parse.py), submits the tasks to the
  daemon (starting one if none runs), waits for every answer — a live view with keys on a
  terminal (live.py) — and writes the answers, labelled, in the order written;
- for a prompt file with no task line, opens the picker on a terminal (picker.py), else
  the real editor;
- prepends what waits in the inbox (background answers, monitor alerts).

It always exits 0 (a non-zero exit makes Claude Code throw the edit away) and never loses
the person's text: the file is only ever replaced whole, by a rename, and on any failure,
timeout, cancel or signal it holds the original text plus one ``[staff] …`` line that says
what happened and how to fetch the answer later.

Imports: `supervisor.protocol`, `supervisor.util` and the standard library; rich and prompt_toolkit only
when drawing on a terminal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import FrameType
from typing import Any

from supervisor.protocol import ERR_NO_DAEMON, Client, ProtocolError, socket_path
from supervisor.util.atomic import write_atomic

from . import delegate as dg
from .parse import MAX_TASK_BYTES, Plan, is_prompt_file, may_delegate, parse
from .settings import Settings, real_editor

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def staff_cmd(*args: str) -> list[str]:
    """The `staff` CLI of this same installation."""
    return [sys.executable, "-m", "supervisor", *args]


def on_terminal() -> bool:
    return os.isatty(0) and os.isatty(1)


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise dg.Interrupted(signal.Signals(signum).name)


class Hook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.original = b""
        self.settings = Settings()
        self.client: Client | None = None
        self.notes: list[str] = []  # said after the answers (e.g. "started the daemon")
        self.inbox: list[dict[str, Any]] = []
        self.tasks: list[dg.Running] = []
        self.finished = False

    # -- the entry point: whatever happens, exit 0 with the text safe ---------------------------
    def run(self) -> int:
        for sig in SIGNALS:
            signal.signal(sig, _raise_interrupted)
        try:
            try:
                self.original = self.path.read_bytes()
            except OSError as exc:
                print(f"staff-hook: cannot read {self.path}: {exc}", file=sys.stderr)
                return 0
            self.settings = Settings.load()
            self.main()
        except (dg.Interrupted, KeyboardInterrupt) as exc:
            name = exc.signame if isinstance(exc, dg.Interrupted) else "SIGINT"
            self.safe_fail(
                dg.summary(self.tasks, f"interrupted ({name})")
                if self.tasks
                else f"interrupted ({name}) before anything was sent; your text is as it was"
            )
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ProtocolError) else exc.message
            self.safe_fail(
                dg.summary(self.tasks, f"the hook failed ({what})")
                if self.tasks
                else f"not delegated: {what}; your text is as it was"
            )
        finally:
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            if self.client is not None:
                self.client.close()
        return 0

    def safe_fail(self, line: str) -> None:
        """The last resort: if even writing the note fails, the original file is still there."""
        try:
            self.fail(line)
        except (Exception, dg.Interrupted) as exc:
            print(f"staff-hook: {line} (and the file could not be written: {exc})", file=sys.stderr)

    def finish(self, data: bytes, *, ack_tasks: AbstractSet[str] = frozenset()) -> None:
        """Write the file once (atomically), then mark the inbox items handed over as read."""
        if self.finished:
            return
        old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            if data != self.original:
                write_atomic(self.path, data)
            self.finished = True
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if self.client is not None:
            dg.ack_items(self.client, set(ack_tasks), [i["id"] for i in self.inbox])

    def fail(self, line: str, *, ack_tasks: AbstractSet[str] = frozenset()) -> None:
        if self.finished:
            return
        body = dg.with_note(self.original, line)
        self.finish(self._with_inbox(body), ack_tasks=ack_tasks)

    def _with_inbox(self, body: bytes) -> bytes:
        if not self.inbox:
            return body
        head = "\n\n".join(dg.inbox_block(i) for i in self.inbox).encode()
        return head + (b"\n\n" + body if body else b"")

    # -- deciding what to do --------------------------------------------------------------------
    def main(self) -> None:
        raw = self.original
        if not may_delegate(raw):
            try:
                draft = None if b"\0" in raw else raw.decode("utf-8")
            except UnicodeDecodeError:
                draft = None  # not text Claude Code wrote: only the real editor fits
            self.no_delegation(draft)
            return
        if b"\0" in raw:
            self.fail("not delegated: the prompt file holds binary data (NUL bytes); your text is as it was")
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(
                f"not delegated: the prompt file is not valid UTF-8 (byte {raw[exc.start]:#04x} at "
                f"offset {exc.start}); your text is as it was"
            )
            return
        if not parse(text).tasks:
            self.no_delegation(text)
            return
        c = self.connect(start=True)
        known = set(c.call("ping")["agents"])
        plan = parse(text, known)
        if not plan.tasks:
            self.no_delegation(text, unknown=plan.unknown)
            return
        self.delegate(plan)

    def connect(self, *, start: bool) -> Client:
        if self.client is not None:
            return self.client
        c = Client(socket_path(), timeout=30.0)
        try:
            c.connect()
        except ProtocolError as exc:
            if exc.code != ERR_NO_DAEMON or not start:
                raise
            self.start_daemon()
            c.connect()
        self.client = c
        return c

    def start_daemon(self) -> None:
        import subprocess

        if on_terminal():
            print("staff-hook: no daemon running; starting one…", file=sys.stderr, flush=True)
        proc = subprocess.run(
            staff_cmd("up"), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180
        )
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or ["`staff up` failed"])[-1].removeprefix("staff: ")
            raise ProtocolError(ERR_NO_DAEMON, f"no daemon was running and starting one failed: {why}")
        said = " ".join(proc.stdout.split()).removeprefix("staff: ")
        self.notes.append(f"no daemon was running, so the hook started one: {said}")

    def fetch_inbox(self) -> None:
        if self.client is None:
            return
        try:
            items = self.client.call("inbox", to="chief")["items"]
            self.inbox = [i for i in items if not i.get("delivered")]  # pushed already (chief.py)
        except ProtocolError:
            self.inbox = []

    # -- a draft with no task line ----------------------------------------------------------------
    def no_delegation(self, text: str | None, unknown: list[str] | None = None) -> None:
        client: Client | None = None
        try:
            client = self.connect(start=False)
        except ProtocolError:
            client = None
        if client is not None:
            self.fetch_inbox()
        if text is not None and client is not None and self.settings.picker and on_terminal():
            from .picker import pick

            while True:
                choice = pick(socket_path(), text, unknown or [])
                if choice is None:  # Esc: back to Claude Code, the draft as it was
                    self.finish(self._with_inbox(self.original))
                    return
                if choice == ":console":
                    self.run_sub(staff_cmd("console"), "console")
                    continue
                if choice == ":editor":
                    break
                known = set(client.call("ping")["agents"])
                plan = parse(f"@{choice}\n{text}", known | {choice})
                self.delegate(plan)
                return
        self.editor()

    def run_sub(self, argv: list[str], what: str) -> None:
        """Run `staff attach` / `staff console` on this terminal if this staff has it."""
        import subprocess

        probe = subprocess.run([*argv[:4], "--help"], capture_output=True, timeout=30)
        if probe.returncode != 0:
            print(f"staff-hook: `staff {what}` is not available in this version", file=sys.stderr)
            time.sleep(1.5)  # let the person read it before the screen is redrawn
            return
        subprocess.run(argv)

    def editor(self) -> None:
        """The person's real editor on the file (the inbox, if any, written on top first)."""
        if self.inbox:
            self.finish(self._with_inbox(self.original))
        argv = [*real_editor(self.settings), str(self.path)]
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            for sig in SIGNALS:
                signal.signal(sig, _raise_interrupted)
            self.finished = False
            self.original = self.path.read_bytes()
            self.inbox = []
            self.fail(f"could not run your editor {argv[0]!r}: {exc.strerror}; set STAFF_EDITOR")

    # -- delegating --------------------------------------------------------------------------------
    def delegate(self, plan: Plan) -> None:
        for spec in plan.tasks:
            if not spec.body.strip():
                self.fail(
                    f"nothing to delegate to @{spec.target} (line {spec.line}): the task is empty; "
                    "write the task after the name"
                )
                return
            size = len(spec.text(plan.context).encode())
            if size > MAX_TASK_BYTES:
                self.fail(
                    f"not delegated: the task for @{spec.target} is {size / 1e6:.1f} MB, over the "
                    f"{MAX_TASK_BYTES // 1024} KB a task may carry; put the material in a file and "
                    "name the file in the task"
                )
                return
        c = self.connect(start=True)
        self.fetch_inbox()
        try:
            dg.submit_all(c, plan.tasks, plan.context, self.tasks)
        except ProtocolError as exc:
            if exc.code == ERR_NO_DAEMON:
                raise
            made = {r.id for r in self.tasks}  # cancelled by submit_all: nothing runs on
            dg.settle(socket_path(), self.tasks, 3.0)
            self.tasks = []
            self.fail(f"not delegated: {exc.message}; your text is as it was", ack_tasks=made)
            return
        view = self.make_view()
        try:
            outcome = dg.wait_all(socket_path(), self.tasks, time.monotonic() + self.settings.timeout, view)
        except ProtocolError as exc:
            if exc.code == ERR_NO_DAEMON:
                self.client = None
                self.fail(
                    dg.summary(self.tasks, "the daemon stopped while waiting")
                    + " (restart it with `staff up`)"
                )
                return
            raise
        finally:
            view.close()
        done = {r.id for r in self.tasks if r.state == "done"}
        final_bad = {r.id for r in self.tasks if r.final and r.state != "done"}
        if outcome == "done" and len(done) == len(self.tasks):
            parts = [plan.head] if plan.head else []
            parts += [dg.answer_block(r) for r in self.tasks]
            parts += [dg.note(n).decode() for n in self.notes]
            self.finish(self._with_inbox("\n\n".join(parts).encode()), ack_tasks=done)
        elif outcome == "cancel":
            for r in self.tasks:
                if not r.final:
                    with contextlib.suppress(ProtocolError):
                        c.call("cancel", task=r.id)
            dg.settle(socket_path(), self.tasks, 3.0)
            ids = " ".join(r.id for r in self.tasks)
            self.fail(
                f"cancelled ({ids}); your text is as it was",
                ack_tasks={r.id for r in self.tasks if r.state != "done"},
            )
        elif outcome == "background":
            ids = ", ".join(f"{r.who} {r.id}" for r in self.tasks)
            self.fail(
                f"in the background: {ids}; the answers land in the inbox and come with your next "
                f"Ctrl-G (or `staff wait {' '.join(r.id for r in self.tasks)}`)",
                ack_tasks=final_bad,
            )
        elif outcome == "timeout":
            self.fail(
                dg.summary(self.tasks, f"no answer within {self.settings.timeout:g}s"), ack_tasks=final_bad
            )
        else:
            bad = len(self.tasks) - len(done)
            what = (
                "the task did not succeed"
                if len(self.tasks) == 1
                else f"{bad} of {len(self.tasks)} tasks did not succeed"
            )
            self.fail(dg.summary(self.tasks, what), ack_tasks=final_bad)

    def make_view(self) -> dg.View:
        if not on_terminal():
            return dg.NullView()
        try:
            from .live import LiveView
        except ImportError:
            return dg.NullView()
        return LiveView(self.client, self.run_sub)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not is_prompt_file(args[0]):
        editor = real_editor(Settings.load() if args else None)
        try:
            os.execvp(editor[0], [*editor, *args])
        except OSError as exc:
            print(f"staff-hook: cannot run the editor {editor[0]!r}: {exc.strerror}", file=sys.stderr)
            return 1
    return Hook(Path(args[0])).run()


if __name__ == "__main__":
    sys.exit(main())
