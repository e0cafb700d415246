"""The rule engine: regions, matchers, priorities, rule-file errors, user overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.detect.rules import RuleError, View, compile_matcher, load_profile, parse_profile

RULE = "─" * 40
IDLE = ["banner", "", RULE, "❯ ", RULE, "  ? for shortcuts"]
WORKING = ["banner", "✶ Zesting…", RULE, "❯ ", RULE, "  esc to interrupt"]


def test_regions() -> None:
    v = View(IDLE, "✳ Claude Code")
    assert v.rule_rows() == [2, 4]
    assert v.region("prompt_box") == "❯ "
    assert v.region("after_last_rule") == "  ? for shortcuts"
    assert v.region("bottom:2") == f"{RULE}\n  ? for shortcuts"
    assert v.region("above_prompt_box:1") == "banner"
    assert v.region("title") == "✳ Claude Code"
    assert View(["no rules here"]).region("prompt_box") is None


def test_short_dash_lines_are_not_rules() -> None:
    assert View(["x" * 40, "────", "y"]).rule_rows() == []


@pytest.mark.parametrize(
    ("spec", "text", "hit"),
    [
        ({"contains": "esc"}, "press esc now", "esc"),
        ({"contains": "esc"}, "nothing", None),
        ({"regex": r"\d+s"}, "took 12s", "12s"),
        ({"line_regex": r"^❯ 1\."}, "a\n❯ 1. Yes", "❯ 1."),
        ({"not": {"contains": "x"}}, "abc", ""),
        ({"not": {"contains": "a"}}, "abc", None),
        ({"any": [{"contains": "q"}, {"contains": "b"}]}, "abc", "b"),
        ({"all": [{"contains": "a"}, {"contains": "q"}]}, "abc", None),
        ({"empty": True}, "  \n ", ""),
        ({"empty": True}, "x", None),
    ],
)
def test_matchers(spec: dict[str, object], text: str, hit: str | None) -> None:
    assert compile_matcher(spec, "t")(text) == hit


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"state": "idle", "match": {"contains": "x"}}, "needs an 'id'"),
        ({"id": "r", "state": "sleepy", "match": {"contains": "x"}}, "state must be one of"),
        ({"id": "r", "state": "idle", "region": "middle", "match": {"contains": "x"}}, "region must be"),
        ({"id": "r", "state": "idle", "match": {"regex": "("}}, "bad regex"),
        ({"id": "r", "state": "idle", "match": {"glob": "x"}}, "unknown matcher"),
        ({"id": "r", "state": "idle"}, "missing 'match'"),
        ({"id": "r", "state": "idle", "match": {"contains": "x"}, "colour": 1}, "unknown keys"),
    ],
)
def test_rule_errors_name_the_rule(rule: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message) as info:
        parse_profile({"rule": [rule]}, "my.toml", load_profile)
    assert "my.toml" in str(info.value)


def test_priority_and_fallback() -> None:
    p = load_profile("claude")
    assert p.detect(View(IDLE, "✳ Claude Code")).state == "idle"
    det = p.detect(View(WORKING, "✳ Claude Code"))
    assert (det.state, det.rule) == ("working", "working-footer")
    det = p.detect(View(["something else entirely"], ""))
    assert (det.state, det.rule) == ("working", "fallback")


def test_title_alone_says_working() -> None:
    assert load_profile("claude").detect(View(IDLE, "◐ Claude Code")).rule == "working-title"


def test_spinner_says_working_while_the_footer_shows_the_ctrl_c_hint() -> None:
    """Seen on the real Claude Code: a task sent right after Ctrl-C cleared a draft runs
    with 'Press Ctrl-C again to exit' in the footer (no 'esc to interrupt') and a title
    that is not spinning at that moment; the spinner line still shows the turn."""
    p = load_profile("claude")
    screen = ["❯ the task", "", "✶ Forming…", "", RULE, "❯ ", RULE, "  Press Ctrl-C again to exit"]
    assert p.detect(View(screen, "✳ Claude Code")).rule == "working-spinner"
    done = ["❯ the task", "● MOCK-REPLY: the task", "✻ Sautéed for 0s · done 11:18 PM", RULE, "❯ ", RULE, ""]
    assert p.detect(View(done, "✳ Claude Code")).state == "idle"


def test_user_override_replaces_shipped_profile(tmp_path: Path) -> None:
    (tmp_path / "claude.toml").write_text(
        '[profile]\nname = "claude"\nfallback = "blocked"\n'
        '[[rule]]\nid = "only"\nstate = "idle"\nregion = "screen"\nmatch = {contains = "READY"}\n'
    )
    p = load_profile("claude", (tmp_path,))
    assert [r.id for r in p.rules] == ["only"]
    assert p.detect(View(["READY"])).state == "idle"
    assert p.detect(View(["nope"])).state == "blocked"


def test_extends_replaces_rules_by_id(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        '[profile]\nextends = "claude"\n'
        '[[rule]]\nid = "idle-prompt"\nstate = "idle"\npriority = 50\nregion = "screen"\n'
        'match = {contains = "MY PROMPT"}\n'
    )
    p = load_profile("mine", (tmp_path,))
    assert len(p.rules) == len(load_profile("claude").rules)
    assert p.detect(View(["MY PROMPT"])).state == "idle"


def test_unknown_profile() -> None:
    with pytest.raises(RuleError, match="unknown profile"):
        load_profile("nosuch")


def test_bad_toml_in_override(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[profile\n")
    with pytest.raises(RuleError, match="bad.toml"):
        load_profile("bad", (tmp_path,))


# -- profile settings -----------------------------------------------------------------------
def test_shipped_settings_are_typed() -> None:
    claude, shell = load_profile("claude").settings, load_profile("shell").settings
    fake = load_profile("fake")
    assert (claude.paste, claude.enter, claude.exit_keys) == ("bracketed", "\r", ("\x03", "\x03"))
    assert claude.transcript == "claude" and claude.answer_drop and claude.session_flag == "--session-id"
    assert (shell.paste, shell.interrupt, shell.prompt_regex) == ("plain", "\x03", "[$#%>] ?$")
    assert shell.clear_input == "\x03" and shell.settle_after_blocked_ms == 300  # the defaults
    assert fake.settings == claude  # `extends` inherits the settings


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('pastee = "plain"', r"mine\.toml:4: unknown key 'pastee' in \[profile\] \(did you mean 'paste'\?\)"),
        ("colour = 3", r"mine\.toml:4: unknown key 'colour' in \[profile\]; known: name, extends"),
        ('paste = "fast"', r"mine\.toml:4: paste must be 'plain', 'bracketed' or 'always'"),
        ('exit_keys = "\\u0003"', r"mine\.toml:4: exit_keys must be a list of strings"),
        ("enter = 13", r"mine\.toml:4: enter must be a string"),
        ('settle_after_blocked_ms = "soon"', r"mine\.toml:4: settle_after_blocked_ms must be a number"),
        ("answer_drop = ['(']", r"mine\.toml:4: bad regex"),
    ],
)
def test_a_bad_setting_names_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    text = f'# mine\n[profile]\nextends = "claude"\n{line}\ninterrupt = "\\u001b"\n'
    (tmp_path / "mine.toml").write_text(text)
    with pytest.raises(RuleError, match=message):
        load_profile("mine", (tmp_path,))


def test_a_child_profile_overrides_one_setting(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('[profile]\nextends = "claude"\npaste = "plain"\n')
    mine, claude = load_profile("mine", (tmp_path,)).settings, load_profile("claude").settings
    assert mine.paste == "plain" and mine.exit_keys == claude.exit_keys and mine.enter == claude.enter


def test_a_key_written_as_a_table_is_found_on_its_line(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('[profile]\nextends = "claude"\n\n[profile.colours]\nred = 1\n')
    with pytest.raises(RuleError, match=r"mine\.toml:4: unknown key 'colours'"):
        load_profile("mine", (tmp_path,))


@pytest.mark.parametrize(("footer", "count"), [
    ("  ⏵⏵ auto mode on · 1 shell · ← for agents · ↓ to manage", 1),  # 2.1.330, a background Bash
    ("  ⏵⏵ auto mode on · 2 shells · ↓ to manage", 2),
    ("  ⏵⏵ auto mode on (shift+tab to cycle) · ← for agents", 0),
    ("  ⏵⏵ auto mode on (shift+tab to cycle) · esc to interrupt · ← for agents", 0),
])
def test_claudes_footer_counts_its_background_work(footer: str, count: int) -> None:
    import re

    pattern = load_profile("claude").settings.background_regex
    assert pattern is not None
    m = re.search(pattern, footer, re.M)
    assert (int(m.group("n")) if m else 0) == count


def test_bar_box_is_the_text_inside_a_left_bar_box() -> None:
    """opencode's input box: ┃ down the left, closed by ╹▀▀▀, its last row the model line
    (not text). A ┃ block with no closing row (a past prompt) is not the box."""
    box = ["  ┃", "  ┃  past prompt", "  ┃", "     answer", "",
           "  ┃", "  ┃  first line", "  ┃  second", "  ┃", "  ┃  Build · Mock Model",
           "  ╹▀▀▀▀▀▀▀▀▀▀", "   ~/w   12 (0%)  ctrl+p commands"]
    got = View(box).region("bar_box")
    assert got is not None and [ln.strip() for ln in got.split("\n")] == ["", "first line", "second", ""]
    assert View(box[:5]).region("bar_box") is None
    assert View(["  ┃  Build · Mock Model", "  ╹▀▀▀▀"]).region("bar_box") == ""
