"""Answers, API errors, usage and the live session, read from real Claude Code 2.1.330 files.

The transcripts in tests/data/claude-2.1.330-transcripts are the real program's (run against
fixtures/mock_anthropic; only the bulky attachment / api-request lines were dropped), so the
shapes here are Claude's own: one assistant entry per content block repeating its response's
usage, an ``isApiErrorMessage`` entry instead of ``turn_duration`` when the API fails a turn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.mock_anthropic import markdown_reply
from supervisor.detect import answers
from supervisor.detect.answers import Usage, UsageMeter, from_transcript
from supervisor.detect.rules import load_profile

DATA = Path(__file__).resolve().parent.parent / "data" / "claude-2.1.330-transcripts"
MD = DATA / "md-400-529ok.jsonl"
ERRORS = DATA / "errors-529-429-500.jsonl"
TOOL = DATA / "tool-before-clear.jsonl"
CLEARED = DATA / "clear-after.jsonl"

# the mock's usage fields for each answered request, as its log recorded them
FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
MD_USAGE = [  # first [md], second [md] [instant], fourth [fail=2:529], fifth
    dict(zip(FIELDS, row, strict=True))
    for row in [(5, 129, 345, 2000), (7, 132, 361, 4000), (9, 8, 379, 6000), (11, 4, 383, 8000)]
]


def test_the_answer_is_the_recorded_markdown_byte_for_byte() -> None:
    got = from_transcript(MD, 0, "first [md]")
    assert got.complete and got.error is None
    assert got.text == markdown_reply("first [md]")
    assert "## Plan" in got.text and "**one**" in got.text and "`make test`" in got.text
    assert max(len(line) for line in got.text.splitlines()) > 120  # one line, not wrapped


def test_an_instant_reply_and_a_retried_one_are_their_own_turns_only() -> None:
    second = from_transcript(MD, 0, "second [md] [instant]")
    assert second.text == markdown_reply("second [md] [instant]")
    ok = from_transcript(MD, 0, "fourth [fail=2:529]")  # two 529s Claude retried by itself
    assert (ok.text, ok.complete, ok.error) == ("MOCK-REPLY: fourth [fail=2:529]", True, None)


def test_an_api_error_ends_the_turn_as_a_failure() -> None:
    got = from_transcript(MD, 0, "third [status=400]")
    assert got.complete and got.seen_prompt
    assert got.error == "API Error: 400 mock error for this prompt"
    assert got.error_status == 400
    assert got.text is None  # the next turn's text is not this turn's answer
    assert got.usage == Usage()  # Claude's synthetic error entry is not a response


def test_errors_claude_gave_up_on_after_its_own_retries() -> None:
    overloaded = from_transcript(ERRORS, 0, "a [fail=3:529] [lines=5]")
    assert overloaded.error_status == 529 and overloaded.error is not None
    assert overloaded.error.startswith("API Error: Repeated 529 Overloaded errors.")
    limited = from_transcript(ERRORS, 0, "b [status=429]")
    assert limited.error_status == 429
    assert limited.error == "API Error: Request rejected (429) · mock error for this prompt"
    fine = from_transcript(ERRORS, 0, "c [fail=1:500]")
    assert (fine.text, fine.error) == ("MOCK-REPLY: c [fail=1:500]", None)


def test_a_rate_limit_is_a_limit_and_an_overload_is_not() -> None:
    limited = from_transcript(ERRORS, 0, "b [status=429]")
    assert limited.error_kind == "rate_limit"
    assert answers.is_limit(limited.error or "", limited.error_kind, limited.error_status)
    overloaded = from_transcript(ERRORS, 0, "a [fail=3:529] [lines=5]")
    assert not answers.is_limit(overloaded.error or "", overloaded.error_kind, overloaded.error_status)
    assert answers.is_limit("API Error: You've hit your 5-hour limit · resets 5pm")  # from the screen


@pytest.mark.parametrize(("text", "expect"), [
    ("API Error: Request rejected (429) · Claude AI usage limit reached|1795864706", 1795864706.0),
    ("You have reached your specified API usage limits. You will regain access on 2026-12-01 at "
     "00:00 UTC.", 1796083200.0),
    ("API Error: 429 rate limited, try again in 30s", 1795860030.0),
    ("You've hit your 5-hour limit · resets 5pm (Europe/Berlin)", 1795881600.0),  # 16:00 UTC
    ("You've hit your 5-hour limit · resets 9am (Europe/Berlin)", 1795939200.0),  # tomorrow's
    ("resets 25pm (Europe/Berlin)", None),
    ("API Error: Request rejected (429) · mock error for this prompt", None),
])
def test_the_reset_time_a_limit_names(text: str, expect: float | None) -> None:
    now = 1795860000.0  # 2026-11-28 10:00 UTC (11:00 in Berlin)
    assert answers.limit_reset(text, now) == expect


def test_a_tool_turn_gives_every_text_block_in_order_and_counts_its_responses_once() -> None:
    got = from_transcript(TOOL, 0, "one [bash=echo hi]")
    assert got.text == "I will run a command.\n\nMOCK-REPLY: tool result: hi"
    # two responses (text + tool_use share one message id and one usage), summed
    assert got.usage.responses == 2
    assert (got.usage.input_tokens, got.usage.output_tokens) == (5 + 7, 23 + 7)
    assert (got.usage.cache_read_tokens, got.usage.cache_write_tokens) == (2000 + 4000, 345 + 354)
    assert got.usage.context_tokens == 7 + 4000 + 354  # the latest request's prompt
    assert got.usage.model == "claude-opus-5-5"


def test_an_unfinished_turn_is_not_complete_and_a_missing_one_not_seen(tmp_path: Path) -> None:
    lines = TOOL.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"turn_duration"' in line)
    part = tmp_path / "t.jsonl"
    part.write_text("".join(lines[:cut]) + lines[cut][:40])  # the closing line half written
    got = from_transcript(part, 0, "one [bash=echo hi]")
    assert got.seen_prompt and not got.complete
    assert from_transcript(part, 0, "never asked") == answers.TranscriptAnswer(None, False, False)
    assert from_transcript(tmp_path / "missing.jsonl", 0, "x").seen_prompt is False


def test_a_later_turn_is_never_mixed_into_an_earlier_answer(tmp_path: Path) -> None:
    """A turn that ended without its turn_duration (cut off) followed by a person's prompt:
    the person's answer is not appended to the task's."""
    rows = [json.loads(line) for line in MD.read_text().splitlines()]
    rows = [r for r in rows if not (r.get("type") == "system" and r.get("subtype") == "turn_duration")]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = from_transcript(path, 0, "first [md]")
    assert got.text == markdown_reply("first [md]") and not got.complete


def test_usage_over_an_agents_life_equals_the_mocks_figures() -> None:
    meter = UsageMeter()
    total = meter.read(MD)
    assert total.responses == len(MD_USAGE)
    assert total.input_tokens == sum(u["input_tokens"] for u in MD_USAGE)
    assert total.output_tokens == sum(u["output_tokens"] for u in MD_USAGE)
    assert total.cache_read_tokens == sum(u["cache_read_input_tokens"] for u in MD_USAGE)
    assert total.cache_write_tokens == sum(u["cache_creation_input_tokens"] for u in MD_USAGE)
    last = MD_USAGE[-1]
    assert total.context_tokens == (last["input_tokens"] + last["cache_read_input_tokens"]
                                    + last["cache_creation_input_tokens"])
    assert meter.read(MD) == total  # read again: nothing counted twice
    meter.read(TOOL)
    meter.reset_context()  # /clear: a new conversation
    after = meter.read(CLEARED)
    assert after.responses == len(MD_USAGE) + 3
    assert after.context_tokens == 5 + 2000 + 358


def test_usage_is_read_incrementally_up_to_the_last_whole_line(tmp_path: Path) -> None:
    data = TOOL.read_bytes()
    path = tmp_path / "t.jsonl"
    meter = UsageMeter()
    for cut in range(0, len(data) + 1, 997):  # appended in odd-sized pieces, mid-line too
        path.write_bytes(data[:cut])
        meter.read(path)
    path.write_bytes(data)
    assert meter.read(path) == UsageMeter().read(TOOL)


def test_cost_and_context_share() -> None:
    usage = UsageMeter().read(MD)
    assert CLAUDE.context_window == 200_000
    data = usage.to_json(CLAUDE.context_window)
    assert data["context_pct"] == round(100 * usage.context_tokens / 200_000, 1)
    rate = answers.PRICES["opus"]  # the model is claude-opus-5-5
    want = (usage.input_tokens * rate[0] + usage.output_tokens * rate[1]
            + usage.cache_read_tokens * rate[2] + usage.cache_write_tokens * rate[3]) / 1e6
    assert data["cost_usd"] == pytest.approx(want)
    assert Usage(model="some-new-model", responses=1).cost() is None


# -- the live session --------------------------------------------------------------------
REGISTRY = {"pid": 13086, "sessionId": "535fb9a8-88c7-4105-8dba-bdd02ab1ed51", "cwd": "/tmp/w",
            "version": "2.1.330", "kind": "interactive", "status": "idle",
            "updatedAt": 1795861232559, "statusUpdatedAt": 1795861232559}


def test_the_live_session_comes_from_the_registry(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    path = answers.registry_path(env, 13086)
    assert answers.live_session_id(env, 13086) is None  # not there (yet, or any more)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(REGISTRY))
    assert answers.live_session_id(env, 13086) == REGISTRY["sessionId"]


def test_a_torn_registry_is_never_used(tmp_path: Path) -> None:
    """Claude rewrites the file in place: a read can see a new head on an old tail, or an
    empty file. Such a read gives no id (the caller keeps the one it had)."""
    env = {"HOME": str(tmp_path)}
    path = answers.registry_path(env, 1)
    path.parent.mkdir(parents=True)
    new = json.dumps(dict(REGISTRY, status="busy"))
    old = json.dumps(dict(REGISTRY, sessionId="69d2c421-e190-49fc-b007-62ca8c84665f", name="a-longer-name"))
    path.write_text(new + old[len(new):])  # torn: the new JSON, then the old one's tail
    assert answers.read_registry(path) is None
    assert answers.live_session_id(env, 1) is None
    path.write_text("")
    assert answers.live_session_id(env, 1) is None
    path.write_text(json.dumps(dict(REGISTRY, sessionId="../../etc/passwd")))
    assert answers.live_session_id(env, 1) is None  # never a path out of projects/


# -- the screen, when there is no transcript ---------------------------------------------------
CLAUDE = load_profile("claude").settings
API_ERROR = CLAUDE.api_error
RETRY_REGEX = CLAUDE.retry_regex


def test_an_api_error_on_the_screen_is_a_failure_and_a_retry_is_a_detail() -> None:
    patterns = API_ERROR
    assert answers.screen_error("API Error: 400 mock error for this prompt", patterns)
    assert answers.screen_error("We saw an API Error: 400 earlier, all fine now", patterns) is None
    assert answers.screen_error("MOCK-REPLY: hi", patterns) is None
    lines = ["❯ three [status=529]", "✻ API error · retrying in 1s · attempt 2/10", "─" * 40]
    assert answers.retry_detail(lines, RETRY_REGEX) == "retrying after API error (attempt 2/10)"
    lines[1] = "✻ 429 mock error for this prompt · retrying in 3s · attempt 10/10"
    assert answers.retry_detail(lines, RETRY_REGEX) == (
        "retrying after 429 mock error for this prompt (attempt 10/10)")
    assert answers.retry_detail(["✶ Forming… (2s)"], RETRY_REGEX) is None
