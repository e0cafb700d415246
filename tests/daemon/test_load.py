"""Load: many fake agents, many tasks from concurrent clients; every task answered exactly once
by the right agent. `make test` runs a small size; `make soak` the issue's 64 agents × 2 000 tasks."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from pathlib import Path

import pytest

from supervisor.protocol import Client, socket_path
from tests.conftest import fake_team_toml, staff

SIZES = [
    pytest.param(8, 200, 4, id="8x200"),
    pytest.param(64, 2000, 8, id="64x2000", marks=pytest.mark.soak),
]


@pytest.mark.parametrize(("n_agents", "n_tasks", "n_clients"), SIZES)
def test_every_task_answered_once_by_the_right_agent(
    home: Path, tmp_path: Path, n_agents: int, n_tasks: int, n_clients: int
) -> None:
    names = tuple(f"a{i:02d}" for i in range(n_agents))
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(names))
    staff("up", "-c", str(cfg), check=True, timeout=300)
    rng = random.Random(7)
    plan = [
        (names[rng.randrange(n_agents)], f"job {i} [delay={rng.uniform(0, 0.5):.2f}]") for i in range(n_tasks)
    ]
    results: dict[int, dict[str, object]] = {}
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            with Client(socket_path(home), timeout=600) as c:
                mine = list(range(k, n_tasks, n_clients))
                ids = {i: c.call("submit", to=plan[i][0], text=plan[i][1])["id"] for i in mine}
                for i in mine:
                    results[i] = c.call("wait", task=ids[i], timeout=600)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    try:
        assert not errors, errors
        assert len(results) == n_tasks  # 0 lost
        for i, (agent, text) in enumerate(plan):
            r = results[i]
            assert r["state"] == "done", r
            assert r["agent"] == agent  # 0 misrouted
            assert str(r["answer"]).startswith(f"FAKE-REPLY({agent}#") and str(r["answer"]).endswith(text)
        # 0 duplicated: each agent's turn numbers are exactly 1..n, each used once
        for agent in names:
            turns = sorted(
                int(str(r["answer"]).split("#")[1].split(")")[0])
                for r in results.values()
                if r["agent"] == agent
            )
            assert turns == list(range(1, len(turns) + 1)), (agent, turns)
        overhead = sorted(
            float(r["finished"]) - float(r["delivered"]) - float(plan[i][1].split("delay=")[1].rstrip("]"))  # type: ignore[arg-type]
            for i, r in results.items()
        )
        p50, p99 = overhead[len(overhead) // 2], overhead[int(len(overhead) * 0.99)]
        print(
            f"\n{n_agents} agents, {n_tasks} tasks, {n_clients} clients: {n_tasks / wall:.1f} tasks/s, "
            f"overhead beyond the directed delay p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms, "
            f"mean {statistics.mean(overhead) * 1e3:.0f} ms"
        )
        (tmp_path / "load.json").write_text(
            json.dumps({"tasks_per_s": n_tasks / wall, "p50": p50, "p99": p99})
        )
    finally:
        staff("down", timeout=300)
