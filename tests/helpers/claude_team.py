"""A daemon with one real Claude Code agent (`cc`) against the mock API, for the e2e tests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from fixtures.claude_env import claude_env, find_claude, prepare_home
from fixtures.mock_anthropic import start_mock, stop
from tests.conftest import staff


def require_claude() -> str:
    """The real Claude Code's path for a module of e2e tests: in CI its absence is an error
    (`make claude` installs it), elsewhere the module is skipped with that hint."""
    claude = find_claude()
    if claude is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs the real Claude Code: `make claude` installs it into .cache/claude")
        pytest.skip("the real Claude Code is not installed (make claude)", allow_module_level=True)
    return claude


def write_claude_team(tmp_path: Path, claude: str, port: int, args: Sequence[str] = ()) -> tuple[Path, Path]:
    """A trusted Claude home and a team file with the one agent `cc` against the mock on
    `port`; returns (its workdir, the team file)."""
    work = tmp_path / "work"
    work.mkdir()
    chome = tmp_path / "claude-home"
    prepare_home(chome, work)
    env = claude_env(chome, port)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(
        "[agents.cc]\n"
        f"command = {json.dumps([claude, *args])}\n"
        'profile = "claude"\n'
        f"cwd = {json.dumps(str(work))}\n"
        "[agents.cc.env]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in env.items())
    )
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
