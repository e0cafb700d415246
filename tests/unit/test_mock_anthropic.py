"""The mock Anthropic API's scripted turns: what the e2e tests on the real Claude rely on."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fixtures.mock_anthropic import (
    ERROR_MESSAGE,
    LIMIT_MESSAGE,
    MockServer,
    lines_reply,
    markdown_reply,
    parse_directives,
    reply_text,
    start_mock,
    stop,
)

TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]  # a main request offers tools


@pytest.fixture
def mock() -> Iterator[MockServer]:
    server, _port = start_mock()
    try:
        yield server
    finally:
        stop(server)


def post(server: MockServer, text: str, *, stream: bool = False,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    body = {"model": "claude-mock", "stream": stream, "tools": TOOLS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/v1/messages?beta=true",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as exc:
        if headers is not None:
            headers.update(exc.headers.items())
        return exc.code, json.loads(exc.read())
    if not stream:
        return status, json.loads(raw)
    events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    return status, events


def test_directives_parse() -> None:
    d = parse_directives("x [md] [instant] [status=400] [fail=2:529] [lines=7] [fail=bad]")
    assert (d.markdown, d.instant, d.status, d.lines) == (True, True, 400, 7)
    assert d.fail == (0, 529)  # the last one wins; a bad count is 0
    assert parse_directives("[fail=2:529]").fail == (2, 529)
    assert reply_text("plain") == "MOCK-REPLY: plain"
    assert reply_text("a [lines=3]") == lines_reply("a [lines=3]", 3)
    assert len(lines_reply("p", 3).splitlines()) == 4


def test_markdown_reply_has_what_a_screen_would_mangle() -> None:
    text = markdown_reply("p")
    for mark in ("## Plan", "**one**", "`make test`", "```python", "*three*"):
        assert mark in text
    assert max(len(line) for line in text.splitlines()) > 200


def test_an_instant_stream_is_one_delta_and_usage_is_the_final_figures(mock: MockServer) -> None:
    status, events = post(mock, "q [md] [instant]", stream=True)
    assert status == 200
    deltas = [e for e in events if e["type"] == "content_block_delta"]
    assert [d["delta"]["text"] for d in deltas] == [markdown_reply("q [md] [instant]")]
    assert "ping" not in [e["type"] for e in events]
    record = mock.records[-1]
    final = next(e for e in events if e["type"] == "message_delta")["usage"]
    assert final == record["usage"]
    assert set(final) == {"input_tokens", "output_tokens", "cache_creation_input_tokens",
                          "cache_read_input_tokens"}
    start = next(e for e in events if e["type"] == "message_start")["message"]["usage"]
    assert start["cache_read_input_tokens"] == final["cache_read_input_tokens"]


def test_status_answers_every_attempt_with_the_apis_error_shape(mock: MockServer) -> None:
    for _ in range(2):
        status, body = post(mock, "bad [status=400]")
        assert status == 400
        assert body == {"type": "error",
                        "error": {"type": "invalid_request_error", "message": ERROR_MESSAGE}}
    assert [r.get("status") for r in mock.records] == [400, 400]


def test_fail_n_then_the_reply(mock: MockServer) -> None:
    codes = [post(mock, "flaky [fail=2:529]")[0] for _ in range(3)]
    assert codes == [529, 529, 200]
    status, body = post(mock, "flaky [fail=2:529]")
    assert status == 200 and body["content"][0]["text"] == "MOCK-REPLY: flaky [fail=2:529]"
    assert post(mock, "other [fail=1:500]")[1]["error"]["type"] == "api_error"  # counted per prompt


def test_limit_rejects_until_its_reset_then_replies(mock: MockServer) -> None:
    headers: dict[str, str] = {}
    status, body = post(mock, "q [limit=0.5]", headers=headers)
    reset = int(headers["anthropic-ratelimit-unified-reset"])
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"] == LIMIT_MESSAGE.format(reset=reset)
    assert headers["x-should-retry"] == "false"  # Claude then does not retry it
    assert headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert post(mock, "q [limit=0.5]")[0] == 429  # the same reset for every attempt before it
    assert int(mock.limit_reset("q [limit=0.5]", 99)) == reset
    while time.time() < reset:
        time.sleep(0.05)
    status, body = post(mock, "q [limit=0.5]")
    assert status == 200 and body["content"][0]["text"] == "MOCK-REPLY: q [limit=0.5]"
