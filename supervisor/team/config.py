"""The team file (`staff.toml`) and the embedded default team.

Errors name the file and the line, because the person has to find the mistake in a file
they wrote by hand, often from a one-line message in a terminal.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import os
import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.agent.agent import AgentSpec
from supervisor.util import tomlpos
from supervisor.util.atomic import write_json_atomic
from supervisor.util.trust import config_problem

RESTART_POLICIES = ("always", "on-failure", "never")
AGENT_KEYS = {
    "command",
    "profile",
    "role",
    "role_text",
    "cwd",
    "env",
    "restart",
    "rows",
    "cols",
    "worktree",
    "host",  # placed on a [hosts.NAME]: that host's daemon spawns and owns it (daemon/hosts.py)
}
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
RESERVED = {"any", "all", "role", "chief-any"}

REPO_ROOT = Path(__file__).resolve().parents[2]
# From a checkout: fixtures/; installed (pipx): the copy shipped as supervisor/fixtures/.
FAKE_AGENT = next(
    (p for p in (REPO_ROOT / "fixtures" / "fake_claude.py",
                 Path(__file__).resolve().parents[1] / "fixtures" / "fake_claude.py") if p.is_file()),
    REPO_ROOT / "fixtures" / "fake_claude.py",
)

DEFAULT_ROLES = {
    "planning": "You are the planning agent of a team. Break requests into clear, ordered steps.",
    "coding": "You are the coding agent of a team. Implement what you are asked, minimally and well.",
    "testing": "You are the testing agent of a team. Write and run tests; report failures precisely.",
}


class ConfigError(Exception):
    """A config problem, with `file:line: what` in the message."""


class TableError(ValueError):
    """A bad key or value inside one table (`key: what`); `parse` adds the file and line."""


POOL_KEYS = {"min", "max", "idle_timeout", "hosts"}
LOCAL_HOST = "local"
"""In a pool role's `hosts` and per-host `max`: this machine (so no `[hosts.local]`)."""
CHIEF_KEYS = {"deliver"}
DELIVER_MODES = ("push", "hook")
HTTP_KEYS = {"listen", "allow_remote"}
NOTIFY_KEYS = {"url", "link", "events"}
NOTIFY_EVENTS = ("blocked", "done", "failed", "monitor")
HOST_KEYS = {"ssh", "ssh_options", "staff", "transport", "alive_interval"}


@dataclass
class RoleSpec:
    """`[roles.NAME]`: a template agent the pool clones between `min` and `max` (team/pool.py)."""

    name: str
    template: AgentSpec
    min: int = 0  # on this machine
    max: int = 1
    idle_timeout: float = 300.0
    hosts: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Other hosts the role's clones may run on: (min, max) there (their daemons' pools)."""
    local: bool = True
    """Whether clones may run here (`local` in the role's `hosts`)."""


@dataclass(frozen=True)
class ChiefSettings:
    """`[chief]`: how inbox items reach the chief (team/chief.py)."""

    deliver: str = "push"


@dataclass(frozen=True)
class HttpSettings:
    """`[http]`: the HTTP API opened at start (daemon/httpapi.py); no `listen`, no listener."""

    listen: str = ""
    allow_remote: bool = False


@dataclass(frozen=True)
class NotifySettings:
    """`[notify]`: events pushed to an ntfy-compatible URL (daemon/notify.py); no `url`, no pushes.
    `link`: the web app's address as the phone reaches it (default: the HTTP API's own)."""

    url: str = ""
    link: str = ""
    events: tuple[str, ...] = NOTIFY_EVENTS


@dataclass
class HostSpec:
    """`[hosts.NAME]`: another machine's daemon, reached through a transport whose stdin/stdout
    is `staff bridge` there (OpenSSH, or any argv: kubectl exec, docker exec). `agents` are the
    `[agents.X]` tables with `host = NAME`, sent as written (minus `host`) for that host's daemon
    to check and spawn: paths in them are the host's, not ours."""

    name: str
    argv: list[str]
    transport: str  # "ssh USER@HOST" or the argv, for `staff status` and logs
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Pool roles that may grow there: {"table": the template, "pool": its min/max there}."""


@dataclass
class Config:
    """The whole team file, checked: every table `staff.toml` may hold has its typed field here."""

    agents: list[AgentSpec]
    source: str
    settings: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    chief: ChiefSettings = field(default_factory=ChiefSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    hosts: dict[str, HostSpec] = field(default_factory=dict)


def _line_of(text: str, name: str, key: str | None = None, section: str = "agents") -> int:
    """The line of `[agents.NAME]` (or of `key` inside it, however written); 1 when not found."""
    return tomlpos.line_of(text, section, name, *([key] if key else []))


def check_table(raw: Any, name: str, known: set[str], error: type[ValueError]) -> dict[str, Any]:
    """A `[name]` table of staff.toml with only `known` keys, else `error` saying what is wrong."""
    if not isinstance(raw, dict):
        raise error(f"[{name}] must be a table")
    unknown = sorted(set(raw) - known)
    if unknown:
        raise error(f"{name}: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return raw


def check_permissions(path: Path) -> None:
    """Refuse a config another user owns or can write: it decides which commands we run.
    The same check as the editor hook's (util/trust.py), so the two never disagree."""
    problem = config_problem(path)
    if problem:
        raise ConfigError(problem)


def load(path: Path, *, check_perms: bool = True) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if check_perms:
        check_permissions(path)
    return parse(text, str(path), base=path.parent)


def parse(text: str, source: str, base: Path | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+), column (\d+)", str(exc))
        line = m.group(1) if m else str(max(1, len(text.splitlines())))  # "at end of document"
        where = f"{source}:{line}"
        msg = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)", "", str(exc))
        raise ConfigError(f"{where}: TOML syntax error: {msg}") from exc
    base = base or Path.cwd()
    _check_sections(data, text, source)  # before "no agents": `[agent.b]` is a typo, not an empty team
    agents_raw = data.get("agents")
    if (not isinstance(agents_raw, dict) or not agents_raw) and not data.get("roles"):
        raise ConfigError(
            f"{source}:1: no agents defined; add at least one [agents.NAME] table with a command"
        )
    tables: dict[str, Any] = {}
    checks = (("chief", chief_settings), ("http", http_settings), ("notify", notify_settings))
    for section, check in checks:
        if section not in data:
            continue
        try:
            tables[section] = check(data[section])
        except ValueError as exc:
            lines = text.splitlines()
            line = next((i + 1 for i, ln in enumerate(lines) if ln.strip().startswith(f"[{section}")), 1)
            raise ConfigError(f"{source}:{line}: {exc}") from None
    specs = []
    placed: list[tuple[str, dict[str, Any]]] = []
    for name, raw in (agents_raw or {}).items():
        where = f"{source}:{_line_of(text, name)}"
        if (why := bad_name(name)) is not None:
            raise ConfigError(f"{where}: {why}")
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: agents.{name} must be a table")
        unknown = set(raw) - AGENT_KEYS
        if unknown:
            k = sorted(unknown)[0]
            raise ConfigError(
                f"{source}:{_line_of(text, name, k)}: agents.{name}: unknown key {k!r}; "
                f"known: {', '.join(sorted(AGENT_KEYS))}"
            )
        if "host" in raw:
            placed.append((name, raw))
            continue
        specs.append(_agent(name, raw, text, source, base))
    hosts = _hosts(data.get("hosts", {}), placed, text, source, base)
    settings = data.get("staff", {})
    if not isinstance(settings, dict):
        raise ConfigError(f"{source}:1: [staff] must be a table")
    _check_settings(settings, text, source)
    roles = _roles(data.get("roles", {}), text, source, base, hosts)
    return Config(specs, source, settings, roles=roles, hosts=hosts, **tables)


# [hook]: read by hook/settings.py
KNOWN_SECTIONS = ("agents", "chief", "hook", "hosts", "http", "notify", "roles", "staff")


def _check_sections(data: dict[str, Any], text: str, source: str) -> None:
    """An unknown top-level table is named as written, at its line, with the likely meant one."""
    unknown = [k for k in data if k not in KNOWN_SECTIONS]
    if not unknown:
        return
    top = min(unknown, key=lambda k: tomlpos.line_of(text, k))
    value = data[top]
    first = next(iter(value.items()), None) if isinstance(value, dict) else None
    sub = [str(first[0])] if first is not None and isinstance(first[1], dict) else []  # [agent.b]
    close = difflib.get_close_matches(top, KNOWN_SECTIONS, n=1)
    hint = f"did you mean [{'.'.join([close[0], *sub])}]? " if close else ""
    raise ConfigError(
        f"{source}:{tomlpos.line_of(text, top, *sub)}: unknown table [{'.'.join([top, *sub])}]; "
        f"{hint}known: {', '.join(KNOWN_SECTIONS)}"
    )


def chief_settings(raw: Any) -> ChiefSettings:
    """The `[chief]` table; raises TableError with `key: what`."""
    raw = check_table(raw, "chief", CHIEF_KEYS, TableError)
    deliver = raw.get("deliver", "push")
    if deliver not in DELIVER_MODES:
        raise TableError(f"chief.deliver must be {' or '.join(repr(m) for m in DELIVER_MODES)}")
    return ChiefSettings(deliver=deliver)


def http_settings(raw: Any) -> HttpSettings:
    """The `[http]` table; raises TableError with `key: what`."""
    raw = check_table(raw, "http", HTTP_KEYS, TableError)
    if not isinstance(raw.get("listen", ""), str):
        raise TableError('http.listen must be a string, "[HOST:]PORT"')
    if not isinstance(raw.get("allow_remote", False), bool):
        raise TableError("http.allow_remote must be true or false")
    if raw.get("listen"):
        parse_listen(raw["listen"])
    return HttpSettings(listen=raw.get("listen", ""), allow_remote=raw.get("allow_remote", False))


def notify_settings(raw: Any) -> NotifySettings:
    """The `[notify]` table; raises TableError with `key: what`."""
    raw = check_table(raw, "notify", NOTIFY_KEYS, TableError)
    for key in ("url", "link"):
        value = raw.get(key, "")
        if not isinstance(value, str) or (value and not re.fullmatch(r"https?://[^\s]+", value)):
            raise TableError(f'notify.{key} must be an http(s) URL, e.g. "https://ntfy.sh/my-team"')
    events = raw.get("events", list(NOTIFY_EVENTS))
    if not isinstance(events, list) or not all(e in NOTIFY_EVENTS for e in events):
        raise TableError(f"notify.events must be a list of {', '.join(NOTIFY_EVENTS)}")
    return NotifySettings(url=raw.get("url", ""), link=raw.get("link", "").rstrip("/"), events=tuple(events))


def parse_listen(spec: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[V6]:PORT` → (host, port); loopback when no host is given."""
    host, sep, port = spec.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", spec
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise TableError(f"bad HTTP address {spec!r}: [HOST:]PORT with a port from 0 to 65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


STAFF_SETTINGS: dict[str, tuple[type, ...]] = {
    "stall_after": (int, float),  # seconds of silence while working → stalled (0: never)
    "stall_policy": (str,),  # report | interrupt | restart
    "max_attempts": (int,),  # deliveries of a task interrupted by a daemon restart
    "hold_grace": (int, float),  # seconds without a keystroke before a person's hold lapses
    "recording_max_bytes": (int,),  # size of one asciicast file before it is rotated
    "console_keys": (dict,),  # the console's keys after its prefix: { split = "|", kill = ["x", "X"] }
}
CONSOLE_ACTIONS = ("next", "prev", "pane", "split", "unsplit", "zoom", "detach", "help", "command",
                   "scrollback", "new", "kill", "rename")
"""What `console_keys` may bind (the console's bindings.py has their default keys)."""
_KEY = re.compile(r"[^\s]|[Cc]-[A-Za-z\]\\^_@?]|\^[A-Za-z]")


def _check_settings(settings: dict[str, Any], text: str, source: str) -> None:
    def line_of(key: str) -> int:
        return tomlpos.line_of(text, "staff", key)

    for key, value in settings.items():
        types = STAFF_SETTINGS.get(key)
        if types is None:
            continue  # other engineers' sections ([staff] is shared); unknown keys are kept
        if not isinstance(value, types) or isinstance(value, bool):
            raise ConfigError(f"{source}:{line_of(key)}: staff.{key} must be {types[0].__name__}")
    for action, spec in (settings.get("console_keys") or {}).items():
        where = f"{source}:{line_of('console_keys')}: staff.console_keys.{action}"
        if action not in CONSOLE_ACTIONS:
            raise ConfigError(f"{where}: no such action (one of {', '.join(CONSOLE_ACTIONS)})")
        keys = [spec] if isinstance(spec, str) else spec
        if not (isinstance(keys, list) and keys
                and all(isinstance(k, str) and _KEY.fullmatch(k) for k in keys)):
            raise ConfigError(f'{where}: a key ("s", "C-x", "^X") or a list of them')
    if settings.get("stall_policy", "report") not in ("report", "interrupt", "restart"):
        raise ConfigError(
            f"{source}:{line_of('stall_policy')}: staff.stall_policy must be report, interrupt or restart"
        )


def _agent(
    name: str, raw: dict[str, Any], text: str, source: str, base: Path, section: str = "agents"
) -> AgentSpec:
    def where(key: str) -> str:
        return f"{source}:{_line_of(text, name, key, section)}: {section}.{name}.{key}"

    command = raw.get("command")
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"{where('command')}: {exc}") from exc
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise ConfigError(f"{where('command')}: needs a command (a string or a list of strings)")
    profile = raw.get("profile", "claude" if Path(command[0]).name == "claude" else "shell")
    strings = {"profile": profile, "role": raw.get("role"), "role_text": raw.get("role_text")}
    for key, value in strings.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where(key)}: must be a string")
    cwd = raw.get("cwd")
    if cwd is not None:
        if not isinstance(cwd, str):
            raise ConfigError(f"{where('cwd')}: must be a string")
        cwd = str((base / os.path.expanduser(cwd)).resolve())
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f"{where('env')}: must be a table of strings")
    restart = raw.get("restart", "on-failure")
    if restart not in RESTART_POLICIES:
        raise ConfigError(f"{where('restart')}: must be one of {', '.join(RESTART_POLICIES)}")
    rows, cols = raw.get("rows", 40), raw.get("cols", 120)
    for key, value in (("rows", rows), ("cols", cols)):
        if not isinstance(value, int) or not 5 <= value <= 1000:
            raise ConfigError(f"{where(key)}: must be an integer between 5 and 1000")
    worktree = raw.get("worktree", False)
    if not isinstance(worktree, bool):
        raise ConfigError(f"{where('worktree')}: must be true or false")
    return AgentSpec(
        name=name,
        command=command,
        profile=str(profile),
        role=strings["role"] or None,
        role_text=strings["role_text"] or None,
        cwd=cwd,
        env=dict(env),
        restart=restart,
        rows=rows,
        cols=cols,
        source=f"{source}:{_line_of(text, name, None, section)}",
        worktree=worktree,
    )


def default_team(*, prefer_claude: bool = True) -> Config:
    """Three agents (planning, coding, testing): real Claude if on PATH, else the fakes."""
    claude = shutil.which("claude") if prefer_claude else None
    specs = []
    for name, role_text in DEFAULT_ROLES.items():
        if claude:
            command, profile = [claude], "claude"
        else:
            command, profile = [sys.executable, str(FAKE_AGENT), "--name", name], "fake"
        specs.append(
            AgentSpec(
                name=name,
                command=command,
                profile=profile,
                role=name,
                role_text=role_text,
                source="(default team)",
            )
        )
    note = (
        "default team on the real Claude Code (claude found on PATH)"
        if claude
        else "default team on the bundled fake agents (no `claude` on PATH)"
    )
    return Config(specs, "(default team)", {}, note)


def find(explicit: str | None) -> Config:
    """The config to use: -c FILE, $STAFF_CONFIG, ./staff.toml, the user's, else the default."""
    if explicit:
        return load(Path(explicit))
    if os.environ.get("STAFF_CONFIG"):
        return load(Path(os.environ["STAFF_CONFIG"]))
    local = Path("staff.toml")
    if local.is_file():
        return load(local.resolve())
    import platformdirs

    user = Path(platformdirs.user_config_dir("agentstaff")) / "staff.toml"
    if user.is_file():
        return load(user)
    return default_team(prefer_claude=os.environ.get("STAFF_FAKE") != "1")


def _roles(
    raw_roles: Any, text: str, source: str, base: Path, hosts: dict[str, HostSpec]
) -> dict[str, RoleSpec]:
    """`[roles.NAME]`: a template agent plus `min`, `max`, `idle_timeout` (see pool.py), and
    `hosts`, where its clones may run (`local` is this machine). `min` and `max` are per host:
    a number (the same on each) or a table by host name (`max = { local = 2, build1 = 6 }`,
    whose keys are then the hosts if `hosts` is not given). A role's table on another host is
    sent to that host's daemon, whose own pool grows and shrinks it there (`HostSpec.roles`)."""
    if not isinstance(raw_roles, dict):
        raise ConfigError(f"{source}:1: [roles] must be a table of [roles.NAME] tables")
    known = (AGENT_KEYS - {"role", "host"}) | POOL_KEYS
    roles = {}
    for name, raw in raw_roles.items():

        def where(key: str | None, name: str = name) -> str:
            return f"{source}:{_line_of(text, name, key, 'roles')}: roles.{name}"

        if not NAME_RE.fullmatch(name) or name in RESERVED or not isinstance(raw, dict):
            raise ConfigError(f"{where(None)}: a table, named with letters, digits, - and _")
        unknown = sorted(set(raw) - known)
        if unknown:
            k = unknown[0]
            raise ConfigError(f"{where(k)}: unknown key {k!r}; known: {', '.join(sorted(known))}")
        try:
            places = _pool_hosts(raw, hosts)
            limits = _pool_limits(raw, places)
        except TableError as exc:
            key, _, what = str(exc).partition(": ")
            raise ConfigError(f"{where(key)}.{key}: {what}") from None
        idle = raw.get("idle_timeout", 300)
        if not isinstance(idle, int | float) or isinstance(idle, bool) or idle <= 0:
            raise ConfigError(f"{where('idle_timeout')}.idle_timeout: a positive number of seconds")
        fields = {k: v for k, v in raw.items() if k not in POOL_KEYS}
        template = _agent(name, fields, text, source, base, "roles")
        template.role = name
        lo, hi = limits.pop(LOCAL_HOST, (0, 0))
        roles[name] = RoleSpec(
            name, template, lo, hi, float(idle), hosts=limits, local=LOCAL_HOST in places
        )
        for host, (h_min, h_max) in limits.items():
            hosts[host].roles[name] = {
                "table": {**fields, "role": name},
                "pool": {"min": h_min, "max": h_max, "idle_timeout": float(idle)},
            }
    return roles


def _pool_hosts(raw: dict[str, Any], hosts: dict[str, HostSpec]) -> list[str]:
    """A pool role's `hosts` (else the keys of a `max` table, else only `local`), checked."""
    places, key = raw.get("hosts"), "hosts"
    if places is None:
        table = raw.get("max")
        if not isinstance(table, dict) or not table:
            return [LOCAL_HOST]
        places, key = list(table), "max"
    if not isinstance(places, list) or not places or not all(isinstance(h, str) for h in places):
        raise TableError('hosts: a list of host names ("local" is this machine)')
    for h in places:
        if h != LOCAL_HOST and h not in hosts:
            known = ", ".join([LOCAL_HOST, *hosts])
            raise TableError(f"{key}: unknown host {h!r} (hosts: {known}; add a [hosts.NAME] table)")
    if len(set(places)) != len(places):
        raise TableError("hosts: a host is named twice")
    return list(places)


def _pool_limits(raw: dict[str, Any], places: list[str]) -> dict[str, tuple[int, int]]:
    """(min, max) per host for a pool role: each a number (every host the same) or a table."""

    def per_host(key: str, default: int | None, lo: int) -> dict[str, int]:
        value = raw.get(key, default)
        table = value if isinstance(value, dict) else {h: value for h in places}
        if isinstance(value, dict):
            for h in table:
                if h not in places:
                    raise TableError(f"{key}: host {h!r} is not in this role's hosts ({', '.join(places)})")
            table = {h: table.get(h, default) for h in places}
        out: dict[str, int] = {}
        for h, n in table.items():
            if n is None:
                raise TableError(f"{key}: no value for host {h!r} (a number, or one for each host)")
            if not isinstance(n, int) or isinstance(n, bool) or not lo <= n <= 64:
                raise TableError(f"{key}: an integer from {lo} to 64 (per host), or a table of them by host")
            out[h] = n
        return out

    mins = per_host("min", 0, 0)
    maxes = per_host("max", None if isinstance(raw.get("max"), dict) else max(1, *mins.values()), 1)
    for h in places:
        if maxes[h] < mins[h]:
            raise TableError(f"max: below min ({mins[h]}) for host {h!r}")
    return {h: (mins[h], maxes[h]) for h in places}


def role_from_table(name: str, raw: Any, pool: Any, source: str) -> RoleSpec:
    """A pool role a hub placed on this host (`place` with `pool`): its template table checked
    the way this file's are (paths are this host's), and this host's `min`/`max`/`idle_timeout`."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in RESERVED:
        raise ConfigError(f"{source}: bad role name {name!r}")
    if not isinstance(raw, dict) or not isinstance(pool, dict):
        raise ConfigError(f"{source}: roles.{name}: a table and its pool's limits")
    unknown = sorted(set(raw) - (AGENT_KEYS - {"host"}))
    if unknown:
        raise ConfigError(f"{source}: roles.{name}: unknown key {unknown[0]!r}")
    try:
        (lo, hi), = _pool_limits({"min": pool.get("min", 0), "max": pool.get("max", 1)}, ["here"]).values()
    except TableError as exc:
        raise ConfigError(f"{source}: roles.{name}.{exc}") from None
    idle = pool.get("idle_timeout", 300)
    if not isinstance(idle, int | float) or isinstance(idle, bool) or idle <= 0:
        raise ConfigError(f"{source}: roles.{name}.idle_timeout: a positive number of seconds")
    template = _agent(name, raw, "", source, Path.cwd())
    template.role = name
    return RoleSpec(name, template, lo, hi, float(idle))


SERVER_ALIVE = 15
"""Seconds between ssh's keepalives (ServerAliveInterval); two missed ones end the link."""


def _hosts(
    raw_hosts: Any, placed: list[tuple[str, dict[str, Any]]], text: str, source: str, base: Path
) -> dict[str, HostSpec]:
    """`[hosts.NAME]` (`ssh = "user@host"` or `transport = [argv…]`) and the agents placed there."""
    if not isinstance(raw_hosts, dict):
        raise ConfigError(f"{source}:1: [hosts] must be a table of [hosts.NAME] tables")
    hosts: dict[str, HostSpec] = {}
    for name, raw in raw_hosts.items():

        def where(key: str | None, name: str = name) -> str:
            return f"{source}:{_line_of(text, name, key, 'hosts')}: hosts.{name}"

        if not NAME_RE.fullmatch(name) or name in RESERVED or not isinstance(raw, dict):
            raise ConfigError(f"{where(None)}: a table, named with letters, digits, - and _")
        if name == LOCAL_HOST:
            raise ConfigError(f"{where(None)}: `local` means this machine (in a role's hosts): another name")
        unknown = sorted(set(raw) - HOST_KEYS)
        if unknown:
            k = unknown[0]
            raise ConfigError(f"{where(k)}: unknown key {k!r}; known: {', '.join(sorted(HOST_KEYS))}")
        if ("ssh" in raw) == ("transport" in raw):
            raise ConfigError(
                f'{where(None)}: needs one of ssh = "user@host" or transport = ["cmd", …] (not both)'
            )
        if "transport" in raw:
            argv = raw["transport"]
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
                raise ConfigError(f"{where('transport')}.transport: a non-empty list of strings (an argv)")
            hosts[name] = HostSpec(name, list(argv), shlex.join(argv))
            continue
        target, options, staff = raw["ssh"], raw.get("ssh_options", []), raw.get("staff", "staff")
        if not isinstance(target, str) or not target.strip() or target.startswith("-") or any(
            c.isspace() for c in target
        ):
            raise ConfigError(f'{where("ssh")}.ssh: a destination, "user@host" or "host"')
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise ConfigError(f"{where('ssh_options')}.ssh_options: a list of strings (ssh's own options)")
        if not isinstance(staff, str) or not staff.strip():
            raise ConfigError(f"{where('staff')}.staff: the path of `staff` on that host")
        alive = raw.get("alive_interval", SERVER_ALIVE)
        if not isinstance(alive, int) or isinstance(alive, bool) or not 1 <= alive <= 3600:
            raise ConfigError(f"{where('alive_interval')}.alive_interval: seconds, from 1 to 3600")
        argv = [
            "ssh", "-T", "-o", "BatchMode=yes", "-o", f"ServerAliveInterval={alive}",
            "-o", "ServerAliveCountMax=2", "-o", "ConnectTimeout=10", *options, target, staff, "bridge",
        ]
        hosts[name] = HostSpec(name, argv, f"ssh {target}")
    for name, raw in placed:
        host = raw["host"]
        if not isinstance(host, str) or host not in hosts:
            known = ", ".join(hosts) or "none; add a [hosts.NAME] table"
            raise ConfigError(
                f"{source}:{_line_of(text, name, 'host')}: agents.{name}.host: unknown host {host!r} "
                f"(hosts: {known})"
            )
        table = {k: v for k, v in raw.items() if k != "host"}
        _agent(name, table, text, source, base)  # a mistake is this file's line, not the host's
        hosts[host].agents[name] = table
    return hosts


def agent_from_table(name: str, raw: Any, source: str) -> AgentSpec:
    """An agent placed here by a hub (the `place` request): its `[agents.NAME]` table checked
    the way this file's own are; relative paths are this host's."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in RESERVED:
        raise ConfigError(f"{source}: bad agent name {name!r}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: agents.{name} must be a table")
    unknown = sorted(set(raw) - (AGENT_KEYS - {"host"}))
    if unknown:
        raise ConfigError(f"{source}: agents.{name}: unknown key {unknown[0]!r}")
    return _agent(name, raw, "", source, Path.cwd())


def locate(explicit: str | None) -> Path | None:
    """The team file `find` would load (-c, $STAFF_CONFIG, ./staff.toml, the user's), or None."""
    if explicit:
        return Path(explicit)
    if os.environ.get("STAFF_CONFIG"):
        return Path(os.environ["STAFF_CONFIG"])
    if Path("staff.toml").is_file():
        return Path("staff.toml").resolve()
    import platformdirs

    user = Path(platformdirs.user_config_dir("agentstaff")) / "staff.toml"
    return user if user.is_file() else None


def empty_team() -> Config:
    """No agents: a host's daemon started by `staff bridge` with no team file of its own."""
    return Config([], "(empty team)", {}, "an empty team: agents are placed here by a hub")


def add_placed(cfg: Config, path: Path) -> None:
    """Add the agents hubs placed on this host (`save_placed`) to its team, after its own: a
    restarted daemon adopts them from the keeper instead of ending them as strangers. One that
    no longer checks is left out, with a warning in the daemon's log. The pool roles hubs
    placed here come back the same way (`PLACED_ROLES`)."""
    _add_placed_roles(cfg, path.with_name(PLACED_ROLES))
    placed = read_placed(path)
    have = {a.name for a in cfg.agents}
    for name, table in placed.items():
        if name in have:
            continue
        if isinstance(table, dict):
            table = {k: v for k, v in table.items() if k != PLACED_BY}
        try:
            cfg.agents.append(agent_from_table(name, table, f"{path} (placed by a hub)"))
        except ConfigError as exc:
            logging.getLogger("staff").warning("%s", exc)


def _add_placed_roles(cfg: Config, path: Path) -> None:
    """The pool roles hubs placed on this host (`role_from_table`), after the team file's own."""
    for name, entry in read_placed(path).items():
        if name in cfg.roles or not isinstance(entry, dict):
            continue
        try:
            where = f"{path} (placed by a hub)"
            cfg.roles[name] = role_from_table(name, entry.get("table"), entry.get("pool"), where)
        except ConfigError as exc:
            logging.getLogger("staff").warning("%s", exc)


def read_placed(path: Path) -> dict[str, Any]:
    """The placed agents' tables (or roles) by name ({} when there is no readable file)."""
    try:
        placed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return placed if isinstance(placed, dict) else {}


def save_placed(path: Path, name: str, table: dict[str, Any], *, by_hub: bool = False) -> None:
    """Remember an agent a hub placed here (`by_hub`), or one added at run time (0600,
    replaced atomically)."""
    placed = read_placed(path)
    placed[name] = {**table, PLACED_BY: "hub"} if by_hub else table
    write_json_atomic(path, placed)


PLACED_BY = "placed_by"
"""The key in a placed.json table that marks a hub's placement ("hub"); a table without it
(`staff new`, or a file from before the marker) is one added here. It is not a team-file key:
it is taken out before the table is read (`_add_placed`)."""


def placed_by_hub(entry: Any) -> bool:
    """Whether a placed.json entry is a hub's: the hub places it again on every reconnect, so
    only the hub's team file may rename or remove it."""
    return isinstance(entry, dict) and entry.get(PLACED_BY) == "hub"


PLACED_ROLES = "placed-roles.json"
"""In a host's state dir: the pool roles hubs placed there ({"table", "pool"} by role name)."""


def forget_placed(path: Path, name: str, new: str | None = None) -> None:
    """Drop a placed agent (`staff remove`), or file it under its `new` name (`staff rename`)."""
    placed = read_placed(path)
    table = placed.pop(name, None)
    if new is not None and table is not None:
        placed[new] = table
    write_json_atomic(path, placed)


def bad_name(name: str) -> str | None:
    """Why `name` cannot name an agent (None: it can)."""
    if NAME_RE.fullmatch(name) and name not in RESERVED:
        return None
    return (f"bad agent name {name!r}: letters, digits, - and _, starting with a letter, at most "
            f"32 chars, not one of {sorted(RESERVED)}")


PLACED = "placed.json"
"""In a host's state dir: the `[agents.X]` tables hubs placed there (part of its team across restarts)."""
