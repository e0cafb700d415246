# agentstaff — the two commands a new user needs are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run run-headless test test-fast soak lint bench claude agents clean

# `make run` installs only what runs (no test or dev tools); `make test` adds those.
$(RUNTIME): pyproject.toml
	@echo "make: installing agentstaff into $(VENV) (first time only, ~15 s; log: $(VENV)/install.log)"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@# libghostty-vt where it has a wheel (the `fast` extra), else pyte alone (musl, old glibc)
	@$(BIN)/pip install -e '.[fast]' > $(VENV)/install.log 2>&1 || \
		(echo "make: no libghostty-vt wheel here; the screen emulator is pyte" && \
		 $(BIN)/pip install -e . >> $(VENV)/install.log 2>&1) || (cat $(VENV)/install.log; exit 1)
	@touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	@echo "make: installing the test and dev tools into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/pip install -e '.[test,dev]' >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(STAMP)

## run: the console on the default team (starts the daemon if needed; C-b d detaches, `staff down` stops it)
run: $(RUNTIME)
	@echo "make: \`staff\` is $(CURDIR)/$(BIN)/staff; for everyday use: export PATH=\"$(CURDIR)/$(BIN):\$$PATH\" (or: pipx install '.[fast]')"
	@$(BIN)/staff console

## run-headless: the supervisor in the foreground with the default team, printing every state change
run-headless: $(RUNTIME)
	$(BIN)/staff up --foreground

## claude: install the real Claude Code CLI (npm) into .cache/claude for the end-to-end tests
claude:
	@bash scripts/install-claude.sh

## agents: install the other pinned agent CLIs (Codex CLI …) into .cache/<name> for their e2e tests
agents:
	@bash scripts/install-agents.sh

## test: every test, from nothing (venv, install, the real Claude Code and the other agents, tests)
test: $(STAMP) claude agents
	$(BIN)/python -m pytest -q

## test-fast: the tests without the real Claude Code
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not claude and not agents and not soak"

## soak: the long load and fault runs (64 agents × 2 000 tasks …)
soak: $(STAMP)
	$(BIN)/python -m pytest -q -s -m soak -o addopts=""

lint: $(STAMP)
	$(BIN)/ruff check supervisor hook tests fixtures benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache *.egg-info
