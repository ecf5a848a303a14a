# `make demo` and `make test` each do their own setup: a .venv with the package installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps vot-toolkit==0.9.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deepvideo demo

# one worker per core (at most 4): the tests are single-threaded (tests/conftest.py)
test: $(STAMP) browser
	$(BIN)/python -m pytest tests --numprocesses=auto --maxprocesses=4

# The web page test (tests/serve/test_page_browser.py) needs Chromium and chromedriver: on a fresh
# machine (root, apt available, no chromium) install them quietly; never fails the build.
browser:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
			>/dev/null 2>&1 || echo "chromium could not be installed: the browser test will skip"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

docs: $(STAMP)
	$(BIN)/python benchmarks/render_docs.py

clean:
	rm -rf $(VENV) build *.egg-info
