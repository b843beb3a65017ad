# Vroegsignaal — `make help` lists the targets. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install native clean-native run test lint typecheck unit clean-data lock

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@echo "• Installing Vroegsignaal and its tools into $(VENV) (pinned by constraints.txt)…"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test,dev]'
	@touch $@

# The rules engine compiled by mypyc (services/rules/native.py; its MODULES, the same list):
# rebuilt when one of these sources changes. Until then the package runs them as Python.
NATIVE_SOURCES = $(addprefix services/rules/,alerts.py batch.py conditions.py coverage.py evaluate.py events.py explain.py loading.py reasons.py series.py state.py worker.py)
NATIVE = services/rules/_native.json

$(NATIVE): $(STAMP) $(NATIVE_SOURCES) services/rules/native.py
	$(BIN)/python -c 'import sys; from services.rules.native import main; sys.exit(main(["build"]))'

install: $(STAMP) $(NATIVE) ## Create the virtual environment and install everything

native: $(NATIVE) ## Compile the rules engine with mypyc (make install does it; about a minute)

clean-native: $(STAMP) ## Remove the compiled rules engine: it runs as Python again
	$(BIN)/python -c 'import sys; from services.rules.native import main; sys.exit(main(["clean"]))'

run: $(STAMP) $(NATIVE) ## Run every service with demo data on embedded PostgreSQL (Ctrl-C stops it)
	$(BIN)/vroegsignaal up --demo

lint: $(STAMP) ## ruff: lint and format check
	$(BIN)/ruff check services tests bench migrations
	$(BIN)/ruff format --check services tests bench migrations

typecheck: $(STAMP) ## mypy --strict on the code and the tests
	$(BIN)/mypy services tests bench

test: lint typecheck $(NATIVE) ## Lint, type-check and run the whole test suite
	$(BIN)/pytest

unit: $(STAMP) $(NATIVE) ## Only the fast tests (no processes started)
	$(BIN)/pytest tests/core tests/cli

clean-data: ## Remove the embedded database of `make run` (./.vroegsignaal)
	rm -rf .vroegsignaal

lock: $(STAMP) ## Refresh constraints.txt from the installed environment
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^vroegsignaal' > constraints.txt
