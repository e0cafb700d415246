"""State detection: a pure function from a screen view to a state, driven by rule files.

Rules are data (``profiles/<kind>.toml``, overridable from the user's config dir), so a
new Claude Code release that moves a line is fixed without a release of ours. Each rule
has a region (which part of the screen it reads), a matcher tree (``contains``,
``regex``, ``line_regex`` composed with ``any`` / ``all`` / ``not``), a priority and an
optional debounce. The highest-priority matching rule decides; the result says which
rule it was and what text it matched, so ``staff explain`` can show the reason.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from supervisor.states import DETECTABLE, WORKING, AgentState
from supervisor.util import tomlpos


class RuleError(Exception):
    """A rule file that cannot be used; the message names the file and the rule."""


# -- the view a detector reads ------------------------------------------------------------
_RULE_LINE = re.compile(r"[─━═]{8,}")
_PAD_ROW = re.compile(r"[▀▄]+")
"""A row of half blocks only: the padding above and below a box drawn in a background colour
(Gemini CLI's input box in a true-colour terminal; without true colour it pads with spaces)."""


TRANSCRIPTS = ("codex", "gemini", "opencode", "aider")
"""Programs whose own session files `detect/sessionfiles` reads (a name there is one here)."""


@dataclass
class View:
    """The screen as detection sees it; regions are computed on demand and cached."""

    lines: Sequence[str]
    title: str = ""
    modes: str = ""
    """The terminal modes the program has set, as words (``bracketed_paste``): a program
    that turns bracketed paste on only while it reads input (prompt_toolkit's, Aider's)
    says by it whether its prompt is live or the echo of a submitted one."""
    _cache: dict[str, str | None] = field(default_factory=dict)

    def rule_rows(self) -> list[int]:
        """Rows holding a full horizontal rule (the lines Claude draws around its input).

        A rule is drawn by the program from the first column across (nearly) the whole
        width; a line of ─ that a task or a reply holds is indented under a prompt mark or
        an answer bullet, so content never passes for the frame of the input box."""
        key = "__rules"
        if key not in self._cache:
            width = max((len(line.rstrip()) for line in self.lines), default=0)
            need = max(8, width - 2)
            rows = [
                y
                for y, line in enumerate(self.lines)
                if len(s := line.rstrip()) >= need and _RULE_LINE.fullmatch(s)
            ]
            self._cache[key] = ",".join(map(str, rows))
        raw = self._cache[key]
        return [int(r) for r in raw.split(",")] if raw else []

    def paragraph_rows(self, n: int) -> tuple[int, int] | None:
        """Rows [start, end) of the n-th block of non-empty lines counted from the bottom:
        the input box of a program that draws no rules around it (Codex: the box, a blank
        line, the footer) is `paragraph:2`. A row of half blocks is a blank line: the padding
        of a box drawn in a background colour, not its text."""
        blocks: list[tuple[int, int]] = []
        end: int | None = None
        for y in range(len(self.lines) - 1, -1, -1):
            text = self.lines[y].strip()
            filled = bool(text) and not _PAD_ROW.fullmatch(text)
            if filled and end is None:
                end = y + 1
            elif not filled and end is not None:
                blocks.append((y + 1, end))
                end = None
            if len(blocks) == n:
                return blocks[-1]
        if end is not None:
            blocks.append((0, end))
        return blocks[n - 1] if len(blocks) >= n else None

    def bar_box_rows(self) -> tuple[int, int, int] | None:
        """(start, end, column) of the text rows of the last box drawn as a bar down its
        left side and closed by a ``╹▀▀▀`` row (opencode's input box, ``┃`` at `column`):
        the box's own last row (opencode's agent and model line) is not text, left out."""
        for y in range(len(self.lines) - 1, -1, -1):
            line = self.lines[y]
            col = line.find("╹▀")
            if col < 0 or line[:col].strip():
                continue
            start = y
            while start > 0 and self.lines[start - 1][col : col + 1] == "┃":
                start -= 1
            return (start, y - 1, col) if y > start else None
        return None

    def region(self, spec: str) -> str | None:
        """The text of a named region, or None when the screen has no such region."""
        if spec in self._cache:
            return self._cache[spec]
        value = self._compute(spec)
        self._cache[spec] = value
        return value

    def tail(self, n: int = 8) -> list[str]:
        """The last `n` lines a person would read: above the input box when there is one (not
        the box, its footer or the right-aligned status row over it), no blank padding."""
        rules = self.rule_rows()
        lines = list(self.lines[: rules[-2]] if len(rules) >= 2 else self.lines)
        width = max((len(line) for line in self.lines), default=0)
        if lines and width and len(lines[-1]) - len(lines[-1].lstrip()) > width // 2:
            lines.pop()  # Claude's "◐ medium · /effort" row sits just over the box
        return [line.rstrip() for line in lines if line.strip()][-n:]

    def _compute(self, spec: str) -> str | None:
        name, _, arg = spec.partition(":")
        lines = self.lines
        if name == "screen":
            return "\n".join(lines)
        if name == "title":
            return self.title
        if name == "modes":
            return self.modes
        if name == "bottom":
            n = int(arg or 10)
            non_empty = [line for line in lines if line.strip()]
            return "\n".join(non_empty[-n:])
        if name == "paragraph":
            rows = self.paragraph_rows(int(arg or 1))
            return None if rows is None else "\n".join(lines[rows[0] : rows[1]])
        if name == "bar_box":
            box = self.bar_box_rows()
            if box is None:
                return None
            start, end, col = box
            return "\n".join(line[col + 1 :] for line in lines[start:end])
        rules = self.rule_rows()
        if name == "after_last_rule":
            if not rules:
                return None
            return "\n".join(lines[rules[-1] + 1 :]).rstrip("\n")
        if name == "prompt_box":
            # The input box: between the last two rules, with no other rule below them
            # except the footer area.
            if len(rules) < 2:
                return None
            return "\n".join(lines[rules[-2] + 1 : rules[-1]])
        if name == "above_prompt_box":
            if len(rules) < 2:
                return None
            n = int(arg or 6)
            above = [line for line in lines[: rules[-2]] if line.strip()]
            return "\n".join(above[-n:])
        raise RuleError(f"unknown region {spec!r}")


REGIONS = ("screen", "title", "modes", "bottom", "after_last_rule", "prompt_box", "above_prompt_box",
           "paragraph", "bar_box")


# -- matchers ---------------------------------------------------------------------------------
Matcher = Callable[[str], str | None]
"""Returns the matched text (possibly empty for a negation) or None for no match."""


def compile_matcher(spec: Any, where: str) -> Matcher:
    """Build a matcher from its TOML table: exactly one of the known keys."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise RuleError(
            f"{where}: a matcher is a table with one key (contains, regex, line_regex, any, all, not, empty)"
        )
    ((kind, arg),) = spec.items()
    if kind == "contains":
        if not isinstance(arg, str):
            raise RuleError(f"{where}: 'contains' needs a string")
        needle = arg

        def contains(text: str) -> str | None:
            return needle if needle in text else None

        return contains
    if kind in ("regex", "line_regex"):
        if not isinstance(arg, str):
            raise RuleError(f"{where}: '{kind}' needs a string")
        try:
            pattern = re.compile(arg, re.MULTILINE if kind == "line_regex" else 0)
        except re.error as exc:
            raise RuleError(f"{where}: bad regex {arg!r}: {exc}") from exc

        def regex(text: str) -> str | None:
            m = pattern.search(text)
            return m.group(0) if m else None

        return regex
    if kind == "empty":
        want = bool(arg)

        def empty(text: str) -> str | None:
            return "" if (not text.strip()) == want else None

        return empty
    if kind in ("any", "all"):
        if not isinstance(arg, list) or not arg:
            raise RuleError(f"{where}: '{kind}' needs a non-empty list of matchers")
        subs = [compile_matcher(s, f"{where}.{kind}[{i}]") for i, s in enumerate(arg)]
        if kind == "any":

            def any_(text: str) -> str | None:
                for sub in subs:
                    hit = sub(text)
                    if hit is not None:
                        return hit
                return None

            return any_

        def all_(text: str) -> str | None:
            hits = []
            for sub in subs:
                hit = sub(text)
                if hit is None:
                    return None
                hits.append(hit)
            return " … ".join(h for h in hits if h)

        return all_
    if kind == "not":
        sub = compile_matcher(arg, f"{where}.not")

        def not_(text: str) -> str | None:
            return "" if sub(text) is None else None

        return not_
    raise RuleError(f"{where}: unknown matcher {kind!r}")


# -- rules and profiles -------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    id: str
    state: AgentState
    priority: int
    region: str
    matcher: Matcher
    debounce: float = 0.0
    source: str = ""

    def match(self, view: View) -> str | None:
        text = view.region(self.region)
        if text is None:
            return None
        return self.matcher(text)


@dataclass(frozen=True)
class Detection:
    """What the detector decided and why."""

    state: AgentState
    rule: str
    matched: str
    region: str
    debounce: float = 0.0

    def explain(self) -> str:
        snippet = self.matched.replace("\n", "⏎")
        if len(snippet) > 80:
            snippet = snippet[:77] + "…"
        return f"{self.state} by rule {self.rule!r} (region {self.region}): {snippet!r}"


@dataclass(frozen=True)
class Settings:
    """How to talk to one kind of agent: the keys of its `[profile]` table besides `name`,
    `extends`, `fallback` and `version`. Any other key is a mistake, reported with its file
    and line (`parse_profile`), never silently ignored."""

    paste: str = "plain"
    """"bracketed": multi-line or long text goes as a bracketed paste (if the program enabled it);
    "always": every task does (a program that takes typed characters as keys of its own:
    opencode turns its box into a shell at a `!` typed anywhere; Gemini
    CLI drops a '?' typed in a burst: its shortcuts key)."""
    enter: str = "\r"
    """Submits the text; sent as a separate write once the box shows it."""
    enter_quiet_ms: float = 0
    """Before that Enter, wait until the program has drawn nothing for this long (at most 1 s):
    Gemini CLI takes an Enter within 40 ms of a paste, by its own slow clock, as a newline."""
    interrupt: str = "\x1b"
    """Aborts a turn (a cancel, the stall policy `interrupt`)."""
    clear_input: str = "\x03"
    """Empties the input box (our own interrupted text, before the next task)."""
    exit_keys: tuple[str, ...] = ()
    """Written in turn to quit the way a person would at an idle prompt (none: signals)."""
    prompt_prefix: str = ""
    """The mark before the input line and before a submitted prompt in the history."""
    answer_prefix: str = ""
    """The mark on the first line of an answer block on screen."""
    answer_drop: tuple[str, ...] = ()
    """Regexes of lines that are not part of an answer (spinners, timings)."""
    prompt_regex: str | None = None
    """A prompt line in the history, for programs with no prompt mark (a shell)."""
    transcript: str = ""
    """Where answers are read: "claude", Claude Code's session transcript; a name in
    TRANSCRIPTS, that program's own session files (`detect/sessionfiles/`, e.g. Codex's
    ``$CODEX_HOME/sessions/…/rollout-*.jsonl``); "", the screen only."""
    session_flag: str = ""
    resume_flag: str = ""
    unset_env: tuple[str, ...] = ()
    """Variables the daemon's environment must not pass to the program (Gemini CLI runs
    headless, no prompt, when it sees CI=true: under the daemon it has a real terminal)."""
    resume_argv: tuple[str, ...] = ()
    """Appended on a restart to resume the conversation, for a program that picks its own
    session id: {session} is the id read from its session files (Codex: ["resume",
    "{session}"]); without {session}, appended whenever it ran before."""
    role_flag: str = ""
    """Command-line flags: a new session's id, resuming one, the role's system prompt."""
    role_value: str = "{role}"
    """The word after `role_flag`: {role} is the role text, {role_toml} the text as a TOML
    string (Codex takes its role as `-c developer_instructions=<TOML string>`)."""
    input_region: str = "prompt_box"
    """The region holding the input box (a program with no rules around it: `paragraph:2`;
    opencode's box, a bar down its left side: `bar_box`)."""
    input_regex: str | None = None
    """The region is the input box only when this matches it (a dialog can stand there)."""
    placeholder: tuple[str, ...] = ()
    """Regexes of the hint an empty box shows (Codex's 'Ask Codex to do anything'): no draft."""
    command_chars: str = ""
    """Leading characters that make the program take its input as a command of its own
    (Claude Code: `!` a shell command, `/` a slash command) instead of a prompt."""
    literal_prefix: str = ""
    """Typed before a task that begins with one of `command_chars`, so it stays a prompt."""
    settle_after_blocked_ms: float = 300
    """An idle screen right after a question must last this long (the dialog may redraw)."""
    settle_after_start_ms: float = 0
    """The first idle screen after a start must last this long: Gemini CLI draws its box first,
    then its banner and a resumed session's history, and what was typed in between is lost."""
    fallback_debounce_ms: float = 150
    """A screen no rule recognises must persist this long before it counts."""
    session_registry: str = ""
    """"claude": the live session id is read from Claude Code's ``sessions/<pid>.json``."""
    api_error: tuple[str, ...] = ()
    """Regexes of an answer read from the screen that is the program's API error: a failure."""
    retry_regex: str | None = None
    """A screen line while the program retries a failed API call (groups `what`, `attempt`)."""
    context_window: float = 0
    """Tokens the model's context holds: the share used is shown per agent (0: not shown)."""
    background_regex: str | None = None
    """Below the last rule, the count of background work still running after a turn (a
    background shell, a sub-agent): group `n`."""

    def __post_init__(self) -> None:
        if self.paste not in ("plain", "bracketed", "always"):
            raise ValueError(f"paste must be 'plain', 'bracketed' or 'always', not {self.paste!r}")
        if self.transcript not in ("", "claude", *TRANSCRIPTS):
            known = ", ".join(repr(t) for t in ("claude", *TRANSCRIPTS))
            raise ValueError(f"transcript must be one of {known} or '', not {self.transcript!r}")
        if self.session_registry not in ("", "claude"):
            raise ValueError(f"session_registry must be 'claude' or '', not {self.session_registry!r}")
        if self.input_region.partition(":")[0] not in ("prompt_box", "paragraph", "bar_box"):
            raise ValueError(
                f"input_region must be 'prompt_box', 'paragraph:N' or 'bar_box', not {self.input_region!r}")
        optional = [r for r in (self.prompt_regex, self.retry_regex, self.input_regex,
                                self.background_regex) if r]
        for pattern in (*self.answer_drop, *self.api_error, *self.placeholder, *optional):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regex {pattern!r}: {exc}") from None
        for name in ("settle_after_blocked_ms", "fallback_debounce_ms", "context_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


SETTINGS = tuple(f.name for f in dataclasses.fields(Settings))
PROFILE_META = ("name", "extends", "fallback", "version")
"""The other keys of `[profile]`: what the profile is, rather than how to talk to it."""


def _setting(name: str, value: Any) -> Any:
    """`value` as the type `Settings.name` has; ValueError saying what it must be."""
    want = _SETTING_TYPES[name]
    if want is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{name} must be a number")
    if want == tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ValueError(f"{name} must be a list of strings")
    if isinstance(value, str):  # str and str | None
        return value
    raise ValueError(f"{name} must be a string")


_SETTING_TYPES = get_type_hints(Settings)


@dataclass
class Profile:
    """Everything we know about one kind of agent: its rules and its habits."""

    name: str
    rules: list[Rule]
    fallback: AgentState = WORKING
    version: str = ""
    source: str = ""
    settings: Settings = field(default_factory=Settings)

    @property
    def fallback_debounce(self) -> float:
        """A screen no rule recognises must persist this long before it counts: a frame
        split across two reads (half old, half new) matches nothing for an instant."""
        return self.settings.fallback_debounce_ms / 1000.0

    def detect(self, view: View) -> Detection:
        for rule in self.rules:  # sorted by priority, highest first
            hit = rule.match(view)
            if hit is not None:
                return Detection(rule.state, rule.id, hit, rule.region, rule.debounce)
        return Detection(self.fallback, "fallback", "", "(no rule matched)", self.fallback_debounce)


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a rule is a table")
    known = {"id", "state", "priority", "region", "match", "debounce_ms", "description"}
    unknown = set(raw) - known
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise RuleError(f"{where}: every rule needs an 'id'")
    where = f"{where} ({rid})"
    state = raw.get("state")
    if state not in DETECTABLE:
        raise RuleError(f"{where}: state must be one of {', '.join(DETECTABLE)}, not {state!r}")
    region = raw.get("region", "screen")
    if not isinstance(region, str) or region.partition(":")[0] not in REGIONS:
        raise RuleError(f"{where}: region must be one of {', '.join(REGIONS)}, not {region!r}")
    if region.partition(":")[2] and not region.partition(":")[2].isdigit():
        raise RuleError(f"{where}: region argument must be a number: {region!r}")
    priority = raw.get("priority", 0)
    if not isinstance(priority, int):
        raise RuleError(f"{where}: priority must be an integer")
    debounce = raw.get("debounce_ms", 0)
    if not isinstance(debounce, int | float) or debounce < 0:
        raise RuleError(f"{where}: debounce_ms must be a non-negative number")
    if "match" not in raw:
        raise RuleError(f"{where}: missing 'match'")
    matcher = compile_matcher(raw["match"], f"{where}.match")
    return Rule(rid, AgentState(state), priority, region, matcher, debounce / 1000.0, where)


def parse_profile(
    data: dict[str, Any], source: str, loader: Callable[[str], Profile], text: str = ""
) -> Profile:
    """A profile from its parsed TOML (`text`, when given, locates errors to a line)."""
    meta = data.get("profile", {})
    if not isinstance(meta, dict):
        raise RuleError(f"{source}: [profile] must be a table")
    name = str(meta.get("name") or Path(source).stem)
    rules: list[Rule] = []
    settings = Settings()
    fallback: str = WORKING
    version = str(meta.get("version", ""))
    base = meta.get("extends")
    if base:
        parent = loader(str(base))
        rules = list(parent.rules)
        settings = parent.settings
        fallback = parent.fallback
        version = version or parent.version
    fallback = str(meta.get("fallback", fallback))
    if fallback not in DETECTABLE:
        raise RuleError(f"{source}: fallback must be one of {', '.join(DETECTABLE)}")
    settings = _parse_settings(meta, settings, source, text)
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RuleError(f"{source}: rules are written as [[rule]] tables")
    by_id = {r.id: r for r in rules}
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, f"{source}: rule #{i + 1}")
        by_id[rule.id] = rule  # a child profile may replace a parent's rule by id
    rules = sorted(by_id.values(), key=lambda r: -r.priority)
    return Profile(name, rules, AgentState(fallback), version, source, settings)


def _parse_settings(meta: dict[str, Any], base: Settings, source: str, text: str) -> Settings:
    """`base` with the settings of a `[profile]` table; RuleError at the first bad key."""
    values: dict[str, Any] = {}
    for key, value in meta.items():
        if key in PROFILE_META:
            continue
        where = f"{source}:{tomlpos.line_of(text, 'profile', key)}" if text else source
        if key not in SETTINGS:
            known = (*PROFILE_META, *SETTINGS)
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RuleError(f"{where}: unknown key {key!r} in [profile]{hint}; known: {', '.join(known)}")
        try:
            values[key] = _setting(key, value)
            Settings(**{key: values[key]})  # each key checked alone, so the error has its line
        except ValueError as exc:
            raise RuleError(f"{where}: {exc}") from None
    return dataclasses.replace(base, **values)


def user_profile_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("agentstaff")) / "profiles"


def load_profile(name: str, extra_dirs: Sequence[Path] = (), _seen: tuple[str, ...] = ()) -> Profile:
    """Load a profile by name: the user's override first, then the shipped one."""
    if name in _seen:
        raise RuleError(f"profile {name!r} extends itself ({' → '.join((*_seen, name))})")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise RuleError(f"bad profile name {name!r}")
    for d in (*extra_dirs, user_profile_dir()):
        path = d / f"{name}.toml"
        if path.is_file():
            return _load_file(path.read_text(encoding="utf-8"), str(path), extra_dirs, (*_seen, name))
    shipped = resources.files("supervisor.detect.profiles") / f"{name}.toml"
    if not shipped.is_file():
        names = sorted(
            f.name.removesuffix(".toml")
            for f in resources.files("supervisor.detect.profiles").iterdir()
            if f.name.endswith(".toml")
        )
        raise RuleError(f"unknown profile {name!r} (shipped: {', '.join(names)})")
    return _load_file(
        shipped.read_text(encoding="utf-8"), f"profiles/{name}.toml", extra_dirs, (*_seen, name)
    )


def _load_file(text: str, source: str, extra: Sequence[Path], seen: tuple[str, ...]) -> Profile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{source}: {exc}") from exc
    return parse_profile(data, source, lambda n: load_profile(n, extra, seen), text)
