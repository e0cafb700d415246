"""opencode's sessions: one sqlite database per user (``$XDG_DATA_HOME/opencode/opencode.db``)
with a ``session`` table (id ``ses_…``, its directory), ``message`` (a JSON ``data`` per
message: role, parentID, time.completed, finish, error) and ``part`` (a message's pieces:
text, tool calls, step marks).

opencode writes it in WAL mode: what it writes lands in ``opencode.db-wal`` first, so that
is the file to watch for the turn's end; the database is read read-only through sqlite,
which sees the WAL too. One database holds every session of the user, ours found by its
directory and the prompt we typed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from supervisor.detect.answers import TranscriptAnswer, flat

_found: dict[Path, str] = {}
"""The session `read_turn` last found our prompt in, per database file: `session_id` names
it (the delivery reads a turn, then asks for its session, with no await in between)."""


def database(env: dict[str, str]) -> Path | None:
    """Where opencode keeps its database (``OPENCODE_DB`` overrides; None: in memory)."""
    data = Path(env.get("XDG_DATA_HOME") or
                Path(env.get("HOME") or os.path.expanduser("~")) / ".local" / "share") / "opencode"
    override = env.get("OPENCODE_DB")
    if override == ":memory:":
        return None
    if override:
        return Path(override) if os.path.isabs(override) else data / override
    return data / "opencode.db"


def files(env: dict[str, str], _cwd: str, since: float) -> list[Path]:
    """The database's write-ahead log (else the database) if written since `since`."""
    db = database(env)
    if db is None:
        return []
    for path in (db.with_name(db.name + "-wal"), db):
        try:
            if path.stat().st_mtime >= since - 1.0:
                return [path]
        except OSError:
            continue
    return []


def _db_of(path: Path) -> Path:
    return path.with_name(path.name.removesuffix("-wal"))


def _rows(path: Path, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Rows of a read-only query; [] when the database cannot be read now (it is being
    created, or locked past the timeout): the caller reads again at the next write."""
    db = _db_of(path)
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1.0)) as c:
            return list(c.execute(sql, args))
    except sqlite3.Error:
        return []


def _data(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_turn(path: Path, prompt: str, cwd: str, skip: frozenset[str] = frozenset()) -> TranscriptAnswer:
    """The turn opencode recorded for the prompt we typed.

    Our prompt is the newest user message of a session in `cwd` whose text parts hold it.
    Each step of the turn is an assistant message whose parentID is that user message; the
    turn is over when the last one has ``time.completed`` and did not stop for tool calls:
    the answer is its text, exactly as the model sent it. An aborted or failed step ends the
    turn with no answer. Sessions in `skip` are other agents' (one database serves every
    opencode of a user: two agents in one directory may be given the same text)."""
    want = flat(prompt)[-200:]
    if not want:
        return TranscriptAnswer(None, False, False)
    users = _rows(path, (
        "SELECT m.id, m.session_id, group_concat(p.data, char(30)) FROM message m"
        " JOIN session s ON s.id = m.session_id JOIN part p ON p.message_id = m.id"
        " WHERE s.directory = ? AND json_extract(m.data, '$.role') = 'user'"
        " GROUP BY m.id ORDER BY m.time_created DESC LIMIT 50"), (cwd,))
    start = None
    for mid, sid, parts in users:
        if str(sid) in skip:
            continue
        text = "".join(str(_data(p).get("text", "")) for p in str(parts).split("\x1e")
                       if _data(p).get("type") == "text")
        if want in flat(text):
            start = (str(mid), str(sid))
            break
    if start is None:
        return TranscriptAnswer(None, False, False)
    _found[path] = start[1]
    steps = _rows(path, (
        "SELECT id, data FROM message WHERE session_id = ?"
        " AND json_extract(data, '$.parentID') = ? ORDER BY time_created, id"), (start[1], start[0]))
    if not steps:
        return TranscriptAnswer(None, False, True)
    last_id, last = str(steps[-1][0]), _data(steps[-1][1])
    if last.get("error"):
        return TranscriptAnswer(None, False, True)
    if not (last.get("time") or {}).get("completed") or last.get("finish") in (None, "tool-calls"):
        return TranscriptAnswer(None, False, True)
    texts = [
        str(d.get("text", "")) for (raw,) in _rows(
            path, "SELECT data FROM part WHERE message_id = ? ORDER BY id", (last_id,))
        if (d := _data(raw)).get("type") == "text" and not d.get("synthetic")
    ]
    return TranscriptAnswer("\n".join(texts), True, True)


def session_id(path: Path) -> str | None:
    """The id of the session our last read prompt is in (what ``--session <id>`` takes)."""
    return _found.get(path)


def has_session(env: dict[str, str], cwd: str, session: str) -> bool:
    """opencode keeps the session, for this directory: ``opencode --session <id>`` of one it
    has not prints ``Error: Session not found: <id>`` and exits (1.18.33)."""
    db = database(env)
    if db is None:
        return False
    rows = _rows(db, "SELECT directory FROM session WHERE id = ?", (session,))
    return any(os.path.realpath(str(d)) == os.path.realpath(cwd) for (d,) in rows)
