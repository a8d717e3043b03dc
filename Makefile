# Quick start: `make demo` and `make test` on a fresh machine (Python 3.10+ and PyPI; POSIX shell).
# demo installs only what the demo needs (the slim predict install + matplotlib for its plots);
# test installs the test extras (PyTorch, scikit-learn, PyAV, ...) and runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast test-slow lint docs install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[plot]'
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.demo

install: $(VENV)/.test

demo: $(VENV)/.demo
	$(BIN)/python -m mer.demo

test: $(VENV)/.test
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.test
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(VENV)/.test
	$(BIN)/python -m pytest -q -m slow

# ruff (pyflakes + pycodestyle) on the code, the tests and the benchmarks; mypy on all of mer/
# (no module is exempt: pyproject's [tool.mypy] has no ignore_errors overrides)
lint: $(VENV)/.test
	$(BIN)/ruff check mer tests benchmarks
	$(BIN)/mypy mer

# the documentation site (mkdocs.yml, docs/; the API reference from mer's docstrings) into site/,
# strictly: a broken link or anchor, a missing page or an API reference griffe cannot resolve fails
docs: $(VENV)/.test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: $(VENV)/.test
	$(BIN)/python -m benchmarks.audio_features

clean:
	rm -rf $(VENV) build dist site *.egg-info .pytest_cache
