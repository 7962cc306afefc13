# Every target creates .venv and installs what it needs when missing: on a fresh machine
# `make run` and `make test` are the whole set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
CONFIG ?=

.PHONY: run test test-fast lint typecheck bench bench-quick fmt clean

$(BIN)/python:
	@echo "creating the virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing agentkeep and its dependencies into $(VENV) (once; about a minute, more on a slow network)"
	@# torch first and pinned: resolved as a dependency of the embeddings extra it would pull a
	@# multi-gigabyte GPU build
	$(BIN)/python -m pip install --quiet --progress-bar off torch==2.13.0
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	@echo "installed"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/agentkeep serve --host $(HOST) --port $(PORT)$(if $(CONFIG), --config $(CONFIG))

test: $(STAMP)
	@test -x /usr/bin/chromium || (echo "installing chromium for the browser tests" && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "could not install chromium: the browser tests will be skipped (they fail when CI=true)"
	@dpkg -s fonts-noto-color-emoji fonts-noto-cjk >/dev/null 2>&1 || (echo "installing emoji and CJK fonts for the browser tests" && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji fonts-noto-cjk >/dev/null) || \
		echo "could not install the Noto fonts: the emoji and CJK browser test will be skipped (it fails when CI=true)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# every benchmark in its own process, rewriting docs/benchmarks.md (about 30 minutes here);
# `make bench BENCH_ARGS="--only store,http"` for some of them
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# every benchmark at small sizes, nothing written (under 3 minutes here): the smoke run CI makes
bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
