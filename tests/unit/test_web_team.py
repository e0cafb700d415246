"""The team page's view of other hosts' agents (daemon/web.py `team_now`): a host that does not
answer for a blocked agent's screen holds neither the view nor the other pages' readers.
Links never started: the rows and the screens a host would send are given by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from supervisor.daemon import web as webmod
from supervisor.daemon.hosts import Hosts, Link
from supervisor.daemon.web import WebApp
from supervisor.team.config import Config, HostSpec
from supervisor.team.supervisor import Supervisor
from tests.helpers.sim import RULE, SimProcess

QUESTION = [RULE, " Do you want to proceed?", " ❯ 1. Yes", "   2. No"]


class FakeServer:
    """What the web app asks of the daemon's server for other hosts: routes and forwarding."""

    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts

    def remote(self, req: dict[str, Any]) -> tuple[Link, str, str] | None:
        host, _, there = str(req["agent"]).partition("/")
        return (self.hosts.links[host], "agent", there) if there else None


async def test_a_host_that_never_sends_a_screen_holds_the_view_only_its_bounded_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webmod, "SCREEN_WAIT", 0.2, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    sup = Supervisor(Config([], "test"), tmp_path / "staff", process_factory=SimProcess)
    await sup.start()
    hosts = Hosts({"b1": HostSpec("b1", ["true"], "test")}, sup.publish, tmp_path / "staff")
    never = asyncio.Event()
    asked: list[str] = []

    async def status_rows() -> list[dict[str, Any]]:
        return [{"agent_id": f"b1/{n}", "status": "blocked", "host": "b1"} for n in ("deaf", "ok")]

    async def forward(req: dict[str, Any], link: Link, field: str, there: str) -> Any:
        asked.append(there)
        if there == "deaf":
            await never.wait()  # the host never answers
        return {"agent": there, "state": "blocked", "lines": QUESTION, "title": ""}

    monkeypatch.setattr(hosts, "status_rows", status_rows)
    monkeypatch.setattr(hosts, "forward", forward)
    app = WebApp(sup, None, FakeServer(hosts))  # type: ignore[arg-type]
    try:
        first = asyncio.ensure_future(app.team_now())
        for _ in range(100):  # both screens asked at once, not one after the other
            if len(asked) == 2:
                break
            await asyncio.sleep(0)
        assert sorted(asked) == ["deaf", "ok"]
        assert not app._team_lock.locked()  # the lock is not held while hosts are asked
        second = asyncio.ensure_future(app.team_now())  # another page: the same build
        views = await asyncio.wait_for(asyncio.gather(first, second), 5)
        assert views[0] is views[1] and sorted(asked) == ["deaf", "ok"]
        q = {a["name"]: a["question"] for a in views[0]["agents"]}
        assert q["b1/deaf"] is None and q["b1/ok"]["text"] == "Do you want to proceed?"
        assert await app.team_now() is views[0]  # made once per change
    finally:
        app.close()
        await sup.shutdown()
