"""Drive a full-screen program (the console, `staff attach`) under a real pty and read what
it draws through the project's own emulator, the way a person's terminal would show it."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pexpect

from supervisor.screen.emulator import Screen
from tests.conftest import REPO

SIDEBAR = 26  # console/app.py SIDEBAR_WIDTH
_ROW = re.compile(r"^[ ▶](\d) (\S+)\s+(\w+)\s*$")


class Term:
    def __init__(self, args: list[str], rows: int = 40, cols: int = 140) -> None:
        self.rows, self.cols = rows, cols
        self.screen = Screen(cols, rows)
        env = dict(os.environ, PYTHONPATH=str(REPO), TERM="xterm-256color")
        self.child = pexpect.spawn(
            sys.executable, ["-m", "supervisor", *args], dimensions=(rows, cols),
            encoding="utf-8", codec_errors="replace", env=env, cwd=os.getcwd(),
        )
        self.screen.reply = self.child.send  # answer the program's cursor-position queries
        self.output: list[str] = []

    def _read(self, timeout: float) -> bool:
        try:
            data = self.child.read_nonblocking(65536, timeout=max(timeout, 0.01))
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.output.append(data)
        self.screen.feed(data)
        return True

    def wait(self, pred: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
        """Read what the program draws until `pred()` holds (re-checked after every read)."""
        end = time.monotonic() + timeout
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what or pred}; the screen:\n{self.text()}")
            if not self._read(left):
                if pred():
                    return
                raise AssertionError(f"the program exited waiting for {what}; the screen:\n{self.text()}")

    def lines(self) -> list[str]:
        return list(self.screen.text_lines())

    def text(self) -> str:
        return "\n".join(self.lines())

    # -- the console's regions -------------------------------------------------------------
    def sidebar(self) -> dict[str, str]:
        """{agent: state} as the sidebar shows them."""
        out = {}
        for line in self.lines()[1:-1]:
            m = _ROW.match(line[:SIDEBAR])
            if m:
                out[m.group(2)] = m.group(3)
        return out

    def main(self) -> str:
        return "\n".join(line[SIDEBAR + 1 :] for line in self.lines()[:-1])

    def pane_title(self) -> str:
        return self.lines()[0][SIDEBAR + 1 :].strip()

    def send(self, data: str) -> None:
        self.child.send(data)

    def wait_exit(self, timeout: float = 15) -> int:
        end = time.monotonic() + timeout
        while self._read(end - time.monotonic()):
            if time.monotonic() > end:
                raise AssertionError("the program did not exit")
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def read_cast(path: Path) -> tuple[dict[str, object], list[list[object]]]:
    import json

    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
