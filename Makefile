# The two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration lint typecheck bench install clean readme-tables

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/flinkscale demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

# Property tests run derandomized here (tests/conftest.py): CI must not depend on a random draw.
test: lint typecheck
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q --durations=25 tests

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The simulator comparison tables in README.md, regenerated from `flinkscale simulate` (never typed by hand).
readme-tables: $(STAMP)
	$(BIN)/python scripts/readme_tables.py

clean:
	-$(BIN)/flinkscale cluster down 2>/dev/null
	-$(BIN)/flinkscale kafka down 2>/dev/null
	rm -rf .flinkscale
