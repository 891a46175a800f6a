# The few dev commands. `make run` and `make test` are the README's two commands.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test lint bench golden clean

# `make run` installs only what the main job needs; the test extras (pytest, Playwright,
# psycopg, ruff, mypy…) come with the first target that needs them.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

## run the main job on the bundled sample dumps (state/, SQLite, Maildir outbox, feeds)
run: $(VENV)/.installed
	$(VENV)/bin/digest send

## lint, type-check and run the whole suite (installs Chromium, newsboat, PostgreSQL and
## Postfix from Debian if missing, and starts PostgreSQL and a private Postfix for its tests)
test: $(VENV)/.installed-test
	bash .ci/system-deps.sh
	$(VENV)/bin/ruff check digest tests
	$(VENV)/bin/ruff format --check digest tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache > /dev/null || $(VENV)/bin/lint-imports --no-cache
	DIGEST_TEST_DATABASE_URL="$${DIGEST_TEST_DATABASE_URL:-$$(bash .ci/postgres.sh)}" \
	DIGEST_TEST_POSTFIX="$${DIGEST_TEST_POSTFIX:-$$(bash .ci/postfix.sh)}" \
	  $(VENV)/bin/pytest -n 2 -q

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check --fix digest tests
	$(VENV)/bin/ruff format digest tests

## benchmarks: each prints the project's figure next to a baseline from the same run
bench: $(VENV)/.installed-test
	$(VENV)/bin/pytest -q -s -o python_files='bench_*.py' tests/bench

## rewrite tests/golden/ (the e-mail, web copy, index and feeds of a fixed small input)
## from what the code produces now; review the diff and commit it with the change
golden: $(VENV)/.installed
	$(VENV)/bin/pytest -q -p no:xdist tests/test_golden.py --update-golden

clean:
	rm -rf state/digest.db* state/public state/outbox state/digest.lock preview*.html preview.txt
