"""`staff mail-bridge`: mail in a Maildir becomes a task; the answer goes back as a reply.

A client of the daemon like `staff run`. Each message in `DIR/new` from an allowed sender is
submitted to the chief (or to AGENT for `To: <anything>+AGENT@…`) with the idempotency key
`mail:<Message-ID>`, recorded in `mail-bridge.json` in the state dir, and only then moved to
`DIR/cur` (flag `S`); the reply (`Re:` subject, `In-Reply-To`, `References`) is sent over SMTP
when the task ends and marked sent in the same file. A bridge killed at any point and started
again finds the same task by its key (nothing lost) and sends each reply once. Messages from
senders not allowed are left unread in `new/` and logged once.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import email.utils
import json
import os
import smtplib
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from supervisor.client.cli.common import AddFn
from supervisor.util.atomic import write_json_atomic

STATE_FILE = "mail-bridge.json"


def _log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} mail | {msg}", file=sys.stderr, flush=True)


class Bridge:
    def __init__(
        self,
        home: Path,
        maildir: Path,
        smtp: tuple[str, int],
        allow: list[str],
        *,
        sender: str = "staff@localhost",
    ) -> None:
        self.home, self.maildir, self.smtp = home, maildir, smtp
        self.allow = {a.lower() for a in allow}
        self.sender = sender
        self.state_path = home / STATE_FILE
        self.state: dict[str, dict[str, Any]] = self._load()
        self._refused: set[str] = set()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        write_json_atomic(self.state_path, self.state)

    # -- taking mail in ---------------------------------------------------------------------
    def target(self, msg: EmailMessage) -> str:
        """`To: bot+coding@host` → coding; anything else → the chief."""
        for _name, addr in email.utils.getaddresses([str(msg.get("To", ""))]):
            local = addr.split("@", 1)[0]
            if "+" in local:
                return local.split("+", 1)[1]
        return "chief"

    def scan(self, c: Any) -> None:
        """Submit every allowed new message (idempotently), then move it to cur/."""
        new = self.maildir / "new"
        for path in sorted(new.iterdir()) if new.is_dir() else []:
            if path.name in self._refused or path.name.startswith("."):
                continue
            try:
                msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            except OSError:
                continue
            assert isinstance(msg, EmailMessage)
            _name, frm = email.utils.parseaddr(str(msg.get("From", "")))
            if frm.lower() not in self.allow:
                self._refused.add(path.name)
                _log(f"left unread: {path.name} from {frm or '(no sender)'} (not in --allow)")
                continue
            mid = str(msg.get("Message-ID") or f"<{path.name.split(':')[0]}@maildir>")
            to = self.target(msg)
            body = msg.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            subject = str(msg.get("Subject", "")).strip()
            task_text = f"{subject}\n\n{text}".strip() if subject else text.strip()
            try:
                task = c.call("submit", to=to, text=task_text or "(empty mail)", key=f"mail:{mid}")
            except Exception as exc:  # an unknown agent, no daemon: leave it for later
                _log(f"{path.name}: not submitted: {getattr(exc, 'message', exc)}")
                self._refused.add(path.name)
                continue
            entry = self.state.setdefault(mid, {"replied": False})
            entry.update(
                {
                    "task": task["id"],
                    "from": frm,
                    "subject": subject,
                    "to": to,
                    "references": str(msg.get("References", "")).strip(),
                }
            )
            self._save()  # recorded: now it may leave new/
            os.replace(path, self.maildir / "cur" / (path.name.split(":")[0] + ":2,S"))
            _log(f"{mid} from {frm} → {task['id']} ({to})")

    # -- answering ---------------------------------------------------------------------------
    def reply(self, mid: str, entry: dict[str, Any], task: dict[str, Any]) -> None:
        out = EmailMessage()
        subject = entry.get("subject") or ""
        out["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
        out["From"] = self.sender
        out["To"] = entry["from"]
        out["In-Reply-To"] = mid
        out["References"] = f"{entry.get('references', '')} {mid}".strip()
        out["Message-ID"] = email.utils.make_msgid(domain="staff.local")
        out["Date"] = email.utils.formatdate(localtime=True)
        if task["state"] == "done":
            out.set_content(task.get("answer") or "(no answer text)")
        else:
            out.set_content(f"[staff] task {task['id']} {task['state']}: {task.get('error') or ''}".strip())
        with smtplib.SMTP(*self.smtp, timeout=60) as s:
            s.send_message(out)
        entry["replied"] = True
        self._save()
        _log(f"replied to {entry['from']} for {mid} ({task['id']} {task['state']})")

    def answer_pending(self, c: Any, timeout: float | None) -> None:
        for mid, entry in list(self.state.items()):
            if entry.get("replied") or not entry.get("task"):
                continue
            task = c.call("wait", task=entry["task"], timeout=timeout, read_timeout=None)
            if task["state"] in ("done", "failed", "cancelled"):
                self.reply(mid, entry, task)

    def pending(self) -> bool:
        return any(not e.get("replied") for e in self.state.values())


def cmd_mail_bridge(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.cli.common import client, fail, start_daemon

    host, _, port = args.smtp.rpartition(":")
    if not port.isdigit():
        fail(f"--smtp {args.smtp!r}: HOST:PORT")
    maildir = Path(args.maildir)
    for sub in ("new", "cur", "tmp"):
        if not (maildir / sub).is_dir():
            fail(f"{maildir}: not a Maildir (no {sub}/)")
    if not args.allow:
        fail("--allow FROM… is required: mail from anyone else is left unread")
    start_daemon(home, args.config, quiet=True)
    bridge = Bridge(home, maildir, (host or "127.0.0.1", int(port)), args.allow, sender=args.sender)
    with client(home, timeout=None) as c:
        if args.once:
            bridge.scan(c)
            bridge.answer_pending(c, None)
            return 0
        return run_forever(bridge, home, c, args.interval)


def run_forever(bridge: Bridge, home: Path, c: Any, interval: float) -> int:
    """Nothing polls: new mail wakes the loop through inotify on new/ (dirwatch.py), and
    answers are sent from the daemon's task events, on a thread. A lock keeps the two from
    touching the bridge's state file at once."""
    from supervisor.client.cli.common import client
    from supervisor.util.dirwatch import dir_watch

    lock = threading.Lock()
    watch = dir_watch(bridge.maildir / "new", fallback_interval=interval)
    events = client(home, timeout=None)
    stream = events.stream("subscribe")
    next(stream)  # the hello: subscribed before looking for answers that finished earlier
    lost: list[str] = []
    wake_r, wake_w = os.pipe()

    def answers() -> None:
        try:
            for frame in stream:
                task = (frame.get("event") or {}).get("task") or {}
                if task.get("state") not in ("done", "failed", "cancelled"):
                    continue
                with lock:
                    for mid, entry in list(bridge.state.items()):
                        if entry.get("task") == task["id"] and not entry.get("replied"):
                            bridge.reply(mid, entry, task)
            lost.append("the daemon closed the event stream")
        except Exception as exc:
            lost.append(str(getattr(exc, "message", exc)))
        os.write(wake_w, b"x")

    threading.Thread(target=answers, name="mail-answers", daemon=True).start()
    how = "inotify" if watch.event_driven else f"every {interval:g} s ({watch.error})"
    _log(f"watching {bridge.maildir / 'new'} ({how})")
    try:
        with lock:
            bridge.answer_pending(c, 0)  # finished while no bridge ran
        while not lost:
            with lock:
                bridge.scan(c)
            watch.wait(also=wake_r)
        _log(f"stopping: {lost[0]} (start the bridge again: nothing is lost)")
        return 1
    finally:
        watch.close()
        events.close()
        os.close(wake_r)
        os.close(wake_w)


def add_commands(add: AddFn) -> None:
    p = add("mail-bridge", cmd_mail_bridge, "mail in a Maildir becomes tasks; answers go back as replies")
    p.add_argument("--maildir", required=True, help="the Maildir that fetchmail/getmail/an MTA deliver into")
    p.add_argument("--smtp", required=True, metavar="HOST:PORT", help="where replies are sent")
    p.add_argument("--allow", nargs="+", metavar="FROM", help="sender addresses whose mail is taken")
    p.add_argument("--sender", default="staff@localhost", help="From: of the replies")
    p.add_argument("--once", action="store_true", help="take what is there, wait for every answer, exit")
    p.add_argument(
        "--interval", type=float, default=2.0, help="seconds between looks at new/ where inotify is missing"
    )
    p.add_argument("-c", "--config", help="team file, if the daemon has to be started")
