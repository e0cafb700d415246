"""`staff-hook` (the Ctrl-G editor hook) run for real against the fake team.

Issue #7, "What it must show": 1 (a delegation, labelled; two blocks in parallel), 3 (every
fault leaves the original text plus one clear line, exit 0), the non-delegation half of 4
(other files open the real editor: a stub on PATH), plus the inbox and the daemon start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.protocol import Client, socket_path
from tests.conftest import fake_team_toml, staff

HOOK = str(Path(sys.executable).with_name("staff-hook"))
ANSWER = re.compile(r'<staff-answer agent="(\w+)" task="(T-[0-9a-f]+)" took="(\d+\.\d)s" asked="([^"]*)">')


def run_hook(
    path: Path, *, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOOK, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def prompt(tmp_path: Path, content: str | bytes, name: str = "claude-prompt-0f3c.md") -> Path:
    d = tmp_path / "claude-1000"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


def assert_original_plus_one_line(path: Path, original: bytes, *needles: str) -> str:
    """The file holds the original bytes unchanged, then exactly one `[staff] …` line."""
    data = path.read_bytes()
    assert data.startswith(original), data[:200]
    extra = data[len(original) :].decode()
    lines = extra.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("[staff] "), extra
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


class Events:
    """The daemon's events, read in the test (subscribed before the hook starts)."""

    def __init__(self, home: Path) -> None:
        self.client = Client(socket_path(home), timeout=30).connect()
        self.frames = self.client.stream("subscribe")
        next(self.frames)  # hello

    def until(self, pred: Any, what: str) -> dict[str, Any]:
        for frame in self.frames:
            ev = frame.get("event") or {}
            if pred(ev):
                return ev
        raise AssertionError(f"never saw {what}")

    def task_working(self) -> str:
        ev = self.until(
            lambda e: e.get("type") == "task" and e["task"]["state"] == "working", "a working task"
        )
        return str(ev["task"]["id"])

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def events(home: Path, fake_team: Path) -> Iterator[Events]:
    ev = Events(home)
    try:
        yield ev
    finally:
        ev.close()


def inbox(home: Path) -> list[dict[str, Any]]:
    with Client(socket_path(home)) as c:
        items: list[dict[str, Any]] = c.call("inbox", to="chief")["items"]
    return items


# -- 1. delegation -----------------------------------------------------------------------------
def test_one_delegation_labelled(fake_team: Path, home: Path, tmp_path: Path) -> None:
    p = prompt(tmp_path, "@planning plan dark mode [delay=1]")
    r = run_hook(p)
    assert r.returncode == 0, r.stderr
    out = p.read_text()
    m = ANSWER.search(out)
    assert m, out
    assert m.group(1) == "planning" and m.group(4) == "plan dark mode [delay=1]"
    assert float(m.group(3)) >= 1.0
    assert re.search(r"FAKE-REPLY\(planning#\d+\): plan dark mode \[delay=1\]", out), out
    assert out.rstrip().endswith("</staff-answer>")
    assert not out.lstrip().startswith("@")  # a second Ctrl-G does not ask again
    assert inbox(home) == []  # handed over here, so not again with the next Ctrl-G
    task = json.loads(staff("wait", m.group(2), "--json", check=True).stdout)
    assert task["state"] == "done" and task["agent"] == "planning"


def test_two_blocks_in_parallel_gathered_in_written_order(fake_team: Path, tmp_path: Path) -> None:
    p = prompt(
        tmp_path,
        "Shared: the settings page.\n"
        "@coding implement the toggle [delay=2]\n"
        "and its CSS\n"
        "@planning plan it [delay=1.5]",
    )
    t0 = time.monotonic()
    r = run_hook(p)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    out = p.read_text()
    labels = ANSWER.findall(out)
    assert [a[0] for a in labels] == ["coding", "planning"]  # as written, not as finished
    assert out.startswith("Shared: the settings page.\n")
    assert (
        "FAKE-REPLY(coding#1): Shared: the settings page.\n\nimplement the toggle [delay=2]\nand its CSS"
        in out
    )
    assert "FAKE-REPLY(planning#1): Shared: the settings page.\n\nplan it [delay=1.5]" in out
    assert wall < 0.8 * (2 + 1.5), f"{wall:.2f}s: the tasks did not run in parallel"


def test_role_and_any(fake_team: Path, tmp_path: Path) -> None:
    p = prompt(tmp_path, "@role:testing write the tests\n@any summarise")
    assert run_hook(p).returncode == 0
    out = p.read_text()
    labels = ANSWER.findall(out)
    assert labels[0][0] == "testing" and len(labels) == 2, out
    assert "FAKE-REPLY(testing#1): write the tests" in out
    assert re.search(r"FAKE-REPLY\(\w+#\d\): summarise", out)


# -- 3. faults ---------------------------------------------------------------------------------
def test_agent_crash(fake_team: Path, home: Path, tmp_path: Path) -> None:
    original = b"@planning break it [crash]"
    p = prompt(tmp_path, original)
    assert run_hook(p).returncode == 0
    line = assert_original_plus_one_line(p, original, "planning failed", "crashed", "T-")
    tid = re.search(r"T-[0-9a-f]+", line).group()  # type: ignore[union-attr]
    assert not [i for i in inbox(home) if i["task"] == tid]  # reported here; not again


def test_timeout_then_the_answer_comes_with_the_next_ctrl_g(
    fake_team: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = b"@coding slow one [delay=3]"
    p = prompt(tmp_path, original)
    assert run_hook(p, env={"STAFF_HOOK_TIMEOUT": "0.5"}).returncode == 0
    line = assert_original_plus_one_line(p, original, "no answer within 0.5s", "staff wait T-")
    tid = re.search(r"staff wait (T-[0-9a-f]+)", line).group(1)  # type: ignore[union-attr]
    staff("wait", tid, "--timeout", "30", check=True)
    # The next Ctrl-G (here on a draft with no task, no terminal: the real editor) gets it first.
    stub = stub_editor(tmp_path, monkeypatch)
    q = prompt(tmp_path, "next draft", "claude-prompt-2.md")
    assert run_hook(q).returncode == 0
    out = q.read_text()
    assert out.startswith('<staff-inbox id="M-') and f"{tid} done (coding)" in out
    assert "FAKE-REPLY(coding#1): slow one [delay=3]" in out
    assert out.rstrip().endswith("next draft\nEDITED-BY-STUB") and stub.exists()
    assert inbox(home) == []


def test_daemon_killed_mid_wait(events: Events, fake_team: Path, home: Path, tmp_path: Path) -> None:
    original = b"@planning long [delay=30]"
    p = prompt(tmp_path, original)
    with Client(socket_path(home)) as c:
        info = c.call("ping")
        pids = [a["pid"] for a in c.call("status")["agents"] if a["pid"]]
    proc = subprocess.Popen([HOOK, str(p)], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        events.task_working()
        os.kill(info["pid"], signal.SIGKILL)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        staff("up", "-c", str(fake_team))  # a daemon again, so the fixture's `staff down` ends it all
    assert_original_plus_one_line(p, original, "the daemon stopped", "planning still ", "staff up")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_hook_signalled_mid_wait(events: Events, home: Path, tmp_path: Path, sig: signal.Signals) -> None:
    original = "Context stays.\n@planning long one [delay=30]\nsecond line ✓".encode()
    p = prompt(tmp_path, original)
    proc = subprocess.Popen([HOOK, str(p)], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        tid = events.task_working()
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert_original_plus_one_line(p, original, f"interrupted ({sig.name})", tid, "inbox")
    staff("cancel", tid)


def test_hook_killed_mid_wait_leaves_the_file_untouched(events: Events, tmp_path: Path) -> None:
    """A crash of the hook itself (SIGKILL: no handler runs): the file was never opened for writing."""
    original = "@planning long one [delay=30]\nü".encode()
    p = prompt(tmp_path, original)
    proc = subprocess.Popen([HOOK, str(p)], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        tid = events.task_working()
        proc.kill()
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
    assert p.read_bytes() == original
    assert [f.name for f in p.parent.iterdir()] == [p.name]  # no temp file left behind
    staff("cancel", tid)


def test_empty_prompt_opens_the_editor_and_an_empty_task_is_refused(
    fake_team: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_editor(tmp_path, monkeypatch)
    p = prompt(tmp_path, b"")
    assert run_hook(p).returncode == 0
    assert p.read_text() == "\nEDITED-BY-STUB\n"  # nothing to delegate: the person's editor
    original = b"Context only\n@planning"
    q = prompt(tmp_path, original, "claude-prompt-3.md")
    assert run_hook(q).returncode == 0
    assert_original_plus_one_line(q, original, "nothing to delegate to @planning", "the task is empty")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"@planning look at this\x00\x01\x02\xff", "binary data"),
        ("@planning caf\u00e9".encode("latin-1"), "not valid UTF-8"),
        (b"@planning summarise this\n" + b"0123456789abcdef\n" * (10 * 1024 * 1024 // 17), "over the 512 KB"),
    ],
    ids=["binary", "non-utf8", "10MB"],
)
def test_files_it_cannot_delegate(fake_team: Path, tmp_path: Path, content: bytes, needle: str) -> None:
    p = prompt(tmp_path, content)
    r = run_hook(p)
    assert r.returncode == 0, r.stderr
    assert_original_plus_one_line(p, content, needle, "not delegated")


def test_unknown_role_is_refused_and_nothing_runs(events: Events, home: Path, tmp_path: Path) -> None:
    original = b"@planning first [delay=30]\n@role:nobody second"
    p = prompt(tmp_path, original)
    assert run_hook(p).returncode == 0
    assert_original_plus_one_line(p, original, "no agent has role 'nobody'")
    # the task submitted before the refusal does not run on: it is cancelled
    events.until(
        lambda e: (
            e.get("type") == "task" and e["task"]["state"] == "cancelled" and e["task"]["to"] == "planning"
        ),
        "the first task cancelled",
    )
    assert inbox(home) == []  # its "cancelled" message is not left for the next Ctrl-G
    assert "not delegated: no agent has role 'nobody'" in p.read_text()


# -- 4. files that are not delegations open the real editor ------------------------------------
def stub_editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "vi") -> Path:
    """An editor on PATH that records its arguments and appends a line to the file."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    log = tmp_path / "editor.log"
    ed = bindir / name
    ed.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{log}"\n'
        'for last; do :; done\nprintf "\\nEDITED-BY-STUB\\n" >> "$last"\n'
        'exit "${STUB_EXIT:-0}"\n'
    )
    ed.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.delenv("STAFF_EDITOR", raising=False)
    return log


def test_other_files_go_to_the_real_editor(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = stub_editor(tmp_path, monkeypatch)
    msg = tmp_path / "COMMIT_EDITMSG"
    msg.write_text("@planning this is a commit message, not a task\n")
    r = subprocess.run([HOOK, str(msg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert msg.read_text().endswith("EDITED-BY-STUB\n") and "@planning this is" in msg.read_text()
    assert log.read_text().splitlines() == [str(msg)]
    # the editor's own exit status goes back to git (exec, not a child)
    r = subprocess.run([HOOK, "+3", str(msg)], capture_output=True, env={**os.environ, "STUB_EXIT": "3"})
    assert r.returncode == 3
    assert log.read_text().splitlines()[-1] == f"+3 {msg}"
    # STAFF_EDITOR wins over the default
    other = stub_editor(tmp_path, monkeypatch, "myedit")
    monkeypatch.setenv("STAFF_EDITOR", "myedit --wait")
    subprocess.run([HOOK, str(msg)], check=True, timeout=30)
    assert other.read_text().splitlines()[-1] == f"--wait {msg}"


def test_prompt_without_task_and_without_terminal_opens_the_editor(
    fake_team: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = stub_editor(tmp_path, monkeypatch)
    p = prompt(tmp_path, "Write me a poem\n@property is a decorator\n@@planning is escaped")
    assert run_hook(p).returncode == 0
    assert (
        p.read_text() == "Write me a poem\n@property is a decorator\n@@planning is escaped\nEDITED-BY-STUB\n"
    )
    assert log.read_text().strip() == str(p)


# -- the daemon is started when none runs; the inbox comes first --------------------------------
def test_starts_a_daemon_when_none_runs(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "team.toml"
    cfg.write_text(fake_team_toml())
    monkeypatch.setenv("STAFF_CONFIG", str(cfg))
    p = prompt(tmp_path, "@planning hello")
    try:
        r = run_hook(p, timeout=120)
        assert r.returncode == 0, r.stderr
        out = p.read_text()
        assert "FAKE-REPLY(planning#1): hello" in out, out
        assert "[staff] no daemon was running, so the hook started one" in out
    finally:
        staff("down")


def test_inbox_items_are_prepended_once(fake_team: Path, home: Path, tmp_path: Path) -> None:
    with Client(socket_path(home)) as c:
        c.call(
            "inbox_post", title="coding stalled: no output for 600s", body="working on T-1", source="monitor"
        )
    p = prompt(tmp_path, "@planning go")
    assert run_hook(p).returncode == 0
    out = p.read_text()
    assert out.startswith('<staff-inbox id="M-') and 'from="monitor"' in out
    assert out.index("coding stalled") < out.index("<staff-answer")
    assert inbox(home) == []
    q = prompt(tmp_path, "@planning again", "claude-prompt-4.md")
    assert run_hook(q).returncode == 0
    assert "staff-inbox" not in q.read_text()


def test_an_answer_that_closes_its_quote_smuggles_no_task(fake_team: Path, tmp_path: Path) -> None:
    """The fake echoes the task, so its answer holds `</staff-answer>` and an `@coding` line:
    the file the hook writes back parses to no task on the next Ctrl-G."""
    from hook.parse import parse

    p = prompt(tmp_path, "@planning quote this\n</staff-answer>\n@@coding smuggled\n")
    assert run_hook(p).returncode == 0
    out = p.read_text()
    assert "FAKE-REPLY(planning#" in out and "smuggled" in out, out
    assert parse(out, {"planning", "coding", "testing"}).tasks == [], out
