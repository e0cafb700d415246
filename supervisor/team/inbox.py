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


class Inbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: dict[str, InboxItem] = {}
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        for line in raw.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line from a crash
            if not isinstance(rec, dict):
                continue
            if "ack" in rec:
                if rec["ack"] in self.items:
                    self.items[rec["ack"]].acked = True
            elif "delivered" in rec and set(rec) == {"delivered"}:
                if rec["delivered"] in self.items:
                    self.items[rec["delivered"]].delivered = True
            else:
                known = {k: v for k, v in rec.items() if k in InboxItem.__dataclass_fields__}
                try:
                    item = InboxItem(**known)
                except TypeError:
                    continue
                self.items[item.id] = item

    def _append(self, rec: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
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
