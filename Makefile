# The two commands: `make run` (the hub on embedded defaults) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run test bench lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

run: setup
	$(VENV)/bin/mailward serve

test: setup
	bash scripts/install-test-deps
	$(PY) -m ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/verify.py

lint: setup
	$(PY) -m ruff check src tests bench
