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


def start_clients(
    home: Path, plan: list[tuple[str, str]], n_clients: int, timeout: float = 900
) -> tuple[list[threading.Thread], dict[int, dict[str, object]], list[BaseException]]:
    """`n_clients` threads, each submitting its share of `plan` (agent, text) and waiting for
    every answer; results by plan index, and any error a client met."""
    results: dict[int, dict[str, object]] = {}
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            with Client(socket_path(home), timeout=timeout) as c:
                mine = list(range(k, len(plan), n_clients))
                ids = {i: c.call("submit", to=plan[i][0], text=plan[i][1])["id"] for i in mine}
                for i in mine:
                    results[i] = c.call("wait", task=ids[i], timeout=timeout)
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    return threads, results, errors


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
    t0 = time.monotonic()
    threads, results, errors = start_clients(home, plan, n_clients)
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


def hostile(rng: random.Random, i: int) -> str:
    """A task text of a kind that once broke delivery (issue 15), ending in its own marker."""
    kind = rng.randrange(6)
    if kind == 0:
        body = rng.choice(["!rm -rf /tmp/nothing", "/clear", " /cost", "#note", "@planning go"])
    elif kind == 1:
        body = "a table\n" + "\n".join("─" * rng.randrange(60, 130) for _ in range(rng.randrange(1, 4)))
    elif kind == 2:
        body = "\n".join(f"line {k}" for k in range(rng.randrange(30, 120)))
    elif kind == 3:
        body = "reply ends like a spinner\n* Thinking…\n✶ Forming… (3s · ↓ 12 tokens)"
    elif kind == 4:
        body = "colour \x1b[31mred\x1b[0m bell\x07 nul\x00 end"
    else:
        body = f"job {i} [delay={rng.uniform(0, 0.3):.2f}]"
    return f"{body} [id:{i:06d}]"


@pytest.mark.parametrize(("n_agents", "n_tasks", "n_clients", "n_stalls"), [
    pytest.param(6, 120, 4, 12, id="6x120"),
    pytest.param(64, 2000, 8, 200, id="64x2000", marks=pytest.mark.soak),
])
def test_stalls_and_hostile_texts_lose_nothing_and_answer_right(
    home: Path, tmp_path: Path, n_agents: int, n_tasks: int, n_clients: int, n_stalls: int
) -> None:
    """Agents SIGSTOPped for 0–8 s at random while hostile texts flow: 0 lost, 0 duplicated,
    0 misrouted, 0 wrong answers (issue 15: "What it must show", 3)."""
    import os
    import signal

    names = tuple(f"h{i:02d}" for i in range(n_agents))
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(names))
    staff("up", "-c", str(cfg), check=True, timeout=300)
    rng = random.Random(11)
    plan = [(names[rng.randrange(n_agents)], hostile(rng, i)) for i in range(n_tasks)]
    done = threading.Event()
    stalls: list[tuple[str, float]] = []

    def stall(pid: int, secs: float) -> None:
        os.kill(pid, signal.SIGSTOP)
        try:
            done.wait(secs)
        finally:
            os.kill(pid, signal.SIGCONT)

    def staller() -> None:
        """Up to `n_stalls` stops of random agents, several at once, until the tasks end."""
        srng = random.Random(13)
        with Client(socket_path(home), timeout=30) as c:
            pids = {a["agent_id"]: a["pid"] for a in c.call("status")["agents"]}
        running: dict[str, threading.Thread] = {}
        for _ in range(n_stalls):
            if done.wait(srng.uniform(0.1, 0.6)):
                break
            free = [n for n in names if n not in running or not running[n].is_alive()]
            if not free:
                continue
            name, secs = srng.choice(free), srng.uniform(0, 8)
            stalls.append((name, secs))
            running[name] = threading.Thread(target=stall, args=(pids[name], secs))
            running[name].start()
        for t in running.values():
            t.join()

    stall_thread = threading.Thread(target=staller)
    stall_thread.start()
    threads, results, errors = start_clients(home, plan, n_clients)
    for t in threads:
        t.join()
    done.set()
    stall_thread.join()
    try:
        assert not errors, errors
        assert len(results) == n_tasks  # 0 lost
        wrong = []
        for i, (agent, text) in enumerate(plan):
            r = results[i]
            answer = str(r.get("answer") or "")
            if r["state"] != "done" or r["agent"] != agent or not answer.startswith(f"FAKE-REPLY({agent}#") \
                    or f"[id:{i:06d}]" not in answer or answer.count("[id:") != 1:
                wrong.append((i, agent, text[:60], r["state"], r.get("agent"), answer[:80], r.get("error")))
        assert not wrong, wrong[:5]  # 0 misrouted, 0 wrong answers, none failed
        for agent in names:  # 0 duplicated: each agent's turns are 1..n, each once
            turns = sorted(int(str(r["answer"]).split("#")[1].split(")")[0])
                           for r in results.values() if r["agent"] == agent)
            assert turns == list(range(1, len(turns) + 1)), (agent, turns)
        print(f"\n{n_tasks} tasks on {n_agents} agents through {len(stalls)} stalls "
              f"(up to {max((s for _, s in stalls), default=0):.1f} s): 0 lost, 0 duplicated, "
              f"0 misrouted, 0 wrong answers")
    finally:
        staff("down", timeout=300)
