"""The folder tree is the architecture: each layer imports only the layers below it.

Read from the code's own imports (every `import`, at any depth, except those under
`if TYPE_CHECKING:` for annotations within a layer), so the rule stays true as code moves.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["base", "pty", "screen", "detect", "agent", "team", "daemon", "client"]
"""Bottom to top (supervisor/__init__.py has the map). `base`: states, events, protocol, util."""
TEAM_FEATURES = {"chief", "pool", "monitors"}
"""Features built on the team: the team's core (supervisor, config, journal…) never imports them."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(mod: str) -> str:
    parts = mod.split(".")
    if parts[0] == "hook":
        return "hook"
    if len(parts) == 1 or parts[1] in ("states", "events", "protocol", "util"):
        return "base"
    if parts[1] == "__main__":
        return "client"
    assert parts[1] in LAYERS, f"{mod}: a module outside the layers; add it to supervisor/__init__.py's map"
    return parts[1]


def imports(path: Path, name: str | None = None) -> list[tuple[str, int, bool]]:
    """(module, line, type_checking_only) for each import of supervisor or hook code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    me = (name or module_name(path)).split(".")
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me if path.name == "__init__.py" else me[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the submodule when there is one
            names = [f"{mod}.{a.name}" if _is_module(f"{mod}.{a.name}") else mod for a in node.names]
        for name in names:
            if name.split(".")[0] in ("supervisor", "hook"):
                out.append((name, node.lineno, id(node) in guarded))
    return out


def _is_module(mod: str) -> bool:
    p = ROOT.joinpath(*mod.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def graph() -> dict[str, list[tuple[str, int, bool]]]:
    files = [*sorted((ROOT / "supervisor").rglob("*.py")), *sorted((ROOT / "hook").rglob("*.py"))]
    return {module_name(p): imports(p) for p in files}


Graph = dict[str, list[tuple[str, int, bool]]]


def upward_imports(g: Graph) -> list[str]:
    bad = []
    for mod, deps in g.items():
        here = layer(mod)
        for dep, line, _guarded in deps:
            there = layer(dep)
            if here == "hook":
                if there not in ("base", "hook"):
                    bad.append(f"{mod}:{line} imports {dep}: the hook imports only protocol and util")
                continue
            if there == "hook" and here != "client":
                bad.append(f"{mod}:{line} imports {dep}")
            elif there != "hook" and LAYERS.index(there) > LAYERS.index(here):
                bad.append(f"{mod}:{line} ({here}) imports {dep} ({there}), a higher layer")
            elif (here == there == "team" and mod.split(".")[-1] not in TEAM_FEATURES
                  and dep.split(".")[-1] in TEAM_FEATURES):
                bad.append(f"{mod}:{line} imports {dep}: the team's core knows no feature built on it")
    return bad


def circles(g: Graph) -> list[str]:
    edges = {m: sorted({d for d, _, guarded in deps if not guarded and d != m}) for m, deps in g.items()}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []
    found = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for d in edges.get(m, []):
            if d not in edges:
                continue
            if seen.get(d) == 1:
                found.append(" → ".join([*stack[stack.index(d):], d]))
            elif d not in seen:
                visit(d)
        stack.pop()
        seen[m] = 2

    for m in edges:
        if m not in seen:
            visit(m)
    return found


def test_no_import_reaches_up_a_layer() -> None:
    bad = upward_imports(graph())
    assert not bad, "\n".join(bad)


def test_no_import_circle() -> None:
    found = circles(graph())
    assert not found, "\n".join(found)


def test_the_checks_catch_what_they_are_for() -> None:
    """An upward import, a core→feature import, a hook reaching past protocol, and a circle."""
    g: Graph = {
        "supervisor.agent.agent": [("supervisor.team.supervisor", 3, False)],
        "supervisor.team.supervisor": [("supervisor.team.chief", 4, False)],
        "supervisor.team.chief": [("supervisor.team.supervisor", 5, False)],
        "hook.main": [("supervisor.team.config", 6, False)],
        "supervisor.pty.process": [("supervisor.screen.emulator", 7, True)],
    }
    bad = upward_imports(g)
    assert len(bad) == 4, bad
    assert circles(g) == ["supervisor.team.supervisor → supervisor.team.chief → supervisor.team.supervisor"]
    guarded: Graph = {"supervisor.a": [("supervisor.b", 1, True)],
                      "supervisor.b": [("supervisor.a", 1, False)]}
    assert circles(guarded) == []


def test_type_checking_imports_are_told_apart(tmp_path: Path) -> None:
    src = tmp_path / "probe.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import supervisor.team\n"
                   "import supervisor.protocol\nfrom ..util import atomic\n")
    found = set(imports(src, "supervisor.agent.probe"))
    assert found == {("supervisor.team", 3, True), ("supervisor.protocol", 4, False),
                     ("supervisor.util.atomic", 5, False)}
