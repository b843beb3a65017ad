# Vroegsignaal — `make help` lists the targets. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck unit clean-data lock

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@echo "• Installing Vroegsignaal and its tools into $(VENV) (pinned by constraints.txt)…"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test,dev]'
	@touch $@

install: $(STAMP) ## Create the virtual environment and install everything

run: $(STAMP) ## Run every service with demo data on embedded PostgreSQL (Ctrl-C stops it)
	$(BIN)/vroegsignaal up --demo

lint: $(STAMP) ## ruff: lint and format check
	$(BIN)/ruff check services tests bench migrations
	$(BIN)/ruff format --check services tests bench migrations

typecheck: $(STAMP) ## mypy --strict on the code and the tests
	$(BIN)/mypy services tests bench

test: lint typecheck ## Lint, type-check and run the whole test suite
	$(BIN)/pytest

unit: $(STAMP) ## Only the fast tests (no processes started)
	$(BIN)/pytest tests/core tests/cli

clean-data: ## Remove the embedded database of `make run` (./.vroegsignaal)
	rm -rf .vroegsignaal

lock: $(STAMP) ## Refresh constraints.txt from the installed environment
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^vroegsignaal' > constraints.txt
