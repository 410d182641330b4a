# make run   - the whole stack on this machine (Temporal dev server + UI, worker, API, sandbox)
# make test  - the test suite against real Temporal, SQLite and HTTP
# make check - the inner loop: lint, types, and the unit, database and time-skipping tests
# make demo  - create an invoice against a running `make run`, pay it, watch it become paid

PYTHON ?= python3
VENV := .venv
# Every target here runs payrecon on this machine, with its dev keys: development mode.
export PAYRECON_DEVELOPMENT_MODE ?= true
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test check compat demo histories fuzz chaos bench screenshot lint format install lock postgres promtool clean

LOCK := requirements-dev.lock
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

# Every dependency at the version and hashes the lock names; then payrecon itself, editable.
$(INSTALLED): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	PYTHONWARNINGS="ignore:Editable installation" \
		$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(INSTALLED)

install: $(INSTALLED)

# Pin every dependency anew, with hashes, after a change to pyproject.toml's:
# requirements-dev.lock (make run, make test) and requirements.lock (the Dockerfile).
lock: $(INSTALLED)
	$(PY) -m piptools compile $(LOCK_FLAGS) --extra dev -o requirements-dev.lock pyproject.toml
	$(PY) -m piptools compile $(LOCK_FLAGS) --constraint requirements-dev.lock \
		-o requirements.lock pyproject.toml

# Debian's Postgres server, for the database tests; installed once when absent.
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && \
		 DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql)

# Debian's Prometheus, for promtool: the tests check the shipped alert rules with it.
promtool:
	@command -v promtool >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		 $(SUDO) apt-get install -y -qq --no-install-recommends prometheus)

run: $(INSTALLED)
	$(PY) -m devstack.run

test: $(INSTALLED) postgres promtool
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -m "not compat"

check: $(INSTALLED) postgres promtool
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest tests/unit tests/database tests/workflows

# Two Paystack client libraries no one here wrote, unchanged but for their base URL, drive
# the sandbox: pypaystack2 from PyPI (also in make test) and @alexasomba/paystack-node from
# npm, installed here by its lock.
compat: $(INSTALLED)
	npm ci --prefix compat/npm --no-audit --no-fund --loglevel=error
	$(PY) -m pytest tests/sandbox/test_pypaystack2.py tests/sandbox/test_npm_client.py

demo: $(INSTALLED)
	$(PY) -m devstack.demo

# Speed and memory on this machine beside a naive baseline; flags via BENCH_ARGS.
bench: $(INSTALLED)
	$(PY) -m bench.run $(BENCH_ARGS)

# 1,000 invoices while the worker, the API and Temporal are SIGKILLed; flags via CHAOS_ARGS.
chaos: $(INSTALLED)
	$(PY) -m devstack.chaos $(CHAOS_ARGS)

# The Temporal UI filtered to invoices that need review, into docs/ (needs `make run` and chromium).
screenshot: $(INSTALLED)
	@command -v chromium >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium)
	$(PY) -m devstack.screenshot

# Schemathesis with the full budget: over 10,000 generated requests across every route,
# half with a caller's key and half with an operator's.
fuzz: $(INSTALLED)
	PAYRECON_FUZZ_EXAMPLES=1500 PAYRECON_FUZZ_MINIMUM_CASES=5000 \
		$(PY) -m pytest tests/e2e/test_fuzz.py -s -p no:cacheprovider

# Re-record the workflow histories that tests/workflows/test_replay.py replays.
histories: $(INSTALLED)
	rm -f tests/histories/*.json
	PAYRECON_RECORD_HISTORIES=1 $(PY) -m pytest tests/e2e/test_lifecycle.py \
		tests/e2e/test_paystack_down.py tests/e2e/test_retention.py \
		tests/e2e/test_checkout.py tests/e2e/test_telling.py \
		tests/e2e/test_reconciliation.py tests/e2e/test_refunds.py tests/e2e/test_disputes.py \
		tests/workflows/test_invoice_lifetime.py
	$(PY) -m pytest tests/workflows/test_replay.py

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(INSTALLED)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf .data .pytest_cache .ruff_cache
