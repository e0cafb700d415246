"""Aider's chat history, ``.aider.chat.history.md`` at the root of the git repo it runs in
(the working directory without git; ``$AIDER_CHAT_HISTORY_FILE`` when set).

Aider appends to it as a turn goes (``aider/io.py``): the prompt as lines ``#### <line>``,
its own messages as ``> <message>`` lines (a question and the answer given to it, ``Tokens:
…``), and each reply of the model as ``"\\n" + reply.strip() + "\\n\\n"``, untouched. So the
model's reply is there exactly, as long as none of its lines begins with ``> ``, ``#### ``
or ``# `` (those read as Aider's own lines: its own ``--restore-chat-history`` splits the
file the same way, ``aider.utils.split_chat_history_markdown``). The file holds no session
id: one repo, one history, resumed with ``--restore-chat-history``."""

from __future__ import annotations

from pathlib import Path

from supervisor.detect.answers import TranscriptAnswer, flat
from supervisor.detect.sessionfiles.recent import written_since

HISTORY = ".aider.chat.history.md"


def _root(cwd: str) -> Path:
    """The git repo's top folder holding `cwd` (Aider keeps its files there), else `cwd`."""
    here = Path(cwd)
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def histories(env: dict[str, str], cwd: str, since: float) -> list[Path]:
    """The chat history Aider writes for `cwd`, if written to since `since`."""
    named = env.get("AIDER_CHAT_HISTORY_FILE")
    path = Path(cwd, named) if named else _root(cwd) / HISTORY
    return written_since([path], since)


def _kind(line: str) -> str:
    if line.startswith("#### "):
        return "user"
    if line.startswith("> ") or line.startswith("# "):
        return "aider"
    return "reply"


def read_turn(path: Path, prompt: str, _cwd: str, _skip: frozenset[str] = frozenset()) -> TranscriptAnswer:
    """The reply to the last prompt in the history that is ours: the model's last reply
    before the next prompt (a turn where Aider sent the model a correction holds several).
    A turn that ended in ``^C`` has no answer; one with no reply yet is not complete."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return TranscriptAnswer(None, False, False)
    lines = text.splitlines(keepends=True)
    want = flat(prompt)[-200:]
    start = None
    i = 0
    while i < len(lines):
        if _kind(lines[i]) != "user":
            i += 1
            continue
        j = i
        while j < len(lines) and _kind(lines[j]) == "user":
            j += 1
        said = "".join(line[5:] for line in lines[i:j])
        if want and want in flat(said):
            start = j
        i = j
    if start is None:
        return TranscriptAnswer(None, False, False)
    replies: list[list[str]] = []
    interrupted = False
    run: list[str] | None = None
    for line in lines[start:]:
        kind = _kind(line)
        if kind == "user":
            break
        if kind == "reply":
            if run is None:
                run = []
                replies.append(run)
            run.append(line)
            continue
        run = None
        if line.startswith("> ^C"):
            interrupted = True
    answers = ["".join(r) for r in replies if "".join(r).strip()]
    if interrupted or not answers:
        return TranscriptAnswer(None, False, True)
    # written as "\n" + reply.strip() + "\n\n": the reply is the run, stripped
    return TranscriptAnswer(answers[-1].strip(), True, True)
