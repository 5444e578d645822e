# Two commands do all the set-up: `make chat` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat test lint types serve flow bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

chat: $(STAMP)
	@$(BIN)/reportbot chat

test: $(STAMP) lint types
	$(BIN)/python -m pytest -q

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
