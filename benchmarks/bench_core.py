"""Core benchmarks (issue #6): (a)–(g), each beside its tmux and bare-pty baselines.

(a) task round trip · (b) state change → event · (c) emulator throughput · (d) idle cost ·
(e) busy scale · (f) memory per agent · (g) fairness under a 10 MB flood.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import resource
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ptyprocess

from .harness import CAPTURES, Context, EventTap, cpu_seconds, fake_command, pcts, row, rss_bytes

HERE = Path(__file__).resolve().parent
REPLAY = HERE / "claude_replay.py"
INSTANT = {"FAKE_CLAUDE_MIN_TURN": "0.005"}
"""The fake's working frame lasts 5 ms (default 30 ms): an 'instant-reply' agent."""


# -- agent programs ----------------------------------------------------------------------------
def replay_cmd(trace: Path, working: float, idle: float, rate: float = 1200.0, fps: float = 8.0) -> list[str]:
    return [
        sys.executable,
        str(REPLAY),
        "--trace",
        str(trace),
        "--working",
        str(working),
        "--idle",
        str(idle),
        "--rate",
        str(rate),
        "--fps",
        str(fps),
    ]


SCROLL_PY = r"""
import os, sys
for i in range(int(sys.argv[1])):
    sys.stdout.write(f"scrollback line {i:05d} " + "x" * 60 + "\r\n")
sys.stdout.write("$ "); sys.stdout.flush()
os.read(0, 1)
"""


def flood_data(size: int) -> bytes:
    filler = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod " * 2
    out, n, i = [], 0, 0
    while n < size:
        i += 1
        s = f"\x1b[38;5;{16 + (i * 37) % 216}m  flood {i:07d} {filler[(i * 7) % 60 :][:80]}\x1b[0m\r\n"
        out.append(s)
        n += len(s)
    return "".join(out).encode()


def read_trace(path: Path) -> list[tuple[str, float]]:
    out = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            state, _, t = line.partition(" ")
            with contextlib.suppress(ValueError):
                out.append((state, float(t)))
    return out


def match_latencies(
    trace: list[tuple[str, float]],
    seen: list[tuple[str, float]],
    t_from: float = 0.0,
    t_to: float = float("inf"),
) -> tuple[list[float], int]:
    """For each traced state write in [t_from, t_to), the delay until `seen` first shows it."""
    lat, missed = [], 0
    for k, (state, t) in enumerate(trace):
        if not (t_from <= t < t_to):
            continue
        nxt = trace[k + 1][1] if k + 1 < len(trace) else float("inf")
        hit = next((s_t for s, s_t in seen if s == state and t <= s_t < nxt + 0.5), None)
        if hit is None:
            if nxt != float("inf"):
                missed += 1
            continue
        lat.append((hit - t) * 1000)
    return lat, missed


# -- the bare pty driver (the limit) ------------------------------------------------------------
class BarePty:
    """One child on a pty, read with select() in this thread; no emulator, no daemon."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.p = ptyprocess.PtyProcess.spawn(argv, env=env, dimensions=(40, 120))
        self.buf = bytearray()

    def read_until(self, pred: Callable[[bytes], bool], timeout: float = 10.0) -> float:
        """Read until `pred(buffer)`; returns the monotonic time of the read that made it true."""
        deadline = time.monotonic() + timeout
        while True:
            if pred(bytes(self.buf)):
                return time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("bare pty: condition not met")
            r, _, _ = select.select([self.p.fd], [], [], left)
            if r:
                data = os.read(self.p.fd, 65536)
                if b"\x1b[6n" in data:
                    os.write(self.p.fd, b"\x1b[1;1R")
                self.buf += data

    def write(self, data: bytes) -> None:
        os.write(self.p.fd, data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.p.terminate(force=True)


# -- the tmux baseline transport -----------------------------------------------------------------
class Tmux:
    """A private tmux server, driven the way the seed prototype did: send-keys, capture-pane
    polling, and a `.done` file polled every 100 ms."""

    def __init__(self, ctx: Context, name: str, history: int = 2000) -> None:
        self.dir = Path(ctx.tmp) / f"tmux-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = str(self.dir / "sock")
        self.n = 0
        self.history = history
        self.pid = 0

    def tmux(self, *args: str, check: bool = True) -> str:
        p = subprocess.run(
            ["tmux", "-S", self.sock, "-f", "/dev/null", *args], capture_output=True, text=True
        )
        if check and p.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def spawn(self, argv: list[str], env: dict[str, str]) -> str:
        flags = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
        cmd = " ".join(_shq(a) for a in argv)
        if self.n == 0:
            self.tmux("new-session", "-d", "-s", "b", "-x", "120", "-y", "40", *flags, cmd)
            self.tmux("set-option", "-g", "history-limit", str(self.history))
            self.tmux("set-option", "-g", "remain-on-exit", "on")
            self.pid = int(self.tmux("display-message", "-p", "#{pid}").strip())
        else:
            self.tmux("new-window", "-d", "-t", f"b:{self.n}", *flags, cmd)
        self.n += 1
        return f"b:{self.n - 1}"

    def capture(self, target: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", target)

    def send(self, target: str, text: str, enter: bool = True) -> None:
        self.tmux("send-keys", "-t", target, "-l", text)
        if enter:
            self.tmux("send-keys", "-t", target, "Enter")

    def close(self) -> None:
        self.tmux("kill-server", check=False)


def _shq(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def agent_env(ctx: Context, extra: dict[str, str] | None = None) -> dict[str, str]:
    home = Path(ctx.tmp) / "agent-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), TERM="xterm-256color", LANG="C.UTF-8")
    env.update(extra or {})
    return env


# -- (a) task round trip ---------------------------------------------------------------------------
def bench_a(ctx: Context) -> list[dict[str, Any]]:
    # The daemon and the bare driver take turns in blocks, so that drift in the machine's
    # load (a shared box) falls on both alike.
    blocks, per = ctx.n(5, 2), ctx.n(40, 12)
    ours: list[float] = []
    bare: list[float] = []
    drv = BarePty(fake_command(), agent_env(ctx, INSTANT))
    with ctx.daemon({"a": {"command": fake_command(), "profile": "fake", "env": INSTANT}}, "a") as d:
        d.wait_state("idle")
        drv.read_until(lambda b: b"for shortcuts" in b, 15)
        turn = 0
        try:
            with d.client() as c:
                for _ in range(blocks):
                    for i in range(per + 2):
                        t0 = time.perf_counter()
                        task = c.call("submit", to="a", text=f"ping {i}")
                        done = c.call("wait", task=task["id"], timeout=30)
                        dt = (time.perf_counter() - t0) * 1000
                        assert done["state"] == "done" and "FAKE-REPLY" in (done.get("answer") or ""), done
                        if i >= 2:  # the first turns of a block warm up caches
                            ours.append(dt)
                    for i in range(per + 2):
                        turn += 1
                        text = f"ping {turn}"
                        t0 = time.perf_counter()
                        drv.buf.clear()
                        drv.write(text.encode())
                        echo = text.encode()
                        drv.read_until(lambda b: echo in b)  # noqa: B023 (used before the next turn)
                        drv.buf.clear()
                        drv.write(b"\r")
                        want = f"#{turn}): {text}".encode()
                        drv.read_until(lambda b: want in b and b"for shortcuts" in b[b.rfind(want) :])  # noqa: B023
                        if i >= 2:
                            bare.append((time.perf_counter() - t0) * 1000)
        finally:
            drv.close()
    ctx.log(f"(a) daemon: {pcts(ours)}")
    ctx.log(f"(a) bare pty: {pcts(bare)}")

    tm: list[float] = []
    done_dir = Path(ctx.tmp) / "a-done"
    done_dir.mkdir(exist_ok=True)
    tx = Tmux(ctx, "a")
    try:
        target = tx.spawn(
            fake_command(), {**INSTANT, "FAKE_CLAUDE_DONE_DIR": str(done_dir), "HOME": agent_env(ctx)["HOME"]}
        )
        deadline = time.monotonic() + 15
        while "for shortcuts" not in tx.capture(target):
            if time.monotonic() > deadline:
                raise TimeoutError("tmux: fake agent did not start")
            time.sleep(0.1)
        for i in range(per + 2):
            t0 = time.perf_counter()
            tx.send(target, f"ping {i}")
            marker = done_dir / f"{i + 1}.done"
            while not marker.exists():
                time.sleep(0.1)
            screen = tx.capture(target)  # the prototype read the answer off the screen
            assert "FAKE-REPLY" in screen
            if i >= 2:
                tm.append((time.perf_counter() - t0) * 1000)
    finally:
        tx.close()
    ctx.log(f"(a) tmux: {pcts(tm)}")

    p_ours, p_bare, p_tm = pcts(ours), pcts(bare), pcts(tm)
    overhead = p_ours["p50"] - p_bare["p50"]
    rows = []
    for m in ("p50", "p95", "p99"):
        rows.append(
            row(
                "(a) task round trip",
                m,
                p_ours[m],
                "ms",
                baseline="tmux",
                baseline_value=p_tm[m],
                target="≥ 3× tmux" if m == "p50" else "",
                ok=(p_tm[m] / p_ours[m] >= 3) if m == "p50" else None,
            )
        )
    for m in ("p50", "p99"):
        rows.append(
            row(
                "(a) task round trip",
                m,
                p_ours[m],
                "ms",
                baseline="bare pty",
                baseline_value=p_bare[m],
                note="bare pty = the limit (same fake agent, 5 ms turn)",
            )
        )
    rows.append(
        row(
            "(a) task round trip",
            "daemon overhead p50",
            overhead,
            "ms",
            target="≤ 2 ms",
            ok=overhead <= 2.0,
            note="ours − bare pty at p50: what the daemon adds to the agent's own 5 ms turn",
        )
    )
    return rows


# -- (b) state change → event --------------------------------------------------------------------
def bench_b(ctx: Context) -> list[dict[str, Any]]:
    secs = ctx.scale(20, 8)
    working, idle = 0.3, 0.2
    trace = Path(ctx.tmp) / "b-trace"
    with ctx.daemon({"r": {"command": replay_cmd(trace, working, idle), "profile": "claude"}}, "b") as d:
        tap = EventTap(d)
        time.sleep(secs)
        tap.close()
    seen = [(ev["new"], t) for t, ev in tap.events if ev.get("type") == "state" and ev.get("agent") == "r"]
    tr = read_trace(trace)
    ours, missed = match_latencies(tr, seen, tr[1][1] if len(tr) > 1 else 0)
    ctx.log(f"(b) daemon: n={len(ours)} missed={missed} {pcts(ours)}")

    # bare pty: the first read that shows the footer of the new state
    trace2 = Path(ctx.tmp) / "b-trace-bare"
    drv = BarePty(replay_cmd(trace2, working, idle), agent_env(ctx))
    seen_bare: list[tuple[str, float]] = []
    try:
        end = time.monotonic() + secs
        while time.monotonic() < end:
            r, _, _ = select.select([drv.p.fd], [], [], 0.5)
            if not r:
                continue
            data = os.read(drv.p.fd, 65536)
            now = time.monotonic()
            if b"esc to " in data and b"interrupt" in data:
                seen_bare.append(("working", now))
            if b"for shortcuts" in data:
                seen_bare.append(("idle", now))
    finally:
        drv.close()
    bare, _ = match_latencies(read_trace(trace2), seen_bare)

    # tmux: capture-pane polled every 100 ms (ccmanager's interval)
    trace3 = Path(ctx.tmp) / "b-trace-tmux"
    tx = Tmux(ctx, "b")
    seen_tm: list[tuple[str, float]] = []
    try:
        target = tx.spawn(replay_cmd(trace3, working, idle), {"HOME": agent_env(ctx)["HOME"]})
        end = time.monotonic() + secs
        nxt = time.monotonic()
        while time.monotonic() < end:
            screen = tx.capture(target)
            now = time.monotonic()
            footer = screen.rstrip("\n").rsplit("\n", 1)[-1]
            seen_tm.append(("working" if "esc to interrupt" in footer else "idle", now))
            nxt += 0.1
            time.sleep(max(0.0, nxt - time.monotonic()))
    finally:
        tx.close()
    tm, _ = match_latencies(read_trace(trace3), seen_tm)
    ctx.log(f"(b) bare: {pcts(bare)} tmux: {pcts(tm)}")

    p, pb, pt = pcts(ours), pcts(bare), pcts(tm)
    rows = [
        row(
            "(b) state change → event",
            "p50",
            p["p50"],
            "ms",
            baseline="tmux (100 ms polling)",
            baseline_value=pt["p50"],
            target="≤ 5 ms",
            ok=p["p50"] <= 5,
            note=f"{len(ours)} transitions, {missed} missed; real Claude bytes",
        ),
        row(
            "(b) state change → event",
            "p95",
            p["p95"],
            "ms",
            baseline="tmux (100 ms polling)",
            baseline_value=pt["p95"],
        ),
        row(
            "(b) state change → event",
            "p99",
            p["p99"],
            "ms",
            baseline="tmux (100 ms polling)",
            baseline_value=pt["p99"],
            target="≤ 25 ms",
            ok=p["p99"] <= 25,
        ),
        row(
            "(b) state change → event",
            "p50",
            p["p50"],
            "ms",
            baseline="bare pty",
            baseline_value=pb["p50"],
            note="bare = first pty read showing the new footer (no emulator, no client)",
        ),
        row("(b) state change → event", "p99", p["p99"], "ms", baseline="bare pty", baseline_value=pb["p99"]),
    ]
    return rows


# -- (c) emulator throughput ----------------------------------------------------------------------
def _feed_rate(backend: str, data: bytes, reps: int, chunk: int = 65536) -> float:
    from supervisor.screen.emulator import Terminal

    dec = codecs.getincrementaldecoder("utf-8")("replace")
    text_chunks = [dec.decode(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    term = Terminal(120, 40, backend=backend)
    t0 = time.process_time()
    for _ in range(reps):
        for c in text_chunks:
            term.feed(c)
        term.lines()
    return len(data) * reps / (time.process_time() - t0) / 1e6


def bench_c(ctx: Context) -> list[dict[str, Any]]:
    from supervisor.screen.emulator import available_backends

    flood = flood_data(int(ctx.scale(8e6, 2e6)))
    raw = (CAPTURES / "full_session.raw").read_bytes()
    idx = json.loads((CAPTURES / "index.json").read_text())
    seg = raw[idx["b_working"] : idx["c_done"]]
    real_rate = len(seg) / 6.0  # the mock held that turn for 6 s (claude-screens README)
    stream_rate = 1200.0  # B/s while a reply streams (issue #6, from the same captures)
    rows: list[dict[str, Any]] = []

    # tmux: its server's CPU while `cat` pushes the flood through a pane
    fpath = Path(ctx.tmp) / "flood.bin"
    fpath.write_bytes(flood)
    tx = Tmux(ctx, "c")
    try:
        tx.spawn(["sh", "-c", "sleep 0.5; exec sleep 100000"], {})
        c0 = cpu_seconds(tx.pid)
        t0 = time.monotonic()
        tx.spawn(["sh", "-c", f"cat {_shq(str(fpath))}; tmux -S {_shq(tx.sock)} wait-for -S cdone"], {})
        tx.tmux("wait-for", "cdone")
        tmux_wall = time.monotonic() - t0
        tmux_cpu = cpu_seconds(tx.pid) - c0
    finally:
        tx.close()
    tmux_rate = len(flood) / max(tmux_cpu, 1e-3) / 1e6
    ctx.log(f"(c) tmux: {tmux_rate:.1f} MB/s per core ({tmux_wall:.2f} s wall)")

    # bare pty: how fast the bytes come out of a pty at all (the limit)
    drv = BarePty(["cat", str(fpath)], agent_env(ctx))
    t0 = time.monotonic()
    total = 0
    with contextlib.suppress(OSError):
        while True:
            data = os.read(drv.p.fd, 65536)
            if not data:
                break
            total += len(data)
    bare_rate = total / (time.monotonic() - t0) / 1e6
    drv.close()
    ctx.log(f"(c) bare pty read: {bare_rate:.1f} MB/s")

    for backend in available_backends():
        data = flood if backend == "ghostty" else flood[: int(ctx.scale(600e3, 200e3))]
        rate = _feed_rate(backend, data, 1)
        cap = _feed_rate(backend, raw, ctx.n(40, 10) if backend == "ghostty" else ctx.n(4, 2), chunk=4096)
        is_default = backend == available_backends()[0]
        rows.append(
            row(
                "(c) emulator: coloured flood",
                f"{backend} MB/s per core",
                rate,
                "MB/s",
                baseline="tmux",
                baseline_value=tmux_rate,
                lower_is_better=False,
                target="≥ 20 MB/s and ≥ tmux" if is_default else "",
                ok=(rate >= 20 and rate >= tmux_rate) if is_default else None,
                note="default backend" if is_default else "fallback",
            )
        )
        rows.append(
            row(
                "(c) emulator: coloured flood",
                f"{backend} vs pty read",
                rate,
                "MB/s",
                baseline="bare pty read",
                baseline_value=bare_rate,
                lower_is_better=False,
            )
        )
        rows.append(
            row(
                "(c) emulator: Claude capture replay",
                f"{backend} × real time",
                cap * 1e6 / stream_rate,
                "×",
                target="≥ 100×" if is_default else "",
                ok=(cap * 1e6 / stream_rate >= 100) if is_default else None,
                note=f"{cap:.1f} MB/s; real time = 1.2 KB/s streaming "
                f"(the captures' thinking rate is {real_rate / 1000:.2f} KB/s)",
            )
        )
    return rows


# -- (d) idle cost ---------------------------------------------------------------------------------
def bench_d(ctx: Context) -> list[dict[str, Any]]:
    n = 32
    window = ctx.scale(30, 10)
    agents = {f"i{k:02d}": {"command": fake_command(), "profile": "fake"} for k in range(n)}
    with ctx.daemon(agents, "d") as d:
        d.wait_state("idle", timeout=120)
        time.sleep(2)
        c0 = d.cpu()
        time.sleep(window)
        ours = (d.cpu() - c0) / window * 100
    ctx.log(f"(d) daemon: {ours:.2f} % of a core")

    tx = Tmux(ctx, "d")
    try:
        env = {"HOME": agent_env(ctx)["HOME"]}
        targets = [tx.spawn(fake_command(), env) for _ in range(n)]
        time.sleep(8)  # let every fake draw its prompt
        c0 = cpu_seconds(tx.pid)
        time.sleep(window)
        server_only = (cpu_seconds(tx.pid) - c0) / window * 100
        # the same server plus a watcher polling every pane every 500 ms (claude-squad)
        c0 = cpu_seconds(tx.pid)
        ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        end = time.monotonic() + window
        nxt = time.monotonic()
        while time.monotonic() < end:
            for t in targets:
                tx.capture(t)
            nxt += 0.5
            time.sleep(max(0.0, nxt - time.monotonic()))
        ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        polled = (
            (cpu_seconds(tx.pid) - c0 + (ch1.ru_utime + ch1.ru_stime - ch0.ru_utime - ch0.ru_stime))
            / window
            * 100
        )
    finally:
        tx.close()
    ctx.log(f"(d) tmux server: {server_only:.2f} %, with 500 ms polling: {polled:.2f} %")
    return [
        row(
            "(d) idle cost, 32 agents",
            "daemon CPU",
            ours,
            "% core",
            baseline="tmux + 500 ms capture-pane polling",
            baseline_value=polled,
            target="< 1 %",
            ok=ours < 1.0,
            note=f"over {window:.0f} s",
        ),
        row(
            "(d) idle cost, 32 agents",
            "daemon CPU",
            ours,
            "% core",
            baseline="tmux server alone (no watcher)",
            baseline_value=server_only,
        ),
    ]


# -- (e) busy scale --------------------------------------------------------------------------------
def bench_e(ctx: Context) -> list[dict[str, Any]]:
    n = 64
    window = ctx.scale(20, 8)
    rate, fps, working, idle = 1200.0, 8.0, 2.0, 0.5
    tdir = Path(ctx.tmp) / "e-traces"
    tdir.mkdir(exist_ok=True)
    agents = {
        f"s{k:02d}": {
            "command": replay_cmd(tdir / f"s{k:02d}", working, idle, rate, fps),
            "profile": "claude",
        }
        for k in range(n)
    }
    with ctx.daemon(agents, "e") as d:
        tap = EventTap(d)
        time.sleep(4)  # every agent up and cycling
        t_from = time.monotonic()
        c0 = d.cpu()
        time.sleep(window)
        cpu = (d.cpu() - c0) / window * 100
        t_to = time.monotonic()
        time.sleep(0.5)
        tap.close()
    lat: list[float] = []
    missed = 0
    for name in agents:
        seen = [
            (ev["new"], t) for t, ev in tap.events if ev.get("type") == "state" and ev.get("agent") == name
        ]
        got, m = match_latencies(read_trace(tdir / name), seen, t_from, t_to)
        lat += got
        missed += m
    p = pcts(lat)
    ctx.log(f"(e) daemon CPU {cpu:.1f} %, detection {p}, n={len(lat)} missed={missed}")

    tx = Tmux(ctx, "e")
    try:
        for k in range(n):
            tx.spawn(replay_cmd(Path(ctx.tmp) / f"e-tmux-{k}", working, idle, rate, fps), {})
        time.sleep(4)
        c0 = cpu_seconds(tx.pid)
        time.sleep(window)
        tmux_cpu = (cpu_seconds(tx.pid) - c0) / window * 100
    finally:
        tx.close()
    ctx.log(f"(e) tmux server CPU {tmux_cpu:.1f} %")
    note = (
        f"{n} agents replaying real Claude frames, {fps:.0f} frames/s, {rate / 1000:.1f} KB/s each, "
        f"{working:.0f} s working / {idle} s idle"
    )
    return [
        row(
            "(e) busy scale, 64 streaming",
            "daemon CPU",
            cpu,
            "% core",
            baseline="tmux server (no detection)",
            baseline_value=tmux_cpu,
            target="≤ 100 % (1 core)",
            ok=cpu <= 100,
            note=note,
        ),
        row("(e) busy scale, 64 streaming", "detection p50", p["p50"], "ms"),
        row(
            "(e) busy scale, 64 streaming",
            "detection p99",
            p["p99"],
            "ms",
            target="≤ 50 ms",
            ok=p["p99"] <= 50,
            note=f"{len(lat)} transitions, {missed} missed",
        ),
    ]


# -- (f) memory per agent ----------------------------------------------------------------------------
def bench_f(ctx: Context) -> list[dict[str, Any]]:
    lines = 10000
    few, many = ctx.n(4, 2), ctx.n(16, 6)
    cmd = [sys.executable, "-c", SCROLL_PY, str(lines)]

    def daemon_rss(k: int) -> int:
        agents = {f"m{i:02d}": {"command": cmd, "profile": "shell"} for i in range(k)}
        with ctx.daemon(agents, f"f{k}") as d:
            d.wait_state("idle", timeout=120)
            time.sleep(1)
            with d.client() as c:
                logs = c.call("logs", agent="m00")["lines"]
            assert len(logs) >= lines, len(logs)
            return d.rss()

    r1, r2 = daemon_rss(few), daemon_rss(many)
    ours = (r2 - r1) / (many - few) / 1e6

    def tmux_rss(k: int) -> int:
        tx = Tmux(ctx, f"f{k}", history=lines)
        try:
            for _ in range(k):
                tx.spawn(cmd, {})
            time.sleep(3 + k * 0.2)
            return rss_bytes(tx.pid)
        finally:
            tx.close()

    t1, t2 = tmux_rss(few), tmux_rss(many)
    tm = (t2 - t1) / (many - few) / 1e6
    ctx.log(f"(f) daemon {ours:.2f} MB/agent, tmux {tm:.2f} MB/pane")
    return [
        row(
            "(f) memory per agent",
            "RSS delta",
            ours,
            "MB",
            baseline="tmux (history-limit 10000)",
            baseline_value=tm,
            target="≤ 5 MB",
            ok=ours <= 5,
            note=f"{lines} lines of scrollback each; daemon RSS at {few} vs {many} agents",
        )
    ]


# -- (g) fairness under a flood ------------------------------------------------------------------------
def _flood_cmd(path: Path, tail: str = "") -> list[str]:
    """Waits for Enter, cats `path` (the flood), then shows a shell prompt."""
    return ["sh", "-c", f"read x; cat {_shq(str(path))}; {tail}printf 'done\\r\\n$ '; read y"]


def _daemon_flood(ctx: Context, fpath: Path, size: int, backend: str) -> dict[str, Any]:
    """One flood through a daemon beside 4 Claude-replay agents: status and detection latency."""
    others = 4
    tdir = Path(ctx.tmp) / f"g-traces-{backend}"
    tdir.mkdir(exist_ok=True)
    agents: dict[str, dict[str, Any]] = {"flood": {"command": _flood_cmd(fpath), "profile": "shell"}}
    for k in range(others):
        agents[f"o{k}"] = {"command": replay_cmd(tdir / f"o{k}", 0.3, 0.2), "profile": "claude"}
    status_ms: list[float] = []
    with ctx.daemon(agents, f"g-{backend}", env={"STAFF_EMULATOR": backend}) as d:
        tap = EventTap(d)
        time.sleep(2)
        with d.client() as c:
            c0 = d.cpu()
            t_from = time.monotonic()
            c.call("send", agent="flood", keys="\r")
            done = threading.Event()

            def watch() -> None:
                while not done.is_set():
                    if any(
                        ev.get("agent") == "flood" and ev.get("new") == "idle" and t > t_from
                        for t, ev in list(tap.events)
                    ):
                        done.set()
                    time.sleep(0.01)

            w = threading.Thread(target=watch, daemon=True)
            w.start()
            deadline = time.monotonic() + 300
            while not done.is_set() and time.monotonic() < deadline:
                t0 = time.perf_counter()
                c.call("status")
                status_ms.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.02)
            t_to = time.monotonic()
            done.set()
            cpu = d.cpu() - c0
        time.sleep(0.5)
        tap.close()
    lat: list[float] = []
    for k in range(others):
        name = f"o{k}"
        seen = [
            (ev["new"], t) for t, ev in tap.events if ev.get("type") == "state" and ev.get("agent") == name
        ]
        got, _ = match_latencies(read_trace(tdir / name), seen, t_from, t_to)
        lat += got
    out = {
        "secs": t_to - t_from,
        "status": pcts(status_ms),
        "others": pcts(lat),
        "n_others": len(lat),
        "n_status": len(status_ms),
        "cpu": cpu,
    }
    ctx.log(
        f"(g) {backend}: {size / 1e6:.0f} MB in {out['secs']:.2f} s, status {out['status']}, "
        f"others {out['others']} (n={len(lat)})"
    )
    return out


def bench_g(ctx: Context) -> list[dict[str, Any]]:
    from supervisor.screen.emulator import available_backends

    size = int(ctx.scale(10e6, 4e6))
    fpath = Path(ctx.tmp) / "g-flood.bin"
    fpath.write_bytes(flood_data(size))
    runs = {b: _daemon_flood(ctx, fpath, size, b) for b in available_backends()}

    # tmux: the same flood in a pane, triggered the same way; `list-panes` as its status request
    tx = Tmux(ctx, "g")
    tm_status: list[float] = []
    try:
        target = tx.spawn(_flood_cmd(fpath, f"tmux -S {_shq(tx.sock)} wait-for -S gdone; "), {})
        time.sleep(0.5)
        waiter = subprocess.Popen(["tmux", "-S", tx.sock, "wait-for", "gdone"])
        t0 = time.monotonic()
        tx.tmux("send-keys", "-t", target, "Enter")
        while waiter.poll() is None:
            s0 = time.perf_counter()
            tx.tmux("list-panes", "-a")
            tm_status.append((time.perf_counter() - s0) * 1000)
            time.sleep(0.02)
        tmux_s = time.monotonic() - t0
    finally:
        tx.close()
    pt = pcts(tm_status)
    ctx.log(f"(g) tmux flood {tmux_s:.2f} s, list-panes {pt}")
    rows: list[dict[str, Any]] = []
    for backend, r in runs.items():
        default = backend == available_backends()[0]
        bench = "(g) fairness: 10 MB flood" + ("" if default else f" ({backend} fallback)")
        ps, pl = r["status"], r["others"]
        rows += [
            row(
                bench,
                "status p50",
                ps["p50"],
                "ms",
                baseline="tmux list-panes",
                baseline_value=pt["p50"],
                note=f"{size / 1e6:.0f} MB of coloured lines (`cat` in a shell-profile agent), "
                f"4 Claude-replay agents beside it; {r['n_status']} requests",
            ),
            row(
                bench,
                "status p99",
                ps["p99"],
                "ms",
                baseline="tmux list-panes",
                baseline_value=pt["p99"],
                target="≤ 50 ms",
                ok=ps["p99"] <= 50,
            ),
            row(
                bench,
                "other agents' detection p99",
                pl["p99"],
                "ms",
                target="≤ 50 ms",
                ok=pl["p99"] <= 50,
                note=f"{r['n_others']} transitions during the flood",
            ),
            row(
                bench,
                "flood end to end",
                size / r["secs"] / 1e6,
                "MB/s",
                baseline="tmux",
                baseline_value=size / tmux_s / 1e6,
                lower_is_better=False,
                note=f"daemon CPU {r['cpu']:.1f} s for the flood: pty → emulator → detection",
            ),
        ]
    return rows


BENCHES: dict[str, Callable[[Context], list[dict[str, Any]]]] = {
    "a": bench_a,
    "b": bench_b,
    "c": bench_c,
    "d": bench_d,
    "e": bench_e,
    "f": bench_f,
    "g": bench_g,
}


NOTES = [
    "Core (a)–(g), issue #6. Emulator: libghostty-vt (Ghostty's terminal core, MIT) through "
    "`pyghostty` 0.1.3 (Apache-2.0; cffi ABI mode, so one wheel per platform serves every Python: "
    "Linux x86_64/aarch64 glibc ≥ 2.28, macOS 13+; no musl or Windows wheel, where pyte 0.8.2 "
    "stays the fallback, `STAFF_EMULATOR=pyte`). Judged too: `pyavt` 0.1.2 (asciinema's avt, "
    "Apache-2.0, wheels everywhere, ~50 MB/s) has no title, mode state or query answers and "
    "drew none of the golden captures like the reference. Both Ghostty and pyte pass the golden "
    "captures (tests/unit/test_emulator_backends.py).",
    "Claude's redraw rate, measured from tests/data/claude-2.1.330: from `b_working` to `c_done` "
    "(the mock held that turn 6 s) Claude wrote 1 391 B in 24 spinner frames of ~40 B: "
    "0.23 KB/s at 4 frames/s, differential redraws only. (e) runs each agent at 8 frames/s padded "
    "to 1.2 KB/s (the streaming figure of the issue), i.e. 5× the thinking rate, cycling "
    "2 s working / 0.5 s idle with the real bytes (benchmarks/claude_replay.py).",
    "(a) where the daemon's time goes (timestamps inside the daemon, per task, fake agent with a "
    "5 ms turn; the daemon and the bare driver take turns in blocks of 40 tasks): the submit "
    "request with its fsync'd journal row ≈ 1 ms (the client's round trip included), starting the "
    "delivery ≈ 0.4 ms, each of the agent's three screen updates (echo, working, idle) fed, "
    "detected and acted on ≈ 0.3–0.5 ms, the answer's fsync'd commit plus the urgent status file "
    "≈ 1 ms, the second request (wait) ≈ 0.2 ms. The two fsyncs are ≈ 0.4 ms of it (synchronous="
    "NORMAL throughout measured 0.4 ms less). The rest is Python on the event loop and the extra "
    "process hop each way (client ↔ daemon) that the bare driver does not have; ≤ 2 ms would "
    "mean giving up the durable submit and answer or the up-to-date status file, which we keep. "
    "Done this session: status-file writes coalesced per loop turn, task events without a deep "
    "copy; found and fixed: an inotify instance closed per answer (a kernel grace period, "
    "10–24 ms on half the tasks).",
    "(g): a burst is fed to the emulator one bounded slice per event-loop turn (256 KiB with "
    "Ghostty, 2 KiB with pyte) with the pty read paused meanwhile, so the child blocks instead "
    "of the loop (tests/unit/test_flood_fairness.py). With Ghostty a 64 KiB read costs ~1–2 ms.",
]


def run(ctx: Context) -> list[dict[str, Any]]:
    ctx.notes.extend(NOTES)
    if not shutil.which("tmux"):
        ctx.notes.append("tmux is not installed: the tmux baselines were skipped (apt-get install tmux)")
    rows: list[dict[str, Any]] = []
    for key, fn in BENCHES.items():
        if ctx.only and key not in ctx.only:
            continue
        t0 = time.monotonic()
        try:
            rows += fn(ctx)
        except Exception as exc:  # one broken benchmark must not lose the others
            import traceback

            traceback.print_exc()
            rows.append(
                row(f"({key})", "error", float("nan"), "", ok=False, note=f"{type(exc).__name__}: {exc}")
            )
        ctx.log(f"({key}) took {time.monotonic() - t0:.0f} s")
    return rows
