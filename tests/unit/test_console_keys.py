"""`console_keys` in staff.toml: the console's keys after the prefix, checked at load."""

from __future__ import annotations

import pytest

from supervisor.client.console.bindings import DEFAULT_KEYS, key_map
from supervisor.team.config import CONSOLE_ACTIONS, ConfigError, parse

AGENT = '[agents.a]\ncommand = "x"\n'


def test_every_action_has_default_keys() -> None:
    assert tuple(DEFAULT_KEYS) == CONSOLE_ACTIONS


def test_console_keys_replace_an_actions_keys() -> None:
    cfg = parse(AGENT + '[staff]\nconsole_keys = { split = "|", kill = ["X", "C-k"] }\n', "t.toml")
    keys = key_map(cfg.settings["console_keys"])
    assert keys["split"] == ("|",) and keys["kill"] == ("X", "\x0b") and keys["new"] == ("c",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{ splt = "s" }', "t.toml:4: staff.console_keys.splt: no such action"),
        ('{ split = "ss" }', 't.toml:4: staff.console_keys.split: a key ("s", "C-x", "^X")'),
        ("{ split = [] }", "t.toml:4: staff.console_keys.split: a key"),
        ('"s"', "t.toml:4: staff.console_keys must be dict"),
    ],
)
def test_a_bad_console_key_is_one_line_with_its_place(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(AGENT + f"[staff]\nconsole_keys = {value}\n", "t.toml")
    assert str(err.value).startswith(message), str(err.value)
