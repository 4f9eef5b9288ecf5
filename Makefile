# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PACKAGES := domain storage messages reports plans commands reminders publishing bot localslack
SOURCES := $(PACKAGES) tests $(wildcard bench)

# Every install takes the exact versions in constraints.txt, so a new release of a dependency
# cannot change a build unseen; `make lock` moves them to the newest releases pyproject.toml allows.
CONSTRAINTS := constraints.txt

.PHONY: run test lint layers typecheck pytest bench soak clean lock messages

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade -c $(CONSTRAINTS) pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

# Resolve pyproject.toml afresh in a throwaway venv (so nothing installed by hand into .venv is
# pinned) and write what it installed; review the diff, run `make test`, commit both together.
lock:
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --quiet -e '.[dev]'; \
	{ echo '# The exact versions every install takes (make, CI): pip install -c $(CONSTRAINTS) -e ".[dev]"'; \
	  echo '# Written by `make lock` from pyproject.toml; do not edit by hand.'; \
	  "$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable; } > "$$tmp/$(CONSTRAINTS)"; \
	mv "$$tmp/$(CONSTRAINTS)" $(CONSTRAINTS)

run: $(STAMP)
	$(BIN)/reap shell --demo

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

layers: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint layers typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

soak: $(STAMP)
	REAP_SOAK=1 $(BIN)/pytest -q tests/reliability

# The dashboard's Spanish catalog: extract the site's English strings and merge them into it; then
# translate what is new (msgstr "") and commit the .po (it is compiled when the site is rendered).
messages: $(STAMP)
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/pybabel -q extract -F reports/site/babel.cfg -k N_ --no-location --sort-output -o "$$tmp/messages.pot" .; \
	$(BIN)/pybabel -q update -i "$$tmp/messages.pot" -d reports/site/locale -D messages -w 100 --ignore-obsolete --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache reap.db
