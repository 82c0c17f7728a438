# Two commands do all set-up on a fresh machine: `make demo` and `make test`. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HNAS := $(VENV)/bin/harmonic-nas
STAMP := $(VENV)/.installed
DEMO_CONFIG ?= configs/demo.yaml
# glibc returning freed blocks to the OS made fresh processes 2x slower at inference (docs/hardware.md).
export MALLOC_MMAP_MAX_ := 0
export MALLOC_TRIM_THRESHOLD_ := 100000000000

.PHONY: install demo test test-fast bench clean

# CPU torch 2.13.0 goes in first, so that nothing later can pull a CUDA build of several GB.
$(STAMP): pyproject.toml scripts/install-system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	bash scripts/install-system-deps.sh $(PY)
	touch $(STAMP)

install: $(STAMP)

# The main job on the builtin av-digits data: prepare, train both supernets, profile this CPU into a LUT,
# two-tier search, export the Pareto models, write the report. A second run reuses what is done.
demo: install
	$(HNAS) run --config $(DEMO_CONFIG)

test: install
	$(PY) -m pytest -q

# Everything but the tests marked slow (end-to-end runs, torchrun): a quick check while working.
test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) benchmarks/supernet_step.py
	$(PY) benchmarks/fusion_epoch.py
	$(PY) benchmarks/search.py --config $(DEMO_CONFIG) --run-dir runs/demo --seeds 0

clean:
	rm -rf $(VENV) .cache runs
