# casereport: every target works on a fresh machine with only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.DEFAULT_GOAL := help
.PHONY: help install dev report plan publish test lint format bench mutate emulator clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Two stamps, each remade when pyproject.toml changes: what the tool needs to run (all
# `make report` installs, about 10 s), and the dev tools on top (tests, lint, benchmarks).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(DEV_STAMP)

install: $(STAMP) ## create .venv and install casereport (editable), only what it needs to run

dev: $(DEV_STAMP) ## install casereport with the dev tools (tests, lint, benchmarks)

# With no DD_API_KEY the workspace runs against the built-in emulator, so a fresh clone works.
# On a state of Datadog results, apply refuses that switch and names the missing secret.
EMULATOR_FLAG = $(if $(DD_API_KEY),,--emulator)

report: $(STAMP) ## plan and apply the workspace in reports/ (emulator when DD_API_KEY is unset)
	@$(if $(DD_API_KEY),,echo "DD_API_KEY is not set: using the local emulator (demo data), unless the state holds Datadog results.")
	$(BIN)/casereport apply --auto-approve $(EMULATOR_FLAG)
	@test -f site/index.html && echo "The site is in site/: open $(CURDIR)/site/index.html" || true

plan: $(STAMP) ## show what `make report` would do
	@$(if $(DD_API_KEY),,echo "DD_API_KEY is not set: using the local emulator (demo data).")
	$(BIN)/casereport plan $(EMULATOR_FLAG)

publish: $(STAMP) ## publish site/ to S3 with Pulumi (needs the Pulumi CLI and AWS credentials)
	$(BIN)/python -m pip install --quiet -e '.[publish]'
	$(BIN)/casereport publish --yes

lint: $(DEV_STAMP) ## ruff check, ruff format --check, mypy --strict, the import layering
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/mypy tools  # mypy's settings name only the package; the `make mutate` wrapper too
	$(BIN)/lint-imports --no-cache

format: $(DEV_STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench tools
	$(BIN)/ruff format src tests bench tools

test: lint ## lint, then the test suite
	$(BIN)/python -m pytest

bench: $(DEV_STAMP) ## run the benchmarks in bench/ and print their figures (BENCH=name to pick)
	$(BIN)/python bench/run.py $(BENCH)

# Mutation testing of plan, state and the API client with mutmut (docs/mutation.md); not
# part of `make test`. The budget is in seconds, all in; a short one runs an even sample.
MUTATE_BUDGET ?= 4800
mutate: $(DEV_STAMP) ## mutation scores of the engine (MUTATE_BUDGET=s, MUTATE_MODULES=casereport.state.history, MUTATE_STEP=k)
	$(BIN)/python tools/mutate.py --budget $(MUTATE_BUDGET) $(if $(MUTATE_MODULES),--modules "$(MUTATE_MODULES)") $(if $(MUTATE_STEP),--step $(MUTATE_STEP))

emulator: $(STAMP) ## serve the local Case Management emulator on 127.0.0.1:8710
	$(BIN)/casereport emulator serve

clean: ## remove the venv, caches, site and local state
	rm -rf $(VENV) site .casereport .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/results test-artifacts mutants mutation-survivors.txt
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf src/*.egg-info
