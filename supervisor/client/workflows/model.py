"""Workflow files: named steps in a DAG, run against the daemon from the client side.

A workflow is a TOML file (see ``examples/feature.toml``)::

    [workflow]
    name = "feature"
    timeout = 1800                 # default per-step timeout, seconds

    [inputs]
    feature = { description = "what to build" }          # required
    style = { default = "small commits" }                # optional

    [steps.plan]
    to = "role:planning"           # an agent name, role:NAME or any
    prompt = "Plan {{ inputs.feature }}"
    save = "out/plan.md"           # the answer is written here (templated, relative to the cwd)

    [steps.review]
    to = "role:coding"
    needs = ["plan"]
    prompt = "Review: {{ steps.plan.answer }}. Reply APPROVED or CHANGES REQUESTED."
    retries = 1
    [steps.review.loop]            # the review sends the plan back, at most twice
    back_to = "plan"
    when = { contains = "CHANGES REQUESTED" }
    max = 2

Templates: ``{{ inputs.NAME }}``, ``{{ steps.NAME.answer }}`` (also ``.agent``, ``.task``,
``.round``), ``{{ round }}``, ``{{ run.id }}``, ``{{ workflow.name }}`` and one-level
``{% if steps.NAME.answer %}…{% endif %}``. Conditions (``when``, ``fail_if``, ``stop_if``,
``loop.when``) are tables with one of ``contains``, ``not_contains``, ``regex``, and an
optional ``step`` (default: the step's own answer; for ``when``, the step must be named).

Where a run executes: here, in the client (``staff run``), talking to the daemon over its
socket. The daemon stays a task router; the runner keeps a durable record of the run in
``<state dir>/runs/<RUN>.json``, rewritten atomically after every step change, so a run
whose daemon (or runner) died is continued with ``staff run --resume RUN`` from its last
finished step: finished steps are never redone, a step whose task the daemon still knows
is re-attached, any other unfinished step is submitted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import secrets
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.protocol import ERR_NO_DAEMON, MAX_FRAME, TASK_FINAL, ProtocolError, encode
from supervisor.util.atomic import write_json_atomic

STEP_KEYS = {
    "to",
    "agent",
    "role",
    "prompt",
    "needs",
    "timeout",
    "retries",
    "save",
    "when",
    "fail_if",
    "stop_if",
    "loop",
}
LOOP_KEYS = {"back_to", "when", "max", "after_max"}
COND_KEYS = {"step", "contains", "not_contains", "regex"}
WORKFLOW_KEYS = {"name", "description", "timeout", "team"}
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
TEMPLATE_RE = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
IF_RE = re.compile(r"\{%\s*if\s+([^%]*?)\s*%\}(.*?)\{%\s*endif\s*%\}", re.S)
REF_RE = re.compile(
    r"(inputs\.[A-Za-z0-9_-]+|steps\.[A-Za-z0-9_-]+\.(answer|agent|task|round)|round|run\.id|workflow\.name)"
)
STEP_FINAL = frozenset({"done", "failed", "skipped", "cancelled"})
DEFAULT_TIMEOUT = 3600.0


class WorkflowError(Exception):
    """A mistake in a workflow file, with ``file:line:`` in front."""


@dataclass
class Condition:
    step: str | None
    contains: str | None = None
    not_contains: str | None = None
    regex: re.Pattern[str] | None = None

    def test(self, text: str) -> bool:
        if self.contains is not None and self.contains not in text:
            return False
        if self.not_contains is not None and self.not_contains in text:
            return False
        return not (self.regex is not None and not self.regex.search(text))

    def describe(self) -> str:
        parts = []
        if self.contains is not None:
            parts.append(f"contains {self.contains!r}")
        if self.not_contains is not None:
            parts.append(f"does not contain {self.not_contains!r}")
        if self.regex is not None:
            parts.append(f"matches /{self.regex.pattern}/")
        return f"{self.step or 'the answer'} " + " and ".join(parts)


@dataclass
class Loop:
    back_to: str
    when: Condition
    max: int = 2
    after_max: str = "continue"  # or "fail"


@dataclass
class Step:
    name: str
    to: str
    prompt: str
    needs: list[str] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 0
    save: str | None = None
    when: Condition | None = None
    fail_if: Condition | None = None
    stop_if: Condition | None = None
    loop: Loop | None = None
    line: int = 1


@dataclass
class Workflow:
    name: str
    steps: dict[str, Step]
    inputs: dict[str, str | None]  # name → default (None: required)
    source: str
    text: str
    description: str = ""
    team: str | None = None

    def order(self) -> list[str]:
        """The steps in a topological order (file order among equals)."""
        done: list[str] = []
        pending = list(self.steps)
        while pending:
            for name in pending:
                if all(n in done for n in self.steps[name].needs):
                    done.append(name)
                    pending.remove(name)
                    break
        return done

    def ancestors(self, name: str) -> set[str]:
        out: set[str] = set()
        stack = list(self.steps[name].needs)
        while stack:
            n = stack.pop()
            if n not in out:
                out.add(n)
                stack.extend(self.steps[n].needs)
        return out

    def loop_body(self, name: str) -> list[str]:
        """The steps a loop on `name` runs again: back_to, what lies between, and `name`."""
        loop = self.steps[name].loop
        assert loop is not None
        anc = self.ancestors(name)
        return [
            s
            for s in self.order()
            if s in (loop.back_to, name) or (s in anc and loop.back_to in self.ancestors(s))
        ]

    def resolve_inputs(self, given: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(given) - set(self.inputs))
        if unknown:
            known = ", ".join(self.inputs) or "none"
            raise WorkflowError(f"{self.source}: unknown input {unknown[0]!r} (inputs: {known})")
        out: dict[str, str] = {}
        for name, default in self.inputs.items():
            if name in given:
                out[name] = given[name]
            elif default is not None:
                out[name] = default
            else:
                raise WorkflowError(f"{self.source}: input {name!r} is required: pass --input {name}=VALUE")
        return out


# -- parsing ---------------------------------------------------------------------------------
def _table_line(lines: list[str], path: str) -> int | None:
    """The 1-based line of ``[path]`` (dots may carry spaces/quotes), or None."""
    parts = [re.escape(p) for p in path.split(".")]
    pat = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(rf"\"?{p}\"?" for p in parts) + r"\s*\]")
    return next((i + 1 for i, line in enumerate(lines) if pat.match(line)), None)


def _key_line(lines: list[str], table: str, key: str | None) -> int:
    start = _table_line(lines, table)
    if start is None:
        # an inline table (`plan = { … }`) or a dotted key: find the key's own line
        last = table.split(".")[-1]
        for i, line in enumerate(lines):
            if re.match(rf"^\s*\"?{re.escape(last)}\"?\s*=", line):
                return i + 1
        return 1
    if key is None:
        return start
    for i in range(start, len(lines)):
        if lines[i].lstrip().startswith("[") and i != start - 1:
            break
        if re.match(rf"^\s*\"?{re.escape(key)}\"?\s*[=.]", lines[i]):
            return i + 1
    return start


def load(path: Path) -> Workflow:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowError(f"{path}: no such workflow file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"{path}: cannot read: {exc}") from None
    return parse(text, str(path))


def parse(text: str, source: str) -> Workflow:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+), column (\d+)", str(exc))
        line = m.group(1) if m else str(max(1, len(text.splitlines())))
        msg = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)", "", str(exc))
        raise WorkflowError(f"{source}:{line}: TOML syntax error: {msg}") from None
    lines = text.splitlines()

    def err(table: str, key: str | None, msg: str) -> WorkflowError:
        return WorkflowError(f"{source}:{_key_line(lines, table, key)}: {msg}")

    unknown = sorted(set(data) - {"workflow", "inputs", "steps"})
    if unknown:
        raise WorkflowError(f"{source}:1: unknown section {unknown[0]!r}; known: workflow, inputs, steps")
    meta = data.get("workflow", {})
    if not isinstance(meta, dict):
        raise err("workflow", None, "[workflow] must be a table")
    for k in meta:
        if k not in WORKFLOW_KEYS:
            raise err(
                "workflow", k, f"workflow: unknown key {k!r}; known: {', '.join(sorted(WORKFLOW_KEYS))}"
            )
    name = meta.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise err("workflow", "name", "workflow.name must be a string")
    default_timeout = meta.get("timeout", DEFAULT_TIMEOUT)
    if (
        not isinstance(default_timeout, int | float)
        or isinstance(default_timeout, bool)
        or default_timeout <= 0
    ):
        raise err("workflow", "timeout", "workflow.timeout must be a positive number of seconds")
    team = meta.get("team")
    if team is not None:
        if not isinstance(team, str):
            raise err("workflow", "team", "workflow.team must be a path (string)")
        team = str((Path(source).parent / os.path.expanduser(team)).resolve())

    inputs: dict[str, str | None] = {}
    raw_inputs = data.get("inputs", {})
    if not isinstance(raw_inputs, dict):
        raise err("inputs", None, "[inputs] must be a table")
    for key, value in raw_inputs.items():
        if isinstance(value, str):
            inputs[key] = value
        elif isinstance(value, dict) and set(value) <= {"default", "description"}:
            d = value.get("default")
            if d is not None and not isinstance(d, str):
                raise err(f"inputs.{key}", "default", f"inputs.{key}.default must be a string")
            inputs[key] = d
        else:
            raise err(
                f"inputs.{key}", None, f"inputs.{key}: a string (the default) or {{ default, description }}"
            )

    raw_steps = data.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        raise WorkflowError(
            f"{source}:1: no steps; add at least one [steps.NAME] table with `to` and `prompt`"
        )
    steps: dict[str, Step] = {}
    for sname, raw in raw_steps.items():
        table = f"steps.{sname}"
        if not NAME_RE.fullmatch(sname):
            raise err(
                table, None, f"bad step name {sname!r}: letters, digits, - and _, starting with a letter"
            )
        if not isinstance(raw, dict):
            raise err(table, None, f"{table} must be a table")
        for k in raw:
            if k not in STEP_KEYS:
                raise err(table, k, f"{table}: unknown key {k!r}; known: {', '.join(sorted(STEP_KEYS))}")
        targets = [k for k in ("to", "agent", "role") if k in raw]
        if len(targets) != 1:
            raise err(
                table, None, f"{table}: needs exactly one of `to` (agent, role:NAME or any), `agent`, `role`"
            )
        tval = raw[targets[0]]
        if not isinstance(tval, str) or not tval:
            raise err(table, targets[0], f"{table}.{targets[0]} must be a string")
        to = f"role:{tval}" if targets[0] == "role" else tval
        prompt = raw.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise err(table, "prompt", f"{table}: needs a `prompt` (a string, may use {{{{ … }}}} templates)")
        needs = raw.get("needs", [])
        if isinstance(needs, str):
            needs = [needs]
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            raise err(table, "needs", f"{table}.needs must be a list of step names")
        timeout = raw.get("timeout", default_timeout)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise err(table, "timeout", f"{table}.timeout must be a positive number of seconds")
        retries = raw.get("retries", 0)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 20:
            raise err(table, "retries", f"{table}.retries must be an integer from 0 to 20")
        save = raw.get("save")
        if save is not None and (not isinstance(save, str) or not save):
            raise err(table, "save", f"{table}.save must be a file path (string)")
        step = Step(
            name=sname,
            to=to,
            prompt=prompt,
            needs=list(needs),
            timeout=float(timeout),
            retries=retries,
            save=save,
            line=_key_line(lines, table, None),
        )
        for key in ("when", "fail_if", "stop_if"):
            if key in raw:
                setattr(step, key, _condition(raw[key], f"{table}.{key}", functools.partial(err, table, key)))
        if step.when is not None and step.when.step is None:
            raise err(table, "when", f'{table}.when: name the step whose answer decides (`step = "…"`)')
        if "loop" in raw:
            lraw = raw["loop"]
            ltable = f"{table}.loop"
            if not isinstance(lraw, dict):
                raise err(table, "loop", f"{ltable} must be a table")
            for k in lraw:
                if k not in LOOP_KEYS:
                    raise err(
                        ltable, k, f"{ltable}: unknown key {k!r}; known: {', '.join(sorted(LOOP_KEYS))}"
                    )
            back = lraw.get("back_to")
            if not isinstance(back, str):
                raise err(ltable, "back_to", f"{ltable}.back_to: the step to run again (a step name)")
            if "when" not in lraw:
                raise err(ltable, None, f"{ltable}: needs `when` (the condition that sends the work back)")
            cond = _condition(lraw["when"], f"{ltable}.when", functools.partial(err, ltable, "when"))
            lmax = lraw.get("max", 2)
            if not isinstance(lmax, int) or isinstance(lmax, bool) or not 1 <= lmax <= 100:
                raise err(ltable, "max", f"{ltable}.max must be an integer from 1 to 100")
            after = lraw.get("after_max", "continue")
            if after not in ("continue", "fail"):
                raise err(ltable, "after_max", f"{ltable}.after_max must be 'continue' or 'fail'")
            step.loop = Loop(back, cond, lmax, after)
        steps[sname] = step

    wf = Workflow(name, steps, inputs, source, text, str(meta.get("description", "")), team)
    _check_graph(wf, err)
    return wf


def _condition(raw: Any, where: str, fail: Callable[[str], WorkflowError]) -> Condition:
    if not isinstance(raw, dict) or not raw:
        raise fail(f'{where} must be a table like {{ contains = "TEXT" }}')
    for k in raw:
        if k not in COND_KEYS:
            raise fail(f"{where}: unknown key {k!r}; known: {', '.join(sorted(COND_KEYS))}")
    if not set(raw) & {"contains", "not_contains", "regex"}:
        raise fail(f"{where}: needs one of contains, not_contains, regex")
    for k, v in raw.items():
        if not isinstance(v, str):
            raise fail(f"{where}.{k} must be a string")
    regex = None
    if "regex" in raw:
        try:
            regex = re.compile(raw["regex"], re.M)
        except re.error as exc:
            raise fail(f"{where}.regex: {exc}") from None
    return Condition(raw.get("step"), raw.get("contains"), raw.get("not_contains"), regex)


def _check_graph(wf: Workflow, err: Callable[[str, str | None, str], WorkflowError]) -> None:
    for s in wf.steps.values():
        table = f"steps.{s.name}"
        for n in s.needs:
            if n not in wf.steps:
                raise err(table, "needs", f"{table}.needs: unknown step {n!r} (steps: {', '.join(wf.steps)})")
            if n == s.name:
                raise err(table, "needs", f"{table}.needs: a step cannot need itself")
    # cycles: Kahn's algorithm; whatever is left is on a cycle
    left = dict.fromkeys(wf.steps)
    while True:
        free = [n for n in left if not any(m in left for m in wf.steps[n].needs)]
        if not free:
            break
        for n in free:
            del left[n]
    if left:
        first = next(iter(left))
        raise err(f"steps.{first}", "needs", f"steps.{first}.needs: a cycle through {' → '.join(left)}")
    for s in wf.steps.values():
        table = f"steps.{s.name}"
        anc = wf.ancestors(s.name)
        looped_by = {o.name for o in wf.steps.values() if o.loop and (o.loop.back_to in anc | {s.name})}
        for cond_key in ("when", "fail_if", "stop_if"):
            cond = getattr(s, cond_key)
            if cond is not None and cond.step is not None and cond.step not in anc | {s.name}:
                raise err(
                    table, cond_key, f"{table}.{cond_key}.step: {cond.step!r} is not a step this one needs"
                )
        if s.loop is not None and s.loop.back_to != s.name and s.loop.back_to not in anc:
            raise err(
                f"{table}.loop",
                "back_to",
                f"{table}.loop.back_to: {s.loop.back_to!r} must be this step or one it needs",
            )
        for where, tmpl in (("prompt", s.prompt), ("save", s.save or "")):
            for ref in _refs(tmpl):
                problem = _check_ref(wf, ref, s.name, anc, looped_by)
                if problem:
                    raise err(table, where, f"{table}.{where}: {{{{ {ref} }}}}: {problem}")


def _refs(template: str) -> list[str]:
    refs = [m.group(1) for m in TEMPLATE_RE.finditer(template)]
    refs += [m.group(1) for m in IF_RE.finditer(template)]
    return refs


def _check_ref(wf: Workflow, ref: str, step: str, anc: set[str], looped_by: set[str]) -> str | None:
    if not REF_RE.fullmatch(ref):
        return (
            "unknown name; use inputs.NAME, steps.NAME.answer|agent|task|round, round, run.id, workflow.name"
        )
    if ref.startswith("inputs."):
        name = ref.split(".", 1)[1]
        if name not in wf.inputs:
            return f"no input {name!r} (inputs: {', '.join(wf.inputs) or 'none'}; declare it under [inputs])"
    elif ref.startswith("steps."):
        name = ref.split(".")[1]
        if name not in wf.steps:
            return f"no step {name!r}"
        if name not in anc and name not in looped_by:
            return f"step {name!r} does not run before {step!r}: add it to `needs`"
    return None


def render(template: str, ctx: dict[str, str]) -> str:
    """Fill ``{{ ref }}`` and ``{% if ref %}…{% endif %}`` from a flat name → text map."""

    def cond(m: re.Match[str]) -> str:
        return m.group(2) if ctx.get(m.group(1), "").strip() else ""

    return TEMPLATE_RE.sub(lambda m: ctx.get(m.group(1), ""), IF_RE.sub(cond, template))


# -- the run record ---------------------------------------------------------------------------
def runs_dir(home: Path) -> Path:
    return home / "runs"


def new_run_id() -> str:
    return time.strftime("R-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def save_record(home: Path, rec: dict[str, Any]) -> None:
    d = runs_dir(home)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_json_atomic(d / f"{rec['id']}.json", rec)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_record(home: Path, run_id: str) -> dict[str, Any]:
    path = runs_dir(home) / f"{run_id}.json"
    try:
        rec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"unknown run {run_id!r} (`staff runs` lists them)") from None
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"{path}: unreadable run record: {exc}") from None
    if rec.get("state") == "running" and not _pid_alive(rec.get("pid")):
        rec["state"] = "interrupted"
    return rec


def list_runs(home: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(runs_dir(home).glob("R-*.json")):
        with contextlib.suppress(WorkflowError):
            out.append(load_record(home, path.stem))
    out.sort(key=lambda r: r.get("started") or 0)
    return out


# -- talking to the daemon, asynchronously ------------------------------------------------------
class AsyncClient:
    """Many concurrent requests on one socket; replies and event frames routed by id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[
            int, tuple[asyncio.Future[dict[str, Any]], Callable[[dict[str, Any]], None] | None]
        ] = {}
        self._next = 0
        self._task: asyncio.Task[None] | None = None
        self._lost: ProtocolError | None = None

    async def connect(self) -> AsyncClient:
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                str(self.path), limit=MAX_FRAME * 4
            )
        except (FileNotFoundError, ConnectionRefusedError):
            raise ProtocolError(
                ERR_NO_DAEMON, f"no daemon is running at {self.path} (start one with `staff up`)"
            ) from None
        self._task = asyncio.create_task(self._read())
        return self

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._writer is not None:
            self._writer.close()

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                frame = json.loads(line)
                entry = self._pending.get(frame.get("id"))
                if entry is None:
                    continue
                fut, on_event = entry
                if "event" in frame:
                    if on_event is not None:
                        on_event(frame["event"])
                elif not fut.done():
                    fut.set_result(frame)
        except (ConnectionError, ValueError):
            pass
        self._lost = ProtocolError(ERR_NO_DAEMON, "lost the daemon (it stopped or was killed)")
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(self._lost)

    async def call(
        self, cmd: str, on_event: Callable[[dict[str, Any]], None] | None = None, **fields: Any
    ) -> Any:
        if self._lost is not None:
            raise self._lost
        assert self._writer is not None
        self._next += 1
        rid = self._next
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (fut, on_event)
        try:
            self._writer.write(
                encode({"id": rid, "cmd": cmd, **{k: v for k, v in fields.items() if v is not None}})
            )
            try:
                await self._writer.drain()
            except ConnectionError as exc:
                raise ProtocolError(ERR_NO_DAEMON, f"lost the daemon: {exc}") from exc
            reply = await fut
        finally:
            self._pending.pop(rid, None)
        if not reply.get("ok"):
            e = reply.get("error") or {}
            raise ProtocolError(e.get("code", "internal"), e.get("message", "error"))
        return reply.get("result")


# -- the runner ----------------------------------------------------------------------------------
Reporter = Callable[[dict[str, Any]], None]


class StepFailed(Exception):
    pass


class Runner:
    """Runs (or resumes) one workflow run against the daemon; returns the exit code."""

    def __init__(
        self,
        wf: Workflow,
        home: Path,
        sock: Path,
        *,
        inputs: dict[str, str] | None = None,
        record: dict[str, Any] | None = None,
        report: Reporter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.wf = wf
        self.home = home
        self.sock = sock
        self.report = report or (lambda ev: None)
        self.clock = clock
        if record is None:
            record = {
                "id": new_run_id(),
                "workflow": wf.name,
                "file": wf.source,
                "source": wf.text,
                "inputs": wf.resolve_inputs(inputs or {}),
                "cwd": os.getcwd(),
                "state": "running",
                "started": clock(),
                "finished": None,
                "resumes": 0,
                "steps": {
                    name: {"state": "pending", "round": 1, "attempts": 0, "history": []} for name in wf.steps
                },
                "loops": {},
            }
        self.rec = record
        self.client: AsyncClient | None = None
        self._failed: str | None = None
        self._stopped: str | None = None

    @property
    def id(self) -> str:
        return str(self.rec["id"])

    def emit(self, kind: str, step: str | None = None, **data: Any) -> None:
        ev = {"kind": kind, "run": self.id, "time": self.clock(), **data}
        if step is not None:
            ev["step"] = step
        self.report(ev)

    def save(self) -> None:
        self.rec["pid"] = os.getpid()
        save_record(self.home, self.rec)

    def ctx(self, step: str) -> dict[str, str]:
        c = {f"inputs.{k}": v for k, v in self.rec["inputs"].items()}
        for name, st in self.rec["steps"].items():
            c[f"steps.{name}.answer"] = st.get("answer") or ""
            c[f"steps.{name}.agent"] = st.get("agent") or ""
            c[f"steps.{name}.task"] = st.get("task") or ""
            c[f"steps.{name}.round"] = str(st.get("round", 1))
        c["round"] = str(self.rec["steps"][step].get("round", 1))
        c["run.id"] = self.id
        c["workflow.name"] = self.wf.name
        return c

    async def run(self) -> int:
        """Run to the end. 0: every step done (or skipped); 1: a step failed or the run was cut."""
        resumed = self.rec["state"] != "running" or self.rec.get("resumes", 0) > 0
        self.rec["state"] = "running"
        self.rec["finished"] = None
        for st in self.rec["steps"].values():
            if st["state"] in ("failed", "cancelled"):
                st["state"] = "pending"
                st["attempts"] = 0
                st["task"] = None
            elif st["state"] in ("running", "interrupted"):  # cut: re-attach to its task or resubmit
                st["state"] = "pending"
        self.save()
        self.emit(
            "run_start",
            workflow=self.wf.name,
            steps=self.wf.order(),
            resumed=resumed,
            done=[n for n, s in self.rec["steps"].items() if s["state"] in ("done", "skipped")],
        )
        try:
            self.client = await AsyncClient(self.sock).connect()
        except ProtocolError as exc:
            return self._end("interrupted", exc.message)
        try:
            await self._schedule()
        except ProtocolError as exc:
            if exc.code == ERR_NO_DAEMON:
                return self._end("interrupted", f"{exc.message}; resume with `staff run --resume {self.id}`")
            raise
        except asyncio.CancelledError:
            self._end("interrupted", f"stopped; resume with `staff run --resume {self.id}`")
            raise
        finally:
            await self.client.close()
        if self._failed:
            return self._end("failed", self._failed)
        return self._end("done", self._stopped or "")

    def _end(self, state: str, message: str) -> int:
        for st in self.rec["steps"].values():
            if state == "interrupted" and st["state"] == "running":
                st["state"] = "interrupted"
        self.rec["state"] = state
        self.rec["finished"] = self.clock()
        self.rec["message"] = message
        self.save()
        self.emit("run_end", state=state, message=message, elapsed=self.rec["finished"] - self.rec["started"])
        return 0 if state == "done" else 1

    async def _schedule(self) -> None:
        steps = self.rec["steps"]
        running: dict[str, asyncio.Task[None]] = {}
        for st in steps.values():
            if st["state"] == "interrupted":
                st["state"] = "pending"  # re-attached or resubmitted below
        while True:
            if not self._failed and not self._stopped:
                for name in self.wf.order():
                    st = steps[name]
                    if st["state"] != "pending" or name in running:
                        continue
                    if not all(steps[n]["state"] in ("done", "skipped") for n in self.wf.steps[name].needs):
                        continue
                    step = self.wf.steps[name]
                    if step.when is not None:
                        assert step.when.step is not None
                        if not step.when.test(steps[step.when.step].get("answer") or ""):
                            st["state"] = "skipped"
                            st["error"] = f"skipped: {step.when.describe()} is false"
                            self.save()
                            self.emit("step", name, state="skipped", message=st["error"])
                            continue
                    running[name] = asyncio.create_task(self._run_step(step), name=f"step-{name}")
            if not running:
                break
            done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                name = next(n for n, r in running.items() if r is t)
                del running[name]
                exc = t.exception()
                if isinstance(exc, ProtocolError) and exc.code == ERR_NO_DAEMON:
                    for other in running.values():
                        other.cancel()
                    await asyncio.gather(*running.values(), return_exceptions=True)
                    raise exc
                if exc is not None:
                    raise exc
            if (self._failed or self._stopped) and running:
                await self._cancel_running(running)
        if self._stopped:
            for name, st in steps.items():
                if st["state"] == "pending":
                    st["state"] = "skipped"
                    st["error"] = f"skipped: {self._stopped}"
                    self.emit("step", name, state="skipped", message=st["error"])
            self.save()

    async def _cancel_running(self, running: dict[str, asyncio.Task[None]]) -> None:
        assert self.client is not None
        for name in list(running):
            tid = self.rec["steps"][name].get("task")
            if tid:
                with contextlib.suppress(ProtocolError):
                    await self.client.call("cancel", task=tid)
        await asyncio.gather(*running.values(), return_exceptions=True)
        running.clear()

    async def _run_step(self, step: Step) -> None:
        assert self.client is not None
        st = self.rec["steps"][step.name]
        st["state"] = "running"
        if st.get("started") is None:
            st["started"] = self.clock()
        while True:
            task = await self._attach_or_submit(step, st)
            result = await self._wait(step, st, task)
            if result["state"] == "done":
                answer = result.get("answer") or ""
                if step.fail_if is not None and step.fail_if.test(
                    self._cond_text(step.fail_if, step, answer)
                ):
                    result = {**result, "state": "failed", "error": f"fail_if: {step.fail_if.describe()}"}
                else:
                    self._finish(step, st, result)
                    return
            error = result.get("error") or result["state"]
            if st["attempts"] <= step.retries and not self._failed:
                self.emit(
                    "step",
                    step.name,
                    state="retry",
                    message=f"attempt {st['attempts']} {result['state']}: {error}",
                )
                st["task"] = None
                self.save()
                continue
            st["state"] = "cancelled" if self._failed and result["state"] == "cancelled" else "failed"
            st["error"] = error
            st["finished"] = self.clock()
            self.save()
            self.emit("step", step.name, state=st["state"], message=error, agent=result.get("agent"))
            if st["state"] == "failed" and not self._failed:
                self._failed = f"step {step.name!r} failed: {error}"
            return

    async def _attach_or_submit(self, step: Step, st: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None
        tid = st.get("task")
        if tid:
            try:
                task: dict[str, Any] = await self.client.call("task", task=tid)
                if task["state"] not in ("failed", "cancelled"):
                    self.emit("step", step.name, state="reattached", task=tid, agent=task.get("agent"))
                    return task
            except ProtocolError as exc:
                if exc.code == ERR_NO_DAEMON:
                    raise
        if not st.get("key"):
            # A new attempt. Its idempotency key is saved before the submit, so that a
            # submit whose reply was lost (the daemon died) is not run twice on resume.
            st["attempts"] += 1
            st["text"] = render(step.prompt, self.ctx(step.name))
            st["key"] = f"{self.id}:{step.name}:{st['round']}:{st['attempts']}"
            self.save()
        task = await self.client.call("submit", to=step.to, text=st["text"], key=st["key"])
        st["task"] = task["id"]
        st["key"] = None
        st["submitted"] = self.clock()
        self.save()
        self.emit(
            "step",
            step.name,
            state="queued",
            task=task["id"],
            to=step.to,
            round=st["round"],
            attempt=st["attempts"],
        )
        return task

    async def _wait(self, step: Step, st: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None
        if task["state"] in TASK_FINAL:
            return task
        last = {"state": task["state"]}

        def progress(ev: dict[str, Any]) -> None:
            t = ev.get("task")
            if ev.get("type") == "task" and t and t.get("id") == task["id"] and t["state"] != last["state"]:
                last["state"] = t["state"]
                if t["state"] not in TASK_FINAL:
                    st["agent"] = t.get("agent")
                    self.emit("step", step.name, state=t["state"], task=t["id"], agent=t.get("agent"))

        started = st.get("submitted") or self.clock()
        remaining = max(0.1, step.timeout - (self.clock() - started))
        result: dict[str, Any] = await self.client.call(
            "wait", on_event=progress, task=task["id"], timeout=remaining, progress=True
        )
        if result["state"] not in TASK_FINAL:
            with contextlib.suppress(ProtocolError):
                await self.client.call("cancel", task=task["id"])
            return {**result, "state": "failed", "error": f"timed out after {step.timeout:g}s"}
        return result

    def _cond_text(self, cond: Condition, step: Step, answer: str) -> str:
        if cond.step is None or cond.step == step.name:
            return answer
        return str(self.rec["steps"][cond.step].get("answer") or "")

    def _finish(self, step: Step, st: dict[str, Any], task: dict[str, Any]) -> None:
        answer = task.get("answer") or ""
        st.update(state="done", answer=answer, agent=task.get("agent"), finished=self.clock(), error=None)
        st["history"].append(
            {
                "round": st["round"],
                "task": task["id"],
                "agent": task.get("agent"),
                "text": st.get("text"),
                "answer": answer,
            }
        )
        if step.save:
            path = Path(self.rec.get("cwd") or ".") / render(step.save, self.ctx(step.name))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(answer + "\n", encoding="utf-8")
            st["saved"] = str(path)
        self.save()
        self.emit(
            "step",
            step.name,
            state="done",
            task=task["id"],
            agent=task.get("agent"),
            elapsed=st["finished"] - st["started"],
            answer=answer,
            saved=st.get("saved"),
        )
        if step.stop_if is not None and step.stop_if.test(self._cond_text(step.stop_if, step, answer)):
            self._stopped = f"stop_if on {step.name}: {step.stop_if.describe()}"
            self.emit("step", step.name, state="stop", message=self._stopped)
        if step.loop is not None and step.loop.when.test(self._cond_text(step.loop.when, step, answer)):
            n = self.rec["loops"].get(step.name, 0)
            if n < step.loop.max:
                self.rec["loops"][step.name] = n + 1
                body = self.wf.loop_body(step.name)
                for name in body:
                    s = self.rec["steps"][name]
                    s.update(
                        state="pending", round=s.get("round", 1) + 1, attempts=0, task=None, started=None
                    )
                self.save()
                self.emit(
                    "step",
                    step.name,
                    state="loop",
                    message=f"{step.loop.when.describe()}: back to {step.loop.back_to} "
                    f"(loop {n + 1} of at most {step.loop.max})",
                )
            elif step.loop.after_max == "fail":
                st["state"] = "failed"
                st["error"] = f"still {step.loop.when.describe()} after {step.loop.max} loops"
                self._failed = f"step {step.name!r} failed: {st['error']}"
                self.save()
                self.emit("step", step.name, state="failed", message=st["error"])
            else:
                self.emit(
                    "step",
                    step.name,
                    state="loop_end",
                    message=f"loop limit {step.loop.max} reached; going on",
                )


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise WorkflowError(f"--input {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out
