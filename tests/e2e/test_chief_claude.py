"""`staff chief` on the real Claude Code (npm, .cache/claude) against fixtures/mock_anthropic:
a pushed alert is one user message in its transcript, the MCP tools reach its requests, and
Ctrl-G delegation works with no settings change (EDITOR is staff-hook in its environment)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.claude_env import claude_env, find_claude, prepare_home
from fixtures.mock_anthropic import start_mock, stop
from supervisor.team.chief import CHIEF
from tests.conftest import fake_team_toml, staff
from tests.daemon.test_chief import inbox_item, post, user_messages, wait_idle, wait_screen

CLAUDE = find_claude()
pytestmark = pytest.mark.skipif(CLAUDE is None, reason="the real Claude Code is not installed (make claude)")


@pytest.fixture
def real_chief(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """A fake team plus the real Claude Code as the chief; yields (claude home, request dumps)."""
    assert CLAUDE is not None
    dumps = tmp_path / "dumps"
    server, port = start_mock(log_path=tmp_path / "mock.log", dump_dir=dumps)
    work = tmp_path / "work"
    work.mkdir()
    chome = tmp_path / "claude-home"
    prepare_home(chome, work)
    for k, v in claude_env(chome, port).items():
        if k != "PATH":
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("PATH", f"{Path(CLAUDE).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STAFF_HOME", str(home))
    monkeypatch.delenv("STAFF_FAKE", raising=False)
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)))
    staff("up", "-c", str(cfg), check=True)
    monkeypatch.chdir(work)
    try:
        r = staff("chief", "--no-console", "--", "--permission-mode", "default", check=True)
        assert "started" in r.stdout
        wait_idle(home, timeout=90)
        yield chome, dumps
    finally:
        staff("down")
        stop(server)


def test_real_chief_push_mcp_and_hook_env(real_chief: tuple[Path, Path], home: Path) -> None:
    chome, dumps = real_chief
    st = next(a for a in json.loads(staff("status", "--json").stdout)["agents"] if a["agent_id"] == CHIEF)
    assert st["profile"] == "claude"
    env = Path(f"/proc/{st['pid']}/environ").read_text().split("\0")
    assert any(kv.startswith("EDITOR=") and kv.endswith("staff-hook") for kv in env)
    item = post(home, "nightly build failed", "FAILED test_login")
    wait_screen(home, CHIEF, rf"MOCK-REPLY:[\s\S]*{item}[\s\S]*✻", timeout=90)  # (Claude wraps the paste)
    assert inbox_item(item)["delivered"] is True
    assert user_messages(chome / ".claude", item) == 1  # one user message in Claude's own transcript
    # the MCP server connects in the background: the next turn's request lists its tools
    staff("ask", CHIEF, "take your time [delay=5]", "--timeout", "90", check=True)
    staff("ask", CHIEF, "hello again", "--timeout", "90", check=True)
    bodies = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(dumps.glob("*.json"))]
    assert any("mcp__staff__delegate" in b for b in bodies), "the staff MCP tools never reached the model"


def test_real_chief_ctrl_g_delegates_with_no_settings_change(
    real_chief: tuple[Path, Path], home: Path
) -> None:
    chome, _dumps = real_chief
    assert not (chome / ".claude" / "settings.json").exists()  # no `staff hook install`
    staff("send", CHIEF, "-l", "@coding say hi", check=True)
    wait_screen(home, CHIEF, r"❯\s*@coding say hi")
    staff("send", CHIEF, "C-g", check=True)  # Claude Code opens $EDITOR (staff-hook) on the draft
    screen = wait_screen(home, CHIEF, r"FAKE-REPLY\(coding#1\): say hi", timeout=90)
    assert "staff-answer" in screen  # the answer is back in the chief's input box, labelled


def wait_state(home: Path, agent: str, state: str, timeout: float = 30) -> None:
    from supervisor.client.cli.main import client

    with client(home) as events, client(home) as c:
        for _frame in events.stream("subscribe", read_timeout=timeout):
            if next(a for a in c.call("status")["agents"] if a["agent_id"] == agent)["status"] == state:
                return
    raise AssertionError(f"{agent} never became {state}")


def test_real_chief_calls_the_mcp_delegate_tool_itself(real_chief: tuple[Path, Path], home: Path) -> None:
    """No key press: the model (the mock) calls `mcp__staff__delegate`, Claude Code asks for
    the tool's permission, it is granted, `staff mcp` hands the task to the coding agent, and
    the agent's answer comes back to the model as the tool's result."""
    _chome, dumps = real_chief
    for _ in range(10):  # the MCP server connects in the background: wait for a turn that lists it
        bodies = [p.read_text(encoding="utf-8", errors="replace") for p in dumps.glob("*.json")]
        if any("mcp__staff__delegate" in b for b in bodies):
            break
        staff("ask", CHIEF, "are the tools there", "--timeout", "90", check=True)
    else:
        raise AssertionError("the staff MCP tools never reached the model")
    prompt = "ask the team [delegate=coding:say hi from the chief]"
    tid = staff("submit", CHIEF, prompt, check=True).stdout.strip()
    screen = wait_screen(home, CHIEF, r"❯ 1\. Yes", timeout=90)  # the tool's permission question
    assert "staff" in screen and "delegate" in screen
    wait_state(home, CHIEF, "blocked")  # the MCP tool's question is detected like Bash's
    staff("answer", CHIEF, "1", check=True)  # (re-sent if Claude ignored it: it sometimes does)
    done = json.loads(staff("wait", tid, "--json", "--timeout", "50", check=True).stdout)
    assert done["state"] == "done", done
    # the tool's result (the coding agent's answer) went back to the model, which quoted it
    assert "MOCK-REPLY: tool result:" in done["answer"]
    assert "FAKE-REPLY(coding#1): say hi from the chief" in done["answer"]
    coding = json.loads(staff("status", "--json", check=True).stdout)["agents"]
    assert next(a for a in coding if a["agent_id"] == "coding")["status"] == "idle"
