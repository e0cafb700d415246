"""The agent states: one vocabulary for the agent, the detector, the team and the clients.

The values are the strings on the wire and in the status files, so a `StrEnum` member
compares, hashes and serialises as that string. This module imports nothing.
"""

from __future__ import annotations

from enum import StrEnum


class AgentState(StrEnum):
    """In the order a person reads them (the console's counts list them so)."""

    IDLE = "idle"
    """Ready for input: an empty prompt, no turn running."""
    WORKING = "working"
    BLOCKED = "blocked"
    """Asking a question: a permission prompt, a trust dialog, a menu."""
    USER = "user"
    """A person holds it (the console): no task is typed in meanwhile."""
    STARTING = "starting"
    EXITED = "exited"
    CRASHED = "crashed"
    """Exited while a task was running."""


IDLE, WORKING, BLOCKED, USER, STARTING, EXITED, CRASHED = AgentState

DOWN = frozenset({EXITED, CRASHED})
"""The program is not running."""
BUSY = frozenset({WORKING, BLOCKED, USER})
"""In a turn, or held: a task in flight follows these (`delivery.py`)."""
AT_PROMPT = frozenset({IDLE, USER})
"""The input box is the person's or ours to type into (a draft is read from it)."""
DETECTABLE = (IDLE, WORKING, BLOCKED, USER, STARTING)
"""What a screen can show: a rule file names one of these (DOWN comes from the exit)."""

TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    STARTING: frozenset({IDLE, BLOCKED, WORKING, USER, *DOWN}),
    IDLE: frozenset({WORKING, BLOCKED, USER, *DOWN}),
    WORKING: frozenset({IDLE, BLOCKED, USER, *DOWN}),
    BLOCKED: frozenset({IDLE, WORKING, USER, *DOWN}),
    USER: frozenset({IDLE, WORKING, BLOCKED, *DOWN}),
    EXITED: frozenset({STARTING}),
    CRASHED: frozenset({STARTING}),
}
"""The moves `Agent.change_state()` allows: a running agent goes anywhere but back to
starting; a stopped one only starts again."""

