# Two commands for a fresh clone:
#   make demo   — install, migrate and serve on the embedded default (SQLite + in-process broker)
#   make test   — install and pass the whole suite (lint, types, unit, contract, integration, e2e)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install browser lint typecheck unit bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,sim]"
	touch $(STAMP)

install: $(STAMP)

# The console's browser tests drive Debian's Chromium (Playwright launches that executable;
# nothing is downloaded from a browser vendor).
$(CHROMIUM):
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver

browser: $(CHROMIUM)

demo: $(STAMP)
	$(BIN)/centralita demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy core storage broker identity router channels centralita

test: lint typecheck browser
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick --only ceilings,stripped,routing

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
