"""The chief (supervisor/team/chief.py): `staff chief`, and inbox items pushed into it when idle.

Every test drives the real CLI, daemon, keeper and the fake Claude (fixtures/fake_claude.py).
Waits are monitors (`staff watch … --wait`), which the daemon wakes on screen output: no sleeps.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from supervisor.agent.agent import box_text
from supervisor.agent.task import Task
from supervisor.team.chief import CHIEF, chief_spec, message
from supervisor.team.config import TableError as ChiefConfigError
from supervisor.team.config import chief_settings as check_config
from supervisor.team.inbox import InboxItem
from supervisor.team.supervisor import Supervisor
from tests.conftest import fake_team_toml, staff


@pytest.fixture
def team(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A daemon with one fake agent (`coding`) plus the fake chief (STAFF_FAKE=1)."""
    monkeypatch.setenv("STAFF_FAKE", "1")
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)))
    staff("up", "-c", str(cfg), check=True)
    try:
        out = staff("chief", "--no-console", "--json", check=True).stdout
        assert json.loads(out)["started"] is True
        wait_idle(home)
        yield cfg
    finally:
        staff("down")


def wait_screen(home: Path, agent: str, regex: str, timeout: float = 30) -> str:
    """Block until `regex` is on the agent's screen, checked at each chunk of its output
    (`stream`; no sleeps, and no monitor, whose own inbox item would be pushed into the chief)."""
    import re

    from supervisor.client.cli.main import client
    from supervisor.protocol import ProtocolError

    pattern = re.compile(regex)
    screen = ""
    with client(home) as events, client(home) as c:
        try:
            for frame in events.stream("stream", agent=agent, read_timeout=timeout):
                got = c.call("screen", agent=agent, scrollback=True)
                screen = "\n".join([*got["history"], *got["lines"]])
                if pattern.search(screen):
                    return screen
                assert "event" in frame, frame
        except ProtocolError:
            pass
    raise AssertionError(f"{regex!r} never showed on {agent}:\n{screen}")


def wait_idle(home: Path, agent: str = CHIEF, timeout: float = 30) -> None:
    """Block until the agent is idle with no task (checked at each daemon event)."""
    from supervisor.client.cli.main import client

    with client(home) as events, client(home) as c:
        for frame in events.stream("subscribe", read_timeout=timeout):
            st = next(a for a in c.call("status")["agents"] if a["agent_id"] == agent)
            if st["status"] == "idle" and not st.get("current_task"):
                return
            assert "event" in frame, frame
    raise AssertionError(f"{agent} never became idle")


def post(home: Path, title: str, body: str = "") -> str:
    from supervisor.client.cli.main import client

    with client(home) as c:
        item = c.call("inbox_post", title=title, body=body, source="monitor")
    return str(item["id"])


def user_messages(config_dir: Path, needle: str) -> int:
    """How many user messages in the chief's transcripts (under Claude's config dir: `~/.claude`,
    or the state dir's `fake-claude` for the fake) contain `needle` (each delivery is one)."""
    n = 0
    for path in (config_dir / "projects").rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec.get("type") == "user" and needle in json.dumps(rec.get("message"), ensure_ascii=False):
                n += 1
    return n


def inbox_item(item_id: str) -> dict[str, object]:
    items = json.loads(staff("inbox", "--all", "--json", check=True).stdout)
    return next(i for i in items if i["id"] == item_id)


# -- unit: routing, the draft, the message, the config --------------------------------------
def test_chief_is_never_chosen_by_any_or_a_role() -> None:
    chief = SimpleNamespace(name=CHIEF, spec=chief_spec(Path("/nonexistent"), []))
    coding = SimpleNamespace(name="coding", spec=SimpleNamespace(role="coding", by_name_only=False))
    assert not Supervisor.fits(Task(to="any", text="x"), chief)  # type: ignore[arg-type]
    assert not Supervisor.fits(Task(to="role:coding", text="x"), chief)  # type: ignore[arg-type]
    assert Supervisor.fits(Task(to="chief", text="x"), chief)  # type: ignore[arg-type]
    assert Supervisor.fits(Task(to="any", text="x"), coding)  # type: ignore[arg-type]


def test_box_text_reads_the_input_box() -> None:
    assert box_text("❯ ", "❯") == ""
    assert box_text("❯ half a thought\n  and more", "❯") == "half a thought\nand more"
    assert box_text(None, "❯") is None


def test_message_labels_every_item() -> None:
    text = message(
        [
            InboxItem("build failed", "FAILED x", source="monitor", id="M-1"),
            InboxItem("T-2 done (coding): y", "the answer", source="task", task="T-2", id="M-2"),
        ]
    )
    assert text.startswith("[staff] 2 messages from your team")
    assert '<staff-inbox id="M-1" from="monitor"' in text and 'task="T-2"' in text
    assert text.count("</staff-inbox>") == 2
    long = message([InboxItem("t", "\n".join(f"line {n}" for n in range(100)), id="M-3")])
    assert "line 99" in long and "line 50" not in long and "staff inbox --all" in long


def test_chief_config() -> None:
    assert check_config({"deliver": "hook"}).deliver == "hook"
    with pytest.raises(ChiefConfigError, match="push"):
        check_config({"deliver": "mail"})
    with pytest.raises(ChiefConfigError, match="unknown key"):
        check_config({"delivr": "push"})


def test_bad_chief_section_is_reported_with_its_line(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)) + '\n[chief]\ndeliver = "sometimes"\n')
    r = staff("up", "-c", str(cfg))
    assert r.returncode == 2 and "chief.deliver must be" in r.stderr and "staff.toml:" in r.stderr


# -- end to end with the fake chief ------------------------------------------------------------
def test_staff_chief_starts_the_agent_with_hook_and_mcp(team: Path, home: Path) -> None:
    st = json.loads(staff("status", "--json", check=True).stdout)
    chief = next(a for a in st["agents"] if a.get("agent_id", a.get("name")) == CHIEF)
    pid = int(chief["pid"])
    env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
    assert env["EDITOR"].endswith("staff-hook") and env["VISUAL"] == env["EDITOR"]
    argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    cfg = json.loads(argv[argv.index("--mcp-config") + 1])
    assert cfg["mcpServers"]["staff"]["args"] == ["mcp"]
    assert cfg["mcpServers"]["staff"]["env"]["STAFF_HOME"] == str(home)
    again = json.loads(staff("chief", "--no-console", "--json", check=True).stdout)
    assert again["started"] is False and again["agent"]["pid"] == pid  # one chief
    # `any` never lands on the chief, even while the only other agent is busy
    busy = staff("submit", "coding", "long one [delay=1]", check=True).stdout.strip()
    anyt = staff("submit", "any", "for anyone", check=True).stdout.strip()
    for tid in (busy, anyt):
        done = json.loads(staff("wait", tid, "--json", "--timeout", "30", check=True).stdout)
        assert done["agent"] == "coding"


def test_alert_is_pushed_into_the_idle_chief(team: Path, home: Path, tmp_path: Path) -> None:
    staff("watch", "coding", "--until", "regex:DONE-MARK", "--title", "coding printed DONE-MARK", check=True)
    staff("ask", "coding", "say DONE-MARK", check=True)
    items = json.loads(staff("inbox", "--json", check=True).stdout)
    alert = next(i for i in items if "DONE-MARK" in i["title"])
    wait_screen(home, CHIEF, r"FAKE-REPLY\(chief#1\): \[staff\] 1 message")
    screen = staff("screen", CHIEF, "--scrollback", check=True).stdout
    assert f'<staff-inbox id="{alert["id"]}" from="monitor"' in screen  # typed in, labelled
    assert "coding printed DONE-MARK" in screen
    assert inbox_item(alert["id"])["delivered"] is True
    assert user_messages(tmp_path / "staff" / "fake-claude", alert["id"]) == 1  # one user message, once
    # the chief's next Ctrl-G does not bring the pushed alert a second time
    from tests.e2e.test_hook import prompt, run_hook

    draft_file = prompt(tmp_path, "@coding one more")
    assert run_hook(draft_file).returncode == 0
    text = draft_file.read_text()
    assert "<staff-answer" in text and alert["id"] not in text


def test_a_draft_holds_the_alert_until_it_is_sent(team: Path, home: Path, tmp_path: Path) -> None:
    staff("send", CHIEF, "-l", "half a thought", check=True)
    wait_screen(home, CHIEF, r"❯\s*half a thought")
    item = post(home, "tests failed on CI", "FAILED test_login")
    # a full round trip through the daemon (dispatches, so the chief was considered) …
    staff("ask", "coding", "anything", check=True)
    assert inbox_item(item)["delivered"] is False  # … and the draft still holds it
    assert user_messages(tmp_path / "staff" / "fake-claude", item) == 0
    staff("send", CHIEF, "Enter", check=True)  # the person sends the draft
    wait_screen(home, CHIEF, r"FAKE-REPLY\(chief#2\): \[staff\] 1 message")
    screen = staff("screen", CHIEF, "--scrollback", check=True).stdout
    assert screen.index("FAKE-REPLY(chief#1): half a thought") < screen.index(f'id="{item}"')
    assert inbox_item(item)["delivered"] is True
    assert user_messages(tmp_path / "staff" / "fake-claude", item) == 1


def test_killing_the_daemon_before_delivery_still_delivers_once(
    team: Path, home: Path, tmp_path: Path
) -> None:
    task = staff("submit", CHIEF, "think hard [delay=2]", check=True).stdout.strip()
    wait_screen(home, CHIEF, "esc to interrupt")  # the chief is working: the alert must wait
    item = post(home, "deploy finished", "all green")
    assert inbox_item(item)["delivered"] is False
    pid = int((home / "daemon.lock").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    staff("up", "-c", str(team), check=True)  # adopts the chief (the keeper kept it)
    done = json.loads(staff("wait", task, "--json", "--timeout", "30", check=True).stdout)
    assert done["state"] == "done"
    wait_screen(home, CHIEF, r"FAKE-REPLY\(chief#2\): \[staff\] 1 message")
    assert inbox_item(item)["delivered"] is True
    assert user_messages(tmp_path / "staff" / "fake-claude", item) == 1
    staff("reload", check=True)  # another restart: nothing is pushed twice
    staff("ask", "coding", "anything", check=True)
    assert user_messages(tmp_path / "staff" / "fake-claude", item) == 1


def test_deliver_hook_pushes_nothing(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_FAKE", "1")
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)) + '\n[chief]\ndeliver = "hook"\n')
    staff("up", "-c", str(cfg), check=True)
    try:
        staff("chief", "--no-console", check=True)
        wait_idle(home)
        item = post(home, "for the next Ctrl-G")
        staff("ask", "coding", "anything", check=True)
        assert inbox_item(item)["delivered"] is False
        assert user_messages(tmp_path / "staff" / "fake-claude", item) == 0
    finally:
        staff("down")


def test_staff_chief_opens_the_console_and_a_person_typing_holds_the_alert(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`staff chief` under a real pty: the console opens on the chief; while a person types
    to it there, the alert waits; it goes in once after they send and leave."""
    from tests.helpers.console_term import Term

    monkeypatch.setenv("STAFF_FAKE", "1")
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)))
    term = Term(["chief", "-c", str(cfg)])
    try:
        term.wait(lambda: term.sidebar().get(CHIEF) == "idle" and CHIEF in term.pane_title(), what="chief")
        term.send("my own prompt")
        term.wait(lambda: term.sidebar().get(CHIEF) == "user", what="chief: user")
        item = post(home, "nightly build broke")
        staff("ask", "coding", "anything", check=True)  # a round trip: the chief was considered
        assert inbox_item(item)["delivered"] is False
        term.send("\r")  # the person sends their prompt …
        wait_screen(home, CHIEF, r"FAKE-REPLY\(chief#1\): my own prompt")
        assert inbox_item(item)["delivered"] is False  # … still theirs (the hold lasts)
        term.send("\x02d")  # … and detaches (C-b d): the hold ends
        assert term.wait_exit() == 0
        wait_screen(home, CHIEF, r"FAKE-REPLY\(chief#2\): \[staff\] 1 message")
        assert user_messages(tmp_path / "staff" / "fake-claude", item) == 1
    finally:
        term.close()
        staff("down")


def test_continue_resumes_the_chiefs_last_conversation(team: Path, home: Path) -> None:
    staff("ask", CHIEF, "remember the word PELICAN", check=True)
    staff("down", check=True)
    staff("up", "-c", str(team), check=True)
    assert json.loads(staff("chief", "--no-console", "--continue", "--json", check=True).stdout)["started"]
    wait_idle(home)
    pid = next(a for a in json.loads(staff("status", "--json").stdout)["agents"] if a["agent_id"] == CHIEF)[
        "pid"
    ]
    assert "--resume" in Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert "PELICAN" in staff("ask", CHIEF, "recall", check=True).stdout
    staff("kill", CHIEF, check=True)  # without --continue: a new conversation
    staff("chief", "--no-console", check=True)
    wait_idle(home)
    assert "PELICAN" not in staff("ask", CHIEF, "recall", check=True).stdout


def test_a_backlog_goes_in_five_items_per_message(team: Path, home: Path, tmp_path: Path) -> None:
    task = staff("submit", CHIEF, "busy [delay=1]", check=True).stdout.strip()
    wait_screen(home, CHIEF, "esc to interrupt")
    ids = [post(home, f"alert number {n}") for n in range(6)]
    staff("wait", task, "--timeout", "30", check=True)
    wait_screen(home, CHIEF, r"FAKE-REPLY\(chief#3\): \[staff\] 1 message")
    screen = staff("screen", CHIEF, "--scrollback", check=True).stdout
    assert "FAKE-REPLY(chief#2): [staff] 5 messages" in screen
    assert all(user_messages(tmp_path / "staff" / "fake-claude", i) == 1 for i in ids)
