"""Which files we may trust: ours (or root's) and writable by no one else.

A team file decides which commands run as you; the state dir holds the HTTP token, the logs
and the journal. A file another user owns or can write could have been put there to run
their commands as you, to read your token, or (a symlink) to make the daemon write somewhere
else. One check serves every reader (``staff up``, the daemon, ``staff-hook``), so they never
disagree about a file. Standard library only: the editor hook imports it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

SOCKETS = ("staff.sock", "keeper.sock")
"""The names in the state dir that must be Unix sockets when they exist."""
SUBDIRS = ("agents", "recordings", "runs")
"""Folders of the state dir whose entries the daemon writes (checked one level deep)."""


def _who(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def untrusted(path: Path, st: os.stat_result | None = None, *, modes: bool = True) -> str | None:
    """Why `path` must not be trusted (owned by another user, or, with `modes`, writable by
    group or others), or None. Root's files are trusted: root can act as you anyway."""
    st = st or path.stat()
    if st.st_uid not in (os.getuid(), 0):
        return f"{path}: owned by {_who(st.st_uid)}, not by you"
    if modes and not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path}: writable by other users (mode {stat.filemode(st.st_mode)})"
    return None


def config_problem(path: Path) -> str | None:
    """Why a team file (or another file that names commands) must not be used, with the fix."""
    try:
        why = untrusted(path)
    except OSError:
        return None  # a missing file is the reader's own error
    if why is None:
        return None
    if "writable" in why:
        return f"{why}; its commands would run as you: fix with `chmod go-w {path}`"
    return f"{why}; its commands would run as you: read it, then use a copy of your own (`cp {path} …`)"


class UntrustedHome(Exception):
    """The state dir, or something in it, is not safely ours: one line that says what to do."""


def check_home(home: Path) -> None:
    """Make `home` private (0700) and refuse it when anything in it may have been planted.

    The dir must be ours. Whatever is in it (top level, and the folders the daemon writes)
    must be ours and writable by no one else, and the sockets must be sockets: a dir that
    was open to others could hold a token, a log symlink or a journal put there by them.
    The mode is fixed first, so nothing new can be planted while the entries are checked.
    A file's own mode matters only if the dir was open to others: in a private dir no one
    else can reach a group-writable file (an old umask 002 leaves such files).
    """
    st = home.lstat()
    if stat.S_ISLNK(st.st_mode):
        st = home.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedHome(f"{home} is not a directory; set STAFF_HOME to a directory of yours")
    if st.st_uid != os.getuid():
        raise UntrustedHome(
            f"{home}: owned by {_who(st.st_uid)}, not by you; refusing to use it "
            f"(set STAFF_HOME to a directory of yours)"
        )
    was_open = bool(st.st_mode & 0o077)
    if was_open:
        os.chmod(home, 0o700)
    entries = [home / name for name in os.listdir(home)]
    for sub in SUBDIRS:
        if (home / sub).is_dir() and not (home / sub).is_symlink():
            entries += [home / sub / name for name in os.listdir(home / sub)]
    for path in entries:
        try:
            est = path.lstat()
        except FileNotFoundError:
            continue
        why = untrusted(path, est, modes=was_open)
        if why is None and path.parent == home and path.name in SOCKETS and not stat.S_ISSOCK(est.st_mode):
            kind = "a directory" if stat.S_ISDIR(est.st_mode) else "not a socket"
            why = f"{path} is {kind}, where the daemon's socket belongs"
        if why is not None:
            raise UntrustedHome(
                f"{why}; refusing the state dir {home}: remove {path.name} (or the whole dir, "
                f"to start afresh) and run the command again"
            )


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_APPEND | os.O_CREAT) -> int:
    """Open a state file never through a symlink (O_NOFOLLOW), created 0600."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
