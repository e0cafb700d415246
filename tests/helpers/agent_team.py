"""A daemon with one real agent other than Claude (`cx`: Codex CLI, `oc`: opencode, `ad`:
Aider, `gm`: Gemini CLI) against its mock API: one helper, the programs as data."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures import aider_env, codex_env, gemini_env, mock_gemini, mock_openai, opencode_env
from tests.conftest import staff
from tests.helpers.events import Events

Setup = Callable[[Path, str, int], tuple[Path, list[str], dict[str, str]]]
"""(tmp_path, binary, mock port) → the workdir, the command line and the environment."""


def _codex(tmp_path: Path, codex: str, port: int) -> tuple[Path, list[str], dict[str, str]]:
    """A Codex home trusting the workdir."""
    work, home = tmp_path / "work", tmp_path / "codex-user"
    work.mkdir()
    codex_env.prepare_home(home / ".codex", work, port)
    return work, [codex, *codex_env.ARGS], codex_env.codex_env(home, home / ".codex")


def _opencode(tmp_path: Path, opencode: str, port: int) -> tuple[Path, list[str], dict[str, str]]:
    """An opencode home whose only provider is the mock."""
    work, home = tmp_path / "work", tmp_path / "opencode-user"
    work.mkdir()
    opencode_env.prepare_home(home, port)
    return work, [opencode], opencode_env.opencode_env(home)


def _aider(tmp_path: Path, aider: str, port: int) -> tuple[Path, list[str], dict[str, str]]:
    """A fresh git repo for Aider (fixtures/aider_env.py: no network but the mock)."""
    work, home = tmp_path / "work", tmp_path / "aider-user"
    aider_env.prepare_repo(work)
    aider_env.prepare_home(home)
    return work, [aider, *aider_env.args(port, home)], aider_env.aider_env(home)


def _gemini(tmp_path: Path, gemini: str, port: int) -> tuple[Path, list[str], dict[str, str]]:
    """A Gemini home (API-key auth, nothing that calls out)."""
    work, home = tmp_path / "work", tmp_path / "gemini-user"
    work.mkdir()
    gemini_env.prepare_home(home)
    return work, [gemini, *gemini_env.ARGS], gemini_env.gemini_env(home, port)


@dataclass(frozen=True)
class Program:
    agent: str  # its id in the team file
    title: str  # as the skip and CI messages name it
    find: Callable[[], str | None]
    setup: Setup
    start_mock: Callable[..., tuple[Any, int]] = mock_openai.start_mock


PROGRAMS = {
    "codex": Program("cx", "Codex CLI", codex_env.find_codex, _codex),
    "opencode": Program("oc", "opencode", opencode_env.find_opencode, _opencode),
    "aider": Program("ad", "Aider", aider_env.find_aider, _aider),  # chat completions
    "gemini": Program("gm", "Gemini CLI", gemini_env.find_gemini, _gemini, mock_gemini.start_mock),
}


def require_program(found: str | None, title: str, target: str, cache: str) -> str:
    """The real program's path for a module of e2e tests: in CI its absence is an error
    (`make <target>` installs it), elsewhere the module is skipped with that hint."""
    if found is None:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs the real {title}: `make {target}` installs it into .cache/{cache}")
        pytest.skip(f"the real {title} is not installed (make {target})", allow_module_level=True)
    return found


def require_agent(program: str) -> str:
    """require_program for one of PROGRAMS (all installed by `make agents`)."""
    p = PROGRAMS[program]
    return require_program(p.find(), p.title, "agents", program)


def team_toml(agent: str, profile: str, command: list[str], work: Path, env: dict[str, str],
              extra: str = "", others: str = "") -> str:
    """A team file with the one agent (`extra`: more TOML for it; `others`: more agents)."""
    return (
        f"[agents.{agent}]\n"
        f"command = {json.dumps(command)}\n"
        f"profile = {json.dumps(profile)}\n"
        f"cwd = {json.dumps(str(work))}\n" + extra +
        f"[agents.{agent}.env]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in env.items())
        + others
    )


@contextmanager
def agent_daemon(tmp_path: Path, program: str, binary: str, extra: str = "",
                 others: str = "") -> Iterator[tuple[Path, Any]]:
    """The program's mock, its home and `staff up` with its agent (`extra`: more TOML for the
    agent; `others`: more agents); yields the workdir and the mock (its records are what the
    program sent)."""
    p = PROGRAMS[program]
    server, port = p.start_mock(log_path=tmp_path / "mock.log")
    work, command, env = p.setup(tmp_path, binary, port)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(team_toml(p.agent, program, command, work, env, extra, others))
    staff("up", "-c", str(cfg), check=True)
    try:
        yield work, server
    finally:
        staff("down")
        server.stop()


def team_fixture(program: str, binary: str, extra: str = "") -> Any:
    """A fixture `<program>_team`: agent_daemon's workdir and mock, and the daemon's events."""

    @pytest.fixture(name=f"{program}_team")
    def team(home: Path, tmp_path: Path) -> Iterator[tuple[Path, Any, Events]]:
        with agent_daemon(tmp_path, program, binary, extra) as (work, server):
            events = Events(home)
            try:
                yield work, server, events
            finally:
                events.close()

    return team


def argv(agent: str) -> list[str]:
    """The command line the agent's program was started with, as `staff status --json` says."""
    status = json.loads(staff("status", "--json", check=True).stdout)
    return list(next(a for a in status["agents"] if a["agent_id"] == agent)["argv"])


def restart(home: Path, agent: str, timeout: float = 60) -> None:
    """`staff restart <agent>`, then until it reads idle again (on a subscription made
    before the restart, so its idle cannot pass unseen)."""
    events = Events(home)
    try:
        staff("restart", agent, check=True)
        events.wait_state(agent, "idle", timeout)
    finally:
        events.close()


def failed(r: subprocess.CompletedProcess[str], agent: str) -> str:
    """What a failed `staff ask` leaves to read in CI: the task, the agent's screen and the
    end of the daemon's log (a flake seen once in a fresh clone said only `1 == 0`)."""
    log = Path(os.environ.get("STAFF_HOME", "")) / "daemon.log"
    tail = log.read_text(errors="replace")[-4000:] if log.is_file() else "(no daemon.log)"
    screen = staff("screen", agent).stdout
    return f"{r.stdout}\n{r.stderr}\n--- screen of {agent}:\n{screen}\n--- daemon.log:\n{tail}"


def check_round_trip(events: Events, agent: str, rule: str) -> None:
    """`staff ask` of a reply after 1 s: the answer as the program recorded it, idle before
    and after working, and `staff explain` naming the idle rule `rule`."""
    r = staff("ask", agent, "hello world [delay=1]", "--json", timeout=90)
    assert r.returncode == 0, failed(r, agent)
    task = json.loads(r.stdout)
    assert task["answer"] == "MOCK-REPLY: hello world [delay=1]", task
    assert task["answer_source"] == "transcript", task  # the program's record, not the screen
    seen = events.states(agent)
    i = seen.index("working")
    assert "idle" in seen[:i] and "idle" in seen[i:], seen
    explained = staff("explain", agent, check=True).stdout
    assert f"idle by rule '{rule}'" in explained, explained


def check_paused_reply(events: Events, server: Any, agent: str) -> None:
    """A reply that pauses 5 s half-way: working the whole time, idle only at its end."""
    before = len(events.states(agent))
    r = staff("ask", agent, "pause half-way [middelay=5]", "--json", timeout=90)
    task = json.loads(r.stdout)
    assert task["answer"] == "MOCK-REPLY: pause half-way [middelay=5]", task
    during = events.states(agent)[before:]
    assert during.count("idle") == 1 and during[-1] == "idle", during
    assert "middelay-end" in [name for _t, name in server.events], server.events


def check_approval(events: Events, work: Path, agent: str, shown: str, rule: str | None,
                   *keys: str) -> None:
    """A shell command that needs approval: `blocked` with `shown` on screen, by `rule`
    (None: any blocked rule), answered with `staff answer <keys>`, then done with the
    command's output as the tool result."""
    tid = staff("submit", agent, "run it [bash=echo hi > made.txt; cat made.txt]", check=True).stdout.strip()
    events.wait_state(agent, "blocked", 60)
    screen = staff("screen", agent, check=True).stdout
    assert shown in screen, screen
    explained = staff("explain", agent, check=True).stdout
    assert (f"blocked by rule '{rule}'" if rule else "blocked by rule") in explained, explained
    assert "answered, now" in staff("answer", agent, *keys, check=True).stdout
    done = json.loads(staff("wait", tid, "--json", "--timeout", "90", check=True).stdout)
    assert done["state"] == "done", done
    assert done["answer"] == "MOCK-REPLY: tool result: hi", done
    assert (work / "made.txt").read_text().strip() == "hi"


def check_cancel(events: Events, server: Any, agent: str) -> None:
    """`staff cancel` of a turn waiting 30 s for its reply: the next task's answer is its
    own, well within those 30 s, and the program left the cancelled request mid-wait."""
    tid = staff("submit", agent, "never mind this one [delay=30]", check=True).stdout.strip()
    events.wait(lambda e: e.get("type") == "task" and e["task"]["id"] == tid
                and e["task"]["state"] == "working", 30)
    staff("cancel", tid, check=True)
    r = staff("ask", agent, "after the cancel", "--json", timeout=25)  # within the 30 s wait
    assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: after the cancel", r.stdout + r.stderr
    pauses = [name for _t, name in server.events if name.startswith("delay-")]
    assert pauses.count("delay-start") == pauses.count("delay-end") + 1, f"{agent} hung up mid-wait"
