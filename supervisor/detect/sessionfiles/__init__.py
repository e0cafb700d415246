"""Programs that record each turn in session files of their own (Codex's rollouts, …):
where a program keeps them, how to read one turn out of one, and which session a file
holds (so a restart can resume it).

Claude Code's transcript is read apart (`answers.from_transcript`): we choose its session id
and so know its file in advance. The programs here choose their own ids; we find the file
that holds our prompt among those written since the task was typed. A profile names its
reader with `transcript = "<name>"`; `READERS` maps that name to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.detect.answers import TranscriptAnswer
from supervisor.detect.sessionfiles import aider, codex, gemini, opencode


def _no_session(_path: Path) -> str | None:
    return None


def _kept(_env: dict[str, str], _cwd: str, _session: str) -> bool:
    return True


@dataclass(frozen=True)
class SessionFiles:
    """One program's session files."""

    files: Callable[[dict[str, str], str, float], list[Path]]
    """(env, cwd, since epoch seconds) → the files written to since then, newest first."""
    read: Callable[[Path, str, str, frozenset[str]], TranscriptAnswer]
    """(file, the prompt as typed, cwd, sessions to pass over) → the turn that prompt began,
    as far as recorded; the sessions passed over are other agents' of the same program."""
    session_id: Callable[[Path], str | None] = _no_session
    """The program's own id of the session a file holds (None: it cannot be resumed by id)."""
    kept: Callable[[dict[str, str], str, str], bool] = _kept
    """(env, cwd, session id) → the program still keeps that session. Resuming one it lost
    fails (Codex exits on an unknown id), and would again at every restart."""
    one_per_directory: bool = False
    """The program keeps one record per directory, not per session (Aider's history): two
    agents of it in one directory cannot be told apart in it."""


READERS: dict[str, SessionFiles] = {
    "codex": SessionFiles(codex.rollouts, codex.read_turn, codex.session_id, codex.has_session),
    "aider": SessionFiles(aider.histories, aider.read_turn, one_per_directory=True),
    "opencode": SessionFiles(opencode.files, opencode.read_turn, opencode.session_id, opencode.has_session),
    "gemini": SessionFiles(gemini.chats, gemini.read_turn, gemini.session_id, gemini.has_session),
}
