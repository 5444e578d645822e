# Two commands do all the set-up: `make chat` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat test test-fast lint types browser serve flow bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

chat: $(STAMP)
	@$(BIN)/reportbot chat

# Bytecode cached under the venv even where PYTHONDONTWRITEBYTECODE is set (as on the shared machine):
# without it every test process compiles the whole tree and rewrites every test's asserts again (about
# 4 s of CPU a process). The source tree stays free of __pycache__ either way.
PYTEST := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(abspath $(VENV))/pycache $(BIN)/python -m pytest

test: $(STAMP) browser lint types
	$(PYTEST) -q

# The suite without the tests marked slow (crash runs, canaries through real servers, several workers,
# bursts, a real Chromium, whole services and new databases on PostgreSQL: tests/conftest.py's
# every_backend_postgresql_slow), one process a CPU (pytest-xdist), each property test with a quarter of
# its examples: for a developer between changes. 23.5-24.8 s on this 2-core machine when it is quiet
# (1,073 tests, 34 s of CPU; 29-33 s while other work keeps the load at 4-6); it was 64 s (9,285 items,
# 71 s of CPU) before the corpus checks became one test per language and question (tests/each.py).
# `make test` still runs everything, all examples, in one process.
test-fast: $(STAMP)
	REPORTBOT_TEST_EXAMPLES_PERCENT=25 $(PYTEST) -q -m "not slow" -n auto

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here). Installed with
# apt-get when missing and we are root (CI is); otherwise those tests skip with the reason (fail if CI=true).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "no chromium and not root: the browser tests will skip"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check

types: $(STAMP)
	$(BIN)/mypy

flow: $(STAMP)
	$(BIN)/reportbot flow > docs/flow.md

serve: $(STAMP)
	$(BIN)/reportbot serve

bench: $(STAMP)
	$(BIN)/python bench/export.py
	$(BIN)/python bench/webhook.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
