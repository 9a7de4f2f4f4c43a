# Two entry points, each doing all set-up on a fresh clone:
#   make run    create .venv if needed, then run the whole workflow on config.yaml
#   make test   create .venv if needed, then run the test suite
# Extra Snakemake arguments go through ARGS, e.g. make run ARGS="--config scale=paper".

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

# The rules run `python -m stages.<name>`, so the environment's python must come first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: env run test benchmark report clean-results

env: $(STAMP)

# The stamp depends on the requirement files, so editing a pin reinstalls.
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found %s); set PYTHON=/path/to/python3.11" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --workflow-profile profiles/default $(ARGS)

report: $(STAMP)
	$(BIN)/snakemake --workflow-profile profiles/default --report results/report.html $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks against reference implementations; writes benchmarks/README.md. Not part of test.
# Options go through BENCH_ARGS, e.g. make benchmark BENCH_ARGS="--end-to-end".
benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean-results:
	rm -rf results logs
