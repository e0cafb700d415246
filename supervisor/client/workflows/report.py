"""Headless output of a workflow run: one plain, prefixed line per event, and JUnit XML.

The log lines look like honcho's (``time name | message``) so that CI logs read well and
grep well; no colour, no cursor movement, nothing that needs a terminal::

    06:38:00 run     | feature R-20261124-063800-3f9a: 4 steps (plan, review, code, test)
    06:38:00 plan    | queued T-3f9a0c12 → role:planning (round 1)
    06:38:01 plan    | working on planning
    06:38:04 plan    | done in 3.2s: FAKE-REPLY(planning#1): Plan …
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TextIO


def first_line(text: str, width: int = 100) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


class LogReporter:
    """Prints one line per runner event to `out` (flushed: CI shows it as it happens)."""

    def __init__(self, out: TextIO, steps: list[str] | None = None, clock: Any = time.time) -> None:
        self.out = out
        self.width = max([len("run"), *(len(s) for s in steps or [])])
        self.clock = clock

    def line(self, who: str, message: str, when: float | None = None) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(when if when is not None else self.clock()))
        for i, part in enumerate(message.splitlines() or [""]):
            prefix = f"{stamp} {who:<{self.width}} |" if i == 0 else f"{' ' * 8} {'':<{self.width}} |"
            print(f"{prefix} {part}", file=self.out, flush=True)

    def __call__(self, ev: dict[str, Any]) -> None:
        kind, when = ev["kind"], ev.get("time")
        if kind == "run_start":
            self.width = max(self.width, *(len(s) for s in ev["steps"]))
            verb = "resuming" if ev.get("resumed") else "starting"
            msg = f"{verb} {ev['workflow']} {ev['run']}: {len(ev['steps'])} steps ({', '.join(ev['steps'])})"
            if ev.get("done"):
                msg += f"; already done: {', '.join(ev['done'])}"
            self.line("run", msg, when)
        elif kind == "run_end":
            msg = f"{ev['state']} in {ev['elapsed']:.1f}s"
            if ev.get("message"):
                msg += f": {ev['message']}"
            self.line("run", msg, when)
        elif kind == "step":
            self.line(ev["step"], self.describe(ev), when)

    @staticmethod
    def describe(ev: dict[str, Any]) -> str:
        state = ev["state"]
        if state == "queued":
            extra = f" (round {ev['round']})" if ev.get("round", 1) > 1 else ""
            extra += f" (attempt {ev['attempt']})" if ev.get("attempt", 1) > 1 else ""
            return f"queued {ev['task']} → {ev['to']}{extra}"
        if state == "done":
            answer = first_line(ev.get("answer", ""))
            msg = f"done in {ev.get('elapsed', 0):.1f}s on {ev.get('agent')}: {answer}"
            if ev.get("saved"):
                msg += f" (saved to {ev['saved']})"
            return msg
        if state in ("delivered", "working", "blocked"):
            return f"{state} on {ev.get('agent')}"
        if state == "reattached":
            return f"re-attached to {ev['task']} on {ev.get('agent') or 'the queue'}"
        return f"{state}: {ev.get('message', '')}".rstrip(": ")


def junit(rec: dict[str, Any], order: list[str] | None = None) -> bytes:
    """A JUnit XML report of a run record: one test case per step."""
    steps: dict[str, dict[str, Any]] = rec["steps"]
    names = order or list(steps)
    failures = sum(
        1 for n in names if steps[n]["state"] in ("failed", "interrupted", "cancelled", "pending", "running")
    )
    skipped = sum(1 for n in names if steps[n]["state"] == "skipped")
    total = (rec.get("finished") or time.time()) - rec["started"]
    suites = ET.Element("testsuites", name=f"staff run {rec['workflow']}")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=rec["workflow"],
        tests=str(len(names)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{total:.3f}",
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(rec["started"])),
        id=rec["id"],
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="run", value=rec["id"])
    for k, v in rec.get("inputs", {}).items():
        ET.SubElement(props, "property", name=f"input.{k}", value=str(v))
    for name in names:
        st = steps[name]
        elapsed = (st.get("finished") or rec.get("finished") or time.time()) - (
            st.get("started") or rec["started"]
        )
        case = ET.SubElement(
            suite,
            "testcase",
            classname=rec["workflow"],
            name=name,
            time=f"{max(0.0, elapsed) if st.get('started') else 0.0:.3f}",
        )
        state = st["state"]
        if state == "skipped":
            ET.SubElement(case, "skipped", message=st.get("error") or "skipped")
        elif state != "done":
            msg = st.get("error") or f"step {state}"
            fail = ET.SubElement(case, "failure", message=msg, type=state)
            fail.text = msg
        out = []
        for h in st.get("history", []):
            out.append(f"--- round {h['round']} {h['task']} on {h.get('agent')}\n{h.get('answer') or ''}")
        if out:
            ET.SubElement(case, "system-out").text = "\n".join(out)
    ET.indent(suites)
    body: str = ET.tostring(suites, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode()


def write_junit(path: Path, rec: dict[str, Any], order: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit(rec, order))
