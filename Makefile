# `make demo` and `make test` each do their own setup: a .venv with the package installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps vot-toolkit==0.9.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deepvideo demo

# one worker per core (at most 4): the tests are single-threaded (tests/conftest.py)
test: $(STAMP)
	$(BIN)/python -m pytest tests --numprocesses=auto --maxprocesses=4

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

docs: $(STAMP)
	$(BIN)/python benchmarks/render_docs.py

clean:
	rm -rf $(VENV) build *.egg-info
