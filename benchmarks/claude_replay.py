#!/usr/bin/env python3
"""A Claude-like agent for load benchmarks: replays the real Claude Code 2.1.330 bytes.

It draws the real startup screen (idle prompt), then cycles: the real "prompt submitted"
bytes (→ working), the real spinner frames paced to ``--rate`` bytes/s for ``--working``
seconds (frames as captured, padded with a streamed answer line when the rate asks for
more bytes than the spinner alone), the real "answer + idle prompt" bytes (→ idle), then
``--idle`` seconds of silence. Before each state-changing write it appends
``<state> <time.monotonic()>`` to ``--trace`` (CLOCK_MONOTONIC is system-wide on Linux),
so a benchmark can measure write → event latency. stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "claude-2.1.330"


def segments() -> tuple[bytes, bytes, list[bytes], bytes]:
    raw = (DATA / "full_session.raw").read_bytes()
    idx = json.loads((DATA / "index.json").read_text())
    setup = raw[: idx["a_idle"]]
    submit = raw[idx["a_idle"] : idx["b_working"]]
    # The turn ends where the title goes back to ✳ (idle); the frames before it are the
    # spinner's, each starting with a cursor-home.
    title_idle = raw.find("\x1b]0;✳ Claude Code\x07".encode(), idx["b_working"])
    cut = raw.rfind(b"\x1b[H\r", idx["b_working"], title_idle)
    parts = raw[idx["b_working"] : cut].split(b"\x1b[H\r")
    frames = [b"\x1b[H\r" + p for p in parts if p]
    end = raw[cut : idx["c_done"]]
    return setup, submit, frames, end


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", default="")
    ap.add_argument("--working", type=float, default=2.0)
    ap.add_argument("--idle", type=float, default=0.5)
    ap.add_argument("--rate", type=float, default=1200.0, help="bytes/s while working")
    ap.add_argument("--fps", type=float, default=8.0, help="frames/s while working")
    ap.add_argument("--wait", action="store_true", help="start cycling on the first input byte")
    args, _unknown = ap.parse_known_args()  # the daemon adds Claude's flags (--session-id …)
    setup, submit, frames, end = segments()
    out = sys.stdout.buffer.raw if hasattr(sys.stdout.buffer, "raw") else sys.stdout.buffer
    trace = open(args.trace, "a", buffering=1) if args.trace else None  # noqa: SIM115

    def write(data: bytes, state: str = "") -> None:
        if state and trace is not None:
            trace.write(f"{state} {time.monotonic():.6f}\n")
        view = memoryview(data)
        while view:
            n = out.write(view)
            view = view[n or 0 :]

    write(setup)
    if args.wait:
        os.read(0, 1)
    period = 1.0 / args.fps
    pad_row = 12
    i = 0
    while True:
        write(submit, "working")
        t_end = time.monotonic() + args.working
        nxt = time.monotonic()
        while time.monotonic() < t_end:
            frame = frames[i % len(frames)]
            i += 1
            pad = int(args.rate * period) - len(frame)
            if pad > 16:  # a streamed answer line, as Claude draws while a reply comes in
                text = ("lorem ipsum dolor sit amet " * (pad // 27 + 1))[: min(pad - 12, 110)]
                frame = f"\x1b7\x1b[{pad_row};3H{text}\x1b8".encode() + frame
                pad_row = 12 + (pad_row - 11) % 20
            write(frame)
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))
        write(end, "idle")
        time.sleep(args.idle)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt, OSError):
        sys.exit(0)
