"""The inbox: messages for the person or the chief (monitor alerts, background answers).

Durable and append-only (``inbox.jsonl`` in the state dir, fsync'd before a post returns),
so an alert survives a daemon restart; an acknowledgement is appended too, never an edit
in place, so a crash can lose at most the line being written, never an earlier one.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supervisor.util.trust import open_private

FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "title": (str,), "body": (str,), "source": (str,), "to": (str,), "task": (str, type(None)),
    "id": (str,), "time": (int, float), "acked": (bool,), "delivered": (bool,),
}
"""What each field of a stored item must be: a line that says otherwise is damaged, skipped."""


@dataclass
class InboxItem:
    title: str
    body: str = ""
    source: str = "staff"  # monitor, task, external, …
    to: str = "chief"
    task: str | None = None
    id: str = field(default_factory=lambda: "M-" + secrets.token_hex(4))
    time: float = field(default_factory=time.time)
    acked: bool = False
    delivered: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _item(rec: dict[str, Any]) -> InboxItem | None:
    known = {k: v for k, v in rec.items() if k in FIELD_TYPES}
    for key, value in known.items():
        if not isinstance(value, FIELD_TYPES[key]) or (key == "time" and isinstance(value, bool)):
            return None
    if "title" not in known:
        return None
    return InboxItem(**known)


class Inbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: dict[str, InboxItem] = {}
        self.damaged: str | None = None
        """What `_load` skipped (lines that are not items), said once at start, or None."""
        self._load()

    def _load(self) -> None:
        """Read every line on its own: a damaged one (a bad byte, a torn write, a wrong type)
        is skipped and counted, never the whole inbox."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        skipped = 0
        lines = raw.split(b"\n")
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError too
                skipped += n < len(lines)  # a torn last line is a crash's, not damage
                continue
            if not isinstance(rec, dict):
                skipped += 1
                continue
            if "ack" in rec:
                if rec["ack"] in self.items:
                    self.items[rec["ack"]].acked = True
            elif "delivered" in rec and set(rec) == {"delivered"}:
                if rec["delivered"] in self.items:
                    self.items[rec["delivered"]].delivered = True
            else:
                item = _item(rec)
                if item is None:
                    skipped += 1
                    continue
                self.items[item.id] = item
        if skipped:
            self.damaged = (
                f"{self.path}: skipped {skipped} damaged line{'s' if skipped != 1 else ''} (not inbox "
                f"items); the other {len(self.items)} items are kept"
            )

    def _append(self, rec: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_private(self.path)
        try:
            os.write(fd, (json.dumps(rec, ensure_ascii=False) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def post(self, item: InboxItem) -> InboxItem:
        self._append(item.to_json())
        self.items[item.id] = item
        return item

    def ack(self, ids: list[str] | None = None) -> list[InboxItem]:
        """Mark items read (all unread ones when `ids` is None); returns those it marked."""
        targets = [i for i in self.items.values() if not i.acked and (ids is None or i.id in ids)]
        for item in targets:
            self._append({"ack": item.id})
            item.acked = True
        return targets

    def mark_delivered(self, item_id: str) -> None:
        """Pushed into an agent (the chief): recorded so a restart does not push it again."""
        item = self.items.get(item_id)
        if item is not None and not item.delivered:
            self._append({"delivered": item_id})
            item.delivered = True

    def list(self, *, unread: bool = True, to: str | None = None) -> list[InboxItem]:
        return [i for i in self.items.values() if (not unread or not i.acked) and (to is None or i.to == to)]
