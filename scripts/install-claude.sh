#!/usr/bin/env bash
# Install the pinned Claude Code CLI into <repo>/.cache/claude for the e2e tests.
# Why a local prefix: the tests must run one known version (its screens are golden data),
# never whatever `claude` happens to be on PATH. Idempotent and quiet when already there.
set -euo pipefail

VERSION="2.1.330"
PACKAGE="@anthropic-ai/claude-code"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$REPO/.cache/claude"
BIN="$PREFIX/node_modules/.bin/claude"

# `claude --version` prints e.g. "2.1.330 (Claude Code)".
version_ok() {
    [[ -x "$BIN" ]] && [[ "$("$BIN" --version 2>/dev/null)" == "$VERSION "* ]]
}

if version_ok; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "install-claude.sh: npm not found; install Node.js/npm to fetch $PACKAGE@$VERSION" >&2
    echo "  (or point STAFF_CLAUDE_BIN at an existing claude $VERSION binary)" >&2
    exit 1
fi

mkdir -p "$PREFIX"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# --prefix keeps it out of the global tree; the exact version pin keeps the screens stable.
if ! npm install --prefix "$PREFIX" --no-audit --no-fund --save-exact --loglevel=error \
        "$PACKAGE@$VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-claude.sh: npm install $PACKAGE@$VERSION failed" >&2
    exit 1
fi

if ! version_ok; then
    cat "$log" >&2
    echo "install-claude.sh: $BIN does not report version $VERSION after install" >&2
    exit 1
fi
