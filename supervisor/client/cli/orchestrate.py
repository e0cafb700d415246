"""The orchestration commands of `staff`: run, runs, watch, monitors, unwatch, worktree, fan-out.

Kept out of cli/main.py (which registers them with `add_commands`) so that each piece stays
small; what they share with it is in cli/common.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from supervisor.client.cli.common import (
    Elapsed,
    Interrupted,
    client,
    daemon_alive,
    fail,
    read_text,
    start_daemon,
    stop_daemon,
)
from supervisor.protocol import socket_path


# -- staff run / staff runs ----------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.workflows.model import WorkflowError, load, parse, parse_inputs
    from supervisor.client.workflows.records import load_record
    from supervisor.client.workflows.report import LogReporter, write_junit
    from supervisor.client.workflows.runner import Runner

    record = None
    inputs: dict[str, str] | None = None
    try:
        if args.resume:
            if args.flow or args.input or args.out:
                fail("--resume RUN takes no workflow file, --input or --out (the run keeps its own)")
            record = load_record(home, args.resume)
            if record["state"] == "running":
                fail(f"run {args.resume} is still running (pid {record.get('pid')})")
            if record["state"] == "done":
                print(f"staff: run {args.resume} is already done; nothing to resume")
                return 0
            wf = parse(record["source"], record["file"])
            record["resumes"] = record.get("resumes", 0) + 1
        else:
            if not args.flow:
                fail("give a workflow file (`staff run FLOW.toml`), or --resume RUN")
            wf = load(Path(args.flow))
            inputs = parse_inputs(args.input or [])
            wf.resolve_inputs(inputs)  # a missing or unknown input fails here, before anything runs
    except WorkflowError as exc:
        fail(str(exc))
    started = False
    if not daemon_alive(home):
        start_daemon(home, args.config or wf.team)
        started = True
    headless = args.headless or args.json or not sys.stdout.isatty()
    live = None
    if headless:
        reporter: Any = LogReporter(sys.stderr if args.json else sys.stdout, wf.order())
    else:
        from supervisor.client.workflows.view import LiveView

        live = LiveView(wf)
        reporter = live
    try:
        out = Path(args.out) if args.out else None
        runner = Runner(wf, home, socket_path(home), inputs=inputs, record=record, report=reporter, out=out)
    except WorkflowError as exc:
        fail(str(exc))
    code = 1
    try:
        if live is not None:
            with live:
                code = asyncio.run(runner.run())
        else:
            code = asyncio.run(runner.run())
    finally:
        if args.junit:
            write_junit(Path(args.junit), runner.rec, wf.order())
        if started and not args.keep_daemon:
            stop_daemon(home)
    if args.json:
        public = {k: v for k, v in runner.rec.items() if k != "source"}
        print(json.dumps(public, indent=1, ensure_ascii=False))
    elif live is not None:
        msg = runner.rec.get("message")
        print(f"staff: run {runner.id} {runner.rec['state']}" + (f": {msg}" if msg else ""))
    return code


def cmd_runs(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.workflows.model import WorkflowError
    from supervisor.client.workflows.records import list_runs, load_record

    if args.run:
        try:
            rec = load_record(home, args.run)
        except WorkflowError as exc:
            fail(str(exc))
        if args.json:
            print(json.dumps({k: v for k, v in rec.items() if k != "source"}, indent=1, ensure_ascii=False))
            return 0
        print(f"{rec['id']} {rec['workflow']} ({rec['file']}): {rec['state']} {rec.get('message') or ''}")
        for name, st in rec["steps"].items():
            extra = f" round {st['round']}" if st.get("round", 1) > 1 else ""
            print(f"  {name:<16} {st['state']:<11} {st.get('agent') or '':<12} {st.get('task') or ''}{extra}")
            if st.get("answer"):
                for line in st["answer"].splitlines()[:5]:
                    print(f"      {line}")
        return 0
    runs = list_runs(home)
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "source"} for r in runs], indent=1))
        return 0
    if not runs:
        print("staff: no workflow runs yet (`staff run FLOW.toml` starts one)")
        return 0
    print(f"{'run':<25}  {'workflow':<14} {'state':<11} {'progress':<10}  {'started':<19}  took")
    for r in runs:
        steps = r["steps"]
        done = sum(1 for s in steps.values() if s["state"] in ("done", "skipped"))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"]))
        took = f"{(r.get('finished') or time.time()) - r['started']:.0f}s"
        hint = "  (staff run --resume " + r["id"] + ")" if r["state"] in ("interrupted", "failed") else ""
        progress = f"{done}/{len(steps)} steps"
        print(f"{r['id']:<25}  {r['workflow']:<14} {r['state']:<11} {progress:<10}  {stamp}  {took}{hint}")
    return 0


# -- fan-out ---------------------------------------------------------------------------------------
def cmd_ask_fanout(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.fanout import fan_out, resolve_targets, side_by_side

    text = read_text(args.text)
    ids: list[str] = []
    done: set[str] = set()
    label = Elapsed("")

    def submitted(tasks: list[dict[str, Any]]) -> None:
        ids.extend(t["id"] for t in tasks)
        asked = ", ".join(f"{t['to']} {t['id']}" for t in tasks)
        print(f"staff: asked {asked}; waiting for {len(tasks)} answers", file=sys.stderr, flush=True)
        label.text = f"0 of {len(tasks)} answered"

    def finished(task: dict[str, Any]) -> None:
        done.add(task["id"])
        label.text = f"{len(done)} of {len(ids)} answered (last: {task.get('agent') or task['to']})"

    from contextlib import nullcontext

    spin: Any = nullcontext()
    if sys.stderr.isatty() and not args.json:
        from rich.console import Console

        spin = Console(stderr=True).status(label)
    with client(home, timeout=None) as c:
        targets = resolve_targets(c, args.agent, all_of_role=args.all)
        try:
            with spin:
                results = fan_out(c, targets, text, args.timeout, submitted=submitted, finished=finished)
        except KeyboardInterrupt:
            raise Interrupted([t for t in ids if t not in done] or ids) from None
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    else:
        print(side_by_side(results, shutil.get_terminal_size((120, 40)).columns))
    return 0 if all(t["state"] == "done" for t in results) else 1


# -- monitors ---------------------------------------------------------------------------------------
def cmd_watch(args: argparse.Namespace, home: Path) -> int:
    notify = None
    if args.notify:
        try:
            notify = shlex.split(args.notify)
        except ValueError as exc:
            fail(f"--notify: {exc}")
    with client(home, timeout=None) as c:
        task_id = None
        if args.task:
            task_id = c.call("submit", to=args.agent, text=args.task)["id"]
        m = c.call(
            "watch",
            agent=args.agent,
            until=args.until,
            then=args.then,
            notify=notify,
            task=task_id,
            title=args.title,
            repeat=args.repeat or None,
        )
        if not args.wait:
            print(json.dumps(m) if args.json else f"{m['id']}" + (f" (task {task_id})" if task_id else ""))
            return 0
        m = c.call("monitor_wait", monitor=m["id"], timeout=args.timeout)
    if args.json:
        print(json.dumps(m))
    elif m["fired"]:
        print(m["last_message"])
    else:
        print(f"staff: monitor {m['id']} has not fired yet (it keeps watching)", file=sys.stderr)
    return 0 if m["fired"] else 1


def cmd_monitors(args: argparse.Namespace, home: Path) -> int:
    with client(home) as c:
        items = c.call("monitors")["monitors"]
    if args.json:
        print(json.dumps(items, indent=1))
        return 0
    if not items:
        print("staff: no monitors (`staff watch AGENT --until …` adds one)")
    for m in items:
        extra = " repeat" if m["repeat"] else ""
        extra += f" then {m['then']!r}" if m["then"] else ""
        extra += f" notify {shlex.join(m['notify'])}" if m["notify"] else ""
        print(f"{m['id']}  {m['agent']:<12} until {m['until']}{extra}  fired {m['fired']}x")
    return 0


def cmd_unwatch(args: argparse.Namespace, home: Path) -> int:
    with client(home) as c:
        m = c.call("unwatch", monitor=args.id)
    print(json.dumps(m) if args.json else f"{m['id']} removed")
    return 0


# -- worktrees ----------------------------------------------------------------------------------------
def cmd_worktree(args: argparse.Namespace, home: Path) -> int:
    from supervisor.team.worktrees import clean, load_registry

    live: set[str] = set()
    if daemon_alive(home):
        with client(home) as c:
            agents = c.call("status")["agents"]
        live = {a["agent_id"] for a in agents if a["status"] not in ("exited", "crashed")}
    if args.action == "list":
        reg = load_registry(home)
        if args.json:
            print(json.dumps(reg, indent=1))
            return 0
        if not reg:
            print("staff: no worktrees (an agent gets one with `worktree = true` in staff.toml)")
            return 0
        print(f"{'agent':<14} {'':<5} {'branch':<20} path")
        for agent, wt in reg.items():
            print(f"{agent:<14} {'live' if agent in live else 'gone':<5} {wt['branch']:<20} {wt['path']}")
        return 0
    removed, refused = clean(home, live, force=args.force)
    if args.json:
        print(json.dumps({"removed": removed, "refused": refused}, indent=1))
    else:
        for r in removed:
            print(f"removed {r['path']} (agent {r['agent']}; branch {r['branch']} kept)")
        for r in refused:
            why = r.get("error") or f"{len(r['changes'])} uncommitted change(s); commit them or use --force"
            print(f"staff: kept {r['path']} (agent {r['agent']}): {why}", file=sys.stderr)
        if not removed and not refused:
            print("staff: no worktrees of stopped agents")
    return 1 if refused else 0


# -- registration --------------------------------------------------------------------------------------
def add_commands(add: Any) -> None:
    p = add("run", cmd_run, "run a workflow file (a DAG of steps); --resume continues a cut run")
    p.add_argument("flow", nargs="?", help="the workflow file (TOML)")
    p.add_argument("--input", "-i", action="append", metavar="KEY=VALUE", help="an input (repeatable)")
    p.add_argument("--headless", action="store_true", help="plain log lines, no live view (CI)")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (one test case per step)")
    p.add_argument("--resume", metavar="RUN", help="continue run RUN from its last finished step")
    p.add_argument(
        "--out", metavar="DIR", help="where `save` files go (default: the run's folder in the state dir)"
    )
    p.add_argument("-c", "--config", help="team file, if a daemon must be started (stopped at the end)")
    p.add_argument("--keep-daemon", action="store_true", help="leave a daemon this run started running")
    p = add("runs", cmd_runs, "list workflow runs (past and running), or show one")
    p.add_argument("run", nargs="?", help="a run id: show its steps and answers")
    p = add("watch", cmd_watch, "watch an agent; when the condition holds, message the inbox")
    p.add_argument("agent")
    p.add_argument(
        "--until", required=True, metavar="COND",
        help="idle | blocked | working | exited | background-done | regex:PATTERN",
    )
    p.add_argument("--then", metavar="TEXT", help="send this to the agent when it fires")
    p.add_argument("--notify", metavar="CMD", help="run CMD (argv, no shell) with $STAFF_MESSAGE set")
    p.add_argument("--task", metavar="TEXT", help="first give the agent this task (a monitor task)")
    p.add_argument("--title", help="a label for the message")
    p.add_argument("--repeat", action="store_true", help="fire every time the condition comes true")
    p.add_argument("--wait", action="store_true", help="block until it fires (exit 1 at --timeout)")
    p.add_argument("--timeout", type=float, help="with --wait: seconds")
    add("monitors", cmd_monitors, "list the active monitors")
    p = add("unwatch", cmd_unwatch, "remove a monitor")
    p.add_argument("id")
    p = add("worktree", cmd_worktree, "the agents' git worktrees: list, or clean those of stopped agents")
    p.add_argument("action", choices=("list", "clean"))
    p.add_argument("--force", action="store_true", help="clean: remove even with uncommitted changes")
