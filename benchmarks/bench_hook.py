"""(h) The editor hook's whole-process wall time for one delegation (issue #7, item 6).

What the person waits for after Ctrl-G on ``@planning …`` with an idle, instant-reply fake
agent: ``staff-hook FILE`` from exec to exit (Python start, parse, submit, wait, write the
answer), p50/p95 over ≥ 30 runs, beside the same delegation done the seed's way
(``benchmarks/seed_hook.py``: tmux ``send-keys``, a ``.done`` file polled every 100 ms,
``capture-pane``), the two interleaved run by run on the same machine.

    python -m benchmarks.bench_hook [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, Context, fake_command, pcts, row

INSTANT = {"FAKE_CLAUDE_MIN_TURN": "0.005"}
"""The fake's working frame lasts 5 ms: an instant-reply agent (as in bench_core)."""
HOOK = str(Path(sys.executable).with_name("staff-hook"))
SEED = str(REPO / "benchmarks" / "seed_hook.py")


def _tmux(sock: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-S", sock, "-f", "/dev/null", *args], capture_output=True, text=True, check=True
    ).stdout


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, check=True, timeout=60)
    return (time.perf_counter() - t0) * 1000


def run(ctx: Context) -> list[dict[str, Any]]:
    if ctx.only and "h" not in ctx.only:  # `--only a b …` named other benches
        return []
    n = max(30, ctx.n(40, 30))
    work = Path(ctx.tmp) / "hook"
    prompts = work / "claude-1000"
    prompts.mkdir(parents=True, exist_ok=True)
    agent_home = work / "agent-home"
    agent_home.mkdir(exist_ok=True)

    # the seed's way: the same fake agent in a private tmux server
    sock = str(work / "tmux.sock")
    done_dir = work / "done"
    done_dir.mkdir(exist_ok=True)
    agent_env = {
        **INSTANT,
        "FAKE_CLAUDE_DONE_DIR": str(done_dir),
        "HOME": str(agent_home),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
    }
    flags = [x for k, v in agent_env.items() for x in ("-e", f"{k}={v}")]
    cmd = " ".join("'" + a.replace("'", "'\\''") + "'" for a in fake_command())
    _tmux(sock, "new-session", "-d", "-s", "b", "-x", "120", "-y", "40", *flags, cmd)
    seed_env = dict(os.environ, SEED_TMUX_SOCK=sock, SEED_TARGET="b:0", SEED_DONE_DIR=str(done_dir))

    ours: list[float] = []
    seed: list[float] = []
    try:
        deadline = time.monotonic() + 20
        while "for shortcuts" not in _tmux(sock, "capture-pane", "-p", "-t", "b:0"):
            if time.monotonic() > deadline:
                raise TimeoutError("tmux: the fake agent did not start")
            time.sleep(0.1)
        with ctx.daemon(
            {"planning": {"command": fake_command(), "profile": "fake", "env": INSTANT}}, "h"
        ) as d:
            d.wait_state("idle")
            env = dict(d.env, STAFF_HOOK_PICKER="0")
            for i in range(n + 2):  # the first two warm the caches, on both sides
                mine = prompts / f"claude-prompt-ours-{i}.md"
                mine.write_text(f"@planning ping {i}")
                dt = _timed([HOOK, str(mine)], env, work)
                out = mine.read_text()
                assert f"FAKE-REPLY(planning#{i + 1}): ping {i}" in out and "<staff-answer" in out, out
                theirs = prompts / f"claude-prompt-seed-{i}.md"
                theirs.write_text(f"@planning ping {i}")
                ds = _timed([sys.executable, SEED, str(theirs)], seed_env, work)
                assert f"FAKE-REPLY(fake#{i + 1}): ping {i}" in theirs.read_text(), theirs.read_text()
                if i >= 2:
                    ours.append(dt)
                    seed.append(ds)
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)

    floor = [_timed([sys.executable, "-c", "pass"], dict(os.environ), work) for _ in range(10)]
    p_ours, p_seed = pcts(ours), pcts(seed)
    ctx.log(f"(h) staff-hook: {p_ours}; the seed's way: {p_seed}")
    ctx.notes.append(
        f"(h) staff-hook FILE, whole process, {len(ours)} runs interleaved with the seed's way; "
        f"a bare `python -c pass` starts in {pcts(floor)['p50']:.0f} ms here (the floor of both)."
    )
    rows = []
    for m in ("p50", "p95"):
        rows.append(
            row(
                "(h) Ctrl-G hook: one delegation, whole process",
                m,
                p_ours[m],
                "ms",
                baseline="seed: tmux send-keys + .done polled 100 ms + capture-pane",
                baseline_value=p_seed[m],
                target="≤ 150 ms and faster than the seed" if m == "p50" else "",
                ok=(p_ours[m] <= 150 and p_seed[m] > p_ours[m]) if m == "p50" else None,
                note=f"n={len(ours)}",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    ctx = Context(quick="--quick" in args)
    for r in run(ctx):
        base = f"{r['baseline_value']:.1f}" if r["baseline_value"] is not None else "-"
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] else "-"
        print(
            f"{r['bench']}  {r['metric']}: {r['value']:.1f} {r['unit']}  seed {base}  ratio {ratio}  "
            f"{r['target']} {'' if r['ok'] is None else ('ok' if r['ok'] else 'MISSED')}"
        )
    for note in ctx.notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
