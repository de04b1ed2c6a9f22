# Two commands a new user needs: `make run` (the main job on the embedded default data)
# and `make test` (the test suite). Each sets up its own virtual environment first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CORES  ?= 8
# Test processes (pytest-xdist, tests/conftest.py). 0 runs them in one process.
TEST_WORKERS ?= 2
# Extra Snakemake arguments for run and study, e.g. make run ARGS="--dry-run"
ARGS   ?=

.PHONY: setup run study control attribution radar radar-study test test-all report bench clean help

help:
	@echo "make run       set up, then snakemake --cores $(CORES) results/exp2 (embedded default data)"
	@echo "make study     like run, with three training seeds per experiment (configs/study.yaml, ~15 min on 2 cores)"
	@echo "make control   like run, in the control world of the nature run (configs/control.yaml; run make clean first)"
	@echo "make attribution  three seeds per experiment and the relearned attribution of every region-2 group (configs/attribution_study.yaml, ~1.5 h on 2 cores)"
	@echo "make radar     the radar track: snakemake results/radar (embedded radar nature run, ~7-10 min on 2 cores)"
	@echo "make radar-study  the radar study: the nature run's third design over 6 days (configs/radar_study.yaml, ~25 min on 2 cores; run make clean first)"
	@echo "make test      set up, then the test suite (slow tests excluded; TEST_WORKERS=2 processes)"
	@echo "make test-all  the test suite including slow tests"
	@echo "make report    snakemake --report report.html after a run"
	@echo "make bench     the benchmarks in benchmarks/"

# Idempotent: reinstalls only when the lock file or pyproject change.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(STAMP)

run: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake results/exp2 --cores $(CORES) --workflow-profile profiles/local $(ARGS)

study: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake results/exp2 --cores $(CORES) --workflow-profile profiles/local --configfile config.yaml configs/study.yaml $(ARGS)

control: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake results/exp2 --cores $(CORES) --workflow-profile profiles/local --configfile config.yaml configs/control.yaml $(ARGS)

attribution: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake results/attribution --cores $(CORES) --workflow-profile profiles/local --configfile config.yaml configs/attribution_study.yaml $(ARGS)

radar: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake results/radar --cores $(CORES) --workflow-profile profiles/local $(ARGS)

radar-study: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake results/radar --cores $(CORES) --workflow-profile profiles/local --configfile config.yaml configs/radar_study.yaml $(ARGS)

test: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist load

test-all: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist load

report: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores 1 --report report.html results/exp2

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do PATH=$(abspath $(BIN)):$$PATH $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .snakemake data results report.html
