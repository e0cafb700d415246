"""Fixtures of the end-to-end tests (the real programs against local mock APIs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.mock_anthropic import MockServer, start_mock


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[MockServer]:
    """The mock Anthropic API on loopback, logging each request to mock.jsonl."""
    server, _port = start_mock(log_path=tmp_path / "mock.jsonl")
    yield server
    server.stop()
