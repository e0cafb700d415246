"""The TOML position helper: the line of a table or key however the person wrote it."""

from __future__ import annotations

import tomllib

from supervisor.util.tomlpos import TomlPositions, line_of, positions

TEXT = '''\
# a comment with [agents.fake] and key = 1 in it
[staff]
stall_after = 30

[agents.a]
command = "x"
env = { A = "1", NESTED = { DEEP = 2 } }
"quoted key" = 1

[agents."b.c"]
note = """
restrat = "not a key, inside a string"
[agents.z]
"""
restrat = "on-failure"

[agents]
d.command = "y"
d.bogus = 3

[roles.r]
tools = [
  { name = "one" },
  { name = "two", extra = 1 },
]
[[steps]]
x = 1
'''


def test_the_text_is_toml() -> None:
    tomllib.loads(TEXT)  # the cases below are all legal TOML


def test_tables_and_keys() -> None:
    p = TomlPositions(TEXT)
    assert p.line("staff") == 2
    assert p.line("staff", "stall_after") == 3
    assert p.line("agents", "a") == 5
    assert p.line("agents", "a", "command") == 6
    assert p.line("agents", "a", "quoted key") == 8


def test_inline_tables() -> None:
    p = TomlPositions(TEXT)
    assert p.line("agents", "a", "env") == 7
    assert p.line("agents", "a", "env", "A") == 7
    assert p.line("agents", "a", "env", "NESTED", "DEEP") == 7
    assert p.line("roles", "r", "tools", "1", "extra") == 24


def test_dotted_keys() -> None:
    p = TomlPositions(TEXT)
    assert p.line("agents", "d") == 18  # made by a dotted key, not a header
    assert p.line("agents", "d", "bogus") == 19


def test_quoted_dotted_header_and_strings_are_not_keys() -> None:
    p = TomlPositions(TEXT)
    assert p.line("agents", "b.c") == 10
    assert p.line("agents", "b.c", "restrat") == 15  # not line 12, inside the string
    assert p.line("agents", "z") is None  # a header inside a string is not one
    assert p.line("agents", "fake") is None  # nor one in a comment


def test_nearest_falls_back_to_the_parent_then_the_top() -> None:
    p = TomlPositions(TEXT)
    assert p.nearest("agents", "a", "missing") == 5
    assert p.nearest("nothing", "here") == 1
    assert line_of(TEXT, "steps", "x") == 27


def test_never_raises_on_text_it_cannot_follow() -> None:
    assert positions('[a]\nb = "unterminated\n') == {("a",): 1, ("a", "b"): 2}
    assert positions("") == {}


def test_team_file_errors_point_at_inline_and_dotted_keys() -> None:
    """`staff.toml` errors name the line a person wrote, whichever TOML form they used
    (the old line finders said line 1 for both of these)."""
    import pytest

    from supervisor.team.config import ConfigError, parse

    inline = '[staff]\nstall_after = 1\n\n[agents]\nb = { command = "y", restrat = "never" }\n'
    with pytest.raises(ConfigError, match=r"^t.toml:5: agents.b: unknown key 'restrat'"):
        parse(inline, "t.toml")
    dotted = '[agents]\na.command = "x"\na.restart = 3\n'
    with pytest.raises(ConfigError, match=r"^t.toml:3: agents.a.restart"):
        parse(dotted, "t.toml")
    staff = '[agents.a]\ncommand = "x"\nrole_text = """\nhold_grace = 1\n"""\n[staff]\nhold_grace = "s"\n'
    with pytest.raises(ConfigError, match=r"^t.toml:7: staff.hold_grace"):
        parse(staff, "t.toml")


def test_a_mistyped_table_is_named_at_its_line() -> None:
    """`[agent.b]` (issue 20) is a typo to point at, not "no agents defined" at line 1."""
    import pytest

    from supervisor.team.config import ConfigError, parse

    alone = '# my team\n\n[agent.b]\ncommand = "x"\n'
    with pytest.raises(ConfigError, match=r"^t.toml:3: unknown table \[agent.b\]; did you mean"
                       r" \[agents.b\]\?"):
        parse(alone, "t.toml")
    beside = '[agents.a]\ncommand = "x"\n\n[rolse.r]\ncommand = "y"\n'
    with pytest.raises(ConfigError, match=r"^t.toml:4: unknown table \[rolse.r\]; did you mean"
                       r" \[roles.r\]\?"):
        parse(beside, "t.toml")
