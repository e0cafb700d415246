"""`staff`: the command line client of the daemon.

Exit codes: 0 ok, 1 the task failed (or was cancelled, or is still running at the
timeout), 2 usage error / unknown agent / no daemon / bad config. Every error is one
line on stderr that says what to do next.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from supervisor.client.cli.common import (
    CliError,
    Elapsed,
    Interrupted,
    client,
    fail,
    keys_from_args,
    read_text,
    start_daemon,
    stop_daemon,
    stop_keeper,
)
from supervisor.client.cli.doctor import cmd_doctor
from supervisor.client.statusline import state_text, usage_text
from supervisor.protocol import ERR_INTERNAL, ERR_UNKNOWN_AGENT, Client, ProtocolError, release, state_home
from supervisor.team import config as configmod


# -- commands ------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace, home: Path) -> int:
    if args.foreground:
        from supervisor.daemon.main import run

        return run(args.config, home, foreground=True)
    info = start_daemon(home, args.config)
    if args.json:
        print(json.dumps(info))
        return 0
    verb = "already running" if info.get("already") else "up"
    print(f"staff: daemon {verb} (pid {info['pid']}), agents: {', '.join(info['agents'])}")
    if info.get("already") and args.config and not _same_file(args.config, info.get("config")):
        print(
            f"staff: -c {args.config} not used: the running daemon has {info.get('config')} "
            f"(`staff reload -c {args.config}` switches to it, the agents keep running)",
            file=sys.stderr,
        )
    if info.get("note"):
        print(f"staff: {info['note']}")
    for warning in info.get("warnings") or []:  # a lost journal WAL, a damaged inbox line, …
        print(f"staff: warning: {warning}", file=sys.stderr)
    with client(home) as c:
        for a in c.call("status")["agents"]:
            if a["error"] and a["status"] in ("exited", "crashed"):
                print(f"staff: warning: agent {a['agent_id']} did not start: {a['error']}", file=sys.stderr)
    return 0


def _same_file(a: str, b: Any) -> bool:
    try:
        return isinstance(b, str) and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def cmd_down(args: argparse.Namespace, home: Path) -> int:
    """Stop; tasks agents are working on are interrupted and run again at the next `up`
    (said here, and asked first on a terminal unless --force)."""
    if not args.force and sys.stdin.isatty() and sys.stderr.isatty():
        try:
            with client(home) as c:
                busy = [a for a in c.call("status")["agents"] if a["current_task"]]
        except ProtocolError:
            busy = []
        if busy:
            for a in busy:
                title = a["current_task_title"] or ""
                print(f"  {a['agent_id']}: {a['current_task']} {title}", file=sys.stderr)
            sys.stderr.write(
                f"staff: {len(busy)} task(s) running (above); stop them? They run again at the next "
                "`staff up` [y/N] "
            )
            sys.stderr.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                print("staff: nothing stopped", file=sys.stderr)
                return 1
    info = stop_daemon(home)
    keeper = stop_keeper(home)  # normally the daemon already ended it
    if info is None:
        print("staff: no daemon running" + ("; stopped its leftover agents" if keeper else ""))
    else:
        print(f"staff: daemon {info['pid']} stopped")
        for t in info.get("running") or []:
            print(
                f"staff: task {t['id']} ({t['agent']}: {t['title']}) was {t['state']}: interrupted, "
                "it runs again at the next `staff up`"
            )
    return 0


def cmd_reload(args: argparse.Namespace, home: Path) -> int:
    """Restart the daemon in place (e.g. after an upgrade); the agents keep running."""
    info = stop_daemon(home, reload=True)
    if info is None:
        fail("no daemon is running (start one with `staff up`)")
    source = str(info.get("config") or "")
    config_path = args.config or (source if source and Path(source).is_file() else None)
    # a host's daemon a bridge started with no team file stays without one (not the default team)
    empty = not args.config and source == configmod.empty_team().source
    new = start_daemon(home, config_path, empty=empty)
    print(f"staff: daemon reloaded (pid {info['pid']} → {new['pid']}); agents kept their processes")
    return 0


STATE_STYLE = {
    "idle": "green",
    "working": "yellow",
    "blocked": "bold red",
    "user": "cyan",
    "starting": "blue",
    "exited": "dim",
    "crashed": "bold magenta",
    "unreachable": "dim",  # an agent on a host whose link is down (daemon/hosts.py)
}


def cmd_status(args: argparse.Namespace, home: Path) -> int:
    with client(home) as c:
        st = c.call("status")
    if args.json:
        print(json.dumps(st, indent=1, ensure_ascii=False))
        return 0
    if not sys.stdout.isatty():  # a pipe or a file: one line per agent, never wrapped
        _print_plain_status(st)
        _print_hosts(st)
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"staff — {st['config']}", title_justify="left")
    for col in _columns(st):
        table.add_column(col)
    for a in st["agents"]:
        style = STATE_STYLE.get(a["status"], "")
        name, state, *rest = _status_row(a, hosts="hosts" in st)
        table.add_row(escape(name), f"[{style}]{state}[/]", *(escape(c) for c in rest))
    Console().print(table)
    _print_hosts(st)
    return 0


STATUS_COLUMNS = ("agent", "state", "task", "queue", "pid", "usage", "context", "note")


def _columns(st: dict[str, Any]) -> list[str]:
    """The status columns; `host` only for a hub (a team with [hosts.NAME])."""
    cols = list(STATUS_COLUMNS)
    return [*cols[:2], "host", *cols[2:]] if "hosts" in st else cols


def _print_hosts(st: dict[str, Any]) -> None:
    """One line per host of a hub: connected, reconnecting since …, unreachable (and why)."""
    for h in st.get("hosts") or []:
        since = time.strftime("%H:%M:%S", time.localtime(h["since"]))
        state = h["state"] if h["state"] == "connected" else f"{h['state']} since {since}"
        why = f": {h['error']}" if h.get("error") and h["state"] != "connected" else ""
        print(f"host {h['host']}: {state}, {h['agents']} agent(s), via {h['transport']}{why}")


def _status_row(a: dict[str, Any], *, hosts: bool = False) -> list[str]:
    task = f"{a['current_task']} {a['current_task_title'] or ''}".strip() if a["current_task"] else ""
    return [
        a["agent_id"],
        state_text(a),
        *([a.get("host") or "local"] if hosts else []),
        task,
        str(a["queue"]),
        str(a["pid"] or "-"),
        usage_text(a.get("usage")) or "-",
        a["context_summary"],
        _note(a),
    ]


def _print_plain_status(st: dict[str, Any]) -> None:
    """`staff status` into a pipe: aligned columns at their full width (rich wrapped them at 80)."""
    rows = [_columns(st)]
    rows += [[" ".join(c.split()) for c in _status_row(a, hosts="hosts" in st)] for a in st["agents"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _note(a: dict[str, Any]) -> str:
    if a["error"] or a["exit"]:
        return str(a["error"] or a["exit"])
    if a.get("draft"):
        return f"draft in the box (tasks wait): {a['draft'][:40]!r}"
    return f"worktree {a['worktree']}" if a.get("worktree") else ""


def _print_task(task: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(task, indent=1, ensure_ascii=False))
    elif task["state"] == "done":
        print(task["answer"] or "")
    elif task["state"] in ("failed", "cancelled"):
        print(f"staff: task {task['id']} {task['state']}: {task['error']}", file=sys.stderr)
    else:
        print(
            f"staff: task {task['id']} is still {task['state']} on {task['agent'] or task['to']}; "
            f"fetch the answer later with `staff wait {task['id']}`",
            file=sys.stderr,
        )
    return 0 if task["state"] == "done" else 1


def _wait(c: Client, task_id: str, timeout: float | None, *, live: bool) -> dict[str, Any]:
    """Wait for a task; on a terminal, a spinner with the agent's state and elapsed time."""
    if not live:
        result: dict[str, Any] = c.call("wait", task=task_id, timeout=timeout)
        return result
    from rich.console import Console

    console = Console(stderr=True)
    label = Elapsed(f"{task_id} queued")
    final: dict[str, Any] = {}
    with console.status(label):  # the spinner redraws the label, and its clock, ~12 times a second
        frames: Iterator[dict[str, Any]] = c.stream("wait", task=task_id, timeout=timeout, progress=True)
        for frame in frames:
            ev = frame.get("event")
            if ev is None:
                if not frame.get("ok"):
                    err = frame.get("error") or {}
                    raise ProtocolError(err.get("code", ERR_INTERNAL), err.get("message", "error"))
                final = frame["result"]
                break
            if ev.get("type") == "task":
                state = f"{ev['task']['state']} on {ev['task'].get('agent') or ev['task']['to']}"
            elif ev.get("type") == "state":
                state = f"agent {ev['agent']} {ev['new']}"
            elif ev.get("type") == "draft" and ev.get("draft"):
                state = f"queued: {ev['agent']} has a draft in its input box (send or clear it)"
            elif ev.get("type") == "inbox":
                state = f"queued: {ev['item']['title']}"
            else:
                continue
            label.text = f"{task_id} {state}"
    return final


def cmd_submit(args: argparse.Namespace, home: Path) -> int:
    with client(home) as c:
        task = c.call("submit", to=args.agent, text=read_text(args.text), key=args.key)
    print(json.dumps(task) if args.json else task["id"])
    return 0


def cmd_ask(args: argparse.Namespace, home: Path) -> int:
    if args.all or "," in args.agent:  # fan-out: several agents, answers side by side
        from supervisor.client.cli.orchestrate import cmd_ask_fanout

        return cmd_ask_fanout(args, home)
    text = read_text(args.text)
    with client(home, timeout=None) as c:
        task = c.call("submit", to=args.agent, text=text)
        live = sys.stderr.isatty() and not args.json
        try:
            task = _wait(c, task["id"], args.timeout, live=live)
        except KeyboardInterrupt:
            raise Interrupted([task["id"]]) from None
    return _print_task(task, args.json)


def cmd_wait(args: argparse.Namespace, home: Path) -> int:
    with client(home, timeout=None) as c:
        try:
            task = _wait(c, args.task, args.timeout, live=sys.stderr.isatty() and not args.json)
        except KeyboardInterrupt:
            raise Interrupted([args.task]) from None
    return _print_task(task, args.json)


def cmd_cancel(args: argparse.Namespace, home: Path) -> int:
    with client(home) as c:
        task = c.call("cancel", task=args.task)
    print(json.dumps(task) if args.json else f"{task['id']} {task['state']}")
    return 0


def cmd_send(args: argparse.Namespace, home: Path) -> int:
    keys = keys_from_args(args.keys, args.literal)
    with client(home) as c:
        c.call("send", agent=args.agent, keys=keys)
    return 0


def cmd_answer(args: argparse.Namespace, home: Path) -> int:
    keys = keys_from_args(args.keys, args.literal)
    with client(home, timeout=args.timeout + 10) as c:
        got = c.call("answer", agent=args.agent, keys=keys, timeout=args.timeout)
    if args.json:
        print(json.dumps(got))
    else:
        tries = f" (taken on try {got['tries']})" if got["tries"] > 1 else ""
        print(f"{got['agent']}: answered, now {got['state']}{tries}")
    return 0


def cmd_screen(args: argparse.Namespace, home: Path) -> int:
    with client(home) as c:
        scr = c.call("screen", agent=args.agent, scrollback=args.scrollback)
    if args.json:
        print(json.dumps(scr, ensure_ascii=False))
        return 0
    lines = [*scr["history"], *scr["lines"]]
    while lines and not lines[-1].strip():
        lines.pop()
    print("\n".join(lines))
    return 0


def cmd_explain(args: argparse.Namespace, home: Path) -> int:
    with client(home) as c:
        ex = c.call("explain", agent=args.agent)
    if args.json:
        print(json.dumps(ex, indent=1, ensure_ascii=False))
        return 0
    print(
        f"{ex['agent']}: {ex['state']}  "
        f"(profile {ex['profile']} {ex['profile_version']}, {ex['profile_source']})"
    )
    if ex["explain"]:
        print(f"  decided: {ex['explain']}")
    print(f"  screen now: {ex['live']}")
    if ex["user_hold"]:
        print("  a person holds this agent (console): tasks wait")
    if ex["error"]:
        print(f"  error: {ex['error']}")
    print("  rules (highest priority first):")
    for r in ex["rules"]:
        mark = "✔" if r["matched"] is not None else "·"
        hit = f"  matched {r['matched']!r}" if r["matched"] is not None else ""
        print(f"    {mark} {r['priority']:>4} {r['id']:<20} → {r['state']:<8} [{r['region']}]{hit}")
    print(f"    fallback → {ex['fallback']}")
    return 0


def cmd_logs(args: argparse.Namespace, home: Path) -> int:
    if args.follow:
        from supervisor.client.follow import follow

        return follow(home, args.agent, args.lines)
    with client(home) as c:
        logs = c.call("logs", agent=args.agent, lines=args.lines)
    print("\n".join(logs["lines"]))
    return 0


def _agent_line(args: argparse.Namespace, st: dict[str, Any], what: str = "") -> int:
    print(json.dumps(st) if args.json else f"{st['agent_id']}: {what}{st['status']} (pid {st['pid'] or '-'})")
    return 0


def cmd_agent_op(args: argparse.Namespace, home: Path) -> int:
    with client(home, timeout=60) as c:
        return _agent_line(args, c.call(args.cmd, agent=args.agent))


def cmd_new(args: argparse.Namespace, home: Path) -> int:
    with client(home, timeout=60) as c:
        return _agent_line(args, c.call("new", like=args.like, agent=args.agent), f"new, like {args.like}: ")


def cmd_rename(args: argparse.Namespace, home: Path) -> int:
    with client(home, timeout=60) as c:
        st = c.call("rename", agent=args.agent, new=args.new)
    print(json.dumps(st) if args.json else f"{args.agent} is now {st['agent_id']}")
    return 0


def cmd_remove(args: argparse.Namespace, home: Path) -> int:
    with client(home, timeout=60) as c:
        st = c.call("remove", agent=args.agent, force=args.force or None)
    print(json.dumps(st) if args.json else f"{st['agent_id']}: removed from the team")
    return 0


def cmd_inbox(args: argparse.Namespace, home: Path) -> int:
    with client(home) as c:
        items = c.call("inbox", all=args.all or None)["items"]
        if args.ack and items:
            c.call("inbox_ack", ids=[i["id"] for i in items])
    if args.json:
        print(json.dumps(items, indent=1, ensure_ascii=False))
        return 0
    if not items:
        print("inbox: nothing new" if not args.all else "inbox: empty")
    for i in items:
        stamp = time.strftime("%H:%M:%S", time.localtime(i["time"]))
        read = "" if not i["acked"] else " (read)"
        print(f"{i['id']} {stamp} [{i['source']}] {i['title']}{read}")
        for line in (i["body"] or "").splitlines():
            print(f"    {line}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="staff",
        description="A pty-supervised team of coding agents.",
        epilog='First time? `staff up`, `staff status`, `staff ask planning "hello"`, `staff console`. '
        "Shell completion: `staff completion bash|zsh|fish` (README, Commands).",
    )
    ap.add_argument("--home", help="state directory (default $STAFF_HOME or the XDG state dir)")
    ap.add_argument("--version", action="version", version=f"staff {release()}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name: str, fn: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = add("up", cmd_up, "start the daemon with the team (returns when it is ready)")
    p.add_argument(
        "-c", "--config", help="team file (default ./staff.toml, then the user's, then the default team)"
    )
    p.add_argument("--foreground", action="store_true", help="run here and print state changes")
    p = add("down", cmd_down, "stop the daemon and every agent (running tasks run again at the next up)")
    p.add_argument("--force", action="store_true", help="do not ask on a terminal when tasks are running")
    p = add("reload", cmd_reload, "restart the daemon in place; agents and their work carry on")
    p.add_argument("-c", "--config", help="team file (default: the one the daemon had)")
    add("status", cmd_status, "the team: states, tasks, queues")
    for name, fn, help in (
        ("ask", cmd_ask, "give an agent a task, wait, print the answer"),
        ("submit", cmd_submit, "queue a task, print its id"),
    ):
        p = add(name, fn, help)
        p.add_argument("agent", help="agent name, role:NAME, or any")
        p.add_argument("text", nargs="+", help="the task text (- reads stdin)")
        if name == "ask":
            p.add_argument("--timeout", type=float, help="seconds to wait (the task keeps running)")
            p.add_argument("--all", action="store_true", help="AGENT is a role: ask every agent with it")
        else:
            p.add_argument(
                "--key", help="idempotency key: submitting the same key again returns the same task"
            )
    p = add("wait", cmd_wait, "wait for a task and print its answer")
    p.add_argument("task")
    p.add_argument("--timeout", type=float)
    p = add("cancel", cmd_cancel, "cancel a queued or running task")
    p.add_argument("task")
    p = add("send", cmd_send, "type keys into an agent (tmux-style names: Enter Esc C-c Up …)")
    p.add_argument("agent")
    p.add_argument("keys", nargs="+")
    p.add_argument("-l", "--literal", action="store_true", help="send the words as they are")
    p = add(
        "answer",
        cmd_answer,
        "answer the question an agent is blocked on (waits for it; re-sends a key the program ignored)",
    )
    p.add_argument("agent")
    p.add_argument("keys", nargs="+", help="the choice, e.g. 1, or tmux-style key names (Esc, Enter …)")
    p.add_argument("-l", "--literal", action="store_true", help="send the words as they are")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the question")
    p = add("screen", cmd_screen, "print an agent's current screen")
    p.add_argument("agent")
    p.add_argument("--scrollback", action="store_true", help="include the scrollback")
    add("doctor", cmd_doctor, "which agent programs are installed, their versions, whether the profiles "
        "were made from them, and which rules of a running agent matched nothing in the last hour")
    p = add("explain", cmd_explain, "why an agent is in its state: the rule and the text it matched")
    p.add_argument("agent")
    p = add("logs", cmd_logs, "an agent's output as plain text (scrollback + screen)")
    p.add_argument("agent")
    p.add_argument("-n", "--lines", type=int, help="only the last N lines")
    p.add_argument(
        "-f", "--follow", action="store_true", help="then print lines as they scroll off the screen (Ctrl-C)"
    )
    p = add("inbox", cmd_inbox, "messages from monitors and background tasks")
    p.add_argument("--ack", action="store_true", help="mark what is shown as read")
    p.add_argument("--all", action="store_true", help="include read messages")
    for name, help in (
        ("spawn", "start a stopped agent"),
        ("kill", "stop an agent (no restart)"),
        ("restart", "stop and start an agent"),
    ):
        p = add(name, cmd_agent_op, help)
        p.add_argument("agent")
    p = add("new", cmd_new, "a new agent made like another (its command, profile, role, cwd), kept "
            "across restarts")
    p.add_argument("agent", nargs="?", help="its name (default: LIKE-2, LIKE-3 …)")
    p.add_argument("--like", required=True, metavar="AGENT", help="the agent to copy")
    p = add("rename", cmd_rename, "give an agent added at run time another name (it keeps running)")
    p.add_argument("agent")
    p.add_argument("new", help="the new name")
    p = add("remove", cmd_remove, "stop an agent added at run time and drop it from the team")
    p.add_argument("agent")
    p.add_argument("--force", action="store_true", help="cancel its unfinished tasks")
    from supervisor.client.cli.orchestrate import add_commands

    add_commands(add)  # run, runs, watch, monitors, unwatch, worktree
    from supervisor.client.cli.console import add_commands as add_console_commands

    add_console_commands(add)  # console, attach
    from supervisor.client.cli.hooks import add_commands as add_hook_commands

    add_hook_commands(add)  # hook install|uninstall|doctor, mcp
    from supervisor.client.cli.chief import add_commands as add_chief_commands

    add_chief_commands(add)  # chief
    from supervisor.client.cli.serve import add_commands as add_http_commands

    add_http_commands(add)  # serve --http
    from supervisor.client.mailbridge import add_commands as add_mail_commands

    add_mail_commands(add)  # mail-bridge
    from supervisor.client.cli.bridge import add_commands as add_bridge_commands

    add_bridge_commands(add)  # bridge (what a hub's transport runs on this host)
    from supervisor.client.cli.completion import add_commands as add_completion_commands

    add_completion_commands(add, ap)  # completion bash|zsh|fish; agent and task completers
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    from supervisor.client.cli.completion import autocomplete

    autocomplete(parser)  # answers the shell's completion request and exits, when it is one
    argv = sys.argv[1:] if argv is None else argv
    if not argv:  # bare `staff`: what there is to do, not a usage error
        parser.print_help()
        return 0
    unknown = _unknown_command(parser, argv)
    if unknown:
        print(f"staff: {unknown}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    home = Path(args.home) if args.home else state_home()
    try:
        return int(args.fn(args, home))
    except CliError as exc:
        print(f"staff: {exc}", file=sys.stderr)
        return exc.code
    except configmod.ConfigError as exc:
        print(f"staff: {exc}", file=sys.stderr)
        return 2
    except ProtocolError as exc:
        print(f"staff: {exc.message}{_agent_hint(exc, args, home)}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        waits = " ".join(f"`staff wait {t}`" for t in exc.tasks)
        print(f"staff: interrupted; the task keeps running: {waits}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("staff: interrupted (tasks keep running; `staff status` shows them)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `staff wait T --json | head`: the reader has what it wanted. Python would print a
        # traceback (and another one flushing stdout at exit); end like `cat` does: quietly,
        # with the status of a process killed by SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """A misspelled command gets "did you mean …" instead of argparse's list of every choice."""
    words = iter(argv)
    for word in words:
        if word == "--home":
            next(words, None)
        elif not word.startswith("-"):
            commands = _commands(parser)
            if word in commands:
                return None
            close = difflib.get_close_matches(word, commands, n=3, cutoff=0.6)
            maybe = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            return f"unknown command {word!r}{maybe} (`staff --help` lists them)"
    return None


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _agent_hint(exc: ProtocolError, args: argparse.Namespace, home: Path) -> str:
    """For an unknown agent, the names it may have meant (the daemon lists all of them)."""
    name = getattr(args, "agent", None)
    if exc.code != ERR_UNKNOWN_AGENT or not isinstance(name, str) or "did you mean" in exc.message:
        return ""
    try:
        with client(home, timeout=3) as c:
            agents = [a["agent_id"] for a in c.call("status")["agents"]]
    except ProtocolError:
        return ""
    asked = [n.strip() for n in name.split(",")]
    hints = [m for n in asked if n not in agents for m in difflib.get_close_matches(n, agents, 1, 0.5)]
    return f"; did you mean {' or '.join(repr(h) for h in hints)}?" if hints else ""


if __name__ == "__main__":
    sys.exit(main())
