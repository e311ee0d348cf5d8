# Two commands do all the set-up on a fresh machine:
#   make run    start the broker on the embedded LMDB store (./data, 127.0.0.1:50051)
#   make test   create .venv, install, lint, type-check and run every test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest proto bench bench-sink bench-handler bench-clients stress clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,connectors]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/logsvc serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check logsvc clients connectors tests bench proto
	$(BIN)/ruff format --check logsvc clients connectors tests bench proto

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

proto: $(STAMP)
	$(BIN)/python proto/generate.py

bench: $(STAMP)
	$(BIN)/python bench/produce_fetch.py

bench-sink: $(STAMP)
	$(BIN)/python bench/sink.py

bench-handler: $(STAMP)
	$(BIN)/python bench/handler.py

bench-clients: $(STAMP)
	$(BIN)/python bench/many_clients.py

stress: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
