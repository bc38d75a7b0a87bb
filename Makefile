# Two commands: `make demo` and `make test`. Each creates or reuses .venv, installs the
# project into it (skipped when pyproject.toml has not changed), then runs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test workers (pytest-xdist): one per core by default; `make test TEST_WORKERS=0` runs
# the suite in one process.
TEST_WORKERS ?= auto

.PHONY: demo test soak install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vigie demo

# The tests start hundreds of `vigie` processes: each one's bytecode is cached, in the
# venv rather than the source tree, even where the shell sets PYTHONDONTWRITEBYTECODE
# (some CI images do; every process then compiled our sources again: 20 % of the time
# of tests/test_cli.py and tests/test_ops.py on 2 cores).
test: export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache
test: $(STAMP)
	$(BIN)/lint-imports
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# The long run of the reliability and security suite (1,000 hostile videos, ...).
soak: $(STAMP)
	VIGIE_SOAK=1 $(BIN)/python -m pytest -q tests/test_hardening_*.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo-out .pytest_cache
