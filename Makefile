# Every target sets up what it needs from a fresh clone: the virtual environment is built on demand.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

# Lambda runs python3.13: use it when the machine has one (pyenv included), else any python3 >= 3.11.
PYTHON ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)

.PHONY: venv demo test clean

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "No Python 3.11 or newer found: install python3.13 (or 3.11+) and retry." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/phrase-connector demo

test: venv
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
