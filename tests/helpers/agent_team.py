"""A daemon with one real agent other than Claude (`cx`: Codex CLI, `oc`: opencode, `ad`:
Aider, `gm`: Gemini CLI) against its mock API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fixtures import aider_env, codex_env, gemini_env, mock_gemini, opencode_env
from fixtures.mock_openai import MockServer, start_mock
from tests.conftest import staff


@contextmanager
def codex_daemon(
    tmp_path: Path, codex: str, extra: str = "", others: str = ""
) -> Iterator[tuple[Path, MockServer]]:
    """The mock, a Codex home trusting the workdir and `staff up` with agent `cx`; yields the
    workdir and the mock (its records are what Codex sent). `extra`: more TOML for the agent;
    `others`: more agents."""
    server, port = start_mock(log_path=tmp_path / "mock.log")
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "codex-user"
    codex_env.prepare_home(home / ".codex", work, port)
    env = codex_env.codex_env(home, home / ".codex")
    cfg = tmp_path / "staff.toml"
    cfg.write_text(
        "[agents.cx]\n"
        f"command = {json.dumps([codex, *codex_env.ARGS])}\n"
        'profile = "codex"\n'
        f"cwd = {json.dumps(str(work))}\n" + extra +
        "[agents.cx.env]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in env.items()) + others
    )
    staff("up", "-c", str(cfg), check=True)
    try:
        yield work, server
    finally:
        staff("down")
        server.stop()


@contextmanager
def opencode_daemon(tmp_path: Path, opencode: str, extra: str = "") -> Iterator[tuple[Path, MockServer]]:
    """The mock, an opencode home whose only provider is the mock, and `staff up` with agent
    `oc`; yields the workdir and the mock. `extra`: more TOML for the agent."""
    server, port = start_mock(log_path=tmp_path / "mock.log")
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "opencode-user"
    opencode_env.prepare_home(home, port)
    env = opencode_env.opencode_env(home)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(
        "[agents.oc]\n"
        f"command = {json.dumps([opencode])}\n"
        'profile = "opencode"\n'
        f"cwd = {json.dumps(str(work))}\n" + extra +
        "[agents.oc.env]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in env.items())
    )
    staff("up", "-c", str(cfg), check=True)
    try:
        yield work, server
    finally:
        staff("down")
        server.stop()


@contextmanager
def aider_daemon(tmp_path: Path, aider: str, extra: str = "") -> Iterator[tuple[Path, MockServer]]:
    """The mock (chat completions), a fresh git repo and `staff up` with agent `ad` running
    Aider on it (fixtures/aider_env.py: no network but the mock); yields the repo and the mock."""
    server, port = start_mock(log_path=tmp_path / "mock.log")
    work = tmp_path / "work"
    aider_env.prepare_repo(work)
    home = tmp_path / "aider-user"
    aider_env.prepare_home(home)
    env = aider_env.aider_env(home)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(
        "[agents.ad]\n"
        f"command = {json.dumps([aider, *aider_env.args(port, home)])}\n"
        'profile = "aider"\n'
        f"cwd = {json.dumps(str(work))}\n" + extra +
        "[agents.ad.env]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in env.items())
    )
    staff("up", "-c", str(cfg), check=True)
    try:
        yield work, server
    finally:
        staff("down")
        server.stop()


@contextmanager
def gemini_daemon(
    tmp_path: Path, gemini: str, extra: str = ""
) -> Iterator[tuple[Path, mock_gemini.MockServer]]:
    """The Gemini mock, a Gemini home (API-key auth, nothing that calls out) and `staff up`
    with agent `gm`; yields the workdir and the mock. `extra`: more TOML for the agent."""
    server, port = mock_gemini.start_mock(log_path=tmp_path / "mock.log")
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "gemini-user"
    gemini_env.prepare_home(home)
    env = gemini_env.gemini_env(home, port)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(
        "[agents.gm]\n"
        f"command = {json.dumps([gemini, *gemini_env.ARGS])}\n"
        'profile = "gemini"\n'
        f"cwd = {json.dumps(str(work))}\n" + extra +
        "[agents.gm.env]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in env.items())
    )
    staff("up", "-c", str(cfg), check=True)
    try:
        yield work, server
    finally:
        staff("down")
        server.stop()
