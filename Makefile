# The two commands a user needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: install demo test lint dev status bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/crypto-assets demo

test: $(STAMP)
	$(BIN)/ruff check crypto_assets crypto_assets_tests benchmarks
	$(BIN)/pytest -ra $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check crypto_assets crypto_assets_tests benchmarks
	$(BIN)/ruff format --check crypto_assets crypto_assets_tests benchmarks

dev: $(STAMP)
	$(BIN)/crypto-assets dev

status: $(STAMP)
	$(BIN)/crypto-assets status

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) .crypto_assets *.egg-info
