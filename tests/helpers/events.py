"""The daemon's events, collected on a thread for tests: waits are on a condition, not sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.protocol import Client, socket_path


class Events:
    def __init__(self, home: Path) -> None:
        self.items: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.client = Client(socket_path(home), timeout=None).connect()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for frame in self.client.stream("subscribe"):
                with self.cond:
                    self.items.append(frame.get("event") or {})
                    self.cond.notify_all()
        except Exception:  # closed under the reader by close()
            pass

    def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        """The first event (seen so far or to come) for which `pred` holds."""
        with self.cond:
            found: list[dict[str, Any]] = []

            def check() -> bool:
                found[:] = [e for e in self.items if pred(e)]
                return bool(found)

            assert self.cond.wait_for(check, timeout), f"no such event; saw {self.items[-10:]}"
            return found[0]

    def states(self, agent: str) -> list[str]:
        with self.cond:
            return [e["new"] for e in self.items if e.get("type") == "state" and e.get("agent") == agent]

    def wait_state(self, agent: str, state: str, timeout: float = 30) -> None:
        self.wait(
            lambda e: e.get("type") == "state" and e.get("agent") == agent and e["new"] == state, timeout
        )

    def close(self) -> None:
        self.client.close()
