"""A newcomer's first hour with `staff` (issue 20): help, versions, progress, mistakes,
pipes, completion. The real CLI against a real daemon and the fake team."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.conftest import REPO, STAFF, fake_team_toml, staff


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO))


def spawn(*args: str) -> pexpect.spawn:
    """`staff ARGS` on a terminal (its spinner and its Ctrl-C), as a person runs it."""
    return pexpect.spawn(
        STAFF[0], [*STAFF[1:], *args], env=env(), encoding="utf-8", dimensions=(24, 120), cwd=os.getcwd()
    )


def into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """`staff ARGS | head -c0`, deterministically: stdout is a pipe whose reader is gone."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run(
            [*STAFF, *args], stdout=w, stderr=subprocess.PIPE, text=True, env=env(), timeout=60
        )
    finally:
        os.close(w)
    return proc


# -- help, version, mistakes ------------------------------------------------------------------------
def test_bare_staff_is_help_and_version(home: Path) -> None:
    r = staff()
    assert r.returncode == 0 and r.stdout.startswith("usage: staff") and "console" in r.stdout, r
    assert "First time?" in r.stdout and not r.stderr
    r = staff("--version")
    assert r.returncode == 0 and re.fullmatch(r"staff \d+\.\d+\.\d+\S*\n", r.stdout), r


def test_did_you_mean_a_command_or_an_agent(fake_team: Path) -> None:
    r = staff("stauts")
    assert r.returncode == 2 and "unknown command 'stauts'; did you mean 'status'" in r.stderr, r.stderr
    r = staff("ask", "plannng", "hello")
    assert r.returncode == 2 and "unknown agent 'plannng'" in r.stderr, r.stderr
    assert "did you mean 'planning'?" in r.stderr and r.stderr.count("\n") == 1
    r = staff("logs", "codng")
    assert "did you mean 'coding'?" in r.stderr


# -- limits and pipes -------------------------------------------------------------------------------
def test_a_task_over_the_limit_says_the_limit(fake_team: Path) -> None:
    """It said "lost the daemon: [Errno 32] Broken pipe" while the daemon was fine."""
    big = "x" * (3 << 19)  # 1.5 MiB
    for cmd in ("ask", "submit"):
        r = staff(cmd, "planning", "-", input=big)
        assert r.returncode == 2 and "at most 1 MiB per request" in r.stderr, r.stderr
        assert "Broken pipe" not in r.stderr and "lost the daemon" not in r.stderr
    assert staff("ask", "planning", "still here", check=True).stdout.startswith("FAKE-REPLY")


def test_a_closed_pipe_ends_quietly(fake_team: Path) -> None:
    """`staff wait T --json | head` and `staff ask … | head` printed a BrokenPipeError traceback."""
    tid = staff("submit", "coding", "hello", check=True).stdout.strip()
    staff("wait", tid, check=True)
    for args in (("wait", tid, "--json"), ("ask", "coding", "again"), ("completion", "bash")):
        r = into_closed_pipe(*args)
        assert r.returncode == 141 and r.stderr == "", (args, r.stderr)


# -- waits that show they are alive, Ctrl-C that keeps the task id -----------------------------------
def test_ask_shows_its_clock_running_and_ctrl_c_names_the_task(fake_team: Path) -> None:
    child = spawn("ask", "planning", "slow [delay=4]")
    try:
        # no event comes during the agent's 4 s of work: the clock must move anyway (it stayed at 0s)
        child.expect(r"T-[0-9a-f]+ .*· [23]s", timeout=30)
        child.sendintr()
        child.expect(r"staff: interrupted; the task keeps running: `staff wait (T-[0-9a-f]+)`", timeout=15)
        tid = child.match.group(1)
        child.expect(pexpect.EOF, timeout=15)
    finally:
        child.close()
    assert child.exitstatus == 130
    done = json.loads(staff("wait", tid, "--json", check=True).stdout)
    assert done["state"] == "done" and done["answer"].endswith("slow [delay=4]")


def test_fan_out_says_what_it_waits_for(fake_team: Path) -> None:
    child = spawn("ask", "planning,coding", "together [delay=3]")
    try:
        child.expect(
            r"staff: asked planning (T-[0-9a-f]+), coding (T-[0-9a-f]+); waiting for 2 answers", timeout=30
        )
        ids = {child.match.group(1), child.match.group(2)}
        child.expect(r"0 of 2 answered · \ds", timeout=15)
        child.sendintr()
        child.expect(r"staff: interrupted; the task keeps running: (.*)\r\n", timeout=15)
        assert set(re.findall(r"staff wait (T-[0-9a-f]+)", child.match.group(1))) == ids
        child.expect(pexpect.EOF, timeout=15)
    finally:
        child.close()
    assert child.exitstatus == 130


# -- up, status, listings --------------------------------------------------------------------------
def test_up_with_another_config_while_running_says_so(fake_team: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text(fake_team_toml(("solo",)))
    r = staff("up", "-c", str(other))
    assert r.returncode == 0 and "already running" in r.stdout
    assert f"-c {other} not used" in r.stderr and f"`staff reload -c {other}`" in r.stderr, r.stderr
    assert "not used" not in staff("up", "-c", str(fake_team)).stderr  # the same file: nothing to say


def test_status_into_a_pipe_is_one_line_per_agent(fake_team: Path) -> None:
    staff("send", "coding", "-l", "a draft long enough to make the note column wide", check=True)
    r = staff("status", check=True)  # stdout is a pipe here
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["agent", "state", "task", "queue", "pid", "usage", "context", "note"]
    assert [line.split()[0] for line in lines[1:]] == ["planning", "coding", "testing"], r.stdout
    assert "a draft long enough" in next(line for line in lines if line.startswith("coding"))


def test_empty_listings_say_so_and_runs_have_a_header(home: Path) -> None:
    r = staff("worktree", "list", check=True)
    assert r.stdout.startswith("staff: no worktrees"), r.stdout
    runs = home / "runs"
    runs.mkdir(parents=True)
    rec = {"id": "R-20260101-000000-abcd", "workflow": "w", "state": "done", "started": 1.0, "finished": 2.0}
    (runs / f"{rec['id']}.json").write_text(json.dumps({**rec, "steps": {"a": {"state": "done"}}}))
    lines = staff("runs", check=True).stdout.splitlines()
    assert lines[0].split()[:4] == ["run", "workflow", "state", "progress"] and lines[1].startswith(rec["id"])


# -- logs -f ------------------------------------------------------------------------------------------
@pytest.fixture
def shell_team(home: Path, tmp_path: Path) -> Iterator[Path]:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(
        fake_team_toml(("planning",))
        + '\n[agents.sh]\ncommand = ["bash", "--norc", "--noprofile", "-i"]\nprofile = "shell"\n'
        'env = { PS1 = "$ " }\n'
    )
    staff("up", "-c", str(cfg), check=True)
    try:
        yield cfg
    finally:
        staff("down")


def test_logs_follow_prints_lines_as_they_scroll(shell_team: Path) -> None:
    proc = subprocess.Popen(
        [*STAFF, "logs", "sh", "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the logs as they are: the shell's prompt, then following
            if line.startswith("$"):
                break
        staff("send", "sh", "-l", "seq 1000 1150", check=True)
        staff("send", "sh", "Enter", check=True)
        seen: list[str] = []
        for line in proc.stdout:  # blocks until `follow` prints: woken by the shell's output
            seen.append(line.rstrip("\n"))
            if "1100" in seen:
                break
        numbers = [int(x) for x in seen if x.isdigit()]
        assert numbers == list(range(1000, 1101)), numbers[:5]  # each line once, in order
        assert seen[0] == "$ seq 1000 1150"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- shell completion -------------------------------------------------------------------------------
def complete(line: str, tmp_path: Path) -> list[str]:
    """What bash offers for `line` + Tab, with the script `staff completion bash` prints."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "staff"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m supervisor "$@"\n')
    wrapper.chmod(0o755)
    script = staff("completion", "bash", check=True).stdout
    (tmp_path / "staff.bash").write_text(script)
    words = line.split(" ")
    probe = f"""
source {tmp_path / "staff.bash"}
COMP_LINE={json.dumps(line)}; COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({" ".join(json.dumps(w) for w in words)}); COMP_CWORD={len(words) - 1}
fn=$(complete -p staff | sed -E 's/.* -F ([^ ]+) .*/\\1/')
"$fn" staff {json.dumps(words[-1])} {json.dumps(words[-2])}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    r = subprocess.run(
        ["bash", "--norc", "-c", probe], capture_output=True, text=True, env={**env(), "PATH": path}
    )
    assert r.returncode == 0, r.stderr
    return [w.strip() for w in r.stdout.splitlines() if w.strip()]


def test_completion_commands_and_agents_from_the_daemon(fake_team: Path, tmp_path: Path) -> None:
    assert complete("staff as", tmp_path) == ["ask"]
    assert "status" in complete("staff st", tmp_path)
    assert complete("staff ask pl", tmp_path) == ["planning"]
    names = [w for w in complete("staff screen ", tmp_path) if not w.startswith("-")]
    assert set(names) == {"planning", "coding", "testing"}
    assert "role:testing" in complete("staff ask ", tmp_path)
    for shell in ("zsh", "fish"):
        assert "staff" in staff("completion", shell, check=True).stdout


def test_logs_follow_on_the_alternate_screen_prints_the_conversation(fake_team: Path) -> None:
    """The fake draws on the alternate screen as Claude Code does: nothing scrolls into a
    scrollback there, so `-f` follows the transcript, each entry once, as it is recorded."""
    staff("ask", "planning", "before following", check=True)
    proc = subprocess.Popen(
        [*STAFF, "logs", "planning", "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env(),
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # what was said before: the conversation so far
            if line.startswith("● FAKE-REPLY") and "before following" in line:
                break
        staff("ask", "planning", "while following", check=True)
        seen: list[str] = []
        for line in proc.stdout:  # woken by the output and by the task's end
            seen.append(line.rstrip("\n"))
            if line.startswith("● FAKE-REPLY"):
                break
        assert [s for s in seen if s.strip()] == [
            "❯ while following", "● FAKE-REPLY(planning#2): while following"
        ], seen
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_role_text_the_profile_cannot_give_is_said_at_up(home: Path, tmp_path: Path) -> None:
    """A profile with no role flag (a shell here; Aider, Gemini CLI and opencode have none
    either) would drop the role text without a word: `staff up` says so, once."""
    cfg = tmp_path / "staff.toml"
    cfg.write_text('[agents.sh]\ncommand = ["bash", "--norc"]\nprofile = "shell"\n'
                   'role_text = "You review code."\n')
    try:
        r = staff("up", "-c", str(cfg), check=True)
        said = [line for line in r.stderr.splitlines() if "role_text is not given" in line]
        assert len(said) == 1 and said[0].startswith("staff: ") and "shell profile" in said[0], r.stderr
    finally:
        staff("down")


def test_two_agents_sharing_one_record_per_directory_are_said_at_up(home: Path, tmp_path: Path) -> None:
    """Aider keeps one chat history per repo: two Aider agents in one directory would read
    each other's turns. `staff up` says so (a worktree or a cwd of its own each avoids it)."""
    cfg = tmp_path / "staff.toml"
    cfg.write_text("".join(f'[agents.{n}]\ncommand = ["cat"]\nprofile = "aider"\n' for n in ("ad1", "ad2")))
    try:
        r = staff("up", "-c", str(cfg), check=True)
        said = [line for line in r.stderr.splitlines() if "in one directory" in line]
        assert len(said) == 1 and "ad1 and ad2 run aider" in said[0], r.stderr
        assert "worktree = true" in said[0]
    finally:
        staff("down", "--force")
