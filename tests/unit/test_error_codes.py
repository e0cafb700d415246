"""Every error code a module raises is a constant of protocol.py: the CLI, the HTTP API and the
hook map codes to exit statuses and replies, so a code spelled out elsewhere drifts unseen."""

from __future__ import annotations

import ast
from pathlib import Path

from supervisor import protocol

ROOT = Path(__file__).resolve().parents[2]


def literal_codes(text: str, name: str) -> list[str]:
    """`ProtocolError("code", …)` calls and `ERR_X = "code"` definitions in `text`."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                == "ProtocolError" and node.args and isinstance(node.args[0], ast.Constant)):
            found.append(f"{name}:{node.lineno}: ProtocolError({node.args[0].value!r}, …)")
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and any(isinstance(t, ast.Name) and t.id.startswith("ERR_") for t in node.targets)):
            found.append(f"{name}:{node.lineno}: an error code defined outside protocol.py")
    return found


def test_error_codes_come_from_protocol() -> None:
    files = [*sorted((ROOT / "supervisor").rglob("*.py")), *sorted((ROOT / "hook").rglob("*.py"))]
    bad = [hit for path in files if path.name != "protocol.py"
           for hit in literal_codes(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert not bad, "\n".join(bad)


def test_the_check_finds_what_it_is_for() -> None:
    probe = 'ERR_X = "x"\nraise ProtocolError("bad_request", "no")\nraise p.ProtocolError(ERR_X, "ok")\n'
    assert literal_codes(probe, "p.py") == [
        "p.py:1: an error code defined outside protocol.py",
        "p.py:2: ProtocolError('bad_request', …)",
    ]


def test_codes_are_distinct() -> None:
    codes = [v for k, v in vars(protocol).items() if k.startswith("ERR_")]
    assert len(codes) == len(set(codes))
