"""`make bench`: run every benchmarks/bench_*.py side by side with its baseline, write
docs/benchmarks.md (machine, versions, p50/p95/p99, ratios) and print a summary.

    python -m benchmarks [--quick] [--only NAME ...] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from .harness import REPO, Context


def machine() -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    tmux = "absent"
    if shutil.which("tmux"):
        tmux = subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()

    def ver(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "absent"

    from supervisor.screen.emulator import default_backend

    return [
        f"- machine: {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem} RAM, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; pyte {ver('pyte')}, pyghostty {ver('pyghostty')}, "
        f"ptyprocess {ver('ptyprocess')}; {tmux}",
        f"- emulator backend in the daemon: {default_backend()}",
    ]


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if abs(v) >= 100:
            s = f"{v:.0f}"
        elif abs(v) >= 10:
            s = f"{v:.1f}"
        else:
            s = f"{v:.2f}"
    else:
        s = str(v)
    return f"{s} {unit}".strip()


def table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| benchmark | metric | ours | baseline | baseline value | ratio | target | met | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = r.get("ok")
        met = "✅" if ok is True else ("❌" if ok is False else "")
        ratio = r.get("ratio")
        out.append(
            "| {bench} | {metric} | {value} | {baseline} | {bv} | {ratio} | {target} | {met} | {note} |".format(  # noqa: E501
                bench=r.get("bench", ""),
                metric=r.get("metric", ""),
                value=fmt(r.get("value"), r.get("unit", "")),
                baseline=r.get("baseline") or "",
                bv=fmt(r.get("baseline_value"), r.get("unit", ""))
                if r.get("baseline_value") is not None
                else "",
                ratio=f"{ratio:.1f}×" if isinstance(ratio, float) and not math.isnan(ratio) else "",
                target=r.get("target") or "",
                met=met,
                note=(r.get("note") or "").replace("|", "/"),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (development; noisier figures)")
    ap.add_argument(
        "--only", nargs="*", default=[], help="module names (core, console, …) or bench letters (a b …)"
    )
    ap.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)

    ctx = Context(quick=args.quick, only=[o for o in args.only if len(o) == 1])
    mods = sorted(p.stem for p in (REPO / "benchmarks").glob("bench_*.py"))
    wanted_mods = [o for o in args.only if len(o) > 1]
    if wanted_mods:
        mods = [m for m in mods if m.removeprefix("bench_") in wanted_mods or m in wanted_mods]
    started = time.time()
    load_at_start = os.popen("uptime").read().strip()
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for name in mods:
        print(f"== {name}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
            got = mod.run(ctx)
        except Exception:
            failures.append(f"{name}: {traceback.format_exc().strip().splitlines()[-1]}")
            traceback.print_exc()
            continue
        for r in got:
            r.setdefault("module", name)
        rows += got
        print(f"   {name}: {len(got)} rows in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    took = time.time() - started

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    doc = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks`"
        + (" --quick" if args.quick else "")
        + f"). Taken {stamp}, {took:.0f} s in all.",
        "Every figure is measured in the same run as its baseline: **tmux** (send-keys, capture-pane "
        "polling, a `.done` file polled every 100 ms, driving the same agent program) and the **bare "
        "pty** (a driver with no supervisor: the limit). Ratio = how many times better than the "
        "baseline (baseline ÷ ours when lower is better).",
        "",
        *machine(),
        "- load: this is a shared 2-core machine; other engineers' test runs may have disturbed "
        "the figures (`uptime` at the start: " + load_at_start + ").",
        "",
        *table(rows),
        "",
    ]
    if ctx.notes:
        doc += ["## Notes", "", *[f"- {n}" for n in ctx.notes], ""]
    if failures:
        doc += ["## Failed modules", "", *[f"- {f}" for f in failures], ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(doc), encoding="utf-8")

    print("\n".join(table(rows)))
    missed = [r for r in rows if r.get("ok") is False]
    print(
        f"\n{len(rows)} figures, {sum(1 for r in rows if r.get('ok'))} targets met, {len(missed)} missed; "
        f"{took:.0f} s; written to {out}"
    )
    for f in failures:
        print(f"FAILED {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
