# `make run` and `make test` are the whole setup on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) run_all.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

# Only the tests that start no process (no stack, no browser, no CLI): well under a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not processes" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) bench/bench_roundtrip.py
	$(PY) bench/bench_mock_large.py
	$(PY) bench/bench_gui.py
	$(PY) bench/bench_backup.py
	$(PY) bench/bench_floods.py
	$(PY) bench/bench_agents.py
	$(PY) bench/bench_snapshots.py
	$(PY) bench/bench_restore_browser.py
	$(PY) bench/bench_tabs.py
	$(PY) bench/bench_gui_lists.py
	$(PY) bench/bench_archive.py
	$(PY) bench/bench_banner.py

clean:
	rm -rf $(VENV) *.egg-info
