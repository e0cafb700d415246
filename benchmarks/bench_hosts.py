"""(h) Agents on other hosts over real ssh (issue #17): 3 hosts × 16 fake agents behind one hub.

- the hop: the same sequential tasks on a local agent and on a remote one, in the same run →
  p50/p99 of each (the ssh hop is the difference);
- load: 2 000 tasks from 8 clients to ``role:worker`` (only the hosts' agents have it) → tasks/s,
  and 0 lost (every task answered), 0 duplicated (the hosts ran exactly as many turns as there
  were tasks), 0 misrouted (every answer from a worker, with its own text);
- the hub's CPU with the 3 hosts connected and their 48 agents idle (no polling: ~0);
- mixed: 400 tasks from 8 clients to ``any``, which the agent here and the 48 there all fit,
  placed by the one routing rule (team/routing.py) → tasks/s, how many ran here and on each
  host, and 0 lost / duplicated / misrouted (each answer with its own text).

The hosts are this repo's `staff` with state dirs of their own, reached by real ssh through an
sshd on 127.0.0.1 that the bench starts (fixtures/sshd.py); skipped where sshd is missing.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from fixtures.sshd import SSHD, Sshd, far_side

from .harness import Context, Daemon, cpu_seconds, fake_command, pcts, row

HOSTS, PER_HOST, CLIENTS = 3, 16, 8


def run(ctx: Context) -> list[dict[str, Any]]:
    if ctx.only and "h" not in ctx.only:
        return []
    if not Path(SSHD).exists():
        ctx.log("hosts: no sshd (apt-get install openssh-server); skipped")
        return []
    tasks, hop, mixed = ctx.n(2000, 200), ctx.n(100, 20), ctx.n(400, 80)
    base = Path(ctx.tmp) / "hosts"
    base.mkdir()
    sshd = Sshd(base / "ssh")
    sshd.start()
    fars = [base / f"far{h}" for h in range(HOSTS)]
    extra = {}
    for h, far in enumerate(fars):
        staff = far_side(base / f"side{h}", far)
        extra[f"h{h}"] = f'ssh = "staffbox"\nssh_options = ["-F", "{sshd.config}"]\nstaff = "{staff}"\n'
    agents: dict[str, dict[str, Any]] = {"near": {"command": fake_command(), "profile": "fake"}}
    try:
        hub = _Hub(ctx, agents, extra)
        with hub as d:
            hub.wait_connected()
            ctx.log(f"hosts: {HOSTS} hosts × {PER_HOST} agents connected")
            local = _sequential(d, "near", hop)
            remote = _sequential(d, "h0/w0_h0", hop)
            t0 = cpu_seconds(d.pid)
            time.sleep(10.0)  # the measurement itself: 10 s of an idle hub
            idle_cpu = (cpu_seconds(d.pid) - t0) / 10.0 * 100
            ctx.log(f"hosts: {tasks} tasks from {CLIENTS} clients to role:worker")
            took, answers = _load(d, tasks, "role:worker")
            per_host = [_turns(far) for far in fars]
            before = [*per_host, _turns(d.home)]
            per_host[0] -= hop  # the hop tasks ran on h0/w0_h0
            turns = sum(per_host)
            ctx.log(f"hosts: {mixed} tasks from {CLIENTS} clients to any (here and the hosts)")
            took_any, answers_any = _load(d, mixed, "any")
            after = [*(_turns(far) for far in fars), _turns(d.home)]
            where = [b - a for a, b in zip(before, after, strict=True)]
    finally:
        for far in fars:
            _stop(far)
        sshd.stop()
    lost = tasks - len(answers)
    dup = turns - tasks
    misrouted = sum(
        1 for text, t in answers.items() if "/w" not in str(t["agent"]) or text not in t["answer"]
    )
    lost_any, dup_any = mixed - len(answers_any), sum(where) - mixed
    mis_any = sum(1 for text, t in answers_any.items() if text not in t["answer"])
    lp, rp = pcts(local), pcts(remote)
    name = f"(h) {HOSTS} hosts × {PER_HOST} agents over ssh"
    return [
        row(name, "task p50, remote (local in baseline)", rp["p50"], "ms", baseline="local agent",
            baseline_value=lp["p50"]),
        row(name, "task p99, remote (local in baseline)", rp["p99"], "ms", baseline="local agent",
            baseline_value=lp["p99"]),
        row(name, f"{tasks} tasks, {CLIENTS} clients, role:worker", tasks / took, "tasks/s",
            lower_is_better=False, note="per host: " + " / ".join(map(str, per_host))),
        row(name, "lost / duplicated / misrouted", lost + dup + misrouted, "tasks", target="0",
            ok=lost == dup == misrouted == 0, note=f"{lost} lost, {dup} duplicated, {misrouted} misrouted"),
        row(name, "hub CPU, 48 idle remote agents", idle_cpu, "% of a core", target="< 1 %", ok=idle_cpu < 1),
        row(name, f"{mixed} tasks, {CLIENTS} clients, any (here + hosts)", mixed / took_any, "tasks/s",
            lower_is_better=False, note="here / " + " / ".join(f"h{h}" for h in range(HOSTS)) + ": "
            + " / ".join(map(str, [where[-1], *where[:-1]]))),
        row(name, "any: lost / duplicated / misrouted", lost_any + dup_any + mis_any, "tasks", target="0",
            ok=lost_any == dup_any == mis_any == 0,
            note=f"{lost_any} lost, {dup_any} duplicated, {mis_any} misrouted"),
    ]


class _Hub(Daemon):
    """The hub: `agents` here, plus 16 workers placed on each host of `hosts`."""

    def __init__(self, ctx: Context, agents: dict[str, dict[str, Any]], hosts: dict[str, str]) -> None:
        super().__init__(ctx, agents, name="hub")
        text = self.cfg.read_text()
        cmd = json.dumps(fake_command())
        for host, table in hosts.items():
            text += f"\n[hosts.{host}]\n{table}"
            for i in range(PER_HOST):
                text += f'\n[agents.w{i}_{host}]\nhost = "{host}"\ncommand = {cmd}\n'
                text += 'profile = "fake"\nrole = "worker"\n'
        self.cfg.write_text(text)

    def wait_connected(self, timeout: float = 120) -> None:
        """Until every host is connected and all its agents idle (checked after each event)."""
        with self.client(timeout=timeout) as events, self.client(timeout=timeout) as c:
            for _ in events.stream("subscribe", read_timeout=timeout):
                st = c.call("status")
                remote = [a for a in st["agents"] if a.get("host")]
                up = all(h["state"] == "connected" for h in st["hosts"]) and len(remote) == HOSTS * PER_HOST
                if up and all(a["status"] == "idle" for a in remote):
                    return
        raise TimeoutError("hosts not connected")


def _sequential(d: Daemon, to: str, n: int) -> list[float]:
    lat = []
    with d.client(timeout=120) as c:
        for i in range(n):
            t0 = time.perf_counter()
            task = c.call("submit", to=to, text=f"hop {i}")
            c.call("wait", task=task["id"], timeout=60)
            lat.append((time.perf_counter() - t0) * 1000)
    return lat


def _load(d: Daemon, n: int, to: str) -> tuple[float, dict[str, dict[str, Any]]]:
    """`n` tasks to `to` from CLIENTS clients at once: the seconds, and each answered task by
    its text (one that did not finish is missing: lost)."""
    answers: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def client(k: int) -> None:
        mine = [f"load {to} {k}.{i}" for i in range(k, n, CLIENTS)]
        with d.client(timeout=300) as c:
            ids = [(text, c.call("submit", to=to, text=text)["id"]) for text in mine]
            for text, tid in ids:
                t = c.call("wait", task=tid, timeout=240)
                if t["state"] == "done":
                    with lock:
                        answers[text] = t

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, answers


def _stop(home: Path) -> None:
    """A host's daemon (started by its bridge) and its agents, ended."""
    import os
    import subprocess
    import sys

    from .harness import REPO

    env = dict(os.environ, STAFF_HOME=str(home), PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-m", "supervisor", "down"], env=env, capture_output=True, timeout=60)


def _turns(home: Path) -> int:
    """Tasks a daemon's own agents finished (each agent's count of done tasks; a hub's rows for
    other hosts' agents are theirs, not counted)."""
    from supervisor.protocol import Client

    with Client(home / "staff.sock", timeout=30) as c:
        return sum(int(a["context_summary"].split()[0]) for a in c.call("status")["agents"]
                   if a["context_summary"][0].isdigit() and not a.get("host"))
