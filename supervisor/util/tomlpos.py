"""Where a table or a key is written in TOML text, so an error can say ``file:line:``.

`tomllib` gives values without positions, and a line regex is wrong as soon as a person
writes a key another legal way: ``[a.b]`` headers, dotted keys (``a.b.c = 1`` inside
``[a]``), inline tables (``a = { b = 1 }``), quoted keys, or text that only looks like a key
inside a multi-line string. This module scans the text once, the way a TOML parser walks it,
and records the first line of every key path it sees (a table's header, or the line where a
dotted key or an inline table first makes it). It is only ever called on text `tomllib` has
already accepted, and never raises: on anything it does not follow it keeps what it found.
"""

from __future__ import annotations

import contextlib
import functools
import re

Path = tuple[str, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", re.S)
_SIMPLE_ESC = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


class _Stop(Exception):
    """The scan met something it does not follow (it keeps what it found until then)."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.found: dict[Path, int] = {}

    # -- characters -------------------------------------------------------------------------
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def advance(self, n: int = 1) -> None:
        chunk = self.s[self.i : self.i + n]
        self.line += chunk.count("\n")
        self.i += n

    def blank(self, newlines: bool) -> None:
        """Skip spaces (and newlines and comments, when `newlines`)."""
        while self.i < len(self.s):
            c = self.peek()
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#" and newlines:
                end = self.s.find("\n", self.i)
                self.advance((end if end >= 0 else len(self.s)) - self.i)
            else:
                return

    def record(self, path: Path, line: int) -> None:
        for n in range(1, len(path) + 1):
            self.found.setdefault(path[:n], line)

    # -- keys and strings ---------------------------------------------------------------------
    def key(self) -> Path:
        """A dotted key: bare or quoted parts joined by dots (spaces allowed around them)."""
        parts: list[str] = []
        while True:
            self.blank(False)
            c = self.peek()
            if c == '"' or c == "'":
                parts.append(self.string())
            else:
                m = _BARE.match(self.s, self.i)
                if not m:
                    raise _Stop
                parts.append(m.group())
                self.advance(len(m.group()))
            self.blank(False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    def string(self) -> str:
        quote = self.peek()
        multi = self.s.startswith(quote * 3, self.i)
        delim = quote * 3 if multi else quote
        self.advance(len(delim))
        start = self.i
        while self.i < len(self.s):
            if quote == '"' and self.peek() == "\\":
                self.advance(2)
                continue
            if self.s.startswith(delim, self.i):
                if multi:  # up to two quotes may end the content: `""""x"""""`
                    while self.s.startswith(delim, self.i + 1):
                        self.advance()
                raw = self.s[start : self.i]
                self.advance(len(delim))
                return _unescape(raw) if quote == '"' else raw
            if not multi and self.peek() == "\n":
                raise _Stop
            self.advance()
        raise _Stop

    # -- values ---------------------------------------------------------------------------------
    def value(self, path: Path) -> None:
        c = self.peek()
        if c == '"' or c == "'":
            self.string()
        elif c == "{":
            self.inline_table(path)
        elif c == "[":
            self.array(path)
        else:  # a number, a date, a boolean: up to the next delimiter
            while self.i < len(self.s) and self.peek() not in ",]}\n#":
                self.advance()

    def inline_table(self, path: Path) -> None:
        self.advance()  # {
        while True:
            self.blank(True)  # TOML 1.1 lets inline tables span lines; accept it
            if self.peek() == "}":
                self.advance()
                return
            self.assignment(path)
            self.blank(True)
            if self.peek() == ",":
                self.advance()
            elif self.peek() != "}":
                raise _Stop

    def array(self, path: Path) -> None:
        self.advance()  # [
        n = 0
        while True:
            self.blank(True)
            if self.peek() == "]":
                self.advance()
                return
            if not self.peek():
                raise _Stop
            self.record((*path, str(n)), self.line)
            self.value((*path, str(n)))
            n += 1
            self.blank(True)
            if self.peek() == ",":
                self.advance()
            elif self.peek() != "]":
                raise _Stop

    def assignment(self, table: Path) -> None:
        line = self.line
        path = (*table, *self.key())
        self.record(path, line)
        self.blank(False)
        if self.peek() != "=":
            raise _Stop
        self.advance()
        self.blank(False)
        self.value(path)

    # -- the document ---------------------------------------------------------------------------
    def document(self) -> None:
        table: Path = ()
        while True:
            self.blank(True)
            if self.i >= len(self.s):
                return
            if self.peek() == "[":
                double = self.peek(1) == "["
                line = self.line
                self.advance(2 if double else 1)
                table = self.key()
                self.record(table, line)
                self.advance(2 if double else 1)
            else:
                self.assignment(table)


def _unescape(raw: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "uU":
            return chr(int(e[1:], 16))
        return _SIMPLE_ESC.get(e, "" if e[0] in " \t\n" else e)

    return _ESCAPE.sub(one, raw)


def positions(text: str) -> dict[Path, int]:
    """Every key path (and each prefix of one) → the 1-based line where it first appears."""
    sc = _Scanner(text)
    with contextlib.suppress(_Stop, ValueError):
        sc.document()
    return sc.found


class TomlPositions:
    """The positions of one text, scanned once, for many look-ups (a file's every error)."""

    def __init__(self, text: str) -> None:
        self.found = positions(text)

    def line(self, *path: str) -> int | None:
        """The line of the table or key at `path` (``line("agents", "a", "env")``), or None."""
        return self.found.get(tuple(path))

    def nearest(self, *path: str) -> int:
        """The line of `path`, else of its closest written parent, else 1 (the file's top)."""
        for n in range(len(path), 0, -1):
            got = self.found.get(tuple(path[:n]))
            if got is not None:
                return got
        return 1


@functools.lru_cache(maxsize=4)
def _positions_of(text: str) -> TomlPositions:
    return TomlPositions(text)


def line_of(text: str, *path: str) -> int:
    """`TomlPositions(text).nearest(*path)`; the scan of the last few texts is kept, so a
    caller may ask once per agent of a large team file without scanning it each time."""
    return _positions_of(text).nearest(*path)
