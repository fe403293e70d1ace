# The README's two commands: `make up` (the whole platform) and `make test` (the whole suite).
# Both run the idempotent set-up first, so they work on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup up down status test lint unit features bench lock synth

setup:
	@bash tools/setup/bootstrap.sh

up: setup
	@$(VENV)/come2us up

down:
	@$(VENV)/come2us down

status:
	@$(VENV)/come2us status

lint: setup
	$(VENV)/ruff check .
	$(VENV)/mypy

# The full suite: lint, types, unit tests, and the features against a real local cloud.
test: lint
	$(VENV)/pytest

unit: setup
	$(VENV)/pytest tests/unit

features: setup
	$(VENV)/pytest features

# Every environment's CloudFormation template, cfn-lint and checkov clean (build/cloudformation).
synth: setup
	for env in dev stage prod; do $(VENV)/come2us synth --env $$env || exit 1; done

bench: setup
	$(VENV)/python bench/up_down.py
	$(VENV)/python bench/idle_memory.py

# Re-pin every Python dependency (direct and transitive) after editing pyproject.toml.
lock:
	rm -rf /tmp/come2us-lock && python3 -m venv /tmp/come2us-lock
	/tmp/come2us-lock/bin/pip install -q --upgrade pip
	/tmp/come2us-lock/bin/pip install -q -e ".[dev]"
	/tmp/come2us-lock/bin/pip freeze --exclude-editable | sort > constraints.txt
