"""The seed prototype's way of delegating from an editor hook, as a baseline for bench_hook.

Standard library only, one process per delegation like `staff-hook`: read the prompt file,
take its first ``@agent text`` line, type the text into the agent's tmux pane
(``send-keys -l``, then ``Enter``), poll a ``.done`` marker directory every 100 ms until a
new file appears, read the answer off the pane (``capture-pane -p``) and write it into the
prompt file. The fake agent writes the marker when ``FAKE_CLAUDE_DONE_DIR`` is set (the
seed asked Claude to touch one).

    SEED_TMUX_SOCK=… SEED_TARGET=b:0 SEED_DONE_DIR=… python benchmarks/seed_hook.py FILE
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

POLL = 0.1


def tmux(*args: str) -> str:
    sock = os.environ["SEED_TMUX_SOCK"]
    return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True, check=True).stdout


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    line = next(ln for ln in text.splitlines() if ln.startswith("@"))
    agent, _, task = line[1:].partition(" ")
    target = os.environ["SEED_TARGET"]
    done_dir = os.environ["SEED_DONE_DIR"]
    before = set(os.listdir(done_dir))
    tmux("send-keys", "-t", target, "-l", task)
    tmux("send-keys", "-t", target, "Enter")
    deadline = time.monotonic() + 60
    while not set(os.listdir(done_dir)) - before:
        if time.monotonic() > deadline:
            return 0  # the seed gave up silently
        time.sleep(POLL)
    screen = tmux("capture-pane", "-p", "-t", target)
    answer = [ln.strip().lstrip("● ") for ln in screen.splitlines() if "FAKE-REPLY" in ln][-1]
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"[answer from @{agent}]\n{answer}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
