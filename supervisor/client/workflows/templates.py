"""Workflow templates: Jinja2 in its sandbox, checked against the workflow before a run.

Why Jinja2: prompts are written by people who know it (Ansible, dbt, Home Assistant), and a
look-alike that rejects ``| upper``, ``{% else %}`` or ``{% for %}`` only surprises them. Why the
sandbox: a workflow file may come from someone else, and ``{{ ''.__class__.__mro__ }}`` must not
reach Python's internals; answers are values, never templates, so an agent cannot inject one.
``StrictUndefined``: a misspelt name is an error naming the step and the name, not an empty
string in a prompt that an agent then works on.

The names a template sees: ``inputs.NAME``, ``steps.NAME.answer|agent|task|round``, ``round``,
``run.id``, ``workflow.name`` (``steps.NAME.error``: why a failed step failed, for its
``on_failure`` handler). A step's answer is ``""`` until the step has run, so
``{% if steps.review.answer %}`` tells a first round from a later one.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

TOP_NAMES = ("inputs", "steps", "round", "run", "workflow")
STEP_FIELDS = ("answer", "agent", "task", "round", "error")
FIELDS = {"run": ("id",), "workflow": ("name",)}
USAGE = "use inputs.NAME, steps.NAME.answer|agent|task|round|error, round, run.id, workflow.name"
MAX_TEXT = 1 << 20
"""The longest string or list `*` may build (1 MiB): `{{ 'x' * 10**10 }}` is refused, not run."""


class Names:
    """A namespace for templates: ``.NAME`` and ``["NAME"]`` give its values and nothing else
    (a dict would answer ``steps.items`` with its method, and a step may be called ``items``)."""

    __slots__ = ("_path", "_values")

    def __init__(self, path: str, values: dict[str, Any]) -> None:
        self._path = path
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __str__(self) -> str:
        return self._path


class _Strict(StrictUndefined):
    """StrictUndefined whose message names the full path: ``steps.plan has no 'answr'``."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj = self._undefined_obj
        if isinstance(obj, Names) and not self._undefined_hint:
            return f"{obj._path} has no {self._undefined_name!r}"
        return str(super()._undefined_message)


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        """Refuse the two operators that can eat the machine from a one-line template."""
        if operator_ == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise SecurityError("exponent too large (at most 64)")
            return left**right
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_TEXT:
                raise SecurityError(f"the result would be longer than {MAX_TEXT} items")
        return operator.mul(left, right)


ENV = _Sandbox(undefined=_Strict, autoescape=False, keep_trailing_newline=True)


class TemplateProblem(ValueError):
    """A template that does not parse or does not render: one line, no traceback."""


@functools.lru_cache(maxsize=256)
def _compile(template: str) -> Any:
    try:
        return ENV.from_string(template)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(_syntax(exc, template)) from None


def _syntax(exc: TemplateSyntaxError, template: str) -> str:
    where = f" (line {exc.lineno} of the template)" if template.count("\n") else ""
    return _one_line(f"template syntax: {exc.message}{where}")


def render(template: str, ctx: dict[str, Any]) -> str:
    """`template` filled from `ctx` (see `context`); a TemplateProblem says what is wrong."""
    try:
        return str(_compile(template).render(ctx))
    except TemplateProblem:
        raise
    except SecurityError as exc:
        raise TemplateProblem(f"not allowed in a template: {exc}") from None
    except TemplateError as exc:
        raise TemplateProblem(_one_line(str(exc.message or exc))) from None
    except Exception as exc:  # a filter's own error (`truncate(2)` asserts): the template's problem
        raise TemplateProblem(_one_line(f"{type(exc).__name__}: {exc}")) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def context(
    inputs: dict[str, str], steps: dict[str, dict[str, str]], round_: str, run_id: str, workflow: str
) -> dict[str, Any]:
    """The names a template sees, as `Names` (``steps.NAME.answer`` …)."""
    return {
        "inputs": Names("inputs", dict(inputs)),
        "steps": Names("steps", {n: Names(f"steps.{n}", dict(f)) for n, f in steps.items()}),
        "round": round_,
        "run": Names("run", {"id": run_id}),
        "workflow": Names("workflow", {"name": workflow}),
    }


def references(template: str) -> tuple[list[str], list[tuple[str, ...]]]:
    """What a template uses, for the checks made before a run: the unknown top-level names,
    and each ``inputs.X`` / ``steps.X.FIELD`` / ``run.X`` path (``steps.X`` alone when the field
    is not a constant). Raises TemplateProblem when it does not parse."""
    try:
        ast = ENV.parse(template)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(_syntax(exc, template)) from None
    unknown = sorted(meta.find_undeclared_variables(ast) - set(TOP_NAMES) - set(ENV.globals))
    paths: list[tuple[str, ...]] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        path = _path(node)
        if path and len(path) >= 2 and path[0] in TOP_NAMES and path not in paths:
            paths.append(path)
    # keep only the longest path of each chain (steps.a.answer, not also steps.a)
    paths = [p for p in paths if not any(q != p and q[: len(p)] == p for q in paths)]
    return unknown, paths


def _path(node: nodes.Node) -> tuple[str, ...] | None:
    """``steps.a.answer`` / ``steps["a"]["answer"]`` as ("steps", "a", "answer"); None when a
    part is not a constant name."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        head = _path(node.node)
        return (*head, node.attr) if head else None
    if isinstance(node, nodes.Getitem) and isinstance(getattr(node.arg, "value", None), str):
        head = _path(node.node)
        return (*head, node.arg.value) if head and isinstance(node.arg, nodes.Const) else None
    return None


def check_path(path: tuple[str, ...], inputs: set[str], steps: set[str]) -> str | None:
    """What is wrong with one used path, or None; the step order is checked by the caller."""
    top, name = path[0], path[1]
    if top == "inputs":
        if name not in inputs:
            known = ", ".join(sorted(inputs)) or "none"
            return f"no input {name!r} (inputs: {known}; declare it under [inputs])"
    elif top == "steps":
        if name not in steps:
            return f"no step {name!r}"
        if len(path) > 2 and path[2] not in STEP_FIELDS:
            return f"steps.{name} has no {path[2]!r}; {USAGE}"
    elif top in FIELDS and name not in FIELDS[top]:
        return f"{top} has no {name!r}; {USAGE}"
    elif top == "round":
        return f"round is a number, it has no {name!r}"
    return None
