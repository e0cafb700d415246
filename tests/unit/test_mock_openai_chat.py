"""The mock's chat completions path (Aider through litellm, opencode): the scripted turn a
client reassembles from the SSE chunks is the text the e2e tests expect back."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fixtures.mock_anthropic import reply_text
from fixtures.mock_openai import MockServer, start_mock, stop

BASH_TOOL = {"type": "function", "function": {
    "name": "bash", "parameters": {"type": "object", "required": ["command", "description"],
                                   "properties": {"command": {"type": "string"},
                                                  "description": {"type": "string"}}}}}


@pytest.fixture
def mock() -> Iterator[MockServer]:
    server, _port = start_mock()
    try:
        yield server
    finally:
        stop(server)


def chat(server: MockServer, messages: list[dict[str, Any]], **extra: Any) -> tuple[str, Any]:
    """POST a chat request: (content type, the parsed body or the list of SSE data)."""
    body = {"model": "mock-model", "messages": messages, **extra}
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/v1/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        kind = resp.headers.get("Content-Type", "")
        raw = resp.read().decode()
    if kind.startswith("text/event-stream"):
        return kind, [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    return kind, json.loads(raw)


def text_of(chunks: list[str]) -> str:
    assert chunks[-1] == "[DONE]"
    parts = []
    for data in chunks[:-1]:
        for choice in json.loads(data)["choices"]:
            parts.append(choice["delta"].get("content") or "")
    return "".join(parts)


def test_streamed_reply_is_the_scripted_text_and_system_messages_are_not_the_prompt(
        mock: MockServer) -> None:
    prompt = "two\nlines [middelay=0.2]"
    _kind, chunks = chat(mock, [{"role": "system", "content": "be terse"},
                                {"role": "user", "content": prompt},
                                {"role": "system", "content": "a reminder after the prompt"}],
                         stream=True)
    assert text_of(chunks) == reply_text(prompt)
    assert len(chunks) > 4  # streamed in pieces
    finishes = [c["finish_reason"] for d in chunks[:-1] for c in json.loads(d)["choices"]]
    assert finishes[-1] == "stop"
    names = [name for _t, name in mock.events]
    assert names == ["middelay-start", "middelay-end", "reply-end"]
    assert mock.records[-1]["last_user_text"] == prompt


def test_usage_chunk_only_when_asked(mock: MockServer) -> None:
    _k, plain = chat(mock, [{"role": "user", "content": "hi"}], stream=True)
    assert all(json.loads(d)["choices"] for d in plain[:-1])
    _k, asked = chat(mock, [{"role": "user", "content": "hi"}], stream=True,
                     stream_options={"include_usage": True})
    last = json.loads(asked[-2])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0


def test_not_streamed(mock: MockServer) -> None:
    kind, body = chat(mock, [{"role": "user", "content": [{"type": "text", "text": "hello"}]}])
    assert kind.startswith("application/json")
    assert body["choices"][0]["message"]["content"] == "MOCK-REPLY: hello"


def test_bash_without_tools_is_a_fenced_block(mock: MockServer) -> None:
    _k, chunks = chat(mock, [{"role": "user", "content": "do it [bash=echo hi]"}], stream=True)
    assert text_of(chunks).endswith("```bash\necho hi\n```")


def test_bash_with_a_shell_tool_is_a_tool_call_then_its_result(mock: MockServer) -> None:
    _k, chunks = chat(mock, [{"role": "user", "content": "do it [bash=echo hi]"}], stream=True,
                      tools=[BASH_TOOL])
    deltas = [c["delta"] for d in chunks[:-1] for c in json.loads(d)["choices"]]
    calls = [t for d in deltas for t in d.get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "bash"
    args = json.loads("".join(t["function"].get("arguments", "") for t in calls))
    assert args["command"] == "echo hi" and args["description"]
    _k, body = chat(mock, [{"role": "user", "content": "do it [bash=echo hi]"},
                           {"role": "assistant", "tool_calls": []},
                           {"role": "tool", "tool_call_id": "x", "content": "hi\n"}])
    assert body["choices"][0]["message"]["content"] == "MOCK-REPLY: tool result: hi"
