"""`staff-hook`: the editor Claude Code runs on Ctrl-G (see the delegation issue).

For now it only hands the file to the person's real editor; delegation lands next.
"""

from __future__ import annotations

import os
import shlex
import sys


def real_editor() -> list[str]:
    """The person's own editor: $STAFF_EDITOR, else vi."""
    return shlex.split(os.environ.get("STAFF_EDITOR") or "vi")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    editor = real_editor()
    os.execvp(editor[0], [*editor, *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
