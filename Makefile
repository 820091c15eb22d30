# Two commands matter (see README): `make demo` and `make test`. Both install what they need,
# idempotently: a second run skips every install step that is already done. `make check` is the
# quick loop while developing: the unit and integration tiers only (tests/conftest.py).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# pytest-xdist workers: one per core and one more, as many tests wait on sockets and deadlines;
# each file's tests run in one worker (tests/conftest.py). `PARALLEL=` runs the tests in one process.
WORKERS := $(shell echo $$(( $$(nproc) + 1 )))
PARALLEL ?= -n $(WORKERS) --dist loadfile

.PHONY: demo test check lint suite system-deps bench image-test clean help

help:
	@echo "make demo   - run the exporter against the built-in ModelArts simulator"
	@echo "make test   - install everything the tests need, then lint, type-check and test"
	@echo "make check  - the fast tests only: the unit and integration tiers"
	@echo "make bench  - performance benchmarks (ratios measured in one run)"
	@echo "make image-test - build the container image with buildah and run it (slow, opt-in)"

# python3-venv is a separate package on Debian; install it only when venv cannot work.
# The runtime dependencies come from requirements.lock, as in the image, so tests run what ships.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

# promtool, amtool, helm, hadolint, tsc…: the real tools the tests run (scripts/ says which).
system-deps: $(STAMP)
	@PYTHON=$(BIN)/python bash scripts/install-deploy-tools.sh

demo: $(STAMP)
	$(BIN)/modelarts-exporter demo

lint: $(STAMP)
	$(BIN)/ruff check exporter tests benchmarks
	$(BIN)/ruff format --check exporter tests benchmarks
	$(BIN)/mypy

suite: $(STAMP) system-deps
	$(BIN)/python -m pytest $(PARALLEL)

test: lint suite

check: $(STAMP)
	PROPERTY_EXAMPLES=quick $(BIN)/python -m pytest $(PARALLEL) -m "unit or integration"

bench: $(STAMP)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	@$(BIN)/python -c 'import aiohttp' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m benchmarks

# Opt-in and slow (about 2 minutes the first time): not part of `make test`. See the script.
image-test: $(STAMP)
	bash scripts/image-test.sh

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache build dist
