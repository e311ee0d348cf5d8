# Two commands do all the set-up on a fresh machine:
#   make run    start the broker on the embedded LMDB store (./data, 127.0.0.1:50051)
#   make test   create .venv, install, lint, type-check, check the generated code and run every test
#   make demo   the market-orders demo end to end: its own broker, PostgreSQL and nx-27017, both connectors
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test lint typecheck pytest proto proto-check bench bench-long bench-latency bench-sink bench-handler bench-clients bench-sync-senders bench-mirror bench-kafka stress clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,connectors,console]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/logsvc serve $(ARGS)

# connectors/examples/market_orders.py starts what ARGS does not name (--server, --pg-dsn,
# --mongo-uri), runs the example connectors, produces 100,000 orders (ARGS="--orders N") and
# follows them into both databases; it prints where the connectors' logs are and keeps them.
demo: $(STAMP)
	$(BIN)/python connectors/examples/market_orders.py --own-servers $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check logsvc clients connectors tests bench proto
	$(BIN)/ruff format --check logsvc clients connectors tests bench proto

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest-xdist runs the tests in PYTEST_WORKERS processes, one per CPU by default (auto; 2 here):
# most tests wait on subprocesses, sockets and timeouts, so 2 workers and the compileall below
# bring the 13.5 minutes of one process to 5.5. Not more: with 4 workers on 2 cores it took 3.5,
# but a test's own processes then get half a core, and the Kafka priority-lane tests
# (tests/client/test_lanes_consumer.py on Tansu) read nothing for 20 s in one full run of ten,
# as they do in one process beside three busy loops. Each worker is a pytest session of its own,
# with its own PostgreSQL cluster, nx-27017 and Tansu on free ports. PYTEST_WORKERS=0 runs
# everything in one process (pdb, -x, a clean traceback order).
#
# compileall first (half a second, then nothing until a file changes): where PYTHONDONTWRITEBYTECODE
# is set, as on these machines, each of the many processes the tests start (the CLI, the
# brokers, the connectors) would compile every module of ours it imports from source again.
PYTEST_WORKERS ?= auto
pytest: $(STAMP)
	$(BIN)/python -m compileall -q logsvc clients connectors tests
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test: lint typecheck proto-check pytest

proto: $(STAMP)
	$(BIN)/python proto/generate.py

# Fails when the generated code is stale (proto/ edited without `make proto`, or a hand edit):
# regenerate it in place, then any difference from the committed files is an error. On an
# up-to-date tree the regeneration writes the same bytes and leaves nothing changed.
proto-check: proto
	git diff --exit-code -- clients/logsvc_wire/_proto
	test -z "$$(git status --porcelain --untracked-files=all -- clients/logsvc_wire/_proto)"

# PAGE_CACHE=full: fill the page cache first, as a long-running broker's machine has it (bench/page_cache.py);
# PAGE_CACHE=as-found: the machine as it is. Default: as-found for bench, full for bench-long.
PAGE_CACHE ?=
# CPUS=split: the benchmark on one half of the CPUs, the brokers it starts on the other (bench/cpus.py);
# CPUS=shared: wherever the scheduler puts them. Default: shared for bench, split for bench-long.
CPUS ?=
BENCH_STATE = $(if $(PAGE_CACHE),--page-cache $(PAGE_CACHE)) $(if $(CPUS),--cpus $(CPUS))

bench: $(STAMP)
	$(BIN)/python bench/produce_fetch.py $(BENCH_STATE)

# 50 M records: produce and fetch rates per 5 M records, the broker's restart time (minutes; ~23 GB of /tmp);
# in the steady state unless PAGE_CACHE=as-found CPUS=shared
bench-long: $(STAMP)
	$(BIN)/python bench/produce_fetch.py --records 50000000 $(BENCH_STATE)

# one acknowledged single-record produce against its floors (fsync'd LMDB commit, an empty RPC)
bench-latency: $(STAMP)
	$(BIN)/python bench/single_latency.py

bench-sink: $(STAMP)
	$(BIN)/python bench/sink.py

bench-handler: $(STAMP)
	$(BIN)/python bench/handler.py

bench-clients: $(STAMP)
	$(BIN)/python bench/many_clients.py

# threads that each wait for every send's acknowledgement (send().result()): sends/s per shape
bench-sync-senders: $(STAMP)
	$(BIN)/python bench/sync_senders.py

# logsvc mirror copying 1 M records from its own broker onto its own Tansu (mirror_rps=N)
bench-mirror: $(STAMP)
	$(BIN)/python bench/mirror.py

# the Kafka transport's produce/fetch, the Postgres connector on Kafka beside logsvc, and the mirror
# (starts Tansu, a logsvc broker and PostgreSQL; --bootstrap HOST:PORT for a real Kafka)
bench-kafka: $(STAMP)
	$(BIN)/python bench/kafka.py $(ARGS)

stress: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
