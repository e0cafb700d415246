"""The router's one rule for `any` and `role:X` across hosts (team/routing.py), the hub's view
of each host (`Hosts.candidates`/`resolve` in daemon/hosts.py) and a pool's per-host `max` in
staff.toml. Simulated local agents (no pty) and links that are never started: the rows and the
events a host would send are given by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.agent.agent import AgentSpec
from supervisor.daemon import hosts as hostsmod
from supervisor.daemon.hosts import Hosts, Link
from supervisor.protocol import ProtocolError
from supervisor.team import routing
from supervisor.team import supervisor as supmod
from supervisor.team.config import Config, ConfigError, HostSpec, RoleSpec, parse, role_from_table
from supervisor.team.routing import LOCAL, Candidate, choose
from supervisor.team.supervisor import Supervisor
from tests.helpers.sim import SimProcess
from tests.unit.test_supervisor import proc, until_idle


def cand(where: str, *, up: bool = True, agents: int = 1, free: int = 0, waiting: int = 0,
         room: int = 0, order: int = 1) -> Candidate:
    return Candidate(where, up, agents, free, waiting, room, 0 if where == LOCAL else order)


# -- the rule -------------------------------------------------------------------------------------
def test_an_idle_agent_wins_wherever_it_is() -> None:
    assert choose([cand(LOCAL), cand("b1", free=1)]).where == "b1"  # type: ignore[union-attr]
    assert choose([cand(LOCAL, free=1), cand("b1")]).where == LOCAL  # type: ignore[union-attr]


def test_ties_prefer_here_then_more_idle_then_file_order() -> None:
    assert choose([cand("b1", free=3), cand(LOCAL, free=1)]).where == LOCAL  # type: ignore[union-attr]
    assert choose([cand("b1", free=1), cand("b2", free=2, order=2)]).where == "b2"  # type: ignore[union-attr]
    assert choose([cand("b2", free=1, order=2), cand("b1", free=1)]).where == "b1"  # type: ignore[union-attr]
    # all busy, the same tasks per agent once this one is added (4/2, 2/1): here, no ssh hop
    assert choose([cand("b1", waiting=3, agents=2), cand(LOCAL, waiting=1)]).where == LOCAL  # type: ignore[union-attr]
    assert choose([cand("b1", waiting=2, agents=2), cand(LOCAL, waiting=1)]).where == "b1"  # type: ignore[union-attr]


def test_idle_agents_already_claimed_by_waiting_tasks_are_not_idle() -> None:
    # b1 has 2 idle agents but 2 tasks just sent there take them: an idle b2 agent is better
    assert choose([cand("b1", agents=2, free=2, waiting=2), cand("b2", free=1, order=2)]).where == "b2"  # type: ignore[union-attr]


def test_when_everyone_is_busy_the_fewest_tasks_waiting_per_agent_wins() -> None:
    assert choose([cand(LOCAL, waiting=3), cand("b1", agents=4, waiting=3)]).where == "b1"  # type: ignore[union-attr]
    assert choose([cand(LOCAL, waiting=0), cand("b1", agents=4, waiting=8)]).where == LOCAL  # type: ignore[union-attr]


def test_a_host_that_is_down_is_chosen_only_when_nothing_else_can_take_the_task() -> None:
    assert choose([cand("b1", up=False, free=5), cand(LOCAL, waiting=9)]).where == LOCAL  # type: ignore[union-attr]
    assert choose([cand("b1", up=False, free=5), cand("b2", waiting=9, order=2)]).where == "b2"  # type: ignore[union-attr]
    assert choose([cand("b1", up=False, free=5)]).where == "b1"  # type: ignore[union-attr]  # held there


def test_a_pool_with_room_comes_after_an_idle_agent_and_before_a_queue() -> None:
    assert choose([cand(LOCAL, free=1), cand("b1", agents=0, room=4)]).where == LOCAL  # type: ignore[union-attr]
    assert choose([cand(LOCAL, waiting=1), cand("b1", agents=0, room=4)]).where == "b1"  # type: ignore[union-attr]
    full = cand("b1", agents=4, free=0, waiting=0, room=0)
    assert choose([full, cand("b2", agents=1, room=1, order=2)]).where == "b2"  # type: ignore[union-attr]
    assert choose([cand("b1", agents=0, room=0)]) is None  # nothing there for it


def test_fits_is_the_supervisors_own_rule() -> None:
    assert routing.fits("any", "a", None) and routing.fits("role:x", "a", "x")
    assert routing.fits("a", "a", None)
    assert not routing.fits("any", "chief", None, True) and routing.fits("chief", "chief", None, True)
    assert not routing.fits("role:x", "a", "y")


# -- the hub's view of its hosts, and of itself ---------------------------------------------------
def spec(name: str, role: str | None = None) -> AgentSpec:
    return AgentSpec(name=name, command=["sim"], profile="claude", role=role)


@pytest.fixture
async def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Supervisor, Hosts]]:
    """A hub with `near` (role builder) here and two hosts whose links are never started."""
    SimProcess.auto = True
    SimProcess.instances.clear()
    monkeypatch.setattr(supmod, "RESTART_BACKOFF", (0.0, 0.0))
    monkeypatch.setenv("HOME", str(tmp_path))
    roles = {"pool": RoleSpec("pool", spec("pool"), 0, 0, hosts={"b2": (0, 2)}, local=False)}
    sup = Supervisor(Config([spec("near", "builder")], "test", roles=roles), tmp_path / "staff",
                     process_factory=SimProcess)
    await sup.start()
    await until_idle(sup)
    specs = {n: HostSpec(n, ["true"], "test") for n in ("b1", "b2")}
    hosts = Hosts(specs, sup.publish, tmp_path / "staff")
    yield sup, hosts
    await sup.shutdown()


def rows(link: Link, *agents: tuple[str, str, str | None]) -> None:
    link.agents = [{"agent_id": n, "status": st, "role": r} for n, st, r in agents]
    link.up.set()


def ev(link: Link, **event: Any) -> None:
    link._track(event)


async def test_a_mixed_role_goes_here_while_here_is_idle_then_to_the_idle_host(
    hub: tuple[Supervisor, Hosts]
) -> None:
    sup, hosts = hub
    rows(hosts.links["b1"], ("far", "idle", "builder"))
    assert hosts.resolve(sup, "role:builder") is None  # tie: here
    SimProcess.auto = False
    sup.submit("near", "keeps near busy")
    assert await sup.agents["near"].until(lambda: sup.agents["near"].state == "working", 5)
    route = hosts.resolve(sup, "role:builder")
    assert route is not None and route[0] is hosts.links["b1"] and route[1:] == ("to", "role:builder")
    assert hosts.resolve(sup, "any") is not None  # `any`: the same rule
    # the task sent there is queued until the host says it was given out: far is then taken
    ev(hosts.links["b1"], type="task", task={"id": "T-1", "to": "role:builder", "state": "queued"})
    assert hosts.resolve(sup, "role:builder") is None  # both busy, one waiting each: here
    ev(hosts.links["b1"], type="task", task={"id": "T-1", "agent": "far", "state": "delivered"})
    assert hosts.links["b1"].agents[0]["status"] == "working" and not hosts.links["b1"].queued
    ev(hosts.links["b1"], type="state", agent="far", new="idle")
    assert hosts.resolve(sup, "role:builder") is not None
    proc(sup, "near").finish("done")


async def test_a_host_that_is_down_or_lacks_the_role_is_not_chosen(hub: tuple[Supervisor, Hosts]) -> None:
    sup, hosts = hub
    SimProcess.auto = False
    sup.submit("near", "busy")
    assert await sup.agents["near"].until(lambda: sup.agents["near"].state == "working", 5)
    rows(hosts.links["b1"], ("far", "idle", "builder"))
    hosts.links["b1"].up.clear()  # its link is down: its idle agent is not reachable
    rows(hosts.links["b2"], ("other", "idle", "tester"))
    assert hosts.resolve(sup, "role:builder") is None  # queued here
    assert hosts.resolve(sup, "role:tester") is not None  # only b2 has it
    assert hosts.resolve(sup, "near") is None  # a name is never routed by the rule
    with pytest.raises(ProtocolError, match=r"role .nobody. .*; on hosts: b1/builder, b2/tester$"):
        hosts.resolve(sup, "role:nobody")
    proc(sup, "near").finish("done")


async def test_a_retried_key_goes_where_its_first_submit_went(hub: tuple[Supervisor, Hosts]) -> None:
    sup, hosts = hub
    rows(hosts.links["b1"], ("far", "idle", "builder"))
    SimProcess.auto = False
    busy = sup.submit("near", "busy")
    assert await sup.agents["near"].until(lambda: sup.agents["near"].state == "working", 5)
    first = hosts.resolve(sup, "any", key="k1")
    assert first is not None
    proc(sup, "near").finish("done")
    assert (await sup.wait(busy.id, 5)).state == "done"
    assert hosts.resolve(sup, "any") is None  # here is idle again…
    assert hosts.resolve(sup, "any", key="k1") == first  # …but the key's task is there already
    sup.submit("any", "a keyed one", key="k2")
    assert hosts.resolve(sup, "any", key="k2") is None  # and a key made here stays here
    again = Hosts({n: link.spec for n, link in hosts.links.items()}, sup.publish, sup.home)
    assert again.resolve(sup, "any", key="k1") == (again.links["b1"], "to", "any")  # a hub restarted


def test_keyed_routes_are_kept_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostsmod, "MAX_HELD", 3)
    k = hostsmod.Keyed(tmp_path / "keyed.jsonl")
    for i in range(7):
        k.add(f"k{i}", "b1")
    assert list(hostsmod.Keyed(tmp_path / "keyed.jsonl").hosts) == ["k4", "k5", "k6"]
    assert len((tmp_path / "keyed.jsonl").read_text().splitlines()) == 3


def test_keyed_rewrite_never_writes_through_a_planted_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rewrite goes through the atomic writer: a fresh exclusive temp file, not a fixed
    name another user could have made a symlink to one of ours."""
    monkeypatch.setattr(hostsmod, "MAX_HELD", 2)
    victim = tmp_path / "victim"
    victim.write_text("mine\n")
    (tmp_path / "keyed.tmp").symlink_to(victim)
    k = hostsmod.Keyed(tmp_path / "keyed.jsonl")
    for i in range(5):
        k.add(f"k{i}", "b1")
    assert victim.read_text() == "mine\n"
    assert (tmp_path / "keyed.jsonl").stat().st_mode & 0o777 == 0o600
    assert list(hostsmod.Keyed(tmp_path / "keyed.jsonl").hosts) == ["k3", "k4"]


async def test_a_pool_placed_on_a_host_is_chosen_for_its_room_up_to_its_max(
    hub: tuple[Supervisor, Hosts]
) -> None:
    sup, hosts = hub
    b2 = hosts.links["b2"]
    rows(b2)
    assert hosts.resolve(sup, "role:pool") is not None  # no member yet: room for 2 there
    ev(b2, type="task", task={"id": "T-1", "to": "role:pool", "state": "queued"})
    ev(b2, type="pool", role="pool", agent="pool-1", action="spawn")
    assert [r["agent_id"] for r in b2.agents] == ["pool-1"]
    ev(b2, type="task", task={"id": "T-2", "to": "role:pool", "state": "queued"})
    ev(b2, type="pool", role="pool", agent="pool-2", action="spawn")
    (c, _), = hosts.candidates("role:pool", sup.config.roles)
    assert (c.agents, c.free, c.waiting, c.room) == (2, 2, 2, 0)  # at its max: no more room
    ev(b2, type="pool", role="pool", agent="pool-1", action="stop")
    (c, _), = hosts.candidates("role:pool", sup.config.roles)
    assert (c.agents, c.room) == (1, 1)


# -- staff.toml -----------------------------------------------------------------------------------
HOSTS = '[agents.a]\ncommand = ["x"]\n[hosts.b1]\nssh = "b1"\n[hosts.b2]\nssh = "b2"\n'


def test_a_pools_max_is_per_host_a_number_or_a_table() -> None:
    cfg = parse(HOSTS + '[roles.w]\ncommand = ["w"]\nhosts = ["local", "b1"]\nmax = 4\n', "staff.toml")
    w = cfg.roles["w"]
    assert (w.local, w.min, w.max, w.hosts) == (True, 0, 4, {"b1": (0, 4)})
    assert cfg.hosts["b1"].roles == {
        "w": {"table": {"command": ["w"], "role": "w"}, "pool": {"min": 0, "max": 4, "idle_timeout": 300.0}}
    }
    assert cfg.hosts["b2"].roles == {}
    role = '[roles.w]\ncommand = ["w"]\nmax = { b1 = 6, b2 = 1 }\nmin = { b1 = 1 }\n'
    cfg = parse(HOSTS + role, "staff.toml")
    w = cfg.roles["w"]
    assert (w.local, w.max, w.hosts) == (False, 0, {"b1": (1, 6), "b2": (0, 1)})
    assert parse(HOSTS + '[roles.w]\ncommand = ["w"]\nmax = 3\n', "staff.toml").roles["w"].hosts == {}


@pytest.mark.parametrize(
    ("role", "said"),
    [
        ('hosts = ["b9"]\n', "staff.toml:9: roles.w.hosts: unknown host 'b9'"),
        ('hosts = "b1"\n', "roles.w.hosts: a list of host names"),
        ('hosts = ["b1", "b1"]\n', "roles.w.hosts: a host is named twice"),
        ('hosts = ["b1"]\nmax = { b2 = 3 }\n', "staff.toml:10: roles.w.max: host 'b2' is not in this role"),
        ('hosts = ["b1", "b2"]\nmax = { b1 = 3 }\n', "roles.w.max: no value for host 'b2'"),
        ('max = { b1 = 0 }\n', "roles.w.max: an integer from 1 to 64"),
        ('max = { b9 = 2 }\n', "staff.toml:9: roles.w.max: unknown host 'b9'"),
        ('max = { b1 = 2 }\nmin = 3\n', "roles.w.max: below min (3) for host 'b1'"),
    ],
)
def test_bad_pool_hosts_say_where_in_one_line(role: str, said: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(HOSTS + '[roles.w]\ncommand = ["w"]\n' + role, "staff.toml")
    assert said in str(exc.value) and "\n" not in str(exc.value)


def test_no_host_may_be_called_local() -> None:
    with pytest.raises(ConfigError, match="staff.toml:3: hosts.local: `local` means this machine"):
        parse('[agents.a]\ncommand = ["x"]\n[hosts.local]\nssh = "x"\n', "staff.toml")


def test_a_placed_pool_role_is_checked_like_the_files_own() -> None:
    r = role_from_table("w", {"command": ["w"], "role": "w"}, {"min": 1, "max": 3, "idle_timeout": 5}, "hub")
    assert (r.name, r.min, r.max, r.idle_timeout, r.template.role) == ("w", 1, 3, 5.0, "w")
    with pytest.raises(ConfigError, match="roles.w.max: an integer"):
        role_from_table("w", {"command": ["w"]}, {"max": 99}, "hub")


async def test_a_pool_role_placed_by_a_hub_comes_up_to_its_min_and_takes_new_limits(
    hub: tuple[Supervisor, Hosts]
) -> None:
    """What a host's daemon does with `place` + `pool` (server._place_role → Pool.add_role)."""
    from supervisor.team.pool import Pool

    sup, _ = hub
    pool = Pool(sup)
    sup.extensions.append(pool)
    placed = role_from_table("w", {"command": ["sim"], "profile": "claude"}, {"min": 1, "max": 2}, "hub")
    assert pool.add_role(placed) and [a.name for a in pool.members("w")] == ["w-1"]
    assert pool.room("w") == 1 and "w" in pool.roles()
    again = role_from_table("w", {"command": ["sim"], "profile": "claude"}, {"min": 1, "max": 4}, "hub")
    assert not pool.add_role(again)  # placed again after a reconnect: the same role, new limits
    assert pool.room("w") == 3 and [a.name for a in pool.members("w")] == ["w-1"]
    assert routing.local(sup, "role:w").room == 3


async def test_malformed_rows_and_items_from_a_host_are_dropped_not_crashed_on(
    hub: tuple[Supervisor, Hosts], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host's status rows and inbox items are not trusted: rows that are not objects with a
    string agent_id and items without a numeric time are dropped (said once in the log)."""
    sup, hosts = hub
    link = hosts.links["b1"]
    link.up.set()
    posted: list[str] = []
    link.post = lambda item: posted.append(item.title)
    link.relayed.since = 0.0
    bad_rows = [
        "far", None, {"status": "idle"}, {"agent_id": 7, "status": "idle"},
        {"agent_id": "ok", "status": ["idle"], "role": {"x": 1}}, {"agent_id": "far", "status": "idle"},
    ]
    items = [{"id": "i1", "time": 2.0, "title": "second"}, {"id": "i2", "time": "1", "title": "str"},
             "junk", {"id": "i3", "time": 1, "title": "first"}, {"id": "i4", "time": True, "title": "bool"}]

    async def call(cmd: str, on_event: Any = None, **fields: Any) -> Any:
        return {"status": {"agents": bad_rows}, "inbox": {"items": items}}[cmd]

    monkeypatch.setattr(link, "call", call)
    rows = await hosts.status_rows()
    assert [r["agent_id"] for r in rows] == ["b1/ok", "b1/far"]
    assert rows[0]["status"] == "unknown" and rows[0]["role"] is None
    assert [c.where for c, _ in hosts.candidates("any", sup.config.roles)] == ["b1"]
    ev(link, type="pool", action="spawn", agent="clone", role=["builder"])
    ev(link, type="state", agent="far", new=["idle"])
    assert hosts.candidates("role:builder", sup.config.roles) == []
    await link._catch_up_inbox()
    assert posted == ["b1: first", "b1: second"]


async def test_the_tasks_queued_on_a_host_are_known_again_after_a_reconnect(
    hub: tuple[Supervisor, Hosts], tmp_path: Path
) -> None:
    """After a reconnect the hub asks for the host's status with its queued tasks, so the
    router counts what waits there, not only what was queued after the link came back."""
    from supervisor.daemon.server import Server

    sup, hosts = hub
    SimProcess.auto = False
    sup.submit("near", "busy")
    assert await sup.agents["near"].until(lambda: sup.agents["near"].state == "working", 5)
    waits = sup.submit("role:builder", "waits there")
    far = await Server(sup, tmp_path / "sock").cmd_status({"cmd": "status", "tasks": True}, None, None)  # type: ignore[arg-type]
    assert far["waiting"] == [{"id": waits.id, "to": "role:builder"}]
    link = hosts.links["b1"]
    link.up.set()
    far["agents"] = [{"agent_id": "far", "status": "working", "role": "builder"}]
    link.queued.clear()  # as the link does on a reconnect
    link.took_status(far)
    assert link.queued == {waits.id: "role:builder"}
    c = hosts.candidates("role:builder", sup.config.roles)[0][0]
    assert (c.where, c.waiting) == ("b1", 1)
    link.took_status({"agents": []})  # an older agentstaff there: the queue is left to its events
    assert link.queued == {waits.id: "role:builder"}
    proc(sup, "near").finish("done")


async def test_the_inbox_catch_up_asks_from_its_watermark_and_keeps_since_from_the_start(
    hub: tuple[Supervisor, Hosts], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's first sight of a host is kept at once (a restart before any relay must not
    move it past what the host posted meanwhile); each catch-up asks only for items of its
    watermark's time or later, ties settled by the ids, and the host's daemon filters them."""
    from supervisor.daemon.server import Server
    from supervisor.team.inbox import InboxItem

    sup, hosts = hub
    link = hosts.links["b1"]
    path = link.relayed.path
    assert path.exists() and hostsmod.Relayed(path).since == link.relayed.since
    link.relayed.since = 0.0
    posted: list[str] = []
    link.post = lambda item: posted.append(item.title)
    asked: list[dict[str, Any]] = []
    inbox = [{"id": f"i{n}", "time": float(t), "title": f"t{n}"} for n, t in enumerate([5, 7, 7, 3])]

    async def call(cmd: str, on_event: Any = None, **fields: Any) -> Any:
        asked.append(fields)
        return {"items": [i for i in inbox if i["time"] >= fields.get("since", 0)]}

    monkeypatch.setattr(link, "call", call)
    await link._catch_up_inbox()
    assert posted == ["b1: t3", "b1: t0", "b1: t1", "b1: t2"] and hostsmod.Relayed(path).last == 7.0
    inbox.append({"id": "i4", "time": 7.0, "title": "t4"})  # posted in the same second as the last
    await link._catch_up_inbox()
    assert asked[-1]["since"] == 7.0 and posted[4:] == ["b1: t4"]
    # the far side's filter
    for t in (1.0, 2.0):
        sup.post(InboxItem(title=f"at {t}", time=t))
    server = Server(sup, tmp_path / "sock")
    got = await server.cmd_inbox({"cmd": "inbox", "all": True, "since": 2.0}, None, None)  # type: ignore[arg-type]
    assert [i["title"] for i in got["items"]] == ["at 2.0"]
