# genstudio: `make run` opens the studio, `make test` runs the whole suite.
# Both set up .venv first (idempotent: redone only when pyproject.toml changes).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
GS     := $(BIN)/genstudio
TORCH  := torch==2.13.0

.PHONY: setup run test test-data models bench lint installer clean

setup: $(STAMP)

# torch is pinned and installed first so that the [export] extra never pulls a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[export,dev]'
	touch $(STAMP)

# Builds the model artifacts that are not kept in git (skips those already built).
models: setup
	$(GS) export missing

# A model that fails to build does not stop the studio: its tab explains and offers the build again.
run: setup
	$(GS) export missing || echo "genstudio: some models could not be built; opening the studio anyway"
	$(GS)

test: setup test-data
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# Real Fashion-MNIST (Debian's dataset-fashion-mnist) for the data-reader test; where apt is not ours
# to run, that one test is skipped and says why.
FMNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
test-data:
	@if [ ! -e $(FMNIST) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } || \
	  echo "dataset-fashion-mnist could not be installed; its test will be skipped"; fi

lint: setup
	$(BIN)/ruff check genstudio tests
	$(BIN)/lint-imports

bench: setup
	QT_QPA_PLATFORM=offscreen $(GS) bench all --write docs/benchmarks.md

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
