# agnes: the extension-template targets (DESIGN.md, "Make targets").
#   make configure   Python venvs with the DuckDB hosts (2.0.0, 1.5.6, CLI 1.5.6)
#   make debug       build/debug/agnes.duckdb_extension (+ da, agnes-server)
#   make release     build/release/agnes.duckdb_extension (+ da, agnes-server)
#   make test        everything CI runs
#   make demo        sync sample data from a local server into the duckdb CLI
#   make install     so that `LOAD agnes` works by name in each host
#   make bench       benchmarks against the local server
#   make fuzz        the parser property tests with many more cases (FUZZ_CASES)
#   make clean

SHELL := /bin/bash
PYTHON ?= python3
VENV := configure/venv
VENV_OLD := configure/venv-1.5.6
PY := $(VENV)/bin/python
PY_OLD := $(VENV_OLD)/bin/python
DUCKDB_CLI := $(VENV)/bin/duckdb
# The CLI binary itself: $(DUCKDB_CLI) is a Python script that starts it,
# which would add Python's start-up to every timed run.
DUCKDB_BIN = $(shell $(PY) -c 'import duckdb_cli, os; print(os.path.join(os.path.dirname(duckdb_cli.__file__), "duckdb"))')
CARGO ?= cargo

.PHONY: all configure debug release test test-rust test-python test-sql lint fuzz install demo bench clean

all: debug

configure: $(VENV)/.done $(VENV_OLD)/.done

$(VENV)/.done: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

$(VENV_OLD)/.done:
	$(PYTHON) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/pip install -q duckdb==1.5.6
	touch $@

debug:
	$(CARGO) build --workspace
	$(PYTHON) scripts/stamp_extension.py target/debug/libagnes.so build/debug/agnes.duckdb_extension

release:
	$(CARGO) build --workspace --release
	$(PYTHON) scripts/stamp_extension.py target/release/libagnes.so build/release/agnes.duckdb_extension

test: configure debug lint test-rust test-python test-sql

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace

# The parsers fed arbitrary input (crates/engine/tests/fuzz.rs); `make test`
# runs 256 cases per property, this many more. Prints the inputs tried.
FUZZ_CASES ?= 10000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test -p agnes-engine --test fuzz -- --nocapture --test-threads 1

# Includes the fault suite (test_faults.py), which also checks docs/RELIABILITY.md.
test-python: configure debug
	$(PY) -m pytest -q test/python

# The SQL tests run on both DuckDB versions; skipped files fail the run. The
# local server behaves as today's Agnes (0.84) for one and as May 2026's for
# the other (files about 0.84 features pin their mode).
test-sql: configure debug
	$(PY) test/sqllogictest.py --strict --server-mode 0.84 --extension build/debug/agnes.duckdb_extension test/sql
	$(PY_OLD) test/sqllogictest.py --strict --server-mode may2026 --extension build/debug/agnes.duckdb_extension test/sql

# The README's first command: sample data on a local server, synced in the duckdb CLI.
demo: configure debug
	$(PY) scripts/demo.py $(DUCKDB_CLI) build/debug/agnes.duckdb_extension

# Benchmarks on release builds; BENCH_SCALE=0.1 for a quick run. Writes docs/PERFORMANCE.md.
bench: configure release
	$(PY) bench/bench.py --duckdb $(DUCKDB_BIN) --extension build/release/agnes.duckdb_extension \
		--server-bin target/release/agnes-server --da target/release/da --out docs/PERFORMANCE.md

install: configure release
	$(PY) scripts/install_extension.py build/release/agnes.duckdb_extension \
		$(PY) $(PY_OLD) $(DUCKDB_CLI)

clean:
	$(CARGO) clean
	rm -rf build configure
