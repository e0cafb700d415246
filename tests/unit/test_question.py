"""detect/question.py: a blocked agent's question and choices, read off the dialog's text."""

from __future__ import annotations

from supervisor.detect.question import parse_question

DIALOG = """ Bash command
 Tip: auto mode handles these prompts for you
 Print fake
╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌
 echo fake
╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌
 Do you want to proceed?
 ❯ 1. Yes
   2. Yes, and always allow access to /tmp/a-very-long-directory-name from
      this project
   3. Yes, and switch to auto mode
   4. No

 Esc to cancel · Tab to amend"""


def test_a_permission_dialog() -> None:
    q = parse_question(DIALOG)
    assert q is not None
    assert q.text == "Do you want to proceed?"
    tip = "Tip: auto mode handles these prompts for you"
    assert q.context == ("Bash command", tip, "Print fake", "echo fake")
    assert [k for k, _ in q.choices] == ["1", "2", "3", "4"]
    wrapped = "Yes, and always allow access to /tmp/a-very-long-directory-name from this project"
    assert q.choices[1][1] == wrapped
    assert q.choices[3] == ("4", "No")
    assert "1. Yes" in q.summary() and "echo fake" in q.summary()


def test_no_numbered_choices_still_says_what_is_asked() -> None:
    q = parse_question(" Allow network access?\n (y/n)\n")
    assert q is not None and q.text == "(y/n)" and q.context == ("Allow network access?",) and not q.choices
    assert parse_question("") is None and parse_question(None) is None and parse_question("  \n ") is None


def test_numbers_must_count_up_from_one() -> None:
    q = parse_question(" Pick one\n 1. a\n 2. b\n 7. not a choice\n")
    assert q is not None and [k for k, _ in q.choices] == ["1", "2"]
