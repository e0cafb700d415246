"""Workflow files: named steps in a DAG (the model and its parser; `runner` runs one).

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
    save = "out/plan.md"           # the answer is written here (templated; inside the run's folder)

    [steps.review]
    to = "role:coding"
    needs = ["plan"]
    prompt = "Review: {{ steps.plan.answer }}. Reply APPROVED or CHANGES REQUESTED."
    retries = 1
    [steps.review.loop]            # the review sends the plan back, at most twice
    back_to = "plan"
    when = { contains = "CHANGES REQUESTED" }
    max = 2

Templates are Jinja2, sandboxed (`templates`): ``{{ inputs.NAME }}``, ``{{ steps.NAME.answer }}``
(also ``.agent``, ``.task``, ``.round``), ``{{ round }}``, ``{{ run.id }}``, ``{{ workflow.name }}``,
filters, ``{% if %}``/``{% else %}``, ``{% for %}``. Conditions (``when``, ``fail_if``, ``stop_if``,
``loop.when``) are tables with one of ``contains``, ``not_contains``, ``regex``, and an
optional ``step`` (default: the step's own answer; for ``when``, the step must be named).

Where a run executes: in the client (``staff run``, `runner.Runner`), talking to the daemon
over its socket; its durable record is `records`'.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.client.workflows import templates
from supervisor.util.tomlpos import TomlPositions

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
    "on_failure",
}
LOOP_KEYS = {"back_to", "when", "max", "after_max"}
COND_KEYS = {"step", "contains", "not_contains", "regex"}
WORKFLOW_KEYS = {"name", "description", "timeout", "team"}
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
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
    on_failure: str = "fail"
    """When the step fails for good: ``fail`` the run, ``continue`` it (what needs this step is
    skipped), or the name of a step that runs only then (a handler: it reads
    ``{{ steps.NAME.error }}``; skipped when this step does not fail)."""
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

    def failure_sources(self, name: str) -> set[str]:
        """The steps whose `on_failure` names `name` (it handles their failure)."""
        return {s.name for s in self.steps.values() if s.on_failure == name}

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
Err = Callable[[tuple[str, ...], str], "WorkflowError"]
"""Makes the error for a mistake at a key path: ``err(("steps", "a", "prompt"), "…")``."""


def load(path: Path) -> Workflow:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowError(f"{path}: no such workflow file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"{path}: cannot read: {exc}") from None
    return parse(text, str(path))


def parse(text: str, source: str) -> Workflow:
    """Check a workflow file and build its model; the first mistake raises, with its line."""
    data = _toml(text, source)
    where = TomlPositions(text)

    def err(path: tuple[str, ...], msg: str) -> WorkflowError:
        return WorkflowError(f"{source}:{where.nearest(*path)}: {msg}")

    unknown = sorted(set(data) - {"workflow", "inputs", "steps"})
    if unknown:
        raise WorkflowError(f"{source}:1: unknown section {unknown[0]!r}; known: workflow, inputs, steps")
    name, description, default_timeout, team = _meta(data.get("workflow", {}), source, err)
    inputs = _inputs(data.get("inputs", {}), err)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        raise WorkflowError(
            f"{source}:1: no steps; add at least one [steps.NAME] table with `to` and `prompt`"
        )
    steps: dict[str, Step] = {}
    for sname, raw in raw_steps.items():
        step = _step(sname, raw, default_timeout, err)
        step.line = where.nearest("steps", sname)
        steps[sname] = step
    wf = Workflow(name, steps, inputs, source, text, description, team)
    _check_graph(wf, err)
    return wf


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+), column (\d+)", str(exc))
        line = m.group(1) if m else str(max(1, len(text.splitlines())))
        msg = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)", "", str(exc))
        raise WorkflowError(f"{source}:{line}: TOML syntax error: {msg}") from None


def _meta(meta: Any, source: str, err: Err) -> tuple[str, str, float, str | None]:
    """[workflow]: its name, description, default step timeout and team file."""
    if not isinstance(meta, dict):
        raise err(("workflow",), "[workflow] must be a table")
    for k in meta:
        if k not in WORKFLOW_KEYS:
            raise err(
                ("workflow", k), f"workflow: unknown key {k!r}; known: {', '.join(sorted(WORKFLOW_KEYS))}"
            )
    name = meta.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise err(("workflow", "name"), "workflow.name must be a string")
    timeout = meta.get("timeout", DEFAULT_TIMEOUT)
    if not _positive(timeout):
        raise err(("workflow", "timeout"), "workflow.timeout must be a positive number of seconds")
    team = meta.get("team")
    if team is not None:
        if not isinstance(team, str):
            raise err(("workflow", "team"), "workflow.team must be a path (string)")
        team = str((Path(source).parent / os.path.expanduser(team)).resolve())
    return name, str(meta.get("description", "")), float(timeout), team


def _inputs(raw_inputs: Any, err: Err) -> dict[str, str | None]:
    """[inputs]: name → default (None: required)."""
    if not isinstance(raw_inputs, dict):
        raise err(("inputs",), "[inputs] must be a table")
    inputs: dict[str, str | None] = {}
    for key, value in raw_inputs.items():
        if isinstance(value, str):
            inputs[key] = value
        elif isinstance(value, dict) and set(value) <= {"default", "description"}:
            d = value.get("default")
            if d is not None and not isinstance(d, str):
                raise err(("inputs", key, "default"), f"inputs.{key}.default must be a string")
            inputs[key] = d
        else:
            raise err(("inputs", key), f"inputs.{key}: a string (the default) or {{ default, description }}")
    return inputs


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _step(sname: str, raw: Any, default_timeout: float, err: Err) -> Step:
    """One [steps.NAME] table: its target, prompt, needs, limits, conditions and loop."""
    table = f"steps.{sname}"
    at = ("steps", sname)
    if not NAME_RE.fullmatch(sname):
        raise err(at, f"bad step name {sname!r}: letters, digits, - and _, starting with a letter")
    if not isinstance(raw, dict):
        raise err(at, f"{table} must be a table")
    for k in raw:
        if k not in STEP_KEYS:
            raise err((*at, k), f"{table}: unknown key {k!r}; known: {', '.join(sorted(STEP_KEYS))}")
    targets = [k for k in ("to", "agent", "role") if k in raw]
    if len(targets) != 1:
        raise err(at, f"{table}: needs exactly one of `to` (agent, role:NAME or any), `agent`, `role`")
    tval = raw[targets[0]]
    if not isinstance(tval, str) or not tval:
        raise err((*at, targets[0]), f"{table}.{targets[0]} must be a string")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise err((*at, "prompt"), f"{table}: needs a `prompt` (a string, may use {{{{ … }}}} templates)")
    needs = raw.get("needs", [])
    if isinstance(needs, str):
        needs = [needs]
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise err((*at, "needs"), f"{table}.needs must be a list of step names")
    timeout = raw.get("timeout", default_timeout)
    if not _positive(timeout):
        raise err((*at, "timeout"), f"{table}.timeout must be a positive number of seconds")
    retries = raw.get("retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 20:
        raise err((*at, "retries"), f"{table}.retries must be an integer from 0 to 20")
    save = raw.get("save")
    if save is not None and (not isinstance(save, str) or not save):
        raise err((*at, "save"), f"{table}.save must be a file path (string)")
    if save is not None and not _inside(save):
        raise err((*at, "save"), f"{table}.save: {save!r} must be a relative path inside the run's folder")
    step = Step(
        name=sname,
        to=f"role:{tval}" if targets[0] == "role" else tval,
        prompt=prompt,
        needs=list(needs),
        timeout=float(timeout),
        retries=retries,
        save=save,
    )
    for key in ("when", "fail_if", "stop_if"):
        if key in raw:
            setattr(step, key, _condition(raw[key], f"{table}.{key}", functools.partial(err, (*at, key))))
    if step.when is not None and step.when.step is None:
        raise err((*at, "when"), f'{table}.when: name the step whose answer decides (`step = "…"`)')
    if "loop" in raw:
        step.loop = _loop(raw["loop"], (*at, "loop"), err)
    if "on_failure" in raw:
        value = raw["on_failure"]
        if not isinstance(value, str) or not value:
            raise err((*at, "on_failure"), f'{table}.on_failure must be "fail", "continue" or a step name')
        step.on_failure = value
    return step


def _loop(lraw: Any, at: tuple[str, ...], err: Err) -> Loop:
    ltable = ".".join(at)
    if not isinstance(lraw, dict):
        raise err(at, f"{ltable} must be a table")
    for k in lraw:
        if k not in LOOP_KEYS:
            raise err((*at, k), f"{ltable}: unknown key {k!r}; known: {', '.join(sorted(LOOP_KEYS))}")
    back = lraw.get("back_to")
    if not isinstance(back, str):
        raise err((*at, "back_to"), f"{ltable}.back_to: the step to run again (a step name)")
    if "when" not in lraw:
        raise err(at, f"{ltable}: needs `when` (the condition that sends the work back)")
    cond = _condition(lraw["when"], f"{ltable}.when", functools.partial(err, (*at, "when")))
    lmax = lraw.get("max", 2)
    if not isinstance(lmax, int) or isinstance(lmax, bool) or not 1 <= lmax <= 100:
        raise err((*at, "max"), f"{ltable}.max must be an integer from 1 to 100")
    after = lraw.get("after_max", "continue")
    if after not in ("continue", "fail"):
        raise err((*at, "after_max"), f"{ltable}.after_max must be 'continue' or 'fail'")
    return Loop(back, cond, lmax, after)


def _inside(path: str) -> bool:
    """A relative path that stays below its folder (no leading /, ~ or `..` part)."""
    p = Path(path)
    return not (p.is_absolute() or path.startswith("~") or ".." in p.parts)


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


def _check_graph(wf: Workflow, err: Err) -> None:
    """Needs name real steps and make no cycle; conditions, loops and templates refer only
    to steps that run before (or loop back to) the step."""
    for s in wf.steps.values():
        table = f"steps.{s.name}"
        for n in s.needs:
            if n not in wf.steps:
                raise err(
                    ("steps", s.name, "needs"),
                    f"{table}.needs: unknown step {n!r} (steps: {', '.join(wf.steps)})",
                )
            if n == s.name:
                raise err(("steps", s.name, "needs"), f"{table}.needs: a step cannot need itself")
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
        raise err(("steps", first, "needs"), f"steps.{first}.needs: a cycle through {' → '.join(left)}")
    for s in wf.steps.values():
        table = f"steps.{s.name}"
        anc = wf.ancestors(s.name)
        handler = s.on_failure
        if handler not in ("fail", "continue"):
            at = ("steps", s.name, "on_failure")
            if handler not in wf.steps:
                raise err(at, f'{table}.on_failure: no step {handler!r}; use "fail", "continue" or a '
                                 f'step name (steps: {", ".join(wf.steps)})')
            if handler == s.name or handler in anc:
                raise err(at, f"{table}.on_failure: {handler!r} runs before this step; "
                                 "name a step that runs after it")
    for s in wf.steps.values():
        table = f"steps.{s.name}"
        anc = wf.ancestors(s.name) | wf.failure_sources(s.name)
        looped_by = {o.name for o in wf.steps.values() if o.loop and (o.loop.back_to in anc | {s.name})}
        for cond_key in ("when", "fail_if", "stop_if"):
            cond = getattr(s, cond_key)
            if cond is not None and cond.step is not None and cond.step not in anc | {s.name}:
                raise err(
                    ("steps", s.name, cond_key),
                    f"{table}.{cond_key}.step: {cond.step!r} is not a step this one needs",
                )
        if s.loop is not None and s.loop.back_to != s.name and s.loop.back_to not in anc:
            raise err(
                ("steps", s.name, "loop", "back_to"),
                f"{table}.loop.back_to: {s.loop.back_to!r} must be this step or one it needs",
            )
        for where, tmpl in (("prompt", s.prompt), ("save", s.save or "")):
            problem = _check_template(wf, tmpl, s.name, anc | looped_by)
            if problem:
                raise err(("steps", s.name, where), f"{table}.{where}: {problem}")


def _check_template(wf: Workflow, template: str, step: str, before: set[str]) -> str | None:
    """The first problem of a template (syntax, an unknown name, a step that has not run)."""
    try:
        unknown, paths = templates.references(template)
    except templates.TemplateProblem as exc:
        return str(exc)
    if unknown:
        return f"unknown name {unknown[0]!r}; {templates.USAGE}"
    for path in paths:
        problem = templates.check_path(path, set(wf.inputs), set(wf.steps))
        if problem is None and path[0] == "steps" and path[1] not in before:
            problem = f"step {path[1]!r} does not run before {step!r}: add it to `needs`"
        if problem:
            return f"{{{{ {'.'.join(path)} }}}}: {problem}"
    return None


def render(template: str, ctx: dict[str, Any], where: str = "template") -> str:
    """A prompt or save path filled in (`templates.render`); a WorkflowError names `where`."""
    try:
        return templates.render(template, ctx)
    except templates.TemplateProblem as exc:
        raise WorkflowError(f"{where}: {exc}") from None


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise WorkflowError(f"--input {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out
