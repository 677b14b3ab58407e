# The README's two commands are `make ui` and `make test`; everything they need is set up here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export SPARK_LOCAL_IP ?= 127.0.0.1
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
HOST ?= 127.0.0.1
PORT ?= 3000
# The Spark Connect server `make ui` (and `make spark`) runs on 127.0.0.1, shared by every run.
SPARK_CONNECT_PORT ?= 15002
SPARK_SERVER := $(BIN)/python -m crypto_assets.lake.spark_server --port $(SPARK_CONNECT_PORT)

.PHONY: ui test setup setup-test demo bench lint clean spark spark-stop

$(BIN)/dagster: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(BIN)/dagster

setup: $(BIN)/dagster
	mkdir -p "$(DAGSTER_HOME)"
	cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"

# Browser tests drive Debian's chromium; install it when missing (never a downloaded browser build).
setup-test: setup
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

## (1) set up and start the Dagster UI (webserver + daemon) on http://$(HOST):$(PORT), its runs on one shared Spark
## Connect server that stops with it (crypto_assets/serve.py); SPARK_REMOTE=sc://... uses another, SPARK_REMOTE= (empty)
## keeps each run on its own local-mode Spark
ui: setup
	@echo "Dagster UI on http://$(HOST):$(PORT)  (DAGSTER_HOME=$(DAGSTER_HOME)); Ctrl-C stops it and the Spark server"
	(trap - INT; exec $(BIN)/python -m crypto_assets.serve -h $(HOST) -p $(PORT) --spark-port $(SPARK_CONNECT_PORT))

## start the shared Spark Connect server in the background (what `make ui` does); prints the SPARK_REMOTE to export
spark: setup
	$(SPARK_SERVER) start

spark-stop:
	$(SPARK_SERVER) stop

## (2) set up and run every test (unit, Spark local + standalone cluster, dagster dev end to end, browser)
test: setup-test
	$(BIN)/python -m pytest

## offline demo: the local Binance stand-in (synthetic data) + the UI pointed at it
demo: setup
	$(BIN)/python -m crypto_assets_tests.demo --host $(HOST) --port $(PORT)

bench: setup
	$(BIN)/python -m crypto_assets_tests.benchmark $(ARGS)

lint: setup
	$(BIN)/ruff check crypto_assets crypto_assets_tests

clean:
	rm -rf $(VENV) .dagster_home data test-artifacts
