"""`[hosts.NAME]` and `host = …` in staff.toml (team/config.py), and the hub's renaming (hosts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.daemon.hosts import Held, event_out, forgotten, split, task_out
from supervisor.team.config import ConfigError, parse

AGENT = '[agents.a]\ncommand = ["x"]\n'


def test_ssh_host_runs_the_bridge_with_keepalives_and_batch_mode() -> None:
    cfg = parse(
        AGENT + '[hosts.build1]\nssh = "me@build1"\nalive_interval = 7\n'
        '[agents.far]\nhost = "build1"\ncommand = ["claude"]\ncwd = "~/src"\n',
        "staff.toml",
    )
    host = cfg.hosts["build1"]
    assert host.argv == [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=7", "-o",
        "ServerAliveCountMax=2", "-o", "ConnectTimeout=10", "me@build1", "staff", "bridge",
    ]
    assert [a.name for a in cfg.agents] == ["a"]  # `far` is the host's, not spawned here
    assert host.agents == {"far": {"command": ["claude"], "cwd": "~/src"}}  # its paths, unresolved


def test_transport_is_any_argv() -> None:
    argv = ["kubectl", "exec", "-i", "agents-0", "--", "staff", "bridge"]
    cfg = parse(AGENT + f"[hosts.k]\ntransport = {argv!r}\n".replace("'", '"'), "staff.toml")
    assert cfg.hosts["k"].argv == argv


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('[hosts.b]\nssh = "x"\ntransport = ["y"]\n', "staff.toml:3: hosts.b: needs one of ssh"),
        ("[hosts.b]\n", "needs one of ssh"),
        ('[hosts.b]\nssh = "-oProxyCommand=x"\n', "hosts.b.ssh: a destination"),
        ('[hosts.b]\ntransport = []\n', "hosts.b.transport: a non-empty list"),
        ('[hosts.b]\nssh = "x"\nport = 22\n', "staff.toml:5: hosts.b: unknown key 'port'"),
        ('[agents.far]\nhost = "nowhere"\ncommand = ["x"]\n', "agents.far.host: unknown host 'nowhere'"),
        ('[hosts.b]\nssh = "x"\n[agents.far]\nhost = "b"\n', "agents.far.command: needs a command"),
    ],
)
def test_bad_host_tables_say_where_in_one_line(toml: str, said: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(AGENT + toml, "staff.toml")
    assert said in str(exc.value) and "\n" not in str(exc.value)


def test_the_hub_names_a_hosts_agents_and_tasks_behind_the_host() -> None:
    assert split("box/far") == ("box", "far") and split("far") is None and split("/x") is None
    t = task_out("box", {"id": "T-1", "to": "far", "agent": "far", "state": "done"})
    assert (t["id"], t["to"], t["agent"], t["host"]) == ("box/T-1", "box/far", "box/far", "box")
    ev = event_out("box", {"type": "state", "agent": "far", "old": "idle", "new": "working"})
    assert ev is not None and ev["agent"] == "box/far"
    assert event_out("box", {"type": "hello", "agents": []}) is None  # the host's own business


def test_a_host_removed_from_the_file_is_said_once_with_the_tasks_held_for_it(tmp_path: Path) -> None:
    two = parse(AGENT + '[hosts.a]\nssh = "a"\n[hosts.b]\nssh = "b"\n', "staff.toml").hosts
    assert forgotten(tmp_path, two) == []
    Held(tmp_path / "hosts" / "b.json").add("far", "still held", "k1", False)
    one = {"a": two["a"]}
    said = forgotten(tmp_path, one)
    assert len(said) == 1 and said[0].startswith("host b is no longer in the team file: its agents keep")
    assert "1 task(s) held for it were not handed over (hosts/b.json)" in said[0]
    assert forgotten(tmp_path, one) == []  # once
