# Bootstrap .venv with the pinned dependencies, then run the job.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: lint test test-slow demo clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Static checks: ruff (lint and format), mypy (config in pyproject.toml), import-linter (layer contracts).
LINT_PATHS := src tests benchmarks data_recipes

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: $(STAMP)
	$(PY) -m pytest -m "not slow"

# pytest exits 5 when no test is marked slow; that is not a failure.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow || test $$? -eq 5

demo: $(STAMP)
	$(VENV)/bin/cause-pl demo --out demo_out

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
