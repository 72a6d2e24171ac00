# sdsl-companion: one command for the results, one for the tests.
#   make figures   execute every notebook (stale ones only) -> figures/, data/, build/
#   make test      run the test suite
# Both create the virtual environment .venv on first use and reuse it afterwards.

SHELL   := /bin/bash
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROFILE ?= cpu
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
.PHONY: help venv test test-fast figures report measure bench clean clean-build

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

figures: $(STAMP) ## Execute every notebook (stale ones only) -> figures/, data/results/, build/
	$(PY) -m tools.notebook_runner

report: $(STAMP) ## Build the HTML report of the executed notebooks (build/report/index.html)
	$(PY) -m tools.notebook_runner --report

measure: $(STAMP) ## Train the model ladder and measure every pair (PROFILE=smoke|cpu|gpu)
	$(PY) -m sdsl_lib.measurement.pipeline --profile $(PROFILE)

bench: $(STAMP) ## Run the speed benchmarks (they print their figures)
	$(PY) benchmarks/bench_mesh.py
	$(PY) benchmarks/bench_planner.py
	$(PY) benchmarks/bench_decoding_vs_hf.py
	$(PY) benchmarks/bench_speedup_cpu.py

clean-build: ## Remove executed notebooks and reports (build/)
	rm -rf build

clean: clean-build ## Remove build/ and the virtual environment
	rm -rf $(VENV)
