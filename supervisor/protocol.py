"""The wire protocol between the daemon and its clients: JSON lines on a Unix socket.

Every client (the `staff` CLI, the editor hook, the console) speaks only what is
defined here, and this module imports nothing but the standard library (and the
dependency-free `states`), so the hook stays light and cannot drift from the server.

A request is one JSON object on one line::

    {"id": 1, "cmd": "submit", "to": "planning", "text": "hello"}

The reply carries the same id and either ``"ok": true`` with a ``"result"`` or
``"ok": false`` with an ``"error"`` of ``{"code", "message"}``. Long requests (``wait``
with ``progress``, ``subscribe``) may send ``{"id": …, "event": {…}}`` lines first.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.states import AgentState

PROTOCOL_VERSION = 1


def release() -> str:
    """This agentstaff's package version (what `staff --version` and a hub's `staff hosts` say)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentstaff")
    except PackageNotFoundError:
        return "(not installed)"

MAX_FRAME = 1 << 20
"""The largest request line the daemon reads (1 MiB); larger ones are refused."""

SOCKET_NAME = "staff.sock"

AGENT_STATES = tuple(AgentState)  # supervisor/states.py: the strings on the wire
TASK_STATES = ("queued", "delivered", "working", "blocked", "interrupted", "done", "failed", "cancelled")
TASK_FINAL = frozenset({"done", "failed", "cancelled"})

# Every command and the fields it needs, with their JSON types. The server validates
# requests against this table before it looks at them, so a client's mistake gets a
# clear error and never reaches the supervisor.
COMMANDS: dict[str, dict[str, tuple[type, ...]]] = {
    "ping": {},
    "status": {},
    "submit": {"to": (str,), "text": (str,)},
    "wait": {"task": (str,)},
    "task": {"task": (str,)},
    "cancel": {"task": (str,)},
    "send": {"agent": (str,), "keys": (str,)},
    "answer": {"agent": (str,), "keys": (str,)},  # a permission question: keys, checked taken
    "screen": {"agent": (str,)},
    "explain": {"agent": (str,)},
    "logs": {"agent": (str,)},
    "spawn": {"agent": (str,)},
    "kill": {"agent": (str,)},
    "restart": {"agent": (str,)},
    "subscribe": {},
    "shutdown": {},
    "inbox": {},
    "inbox_ack": {},
    "inbox_post": {"title": (str,)},
    "watch": {"agent": (str,), "until": (str,)},
    "monitors": {},
    # the monitor's id in `monitor` (a client's own request id is `id`: an older client
    # that put the monitor's id there is still understood, by the sync client's luck only)
    "unwatch": {},
    "monitor_wait": {},
    # The console and `staff attach` (streams.py): an agent's screen as a snapshot then its
    # raw output; the size a viewer shows it at (the smallest wins); a person's hold on it.
    "stream": {"agent": (str,)},
    "resize": {"agent": (str,), "rows": (int,), "cols": (int,), "viewer": (str,)},
    "hold": {"agent": (str,), "on": (bool,)},
    "input": {"agent": (str,), "keys": (str,)},
    "chief": {"cwd": (str,)},  # add/start the agent `chief` in cwd (chief.py)
    "http_serve": {"listen": (str,)},  # open the HTTP API (httpapi.py)
    "web": {},  # the HTTP API (opened if need be) and a one-time login code for the web app
    # A hub places one of its agents on this host (daemon/hosts.py): its `[agents.NAME]` table.
    "place": {"agent": (str,), "table": (dict,)},
    "hosts": {},  # the hub's links (hosts.py): state, round trip, agents, tasks held
    "new": {"like": (str,)},  # a new agent made like another (the console's C-b c), kept across restarts
    "remove": {"agent": (str,)},  # drop an agent added at run time (`new`) from the team
    "rename": {"agent": (str,), "new": (str,)},  # an agent added at run time gets another name
}
OPTIONAL: dict[str, dict[str, tuple[type, ...]]] = {
    "submit": {"timeout": (int, float), "key": (str,), "notify": (bool,)},
    "shutdown": {"reload": (bool,)},
    "status": {"tasks": (bool,)},  # the tasks queued (id, to) too: a hub's router refills from it
    "wait": {"timeout": (int, float), "progress": (bool,)},
    "logs": {"lines": (int,)},
    "answer": {"timeout": (int, float), "question": (str,)},  # the id of the question seen
    "screen": {"scrollback": (bool,)},
    "inbox": {"all": (bool,), "to": (str,), "since": (int, float)},  # since: items of that time or later
    "inbox_ack": {"ids": (list,)},
    "inbox_post": {"body": (str,), "source": (str,), "to": (str,), "task": (str,)},
    "watch": {"then": (str,), "notify": (list,), "task": (str,), "title": (str,), "repeat": (bool,)},
    "unwatch": {"monitor": (str,)},
    "monitor_wait": {"timeout": (int, float), "monitor": (str,)},
    "hold": {"grace": (int, float)},
    "input": {"grace": (int, float)},
    "chief": {"args": (list,), "continue": (bool,)},
    "http_serve": {"allow_remote": (bool,)},
    "web": {"listen": (str,), "allow_remote": (bool,)},
    "new": {"agent": (str,)},
    "place": {"pool": (dict,)},  # `agent` is then a pool role, `table` its template (min/max here)
    "remove": {"force": (bool,)},
}

# Error codes, and the exit code the CLI maps each to.
ERR_UNKNOWN_AGENT = "unknown_agent"
ERR_UNKNOWN_TASK = "unknown_task"
ERR_BAD_REQUEST = "bad_request"
ERR_TIMEOUT = "timeout"
ERR_AGENT_DOWN = "agent_down"
ERR_INTERNAL = "internal"
ERR_NO_DAEMON = "no_daemon"
ERR_JOURNAL = "journal"  # the journal could not record the task: it was not accepted
ERR_NOT_ANSWERED = "not_answered"  # `answer`: the agent was not blocked, or ignored the keys
ERR_UNKNOWN_MONITOR = "unknown_monitor"
ERR_HOST_DOWN = "host_down"  # the link to the host of a NAME/agent is down (daemon/hosts.py)


class ProtocolError(Exception):
    """A request the daemon refused, or a failure talking to it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogate(value: Any) -> bool:
    """A lone surrogate (JSON allows "\\ud800") anywhere in a request: text no file, journal or
    pty can hold, refused at the door instead of failing somewhere inside."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    return False


def validate(req: Any) -> str | None:
    """Return why `req` is not a valid request, or None when it is."""
    if not isinstance(req, dict):
        return "a request must be a JSON object"
    if has_surrogate(req):
        return "the request holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text"
    cmd = req.get("cmd")
    if not isinstance(cmd, str):
        return "missing 'cmd' (a string)"
    if cmd not in COMMANDS:
        return f"unknown command {cmd!r}; known: {', '.join(sorted(COMMANDS))}"
    for name, types in COMMANDS[cmd].items():
        if name not in req:
            return f"{cmd}: missing field {name!r}"
        if not isinstance(req[name], types) or (isinstance(req[name], bool) and bool not in types):
            return f"{cmd}: field {name!r} must be {types[0].__name__}"
    for name, types in OPTIONAL.get(cmd, {}).items():
        value = req.get(name)
        if value is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"{cmd}: field {name!r} must be {types[0].__name__}"
    return None


def encode(obj: dict[str, Any]) -> bytes:
    """One frame: compact JSON, non-ASCII kept, newline-terminated. Text that is not UTF-8
    (bytes an argv or a file passed through as surrogates) is a ProtocolError saying where."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    except UnicodeEncodeError:
        raise ProtocolError(ERR_BAD_REQUEST, _not_utf8(obj)) from None


def _not_utf8(obj: dict[str, Any]) -> str:
    """The one line for a frame holding a surrogate: which field, which byte, what to do."""
    for name, value in obj.items():
        at = _SURROGATE.search(value) if isinstance(value, str) else None
        if at is not None:
            code = ord(at.group())
            byte = f"byte {code - 0xDC00:#04x}" if 0xDC80 <= code <= 0xDCFF else f"{code:#06x}"
            what = f"{obj['cmd']}: the {name}" if isinstance(obj.get("cmd"), str) else f"the {name}"
            return (
                f"{what} is not valid UTF-8 ({byte} at character {at.start()}); convert it to "
                f"UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
            )
    return "the request holds text that is not valid UTF-8; convert it to UTF-8"


def _encode_request(cmd: str, req: dict[str, Any]) -> bytes:
    """A client's frame, or a one-line error for one the daemon would refuse for its size."""
    frame = encode(req)
    if len(frame) > MAX_FRAME:
        raise ProtocolError(
            ERR_BAD_REQUEST,
            f"the request is {len(frame) / (1 << 20):.1f} MiB; the daemon takes at most "
            f"{MAX_FRAME >> 20} MiB per request (put the text in a file and name the file in the task)",
        )
    return frame


# -- quoting text into a prompt file (the hook's answers, the chief's pushed inbox) ----------------
_LINE_BREAK = re.compile(r"(\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029])")
_QUOTE_TAG = re.compile(r"<(?=\s*/?\s*staff-)", re.IGNORECASE)


def inert(text: str) -> str:
    """Text quoted inside a ``<staff-answer>`` / ``<staff-inbox>`` block, made unable to act.

    An agent's answer or an inbox item is written into the chief's prompt file, which the
    hook parses again on the next Ctrl-G. Whatever it holds must stay quoted text: every
    ``<staff-…`` tag in it is written ``&lt;staff-…`` (so a line ``</staff-answer>`` cannot
    end the quote early), and a line that starts with ``@`` gets the ``@@`` escape (so it is
    no task line even if the quote's tags are lost). Every line break an editor or Claude
    Code may honour counts as one.
    """
    parts = _LINE_BREAK.split(text)
    for i in range(0, len(parts), 2):
        line = _QUOTE_TAG.sub("&lt;", parts[i])
        parts[i] = "@" + line if line.startswith("@") else line
    return "".join(parts)


def quote_attr(value: str) -> str:
    """A value for a quote's opening tag: one line, no double quote, no tag characters."""
    return " ".join(value.split()).replace('"', "'").replace("<", "‹").replace(">", "›")


def unusable_home(home: Path, exc: OSError) -> str:
    """The one-line error for a state directory we cannot write (read-only, full, not ours)."""
    why = exc.strerror or str(exc)
    return f"cannot use the state directory {home}: {why} (set STAFF_HOME to a writable directory)"


MAX_SOCKET_PATH = 107
"""The longest Unix socket path Linux takes (sun_path is 108 bytes with its NUL)."""


def socket_path_problem(path: Path) -> str | None:
    """Why no socket can live at `path` (too long for AF_UNIX), with the fix; else None."""
    n = len(os.fsencode(path))
    if n <= MAX_SOCKET_PATH:
        return None
    return (
        f"the state dir path is too long for a Unix socket ({path}: {n} bytes, the limit is "
        f"{MAX_SOCKET_PATH}); set STAFF_HOME to a shorter path"
    )


def state_home() -> Path:
    """The state directory: $STAFF_HOME, else the XDG state dir (as platformdirs picks it)."""
    env = os.environ.get("STAFF_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "agentstaff"


def socket_path(home: Path | None = None) -> Path:
    return (home or state_home()) / SOCKET_NAME


@dataclass
class Client:
    """A blocking client: one socket, sequential requests. Enough for the CLI and the hook."""

    path: Path
    timeout: float | None = 10.0

    def __post_init__(self) -> None:
        self._sock: socket.socket | None = None
        self._buf = b""
        self._next_id = 0

    def connect(self) -> Client:
        too_long = socket_path_problem(self.path)
        if too_long:
            raise ProtocolError(ERR_NO_DAEMON, too_long)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._connect(sock)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise ProtocolError(
                ERR_NO_DAEMON, f"no daemon is running at {self.path} (start one with `staff up`)"
            ) from exc
        except BlockingIOError as exc:  # the accept queue stayed full for the whole timeout
            sock.close()
            raise ProtocolError(
                ERR_TIMEOUT, f"the daemon at {self.path} did not accept a connection in {self.timeout} s"
            ) from exc
        except OSError as exc:  # a directory where the socket belongs, no permission, …
            sock.close()
            raise ProtocolError(
                ERR_NO_DAEMON, f"cannot connect to the daemon at {self.path}: {exc.strerror or exc}"
            ) from exc
        sock.settimeout(self.timeout)
        self._sock = sock
        return self

    def _connect(self, sock: socket.socket) -> None:
        """Connect, waiting out a full listen queue instead of failing on it.

        A Unix socket with a timeout is non-blocking underneath, and its connect() fails
        with EAGAIN (not EINPROGRESS) while the daemon's accept queue is full. A blocking
        connect() waits in the kernel until the daemon accepts instead, and SO_SNDTIMEO
        bounds that wait (then it fails with EAGAIN).
        """
        if self.timeout is not None:
            secs = int(self.timeout)
            usecs = int((self.timeout - secs) * 1e6)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", secs, usecs))
        sock.connect(str(self.path))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Client:
        return self.connect() if self._sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _readline(self, timeout: float | None) -> bytes:
        assert self._sock is not None
        self._sock.settimeout(timeout)
        while b"\n" not in self._buf:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError as exc:
                raise ProtocolError(ERR_TIMEOUT, "the daemon did not answer in time") from exc
            if not chunk:
                raise ProtocolError(
                    ERR_NO_DAEMON, "the daemon closed the connection (it stopped or restarted)"
                )
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def stream(
        self, cmd: str, *, read_timeout: float | None = None, **fields: Any
    ) -> Iterator[dict[str, Any]]:
        """Send one request; yield its event frames, then its final reply frame."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        self._next_id += 1
        req = {"id": self._next_id, "cmd": cmd, **{k: v for k, v in fields.items() if v is not None}}
        frame = _encode_request(cmd, req)
        try:
            self._sock.sendall(frame)
        except OSError as exc:
            raise ProtocolError(ERR_NO_DAEMON, f"lost the daemon: {exc}") from exc
        while True:
            frame = json.loads(self._readline(read_timeout if read_timeout else self.timeout))
            yield frame
            if "event" not in frame:
                return

    def call(self, cmd: str, *, read_timeout: float | None = None, **fields: Any) -> Any:
        """Send one request and return its result, raising ProtocolError on an error reply."""
        reply: dict[str, Any] = {}
        for frame in self.stream(cmd, read_timeout=read_timeout, **fields):
            reply = frame
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise ProtocolError(err.get("code", ERR_INTERNAL), err.get("message", "error"))
        return reply.get("result")
