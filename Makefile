# make run   - the whole stack on this machine (Temporal dev server + UI, worker, API, sandbox)
# make test  - the test suite against real Temporal, SQLite and HTTP
# make demo  - create an invoice against a running `make run`, pay it, watch it become paid

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test demo histories fuzz chaos lint format install clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

run: $(INSTALLED)
	$(PY) -m devstack.run

test: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

demo: $(INSTALLED)
	$(PY) -m devstack.demo

# 1,000 invoices while the worker, the API and Temporal are SIGKILLed; flags via CHAOS_ARGS.
chaos: $(INSTALLED)
	$(PY) -m devstack.chaos $(CHAOS_ARGS)

# Schemathesis with the full budget: over 1,000 generated requests across every route.
fuzz: $(INSTALLED)
	PAYRECON_FUZZ_EXAMPLES=100 PAYRECON_FUZZ_MINIMUM_CASES=1000 \
		$(PY) -m pytest tests/test_fuzz.py -s -p no:cacheprovider

# Re-record the workflow histories that tests/test_replay.py replays.
histories: $(INSTALLED)
	rm -f tests/histories/*.json
	PAYRECON_RECORD_HISTORIES=1 $(PY) -m pytest tests/test_lifecycle.py
	$(PY) -m pytest tests/test_replay.py

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(INSTALLED)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf .data .pytest_cache .ruff_cache
