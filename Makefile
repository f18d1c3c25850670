# The two commands a user needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: install demo test lint dev mlflow status bench bench-windows dbt dbt-parse clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# the dbt manifest Dagster builds the transform assets from (offline `dbt parse`)
	$(BIN)/python -m crypto_assets.transform prepare
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

mlflow: $(STAMP)
	$(BIN)/crypto-assets mlflow

status: $(STAMP)
	$(BIN)/crypto-assets status

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

bench-windows: $(STAMP)
	$(BIN)/python benchmarks/windows.py

# dbt by hand on the configured warehouse, e.g. make dbt ARGS="build --select ohlc_1h"
dbt: $(STAMP)
	$(BIN)/python -m crypto_assets.transform $(ARGS)

# rewrite the manifest after editing dbt_project/ (loading the code location also does it)
dbt-parse: $(STAMP)
	$(BIN)/python -m crypto_assets.transform prepare --force

clean:
	rm -rf $(VENV) .crypto_assets *.egg-info dbt_project/target dbt_project/logs
