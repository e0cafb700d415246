"""Programs that keep session files of their own: each reader is registered under a name a
profile may give, and the session a file names is what a restart resumes."""

from __future__ import annotations

import json
from pathlib import Path

from supervisor.agent.agent import Agent, AgentSpec
from supervisor.detect import sessionfiles
from supervisor.detect.rules import TRANSCRIPTS, load_profile


def rollout(path: Path, session: str, cwd: str, prompt: str, answer: str | None) -> Path:
    """A Codex rollout as 0.171.0 writes one: session_meta, the prompt, the turn's end."""
    lines = [
        {"type": "session_meta", "payload": {"id": session, "cwd": cwd}},
        {"type": "response_item", "payload": {"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": prompt}]}},
    ]
    if answer is not None:
        end = {"type": "task_complete", "last_agent_message": answer}
        lines.append({"type": "event_msg", "payload": end})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(entry) + "\n" for entry in lines))
    return path


def test_every_reader_has_a_name_profiles_may_give() -> None:
    assert set(sessionfiles.READERS) <= set(TRANSCRIPTS)
    for name in ("claude", "codex", "aider"):  # a profile naming an unknown reader is refused at load
        assert load_profile(name).settings.transcript in ("claude", *sessionfiles.READERS)


def test_codex_rollout_gives_the_turn_and_its_session(tmp_path: Path) -> None:
    reader = sessionfiles.READERS["codex"]
    env = {"CODEX_HOME": str(tmp_path / "codex")}
    where = tmp_path / "codex/sessions/2026/11/28/rollout-x-abc.jsonl"
    path = rollout(where, "abc-123", "/w", "do it", "done")
    assert reader.files(env, "/w", 0.0) == [path]
    got = reader.read(path, "do it", "/w")
    assert (got.text, got.complete) == ("done", True)
    assert reader.session_id(path) == "abc-123"
    assert not reader.read(path, "do it", "/elsewhere").seen_prompt  # another directory's
    assert not reader.read(path, "something else", "/w").seen_prompt


def test_a_program_naming_its_own_session_is_resumed_with_that_id(tmp_path: Path) -> None:
    agent = Agent(AgentSpec(name="c", command=["codex", "--no-daemon"]), load_profile("codex"),
                  env={"HOME": str(tmp_path)})
    assert agent.session_id == ""  # not ours to choose
    assert agent.argv() == ["codex", "--no-daemon"]
    agent.starts = 1
    assert agent.argv() == ["codex", "--no-daemon"]  # no session read yet: a new one
    agent.session.adopt("abc-123")
    assert agent.session_id == "abc-123"
    assert agent.argv() == ["codex", "--no-daemon", "resume", "abc-123"]
    agent.starts = 0
    assert agent.argv() == ["codex", "--no-daemon"]  # the first start never resumes
