"""A daemon with one real Claude Code agent (`cc`) against the mock API, for the e2e tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fixtures.claude_env import claude_env, find_claude, prepare_home
from fixtures.mock_anthropic import start_mock, stop
from tests.conftest import staff
from tests.helpers.agent_team import require_program, team_toml


def require_claude() -> str:
    """The real Claude Code's path for a module of e2e tests (see require_program)."""
    return require_program(find_claude(), "Claude Code", "claude", "claude")


def write_claude_team(tmp_path: Path, claude: str, port: int, args: Sequence[str] = ()) -> tuple[Path, Path]:
    """A trusted Claude home and a team file with the one agent `cc` against the mock on
    `port`; returns (its workdir, the team file)."""
    work = tmp_path / "work"
    work.mkdir()
    chome = tmp_path / "claude-home"
    prepare_home(chome, work)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(team_toml("cc", "claude", [claude, *args], work, claude_env(chome, port)))
    return work, cfg


@contextmanager
def claude_daemon(tmp_path: Path, claude: str, args: Sequence[str] = ()) -> Iterator[Path]:
    """Start the mock, a trusted Claude home and `staff up` with agent `cc`; yields its workdir."""
    server, port = start_mock(log_path=tmp_path / "mock.log")
    work, cfg = write_claude_team(tmp_path, claude, port, args)
    staff("up", "-c", str(cfg), check=True)
    try:
        yield work
    finally:
        staff("down")
        stop(server)
