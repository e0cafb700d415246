"""Two things an agent watches for besides its state: a hang, and a person's unsent draft.

Both are small state machines fed by the agent (its output, its state changes, its screen)
that report a change through one callback; neither knows the agent itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class StallWatch:
    """A working agent with no output for `after` seconds is stalled (0: never).

    One timer per working spell, re-armed from the last output when it fires (never on
    each output burst), so watching for hangs costs nothing while output flows."""

    def __init__(self, working: Callable[[], bool], on_change: Callable[[bool], None]) -> None:
        self.after = 0.0
        self.stalled = False
        self._working = working
        self._on_change = on_change
        self._timer: asyncio.TimerHandle | None = None
        self._last_output = time.monotonic()

    def output(self) -> None:
        """The program wrote something: it is not stalled."""
        self._last_output = time.monotonic()
        if self.stalled:
            self._set(False)

    def state_changed(self, working: bool) -> None:
        """The agent changed state: a working spell starts, or any stall ends."""
        if working:
            self._arm(self.after)
        elif self.stalled:
            self._set(False)

    def _arm(self, delay: float) -> None:
        if self.after <= 0 or self._timer is not None:
            return
        self._timer = asyncio.get_running_loop().call_later(delay, self._check)

    def _check(self) -> None:
        self._timer = None
        if not self._working():
            return
        quiet = time.monotonic() - self._last_output
        if quiet >= self.after:
            if not self.stalled:
                self._set(True)
            return
        self._arm(self.after - quiet)

    def _set(self, stalled: bool) -> None:
        self.stalled = stalled
        if not stalled and self._working():
            self._arm(self.after)
        self._on_change(stalled)


class DraftWatch:
    """What a person left in the input box unsent: no task is typed on top of it.

    Only text a person typed counts: a program's own ghost suggestion, or a task's text
    put back after an interrupt, is not a draft."""

    def __init__(self, on_change: Callable[[str | None], None]) -> None:
        self.draft: str | None = None
        self.person_typed = False
        """A person (console, `staff send`) typed since the input box was last empty."""
        self._on_change = on_change

    def reset(self) -> None:
        """A new process has an empty box."""
        self.draft, self.person_typed = None, False

    def check(self, *, screen_working: bool, at_prompt: bool, box_text: Callable[[], str | None]) -> None:
        """Keep `draft` current from the screen. `at_prompt`: the agent is idle or held by a
        person (elsewhere, a dialog or a restart, the draft stays as it was)."""
        if screen_working:
            self.person_typed = False  # they sent what they typed
        if not self.person_typed:
            text = ""
        elif at_prompt:
            text = box_text() or ""
        else:
            return
        if not text and self.draft is not None:
            self.person_typed = False  # they sent it or cleared it
        draft = text or None
        if draft != self.draft:
            had = self.draft is not None
            self.draft = draft
            if had != (draft is not None):
                self._on_change(draft)
