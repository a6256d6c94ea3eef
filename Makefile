# One command each: `make run` serves the dashboard, `make test` runs the tests, `make lint` checks the code,
# `make bench` runs the benchmarks.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
PORT ?= 8501

.PHONY: install browser postgres run test lint mutate bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip check
	touch $(STAMP)
ifeq ($(GPU),1)
	# onnxruntime-gpu provides the same module as onnxruntime: one replaces the other
	$(PY) -m pip uninstall -q -y onnxruntime
	$(PY) -m pip install -q -r requirements-gpu.txt
endif

install: $(STAMP)

# Debian's Chromium drives the end-to-end tests (Playwright's own browser download does not work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# Debian's PostgreSQL holds the shared store's catalog in the tests (tests/postgres_server.py starts it).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; fi; }

run: install
	$(PY) -m dashboard.serve --server.address 127.0.0.1 --server.port $(PORT)

# ruff's lint and format check, configured in pyproject.toml (`.venv/bin/ruff format .` formats)
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: install browser postgres
	YOLO_BENCH_REQUIRE_POSTGRES=1 $(PY) -m pytest tests --durations=25

# Mutation testing, outside CI (it takes a while): mutmut mutates the modules pyproject.toml names and runs their
# fast tests against each mutant; the score per module goes to docs/results/.
mutate: install
	$(PY) -m pip install -q mutmut==3.8.1
	rm -rf mutants
	$(PY) -m mutmut run
	$(PY) benchmarks/mutation_report.py

bench: install
	$(PY) benchmarks/engine_overhead.py
	$(PY) benchmarks/lean_variants.py
	$(PY) benchmarks/pipeline_modes.py
	$(PY) benchmarks/history_scale.py
	$(PY) benchmarks/shared_store.py
	$(PY) benchmarks/sweep_time.py
	$(PY) benchmarks/tflite_int8_export.py

clean:
	rm -rf .cache .jobs test-output mutants
