"""What every benchmark module gets: the run's settings, scratch space, statistics, and
helpers to run a daemon with a team of agents and measure it from the outside.

A module ``benchmarks/bench_<name>.py`` defines ``run(ctx: Context) -> list[dict]`` (see
README.md for the row format). Helpers here are optional; use what fits.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "fixtures" / "fake_claude.py"
CAPTURES = REPO / "tests" / "data" / "claude-2.1.330"
CLK_TCK = os.sysconf("SC_CLK_TCK")

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from supervisor.protocol import Client  # noqa: E402


# -- statistics ------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0–100), linear interpolation between closest ranks."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def pcts(values: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99)}


def row(
    bench: str,
    metric: str,
    value: float,
    unit: str,
    *,
    baseline: str = "",
    baseline_value: float | None = None,
    lower_is_better: bool = True,
    target: str = "",
    ok: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One result row; `ratio` is how many times better than the baseline (>1 = we win)."""
    ratio = None
    if baseline_value is not None and value and not math.isnan(value) and not math.isnan(baseline_value):
        ratio = baseline_value / value if lower_is_better else value / baseline_value
    return {
        "bench": bench,
        "metric": metric,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "target": target,
        "ok": ok,
        "note": note,
    }


# -- processes -------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def fake_command(*extra: str) -> list[str]:
    return [sys.executable, str(FAKE), "--startup-delay", "0", *extra]


def team_toml(agents: dict[str, dict[str, Any]]) -> str:
    """A staff.toml for `agents` (name → {command, profile, env, ...})."""
    out = []
    for name, spec in agents.items():
        out.append(f"[agents.{name}]")
        for key, value in spec.items():
            if isinstance(value, dict):
                inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
                out.append(f"{key} = {{ {inner} }}")
            else:
                out.append(f"{key} = {json.dumps(value)}")
        out.append("")
    return "\n".join(out)


class Daemon:
    """A real daemon (`staff up`) in a private state dir, driven through its socket."""

    def __init__(
        self,
        ctx: Context,
        agents: dict[str, dict[str, Any]],
        name: str = "d",
        env: dict[str, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=ctx.tmp))
        self.home = self.dir / "staff"
        self.cfg = self.dir / "staff.toml"
        self.cfg.write_text(team_toml(agents))
        self.env = dict(
            os.environ, STAFF_HOME=str(self.home), HOME=str(self.dir / "home"), PYTHONPATH=str(REPO)
        )
        self.env.pop("STAFF_CONFIG", None)
        self.env.update(env or {})
        (self.dir / "home").mkdir()
        self.pid = 0

    def staff(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "supervisor", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            cwd=self.dir,
        )

    def __enter__(self) -> Daemon:
        up = self.staff("up", "-c", str(self.cfg))
        if up.returncode != 0:
            raise RuntimeError(f"staff up failed: {up.stdout}{up.stderr}")
        with self.client() as c:
            self.pid = int(c.call("ping")["pid"])
        return self

    def __exit__(self, *exc: object) -> None:
        self.staff("down", timeout=60)

    def client(self, timeout: float | None = 60) -> Client:
        return Client(self.home / "staff.sock", timeout=timeout).connect()

    def wait_state(self, state: str, timeout: float = 60, names: Sequence[str] | None = None) -> None:
        """Until every agent (or `names`) is in `state`; waits on the event stream."""
        deadline = time.monotonic() + timeout
        with self.client(timeout=timeout) as c:
            for frame in c.stream("subscribe", read_timeout=timeout):
                ev = frame.get("event") or {}
                if ev.get("type") == "hello":
                    states = {a["agent_id"]: a["status"] for a in ev["agents"]}
                elif ev.get("type") == "state":
                    states[ev["agent"]] = ev["new"]
                else:
                    continue
                want = names or list(states)
                if all(states.get(n) == state for n in want):
                    return
                if time.monotonic() > deadline:
                    break
        raise TimeoutError(f"agents not {state} after {timeout}s")

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)


class EventTap:
    """A subscribed client in a thread: every event with its arrival time (monotonic)."""

    def __init__(self, daemon: Daemon) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self._client = daemon.client(timeout=None)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            for frame in self._client.stream("subscribe", read_timeout=None):
                now = time.monotonic()
                ev = frame.get("event")
                if ev is None:
                    return
                if ev.get("type") == "hello":
                    self._ready.set()
                    continue
                with self._cond:
                    self.events.append((now, ev))
                    self._cond.notify_all()

    def until(self, cond: Callable[[list[tuple[float, dict[str, Any]]]], bool], timeout: float = 60) -> None:
        """Until `cond(events so far)` holds (checked as each event arrives): a reply to a
        call can come before the events that led to it reach this tap."""
        with self._cond:
            if not self._cond.wait_for(lambda: cond(self.events), timeout):
                raise TimeoutError(f"the events did not come within {timeout} s")

    def close(self) -> None:
        self._client.close()


# -- the context -------------------------------------------------------------------------------
@dataclass
class Context:
    quick: bool = False
    only: list[str] = field(default_factory=list)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="staff-bench-")))
    repo: Path = REPO
    python: str = sys.executable
    notes: list[str] = field(default_factory=list)
    """Lines a module wants printed under the table in docs/benchmarks.md."""

    def scale(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def log(self, msg: str) -> None:
        print(f"  · {msg}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def daemon(
        self, agents: dict[str, dict[str, Any]], name: str = "d", env: dict[str, str] | None = None
    ) -> Iterator[Daemon]:
        """A daemon running `agents`; `env` is added to the daemon's environment."""
        with Daemon(self, agents, name, env) as d:
            yield d
