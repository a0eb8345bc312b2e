# clm-research: `make help` lists the targets. On a fresh machine with python3, the README's two
# commands are enough: `make report` (demo data → evaluation reports) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 2
export GX_ANALYTICS_ENABLED := false
export MPLBACKEND := Agg
# one BLAS thread per process: tests and runs use process parallelism; oversubscribed BLAS
# threads made GEE fits about 3x slower on 2 cores
export OPENBLAS_NUM_THREADS := 1
export OMP_NUM_THREADS := 1

.PHONY: browser help setup test-notebooks demo-data ingest validate indicators report test test-fast lint format lab bench clean clean-data

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev,dask]'
	$(BIN)/python -m ipykernel install --sys-prefix --name clm-research --display-name "clm-research (Python 3)" > /dev/null
	touch $(STAMP)

setup: $(STAMP) ## create .venv, install the package with dev extras, register the Jupyter kernel

demo-data: setup ## generate the fictional demo countries into data/raw/ (skipped when up to date)
	$(BIN)/clm demo-data --all

ingest: demo-data ## read raw exports into canonical tables (data/processed/)
	$(BIN)/clm ingest --all

validate: ingest ## run the Great Expectations data-quality gate for every country
	$(BIN)/clm validate --all

indicators: ingest ## write every country's indicator tables to reports/<country>/indicators/
	$(BIN)/clm indicators --all

report: demo-data ## THE MAIN JOB: evaluation reports (HTML + PDF) for every country (reports/index.html)
	@bash .ci/install-browser.sh >/dev/null 2>&1 || echo "warning: Chromium could not be installed (needs root or sudo): reports are written without report.pdf; run 'make browser' as an administrator"
	$(BIN)/clm run --all --jobs $(JOBS)

browser: ## install Debian's chromium: it prints report.pdf and runs the browser test (needs root or sudo)
	bash .ci/install-browser.sh

test: setup ## run the test suite (not the slow simulation studies: see `make bench`)
	$(BIN)/python -m pytest -m "not slow and not notebooks" -n $(JOBS) --dist loadgroup -q
	$(MAKE) --no-print-directory test-notebooks

test-notebooks: setup ## run the notebooks: the workshop on two sets of inputs (papermill), the reports (nbval)
	$(BIN)/python -m pytest -m notebooks -n $(JOBS) -q tests/test_study_design_notebooks.py
	sandbox=$$(mktemp -d) && CLM_DATA_DIR=$$sandbox/data CLM_REPORTS_DIR=$$sandbox/reports \
	  $(BIN)/python -m pytest --nbval-lax -p no:xdist -q notebooks/evaluation

lint: setup ## ruff lint and format check, mypy type check of the package (CI runs it)
	$(BIN)/ruff check clm_research tests benchmarks
	$(BIN)/ruff format --check clm_research tests benchmarks
	$(BIN)/mypy

format: setup ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix clm_research tests benchmarks
	$(BIN)/ruff format clm_research tests benchmarks

# Markdown opens rendered (not in the text editor), so `make lab` starts on the workshop's index
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings
lab: setup ## open JupyterLab on the study-design workshop's index (notebooks/study_design/README.md)
	mkdir -p $(LAB_SETTINGS)
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Markdown Preview"}}}' \
	  > $(LAB_SETTINGS)/overrides.json
	$(BIN)/jupyter lab --notebook-dir=notebooks notebooks/study_design/README.md

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,dask,bench]'
	touch $@

bench: $(VENV)/.bench-installed ## benchmarks and simulation studies (slow; writes reports/bench/results.md)
	$(BIN)/python benchmarks/run.py --cores $(JOBS)
	$(BIN)/python -m pytest -m slow -q -p no:cacheprovider || [ $$? -eq 5 ]
	$(BIN)/python benchmarks/simulation_study.py

clean: ## remove generated reports and caches (keeps .venv and data)
	rm -rf reports .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-data: ## remove generated demo, processed and quarantine data
	rm -rf data/raw/X? data/processed data/quarantine
