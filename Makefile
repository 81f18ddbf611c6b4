# genstudio: `make run` opens the studio, `make test` runs the whole suite.
# Both set up .venv first (idempotent: redone only when pyproject.toml changes).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
GS     := $(BIN)/genstudio
TORCH  := torch==2.13.0
PYI    := $(BIN)/pyinstaller

.PHONY: setup run test test-data models bench lint installer installer-smoke clean

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

# $(PYI): tests/test_installer.py builds the bundle too (about a minute).
test: setup test-data $(PYI)
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

# The double-click bundle: dist/genstudio/ (genstudio.app on macOS), without torch or the export pipeline.
# PyInstaller goes into .venv here, not into the [dev] extra. See installer/README.md.
$(PYI): $(STAMP)
	$(BIN)/python -m pip install --quiet 'pyinstaller>=6.10'
	touch $@

installer: setup $(PYI)
	$(PYI) --noconfirm --clean --log-level WARN --distpath dist --workpath build installer/genstudio.spec
	@$(BIN)/python installer/bundle_size.py dist/genstudio

# Runs the bundled executable with a clean environment (no .venv): doctor, models, generate, check, shot,
# and the desktop entry under xvfb-run. Builds the bundle first when there is none.
installer-smoke:
	@test -x dist/genstudio/genstudio || $(MAKE) installer
	$(PYTHON) installer/smoke.py dist/genstudio

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
