# Every target sets up what it needs from a fresh clone: the virtual environment is built on demand.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

# Lambda runs python3.13: use it when the machine has one (pyenv included), else any python3 >= 3.11.
PYTHON ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)

.PHONY: venv demo test gates bench soak clean

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "No Python 3.11 or newer found: install python3.13 (or 3.11+) and retry." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/phrase-connector demo

# Deploy gates: aws-sam-cli lives in its own virtual environment because it pins boto3, click and
# cfn-lint versions that would change the project's. Tools are pinned; the stamp file names the
# version, so a second run installs nothing and a version change reinstalls.
SAM_VENV := .sam-venv
SAM_CLI_VERSION := 1.170.0
TOOLS := .tools
ASL_VALIDATOR_VERSION := 4.0.0

$(SAM_VENV)/.installed-$(SAM_CLI_VERSION):
	@test -n "$(PYTHON)" || { echo "No Python 3.11 or newer found for aws-sam-cli: install python3.13 and retry." >&2; exit 1; }
	rm -rf $(SAM_VENV)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

$(TOOLS)/.installed-asl-validator-$(ASL_VALIDATOR_VERSION):
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 18 or newer (it runs asl-validator) and retry." >&2; exit 1; }
	rm -rf $(TOOLS)
	npm install --no-save --no-audit --no-fund --loglevel=error --prefix $(TOOLS) asl-validator@$(ASL_VALIDATOR_VERSION)
	@touch $@

gates: $(SAM_VENV)/.installed-$(SAM_CLI_VERSION) $(TOOLS)/.installed-asl-validator-$(ASL_VALIDATOR_VERSION)
	SAM=$(SAM_VENV)/bin/sam ASL_VALIDATOR=$(TOOLS)/node_modules/.bin/asl-validator scripts/deploy_gates.sh

test: venv gates
	$(PY) -m pytest

# Runs every benchmarks/bench_*.py; BENCHMARKS.md records the figures and the machine.
bench: venv
	$(PY) benchmarks/run_all.py

# At least 200 file x locale flows under seeded faults; e.g. make soak SOAK_ARGS="--seed 7".
SOAK_ARGS ?=
soak: venv
	$(PY) benchmarks/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(TOOLS) .pytest_cache build *.egg-info
