"""The console's prefix key: flags, environment, team file, and not tmux's own (issue 20 item 10)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.client.cli.console import console_prefix


def fake_tmux(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, prefix2: str = "None") -> None:
    """A `tmux` on PATH that answers `show-options -gv prefix|prefix2`, and $TMUX set."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tmux = bin_dir / "tmux"
    tmux.write_text(f'#!/bin/sh\ncase "$3" in prefix) echo {prefix};; prefix2) echo {prefix2};; esac\n')
    tmux.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TMUX", "STAFF_PREFIX", "STAFF_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)


def test_outside_tmux_the_default_is_c_b() -> None:
    assert console_prefix(None, None) == ("\x02", "")


def test_inside_tmux_the_default_is_not_tmux_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tmux(tmp_path, monkeypatch, "C-b")
    key, note = console_prefix(None, None)
    assert key == "\x01" and note == "prefix C-a (C-b is tmux's)"
    # a tmux whose prefix is C-a leaves C-b to the console, without a word
    (tmp_path / "bin" / "tmux").unlink()
    (tmp_path / "bin").rmdir()
    fake_tmux(tmp_path, monkeypatch, "C-a", "C-b")
    assert console_prefix(None, None)[0] == "\x1d"  # C-b and C-a both taken: C-]


def test_settings_order_flag_env_team_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    team = tmp_path / "staff.toml"
    team.write_text('[staff]\nconsole_prefix = "C-x"\n\n[agents.a]\ncommand = "sh"\n')
    assert console_prefix(None, None)[0] == "\x18"  # ./staff.toml, as `staff up` finds it
    monkeypatch.setenv("STAFF_PREFIX", "C-t")
    assert console_prefix(None, None)[0] == "\x14"
    assert console_prefix("C-g", None)[0] == "\x07"
    fake_tmux(tmp_path, monkeypatch, "C-g")
    key, note = console_prefix("C-g", None)  # chosen on purpose: kept, with a word about it
    assert key == "\x07" and "also tmux's prefix" in note


def test_a_bad_prefix_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    from supervisor.client.cli.common import CliError

    monkeypatch.setenv("STAFF_PREFIX", "Ctrl-B")
    with pytest.raises(CliError, match="^STAFF_PREFIX: cannot read the key 'Ctrl-B'"):
        console_prefix(None, None)
