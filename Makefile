# Set-up is part of every target: a fresh machine with Python 3.11 needs nothing else.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint

$(BIN)/drivesim:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# CPU build of torch from local disk; on a GPU machine install the CUDA build of torch first.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "torch==2.13.0"
	$(BIN)/pip install -e ".[dev,shards]"

setup: $(BIN)/drivesim

demo: setup
	$(BIN)/drivesim demo

test: setup
	$(BIN)/python -m pytest -n 2 tests

lint: setup
	$(BIN)/ruff check drivesim tests benchmarks
