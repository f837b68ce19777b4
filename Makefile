# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?= config.toml
WORKERS ?= 1
# pytest-xdist's workers for `make test` (a test file per worker); 0 runs in one process.
TEST_WORKERS ?= 2
# RELOAD=1: restart on code or configuration changes; DEBUG=1: that, and tracebacks.
RELOAD ?=
DEBUG ?=

.PHONY: run test lint types unit unit-asyncio-debug bench clean

# The stamp files make both targets idempotent: the venv is made once and
# reinstalled only when pyproject.toml changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python -m runtime --config $(CONFIG) serve --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		$(if $(RELOAD),--reload) $(if $(DEBUG),--debug)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(VENV)/.installed-test
	$(BIN)/mypy

# The Node.js Socket.IO peer's packages (benchmarks/peers/socketio), exactly as locked;
# npm writes the hidden lock file inside node_modules on each install.
SOCKETIO_PEER := benchmarks/peers/socketio
$(SOCKETIO_PEER)/node_modules/.package-lock.json: $(SOCKETIO_PEER)/package-lock.json
	npm ci --prefix $(SOCKETIO_PEER) --no-audit --no-fund

# The benchmarks' smoke test runs the Socket.IO peer.
unit: $(VENV)/.installed-test $(SOCKETIO_PEER)/node_modules/.package-lock.json
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The realtime tests once more, in asyncio's debug mode and with the fast path off.
# Debug mode fails calls into the event loop from other threads, and reports coroutines
# never awaited and callbacks that hold the loop too long. With the fast path off every
# frame goes through the ASGI send, as on a server other than Hypercorn (the first run
# writes them straight to the sockets). Not the `cluster` tests: their servers are
# processes of their own, and what they test (Redis, the outbox, a proxy) is the same
# with the fast path off.
unit-asyncio-debug: $(VENV)/.installed-test
	PYTHONASYNCIODEBUG=1 RUNTIME_TESTS_FAST_PATH=off $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile -m "not cluster" tests/realtime tests/integration $(PYTEST_ARGS)

test: lint types unit unit-asyncio-debug

# Benchmarks against the Python peers (docs/performance.md); not part of `make test`.
# `make bench BENCH_ARGS=--quick` for a short run.
$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

bench: $(VENV)/.installed-bench $(SOCKETIO_PEER)/node_modules/.package-lock.json
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
