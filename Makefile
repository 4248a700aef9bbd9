# `make demo` and `make test` work on a fresh machine with Python >= 3.10 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch is pinned first so that no dependency pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,baselines]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/dpot demo

test: venv
	$(VENV)/bin/ruff check src tests benchmarks studies
	$(VENV)/bin/ruff format --check src tests benchmarks studies
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks studies
	$(VENV)/bin/ruff format --check src tests benchmarks studies

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
