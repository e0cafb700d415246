"""The prompt-file syntax (hook/parse.py): tasks, context, the `@@` escape, quoted blocks."""

from __future__ import annotations

from hook.parse import is_prompt_file, may_delegate, parse

TEAM = {"planning", "coding", "testing"}


def test_tasks_in_order_with_shared_context() -> None:
    text = (
        "# last response: we agreed on tokens\n"
        "We are redoing the settings page.\n"
        "@planning plan dark mode\n"
        "mind the contrast\n"
        "@coding: implement the toggle\n"
        "@role:testing write the tests\n"
        "@any update the changelog"
    )
    plan = parse(text, TEAM)
    assert [t.target for t in plan.tasks] == ["planning", "coding", "role:testing", "any"]
    assert plan.tasks[0].body == "plan dark mode\nmind the contrast"
    assert plan.tasks[1].body == "implement the toggle"
    assert plan.context == "# last response: we agreed on tokens\nWe are redoing the settings page."
    assert plan.task_texts()[3] == plan.context + "\n\nupdate the changelog"
    assert plan.head == plan.context


def test_task_text_on_the_following_lines() -> None:
    plan = parse("@planning\nline one\n\nline two\n", TEAM)
    assert plan.tasks[0].body == "line one\n\nline two"
    assert plan.tasks[0].line == 1


def test_escape_unknown_words_notes_and_quoted_blocks() -> None:
    text = (
        "@@planning is our planner\n"  # the escape: a literal @ line, no task
        "@property\n"  # names no agent: text
        "[staff] no answer within 5s: …\n"  # the hook's own note: dropped
        '<staff-answer agent="planning" task="T-1" took="1.0s" asked="x">\n'
        "@coding do not run me\n"  # inside an earlier answer: quoted, never a task
        "</staff-answer>\n"
        "@coding now this"
    )
    plan = parse(text, TEAM)
    assert [(t.target, t.body) for t in plan.tasks] == [("coding", "now this")]
    assert plan.context.splitlines()[:2] == ["@planning is our planner", "@property"]
    assert "[staff]" not in plan.context
    assert "@coding do not run me" in plan.context
    assert plan.head.startswith("@@planning is our planner")  # written back as typed
    assert plan.unknown == ["@property"]


def test_syntax_only_and_file_names() -> None:
    assert [t.target for t in parse("@whoever do x").tasks] == ["whoever"]
    assert parse("@whoever do x", TEAM).tasks == []
    assert parse("mail me @ home\n  @planning indented is text", TEAM).tasks == []
    assert may_delegate(b"x\n@planning y") and not may_delegate(b"x @planning y\n@@z")
    assert is_prompt_file("/tmp/claude-0/claude-prompt-1b2c.md")
    assert not is_prompt_file("/repo/.git/COMMIT_EDITMSG")
    assert not is_prompt_file("/tmp/claude-prompt-1.md.bak")


def test_the_team_file_may_hold_a_hook_table() -> None:
    from supervisor.team.config import parse as parse_config

    cfg = parse_config('[agents.a]\ncommand = "true"\n[hook]\npicker = false\ntimeout = 60\n', "staff.toml")
    assert [a.name for a in cfg.agents] == ["a"]
