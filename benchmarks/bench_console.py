"""The console (issue #3): its CPU with 16 busy agents streaming, and keystroke-to-echo
latency through console → daemon → agent → console beside the same echo through
`tmux attach`, in the same run.

- CPU: a daemon with 16 fake agents, each streaming an answer for the whole window
  (``[stream=S]``: the spinner, the growing reply); `staff console` runs under a pty of
  160x50 whose output is drained; its CPU time (/proc) over the window, once with one
  agent shown and once with a 4-pane split. Target ≤ 50 % of a core.
- Echo: a key is typed into the console's pty (focused on an idle fake agent) and the time
  until the console has drawn it in the agent's input box is measured (the output read
  through pyte, as a person's terminal would show it); then a Backspace, the same. The
  baseline: the same fake agent in a tmux session, the key typed into a `tmux attach`
  client's pty, measured the same way. Twice: a team of one, and a team of 16 whose 15
  other agents stream an answer meanwhile (in tmux: 15 more windows streaming). Target:
  within 2× tmux at p50.

Runs under the harness (`python -m benchmarks --only console`) or alone
(`python -m benchmarks.bench_console [--quick]`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import ptyprocess

from benchmarks.harness import REPO, Context, cpu_seconds, fake_command, pcts, row
from supervisor.screen.emulator import Screen

ROWS, COLS = 50, 160


class PtyReader:
    """A program under a pty; its output read on a thread into a pyte screen."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, render: bool = True) -> None:
        self.proc = ptyprocess.PtyProcess.spawn(argv, env=env, cwd=str(cwd), dimensions=(ROWS, COLS))
        self.screen = Screen(COLS, ROWS)
        self.screen.reply = lambda s: self.proc.write(s.encode())
        self.render = render
        self.cond = threading.Condition()
        self.bytes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.proc.read(65536)
            except EOFError:
                break
            with self.cond:
                self.bytes += len(data)
                if self.render:
                    self.screen.feed(data.decode("utf-8", "replace"))
                self.cond.notify_all()

    def wait(self, pred: Any, timeout: float = 30) -> bool:
        with self.cond:
            return bool(self.cond.wait_for(pred, timeout))

    def line_with(self, needle: str) -> str:
        return next((ln for ln in self.screen.text_lines() if needle in ln), "")

    def close(self) -> None:
        if self.proc.isalive():
            self.proc.terminate(force=True)


def echo_latency(term: PtyReader, n: int, prompt: str = "❯") -> list[float]:
    """Type a key, wait until the prompt line shows it; Backspace, wait until it is gone."""
    out: list[float] = []
    typed = ""
    for i in range(n):
        ch = "abcdefghij"[i % 10]
        want = typed + ch
        t0 = time.perf_counter()
        term.proc.write(ch.encode())
        ok = term.wait(lambda w=want: term.line_with(prompt).rstrip().endswith(prompt + "\xa0" + w)
                       or term.line_with(prompt).rstrip().endswith(prompt + " " + w), 10)
        if not ok:
            raise TimeoutError(f"no echo of {want!r}: {term.line_with(prompt)!r}")
        out.append((time.perf_counter() - t0) * 1000)
        typed = want
        if len(typed) >= 20:  # clear it again, measuring each Backspace too
            while typed:
                t0 = time.perf_counter()
                term.proc.write(b"\x7f")
                typed = typed[:-1]
                ok = term.wait(lambda w=typed: term.line_with(prompt).rstrip().endswith(
                    (prompt + "\xa0" + w) if w else prompt) or term.line_with(prompt).rstrip().endswith(
                    (prompt + " " + w) if w else prompt), 10)
                if not ok:
                    raise TimeoutError("no echo of Backspace")
                out.append((time.perf_counter() - t0) * 1000)
    return out


def _console(d: Any, *args: str) -> PtyReader:
    env = dict(d.env, TERM="xterm-256color")
    return PtyReader([sys.executable, "-m", "supervisor", "console", *args], env, d.dir)


def bench_cpu(ctx: Context) -> list[dict[str, Any]]:
    n_agents = 16
    window = ctx.scale(10.0, 4.0)
    agents = {f"a{i:02d}": {"command": fake_command(), "profile": "fake"} for i in range(n_agents)}
    with ctx.daemon(agents, "console-cpu") as d:
        d.wait_state("idle", 60)
        return [_cpu(ctx, d, list(agents), layout, window) for layout in ("1 pane", "4-pane split")]


def _cpu(ctx: Context, d: Any, names: list[str], layout: str, window: float) -> dict[str, Any]:
    con = _console(d, names[0])

    def shown() -> str:
        return "\n".join(con.screen.text_lines())

    try:
        con.wait(lambda: names[-1] in shown() and "❯" in shown(), 30)
        if layout == "4-pane split":
            con.proc.write(b"\x02s\x02s\x02s")
            con.wait(lambda: shown().count("❯") >= 4, 20)
        con.render = False  # from here only drain: the measuring side must not compete
        with d.client() as c:
            ids = [c.call("submit", to=name, text=f"bench [stream={window + 6:.0f}]")["id"] for name in names]
        d.wait_state("working", 30)
        pid = con.proc.pid
        c0, b0, t0, dcpu0 = cpu_seconds(pid), con.bytes, time.monotonic(), d.cpu()
        time.sleep(window)  # the measurement window (a benchmark, not a test)
        c1, b1, t1, dcpu1 = cpu_seconds(pid), con.bytes, time.monotonic(), d.cpu()
        share = (c1 - c0) / (t1 - t0) * 100
        rate = (b1 - b0) / (t1 - t0) / 1024
        daemon_share = (dcpu1 - dcpu0) / (t1 - t0) * 100
        ctx.log(f"console CPU {layout}: {share:.1f}% ({rate:.0f} KiB/s drawn); daemon {daemon_share:.1f}%")
        with d.client() as c:
            for tid in ids:
                c.call("cancel", task=tid)
        d.wait_state("idle", 60)
        return row("console: CPU, 16 agents streaming", layout, share, "% of a core", target="≤ 50 %",
                   ok=share <= 50,
                   note=f"{rate:.0f} KiB/s to the terminal; the daemon {daemon_share:.0f}% meanwhile")
    finally:
        con.proc.write(b"\x02d")
        con.wait(lambda: not con.proc.isalive(), 10)
        con.close()


def bench_echo(ctx: Context) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for team in (1, 16):
        rows += _echo(ctx, team)
    return rows


def _echo(ctx: Context, team: int) -> list[dict[str, Any]]:
    """Echo in the focused agent `e` (idle) while the team's other `team - 1` agents stream an
    answer each; tmux: the same fakes in windows of one session, the others streaming too."""
    n = ctx.n(200, 40)
    stream = f"bench [stream={ctx.scale(120, 40):.0f}]"
    others = [f"s{i:02d}" for i in range(team - 1)]
    agents = {name: {"command": fake_command(), "profile": "fake"} for name in ("e", *others)}
    what = "1 agent" if team == 1 else f"{team} agents, {team - 1} streaming"
    ours: list[float] = []
    with ctx.daemon(agents, f"console-echo-{team}") as d:
        d.wait_state("idle", 60)
        ids = []
        if others:
            with d.client() as c:
                ids = [c.call("submit", to=name, text=stream)["id"] for name in others]
            d.wait_state("working", 30, names=others)
        con = _console(d, "e")
        try:
            con.wait(lambda: "manual mode on" in "\n".join(con.screen.text_lines()), 30)
            ours = echo_latency(con, n)
        finally:
            con.proc.write(b"\x02d")
            con.close()
            with d.client() as c:
                for tid in ids:
                    c.call("cancel", task=tid)
    ctx.log(f"console echo, {what}: {pcts(ours)}")
    base: list[float] = []
    note = ""
    if shutil.which("tmux"):
        sock = str(Path(ctx.tmp) / f"tmux-console-{team}.sock")
        env = dict(os.environ, TERM="xterm-256color", HOME=str(ctx.tmp))
        cmd = " ".join(fake_command())
        tm = ["tmux", "-S", sock, "-f", "/dev/null"]
        subprocess.run([*tm, "new-session", "-d", "-s", "b", "-x", str(COLS), "-y", str(ROWS), cmd],
                       check=True, env=env)
        try:
            for i, _name in enumerate(others, 1):
                subprocess.run([*tm, "new-window", "-d", "-t", f"b:{i}", cmd], check=True, env=env)
            for i, _name in enumerate(others, 1):  # typed once each fake shows its prompt
                for _ in range(100):
                    shown = subprocess.run([*tm, "capture-pane", "-p", "-t", f"b:{i}"], env=env,
                                           capture_output=True, text=True).stdout
                    if "manual mode on" in shown:
                        break
                    time.sleep(0.1)  # polling tmux: it has no event to wait on
                subprocess.run([*tm, "send-keys", "-t", f"b:{i}", "-l", stream], check=True, env=env)
                subprocess.run([*tm, "send-keys", "-t", f"b:{i}", "Enter"], check=True, env=env)
            att = PtyReader([*tm, "attach", "-t", "b:0"], env, Path(ctx.tmp))
            try:
                att.wait(lambda: "manual mode on" in "\n".join(att.screen.text_lines()), 30)
                base = echo_latency(att, n)
            finally:
                att.close()
        finally:
            subprocess.run([*tm, "kill-server"], env=env, check=False)
        ctx.log(f"tmux attach echo, {what}: {pcts(base)}")
    else:
        note = "tmux is not installed: no baseline"
    bp = pcts(base) if base else {}
    rows = []
    for m, v in pcts(ours).items():
        b = bp.get(m)
        target = "≤ 2× tmux" if m == "p50" else ""
        rows.append(row(f"console: keystroke → echo, {what}", m, v, "ms", baseline="tmux attach",
                        baseline_value=b, target=target,
                        ok=(b is not None and v <= 2 * b) if m == "p50" else None,
                        note=note or "160x50, the focused agent idle"))
    return rows


def run(ctx: Context) -> list[dict[str, Any]]:
    return bench_cpu(ctx) + bench_echo(ctx)


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_console")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    ctx = Context(quick=args.quick)
    for r in run(ctx):
        base = f"  (baseline {r['baseline']}: {r['baseline_value']:.2f})" if r["baseline_value"] else ""
        print(f"{r['bench']:<38} {r['metric']:<14} {r['value']:8.2f} {r['unit']}{base}  {r['note']}")
    return 0


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    sys.exit(main())
