# The two commands a newcomer types (README): `make report` and `make test`.
# Both create (once) and reuse a local virtual environment in .venv; nothing is installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= configs/default.yaml
PYTEST_ARGS ?=

.PHONY: help venv data report report-history test test-fast bench lab browser clean sync-config

help:
	@echo "make report   - set up, generate the demo data if absent, run the whole report pipeline"
	@echo "make report-history - two runs on two demo snapshots: 'Since last run', movers, the trend"
	@echo "make test     - set up (venv + headless chromium) and run the test suite"
	@echo "make bench    - run the benchmarks (10M transactions, 1M customers; several minutes)"
	@echo "make lab      - open the notebooks in JupyterLab"
	@echo "make report-experiment - plant an experiment on the demo data and read it by segment"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip setuptools wheel
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

data: $(STAMP)
	$(BIN)/segment demo-data --out data/demo --n-customers 20000 --seed 42

report: $(STAMP)
	$(BIN)/segment run --config $(CONFIG) $(if $(filter configs/default.yaml,$(CONFIG)),--demo,)

# An experiment read by segment on the demo data (planted effects; SPLIT_CHANGE=1 adds a mid-test split change)
.PHONY: report-experiment
report-experiment: $(STAMP)
	@test -f data/demo/transactions.parquet || $(BIN)/segment demo-data --out data/demo --n-customers 20000 --seed 42
	$(BIN)/segment demo-experiment --data data/demo $(if $(SPLIT_CHANGE),--split-change,)
	$(BIN)/segment experiment --config $(CONFIG) --exposures data/demo/exposures.parquet

# Two scheduled-style runs on two demo snapshots 270 days apart (planted: 10% of the steady customers stop
# buying): the second scores with the first run as its reference, so "Since last run" and the trend show.
report-history: $(STAMP)
	rm -rf reports/history
	$(BIN)/python -c "from segmentation_lib.data.demo import write_demo_snapshots; write_demo_snapshots('data/history', n_customers=20000, seed=42)"
	$(BIN)/segment run --config configs/history_1.yaml
	$(BIN)/segment run --config configs/history_2.yaml --reference "$$(ls -d reports/history/20*_* | tail -1)"

# Debian's chromium for the browser tests (no browser download at run time).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian's chromium for the browser tests ..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will say why they cannot run"; \
	  else echo "warning: chromium is not installed and this user cannot apt-get install it"; fi; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_clustering.py
	$(BIN)/python benchmarks/bench_validation.py

# JupyterLab on the notebooks with the demo configuration (demo data made if absent, the report kernel registered);
# each notebook's parameters cell names the configuration and the run folder (see README, "Working in JupyterLab").
lab: $(STAMP)
	@test -f data/demo/transactions.parquet || $(BIN)/segment demo-data --out data/demo --n-customers 20000 --seed 42
	$(BIN)/python -c "from segmentation_lib.report.pipeline import ensure_kernel; ensure_kernel()"
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

sync-config: $(STAMP)
	$(BIN)/python scripts/sync_config.py
