# agentstaff — the two commands a new user needs are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run run-headless test test-fast soak lint bench claude clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "make: installing agentstaff and its test tools into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/pip install --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/pip install -e '.[test,dev]' >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(STAMP)

## run: the console on the default team (starts the daemon if needed; C-b d detaches, `staff down` stops it)
run: $(STAMP)
	$(BIN)/staff console

## run-headless: the supervisor in the foreground with the default team, printing every state change
run-headless: $(STAMP)
	$(BIN)/staff up --foreground

## claude: install the real Claude Code CLI (npm) into .cache/claude for the end-to-end tests
claude:
	@bash scripts/install-claude.sh

## test: every test, from nothing (venv, install, the real Claude Code from npm, tests)
test: $(STAMP) claude
	$(BIN)/python -m pytest -q

## test-fast: the tests without the real Claude Code
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not claude and not soak"

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
