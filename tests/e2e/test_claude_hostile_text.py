"""Property on the real Claude Code (against the mock): whatever a task's text holds, the task
ends with its own answer and the agent stays usable (issue 15; the fake runs more examples in
tests/daemon/test_hostile_text.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings

from tests.daemon.test_hostile_text import check_one
from tests.helpers.claude_team import claude_daemon, require_claude
from tests.helpers.hostile_text import task_texts

pytestmark = pytest.mark.claude
CLAUDE = require_claude()

MOCK_DIRECTIVE = re.compile(r"\[(delay|middelay|bash|write|delegate|status|fail|lines)=|\[(md|instant)\]")
"""Words the mock API obeys (fixtures/mock_anthropic.py): not what this test is about."""


@pytest.fixture
def claude_home(home: Path, tmp_path: Path) -> Iterator[Path]:
    with claude_daemon(tmp_path, CLAUDE):
        yield home


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(text=task_texts())
def test_any_task_text_ends_with_its_own_answer_on_claude(claude_home: Path, text: str) -> None:
    assume(not MOCK_DIRECTIVE.search(text))
    check_one(claude_home, "cc", text, "MOCK-REPLY")
