"""Programs that keep session files of their own: each reader is registered under a name a
profile may give, and the session a file names is what a restart resumes."""

from __future__ import annotations

import json
import sqlite3
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
    for name in ("claude", "codex", "aider", "opencode", "gemini"):  # an unknown reader is refused
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
    kept = tmp_path / ".codex/sessions/2026/11/28/rollout-2026-11-28T12-00-00-abc-123.jsonl"
    rollout(kept, "abc-123", agent.cwd(), "do it", "done")
    assert agent.argv() == ["codex", "--no-daemon", "resume", "abc-123"]
    agent.starts = 0
    assert agent.argv() == ["codex", "--no-daemon"]  # the first start never resumes
    agent.starts = 1
    rollout(kept, "abc-123", str(tmp_path / "elsewhere"), "do it", "done")
    assert agent.argv() == ["codex", "--no-daemon"]  # Codex would ask which directory to use
    kept.unlink()  # Codex lost it (its home wiped): `resume abc-123` would exit at once
    assert agent.argv() == ["codex", "--no-daemon"]


def opencode_db(path: Path) -> sqlite3.Connection:
    """The tables of opencode 1.18.33's database that hold a turn (the columns read), in WAL
    mode as opencode keeps it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE session (id TEXT PRIMARY KEY, directory TEXT NOT NULL)")
    db.execute("CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,"
               " time_created INTEGER NOT NULL, data TEXT NOT NULL)")
    db.execute("CREATE TABLE part (id TEXT PRIMARY KEY, message_id TEXT NOT NULL, data TEXT NOT NULL)")
    return db


def oc_message(db: sqlite3.Connection, mid: str, session: str, at: int, data: dict[str, object],
               *parts: dict[str, object]) -> None:
    db.execute("INSERT INTO message VALUES (?, ?, ?, ?)", (mid, session, at, json.dumps(data)))
    for i, part in enumerate(parts):
        db.execute("INSERT INTO part VALUES (?, ?, ?)", (f"prt_{mid}_{i}", mid, json.dumps(part)))


def test_opencode_database_gives_the_turn_its_last_step_and_its_session(tmp_path: Path) -> None:
    reader = sessionfiles.READERS["opencode"]
    env = {"HOME": str(tmp_path)}
    db = opencode_db(tmp_path / ".local/share/opencode/opencode.db")
    db.execute("INSERT INTO session VALUES ('ses_1', '/w'), ('ses_2', '/elsewhere')")
    oc_message(db, "msg_u", "ses_1", 1, {"role": "user"}, {"type": "text", "text": "run it"})
    step = {"role": "assistant", "parentID": "msg_u", "time": {"created": 2}}
    oc_message(db, "msg_a1", "ses_1", 2, step, {"type": "tool", "tool": "bash"})
    [path] = reader.files(env, "/w", 0.0)
    assert path.name == "opencode.db-wal"  # where its writes land first: the file watched
    got = reader.read(path, "run it", "/w")
    assert (got.seen_prompt, got.complete) == (True, False)  # a step running
    assert reader.session_id(path) == "ses_1"
    db.execute("UPDATE message SET data = ? WHERE id = 'msg_a1'",
               (json.dumps({**step, "time": {"created": 2, "completed": 3}, "finish": "tool-calls"}),))
    assert not reader.read(path, "run it", "/w").complete  # a tool's step: the turn goes on
    oc_message(db, "msg_a2", "ses_1", 4, {**step, "time": {"created": 4, "completed": 5}, "finish": "stop"},
               {"type": "step-start"}, {"type": "text", "text": "done: hi"}, {"type": "step-finish"})
    got = reader.read(path, "run it", "/w")
    assert (got.text, got.complete) == ("done: hi", True)
    assert not reader.read(path, "run it", "/elsewhere").seen_prompt  # another directory's
    assert not reader.read(path, "something else", "/w").seen_prompt
    oc_message(db, "msg_u2", "ses_1", 6, {"role": "user"}, {"type": "text", "text": "stop it"})
    oc_message(db, "msg_a3", "ses_1", 7, {"role": "assistant", "parentID": "msg_u2",
               "time": {"created": 7, "completed": 8}, "error": {"name": "MessageAbortedError"}})
    got = reader.read(path, "stop it", "/w")
    assert (got.text, got.seen_prompt) == (None, True)  # interrupted: no answer recorded
    db.close()


def test_opencode_resumes_its_session_with_the_session_flag(tmp_path: Path) -> None:
    agent = Agent(AgentSpec(name="o", command=["opencode"]), load_profile("opencode"),
                  env={"HOME": str(tmp_path)})
    db = opencode_db(tmp_path / ".local/share/opencode/opencode.db")
    db.execute("INSERT INTO session VALUES ('ses_abc', ?)", (agent.cwd(),))
    db.close()
    agent.starts = 1
    agent.session.adopt("ses_abc")
    assert agent.argv() == ["opencode", "--session", "ses_abc"]


def gemini_chat(path: Path, session: str, cwd: str, records: list[dict[str, object]]) -> Path:
    """A Gemini CLI chat file as 0.61.0 writes one: the session's record, then messages."""
    import hashlib

    head = {"sessionId": session, "projectHash": hashlib.sha256(cwd.encode()).hexdigest(),
            "kind": "main"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in [head, *records]))
    return path


def test_gemini_chat_gives_the_reply_after_its_tool_calls_and_the_session(tmp_path: Path) -> None:
    reader = sessionfiles.READERS["gemini"]
    env = {"GEMINI_CLI_HOME": str(tmp_path), "HOME": "/nowhere"}
    where = tmp_path / ".gemini/tmp/w/chats/session-2026-11-28T13-02-68ceeb44.jsonl"
    call = {"id": "m1", "type": "gemini", "content": ""}
    records: list[dict[str, object]] = [
        {"id": "u0", "type": "user", "content": [{"text": "<session_context>…</session_context>"}]},
        {"id": "u1", "type": "user", "content": [{"text": "run it"}]},
        call,  # written when its stream ended, then again with the tool calls it asked for
    ]
    path = gemini_chat(where, "68ceeb44-a08d", "/w", records)
    assert reader.files(env, "/w", 0.0) == [path]
    assert reader.session_id(path) == "68ceeb44-a08d"
    got = reader.read(path, "run it", "/w")
    assert got.seen_prompt and not got.complete  # a model message with no text yet: not the end
    records += [
        {**call, "toolCalls": [{"name": "run_shell_command"}]},
        {"id": "u2", "type": "user", "content": [{"functionResponse": {"name": "run_shell_command"}}]},
        {"$set": {"lastUpdated": "now"}},
        {"id": "m2", "type": "gemini", "content": "done: hi"},
    ]
    gemini_chat(where, "68ceeb44-a08d", "/w", records)
    got = reader.read(path, "run it", "/w")
    assert (got.text, got.complete) == ("done: hi", True)
    assert not reader.read(path, "run it", "/elsewhere").seen_prompt  # another directory's
    cancelled = gemini_chat(tmp_path / "c.jsonl", "s2", "/w", [
        {"id": "u1", "type": "user", "content": [{"text": "stop me"}]},
        {"id": "i1", "type": "info", "content": "Request cancelled."},
    ])
    got = reader.read(cancelled, "stop me", "/w")
    assert got.seen_prompt and got.text is None and not got.complete


def test_gemini_and_opencode_resume_only_a_session_they_keep_for_this_directory(tmp_path: Path) -> None:
    """Both exit at once on a session id they do not have for the directory (seen on Gemini CLI
    0.61.0 and opencode 1.18.33): a restart then starts a new conversation instead."""
    gemini = sessionfiles.READERS["gemini"]
    env = {"GEMINI_CLI_HOME": str(tmp_path / "g")}
    assert not gemini.kept(env, "/w", "68ceeb44-a08d")
    gemini_chat(tmp_path / "g/.gemini/tmp/w/chats/session-2026-11-28T13-02-68ceeb44.jsonl",
                "68ceeb44-a08d", "/w", [])
    assert gemini.kept(env, "/w", "68ceeb44-a08d")
    assert not gemini.kept(env, "/elsewhere", "68ceeb44-a08d")
    assert not gemini.kept(env, "/w", "68ceeb44-ffff")

    opencode = sessionfiles.READERS["opencode"]
    env = {"HOME": str(tmp_path / "o")}
    assert not opencode.kept(env, "/w", "ses_1")  # no database at all
    db = opencode_db(tmp_path / "o/.local/share/opencode/opencode.db")
    db.execute("INSERT INTO session VALUES ('ses_1', '/w')")
    assert opencode.kept(env, "/w", "ses_1")
    assert not opencode.kept(env, "/elsewhere", "ses_1")
    assert not opencode.kept(env, "/w", "ses_2")
    db.close()
    agent = Agent(AgentSpec(name="o", command=["opencode"], cwd="/w"), load_profile("opencode"), env=env)
    agent.starts = 1
    agent.session.adopt("ses_gone")
    assert agent.argv() == ["opencode"]


async def test_two_agents_given_the_same_text_in_one_directory_each_get_their_own_answer(
    tmp_path: Path,
) -> None:
    """A fan-out to two Codex clones in one directory: both rollouts hold the same prompt.
    Each agent reads only a session no other agent of the team has, and never adopts one."""
    from supervisor.agent.task import Task

    env = {"CODEX_HOME": str(tmp_path / "codex"), "HOME": str(tmp_path)}
    day = tmp_path / "codex/sessions/2026/11/28"
    rollout(day / "rollout-1-sa.jsonl", "sess-a", str(tmp_path), "same text", "A's answer")
    rollout(day / "rollout-2-sb.jsonl", "sess-b", str(tmp_path), "same text", "B's answer")
    reader = sessionfiles.READERS["codex"]
    profile = load_profile("codex")
    a = Agent(AgentSpec(name="a", command=["codex"], cwd=str(tmp_path)), profile, env=env)
    b = Agent(AgentSpec(name="b", command=["codex"], cwd=str(tmp_path)), profile, env=env)
    a.session.others = lambda: frozenset({b.session_id} - {""})
    b.session.others = lambda: frozenset({a.session_id} - {""})
    b.session.adopt("sess-b")  # b read its first answer already
    got = await a.delivery._session_file_answer(Task(to="a", text="same text", created=0.0), reader)
    assert got.text == "A's answer" and a.session_id == "sess-a"
    a.session.adopt("sess-b")  # one another agent has is never adopted
    assert a.session_id == "sess-a"
    theirs = reader.read(day / "rollout-2-sb.jsonl", "same text", str(tmp_path), frozenset({"sess-b"}))
    assert not theirs.seen_prompt
