#!/usr/bin/env bash
# Install the pinned agent CLIs other than Claude Code into <repo>/.cache/<name> for the
# e2e and golden tests: `install-agents.sh [name ...]` (default: all of them).
# Why pinned and local: the profiles in supervisor/detect/profiles are written from one
# version's screens (tests/data/<name>-<version>), never whatever is on PATH.
# Idempotent and quiet when already there (one `--version` per program).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# name  registry  package  version  binary (relative to the prefix)  what --version prints
AGENTS=(
    "codex npm @openai/codex 0.171.0 node_modules/.bin/codex codex-cli 0.171.0"
    "aider pypi aider-chat 0.86.2 venv/bin/aider aider 0.86.2"
    "opencode npm opencode-ai 1.18.33 node_modules/.bin/opencode 1.18.33"
    "gemini npm @google/gemini-cli 0.61.0 node_modules/.bin/gemini 0.61.0"
)

install_one() {
    local name="$1" registry="$2" package="$3" version="$4" bin="$5"; shift 5
    local want="$*" prefix="$REPO/.cache/$name"
    local path="$prefix/$bin"
    if [[ -x "$path" ]] && [[ "$("$path" --version 2>/dev/null)" == "$want"* ]]; then
        return 0
    fi
    local log; log="$(mktemp)"
    case "$registry" in
        npm)
            if ! command -v npm >/dev/null 2>&1; then
                echo "install-agents.sh: npm not found; install Node.js/npm to fetch $package@$version" >&2
                return 1
            fi
            mkdir -p "$prefix"
            if ! npm install --prefix "$prefix" --no-audit --no-fund --save-exact --loglevel=error \
                    "$package@$version" >"$log" 2>&1; then
                cat "$log" >&2; rm -f "$log"
                echo "install-agents.sh: npm install $package@$version failed" >&2
                return 1
            fi
            ;;
        pypi)
            # A venv of its own: a PyPI agent pins dozens of packages that must never meet
            # the project's .venv. Python 3.10+ (the interpreter that runs this script's make).
            local py="${AGENTS_PYTHON:-python3}"
            if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
                echo "install-agents.sh: $py (3.10+) not found to install $package==$version" >&2
                return 1
            fi
            # The venv's scripts name its python by absolute path: take the physical one, not
            # a worktree's .cache symlink that goes away with the worktree.
            mkdir -p "$prefix"; prefix="$(cd "$prefix" && pwd -P)"; path="$prefix/$bin"
            rm -rf "$prefix/venv"
            if ! { "$py" -m venv "$prefix/venv" \
                    && "$prefix/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
                        "$package==$version"; } >"$log" 2>&1; then
                cat "$log" >&2; rm -f "$log"
                echo "install-agents.sh: pip install $package==$version failed" >&2
                return 1
            fi
            ;;
        *)
            echo "install-agents.sh: unknown registry $registry" >&2
            return 1
            ;;
    esac
    rm -f "$log"
    if [[ "$("$path" --version 2>/dev/null)" != "$want"* ]]; then
        echo "install-agents.sh: $path does not report '$want' after install" >&2
        return 1
    fi
}

for entry in "${AGENTS[@]}"; do
    read -r name registry package version bin want <<<"$entry"
    if [[ $# -gt 0 ]] && [[ " $* " != *" $name "* ]]; then
        continue
    fi
    install_one "$name" "$registry" "$package" "$version" "$bin" $want
done
